//! Password hashing with argon2id.
//!
//! Parameters follow the OWASP password storage cheat sheet's argon2id
//! recommendation (19 MiB memory, 2 iterations, 1 lane): about 20-40 ms per hash
//! on this hardware, which is slow for an attacker with a stolen table and
//! still cheap enough for logins. Hashing is CPU-bound, so callers run it via
//! [`hash`]/[`verify`], which move the work to the blocking thread pool and keep
//! the async runtime free.
//!
//! Each hash holds 19 MiB and a core for its duration, so the API runs them
//! through [`HashingGate`]: at most `PASSWORD_HASH_CONCURRENCY` at once (default:
//! the number of cores), the rest queue for `PASSWORD_HASH_QUEUE_MS` and are
//! then answered 503 + Retry-After. A login flood therefore costs a bounded
//! amount of memory and leaves cores for everything else.

use std::sync::OnceLock;

use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// Passwords shorter than this are refused: length is what makes a password strong.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer inputs are refused so a client cannot make us hash megabytes.
pub const MAX_PASSWORD_CHARS: usize = 256;

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password is refused, or None when it is acceptable.
pub fn policy_violation(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Some(format!("must be at least {MIN_PASSWORD_CHARS} characters"))
    } else if chars > MAX_PASSWORD_CHARS {
        Some(format!("must be at most {MAX_PASSWORD_CHARS} characters"))
    } else {
        None
    }
}

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let hash = hasher()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))?;
    Ok(hash.to_string())
}

pub fn verify_blocking(password: &str, hash: &str) -> bool {
    hasher().verify_password(password.as_bytes(), hash).is_ok()
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .context("password hashing task panicked")?
}

pub async fn verify(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || verify_blocking(&password, &hash))
        .await
        .context("password verification task panicked")
}

/// Makes glibc give each hash's 19 MiB back to the OS when it is freed.
///
/// glibc serves large allocations with mmap and unmaps them on free, but after
/// the first such free it raises its threshold to that size, so later 19 MiB
/// blocks come from per-thread arenas and stay resident: measured, 200 logins
/// left the process at 380 MB with only 2 hashes at a time (every blocking
/// thread kept one). Fixing the threshold at 1 MiB keeps RSS at the hashes in
/// flight (bench/README.md). Call once, before any thread starts.
pub fn return_hash_memory_to_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Bounds how many hashes run at once; see the module docs.
pub struct HashingGate {
    slots: tokio::sync::Semaphore,
    queue_timeout: std::time::Duration,
}

impl HashingGate {
    pub fn new(concurrency: usize, queue_timeout: std::time::Duration) -> Self {
        Self {
            slots: tokio::sync::Semaphore::new(concurrency),
            queue_timeout,
        }
    }

    async fn slot(&self) -> crate::error::Result<tokio::sync::SemaphorePermit<'_>> {
        match tokio::time::timeout(self.queue_timeout, self.slots.acquire()).await {
            Ok(permit) => Ok(permit.expect("the semaphore is never closed")),
            Err(_) => {
                tracing::warn!("password hashing queue full");
                Err(crate::error::ApiError::Busy(
                    "Too many sign-ins are being checked at once; retry shortly.",
                ))
            }
        }
    }

    pub async fn hash(&self, password: String) -> crate::error::Result<String> {
        let _slot = self.slot().await?;
        Ok(hash(password).await?)
    }

    pub async fn verify(&self, password: String, hash: String) -> crate::error::Result<bool> {
        let _slot = self.slot().await?;
        Ok(verify(password, hash).await?)
    }
}

/// A real hash of a random password, verified against when the email is
/// unknown so that "no such user" takes as long as "wrong password".
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = uuid::Uuid::new_v4().to_string();
        hash_blocking(&random).expect("hashing a fixed-size input succeeds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_with_the_right_password() {
        let h = hash_blocking("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_blocking("correct horse battery", &h));
        assert!(!verify_blocking("correct horse batterY", &h));
        assert!(!verify_blocking("anything", "not a hash"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(policy_violation("short").is_some());
        assert!(policy_violation("twelve chars").is_none());
        assert!(policy_violation(&"x".repeat(300)).is_some());
    }
}
