//! Cursor pagination shared by the list endpoints: opaque cursors (base64 of a small JSON key),
//! page limits, and the `{"items", "next_cursor"}` page shape.

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::http::ApiError;

/// A page of a list: its items and the cursor of the next page (`None` on the last one).
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A whole (unpaged) list.
#[derive(Debug, Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

impl<T> Page<T> {
    /// The page of `rows` fetched with `limit + 1` (the extra row only tells that there is more),
    /// with the cursor `key` gives for its last item.
    pub fn of<R, K: Serialize>(
        mut rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> Option<K>,
        view: impl Fn(R) -> T,
    ) -> Self {
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        let next_cursor = if has_more { rows.last().and_then(&key).map(|k| encode_cursor(&k)) } else { None };
        Page { items: rows.into_iter().map(view).collect(), next_cursor }
    }
}

/// The position key of a row in a list ordered by time then id.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TimeKey {
    pub t: chrono::DateTime<chrono::Utc>,
    pub id: uuid::Uuid,
}

/// An opaque cursor for `key`.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    let json = serde_json::to_vec(key).expect("a cursor key serializes");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The key of a cursor this API returned.
pub fn decode_cursor<K: DeserializeOwned>(s: &str) -> Result<K, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::invalid("invalid_cursor", "the cursor is not one this API returned"))
}

/// The page size asked for: `default` when absent, refused outside `1..=max`.
pub fn limit(l: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match l {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid("invalid_limit", format!("limit must be between 1 and {max}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_a_cursor_only_when_there_is_more() {
        let page = Page::of(vec![1, 2, 3], 2, |r: &i32| Some(*r), |r| r * 10);
        assert_eq!(page.items, [10, 20]);
        assert_eq!(decode_cursor::<i32>(page.next_cursor.as_deref().unwrap()).unwrap(), 2);
        let last = Page::of(vec![1, 2], 2, |r: &i32| Some(*r), |r| r);
        assert!(last.next_cursor.is_none());
        assert!(decode_cursor::<TimeKey>("not a cursor").is_err());
        assert!(limit(Some(0), 50, 200).is_err());
        assert_eq!(limit(None, 50, 200).unwrap(), 50);
    }
}
