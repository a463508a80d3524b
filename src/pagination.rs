//! Keyset (cursor) pagination, shared by every list endpoint.
//!
//! A cursor is the sort key of the last row of a page, serialised as JSON and
//! base64url-encoded so clients treat it as opaque. Keyset pagination (unlike
//! OFFSET) is stable under concurrent inserts and costs the same on page 1000
//! as on page 1. Each list decides its own sort key; this module only carries it.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use poem_openapi::{
    types::{ParseFromJSON, ToJSON},
    Object,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{ApiError, Result};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// One page of a list: `next_cursor` is null on the last page.
#[derive(Debug, Object)]
pub struct Page<T: ParseFromJSON + ToJSON> {
    /// The rows of this page, in the list's stable order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null when there is none.
    pub next_cursor: Option<String>,
}

/// Validated `limit` and decoded `cursor` of a list request.
#[derive(Debug, Clone)]
pub struct PageRequest<K> {
    pub limit: u32,
    pub after: Option<K>,
}

impl<K: DeserializeOwned> PageRequest<K> {
    /// Validates `limit` (1..=500, default 50) and decodes `cursor`.
    pub fn new(limit: Option<u32>, cursor: Option<&str>) -> Result<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(decode(c).ok_or_else(|| {
                ApiError::field(
                    "cursor",
                    "is not a cursor from this list; start again without it",
                )
            })?),
        };
        Ok(Self { limit, after })
    }

    /// Rows to fetch: one more than the page, to learn whether another page exists.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Cuts the extra row off `rows` and builds the page, the cursor taken from
    /// the last row kept.
    pub fn page<R, T>(
        &self,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> K,
        map: impl Fn(R) -> T,
    ) -> Page<T>
    where
        K: Serialize,
        T: ParseFromJSON + ToJSON,
    {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| encode(&key(r)))
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }
}

fn encode<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).expect("cursor keys serialise"))
}

fn decode<K: DeserializeOwned>(cursor: &str) -> Option<K> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_422() {
        let c = encode(&("abc".to_owned(), 7_i64));
        let req = PageRequest::<(String, i64)>::new(Some(10), Some(&c)).unwrap();
        assert_eq!(req.after, Some(("abc".to_owned(), 7)));
        assert!(PageRequest::<(String, i64)>::new(None, Some("!!not-base64")).is_err());
        assert!(PageRequest::<(String, i64)>::new(Some(0), None).is_err());
        assert!(PageRequest::<(String, i64)>::new(Some(501), None).is_err());
        assert_eq!(
            PageRequest::<(String, i64)>::new(None, None).unwrap().limit,
            50
        );
    }

    #[test]
    fn page_reports_more_only_when_there_is_more() {
        let req = PageRequest::<i64>::new(Some(2), None).unwrap();
        let p = req.page(vec![1, 2, 3], |r| *r, |r| r);
        assert_eq!(p.items, vec![1, 2]);
        assert!(p.next_cursor.is_some());
        let p = req.page(vec![1, 2], |r| *r, |r| r);
        assert!(p.next_cursor.is_none());
    }
}
