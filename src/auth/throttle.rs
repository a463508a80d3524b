//! Login throttling: attempts counted per email and per client address in
//! fixed windows.
//!
//! An attempt is *reserved* (the counters incremented atomically) before the
//! password is checked, and refused when that takes a counter over its limit,
//! so concurrent guesses cannot all slip in before the first failure is
//! counted. A successful login gives its reservation back (and clears the
//! email's counter); a refused one is not counted at all.
//!
//! Counters live in Redis so every replica sees the same numbers. When Redis is
//! down the counts fall back to this process's memory: weaker (per replica)
//! but never "unlimited".

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
    /// `email` must already be normalised (see `auth::email::normalize`), so
    /// every spelling of one address shares its counter.
    pub fn new(email: &str, address: &str) -> Self {
        Self {
            keys: [
                (format!("login:email:{email}"), EMAIL_LIMIT),
                (format!("login:addr:{address}"), ADDRESS_LIMIT),
            ],
        }
    }
}

/// Where one counter of a reservation was incremented.
#[derive(Clone, Copy)]
enum Counted {
    Redis,
    Local,
}

/// A reserved attempt: settle it with [`LoginThrottle::succeeded`], or drop it
/// (a failed attempt stays counted).
#[must_use]
pub struct Reservation {
    counted: [Counted; 2],
}

impl LoginThrottle {
    /// Counts one attempt against every limit of `subject`; Err(seconds until
    /// it may try again) when that is over a limit, with nothing left counted.
    pub async fn reserve(&self, cache: &Cache, subject: &Subject) -> Result<Reservation, u64> {
        let mut counted = [Counted::Local; 2];
        let mut wait: Option<u64> = None;
        for (i, (key, limit)) in subject.keys.iter().enumerate() {
            let (count, ttl) = match cache.incr_window(key, WINDOW).await {
                Some(found) => {
                    counted[i] = Counted::Redis;
                    found
                }
                None => self.local_incr(key),
            };
            if count > *limit {
                wait = Some(wait.unwrap_or(0).max(ttl.max(1)));
            }
        }
        match wait {
            None => Ok(Reservation { counted }),
            Some(secs) => {
                // A refused attempt checks no password, so it does not count.
                for (i, (key, _)) in subject.keys.iter().enumerate() {
                    self.give_back(cache, key, counted[i]).await;
                }
                Err(secs)
            }
        }
    }

    /// A successful login: the email's failures are forgiven and the address
    /// gets its attempt back.
    pub async fn succeeded(&self, cache: &Cache, subject: &Subject, reservation: Reservation) {
        let email = &subject.keys[0].0;
        cache.delete(std::slice::from_ref(email)).await;
        self.local.lock().expect("lock not poisoned").remove(email);
        self.give_back(cache, &subject.keys[1].0, reservation.counted[1])
            .await;
    }

    /// An attempt that never got to check its password (e.g. the hashing
    /// queue was full): nothing counts.
    pub async fn cancel(&self, cache: &Cache, subject: &Subject, reservation: Reservation) {
        for (i, (key, _)) in subject.keys.iter().enumerate() {
            self.give_back(cache, key, reservation.counted[i]).await;
        }
    }

    async fn give_back(&self, cache: &Cache, key: &str, counted: Counted) {
        if let Counted::Redis = counted {
            if cache.decr_window(key).await {
                return;
            }
        }
        let mut map = self.local.lock().expect("lock not poisoned");
        if let Some(entry) = map.get_mut(key) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    /// Increments the in-process counter; returns the new count and seconds left.
    fn local_incr(&self, key: &str) -> (u64, u64) {
        let mut map = self.local.lock().expect("lock not poisoned");
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = map.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        (entry.1, WINDOW.saturating_sub(entry.0.elapsed()).as_secs())
    }
}
