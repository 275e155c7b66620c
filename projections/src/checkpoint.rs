//! Projector checkpoints: one row per projector, moved forward only with the projector's writes.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::events::Position;

/// A projector's saved progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub name: String,
    pub position: Position,
    pub events_applied: i64,
    pub updated_at: DateTime<Utc>,
}

/// Loads the checkpoint, creating it at the start of the log when it does not exist yet.
pub async fn load_or_create(conn: &mut PgConnection, name: &str) -> sqlx::Result<Checkpoint> {
    if let Some(cp) = load(conn, name).await? {
        return Ok(cp);
    }
    create(conn, name).await?;
    load(conn, name).await?.ok_or(sqlx::Error::RowNotFound)
}

/// Creates the checkpoint at the start of the log unless it exists.
pub async fn create(conn: &mut PgConnection, name: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO projector_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn load(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<Checkpoint>> {
    let row: Option<(i64, i64, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT tx_id::text::bigint, position, events_applied, updated_at FROM projector_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(tx_id, position, events_applied, updated_at)| Checkpoint {
        name: name.to_string(),
        position: Position::new(tx_id, position),
        events_applied,
        updated_at,
    }))
}

/// Moves the checkpoint from `from` to `to` if it is still at `from`. Returns false when another
/// writer moved it first; the caller must then roll back its transaction.
pub async fn advance(
    conn: &mut PgConnection,
    name: &str,
    from: Position,
    to: Position,
    applied: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE projector_checkpoints \
            SET tx_id = $4::text::xid8, position = $5, events_applied = events_applied + $6, updated_at = now() \
          WHERE name = $1 AND tx_id = $2::text::xid8 AND position = $3",
    )
    .bind(name)
    .bind(from.tx_id.to_string())
    .bind(from.global_position)
    .bind(to.tx_id.to_string())
    .bind(to.global_position)
    .bind(applied)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts the checkpoint back to the start of the log (used by rebuilds, inside their transaction).
pub async fn reset(conn: &mut PgConnection, name: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO projector_checkpoints (name) VALUES ($1) \
         ON CONFLICT (name) DO UPDATE SET tx_id = '0', position = 0, events_applied = 0, updated_at = now()",
    )
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every checkpoint, by name.
pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<Checkpoint>> {
    let rows: Vec<(String, i64, i64, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT name, tx_id::text::bigint, position, events_applied, updated_at FROM projector_checkpoints ORDER BY name",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, tx, pos, applied, updated_at)| Checkpoint {
            name,
            position: Position::new(tx, pos),
            events_applied: applied,
            updated_at,
        })
        .collect())
}
