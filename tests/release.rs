//! What `scripts/deploy.sh rollback` relies on: a release starts on a schema
//! that the next release already migrated (migrations are backwards
//! compatible for one release; README, "Releases and rollback").

use sqlx::PgPool;

#[sqlx::test]
async fn the_previous_release_starts_on_a_schema_with_newer_migrations(db: PgPool) {
    // The test database has this build's migrations; add one from "the next release".
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)
         VALUES (99990101000000, 'from the next release', now(), true, '\\x00', 1)",
    )
    .execute(&db)
    .await
    .unwrap();
    inventory_api::db::migrate(&db)
        .await
        .expect("serve and migrate accept migrations newer than the binary");
}
