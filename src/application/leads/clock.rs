//! The clock lead decisions read (working hours, due times). It is the system clock; a tenant's
//! clock can be moved for tests (`testkit`), so that a lead can arrive "on Saturday night" and its
//! first message wait for Monday's opening, in seconds of real time.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

static OFFSETS: LazyLock<RwLock<HashMap<Uuid, Duration>>> = LazyLock::new(RwLock::default);

/// Now, for `tenant`.
pub fn now(tenant: Uuid) -> DateTime<Utc> {
    let now = Utc::now();
    match OFFSETS.read().unwrap_or_else(|p| p.into_inner()).get(&tenant) {
        Some(offset) => now + *offset,
        None => now,
    }
}

/// Makes `tenant`'s clock read `at` now (and run on from there).
#[cfg(feature = "testkit")]
pub fn set(tenant: Uuid, at: DateTime<Utc>) {
    OFFSETS.write().unwrap_or_else(|p| p.into_inner()).insert(tenant, at - Utc::now());
}
