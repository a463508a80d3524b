//! The catalog: products, categories and their barcodes.

pub mod barcode;
