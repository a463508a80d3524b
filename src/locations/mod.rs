//! Locations (bins): the tree of places inside a warehouse where stock sits.
//!
//! Every warehouse has a `DEFAULT` location, created with it by a trigger;
//! movements that name no location use it, so it cannot be deleted, recoded
//! or deactivated. Paths and cycle refusal live in the database (triggers);
//! this module only validates input and says why a change is refused. It does
//! not move stock: positions are the movement engine's (`src/stock/`).

pub mod model;
pub mod repo;

use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    types::MaybeUndefined,
    OpenApi,
};
use serde_json::json;
use uuid::Uuid;

use self::model::{CreateLocation, Location, UpdateLocation};
use crate::{
    auth::principal::{ManagerAuth, ViewerAuth},
    error::{ApiError, Result, Validation},
    events,
    idempotency::{self, claim, Idempotent},
    pagination::{Page, PageRequest},
    responses::{Created, NoContent},
    state::AppState,
    warehouses::valid_code,
    Tags,
};

fn valid_barcode(barcode: &str) -> bool {
    (1..=128).contains(&barcode.len()) && barcode.bytes().all(|b| (b' '..=b'~').contains(&b))
}

fn check_fields(v: &mut Validation, code: Option<&str>, name: Option<&str>, barcode: Option<&str>) {
    if let Some(code) = code {
        v.check(
            valid_code(code),
            "code",
            "1-32 characters: letters, digits, '.', '_', '-'; starting with a letter or digit",
        );
    }
    if let Some(name) = name {
        v.check(
            name.trim().chars().count() <= 200,
            "name",
            "must be at most 200 characters",
        );
    }
    if let Some(barcode) = barcode {
        v.check(
            valid_barcode(barcode.trim()),
            "barcode",
            "1-128 printable ASCII characters",
        );
    }
}

/// A parent must be a location of the same warehouse. The composite foreign
/// key holds this for a parent in another warehouse; an unknown parent would
/// only surface as a NULL path from the path trigger, hence the check here.
async fn check_parent(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    parent: Option<Uuid>,
    warehouse_id: Uuid,
) -> Result<()> {
    if let Some(parent) = parent {
        if !repo::in_warehouse(tx, parent, warehouse_id).await? {
            return Err(ApiError::field(
                "parent_id",
                "no location with this id in this warehouse",
            ));
        }
    }
    Ok(())
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::not_found(format!("location {id}"))
}

fn default_location(what: &str) -> ApiError {
    ApiError::conflict(
        "default-location",
        format!(
            "The DEFAULT location is where movements without a location go; it cannot be {what}."
        ),
    )
}

pub struct LocationsApi;

#[OpenApi(tag = "Tags::Locations")]
impl LocationsApi {
    /// A warehouse's locations (viewer), in tree order (by path).
    #[oai(
        path = "/api/v1/warehouses/:id/locations",
        method = "get",
        operation_id = "listLocations"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        /// The warehouse (UUID).
        id: Path<Uuid>,
        /// Only active (true) or only inactive (false) locations.
        active: Query<Option<bool>>,
        /// Case-insensitive text anywhere in the path (any ancestor's code) or the name.
        q: Query<Option<String>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Location>>> {
        let page = PageRequest::<(String, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        if crate::warehouses::repo::get(&state.db, id.0)
            .await?
            .is_none()
        {
            return Err(ApiError::not_found(format!("warehouse {}", id.0)));
        }
        let filter = repo::LocationFilter {
            active: active.0,
            q: q.0,
        };
        let rows = repo::list(&state.db, id.0, &filter, page.after.clone(), page.fetch()).await?;
        Ok(Json(page.page(
            rows,
            |l| (l.path.to_lowercase(), l.id),
            |l| l,
        )))
    }

    /// Create a location in a warehouse (manager). Its `parent_id` must be a
    /// location of the same warehouse.
    #[oai(
        path = "/api/v1/warehouses/:id/locations",
        method = "post",
        operation_id = "createLocation"
    )]
    async fn create(
        &self,
        auth: ManagerAuth,
        state: Data<&AppState>,
        /// The warehouse (UUID).
        id: Path<Uuid>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<CreateLocation>,
    ) -> Result<Created<Location>> {
        let idem = Idempotent::new(
            auth.0.id(),
            key.0.as_deref(),
            &format!("POST /api/v1/warehouses/{}/locations", id.0),
            &body.0,
        )?;
        let barcode = body.barcode.as_deref().map(str::trim);
        let mut v = Validation::new();
        check_fields(&mut v, Some(&body.code), Some(&body.name), barcode);
        v.finish()?;
        let mut tx = crate::db::begin(&state.db).await?;
        if let Some(first) = claim::<Location>(&idem, &mut tx).await? {
            return Ok(Created::new(first));
        }
        if crate::warehouses::repo::get(&mut *tx, id.0)
            .await?
            .is_none()
        {
            return Err(ApiError::not_found(format!("warehouse {}", id.0)));
        }
        check_parent(&mut tx, body.parent_id, id.0).await?;
        let l = repo::insert(
            &mut tx,
            id.0,
            &body.code,
            body.name.trim(),
            body.parent_id,
            barcode,
        )
        .await?;
        events::emit(
            &mut tx,
            "location.created",
            l.id,
            json!({"id": l.id, "warehouse_id": l.warehouse_id, "code": l.code, "path": l.path}),
        )
        .await?;
        idempotency::store(&idem, &mut tx, 201, &l).await?;
        tx.commit().await?;
        Ok(Created::new(l))
    }

    /// The location a scanner label names (viewer).
    #[oai(
        path = "/api/v1/locations/by-barcode/:barcode",
        method = "get",
        operation_id = "getLocationByBarcode"
    )]
    async fn by_barcode(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        /// The location's barcode, as printed on its label.
        barcode: Path<String>,
    ) -> Result<Json<Location>> {
        let l = repo::by_barcode(&state.db, barcode.0.trim())
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("a location with barcode {:?}", barcode.0))
            })?;
        Ok(Json(l))
    }

    /// One location (viewer).
    #[oai(
        path = "/api/v1/locations/:id",
        method = "get",
        operation_id = "getLocation"
    )]
    async fn get(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<Location>> {
        let l = repo::get(&state.db, id.0)
            .await?
            .ok_or_else(|| not_found(id.0))?;
        Ok(Json(l))
    }

    /// Change a location (manager): recode, rename, move under another parent
    /// of its warehouse (the paths below follow), relabel, (de)activate.
    /// Deactivating a location that holds stock is refused (409
    /// `location-not-empty`); the DEFAULT location keeps its code and stays active.
    #[oai(
        path = "/api/v1/locations/:id",
        method = "patch",
        operation_id = "updateLocation"
    )]
    async fn update(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<UpdateLocation>,
    ) -> Result<Json<Location>> {
        let barcode = match &body.barcode {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(b) => Some(Some(b.trim())),
        };
        let parent = match body.parent_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(p) => Some(Some(p)),
        };
        let mut v = Validation::new();
        check_fields(
            &mut v,
            body.code.as_deref(),
            body.name.as_deref(),
            barcode.flatten(),
        );
        v.finish()?;
        let mut tx = crate::db::begin(&state.db).await?;
        let current = repo::lock(&mut tx, id.0)
            .await?
            .ok_or_else(|| not_found(id.0))?;
        if current.is_default() {
            if body.code.as_deref().is_some_and(|c| c != current.code) {
                return Err(default_location("recoded"));
            }
            if body.active == Some(false) {
                return Err(default_location("deactivated"));
            }
        }
        check_parent(&mut tx, parent.flatten(), current.warehouse_id).await?;
        let deactivating = body.active == Some(false) && current.active;
        if deactivating {
            refuse_if_holding(&mut tx, &current).await?;
        }
        let l = repo::update(
            &mut tx,
            id.0,
            body.code.as_deref(),
            body.name.as_deref().map(str::trim),
            parent,
            barcode,
            body.active,
        )
        .await?;
        let topic = if deactivating {
            "location.deactivated"
        } else {
            "location.updated"
        };
        events::emit(
            &mut tx,
            topic,
            l.id,
            json!({"id": l.id, "warehouse_id": l.warehouse_id, "code": l.code, "path": l.path}),
        )
        .await?;
        tx.commit().await?;
        Ok(Json(l))
    }

    /// Delete a location (manager). Refused (409 `location-not-empty`) while it
    /// holds stock, has sub-locations, or has a history (stock ever moved or
    /// was counted there: deactivate it instead); the DEFAULT location cannot
    /// be deleted.
    #[oai(
        path = "/api/v1/locations/:id",
        method = "delete",
        operation_id = "deleteLocation"
    )]
    async fn delete(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<NoContent> {
        let mut tx = crate::db::begin(&state.db).await?;
        let current = repo::lock(&mut tx, id.0)
            .await?
            .ok_or_else(|| not_found(id.0))?;
        if current.is_default() {
            return Err(default_location("deleted"));
        }
        refuse_if_holding(&mut tx, &current).await?;
        let refs = repo::references(&mut tx, id.0).await?;
        if refs.children {
            return Err(ApiError::conflict(
                "location-not-empty",
                format!(
                    "Location {} has sub-locations; move or delete them first.",
                    current.path
                ),
            ));
        }
        if refs.history {
            return Err(ApiError::conflict(
                "location-not-empty",
                format!(
                    "Stock has moved through location {}; its history must keep it, so \
                     deactivate it instead (PATCH active: false).",
                    current.path
                ),
            ));
        }
        repo::delete(&mut tx, id.0).await?;
        events::emit(
            &mut tx,
            "location.deleted",
            id.0,
            json!({"id": id.0, "warehouse_id": current.warehouse_id, "code": current.code}),
        )
        .await?;
        tx.commit().await?;
        Ok(NoContent::NoContent)
    }
}

/// 409 `location-not-empty` while any position at the location holds stock.
async fn refuse_if_holding(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    location: &Location,
) -> Result<()> {
    let held = repo::units_held(tx, location.id).await?;
    if held > 0 {
        return Err(ApiError::conflict(
            "location-not-empty",
            format!(
                "Location {} still holds {held} units; transfer or issue them first.",
                location.path
            ),
        ));
    }
    Ok(())
}
