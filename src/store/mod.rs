//! The event store: loads aggregates (snapshot + newer events) and appends their events.
//!
//! The `events` table has postgres-es's layout and postgres-es's repository reads whole streams
//! (audit replay). Loading for commands and appending are ours, for three measured reasons (see
//! `docs/architecture.md`): postgres-es 0.5 snapshots apply events twice, its append takes one
//! round trip per event inside an explicit transaction, and it does not return the position the
//! append produced (needed for read-your-writes).
//!
//! An append is one `INSERT … SELECT FROM UNNEST(…)` statement: atomic on its own, one round trip,
//! optimistic concurrency through the `(aggregate_type, aggregate_id, sequence)` primary key.
//! Because every append is a single statement whose transaction id is assigned only after the
//! previous sequence committed, each aggregate's events are in sequence order in the global
//! `(tx_id, global_position)` order too.
//!
//! Appends of concurrent commands are written together (group commit): a few writer tasks per
//! store each take every append waiting at that moment and write them in one statement, so one
//! transaction, one commit and one round trip serve many commands. Nothing waits for company: an
//! append arriving at an idle writer is written at once, and batches form only while writes are
//! in flight. A batch is all or nothing, so when Postgres refuses it (a conflict of one of its
//! commands, a deadlock with another process) each of its appends is written again on its own and
//! gets its own answer: one command's conflict never fails another's. When the statement could
//! not run or its outcome is unknown (no connection, a broken one), every append of the batch
//! gets that error instead, so nothing is written twice. A batch holds its appends in
//! `(aggregate_type, aggregate_id, sequence)` order, so two batches lock keys in the same order.
//!
//! Commands run on a cached copy of the aggregate when this process holds one (a bounded cache of
//! recently used aggregates), which saves the load round trip. The cache is only ever trusted for
//! appends, which the primary key verifies: an append from a stale copy conflicts, and the
//! command is decided again on freshly loaded state. A refusal or a no-op decided on a cached
//! copy is re-checked on freshly loaded state before it is reported.
//!
//! Appends and loads run on connections the store keeps out of the pool ([`HeldConnections`]):
//! sqlx makes a round trip each time a connection goes back to its pool, as many as the append
//! itself.
//!
//! Projectors are woken by `NOTIFY events_appended`, sent by the writer after its append
//! committed: one notification at a time per store, covering every append that committed while
//! the previous one was on its way. A `NOTIFY` inside the appending transaction (a trigger) would
//! make every commit wait for Postgres's notification queue lock, which cut append throughput at
//! 32 writers to a third (`cargo bench --bench event_store`, docs/architecture.md).

mod aggregates;
mod error;
mod metadata;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aisales_domain::codec::EventSchema;
use aisales_projections::Position;
pub use aisales_projections::pii::Subject;
use cqrs_es::{Aggregate, EventEnvelope};

use chrono::{DateTime, Utc};
pub use error::{ExecuteError, StoreError};
pub use metadata::{Cause, EventMetadata, EventRef};
use sqlx::PgPool;
use uuid::Uuid;
pub use writer::Append;
use writer::{Queued, Sink, Writers, connection, write_alone, write_batch};

use crate::infra::db::HeldConnections;

/// How an aggregate is kept in the store.
/// Its events are named, versioned and decoded by [`EventSchema`] (the one decode path).
pub trait StoredAggregate: Aggregate<Event: EventSchema> + Clone + 'static {
    /// A snapshot is written whenever the sequence crosses a multiple of this.
    const SNAPSHOT_EVERY: i64 = 100;
    /// Bump when the serialized state changes shape: older snapshots are then ignored.
    const STATE_VERSION: i32 = 1;

    /// Whose customer data this aggregate's events hold: the customer-data fields of its events
    /// ([`aisales_domain::pii`]) are sealed with that subject's key. `None` for aggregates
    /// without customer data.
    fn data_subject(&self, _aggregate_id: &str) -> Option<Subject> {
        None
    }
}

/// An aggregate loaded for a command.
#[derive(Debug)]
pub struct Loaded<A> {
    pub state: A,
    /// Sequence of the last event applied (0 for a new aggregate).
    pub sequence: i64,
}

/// What an append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub first_sequence: i64,
    pub last_sequence: i64,
    /// Global position of the last event written.
    pub position: Position,
}

/// Result of a command: the new state and, when events were written, where.
#[derive(Debug)]
pub struct Outcome<A> {
    pub state: A,
    pub committed: Option<Committed>,
    /// Sequence of the aggregate after the command.
    pub sequence: i64,
}

/// One row of the load query: (sequence, event type, event version, payload, snapshot sequence).
type LoadRow = (Option<i64>, Option<String>, Option<String>, String, Option<i64>);

/// Attempts of a command before a conflict is reported to the caller.
const MAX_ATTEMPTS: u32 = 25;

/// Channel the store notifies after appends (projectors `LISTEN` on it).
pub const EVENTS_CHANNEL: &str = "events_appended";

/// Loads and appends events of any [`StoredAggregate`].
#[derive(Clone)]
pub struct EventStore {
    sink: Sink,
    cache: Option<Arc<AggregateCache>>,
    writers: Arc<Writers>,
}

/// Aggregates this process used recently: state and the sequence it is at.
type AggregateCache = quick_cache::sync::Cache<(&'static str, String), (Arc<dyn std::any::Any + Send + Sync>, i64)>;

/// Aggregates kept in memory per process by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;

impl EventStore {
    /// A store caching up to [`DEFAULT_CACHE_CAPACITY`] aggregates.
    pub fn new(pool: PgPool) -> Self {
        Self::with_cache_capacity(pool, DEFAULT_CACHE_CAPACITY)
    }

    /// A store caching up to `capacity` aggregates (0: none, every command loads).
    pub fn with_cache_capacity(pool: PgPool, capacity: usize) -> Self {
        let cache = (capacity > 0).then(|| Arc::new(AggregateCache::new(capacity)));
        let sink = Sink { held: HeldConnections::for_pool(&pool), pool, waker: Arc::default() };
        EventStore { sink, cache, writers: Arc::new(Writers::new()) }
    }

    fn cached<A: StoredAggregate>(&self, aggregate_id: &str) -> Option<Loaded<A>> {
        let (state, sequence) = self.cache.as_ref()?.get(&(A::TYPE, aggregate_id.to_string()))?;
        let state = state.downcast_ref::<A>()?.clone();
        Some(Loaded { state, sequence })
    }

    fn remember<A: StoredAggregate>(&self, aggregate_id: &str, state: &A, sequence: i64) {
        if let Some(cache) = &self.cache {
            cache.insert((A::TYPE, aggregate_id.to_string()), (Arc::new(state.clone()), sequence));
        }
    }

    fn forget<A: StoredAggregate>(&self, aggregate_id: &str) {
        if let Some(cache) = &self.cache {
            cache.remove(&(A::TYPE, aggregate_id.to_string()));
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.sink.pool
    }

    /// Loads the aggregate: its latest snapshot (if of the current state version) plus the events
    /// after it, in one round trip.
    pub async fn load<A: StoredAggregate>(&self, aggregate_id: &str) -> Result<Loaded<A>, StoreError> {
        Ok(self.load_rows::<A>(aggregate_id, None).await?.0)
    }

    /// [`EventStore::load`] of `aggregate_id` and, in the same round trip, when the aggregate
    /// `other` of the same type recorded its first event (`None` when it has none).
    pub async fn load_noting_first<A: StoredAggregate>(
        &self,
        aggregate_id: &str,
        other: &str,
    ) -> Result<(Loaded<A>, Option<DateTime<Utc>>), StoreError> {
        self.load_rows::<A>(aggregate_id, Some(other)).await
    }

    async fn load_rows<A: StoredAggregate>(
        &self,
        aggregate_id: &str,
        other: Option<&str>,
    ) -> Result<(Loaded<A>, Option<DateTime<Utc>>), StoreError> {
        // The other aggregate's first event comes as sequence -1 (no event has a negative one),
        // its time in microseconds since the epoch in the payload column; without another
        // aggregate (`$4` NULL) that branch finds nothing.
        const LOAD: &str = "SELECT NULL::bigint, NULL::text, NULL::text, s.payload::text, s.last_sequence \
               FROM aggregate_snapshots s \
              WHERE s.aggregate_type = $1 AND s.aggregate_id = $2 AND s.state_version = $3 \
             UNION ALL \
             SELECT -1, NULL, NULL, (extract(epoch FROM o.recorded_at) * 1000000)::bigint::text, NULL \
               FROM events o \
              WHERE o.aggregate_type = $1 AND o.aggregate_id = $4 AND o.sequence = 1 \
             UNION ALL \
             SELECT e.sequence, e.event_type, e.event_version, e.payload::text, NULL \
               FROM events e \
              WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 \
                AND e.sequence > COALESCE((SELECT last_sequence FROM aggregate_snapshots \
                     WHERE aggregate_type = $1 AND aggregate_id = $2 AND state_version = $3), 0) \
             ORDER BY 1 NULLS FIRST";
        let mut conn = connection(&self.sink).await?;
        let rows: sqlx::Result<Vec<LoadRow>> = sqlx::query_as(LOAD)
            .bind(A::TYPE)
            .bind(aggregate_id)
            .bind(A::STATE_VERSION)
            .bind(other)
            .fetch_all(&mut *conn)
            .await;
        conn.finished(&rows);
        drop(conn);
        let mut rows = rows?;
        let mut other_first = None;
        if other.is_some()
            && let Some(i) = rows.iter().position(|r| r.0 == Some(-1))
        {
            let row = rows.remove(i);
            let micros: i64 = row.3.parse().map_err(|_| StoreError::Corrupt(format!("recorded_at {}", row.3)))?;
            other_first = DateTime::from_timestamp_micros(micros);
        }
        for row in rows.iter_mut() {
            if let (Some(event_type), true) = (&row.1, aisales_projections::pii::is_sealed(&row.3)) {
                let opened = aisales_projections::pii::open_payload(&self.sink.pool, event_type, &row.3)
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("{} {aggregate_id}: {e:#}", A::TYPE)))?;
                if let Some(clear) = opened {
                    row.3 = clear;
                }
            }
        }

        let mut state = A::default();
        let mut sequence = 0;
        for (seq, event_type, event_version, payload, snap_seq) in rows {
            match (seq, snap_seq) {
                (None, Some(snap_seq)) => {
                    state = serde_json::from_str(&payload)
                        .map_err(|e| StoreError::Corrupt(format!("snapshot of {} {aggregate_id}: {e}", A::TYPE)))?;
                    sequence = snap_seq;
                }
                (Some(seq), _) => {
                    let event = A::Event::decode(
                        event_type.as_deref().unwrap_or_default(),
                        event_version.as_deref().unwrap_or_default(),
                        &payload,
                    )
                    .map_err(|e| StoreError::Corrupt(format!("{} {aggregate_id} event {seq}: {e}", A::TYPE)))?;
                    state.apply(event);
                    sequence = seq;
                }
                (None, None) => return Err(StoreError::Corrupt("row without sequence".into())),
            }
        }
        Ok((Loaded { state, sequence }, other_first))
    }

    /// All events of one aggregate as envelopes (upcast to current versions), in sequence order.
    pub async fn load_events<A: StoredAggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, StoreError> {
        use cqrs_es::persist::PersistedEventRepository;
        let repo = postgres_es::PostgresEventRepository::new(self.sink.pool.clone());
        let serialized = repo.get_events::<A>(aggregate_id).await.map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut out = Vec::with_capacity(serialized.len());
        for ev in serialized {
            let payload = ev.payload.to_string();
            let payload = match aisales_projections::pii::open_payload(&self.sink.pool, &ev.event_type, &payload)
                .await
                .map_err(|e| StoreError::Corrupt(format!("{} {aggregate_id}: {e:#}", A::TYPE)))?
            {
                Some(clear) => clear,
                None => payload,
            };
            let payload = A::Event::decode(&ev.event_type, &ev.event_version, &payload)
                .map_err(|e| StoreError::Corrupt(format!("{} {aggregate_id} event {}: {e}", A::TYPE, ev.sequence)))?;
            let metadata = serde_json::from_value(ev.metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push(EventEnvelope { aggregate_id: ev.aggregate_id, sequence: ev.sequence, payload, metadata });
        }
        Ok(out)
    }

    /// Appends `events` after `expected_sequence`, written together with the appends of other
    /// commands waiting at the same moment. Fails with [`StoreError::Conflict`] when another
    /// writer appended first.
    pub async fn append<A: StoredAggregate>(
        &self,
        aggregate_id: &str,
        expected_sequence: i64,
        events: &[A::Event],
        metadata: &EventMetadata,
        subject: Option<Subject>,
    ) -> Result<Option<Committed>, StoreError> {
        self.append_sealed::<A>(aggregate_id, expected_sequence, events, metadata, subject, false).await
    }

    /// [`EventStore::append`]; with `new_key`, the first events of an aggregate that is its own
    /// data subject (a lead) are sealed with a key made here and stored by the same statement,
    /// instead of one statement (and commit) of its own before them. A subject that turns out
    /// to have a key already fails the append as a conflict, which the caller retries without.
    async fn append_sealed<A: StoredAggregate>(
        &self,
        aggregate_id: &str,
        expected_sequence: i64,
        events: &[A::Event],
        metadata: &EventMetadata,
        subject: Option<Subject>,
        new_key: bool,
    ) -> Result<Option<Committed>, StoreError> {
        if events.is_empty() {
            return Ok(None);
        }
        let mut append = Append::of::<A>(aggregate_id, expected_sequence, events, metadata)?;
        if let Some(subject) = subject {
            let new_key =
                new_key && expected_sequence == 0 && Uuid::try_parse(aggregate_id).is_ok_and(|id| id == subject.id);
            append.seal::<A>(&self.sink.pool, &subject, events, new_key).await?;
        }
        let append = Arc::new(append);
        let sink = &self.sink;
        self.writers.start(sink);
        let taken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (done, outcome) = tokio::sync::oneshot::channel();
        let queued = Queued { append: append.clone(), taken: taken.clone(), done };
        let result = match self.writers.queue.send(queued).await {
            Ok(()) => match outcome.await {
                Ok(result) => result,
                // The writers stopped with the runtime that started them, before taking this one:
                // nothing of it was written, so write it here.
                Err(_) if !taken.load(std::sync::atomic::Ordering::SeqCst) => write_alone(sink, append).await,
                Err(_) => Err(StoreError::Interrupted),
            },
            // The writers are gone with the runtime that started them: write here.
            Err(tokio::sync::mpsc::error::SendError(q)) => write_alone(sink, q.append).await,
        };
        result.map(Some)
    }

    /// Appends of several commands in one transaction where possible, each with its own outcome
    /// (in the order given): a conflict of one leaves the others written. Appends to the same
    /// aggregate are taken in sequence order, and one after a failed one fails with it.
    pub async fn append_together(&self, appends: Vec<Append>) -> Vec<Result<Committed, StoreError>> {
        write_batch(&self.sink, appends.into_iter().map(Arc::new).collect()).await
    }

    /// Writes a snapshot of `state` at `sequence` (a cache: failures are logged, not returned).
    pub async fn save_snapshot<A: StoredAggregate>(&self, aggregate_id: &str, sequence: i64, state: &A) {
        let payload = match serde_json::to_string(state) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(aggregate = A::TYPE, error = %e, "snapshot not serializable");
                return;
            }
        };
        let r = sqlx::query(
            "INSERT INTO aggregate_snapshots AS s (aggregate_type, aggregate_id, state_version, last_sequence, payload) \
             VALUES ($1, $2, $3, $4, $5::jsonb) \
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET \
               state_version = EXCLUDED.state_version, last_sequence = EXCLUDED.last_sequence, \
               payload = EXCLUDED.payload, updated_at = now() \
             WHERE s.last_sequence < EXCLUDED.last_sequence OR s.state_version <> EXCLUDED.state_version",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(A::STATE_VERSION)
        .bind(sequence)
        .bind(payload)
        .execute(&self.sink.pool)
        .await;
        if let Err(e) = r {
            tracing::warn!(aggregate = A::TYPE, error = %e, "snapshot not saved");
        }
    }

    /// Runs a command: load, decide, append; on a concurrent append, reload and retry (bounded).
    /// Runs in a `command` span naming the aggregate, the actor and the correlation id, so every
    /// log line of the command carries the chain it belongs to.
    #[tracing::instrument(
        name = "command",
        level = "info",
        skip_all,
        fields(aggregate = A::TYPE, aggregate_id = %aggregate_id, actor = %metadata.actor, correlation_id = %metadata.correlation_id)
    )]
    pub async fn execute<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: &EventMetadata,
    ) -> Result<Outcome<A>, ExecuteError<A::Error>>
    where
        A: StoredAggregate,
        A::Command: Clone,
    {
        self.execute_loaded(aggregate_id, None, command, services, metadata).await
    }

    /// [`EventStore::execute`] starting from `loaded`, the aggregate as just read from the store
    /// (by [`EventStore::load_noting_first`]), instead of reading it again. A retry reads it.
    pub async fn execute_loaded<A>(
        &self,
        aggregate_id: &str,
        mut loaded: Option<Loaded<A>>,
        command: A::Command,
        services: &A::Services,
        metadata: &EventMetadata,
    ) -> Result<Outcome<A>, ExecuteError<A::Error>>
    where
        A: StoredAggregate,
        A::Command: Clone,
    {
        let started = Instant::now();
        let mut attempt = 0;
        let mut trust_cache = true;
        // A new data key goes in with the first append only: after a conflict, the stored one
        // (if any) is used.
        let mut new_key = true;
        let result = loop {
            let given = loaded.take();
            let cached = if trust_cache && given.is_none() { self.cached::<A>(aggregate_id) } else { None };
            let from_cache = cached.is_some();
            let Loaded { mut state, sequence } = match (given, cached) {
                (Some(given), _) => {
                    attempt += 1;
                    given
                }
                (None, Some(c)) => c,
                (None, None) => {
                    attempt += 1;
                    self.load::<A>(aggregate_id).await?
                }
            };
            trust_cache = false;
            let sink = cqrs_es::event_sink::EventSink::<A>::default();
            let decided = state.handle(command.clone(), services, &sink).await;
            let events = sink.collect().await;
            if from_cache && (decided.is_err() || events.is_empty()) {
                // The copy may be behind: decide refusals and no-ops on the stored state.
                continue;
            }
            if let Err(e) = decided {
                break Err(ExecuteError::Rejected(e));
            }
            let subject = state.data_subject(aggregate_id);
            let appended = self.append_sealed::<A>(aggregate_id, sequence, &events, metadata, subject, new_key).await;
            new_key = false;
            match appended {
                Ok(committed) => {
                    if let Some(c) = committed
                        && c.last_sequence / A::SNAPSHOT_EVERY > sequence / A::SNAPSHOT_EVERY
                    {
                        self.save_snapshot(aggregate_id, c.last_sequence, &state).await;
                    }
                    let seq = committed.map_or(sequence, |c| c.last_sequence);
                    self.remember(aggregate_id, &state, seq);
                    break Ok(Outcome { state, committed, sequence: seq });
                }
                Err(StoreError::Conflict) if from_cache => {
                    // Another process appended since this copy was made: load and decide again.
                    metrics::counter!("aisales_event_store_stale_cache_total", "aggregate" => A::TYPE).increment(1);
                    self.forget::<A>(aggregate_id);
                }
                Err(StoreError::Conflict) if attempt < MAX_ATTEMPTS => {
                    // Full jitter, growing with the attempts, capped at a quarter second.
                    let jitter = rand::random_range(0..=(5u64 << attempt.min(6)).min(250));
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                Err(StoreError::Conflict) => {
                    self.forget::<A>(aggregate_id);
                    break Err(ExecuteError::Conflict);
                }
                Err(e) => {
                    self.forget::<A>(aggregate_id);
                    break Err(e.into());
                }
            }
        };
        metrics::histogram!("aisales_command_duration_seconds", "aggregate" => A::TYPE)
            .record(started.elapsed().as_secs_f64());
        result
    }
}
