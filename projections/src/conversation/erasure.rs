//! Erased customers in the read models.
//!
//! Erasing a customer destroys their data key: from then on every customer-data field of their
//! events ([`aisales_domain::pii`]) reads [`ERASED`], so a rebuild folds those events into rows
//! holding `[erased]` wherever the customer's data was, with every value derived from it (previews,
//! search text, the first name a message gave) derived from `[erased]` too. The erasure event
//! (`CustomerErased` of a conversation, `LeadErased` of a lead) makes a projector write the same
//! rows live: after the batch, it folds the erased aggregate's events again, as they read now, and
//! writes the rows that gives over the ones it holds. Folding again rather than overwriting columns
//! keeps every derived value exactly what a rebuild derives, whatever the declarations say is
//! customer data.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

use aisales_domain::codec::EventSchema;
use aisales_domain::conversation::ConversationEvent as E;
use aisales_domain::pii::{ERASED, for_each_pii};
use sqlx::PgConnection;
use uuid::Uuid;

use super::projection::{Change, Feed, RowFold, RowOf, apply_batch, record_changes};
use super::{Decoded, decode};
use crate::events::{self, StoredEvent};
use crate::projector::Target;
use crate::rows;

/// `event` as it reads once its customer's key is destroyed: every customer-data field `S`
/// declares for its type reads [`ERASED`].
pub fn erased<S: EventSchema>(event: StoredEvent) -> anyhow::Result<StoredEvent> {
    let paths = S::pii_paths(&event.event_type);
    if paths.is_empty() {
        return Ok(event);
    }
    let mut payload: serde_json::Value = serde_json::from_str(&event.payload)?;
    for_each_pii(&mut payload, paths, &mut |_, s| *s = ERASED.to_string());
    Ok(StoredEvent::new(
        event.position(),
        &event.aggregate_type,
        &event.aggregate_id,
        event.sequence,
        &event.event_type,
        &event.event_version,
        payload.to_string(),
        event.metadata,
        event.recorded_at,
        event.tenant_id,
    ))
}

/// The events of one aggregate of `S` up to `until_sequence` (inclusive), in sequence order, as
/// they read once its customer is erased. Erased here rather than trusted to the read: a process
/// may hold the destroyed key in its cache a while longer (or the events were written in clear),
/// and the rows written now must already be those of a rebuild.
pub async fn read_erased<S: EventSchema>(
    conn: &mut PgConnection,
    aggregate_id: Uuid,
    until_sequence: i64,
) -> anyhow::Result<Vec<StoredEvent>> {
    let stream = events::read_stream(conn, S::AGGREGATE, &aggregate_id.to_string(), Some(until_sequence)).await?;
    stream.into_iter().map(erased::<S>).collect()
}

/// The conversations a batch erases, each with the last sequence of its events in the batch and
/// its `CustomerErased` event.
fn erasures<'e, 'a>(events: &'e [impl Borrow<Decoded<'a>>]) -> BTreeMap<Uuid, (i64, &'e Decoded<'a>)> {
    let mut erased: BTreeMap<Uuid, (i64, &Decoded)> = events
        .iter()
        .map(Borrow::borrow)
        .filter(|d| matches!(d.event, E::CustomerErased { .. }))
        .map(|d| (d.conversation_id, (d.sequence, d)))
        .collect();
    for d in events.iter().map(Borrow::borrow) {
        if let Some((last, _)) = erased.get_mut(&d.conversation_id) {
            *last = (*last).max(d.sequence);
        }
    }
    erased
}

/// The events of each conversation the batch erases, up to its last one in the batch, as they
/// read now (none when the batch erases nobody, without a query).
pub async fn erased_streams<'a>(
    conn: &mut PgConnection,
    events: &[impl Borrow<Decoded<'a>>],
) -> anyhow::Result<Vec<StoredEvent>> {
    let mut out = Vec::new();
    for (conversation, (last, _)) in erasures(events) {
        out.extend(read_erased::<E>(conn, conversation, last).await?);
    }
    Ok(out)
}

/// Writes the rows `F` folds each conversation the batch erases into, from its events as they read
/// now, over the rows the table holds (never adding one: a customer's row belongs to the
/// conversation that met them first), and tells the live-update feed of each as updated at the
/// erasure (but for the row the erasure event itself changes, which the batch told already).
pub async fn rewrite<'a, F: RowFold>(
    conn: &mut PgConnection,
    target: Target,
    events: &[impl Borrow<Decoded<'a>>],
) -> anyhow::Result<()> {
    let table = target.table(F::TABLE);
    let mut changes = Vec::new();
    for (conversation, (last, erasure)) in erasures(events) {
        let stream = read_erased::<E>(conn, conversation, last).await?;
        let folded = apply_batch::<F>(HashMap::new(), &decode(&stream)?)?.rows;
        let keys: Vec<Uuid> = folded.keys().copied().collect();
        let held: Vec<Uuid> =
            sqlx::query_scalar(&format!("SELECT {key} FROM {table} WHERE {key} = ANY($1)", key = F::LOAD_BY))
                .bind(&keys)
                .fetch_all(&mut *conn)
                .await?;
        let rows: Vec<&F::Row> = held.iter().filter_map(|k| folded.get(k)).collect();
        rows::upsert(conn, &table, F::PK, rows::columns::<F::Row>(), &rows).await?;
        let entity = match F::FEED {
            Feed::Silent => continue,
            Feed::EachEvent { entity, .. } | Feed::EachRow { entity, .. } => entity,
        };
        let told = F::row_of(erasure).map(RowOf::key);
        changes.extend(held.into_iter().filter(|k| Some(*k) != told).map(|key| Change {
            tenant_id: erasure.tenant_id.unwrap_or_default(),
            entity,
            entity_id: key,
            conversation_id: Some(conversation),
            change: "updated",
            position: erasure.position.clone(),
        }));
    }
    record_changes(conn, target, &changes).await
}

#[cfg(test)]
mod tests {
    use aisales_domain::conversation::ConversationEvent as E;
    use aisales_domain::pii::{ERASED, ErasureCause};
    use uuid::Uuid;

    use super::{erased, erasures};
    use crate::conversation::event_of;
    use crate::conversation::log::{A, B, Log, received, started};

    #[test]
    fn an_erased_event_reads_erased_where_it_held_customer_data_and_only_there() {
        let mut log = Log::new();
        log.push(A, started(Uuid::from_u128(1), Some("Иван"), log.clock)).push(A, E::ConversationRead);
        let first = erased::<E>(log.events[0].clone()).unwrap();
        let E::ConversationStarted { chat_id, customer_name, customer_phone, customer_id, .. } =
            event_of(&first).unwrap()
        else {
            panic!("still a start")
        };
        assert_eq!(
            (chat_id.as_str(), customer_name.as_deref(), customer_phone.as_deref()),
            (ERASED, Some(ERASED), Some(ERASED))
        );
        assert_eq!(*customer_id, Uuid::from_u128(1));
        assert_eq!((first.position(), first.sequence, first.recorded_at), {
            let e = &log.events[0];
            (e.position(), e.sequence, e.recorded_at)
        });
        let second = erased::<E>(log.events[1].clone()).unwrap();
        assert_eq!(second.payload, log.events[1].payload, "nothing to erase");
    }

    #[test]
    fn a_batch_erases_the_conversations_it_holds_an_erasure_of_up_to_their_last_event() {
        let mut log = Log::new();
        let t0 = log.clock;
        let erasure = E::CustomerErased {
            customer_id: Uuid::from_u128(1),
            erased_by: "user:olga".into(),
            cause: ErasureCause::Request,
            erased_at: t0,
        };
        log.push(A, started(Uuid::from_u128(1), None, t0))
            .push(B, started(Uuid::from_u128(2), None, t0))
            .push(A, received(Uuid::from_u128(3), "Привет", None, t0))
            .push(A, erasure)
            .push(B, received(Uuid::from_u128(4), "Ау", None, t0))
            .push(A, E::ConversationRead);
        let decoded = log.decoded();
        let found = erasures(&decoded);
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), vec![A]);
        let (last, d) = found[&A];
        assert_eq!((last, d.sequence), (4, 3), "folded up to its last event in the batch, erased at the third");
    }
}
