//! Read-your-writes: a read that names the position a command produced waits (bounded) until the
//! read models it reads have applied it.

use std::time::{Duration, Instant};

use aisales_projections::Position;
use sqlx::PgPool;

use super::CommandError;

/// Waits until every projector in `projectors` has applied `position` (bounded by `timeout`).
pub async fn wait_for(
    pool: &PgPool,
    projectors: &[&str],
    position: Position,
    timeout: Duration,
) -> Result<(), CommandError> {
    let started = Instant::now();
    loop {
        let lagging: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::text[]) AS p(name) \
             LEFT JOIN projector_checkpoints c ON c.name = p.name \
             WHERE c.name IS NULL OR (c.tx_id::text::bigint, c.position) < ($2, $3)",
        )
        .bind(projectors)
        .bind(position.tx_id)
        .bind(position.global_position)
        .fetch_one(pool)
        .await?;
        if lagging == 0 {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(CommandError::Lagging { position });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
