//! `aisales privacy migrate`: seals the customer data of events stored before sealing existed.
//!
//! The one documented exception to the immutability of events (`docs/privacy.md`): only the
//! customer-data strings of a payload change, each into the envelope that opens to the same text,
//! so every reader sees exactly what it saw before and `projections verify` stays clean. Sequence,
//! position, type, version, metadata and time stay as they were.
//!
//! It walks the events of the aggregates that hold customer data in `global_position` order, in
//! batches, each batch in its own transaction. Progress is kept in `privacy_migration`, so an
//! interrupted run goes on from where it stopped, and a finished one finds nothing to do; an event
//! sealed already (by the store, or by an earlier run) is left alone. A customer or lead erased
//! before the migration gets `[erased]` in place of its data.

use std::collections::HashMap;

use aisales_domain::codec::EventSchema;
use aisales_domain::conversation::ConversationEvent;
use aisales_domain::lead::LeadEvent;
use aisales_domain::pii::{ERASED, for_each_pii};
use aisales_projections::pii::{self, Subject};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// What a run did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub scanned: u64,
    pub sealed: u64,
    pub batches: u64,
    /// Global position the run reached.
    pub position: i64,
}

/// The progress row's name.
const PROGRESS: &str = "seal-customer-data";

type Row = (i64, String, String, i64, String, String, Option<Uuid>);

/// Seals every event not sealed yet, `batch` events at a time; `progress` is called after each
/// batch.
pub async fn run(pool: &PgPool, batch: i64, mut progress: impl FnMut(&Report)) -> anyhow::Result<Report> {
    let mut report = Report {
        position: sqlx::query_scalar("SELECT global_position FROM privacy_migration WHERE name = $1")
            .bind(PROGRESS)
            .fetch_optional(pool)
            .await?
            .unwrap_or(0),
        ..Report::default()
    };
    // Conversation id → its customer (and tenant), read once per conversation.
    let mut customers: HashMap<String, Option<(Uuid, Uuid)>> = HashMap::new();
    loop {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, payload::text, tenant_id \
               FROM events WHERE global_position > $1 AND aggregate_type IN ('conversation', 'lead') \
              ORDER BY global_position LIMIT $2",
        )
        .bind(report.position)
        .bind(batch.max(1))
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last().map(|r| r.0) else { break };
        let mut tx = pool.begin().await?;
        for (_, aggregate_type, aggregate_id, sequence, event_type, payload, tenant) in rows {
            report.scanned += 1;
            let paths = match aggregate_type.as_str() {
                "conversation" => ConversationEvent::pii_paths(&event_type),
                _ => LeadEvent::pii_paths(&event_type),
            };
            if paths.is_empty() || pii::is_sealed(&payload) {
                continue;
            }
            let subject = match aggregate_type.as_str() {
                "conversation" => {
                    if !customers.contains_key(&aggregate_id) {
                        let found = customer_of(pool, &aggregate_id).await?;
                        customers.insert(aggregate_id.clone(), found);
                    }
                    customers[&aggregate_id].map(|(tenant_id, id)| Subject {
                        tenant_id,
                        id,
                        kind: "customer",
                        erased: false,
                    })
                }
                _ => match (tenant, aggregate_id.parse()) {
                    (Some(tenant_id), Ok(id)) => Some(Subject { tenant_id, id, kind: "lead", erased: false }),
                    _ => None,
                },
            };
            let Some(subject) = subject else { continue };
            let mut value: serde_json::Value = serde_json::from_str(&payload)?;
            pii::seal(pool, &subject, &event_type, paths, &mut value).await?;
            let sealed = value.to_string();
            if sealed != payload {
                sqlx::query(
                    "UPDATE events SET payload = $4::json \
                      WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
                )
                .bind(&aggregate_type)
                .bind(&aggregate_id)
                .bind(sequence)
                .bind(&sealed)
                .execute(&mut *tx)
                .await?;
                report.sealed += 1;
            }
        }
        sqlx::query(
            "INSERT INTO privacy_migration (name, global_position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET global_position = EXCLUDED.global_position, updated_at = now()",
        )
        .bind(PROGRESS)
        .bind(last)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        report.position = last;
        report.batches += 1;
        progress(&report);
    }
    Ok(report)
}

/// The tenant and customer of a conversation, from its first event.
async fn customer_of(pool: &PgPool, conversation: &str) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT payload->'ConversationStarted'->>'tenant_id', payload->'ConversationStarted'->>'customer_id' \
           FROM events WHERE aggregate_type = 'conversation' AND aggregate_id = $1 AND sequence = 1",
    )
    .bind(conversation)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(t, c)| Some((t?.parse().ok()?, c?.parse().ok()?))))
}

/// Writes `[erased]` over the customer data of the events of `ids` (of `aggregate_type`) that is
/// stored in clear: events stored before sealing existed, and clear strings beside sealed ones (an
/// event an older release wrote in part, or one written straight into the log). Sealed strings
/// are left as they are: they read `[erased]` once the key is gone. Erasing a customer must not
/// leave any of their data in clear. Returns how many events changed.
pub async fn erase_unsealed(pool: &PgPool, aggregate_type: &str, ids: &[Uuid]) -> anyhow::Result<u64> {
    let keys: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let rows: Vec<(String, i64, String, String)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, event_type, payload::text FROM events \
          WHERE aggregate_type = $1 AND aggregate_id = ANY($2) ORDER BY aggregate_id, sequence",
    )
    .bind(aggregate_type)
    .bind(&keys)
    .fetch_all(pool)
    .await?;
    let mut changed = 0;
    let mut tx = pool.begin().await?;
    for (aggregate_id, sequence, event_type, payload) in rows {
        let paths = match aggregate_type {
            "conversation" => ConversationEvent::pii_paths(&event_type),
            _ => LeadEvent::pii_paths(&event_type),
        };
        if paths.is_empty() {
            continue;
        }
        let mut value: serde_json::Value = serde_json::from_str(&payload)?;
        let mut cleared = false;
        for_each_pii(&mut value, paths, &mut |_, s| {
            if !s.starts_with(pii::MARK) && s != ERASED {
                *s = ERASED.to_string();
                cleared = true;
            }
        });
        if cleared {
            sqlx::query("UPDATE events SET payload = $4::json WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3")
                .bind(aggregate_type)
                .bind(&aggregate_id)
                .bind(sequence)
                .bind(value.to_string())
                .execute(&mut *tx)
                .await?;
            changed += 1;
        }
    }
    tx.commit().await?;
    Ok(changed)
}
