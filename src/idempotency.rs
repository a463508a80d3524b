//! `Idempotency-Key` for mutating POSTs.
//!
//! The key is claimed, per principal, inside the same transaction as the change
//! it protects, and the response is stored in that transaction too. So:
//! - a retry after the first committed finds the stored response and replays it
//!   (same status and body) without touching anything else;
//! - a retry that arrives while the first is still running blocks on the key's
//!   unique index until the first commits, then replays it (we wait rather than
//!   answer 409, so a client never has to retry twice);
//! - if the first attempt fails (any error rolls its transaction back), the key
//!   is free again and a retry simply runs, which is safe because nothing was
//!   applied;
//! - the same key with a different request (method, path or body) is refused
//!   with 422.
//! Keys are kept 24 hours ([`delete_expired`] runs hourly).

use poem_openapi::types::{ParseFromJSON, ToJSON};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    error::{ApiError, Result},
    telemetry,
};

pub const HEADER: &str = "Idempotency-Key";

/// A request that carries an idempotency key.
pub struct Idempotent {
    principal: Uuid,
    key: String,
    hash: Vec<u8>,
}

impl Idempotent {
    /// Prepares the key of a request; None when no key was sent.
    pub fn new<B: ToJSON>(
        principal: Uuid,
        key: Option<&str>,
        route: &str,
        body: &B,
    ) -> Result<Option<Self>> {
        Self::hashed(principal, key, route, |h| {
            // The parsed body, re-serialised with sorted keys: formatting and
            // field order do not make two requests differ.
            let canonical = body.to_json().map(|v| v.to_string()).unwrap_or_default();
            h.update(canonical.as_bytes());
        })
    }

    /// As [`Self::new`] for a text body (a CSV file), hashed as `new` hashes a
    /// `String` (its JSON string form) without copying a large body twice.
    pub fn for_text(
        principal: Uuid,
        key: Option<&str>,
        route: &str,
        text: &str,
    ) -> Result<Option<Self>> {
        Self::hashed(principal, key, route, |h| {
            struct Hasher<'a>(&'a mut Sha256);
            impl std::io::Write for Hasher<'_> {
                fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                    self.0.update(buf);
                    Ok(buf.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            let _ = serde_json::to_writer(Hasher(h), text);
        })
    }

    fn hashed(
        principal: Uuid,
        key: Option<&str>,
        route: &str,
        body: impl FnOnce(&mut Sha256),
    ) -> Result<Option<Self>> {
        let Some(key) = key.map(str::trim) else {
            return Ok(None);
        };
        if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::field(
                HEADER,
                "must be 1-200 visible ASCII characters (a UUID is a good choice)",
            ));
        }
        let mut h = Sha256::new();
        h.update(route.as_bytes());
        h.update([0]);
        body(&mut h);
        Ok(Some(Self {
            principal,
            key: key.to_owned(),
            hash: h.finalize().to_vec(),
        }))
    }

    /// Claims the key in `tx`. Returns the stored response when this request was
    /// already answered.
    pub async fn claim<R: ParseFromJSON>(
        &self,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<Option<R>> {
        let claimed: Option<i32> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys (principal_id, key, request_hash, response_status, response_body)
             VALUES ($1, $2, $3, 0, '') ON CONFLICT DO NOTHING RETURNING 1",
        )
        .bind(self.principal)
        .bind(&self.key)
        .bind(&self.hash)
        .fetch_optional(&mut **tx)
        .await?;
        if claimed.is_some() {
            return Ok(None);
        }
        let (hash, body): (Vec<u8>, Vec<u8>) = sqlx::query_as(
            "SELECT request_hash, response_body FROM idempotency_keys WHERE principal_id = $1 AND key = $2",
        )
        .bind(self.principal)
        .bind(&self.key)
        .fetch_one(&mut **tx)
        .await?;
        if hash != self.hash {
            return Err(ApiError::Unprocessable {
                slug: "idempotency-key-reused",
                detail:
                    "This Idempotency-Key was already used for a different request; use a new key."
                        .into(),
            });
        }
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| anyhow::anyhow!("stored idempotent response is not JSON: {e}"))?;
        let replay = R::parse_from_json(Some(value)).map_err(|e| {
            anyhow::anyhow!(
                "stored idempotent response does not parse: {}",
                e.into_message()
            )
        })?;
        telemetry::metrics().idempotent_replays.add(1, &[]);
        Ok(Some(replay))
    }

    /// Stores the response in the same transaction as the change.
    pub async fn store<R: ToJSON>(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        status: u16,
        response: &R,
    ) -> Result<()> {
        let body = response
            .to_json()
            .map(|v| v.to_string())
            .unwrap_or_default();
        sqlx::query(
            "UPDATE idempotency_keys SET response_status = $3, response_body = $4
             WHERE principal_id = $1 AND key = $2",
        )
        .bind(self.principal)
        .bind(&self.key)
        .bind(status as i16)
        .bind(body.as_bytes())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Claims `idem` (when the request has a key) in `tx`; the stored first answer
/// when this request was already answered.
pub async fn claim<R: ParseFromJSON>(
    idem: &Option<Idempotent>,
    tx: &mut Transaction<'_, Postgres>,
) -> Result<Option<R>> {
    match idem {
        Some(idem) => idem.claim(tx).await,
        None => Ok(None),
    }
}

/// Stores the answer of `idem` (when the request has a key) in `tx`, the
/// transaction of the change.
pub async fn store<R: ToJSON>(
    idem: &Option<Idempotent>,
    tx: &mut Transaction<'_, Postgres>,
    status: u16,
    response: &R,
) -> Result<()> {
    match idem {
        Some(idem) => idem.store(tx, status, response).await,
        None => Ok(()),
    }
}

/// The fingerprint body of a request that has none (e.g. `POST .../complete`):
/// its route, which holds the id, is what tells two such requests apart.
pub const NO_BODY: serde_json::Value = serde_json::Value::Null;

/// Forgets keys older than 24 hours, at most `batch` per statement
/// ([`crate::db::delete_in_batches`]).
pub async fn delete_expired(db: &PgPool, batch: i64) -> Result<u64, sqlx::Error> {
    crate::db::delete_in_batches(batch, |limit| async move {
        // By ctid: the oldest keys by `idempotency_keys_created_idx`, then
        // those very rows (a key rewritten meanwhile is skipped, not lost).
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM idempotency_keys
                 WHERE created_at < now() - interval '24 hours'
                 ORDER BY created_at LIMIT $1))",
        )
        .bind(limit)
        .execute(db)
        .await?;
        Ok(done.rows_affected())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::Idempotent;

    #[test]
    fn a_text_body_hashes_as_the_same_string_through_new() {
        let text =
            "sku,name\nA-1,\"Quote \"\" and, comma\"\r\nB-2,Ünïcødé\ttab \\ \u{1d}\n".to_owned();
        let id = uuid::Uuid::nil();
        let a = Idempotent::new(id, Some("k"), "POST /x", &text)
            .unwrap()
            .unwrap();
        let b = Idempotent::for_text(id, Some("k"), "POST /x", &text)
            .unwrap()
            .unwrap();
        assert_eq!(a.hash, b.hash);
    }
}
