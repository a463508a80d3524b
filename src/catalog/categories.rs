//! Categories: a tree of names to group products. Sibling names are unique and
//! the tree has no cycles; both rules live in the database
//! (`categories_sibling_name_key`, trigger `categories_no_cycle`).

use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    types::MaybeUndefined,
    OpenApi,
};
use uuid::Uuid;

use super::model::{Category, CreateCategory, UpdateCategory};
use crate::{
    auth::principal::{ManagerAuth, ViewerAuth},
    error::{ApiError, Result, Validation},
    idempotency::{self, Idempotent},
    pagination::{Page, PageRequest},
    responses::{Created, NoContent},
    state::AppState,
    Tags,
};

const COLUMNS: &str = "id, name, parent_id, created_at, updated_at";

fn check_name(v: &mut Validation, name: &str) {
    v.check(
        (1..=100).contains(&name.trim().chars().count()),
        "name",
        "must be 1-100 characters",
    );
}

async fn get(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Category> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM categories WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("category {id}")))
}

/// A parent that does not exist is a field error, not a generic one.
async fn check_parent(db: &sqlx::PgPool, parent: Option<Uuid>) -> Result<()> {
    if let Some(parent) = parent {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM categories WHERE id = $1)")
                .bind(parent)
                .fetch_one(db)
                .await?;
        if !exists {
            return Err(ApiError::field("parent_id", "no category with this id"));
        }
    }
    Ok(())
}

pub struct CategoriesApi;

#[OpenApi(prefix_path = "/api/v1/categories", tag = "Tags::Categories")]
impl CategoriesApi {
    /// List categories (viewer), by name.
    #[oai(path = "/", method = "get", operation_id = "listCategories")]
    async fn list(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        /// Only the children of this category.
        parent_id: Query<Option<Uuid>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Category>>> {
        let page = PageRequest::<(String, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let (name, id) = page.after.clone().unzip();
        let rows: Vec<Category> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM categories
             WHERE ($1::uuid IS NULL OR parent_id = $1)
               AND ($2::text IS NULL OR (lower(name), id) > ($2, $3))
             ORDER BY lower(name), id LIMIT $4"
        )))
        .bind(parent_id.0)
        .bind(name)
        .bind(id)
        .bind(page.fetch())
        .fetch_all(&state.db)
        .await?;
        Ok(Json(page.page(
            rows,
            |c| (c.name.to_lowercase(), c.id),
            |c| c,
        )))
    }

    /// Create a category (manager).
    #[oai(path = "/", method = "post", operation_id = "createCategory")]
    async fn create(
        &self,
        auth: ManagerAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<CreateCategory>,
    ) -> Result<Created<Category>> {
        let idem = Idempotent::new(
            auth.0.id(),
            key.0.as_deref(),
            "POST /api/v1/categories",
            &body.0,
        )?;
        let mut v = Validation::new();
        check_name(&mut v, &body.name);
        v.finish()?;
        check_parent(&state.db, body.parent_id).await?;
        let mut tx = crate::db::begin(&state.db).await?;
        if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
            return Ok(Created::new(first));
        }
        let c: Category = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO categories (name, parent_id) VALUES ($1, $2) RETURNING {COLUMNS}"
        )))
        .bind(body.name.trim())
        .bind(body.parent_id)
        .fetch_one(&mut *tx)
        .await?;
        idempotency::store(&idem, &mut tx, 201, &c).await?;
        tx.commit().await?;
        Ok(Created::new(c))
    }

    /// One category (viewer).
    #[oai(path = "/:id", method = "get", operation_id = "getCategory")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<Category>> {
        Ok(Json(get(&state.db, id.0).await?))
    }

    /// Rename or move a category (manager). A category cannot move under itself
    /// or its descendants (422).
    #[oai(path = "/:id", method = "patch", operation_id = "updateCategory")]
    async fn update(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<UpdateCategory>,
    ) -> Result<Json<Category>> {
        let mut v = Validation::new();
        if let Some(name) = &body.name {
            check_name(&mut v, name);
        }
        v.finish()?;
        let current = get(&state.db, id.0).await?;
        let parent = match &body.parent_id {
            MaybeUndefined::Undefined => current.parent_id,
            MaybeUndefined::Null => None,
            MaybeUndefined::Value(p) => Some(*p),
        };
        check_parent(&state.db, parent).await?;
        let c: Category = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE categories SET name = $2, parent_id = $3, version = version + 1
             WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(id.0)
        .bind(body.name.as_deref().map(str::trim).unwrap_or(&current.name))
        .bind(parent)
        .fetch_one(&state.db)
        .await?;
        Ok(Json(c))
    }

    /// Delete a category (manager). Refused (409) while products or
    /// subcategories use it; the detail says how many.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteCategory")]
    async fn delete(
        &self,
        _auth: ManagerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<NoContent> {
        let mut tx = crate::db::begin(&state.db).await?;
        // Lock the category so no product is filed under it between the count and the delete.
        let found: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM categories WHERE id = $1 FOR UPDATE")
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Err(ApiError::not_found(format!("category {}", id.0)));
        }
        let (products, children): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM products WHERE category_id = $1),
                    (SELECT count(*) FROM categories WHERE parent_id = $1)",
        )
        .bind(id.0)
        .fetch_one(&mut *tx)
        .await?;
        if products > 0 || children > 0 {
            return Err(ApiError::conflict(
                "category-in-use",
                format!(
                    "The category still has {products} product(s) and {children} subcategory(ies); \
                     move them first."
                ),
            ));
        }
        sqlx::query("DELETE FROM categories WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(NoContent::NoContent)
    }
}
