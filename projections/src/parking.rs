//! Parked aggregates: one event a projector cannot apply stops only that aggregate, for that
//! projector.
//!
//! A batch is applied in one transaction. When the projector fails on it with an error that comes
//! from the data (an event it cannot decode, a value a read-model column refuses, such as a NUL
//! character cast to `jsonb`), the batch is applied again one event at a time, each under a
//! savepoint. The event that fails parks its aggregate: a row in `projector_parked` records the
//! projector, the aggregate, the first event not applied and the error. Every later event of a
//! parked aggregate is skipped by that projector (applying them without the one before would build
//! a wrong row), while every other aggregate, and every other projector, goes on. The checkpoint
//! moves past the batch as usual.
//!
//! After a fix (new code, or a corrected event), [`retry`] applies the aggregate's skipped events
//! up to the checkpoint in one transaction under the projector's batch lock, and unparks it; when
//! they fail again the row keeps the new error. Errors that say nothing about the data (the
//! connection dropped, a deadlock, a timeout) are never parked: the batch fails and is retried, as
//! before.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::events::{Position, StoredEvent};

/// One parked aggregate of one projector.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Parked {
    pub projector: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub tenant_id: Option<uuid::Uuid>,
    /// The first event not applied: `TX.POS` and its sequence in the aggregate.
    pub position: String,
    pub sequence: i64,
    pub event_type: String,
    pub error: String,
    /// How many times applying it failed (1 when parked, one more per failed retry).
    pub attempts: i32,
    pub parked_at: DateTime<Utc>,
    pub retried_at: Option<DateTime<Utc>>,
}

/// Parks for `to` what `from` has parked, from the same first events (a verification generation
/// skips what the live one skips, so that the two compare).
pub async fn copy(conn: &mut PgConnection, from: &str, to: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO projector_parked \
           (projector, aggregate_type, aggregate_id, tenant_id, tx_id, global_position, sequence, event_type, error, \
            attempts, parked_at, retried_at) \
         SELECT $2, aggregate_type, aggregate_id, tenant_id, tx_id, global_position, sequence, event_type, error, \
                attempts, parked_at, retried_at \
           FROM projector_parked WHERE projector = $1 \
         ON CONFLICT (projector, aggregate_type, aggregate_id) DO NOTHING",
    )
    .bind(from)
    .bind(to)
    .execute(conn)
    .await?;
    Ok(())
}

/// Parks the aggregate of `event` for `projector` (a second failure of a parked aggregate keeps the
/// first event and counts the attempt).
pub async fn park(conn: &mut PgConnection, projector: &str, event: &StoredEvent, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO projector_parked \
           (projector, aggregate_type, aggregate_id, tenant_id, tx_id, global_position, sequence, event_type, error) \
         VALUES ($1, $2, $3, $4, $5::text::xid8, $6, $7, $8, $9) \
         ON CONFLICT (projector, aggregate_type, aggregate_id) \
         DO UPDATE SET error = EXCLUDED.error, attempts = projector_parked.attempts + 1, retried_at = now()",
    )
    .bind(projector)
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(event.tenant_id)
    .bind(event.tx_id.to_string())
    .bind(event.global_position)
    .bind(event.sequence)
    .bind(&event.event_type)
    // The message may quote the data that failed; a text column takes no NUL.
    .bind(error.replace('\0', "\\0"))
    .execute(conn)
    .await?;
    Ok(())
}

/// Every parked aggregate (of `projector` when given), oldest first.
pub async fn list(conn: &mut PgConnection, projector: Option<&str>) -> sqlx::Result<Vec<Parked>> {
    sqlx::query_as(
        "SELECT projector, aggregate_type, aggregate_id, tenant_id, \
                tx_id::text || '.' || global_position AS position, sequence, event_type, error, attempts, \
                parked_at, retried_at \
           FROM projector_parked WHERE $1::text IS NULL OR projector = $1 \
          ORDER BY parked_at, projector, aggregate_type, aggregate_id",
    )
    .bind(projector)
    .fetch_all(conn)
    .await
}

/// Number of parked aggregates per projector.
pub async fn counts(conn: &mut PgConnection) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT projector, count(*) FROM projector_parked GROUP BY projector ORDER BY projector")
        .fetch_all(conn)
        .await
}

/// Where a parked aggregate's first skipped event is.
pub async fn first_position(
    conn: &mut PgConnection,
    projector: &str,
    aggregate_type: &str,
    aggregate_id: &str,
) -> sqlx::Result<Option<Position>> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT tx_id::text::bigint, global_position FROM projector_parked \
          WHERE projector = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(projector)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(t, g)| Position::new(t, g)))
}

/// Removes the parked row (after its events were applied).
pub async fn unpark(
    conn: &mut PgConnection,
    projector: &str,
    aggregate_type: &str,
    aggregate_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM projector_parked WHERE projector = $1 AND aggregate_type = $2 AND aggregate_id = $3")
        .bind(projector)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether an error of `Projector::apply` may come from the data, so that parking the aggregate
/// is right. Connection, pool and I/O errors, and the SQLSTATE classes of transient failures
/// (08 connection, 40 rollback such as deadlocks, 53 resources, 57 operator intervention such as a
/// statement timeout or a shutdown, 55 lock not available) are not: the batch is retried whole.
pub fn is_data_error(e: &anyhow::Error) -> bool {
    for cause in e.chain() {
        if let Some(db) = cause.downcast_ref::<sqlx::Error>() {
            return match db {
                sqlx::Error::Database(d) => {
                    let code = d.code().unwrap_or_default();
                    !["08", "40", "53", "55", "57", "58", "XX"].iter().any(|class| code.starts_with(class))
                }
                sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::TypeNotFound { .. } => true,
                _ => false,
            };
        }
    }
    // Not a database error: decoding an event, or a rule of the projector.
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_not_data_errors() {
        assert!(!is_data_error(&anyhow::Error::new(sqlx::Error::PoolTimedOut)));
        assert!(!is_data_error(&anyhow::Error::new(sqlx::Error::Io(std::io::Error::other("reset")))));
        assert!(is_data_error(&anyhow::anyhow!("unknown event type Foo")));
        let nested = anyhow::Error::new(sqlx::Error::PoolClosed).context("loading rows");
        assert!(!is_data_error(&nested));
    }
}

/// What a retry did for one parked aggregate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetryOutcome {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Events applied (when it worked).
    pub events: usize,
    /// Why it is still parked, when it is.
    pub error: Option<String>,
}

/// Applies again the skipped events of every aggregate `projector` parked (or only of
/// `aggregate_id`), each aggregate in its own transaction under the projector's batch lock: the
/// events from the first one not applied up to the checkpoint. An aggregate whose events now apply
/// is unparked and followed by the projector's next batches as any other; one that fails again
/// stays parked with the new error.
pub async fn retry(
    pool: &sqlx::PgPool,
    projector: &dyn crate::Projector,
    aggregate_id: Option<&str>,
) -> anyhow::Result<Vec<RetryOutcome>> {
    let name = projector.name();
    let rows = {
        let mut conn = pool.acquire().await?;
        list(&mut conn, Some(name)).await?
    };
    let mut out = Vec::new();
    for row in rows.into_iter().filter(|r| aggregate_id.is_none_or(|id| id == r.aggregate_id)) {
        let (kind, id) = (row.aggregate_type.as_str(), row.aggregate_id.as_str());
        let mut tx = pool.begin().await?;
        crate::projector::lock(&mut tx, name).await?;
        let Some(from) = first_position(&mut tx, name, kind, id).await? else {
            continue; // retried by someone else meanwhile
        };
        let upto = crate::checkpoint::load_or_create(&mut tx, name).await?.position;
        let events = crate::events::read_aggregate_between(&mut tx, kind, id, from, upto).await?;
        sqlx::query("SAVEPOINT parked_retry").execute(&mut *tx).await?;
        let result = if events.is_empty() { Ok(()) } else { projector.apply(&mut tx, &events).await };
        match result {
            Ok(()) => {
                unpark(&mut tx, name, kind, id).await?;
                tx.commit().await?;
                if !events.is_empty()
                    && let Err(e) = projector.after_commit(&events).await
                {
                    tracing::warn!(projector = name, error = format!("{e:#}"), "post-commit step failed");
                }
                tracing::info!(projector = name, aggregate_type = kind, aggregate_id = id, "parked aggregate applied");
                out.push(RetryOutcome {
                    aggregate_type: kind.into(),
                    aggregate_id: id.into(),
                    events: events.len(),
                    error: None,
                });
            }
            Err(e) if !is_data_error(&e) => return Err(e),
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT parked_retry").execute(&mut *tx).await?;
                let message = format!("{e:#}");
                park(&mut tx, name, &events[0], &message).await?;
                tx.commit().await?;
                out.push(RetryOutcome {
                    aggregate_type: kind.into(),
                    aggregate_id: id.into(),
                    events: 0,
                    error: Some(message),
                });
            }
        }
    }
    Ok(out)
}

/// Moves the parked rows of one generation of a projector to another name (a rebuild's swap),
/// replacing those of the target.
pub async fn rename(conn: &mut PgConnection, from: &str, to: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM projector_parked WHERE projector = $1").bind(to).execute(&mut *conn).await?;
    sqlx::query("UPDATE projector_parked SET projector = $2 WHERE projector = $1")
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forgets the parked rows of a projector generation (a scratch generation that is dropped).
pub async fn clear(conn: &mut PgConnection, projector: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM projector_parked WHERE projector = $1").bind(projector).execute(conn).await?;
    Ok(())
}
