//! The event log read in global order.
//!
//! Events are ordered by `(tx_id, global_position)`: `tx_id` is the id of the transaction that
//! appended them and `global_position` a sequence value taken at insert time. A reader never reads
//! past `pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction still in flight, so an
//! event appended by a slow transaction can never be skipped by a checkpoint that moved past it.

use std::any::Any;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

/// A point in the global order of events. The default value is before the first event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Id of the appending transaction (`xid8`, always below 2^63 in practice).
    pub tx_id: i64,
    /// Value of the `global_position` sequence.
    pub global_position: i64,
}

impl Position {
    pub const START: Position = Position { tx_id: 0, global_position: 0 };

    pub fn new(tx_id: i64, global_position: i64) -> Self {
        Position { tx_id, global_position }
    }
}

/// Written as `TX.POS`, the form accepted in `min_position` and returned by command endpoints.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.tx_id, self.global_position)
    }
}

/// Error for a malformed position token.
#[derive(Debug, thiserror::Error)]
#[error("a position is written as TX.POS with two non-negative integers")]
pub struct BadPosition;

impl FromStr for Position {
    type Err = BadPosition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s.trim().split_once('.').ok_or(BadPosition)?;
        let tx_id = a.parse::<i64>().map_err(|_| BadPosition)?;
        let global_position = b.parse::<i64>().map_err(|_| BadPosition)?;
        if tx_id < 0 || global_position < 0 {
            return Err(BadPosition);
        }
        Ok(Position { tx_id, global_position })
    }
}

/// One stored event with its place in the global order. Payload and metadata are kept as JSON
/// text so a projector parses them straight into its own types.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub tx_id: i64,
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: DateTime<Utc>,
    pub tenant_id: Option<Uuid>,
    /// The payload decoded once: the projectors of a process share one read of an event (see
    /// the shared event feed), and each would otherwise parse it again.
    #[sqlx(skip)]
    decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl StoredEvent {
    /// An event as read from the log (for tests and tools that build events by hand).
    #[expect(clippy::too_many_arguments, reason = "one argument per column of the log")]
    pub fn new(
        position: Position,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
        event_type: &str,
        event_version: &str,
        payload: String,
        metadata: String,
        recorded_at: DateTime<Utc>,
        tenant_id: Option<Uuid>,
    ) -> Self {
        StoredEvent {
            tx_id: position.tx_id,
            global_position: position.global_position,
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            sequence,
            event_type: event_type.into(),
            event_version: event_version.into(),
            payload,
            metadata,
            recorded_at,
            tenant_id,
            decoded: OnceLock::new(),
        }
    }

    /// The payload decoded by `decode`, which runs at most once per event and type: every later
    /// call, from any projector holding this event, gets the same value. A failure is not kept.
    pub fn decoded<T: Any + Send + Sync>(&self, decode: impl FnOnce(&Self) -> anyhow::Result<T>) -> anyhow::Result<&T> {
        if let Some(t) = self.decoded.get().and_then(|v| v.downcast_ref::<T>()) {
            return Ok(t);
        }
        let value = decode(self)?;
        // Under a race the first value stays; both were decoded from the same bytes.
        let _ = self.decoded.set(Arc::new(value));
        self.decoded.get().and_then(|v| v.downcast_ref::<T>()).ok_or_else(|| {
            anyhow::anyhow!(
                "event {} of {} {} was already decoded as another type",
                self.sequence,
                self.aggregate_type,
                self.aggregate_id
            )
        })
    }

    pub fn position(&self) -> Position {
        Position::new(self.tx_id, self.global_position)
    }

    /// Parses the payload into `T`.
    pub fn payload_as<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.payload)
    }

    /// Parses the metadata (a JSON object of strings).
    pub fn metadata_map(&self) -> serde_json::Result<std::collections::HashMap<String, String>> {
        serde_json::from_str(&self.metadata)
    }
}

/// Columns of a [`StoredEvent`]. `tx_id` is converted for the client under its own name, so every
/// `ORDER BY` must name `events.tx_id`: a bare `tx_id` sorts by the converted output column, which
/// no index serves, and each batch then scanned and sorted the whole table.
const SELECT_COLUMNS: &str = "tx_id::text::bigint AS tx_id, global_position, aggregate_type, aggregate_id, \
     sequence, event_type, event_version, payload::text AS payload, metadata::text AS metadata, recorded_at, tenant_id";

/// The query of [`read_after`] (`$1` checkpoint tx id as text, `$2` checkpoint position, `$3`
/// limit); public so that a test can check that an index serves it.
pub fn read_after_sql() -> String {
    format!(
        "SELECT {SELECT_COLUMNS} FROM events \
         WHERE (tx_id, global_position) > ($1::text::xid8, $2) \
           AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY events.tx_id, events.global_position LIMIT $3"
    )
}

/// Reads up to `limit` events after `after`, in global order, stopping before the oldest
/// transaction still in flight.
pub async fn read_after(conn: &mut PgConnection, after: Position, limit: i64) -> sqlx::Result<Vec<StoredEvent>> {
    let rows = sqlx::query_as::<_, StoredEvent>(&read_after_sql())
        .bind(after.tx_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await;
    opened(conn, rows).await
}

/// Like [`read_after`], but never past `upto` (inclusive).
pub async fn read_between(
    conn: &mut PgConnection,
    after: Position,
    upto: Position,
    limit: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM events \
         WHERE (tx_id, global_position) > ($1::text::xid8, $2) \
           AND (tx_id, global_position) <= ($4::text::xid8, $5) \
           AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY events.tx_id, events.global_position LIMIT $3"
    );
    let rows = sqlx::query_as::<_, StoredEvent>(&sql)
        .bind(after.tx_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .bind(upto.tx_id.to_string())
        .bind(upto.global_position)
        .fetch_all(&mut *conn)
        .await;
    opened(conn, rows).await
}

/// Reads events after `after` in plain `global_position` order, ignoring transactions in flight.
///
/// This is the naive reader. It is wrong under concurrent writers (a slow transaction's event with
/// a smaller position commits after a checkpoint has moved past it and is never read); it exists
/// only so tests can show that the scenario they run does break it.
pub async fn read_after_naive(
    conn: &mut PgConnection,
    after_global_position: i64,
    limit: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    let sql =
        format!("SELECT {SELECT_COLUMNS} FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2");
    let rows =
        sqlx::query_as::<_, StoredEvent>(&sql).bind(after_global_position).bind(limit).fetch_all(&mut *conn).await;
    opened(conn, rows).await
}

/// All events of one aggregate, in sequence order, up to and including `until_sequence` when given.
pub async fn read_stream(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    until_sequence: Option<i64>,
) -> sqlx::Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         AND sequence <= $3 ORDER BY sequence"
    );
    let rows = sqlx::query_as::<_, StoredEvent>(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(until_sequence.unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await;
    opened(conn, rows).await
}

/// Up to `limit` events of one aggregate after `after_sequence`, in sequence order.
pub async fn read_stream_page(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    after_sequence: i64,
    limit: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         AND sequence > $3 ORDER BY sequence LIMIT $4"
    );
    let rows = sqlx::query_as::<_, StoredEvent>(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after_sequence)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await;
    opened(conn, rows).await
}

/// The events of one aggregate from `from` (inclusive) to `upto` (inclusive), in global order.
pub async fn read_aggregate_between(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    from: Position,
    upto: Position,
) -> sqlx::Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
           AND (tx_id, global_position) >= ($3::text::xid8, $4) \
           AND (tx_id, global_position) <= ($5::text::xid8, $6) \
         ORDER BY events.tx_id, events.global_position"
    );
    let rows = sqlx::query_as::<_, StoredEvent>(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(from.tx_id.to_string())
        .bind(from.global_position)
        .bind(upto.tx_id.to_string())
        .bind(upto.global_position)
        .fetch_all(&mut *conn)
        .await;
    opened(conn, rows).await
}

/// Events read on `conn` with their sealed customer data opened ([`crate::pii`]).
async fn opened(conn: &mut PgConnection, rows: sqlx::Result<Vec<StoredEvent>>) -> sqlx::Result<Vec<StoredEvent>> {
    let mut rows = rows?;
    crate::pii::open_events(&mut *conn, &mut rows).await.map_err(|e| sqlx::Error::Decode(e.into()))?;
    Ok(rows)
}

/// The newest position that readers may see now, or `None` when the log is empty.
pub async fn readable_head(conn: &mut PgConnection) -> sqlx::Result<Option<Position>> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT tx_id::text::bigint, global_position FROM events \
         WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY events.tx_id DESC, events.global_position DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(t, g)| Position::new(t, g)))
}

/// Number of events after `after` that readers may see now (exact, used for progress and lag).
pub async fn count_after(conn: &mut PgConnection, after: Position) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE (tx_id, global_position) > ($1::text::xid8, $2) \
         AND tx_id < pg_snapshot_xmin(pg_current_snapshot())",
    )
    .bind(after.tx_id.to_string())
    .bind(after.global_position)
    .fetch_one(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_round_trips_and_orders() {
        let p: Position = "812.77".parse().unwrap();
        assert_eq!(p, Position::new(812, 77));
        assert_eq!(p.to_string(), "812.77");
        assert!(Position::new(5, 100) < Position::new(6, 1));
        assert!(Position::new(6, 1) < Position::new(6, 2));
        assert!("7".parse::<Position>().is_err());
        assert!("-1.2".parse::<Position>().is_err());
        assert!("a.b".parse::<Position>().is_err());
    }
}
