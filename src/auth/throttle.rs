//! Login throttling: failed attempts counted per email and per client address
//! in fixed windows.
//!
//! Counters live in Redis so every replica sees the same numbers. When Redis is
//! down the counts fall back to this process's memory: weaker (per replica)
//! but never "unlimited". Successful logins clear the email's counter.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::cache::Cache;

/// Failed attempts allowed per email in one window.
pub const EMAIL_LIMIT: u64 = 5;
/// Failed attempts allowed per client address in one window (a shop behind one
/// NAT address has several people signing in).
pub const ADDRESS_LIMIT: u64 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct LoginThrottle {
    local: Mutex<HashMap<String, (Instant, u64)>>,
}

/// The counters for one login attempt.
pub struct Subject {
    keys: [(String, u64); 2],
}

impl Subject {
    pub fn new(email: &str, address: &str) -> Self {
        Self {
            keys: [
                (format!("login:email:{}", email.to_lowercase()), EMAIL_LIMIT),
                (format!("login:addr:{address}"), ADDRESS_LIMIT),
            ],
        }
    }
}

impl LoginThrottle {
    /// Seconds until the subject may try again, when it is over a limit.
    pub async fn retry_after(&self, cache: &Cache, subject: &Subject) -> Option<u64> {
        let mut wait = None;
        for (key, limit) in &subject.keys {
            let (count, ttl) = match cache.counter(key).await {
                Some(found) => found,
                None => self.local_count(key),
            };
            if count >= *limit {
                wait = Some(wait.unwrap_or(0).max(ttl.max(1)));
            }
        }
        wait
    }

    pub async fn record_failure(&self, cache: &Cache, subject: &Subject) {
        for (key, _) in &subject.keys {
            if cache.incr_window(key, WINDOW).await.is_none() {
                self.local_incr(key);
            }
        }
    }

    pub async fn record_success(&self, cache: &Cache, subject: &Subject) {
        let key = &subject.keys[0].0;
        cache.delete(std::slice::from_ref(key)).await;
        self.local.lock().expect("lock not poisoned").remove(key);
    }

    fn local_count(&self, key: &str) -> (u64, u64) {
        let map = self.local.lock().expect("lock not poisoned");
        match map.get(key) {
            Some((start, count)) if start.elapsed() < WINDOW => {
                (*count, (WINDOW - start.elapsed()).as_secs())
            }
            _ => (0, 0),
        }
    }

    fn local_incr(&self, key: &str) {
        let mut map = self.local.lock().expect("lock not poisoned");
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = map.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}
