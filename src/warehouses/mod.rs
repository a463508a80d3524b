//! Warehouses: the places that hold stock.

pub mod model;
pub mod repo;

use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    OpenApi,
};
use serde_json::json;
use uuid::Uuid;

use self::model::{CreateWarehouse, UpdateWarehouse, Warehouse, WarehouseResponse};
use crate::{
    auth::principal::{ManagerAuth, ViewerAuth},
    error::{ApiError, Result, Validation},
    events,
    idempotency::{claim, Idempotent},
    pagination::{Page, PageRequest},
    responses::{etag, if_match_version, NoContent},
    state::AppState,
    Tags,
};

/// A warehouse or location code: 1-32 of letters, digits, `.`, `_`, `-`,
/// starting with a letter or digit (the CHECKs in the schema say the same).
pub fn valid_code(code: &str) -> bool {
    let mut chars = code.chars();
    (1..=32).contains(&code.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn check_fields(v: &mut Validation, code: Option<&str>, name: Option<&str>, address: Option<&str>) {
    if let Some(code) = code {
        v.check(
            valid_code(code),
            "code",
            "1-32 characters: letters, digits, '.', '_', '-'; starting with a letter or digit",
        );
    }
    if let Some(name) = name {
        v.check(
            (1..=200).contains(&name.trim().chars().count()),
            "name",
            "must be 1-200 characters",
        );
    }
    if let Some(address) = address {
        v.check(
            address.chars().count() <= 1000,
            "address",
            "must be at most 1000 characters",
        );
    }
}

fn ok(w: Warehouse) -> WarehouseResponse {
    let tag = etag(w.version);
    WarehouseResponse::Ok(Json(w), tag)
}

pub struct WarehousesApi;

#[OpenApi(prefix_path = "/api/v1/warehouses", tag = "Tags::Warehouses")]
impl WarehousesApi {
    /// List warehouses (viewer), ordered by code.
    #[oai(path = "/", method = "get", operation_id = "listWarehouses")]
    async fn list(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        /// Only active (true) or only inactive (false) warehouses.
        active: Query<Option<bool>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Warehouse>>> {
        let page = PageRequest::<(String, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let rows = repo::list(&state.db, active.0, page.after.clone(), page.fetch()).await?;
        Ok(Json(page.page(
            rows,
            |w| (w.code.to_lowercase(), w.id),
            |w| w,
        )))
    }

    /// Create a warehouse (manager).
    #[oai(path = "/", method = "post", operation_id = "createWarehouse")]
    async fn create(
        &self,
        auth: ManagerAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<CreateWarehouse>,
    ) -> Result<WarehouseResponse> {
        let idem = Idempotent::new(
            auth.0.id(),
            key.0.as_deref(),
            "POST /api/v1/warehouses",
            &body.0,
        )?;
        let mut v = Validation::new();
        check_fields(
            &mut v,
            Some(&body.code),
            Some(&body.name),
            Some(&body.address),
        );
        v.finish()?;
        let mut tx = crate::db::begin(&state.db).await?;
        if let Some(first) = claim::<Warehouse>(&idem, &mut tx).await? {
            let tag = etag(first.version);
            return Ok(WarehouseResponse::Created(Json(first), tag));
        }
        let w = repo::insert(&mut tx, &body.code, body.name.trim(), body.address.trim()).await?;
        events::emit(
            &mut tx,
            "warehouse.created",
            w.id,
            json!({"id": w.id, "code": w.code}),
        )
        .await?;
        if let Some(idem) = &idem {
            idem.store(&mut tx, 201, &w).await?;
        }
        tx.commit().await?;
        let tag = etag(w.version);
        Ok(WarehouseResponse::Created(Json(w), tag))
    }

    /// One warehouse (viewer), with its `ETag`.
    #[oai(path = "/:id", method = "get", operation_id = "getWarehouse")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<WarehouseResponse> {
        let w = repo::get(&state.db, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("warehouse {}", id.0)))?;
        Ok(ok(w))
    }

    /// Change a warehouse (manager). Send `If-Match` with the `ETag` you read to
    /// refuse (412) a change made meanwhile by someone else.
    #[oai(path = "/:id", method = "patch", operation_id = "updateWarehouse")]
    async fn update(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// The `ETag` last read; 412 when the warehouse changed since.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        body: Json<UpdateWarehouse>,
    ) -> Result<WarehouseResponse> {
        let mut v = Validation::new();
        check_fields(
            &mut v,
            body.code.as_deref(),
            body.name.as_deref(),
            body.address.as_deref(),
        );
        v.finish()?;
        let w = change(
            &state,
            id.0,
            if_match.0.as_deref(),
            body.code.as_deref(),
            body.name.as_deref().map(str::trim),
            body.address.as_deref().map(str::trim),
            body.active,
        )
        .await?;
        Ok(ok(w))
    }

    /// Deactivate a warehouse (manager): refused (409) while it holds stock.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteWarehouse")]
    async fn deactivate(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// The `ETag` last read; 412 when the warehouse changed since.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> Result<NoContent> {
        change(
            &state,
            id.0,
            if_match.0.as_deref(),
            None,
            None,
            None,
            Some(false),
        )
        .await?;
        Ok(NoContent::NoContent)
    }
}

/// One change to a warehouse, in one transaction, honouring If-Match.
async fn change(
    state: &AppState,
    id: Uuid,
    if_match: Option<&str>,
    code: Option<&str>,
    name: Option<&str>,
    address: Option<&str>,
    active: Option<bool>,
) -> Result<Warehouse> {
    let expected = if_match_version(if_match)?;
    let mut tx = crate::db::begin(&state.db).await?;
    let current = repo::lock(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("warehouse {id}")))?;
    if expected.is_some_and(|v| v != current.version) {
        return Err(ApiError::PreconditionFailed(format!(
            "Warehouse {id} changed since you read it (now version {}); GET it again.",
            current.version
        )));
    }
    if active == Some(false) && current.active {
        let held = repo::units_held(&mut tx, id).await?;
        if held > 0 {
            return Err(ApiError::conflict(
                "warehouse-not-empty",
                format!(
                    "Warehouse {} still holds {held} units; transfer or issue them first.",
                    current.code
                ),
            ));
        }
    }
    let w = repo::update(&mut tx, id, code, name, address, active).await?;
    let topic = if active == Some(false) && current.active {
        "warehouse.deactivated"
    } else {
        "warehouse.updated"
    };
    events::emit(&mut tx, topic, id, json!({"id": id, "version": w.version})).await?;
    tx.commit().await?;
    Ok(w)
}
