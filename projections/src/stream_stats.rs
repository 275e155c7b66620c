//! `stream_stats`: per aggregate, how many events were applied and the highest sequence seen.
//!
//! A small projector that every deployment runs. Because it counts, a lost or doubly applied
//! event shows as `events != last_sequence`, which `projections verify` and the crash tests check.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::events::StoredEvent;
use crate::projector::{Projector, Target};

/// Projector of the `stream_stats` table.
#[derive(Debug, Clone, Copy)]
pub struct StreamStats {
    target: Target,
    name: &'static str,
}

impl StreamStats {
    pub fn new(target: Target) -> Self {
        StreamStats { target, name: target.name("stream_stats") }
    }
}

impl Default for StreamStats {
    fn default() -> Self {
        StreamStats::new(Target::LIVE)
    }
}

struct Acc {
    tenant: Option<Uuid>,
    events: i64,
    last_sequence: i64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

#[async_trait]
impl Projector for StreamStats {
    fn name(&self) -> &'static str {
        self.name
    }

    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(StreamStats::new(target)))
    }

    fn description(&self) -> &'static str {
        "events and last sequence per aggregate"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["stream_stats"]
    }

    fn batch_size(&self) -> i64 {
        5000
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let mut acc: HashMap<(&str, &str), Acc> = HashMap::new();
        for e in events {
            acc.entry((e.aggregate_type.as_str(), e.aggregate_id.as_str()))
                .and_modify(|a| {
                    a.events += 1;
                    a.last_sequence = a.last_sequence.max(e.sequence);
                    a.last = e.recorded_at;
                    a.tenant = a.tenant.or(e.tenant_id);
                })
                .or_insert(Acc {
                    tenant: e.tenant_id,
                    events: 1,
                    last_sequence: e.sequence,
                    first: e.recorded_at,
                    last: e.recorded_at,
                });
        }
        let n = acc.len();
        let (mut types, mut ids, mut tenants, mut counts, mut seqs, mut firsts, mut lasts) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for ((t, id), a) in acc {
            types.push(t);
            ids.push(id);
            tenants.push(a.tenant);
            counts.push(a.events);
            seqs.push(a.last_sequence);
            firsts.push(a.first);
            lasts.push(a.last);
        }
        sqlx::query(&format!(
            "INSERT INTO {} AS s (aggregate_type, aggregate_id, tenant_id, events, last_sequence, first_recorded, last_recorded) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::bigint[], $5::bigint[], $6::timestamptz[], $7::timestamptz[]) \
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET \
               events = s.events + EXCLUDED.events, \
               last_sequence = GREATEST(s.last_sequence, EXCLUDED.last_sequence), \
               tenant_id = COALESCE(s.tenant_id, EXCLUDED.tenant_id), \
               last_recorded = GREATEST(s.last_recorded, EXCLUDED.last_recorded)",
            self.target.table("stream_stats")
        ))
        .bind(&types)
        .bind(&ids)
        .bind(&tenants)
        .bind(&counts)
        .bind(&seqs)
        .bind(&firsts)
        .bind(&lasts)
        .execute(conn)
        .await?;
        Ok(())
    }
}
