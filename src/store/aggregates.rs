//! How each aggregate is kept in the store.

use super::{StoredAggregate, Subject};

impl StoredAggregate for aisales_domain::conversation::Conversation {
    const SNAPSHOT_EVERY: i64 = 100;
    // 2: vehicle lookups of the conversation are part of the state.
    // 3: recent provider message ids are kept as keys (`provider_key`).
    // 4: sent replies keep no text.
    // 5: replies know when they may be sent (`not_before`).
    // 6: the leads answered in the conversation.
    const STATE_VERSION: i32 = 6;

    /// The conversation's customer.
    fn data_subject(&self, _aggregate_id: &str) -> Option<Subject> {
        self.started.then_some(Subject {
            tenant_id: self.tenant_id,
            id: self.customer_id,
            kind: "customer",
            erased: self.erased,
        })
    }
}

impl StoredAggregate for aisales_domain::lead::Lead {
    // A lead has a dozen events, more with repeated submissions.
    const SNAPSHOT_EVERY: i64 = 50;

    /// The lead itself: its customer may not be known yet (a lead is sealed with a key of its own,
    /// erased together with the customer it reached).
    fn data_subject(&self, aggregate_id: &str) -> Option<Subject> {
        self.status?;
        Some(Subject { tenant_id: self.tenant_id, id: aggregate_id.parse().ok()?, kind: "lead", erased: self.erased })
    }
}

impl StoredAggregate for aisales_domain::vehicle_lookup::VehicleLookup {
    // A lookup has a few dozen events at most.
    const SNAPSHOT_EVERY: i64 = 50;
}

impl StoredAggregate for aisales_domain::probe::Probe {
    // A probe has two events; snapshots would never pay off.
    const SNAPSHOT_EVERY: i64 = i64::MAX;
}

impl StoredAggregate for aisales_domain::price_lookup::PriceLookup {
    // A round has a dozen events (a source each, a page's listings each); a lookup lives through
    // a round a week at most.
    const SNAPSHOT_EVERY: i64 = 50;
}
