//! Inventory API: products, warehouses, an append-only stock ledger and
//! barcode scanners, over PostgreSQL, with Redis as a rebuildable cache.

/// Assembles the domain APIs into one application (`app::build`).
pub mod app;
/// Users, roles, passwords, tokens, device keys.
pub mod auth;
/// Redis: cache, rate-limit counters, event stream; optional.
pub mod cache;
/// Products, categories, barcodes.
pub mod catalog;
/// Response compression (br, gzip) from Accept-Encoding.
pub mod compression;
/// Environment configuration (the only reader of env vars).
pub mod config;
/// The web console at /console/ (embedded files).
pub mod console;
/// The published OpenAPI document: API-wide rules applied to the generated spec.
pub mod contract;
/// Aggregates for a front page.
pub mod dashboard;
/// PostgreSQL pool and migrations.
pub mod db;
/// ApiError and its problem+json rendering.
pub mod error;
/// Domain events through the transactional outbox.
pub mod events;
/// Idempotency-Key handling for mutating POSTs.
pub mod idempotency;
/// Control characters in text input are refused here, for every operation.
pub mod input;
/// Background tasks: outbox relay, key expiry, gauges.
pub mod jobs;
/// Locations (bins): the tree of places inside a warehouse.
pub mod locations;
/// Lots of a product, their expiry, and recall traces.
pub mod lots;
/// Money on the wire: decimal strings with a fixed scale.
pub mod money;
/// Liveness and readiness.
pub mod ops;
/// Keyset pagination shared by every list.
pub mod pagination;
/// Stock positions by location and lot; expiring stock.
pub mod positions;
/// Products to reorder, with suggested quantities.
pub mod replenishment;
/// Stock promised to orders (reservations).
pub mod reservations;
/// Response shapes shared by every domain (201, 204).
pub mod responses;
/// Scanner devices, scan events, GS1 parsing, counts.
pub mod scanner;
/// Benchmark and demo data (`inventory-api seed`).
pub mod seed;
/// Shared handler state (pool, cache, config); the bottom of the module graph.
pub mod state;
/// Stock levels and the ledger: every movement.
pub mod stock;
/// Logging and metrics.
pub mod telemetry;
/// Warehouses.
pub mod warehouses;
/// Webhooks: admin API and the delivery worker fed from the outbox.
pub mod webhooks;

use poem_openapi::Tags as OaiTags;

/// Groups of operations on the Swagger page.
#[derive(OaiTags)]
pub enum Tags {
    /// Liveness and readiness probes.
    Ops,
    /// Sign in, refresh, sign out.
    Auth,
    /// User management (admin).
    Users,
    /// The category tree.
    Categories,
    /// Products, barcodes, CSV import and export.
    Products,
    /// Warehouses.
    Warehouses,
    /// Locations (bins) inside warehouses.
    Locations,
    /// Stock levels and movements: receive, issue, adjust, transfer.
    Stock,
    /// The ledger of stock transactions.
    Transactions,
    /// Lots, recall traces and serial numbers.
    Lots,
    /// Scanner devices and their events.
    Scanner,
    /// Count sessions (stocktakes).
    Counts,
    /// Stock promised to orders.
    Reservations,
    /// Aggregates for a front page.
    Dashboard,
    /// What to reorder, and how much.
    Replenishment,
    /// Live feed of changes (Server-Sent Events).
    Events,
    /// Webhook endpoints and their deliveries (admin).
    Webhooks,
}
