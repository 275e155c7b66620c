//! A small time-bounded cache for values read often and changed rarely (tenants, accounts,
//! secrets): an entry is used for at most its time to live, then read again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bounded map whose entries expire `ttl` after they were put.
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    capacity: usize,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        TtlCache { entries: Mutex::new(HashMap::new()), capacity, ttl }
    }

    /// The value, unless absent or expired.
    pub fn get(&self, k: &K) -> Option<V> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(k).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    pub fn remove(&self, k: &K) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(k);
    }

    /// Stores a value; when full, expired entries go first, and everything if none has expired.
    pub fn put(&self, k: K, v: V) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity {
            map.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(k, (Instant::now(), v));
    }
}
