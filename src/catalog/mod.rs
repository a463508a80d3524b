//! The catalog: products, categories and their barcodes. This file holds the
//! products API; `categories` has its own; `csv` does import and export.

pub mod barcode;
pub mod categories;
pub mod csv;
pub mod model;
pub mod repo;
pub mod search_indexes;
mod search_tokens;

use poem::{web::Data, Body};
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{
    param::{Header, Path, Query},
    payload::{Binary, Json},
    ApiRequest, ApiResponse, OpenApi,
};
use std::sync::Arc;
use uuid::Uuid;

use self::model::{
    BarcodeLookup, CreateProduct, ImportSummary, NewBarcode, Product, ProductBarcode,
    ProductFields, ProductResponse, UpdateProduct,
};
use crate::{
    auth::principal::{ManagerAuth, ViewerAuth},
    error::{ApiError, Result, Validation},
    events,
    idempotency::{claim, Idempotent},
    pagination::{Page, PageRequest},
    responses::{etag, if_match_version, Created, NoContent, RawJson},
    state::AppState,
    Tags,
};

/// Redis key of a cached barcode lookup.
fn barcode_cache_key(lookup_key: &str) -> String {
    format!("barcode:{lookup_key}")
}

/// How long a replica answers a barcode lookup from its own memory. Changes
/// made through this replica clear it at once; other replicas see them within
/// this time (they clear Redis, which is the shared layer).
pub const LOCAL_LOOKUP_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Drops cached lookups of these barcodes (after any change to their product).
pub async fn forget_barcodes(state: &AppState, lookup_keys: &[String]) {
    for key in lookup_keys {
        state.barcode_answers.forget(key);
    }
    let keys: Vec<String> = lookup_keys.iter().map(|k| barcode_cache_key(k)).collect();
    state.cache.delete(&keys).await;
}

fn ok(p: Product) -> ProductResponse {
    let tag = etag(p.version);
    ProductResponse::Ok(Json(p), tag)
}

fn product_event(p: &Product) -> serde_json::Value {
    serde_json::to_value(p).unwrap_or_default()
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::not_found(format!("product {id}"))
}

fn stale(id: Uuid, version: i32) -> ApiError {
    ApiError::PreconditionFailed(format!(
        "Product {id} changed since you read it (now version {version}); GET it again."
    ))
}

/// A product's category must exist: said as a field error.
async fn check_category(
    db: &sqlx::PgPool,
    v: &mut Validation,
    prefix: &str,
    category: Option<Uuid>,
) -> Result<()> {
    if let Some(category) = category {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM categories WHERE id = $1)")
                .bind(category)
                .fetch_one(db)
                .await?;
        v.check(
            exists,
            &format!("{prefix}category_id"),
            "no category with this id",
        );
    }
    Ok(())
}

/// A product's tracking is fixed while it holds stock: 409 `tracking-in-use`.
/// (Called under the product's row lock.)
pub async fn refuse_tracking_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: Uuid,
    sku: &str,
    tracking: model::Tracking,
) -> Result<()> {
    let held = repo::units_held(&mut **tx, id).await?;
    if held > 0 {
        return Err(tracking_in_use(sku, held, tracking));
    }
    Ok(())
}

/// The refusal of a tracking change on a product holding `held` units.
pub fn tracking_in_use(sku: &str, held: i64, tracking: model::Tracking) -> ApiError {
    ApiError::conflict(
        "tracking-in-use",
        format!(
            "Product {} holds {held} units tracked as `{}`; issue or adjust them to zero \
             before changing its tracking.",
            sku,
            tracking.as_str()
        ),
    )
}

/// CSV upload for `POST /api/v1/products/import`.
#[derive(ApiRequest)]
pub enum ImportBody {
    /// Header row `sku,name,description,category_id,unit,unit_cost,price,reorder_point,reorder_quantity,active,barcodes,tracking`
    /// (as `export.csv` writes it); `barcodes` is `code:pack|code:pack`; `tracking`
    /// is `none`, `lot` or `serial` (empty or absent: unchanged, `none` for a new product).
    #[oai(content_type = "text/csv")]
    Csv(Binary<bytes::Bytes>),
    /// The same CSV as the `file` part of a `multipart/form-data` form (what
    /// browsers and generated clients send). No content_type attribute here: the
    /// payload's own check accepts the `boundary` parameter an exact match would refuse.
    Form(ImportUpload),
}

/// A form upload of a CSV file.
#[derive(Debug, poem_openapi::Multipart)]
pub struct ImportUpload {
    /// The CSV file, in the format `export.csv` writes (UTF-8).
    pub file: poem_openapi::types::multipart::Upload,
}

/// The catalog as CSV.
#[derive(ApiResponse)]
pub enum CsvExport {
    /// One product per row, streamed.
    #[oai(status = 200, content_type = "text/csv")]
    Ok(Binary<Body>),
}

pub struct ProductsApi;

#[OpenApi(prefix_path = "/api/v1/products", tag = "Tags::Products")]
impl ProductsApi {
    /// Search and list products (viewer), ordered by SKU.
    #[oai(path = "/", method = "get", operation_id = "listProducts")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        /// Case-insensitive text found anywhere in the SKU, name or a barcode
        /// (any GTIN form of it). When nothing contains it, its words of 4+
        /// letters are spell-corrected once against the product names.
        q: Query<Option<String>>,
        category_id: Query<Option<Uuid>>,
        /// true: only active products; false: only archived ones.
        active: Query<Option<bool>>,
        /// Only products whose total stock is at or below their reorder point
        /// (for device keys, viewers and clerks, without those with a level
        /// under an open blind count).
        #[oai(default)]
        below_reorder: Query<bool>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Product>>> {
        let page = PageRequest::<String>::new(limit.0, cursor.0.as_deref())?;
        if q.0.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(ApiError::field("q", "must be at most 200 characters"));
        }
        let filter = repo::ProductFilter {
            q: q.0,
            category_id: category_id.0,
            active: active.0,
            below_reorder: below_reorder.0,
            hide_blind: crate::stock::blind::hides_blind_counts(&auth.0),
        };
        let rows = repo::list(&state.db, &filter, page.after.clone(), page.fetch()).await?;
        let page_rows = repo::with_barcodes(&state.db, rows).await?;
        Ok(Json(page.page(page_rows, |p| p.sku.to_lowercase(), |p| p)))
    }

    /// Create a product with its barcodes (manager).
    #[oai(path = "/", method = "post", operation_id = "createProduct")]
    async fn create(
        &self,
        auth: ManagerAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<CreateProduct>,
    ) -> Result<ProductResponse> {
        let idem = Idempotent::new(
            auth.0.id(),
            key.0.as_deref(),
            "POST /api/v1/products",
            &body.0,
        )?;
        let fields = ProductFields::from(&body.0);
        let mut v = Validation::new();
        fields.validate(&mut v, "");
        let barcodes = model::parse_barcodes(&mut v, "barcodes", &body.barcodes);
        check_category(&state.db, &mut v, "", fields.category_id).await?;
        v.finish()?;
        let mut tx = crate::db::begin(&state.db).await?;
        if let Some(first) = claim::<Product>(&idem, &mut tx).await? {
            let tag = etag(first.version);
            return Ok(ProductResponse::Created(Json(first), tag));
        }
        let tracking = body.tracking.unwrap_or_default();
        let row = repo::insert(&mut tx, &fields, tracking, &barcodes).await?;
        let product = repo::with_barcodes(&mut *tx, vec![row]).await?.remove(0);
        events::emit(
            &mut tx,
            "product.created",
            product.id,
            product_event(&product),
        )
        .await?;
        if let Some(idem) = &idem {
            idem.store(&mut tx, 201, &product).await?;
        }
        tx.commit().await?;
        let tag = etag(product.version);
        Ok(ProductResponse::Created(Json(product), tag))
    }

    /// The catalog as CSV (viewer), streamed row by row; `import` reads it back.
    #[oai(path = "/export.csv", method = "get", operation_id = "exportProducts")]
    async fn export(&self, _auth: ViewerAuth, state: Data<&AppState>) -> CsvExport {
        CsvExport::Ok(Binary(csv::export(state.read_db.clone())))
    }

    /// Create or update products from CSV, by SKU (manager). Every row is
    /// validated first; one bad row refuses the whole file (422 with per-row
    /// errors: `row <line>: <column>` and the reason, at most the first 1,000)
    /// and nothing changes. At most 100,000 rows, in a body of at most
    /// `MAX_IMPORT_BYTES` (32 MiB by default; 413 above it).
    #[oai(path = "/import", method = "post", operation_id = "importProducts")]
    async fn import(
        &self,
        auth: ManagerAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); a retry with it returns the first
        /// answer. The file's text is what a retry must repeat, whichever way
        /// it is sent.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: ImportBody,
    ) -> Result<Json<ImportSummary>> {
        let (field, bytes) = match body {
            ImportBody::Csv(Binary(bytes)) => ("body", bytes),
            ImportBody::Form(form) => {
                let bytes =
                    form.file.into_vec().await.map_err(|e| {
                        ApiError::BadRequest(format!("could not read the upload: {e}"))
                    })?;
                // The middleware checks text/csv bodies; a form part is checked here, the same way.
                crate::input::check_csv_upload("file", &bytes)?;
                ("file", bytes::Bytes::from(bytes))
            }
        };
        // The file is held once, as received (up to MAX_IMPORT_BYTES); the
        // import reads it in place.
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::field(field, "must be UTF-8 text"))?;
        let idem = Idempotent::for_text(
            auth.0.id(),
            key.0.as_deref(),
            "POST /api/v1/products/import",
            text,
        )?;
        Ok(Json(csv::import(&state, bytes, idem).await?))
    }

    /// Find a product by barcode (viewer), with the pack quantity. GTIN forms are
    /// equivalent: an EAN-13 also matches as a 14-digit GTIN with a leading zero.
    #[oai(
        path = "/by-barcode/:barcode",
        method = "get",
        operation_id = "getProductByBarcode"
    )]
    async fn by_barcode(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        barcode: Path<String>,
    ) -> Result<RawJson<BarcodeLookup>> {
        Ok(RawJson::new(lookup_barcode_json(&state, &barcode.0).await?))
    }

    /// One product (viewer), with its `ETag`.
    #[oai(path = "/:id", method = "get", operation_id = "getProduct")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<ProductResponse> {
        let p = repo::get(&state.db, id.0)
            .await?
            .ok_or_else(|| not_found(id.0))?;
        Ok(ok(p))
    }

    /// Change a product (manager). Send `If-Match` with the `ETag` you read: if
    /// someone changed the product meanwhile, 412 instead of overwriting.
    #[oai(path = "/:id", method = "patch", operation_id = "updateProduct")]
    async fn update(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// The `ETag` last read; 412 when the product changed since.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        body: Json<UpdateProduct>,
    ) -> Result<ProductResponse> {
        let expected = if_match_version(if_match.0.as_deref())?;
        let mut tx = crate::db::begin(&state.db).await?;
        let row = repo::get_row(&mut *tx, id.0, true)
            .await?
            .ok_or_else(|| not_found(id.0))?;
        if expected.is_some_and(|v| v != row.version) {
            return Err(stale(id.0, row.version));
        }
        let active = body.active.unwrap_or(row.active);
        let current = repo::with_barcodes(&mut *tx, vec![row]).await?.remove(0);
        let fields = ProductFields::patched(&current, &body.0);
        let mut v = Validation::new();
        fields.validate(&mut v, "");
        check_category(&state.db, &mut v, "", fields.category_id).await?;
        v.finish()?;
        let tracking = body.tracking.unwrap_or(current.tracking);
        if tracking != current.tracking {
            refuse_tracking_change(&mut tx, current.id, &current.sku, current.tracking).await?;
        }
        let row = repo::update(&mut tx, id.0, &fields, active, tracking).await?;
        let product = repo::with_barcodes(&mut *tx, vec![row]).await?.remove(0);
        let topic = match (current.active, active) {
            (true, false) => "product.archived",
            _ => "product.updated",
        };
        events::emit(&mut tx, topic, product.id, product_event(&product)).await?;
        tx.commit().await?;
        forget_barcodes(&state, &keys_of(&product)).await;
        Ok(ok(product))
    }

    /// Archive a product (manager): it keeps its history and barcodes but
    /// accepts no new stock movements. Honours `If-Match`.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteProduct")]
    async fn archive(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// The `ETag` last read; 412 when the product changed since.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> Result<NoContent> {
        let expected = if_match_version(if_match.0.as_deref())?;
        let mut tx = crate::db::begin(&state.db).await?;
        let row = repo::get_row(&mut *tx, id.0, true)
            .await?
            .ok_or_else(|| not_found(id.0))?;
        if expected.is_some_and(|v| v != row.version) {
            return Err(stale(id.0, row.version));
        }
        if row.active {
            let fields = row.fields.clone();
            let row = repo::update(&mut tx, id.0, &fields, false, row.tracking).await?;
            let product = repo::with_barcodes(&mut *tx, vec![row]).await?.remove(0);
            events::emit(
                &mut tx,
                "product.archived",
                product.id,
                product_event(&product),
            )
            .await?;
            tx.commit().await?;
            forget_barcodes(&state, &keys_of(&product)).await;
        }
        Ok(NoContent::NoContent)
    }

    /// A product's barcodes (viewer).
    #[oai(
        path = "/:id/barcodes",
        method = "get",
        operation_id = "listProductBarcodes"
    )]
    async fn barcodes(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<Vec<ProductBarcode>>> {
        let p = repo::get(&state.db, id.0)
            .await?
            .ok_or_else(|| not_found(id.0))?;
        Ok(Json(p.barcodes))
    }

    /// Add a barcode to a product (manager). 409 when any product already has
    /// it (in any equivalent GTIN form) or it labels a location.
    #[oai(
        path = "/:id/barcodes",
        method = "post",
        operation_id = "addProductBarcode"
    )]
    async fn add_barcode(
        &self,
        auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<NewBarcode>,
    ) -> Result<Created<ProductBarcode>> {
        let route = format!("POST /api/v1/products/{}/barcodes", id.0);
        let idem = Idempotent::new(auth.0.id(), key.0.as_deref(), &route, &body.0)?;
        let mut v = Validation::new();
        let parsed = model::parse_barcode(&mut v, "", &body.0);
        v.finish()?;
        let (code, pack) = parsed.expect("valid when no field errors");
        let mut tx = crate::db::begin(&state.db).await?;
        if let Some(first) = claim(&idem, &mut tx).await? {
            return Ok(Created::new(first));
        }
        repo::get_row(&mut *tx, id.0, true)
            .await?
            .ok_or_else(|| not_found(id.0))?;
        repo::insert_barcodes(&mut tx, id.0, &[(code.clone(), pack)]).await?;
        repo::touch(&mut tx, id.0).await?;
        events::emit(
            &mut tx,
            "product.updated",
            id.0,
            serde_json::json!({"id": id.0, "barcode_added": code.raw}),
        )
        .await?;
        let added = ProductBarcode {
            barcode: code.raw,
            pack_quantity: pack,
            symbology: code.symbology.code().into(),
        };
        crate::idempotency::store(&idem, &mut tx, 201, &added).await?;
        tx.commit().await?;
        forget_barcodes(&state, std::slice::from_ref(&code.key)).await;
        Ok(Created::new(added))
    }

    /// Remove a barcode from a product (manager). Any GTIN form of it works.
    #[oai(
        path = "/:id/barcodes/:barcode",
        method = "delete",
        operation_id = "removeProductBarcode"
    )]
    async fn remove_barcode(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        barcode: Path<String>,
    ) -> Result<NoContent> {
        let key = barcode::parse(&barcode.0)
            .map(|b| b.key)
            .unwrap_or_else(|_| barcode.0.trim().to_owned());
        let mut tx = crate::db::begin(&state.db).await?;
        repo::get_row(&mut *tx, id.0, true)
            .await?
            .ok_or_else(|| not_found(id.0))?;
        if !repo::delete_barcode(&mut tx, id.0, &key).await? {
            return Err(ApiError::not_found(format!(
                "barcode {} on product {}",
                barcode.0, id.0
            )));
        }
        repo::touch(&mut tx, id.0).await?;
        events::emit(
            &mut tx,
            "product.updated",
            id.0,
            serde_json::json!({"id": id.0, "barcode_removed": barcode.0}),
        )
        .await?;
        tx.commit().await?;
        forget_barcodes(&state, &[key]).await;
        Ok(NoContent::NoContent)
    }
}

fn keys_of(p: &Product) -> Vec<String> {
    p.barcodes
        .iter()
        .filter_map(|b| barcode::parse(&b.barcode).ok().map(|c| c.key))
        .collect()
}

/// The lookup answer of a scanned barcode as JSON, through two caches: this
/// replica's memory (a few seconds) and Redis (`CACHE_TTL_SECONDS`, shared).
///
/// Every change to a product clears both for its barcodes, so a stale answer is
/// possible only from another replica's memory (for at most
/// [`LOCAL_LOOKUP_TTL`]) or while Redis missed an invalidation because it was
/// down (for at most the Redis TTL).
pub async fn lookup_barcode_json(state: &AppState, scanned: &str) -> Result<Arc<str>> {
    let code = barcode::parse(scanned).map_err(|e| ApiError::field("barcode", e.to_string()))?;
    if let Some(hit) = state.barcode_answers.get(&code.key) {
        crate::cache::record_lookup("barcode", true);
        return Ok(hit);
    }
    let cache_key = barcode_cache_key(&code.key);
    if let Some(hit) = state.cache.get_raw("barcode", &cache_key).await {
        let hit: Arc<str> = hit.into();
        state.barcode_answers.put(code.key, hit.clone());
        return Ok(hit);
    }
    let (barcode, pack_quantity, product) = repo::find_by_barcode(&state.db, &code.key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("a product with barcode {}", code.raw)))?;
    let found = BarcodeLookup {
        barcode,
        pack_quantity,
        product,
    };
    let json: Arc<str> = found.to_json_string().into();
    state
        .cache
        .set_raw(&cache_key, &json, state.config.cache_ttl)
        .await;
    state.barcode_answers.put(code.key, json.clone());
    Ok(json)
}

/// The lookup answer of a scanned barcode (see [`lookup_barcode_json`]).
pub async fn lookup_barcode(state: &AppState, scanned: &str) -> Result<BarcodeLookup> {
    let json = lookup_barcode_json(state, scanned).await?;
    let value: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| anyhow::anyhow!("cached lookup is not JSON: {e}"))?;
    BarcodeLookup::parse_from_json(Some(value)).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!(
            "cached lookup does not parse: {}",
            e.into_message()
        ))
    })
}
