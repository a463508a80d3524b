//! Request and response bodies of the catalog APIs, and the validation of
//! product fields shared by the API and the CSV import.

use poem_openapi::{payload::Json, types::MaybeUndefined, ApiResponse, Enum, Object};
use rust_decimal::Decimal;

use crate::money::UnitAmount;
use time::OffsetDateTime;
use uuid::Uuid;

use super::barcode::{self, Barcode};
use crate::error::Validation;

/// A product category; categories form a tree.
#[derive(Debug, Clone, Object, sqlx::FromRow)]
pub struct Category {
    /// Identifier (UUID) of this category.
    pub id: Uuid,
    /// Unique among its siblings (case-insensitive).
    pub name: String,
    /// None for a top-level category.
    pub parent_id: Option<Uuid>,
    /// When this category was created (RFC 3339).
    pub created_at: OffsetDateTime,
    /// When this category last changed (RFC 3339).
    pub updated_at: OffsetDateTime,
}

/// A new category.
#[derive(Debug, Object)]
pub struct CreateCategory {
    /// Display name.
    pub name: String,
    /// The parent category (UUID); null for a top-level category.
    pub parent_id: Option<Uuid>,
}

/// Changes to a category; `parent_id: null` moves it to the top level.
#[derive(Debug, Object)]
pub struct UpdateCategory {
    /// Display name.
    pub name: Option<String>,
    /// The parent category (UUID); null for a top-level category.
    pub parent_id: MaybeUndefined<Uuid>,
}

/// A barcode of a product.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ProductBarcode {
    /// As entered (trimmed).
    pub barcode: String,
    /// Units one scan of this barcode stands for (a case of 12: 12).
    pub pack_quantity: i32,
    /// `gtin8`, `gtin12`, `gtin13`, `gtin14` (check digit verified) or `other`.
    pub symbology: String,
}

/// A barcode to add to a product.
#[derive(Debug, Clone, Object)]
pub struct NewBarcode {
    /// Up to 128 characters, not blank, no control characters. All digits of
    /// length 8, 12, 13 or 14 is a GTIN (EAN-8, UPC-A, EAN-13, GTIN-14) and
    /// must have a valid GS1 check digit; anything else (Code 128, QR text)
    /// is stored as given (trimmed).
    pub barcode: String,
    /// Units per scan, 1-1000000 (default 1).
    pub pack_quantity: Option<i32>,
}

/// What a product's stock is told apart by, beyond where it is.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Enum,
    sqlx::Type,
    serde::Serialize,
    serde::Deserialize,
)]
#[oai(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Tracking {
    /// Units are interchangeable (the default).
    #[default]
    None,
    /// Every receipt names a lot (batch), which may expire.
    Lot,
    /// Every unit has a serial number of its own.
    Serial,
}

impl Tracking {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Lot => "lot",
            Self::Serial => "serial",
        }
    }

    /// Parses the text the API and the CSV use.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "lot" => Some(Self::Lot),
            "serial" => Some(Self::Serial),
            _ => None,
        }
    }
}

/// A product.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct Product {
    /// Identifier (UUID) of this product.
    pub id: Uuid,
    /// Stock keeping unit: unique, case-insensitive.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Free text; may span several lines.
    pub description: String,
    /// The category (UUID); null for none.
    pub category_id: Option<Uuid>,
    /// Unit of measure stock is counted in, e.g. `each`, `kg`, `box`.
    pub unit: String,
    /// Cost of one unit, a decimal string with 4 decimals such as `"12.5000"`.
    pub unit_cost: UnitAmount,
    /// Sale price of one unit, a decimal string with 4 decimals.
    pub price: UnitAmount,
    /// When total stock falls to this level or below, the product is low on stock.
    pub reorder_point: i32,
    /// How much to reorder.
    pub reorder_quantity: i32,
    /// `none`, `lot` or `serial`: what receipts and issues must name.
    // Lookups cached before tracking existed read as `none`.
    #[serde(default)]
    pub tracking: Tracking,
    /// false once archived: the history stays, new movements are refused.
    pub active: bool,
    /// Bumped by every change; also the `ETag`.
    pub version: i32,
    /// Barcodes of the product, each with its pack quantity.
    pub barcodes: Vec<ProductBarcode>,
    /// When this product was created (RFC 3339).
    pub created_at: OffsetDateTime,
    /// When this product last changed (RFC 3339).
    pub updated_at: OffsetDateTime,
}

/// A new product.
#[derive(Debug, Object)]
pub struct CreateProduct {
    /// 1-64 characters: letters, digits, `.`, `_`, `/`, `-`.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Free text; may span several lines.
    #[oai(default)]
    pub description: String,
    /// The category (UUID); null for none.
    pub category_id: Option<Uuid>,
    /// Default `each`.
    pub unit: Option<String>,
    /// Default `0`.
    pub unit_cost: Option<Decimal>,
    /// Default `0`.
    pub price: Option<Decimal>,
    /// Default 0.
    pub reorder_point: Option<i32>,
    /// Default 0.
    pub reorder_quantity: Option<i32>,
    /// `none` (default), `lot` or `serial`.
    pub tracking: Option<Tracking>,
    /// Barcodes of the product, each with its pack quantity: at most 100,
    /// each code once (a GTIN counts once in all its forms: UPC-A, EAN-13, GTIN-14).
    #[oai(default)]
    pub barcodes: Vec<NewBarcode>,
}

/// Changes to a product; absent fields stay as they are. Barcodes have their
/// own endpoints. `active: true` restores an archived product.
#[derive(Debug, Object)]
pub struct UpdateProduct {
    /// Stock keeping unit of the product.
    pub sku: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Free text; may span several lines.
    pub description: Option<String>,
    /// null removes the category.
    pub category_id: MaybeUndefined<Uuid>,
    /// Unit of measure stock is counted in.
    pub unit: Option<String>,
    /// Cost of one unit, a decimal string (up to 4 decimals).
    pub unit_cost: Option<Decimal>,
    /// Sale price of one unit, a decimal string (up to 4 decimals).
    pub price: Option<Decimal>,
    /// Low-stock threshold of the product.
    pub reorder_point: Option<i32>,
    /// How much to reorder.
    pub reorder_quantity: Option<i32>,
    /// `none`, `lot` or `serial`; refused (409 `tracking-in-use`) while the product has stock.
    pub tracking: Option<Tracking>,
    /// false deactivates (or archives) it.
    pub active: Option<bool>,
}

/// What a barcode scan identifies.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct BarcodeLookup {
    /// The barcode as stored.
    pub barcode: String,
    /// Units one scan stands for.
    pub pack_quantity: i32,
    /// The product the barcode belongs to; null when unknown.
    pub product: Product,
}

/// Outcome of a CSV import.
#[derive(Debug, Object)]
pub struct ImportSummary {
    /// Products created.
    pub created: u32,
    /// Products updated.
    pub updated: u32,
    /// Rows identical to the product already stored (nothing written).
    pub unchanged: u32,
}

/// A product with its `ETag`.
#[derive(ApiResponse)]
pub enum ProductResponse {
    /// The product.
    #[oai(status = 200)]
    Ok(Json<Product>, #[oai(header = "ETag")] String),
    /// Created.
    #[oai(status = 201)]
    Created(Json<Product>, #[oai(header = "ETag")] String),
}

/// Every product field but the barcodes, resolved (defaults applied), as the
/// database stores it. Create, update and CSV import all validate through it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ProductFields {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category_id: Option<Uuid>,
    pub unit: String,
    pub unit_cost: Decimal,
    pub price: Decimal,
    pub reorder_point: i32,
    pub reorder_quantity: i32,
}

/// Money is below this: numeric(14, 4) holds up to 9999999999.9999, and
/// `contract::DECIMAL_PATTERN` (at most 10 integer digits) says so to clients.
const MONEY_LIMIT: i64 = 10_000_000_000;

pub fn valid_sku(sku: &str) -> bool {
    let mut chars = sku.chars();
    (1..=64).contains(&sku.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
}

/// Money fits numeric(14, 4): 0 up to 9999999999.9999, at most 4 decimals.
pub fn check_money(v: &mut Validation, field: &str, value: Decimal) {
    v.check(
        value >= Decimal::ZERO && value < Decimal::from(MONEY_LIMIT),
        field,
        "must be between 0 and 9999999999.9999",
    );
    v.check(
        value.normalize().scale() <= 4,
        field,
        "must have at most 4 decimal places",
    );
}

impl ProductFields {
    /// Records every problem under `prefix` + field name.
    pub fn validate(&self, v: &mut Validation, prefix: &str) {
        let f = |name: &str| format!("{prefix}{name}");
        v.check(
            valid_sku(&self.sku),
            &f("sku"),
            "1-64 characters: letters, digits, '.', '_', '/', '-'; starting with a letter or digit",
        );
        v.check(
            (1..=200).contains(&self.name.trim().chars().count()),
            &f("name"),
            "must be 1-200 characters",
        );
        v.check(
            self.description.chars().count() <= 4000,
            &f("description"),
            "must be at most 4000 characters",
        );
        v.check(
            (1..=20).contains(&self.unit.trim().chars().count()),
            &f("unit"),
            "must be 1-20 characters",
        );
        check_money(v, &f("unit_cost"), self.unit_cost);
        check_money(v, &f("price"), self.price);
        v.check(
            self.reorder_point >= 0,
            &f("reorder_point"),
            "must not be negative",
        );
        v.check(
            self.reorder_quantity >= 0,
            &f("reorder_quantity"),
            "must not be negative",
        );
    }

    /// Trims text fields the way they are stored.
    pub fn normalised(mut self) -> Self {
        self.sku = self.sku.trim().to_owned();
        self.name = self.name.trim().to_owned();
        self.unit = self.unit.trim().to_owned();
        self.unit_cost = self.unit_cost.normalize();
        self.price = self.price.normalize();
        self
    }
}

impl From<&CreateProduct> for ProductFields {
    fn from(p: &CreateProduct) -> Self {
        Self {
            sku: p.sku.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            category_id: p.category_id,
            unit: p.unit.clone().unwrap_or_else(|| "each".into()),
            unit_cost: p.unit_cost.unwrap_or_default(),
            price: p.price.unwrap_or_default(),
            reorder_point: p.reorder_point.unwrap_or(0),
            reorder_quantity: p.reorder_quantity.unwrap_or(0),
        }
        .normalised()
    }
}

impl ProductFields {
    /// `current` with the changes of `patch` applied.
    pub fn patched(current: &Product, patch: &UpdateProduct) -> Self {
        Self {
            sku: patch.sku.clone().unwrap_or_else(|| current.sku.clone()),
            name: patch.name.clone().unwrap_or_else(|| current.name.clone()),
            description: patch
                .description
                .clone()
                .unwrap_or_else(|| current.description.clone()),
            category_id: match &patch.category_id {
                MaybeUndefined::Undefined => current.category_id,
                MaybeUndefined::Null => None,
                MaybeUndefined::Value(id) => Some(*id),
            },
            unit: patch.unit.clone().unwrap_or_else(|| current.unit.clone()),
            unit_cost: patch.unit_cost.unwrap_or(current.unit_cost.amount()),
            price: patch.price.unwrap_or(current.price.amount()),
            reorder_point: patch.reorder_point.unwrap_or(current.reorder_point),
            reorder_quantity: patch.reorder_quantity.unwrap_or(current.reorder_quantity),
        }
        .normalised()
    }
}

/// Most units a single barcode may stand for.
const MAX_PACK_QUANTITY: i32 = 1_000_000;

/// Parses one barcode and its pack quantity, recording problems under
/// `prefix` + `barcode` / `pack_quantity`.
pub fn parse_barcode(v: &mut Validation, prefix: &str, b: &NewBarcode) -> Option<(Barcode, i32)> {
    let pack = b.pack_quantity.unwrap_or(1);
    let pack_ok = (1..=MAX_PACK_QUANTITY).contains(&pack);
    v.check(
        pack_ok,
        &format!("{prefix}pack_quantity"),
        "must be between 1 and 1000000",
    );
    match barcode::parse(&b.barcode) {
        Err(e) => {
            v.push(&format!("{prefix}barcode"), e.to_string());
            None
        }
        Ok(code) => pack_ok.then_some((code, pack)),
    }
}

/// Parses a product's barcodes, recording problems (bad check digit, the same
/// code twice) under `field[i]`.
pub fn parse_barcodes(
    v: &mut Validation,
    field: &str,
    input: &[NewBarcode],
) -> Vec<(Barcode, i32)> {
    let mut out: Vec<(Barcode, i32)> = Vec::with_capacity(input.len());
    for (i, b) in input.iter().enumerate() {
        let prefix = format!("{field}[{i}].");
        if let Some((code, pack)) = parse_barcode(v, &prefix, b) {
            if out.iter().any(|(c, _)| c.key == code.key) {
                v.push(
                    &format!("{prefix}barcode"),
                    "is listed twice (or in two equivalent GTIN forms)",
                );
            } else {
                out.push((code, pack));
            }
        }
    }
    if input.len() > 100 {
        v.push(field, "at most 100 barcodes per product");
    }
    out
}
