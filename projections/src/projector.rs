//! What a projector is, and how one batch is applied exactly once.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};

use crate::checkpoint;
use crate::events::{self, Position, StoredEvent};
use crate::feed::{Batch, EventFeed};
use crate::parking;

/// A named consumer of the event log. Each has one checkpoint row.
#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Stable name: the checkpoint key and the `projections rebuild NAME` argument.
    fn name(&self) -> &'static str;

    /// One line for `projections status`.
    fn description(&self) -> &'static str;

    /// Read-model tables this projector owns (emptied by a rebuild). Empty for projectors whose
    /// effects are outside Postgres, such as the dispatcher.
    fn tables(&self) -> &'static [&'static str];

    /// Most events applied in one transaction.
    fn batch_size(&self) -> i64 {
        1000
    }

    /// Applies a batch, in global order, inside the caller's transaction. An error rolls back the
    /// batch and its checkpoint together.
    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()>;

    /// Runs after the batch's transaction committed (effects outside Postgres, at least once).
    async fn after_commit(&self, _events: &[StoredEvent]) -> anyhow::Result<()> {
        Ok(())
    }

    /// The same projector writing into another generation of its tables (for rebuilds), or
    /// `None` when it cannot be rebuilt that way.
    fn generation(&self, _target: Target) -> Option<Box<dyn Projector>> {
        None
    }

    /// Whether a batch's commit must be flushed to disk before the batch counts as done. Read
    /// models need not: their rows and checkpoint commit together, so a crash can only lose the
    /// last batches whole, and they are applied again from the checkpoint. A projector with effects
    /// outside Postgres (the dispatcher) says yes, so that nothing it pushed is forgotten.
    fn durable_commit(&self) -> bool {
        false
    }

    /// Whether the runtime starts a batch as soon as new events are announced instead of letting
    /// them gather first: for a projector whose output something waits for (the dispatcher, whose
    /// batches start jobs). Read models gather: fewer, larger transactions.
    fn eager(&self) -> bool {
        false
    }
}

/// Which generation of its tables a projector writes: the live tables, or the `__next` tables a
/// rebuild fills before swapping them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub suffix: &'static str,
}

impl Target {
    pub const LIVE: Target = Target { suffix: "" };
    pub const NEXT: Target = Target { suffix: "__next" };

    /// Name of a table of this generation.
    pub fn table(&self, base: &str) -> String {
        format!("{base}{}", self.suffix)
    }

    pub fn is_live(&self) -> bool {
        self.suffix.is_empty()
    }

    /// Checkpoint name of a projector in this generation (leaked once per rebuild: a few bytes).
    pub fn name(&self, base: &'static str) -> &'static str {
        if self.is_live() { base } else { Box::leak(format!("{base}{}", self.suffix).into_boxed_str()) }
    }
}

/// Result of one call to [`apply_next_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events applied (0 when the projector was caught up).
    pub applied: usize,
    /// The checkpoint after the batch.
    pub position: Position,
    /// Time of the newest event applied, when any.
    pub last_recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Aggregates this batch parked (see [`crate::parking`]).
    pub parked: usize,
}

/// Stable advisory-lock key space for projector batches (second key: hashtext(name)).
pub const BATCH_LOCK_SPACE: i32 = 0x4149_5350; // "AISP"

/// Reads the events after the projector's checkpoint and applies them together with the new
/// checkpoint in one transaction.
///
/// Safe against concurrent callers for the same projector: a transaction-level advisory lock
/// serialises them, and the checkpoint only moves with a compare-and-set from the position the
/// batch was read after. A crash anywhere before commit leaves both the read model and the
/// checkpoint as they were.
pub async fn apply_next_batch(
    pool: &PgPool,
    projector: &dyn Projector,
    batch_size: Option<i64>,
) -> anyhow::Result<BatchOutcome> {
    apply_next_batch_from(pool, projector, batch_size, None).await
}

/// [`apply_next_batch`], taking the events from `feed` (shared with the process's other
/// projectors) when it holds them.
pub async fn apply_next_batch_from(
    pool: &PgPool,
    projector: &dyn Projector,
    batch_size: Option<i64>,
    feed: Option<&EventFeed>,
) -> anyhow::Result<BatchOutcome> {
    let name = projector.name();
    // BEGIN, the commit mode and the batch lock in one round trip.
    let (mut tx, own) = match begin_statement(name, projector.durable_commit()) {
        Some(statement) => (pool.begin_with(statement).await?, true),
        None => {
            let mut tx = pool.begin().await?;
            if !projector.durable_commit() {
                sqlx::query("SET LOCAL synchronous_commit TO off").execute(&mut *tx).await?;
            }
            (tx, false)
        }
    };
    let (outcome, events) = apply_batch_with(&mut tx, projector, batch_size, None, feed, own).await?;
    tx.commit().await?;
    // Effects outside Postgres are at least once: a failure here is logged and made up for later
    // (the dispatcher's sweeper pushes what was not pushed).
    if !events.is_empty()
        && let Err(e) = projector.after_commit(&events).await
    {
        metrics::counter!("aisales_projector_after_commit_failures_total", "projector" => name).increment(1);
        tracing::warn!(projector = name, error = format!("{e:#}"), "post-commit step failed");
    }
    Ok(outcome)
}

/// Applies the next batch (never past `upto`) inside the caller's transaction, under the
/// projector's batch lock, moving its checkpoint by compare-and-set. Returns the events applied.
pub async fn apply_batch_in(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    batch_size: Option<i64>,
    upto: Option<Position>,
) -> anyhow::Result<(BatchOutcome, Batch)> {
    apply_batch_with(conn, projector, batch_size, upto, None, false).await
}

/// `BEGIN`, asynchronous commit unless the projector's commits are durable (see
/// `Projector::durable_commit`), and the batch lock ([`lock`]) as one statement list, for a
/// projector whose name can be written as an SQL literal as it is (every projector's is).
fn begin_statement(name: &str, durable: bool) -> Option<String> {
    let plain = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:-.".contains(&b));
    plain.then(|| {
        let commit = if durable { "" } else { " SET LOCAL synchronous_commit TO off;" };
        format!("BEGIN;{commit} SELECT pg_advisory_xact_lock({BATCH_LOCK_SPACE}, hashtext('{name}'))")
    })
}

async fn apply_batch_with(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    batch_size: Option<i64>,
    upto: Option<Position>,
    feed: Option<&EventFeed>,
    own: bool,
) -> anyhow::Result<(BatchOutcome, Batch)> {
    let name = projector.name();
    // `own`: a transaction begun for this batch with the lock taken (`begin_statement`).
    if !own {
        lock(conn, name).await?;
    }
    let (cp, parked) = match start(conn, name).await? {
        Some(found) => found,
        None => {
            checkpoint::create(conn, name).await?;
            start(conn, name).await?.ok_or(sqlx::Error::RowNotFound)?
        }
    };
    let limit = batch_size.unwrap_or(projector.batch_size());
    let events = match (upto, feed) {
        (Some(upto), _) => Batch::owned(events::read_between(conn, cp.position, upto, limit).await?),
        (None, Some(feed)) => feed.read_after(conn, cp.position, limit).await?,
        (None, None) => Batch::owned(events::read_after(conn, cp.position, limit).await?),
    };
    let Some(last) = events.last() else {
        return Ok((BatchOutcome { applied: 0, position: cp.position, last_recorded_at: None, parked: 0 }, events));
    };
    let to = last.position();
    let last_recorded_at = Some(last.recorded_at);
    let (done, parked) = apply_or_park(conn, projector, events.clone(), parked, own).await?;
    if !checkpoint::advance(conn, name, cp.position, to, done.len() as i64).await? {
        anyhow::bail!("checkpoint of projector {name} moved during the batch; batch rolled back");
    }
    Ok((BatchOutcome { applied: events.len(), position: to, last_recorded_at, parked }, done))
}

/// Applies `events` but those of aggregates the projector has parked; when the projector fails on
/// the batch with a data error, applies it again one event at a time and parks the aggregate of
/// each event that fails (see [`crate::parking`]). Returns the events applied and how many
/// aggregates were parked.
async fn apply_or_park(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    events: Batch,
    mut parked: HashMap<(String, String), Position>,
    own: bool,
) -> anyhow::Result<(Batch, usize)> {
    let name = projector.name();
    let key = |e: &StoredEvent| (e.aggregate_type.clone(), e.aggregate_id.clone());
    let skipped = |parked: &std::collections::HashMap<(String, String), Position>, e: &StoredEvent| {
        parked.get(&key(e)).is_some_and(|first| e.position() >= *first)
    };
    let events = if parked.is_empty() || !events.iter().any(|e| skipped(&parked, e)) {
        events
    } else {
        Batch::owned(events.iter().filter(|e| !skipped(&parked, e)).cloned().collect())
    };
    if events.is_empty() {
        return Ok((events, 0));
    }
    sqlx::query("SAVEPOINT projector_batch").execute(&mut *conn).await?;
    let error = match projector.apply(conn, &events).await {
        Ok(()) => {
            // In a transaction of its own the savepoint ends with the commit, a statement later;
            // in a caller's it is released, so that repeated batches do not nest savepoints.
            if !own {
                sqlx::query("RELEASE SAVEPOINT projector_batch").execute(&mut *conn).await?;
            }
            return Ok((events, 0));
        }
        Err(e) if !parking::is_data_error(&e) => return Err(e),
        Err(e) => e,
    };
    sqlx::query("ROLLBACK TO SAVEPOINT projector_batch").execute(&mut *conn).await?;
    tracing::warn!(
        projector = name,
        error = format!("{error:#}"),
        events = events.len(),
        "batch refused by the projector; applying its events one by one"
    );
    let mut done = Vec::with_capacity(events.len());
    let mut newly = 0;
    for event in events.iter() {
        if skipped(&parked, event) {
            continue;
        }
        match projector.apply(conn, std::slice::from_ref(event)).await {
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT projector_batch").execute(&mut *conn).await?;
                done.push(event.clone());
            }
            Err(e) if !parking::is_data_error(&e) => return Err(e),
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT projector_batch").execute(&mut *conn).await?;
                sqlx::query("RELEASE SAVEPOINT projector_batch").execute(&mut *conn).await?;
                let message = format!("{e:#}");
                tracing::error!(
                    projector = name,
                    aggregate_type = %event.aggregate_type,
                    aggregate_id = %event.aggregate_id,
                    sequence = event.sequence,
                    position = %event.position(),
                    error = message,
                    "event cannot be applied; aggregate parked for this projector"
                );
                parking::park(conn, name, event, &message).await?;
                parked.insert(key(event), event.position());
                newly += 1;
            }
        }
        sqlx::query("SAVEPOINT projector_batch").execute(&mut *conn).await?;
    }
    sqlx::query("RELEASE SAVEPOINT projector_batch").execute(&mut *conn).await?;
    Ok((Batch::owned(done), newly))
}

/// The projector's checkpoint and the aggregates it parked, read in one round trip; `None` when the
/// checkpoint does not exist yet. Each parked aggregate, `(aggregate_type, aggregate_id)`, comes
/// with the position of its first event not applied: that event and every later one of the
/// aggregate are skipped.
async fn start(
    conn: &mut PgConnection,
    name: &str,
) -> sqlx::Result<Option<(checkpoint::Checkpoint, HashMap<(String, String), Position>)>> {
    type Row = (
        i64,
        i64,
        i64,
        chrono::DateTime<chrono::Utc>,
        Option<Vec<String>>,
        Option<Vec<String>>,
        Option<Vec<i64>>,
        Option<Vec<i64>>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT c.tx_id::text::bigint, c.position, c.events_applied, c.updated_at, p.types, p.ids, p.txs, p.positions \
           FROM projector_checkpoints c, \
                LATERAL (SELECT array_agg(aggregate_type) AS types, array_agg(aggregate_id) AS ids, \
                                array_agg(tx_id::text::bigint) AS txs, array_agg(global_position) AS positions \
                           FROM projector_parked WHERE projector = $1) p \
          WHERE c.name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(tx_id, position, events_applied, updated_at, types, ids, txs, positions)| {
        let cp = checkpoint::Checkpoint {
            name: name.to_string(),
            position: Position::new(tx_id, position),
            events_applied,
            updated_at,
        };
        let parked = types
            .unwrap_or_default()
            .into_iter()
            .zip(ids.unwrap_or_default())
            .zip(txs.unwrap_or_default().into_iter().zip(positions.unwrap_or_default()))
            .map(|(key, (tx, g))| (key, Position::new(tx, g)))
            .collect();
        (cp, parked)
    }))
}

/// Takes the projector's batch lock for the rest of the transaction (serialises batches, and lets
/// rebuilds and verification hold a projector still).
pub async fn lock(conn: &mut PgConnection, name: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(BATCH_LOCK_SPACE)
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}
