//! Scans posted by a signed-in user (the web console's Scan page).
//!
//! They must follow exactly the rules of handheld scans, so they go through
//! the same engine ([`super::events::process`]). That engine keys scan events
//! by device (duplicate detection, the ledger's actor, count lines), so each
//! user gets one device row of their own, created on first use, whose key is
//! random and never shown: nobody can authenticate as it. A user may scan in
//! every warehouse; the engine still refuses inactive ones.

use uuid::Uuid;

use crate::{
    auth::token,
    error::{ApiError, Result},
    state::AppState,
};

/// The console device of `user`, created on first use, and every warehouse id.
pub async fn console_device(state: &AppState, user: Uuid) -> Result<(Uuid, Vec<Uuid>)> {
    let existing: Option<(Uuid, bool)> =
        sqlx::query_as("SELECT id, revoked_at IS NOT NULL FROM devices WHERE console_user_id = $1")
            .bind(user)
            .fetch_optional(&state.db)
            .await?;
    let (device, revoked) = match existing {
        Some(found) => found,
        // First scan: create it. Two first scans at once both get the one row
        // (the no-op update makes RETURNING answer on conflict too).
        None => {
            let unusable_key = token::random_secret(token::DEVICE_KEY_PREFIX);
            sqlx::query_as(
                "INSERT INTO devices (name, key_prefix, key_hash, created_by, console_user_id)
                 SELECT left('Console: ' || u.email, 100), 'console', $2, u.id, u.id
                 FROM users u WHERE u.id = $1
                 ON CONFLICT (console_user_id) DO UPDATE SET console_user_id = EXCLUDED.console_user_id
                 RETURNING id, revoked_at IS NOT NULL",
            )
            .bind(user)
            .bind(token::sha256(&unusable_key))
            .fetch_one(&state.db)
            .await?
        }
    };
    if revoked {
        // A manager revoked this user's console device in the device list.
        return Err(ApiError::Forbidden(
            "Console scanning was revoked for this user (its device is revoked).".into(),
        ));
    }
    let warehouses: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM warehouses ORDER BY id")
        .fetch_all(&state.db)
        .await?;
    Ok((device, warehouses))
}
