//! Finding the event a command continues: an operator's decision on a suggestion continues the
//! chain of the event that drafted it, a delivery status the chain of the event that recorded the
//! send. Read from the event log itself (the aggregate's own events, newest first), so the chain
//! holds even before the read models caught up.

use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{Cause, EventMetadata, EventRef};

/// The cause that the newest `event_type` event of an aggregate whose payload has `field = value`
/// is for what follows from it; `None` when there is no such event.
pub async fn latest(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    event_type: &str,
    field: &str,
    value: &str,
) -> sqlx::Result<Option<Cause>> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT sequence, metadata::text FROM events \
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND event_type = $3 AND payload -> $3 ->> $4 = $5 \
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(event_type)
    .bind(field)
    .bind(value)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(sequence, metadata)| {
        let map = serde_json::from_str(&metadata).ok()?;
        let metadata = EventMetadata::from_map(&map);
        Some(Cause::of(&EventRef::new(aggregate_type, aggregate_id, sequence), &metadata))
    }))
}

/// The drafting of a suggestion.
pub async fn suggestion_drafted(pool: &PgPool, conversation: Uuid, suggestion: Uuid) -> sqlx::Result<Option<Cause>> {
    latest(
        pool,
        "conversation",
        &conversation.to_string(),
        "SuggestionGenerated",
        "suggestion_id",
        &suggestion.to_string(),
    )
    .await
}

/// The failure of a reply.
pub async fn reply_failed(pool: &PgPool, conversation: Uuid, reply: Uuid) -> sqlx::Result<Option<Cause>> {
    latest(pool, "conversation", &conversation.to_string(), "ReplyFailed", "reply_id", &reply.to_string()).await
}

/// The send of a reply (what its delivery statuses follow from).
pub async fn reply_sent(pool: &PgPool, conversation: Uuid, reply: Uuid) -> sqlx::Result<Option<Cause>> {
    latest(pool, "conversation", &conversation.to_string(), "ReplySent", "reply_id", &reply.to_string()).await
}
