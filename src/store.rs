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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisales_projections::Position;
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

use crate::db::{HeldConnection, HeldConnections};

/// How an aggregate is kept in the store.
pub trait StoredAggregate: Aggregate + Clone + 'static {
    /// A snapshot is written whenever the sequence crosses a multiple of this.
    const SNAPSHOT_EVERY: i64 = 100;
    /// Bump when the serialized state changes shape: older snapshots are then ignored.
    const STATE_VERSION: i32 = 1;

    /// Upcasters for stored events of older versions.
    fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
        Vec::new()
    }
}

/// Who and what caused a command; persisted with every event it produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMetadata {
    pub tenant_id: Option<Uuid>,
    /// `user:<id>`, `token:<id>`, `customer`, `system`, `worker:<kind>`, …
    pub actor: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<String>,
    pub request_id: Option<String>,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}

impl EventMetadata {
    /// Metadata for work started by the system itself.
    pub fn system(tenant_id: Option<Uuid>, actor: impl Into<String>) -> Self {
        EventMetadata {
            tenant_id,
            actor: actor.into(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            request_id: None,
            occurred_at: chrono::Utc::now(),
        }
    }

    /// Metadata for a command caused by an earlier event (same correlation, causation = that event).
    pub fn caused_by(&self, causation: impl Into<String>, actor: impl Into<String>) -> Self {
        EventMetadata {
            tenant_id: self.tenant_id,
            actor: actor.into(),
            correlation_id: self.correlation_id,
            causation_id: Some(causation.into()),
            request_id: self.request_id.clone(),
            occurred_at: chrono::Utc::now(),
        }
    }

    pub fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::with_capacity(6);
        if let Some(t) = self.tenant_id {
            m.insert("tenant_id".into(), t.to_string());
        }
        m.insert("actor".into(), self.actor.clone());
        m.insert("correlation_id".into(), self.correlation_id.to_string());
        if let Some(c) = &self.causation_id {
            m.insert("causation_id".into(), c.clone());
        }
        if let Some(r) = &self.request_id {
            m.insert("request_id".into(), r.clone());
        }
        m.insert("occurred_at".into(), self.occurred_at.to_rfc3339());
        m
    }

    /// Reads metadata back from its stored map (unknown keys are ignored).
    pub fn from_map(m: &HashMap<String, String>) -> Self {
        EventMetadata {
            tenant_id: m.get("tenant_id").and_then(|s| s.parse().ok()),
            actor: m.get("actor").cloned().unwrap_or_default(),
            correlation_id: m.get("correlation_id").and_then(|s| s.parse().ok()).unwrap_or_default(),
            causation_id: m.get("causation_id").cloned(),
            request_id: m.get("request_id").cloned(),
            occurred_at: m
                .get("occurred_at")
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&chrono::Utc))
                .unwrap_or_default(),
        }
    }
}

/// Failures of the store itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the aggregate first (SQLSTATE 23505 on the primary key).
    #[error("the aggregate was changed concurrently")]
    Conflict,
    /// The writer of an append stopped (its runtime shut down) before reporting whether the
    /// append was written.
    #[error("the append was interrupted before its outcome was known")]
    Interrupted,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
}

/// Outcome of a command that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate rejected the command (a business rule).
    #[error("{0}")]
    Rejected(E),
    /// Still conflicting after the bounded number of retries.
    #[error("the aggregate is being changed by others; try again")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// Shortest time between two notifications of one store: a busy writer sends at most 200 a
/// second (each is a small transaction of its own), and a projector learns of an append at most
/// this much later than it could.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(5);

/// Loads and appends events of any [`StoredAggregate`].
#[derive(Clone)]
pub struct EventStore {
    sink: Sink,
    cache: Option<Arc<AggregateCache>>,
    writers: Arc<Writers>,
}

/// The events of one command, serialized and ready to be appended after `expected_sequence`.
#[derive(Debug, Clone)]
pub struct Append {
    aggregate_type: &'static str,
    aggregate_id: String,
    expected_sequence: i64,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<String>,
    metadata: String,
    tenant_id: Option<Uuid>,
}

impl Append {
    /// `events` of aggregate `A` (at least one) to be appended after `expected_sequence`.
    pub fn of<A: StoredAggregate>(
        aggregate_id: &str,
        expected_sequence: i64,
        events: &[A::Event],
        metadata: &EventMetadata,
    ) -> Result<Append, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Corrupt("an append needs at least one event".into()));
        }
        let payloads = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| StoreError::Corrupt(format!("event cannot be serialized: {err}")))?;
        Ok(Append {
            aggregate_type: A::TYPE,
            aggregate_id: aggregate_id.to_string(),
            expected_sequence,
            event_types: events.iter().map(DomainEvent::event_type).collect(),
            event_versions: events.iter().map(DomainEvent::event_version).collect(),
            payloads,
            metadata: serde_json::to_string(&metadata.to_map()).expect("string map serializes"),
            tenant_id: metadata.tenant_id,
        })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Always false: an append holds at least one event.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    fn key(&self) -> (&str, &str, i64) {
        (self.aggregate_type, &self.aggregate_id, self.expected_sequence)
    }

    fn committed(&self, position: Position) -> Committed {
        Committed {
            first_sequence: self.expected_sequence + 1,
            last_sequence: self.expected_sequence + self.len() as i64,
            position,
        }
    }
}

/// Writer tasks per store: each writes one batch at a time.
const WRITERS: usize = 4;

/// Most appends written in one statement.
const MAX_BATCH: usize = 64;

/// An append waiting for a writer, and where its outcome goes.
struct Queued {
    append: Arc<Append>,
    /// Set when a writer took it: from then on its outcome is unknown until reported.
    taken: Arc<std::sync::atomic::AtomicBool>,
    done: tokio::sync::oneshot::Sender<Result<Committed, StoreError>>,
}

/// Where appends are written, and who is told about them.
#[derive(Clone)]
struct Sink {
    pool: PgPool,
    held: Arc<HeldConnections>,
    waker: Arc<Waker>,
}

/// The queue of appends and the writer tasks that drain it (started with the first append).
struct Writers {
    queue: tokio::sync::mpsc::Sender<Queued>,
    /// Handed to the writers when they start; dropped with them, which closes the queue.
    waiting: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Queued>>>,
}

impl Writers {
    fn new() -> Self {
        let (queue, waiting) = tokio::sync::mpsc::channel(4 * MAX_BATCH * WRITERS);
        Writers { queue, waiting: std::sync::Mutex::new(Some(waiting)) }
    }

    fn start(&self, sink: &Sink) {
        let Some(receiver) = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_queued(receiver.clone(), sink.clone()));
        }
    }
}

/// A writer: takes whatever is queued (up to [`MAX_BATCH`]) and writes it, until the store is gone.
async fn write_queued(receiver: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Queued>>>, sink: Sink) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if receiver.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        // An append whose caller stopped waiting (a request that timed out) is not written: the
        // caller reported a failure, and its client retries.
        let (appends, done): (Vec<Arc<Append>>, Vec<_>) = batch
            .drain(..)
            .filter(|q| !q.done.is_closed())
            .map(|q| {
                q.taken.store(true, std::sync::atomic::Ordering::SeqCst);
                (q.append, q.done)
            })
            .unzip();
        if appends.is_empty() {
            continue;
        }
        for (result, done) in write_batch(&sink, appends).await.into_iter().zip(done) {
            // A caller that stopped waiting meanwhile learns nothing; the append stands.
            let _ = done.send(result);
        }
    }
}

/// Writes `appends` in one statement. When Postgres refuses that statement (a conflict of one
/// append, a deadlock, any error it reports while the session goes on), nothing of it was written
/// and each append is written again on its own, in key order; an append after a failed one of the
/// same aggregate fails with it, since it was meant to follow it. When the statement could not be
/// run or its outcome is unknown (no connection, the connection broke), every append gets that
/// error: trying them one by one would wait for the same connection again, or write twice what
/// was written. Outcomes in input order.
async fn write_batch(sink: &Sink, appends: Vec<Arc<Append>>) -> Vec<Result<Committed, StoreError>> {
    let mut order: Vec<usize> = (0..appends.len()).collect();
    order.sort_by(|&a, &b| appends[a].key().cmp(&appends[b].key()));
    let mut out: Vec<Option<Result<Committed, StoreError>>> = (0..appends.len()).map(|_| None).collect();
    let mut one_by_one = appends.len() == 1;
    if !one_by_one {
        let sorted: Vec<&Append> = order.iter().map(|&i| &*appends[i]).collect();
        match insert(sink, &sorted).await {
            Ok(committed) => {
                metrics::histogram!("aisales_event_store_batch_appends").record(appends.len() as f64);
                for (&i, c) in order.iter().zip(committed) {
                    out[i] = Some(Ok(c));
                }
            }
            Err(e) if refused(&e) => {
                one_by_one = true;
                metrics::counter!("aisales_event_store_batches_split_total").increment(1);
                tracing::debug!(appends = appends.len(), error = %e, "batch not written; writing its appends one by one");
            }
            Err(e) => {
                for &i in &order[1..] {
                    out[i] = Some(Err(replicate(&e)));
                }
                out[order[0]] = Some(Err(e));
            }
        }
    }
    if one_by_one {
        let mut failed: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
        for &i in &order {
            let a = &appends[i];
            let aggregate = (a.aggregate_type, a.aggregate_id.as_str());
            let result = if failed.contains(&aggregate) {
                Err(StoreError::Conflict)
            } else {
                insert(sink, &[a]).await.map(|mut c| c.remove(0))
            };
            match &result {
                Ok(_) => metrics::histogram!("aisales_event_store_batch_appends").record(1.0),
                Err(_) => {
                    failed.insert(aggregate);
                }
            }
            out[i] = Some(result);
        }
    }
    let out: Vec<Result<Committed, StoreError>> =
        out.into_iter().map(|r| r.expect("every append has an outcome")).collect();
    for (a, result) in appends.iter().zip(&out) {
        recorded(sink, a, result);
    }
    out
}

/// Writes one append on its own.
async fn write_alone(sink: &Sink, append: Arc<Append>) -> Result<Committed, StoreError> {
    write_batch(sink, vec![append]).await.pop().expect("one outcome per append")
}

/// Counts an append's outcome and, when it was written, wakes the projectors.
fn recorded(sink: &Sink, a: &Append, result: &Result<Committed, StoreError>) {
    match result {
        Ok(_) => {
            sink.waker.poke(&sink.pool);
            metrics::counter!("aisales_event_store_appends_total", "aggregate" => a.aggregate_type).increment(1);
            metrics::counter!("aisales_event_store_events_appended_total", "aggregate" => a.aggregate_type)
                .increment(a.len() as u64);
        }
        Err(StoreError::Conflict) => {
            metrics::counter!("aisales_event_store_conflicts_total", "aggregate" => a.aggregate_type).increment(1);
        }
        Err(_) => {}
    }
}

/// Whether Postgres refused the statement and kept the session: nothing of it was written.
fn refused(e: &StoreError) -> bool {
    match e {
        StoreError::Conflict => true,
        StoreError::Database(sqlx::Error::Database(db)) => {
            db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some_and(|e| {
                !matches!(e.severity(), sqlx::postgres::PgSeverity::Fatal | sqlx::postgres::PgSeverity::Panic)
            })
        }
        _ => false,
    }
}

/// The same failure for another append of a batch (`sqlx::Error` cannot be cloned): the kinds
/// that answer 503 stay those kinds; anything else says the connection is gone, which it is.
fn replicate(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Interrupted => StoreError::Interrupted,
        StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
        StoreError::Database(d) => StoreError::Database(match d {
            sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
            sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
            sqlx::Error::Tls(t) => sqlx::Error::Tls(t.to_string().into()),
            other => sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, other.to_string())),
        }),
    }
}

/// An event as an append reports it back: (aggregate type, aggregate id, sequence, tx id, global position).
type WrittenRow = (String, String, i64, i64, i64);

/// One statement appending every event of `appends` (in this order, which for more than one
/// must be [`Append::key`] order); the outcome of each append.
async fn insert(sink: &Sink, appends: &[&Append]) -> Result<Vec<Committed>, StoreError> {
    let rows: usize = appends.iter().map(|a| a.len()).sum();
    let mut types = Vec::with_capacity(rows);
    let mut ids = Vec::with_capacity(rows);
    let mut seqs = Vec::with_capacity(rows);
    let mut event_types = Vec::with_capacity(rows);
    let mut versions = Vec::with_capacity(rows);
    let mut payloads = Vec::with_capacity(rows);
    let mut metadata = Vec::with_capacity(rows);
    let mut tenants = Vec::with_capacity(rows);
    for a in appends {
        for i in 0..a.len() {
            types.push(a.aggregate_type);
            ids.push(a.aggregate_id.as_str());
            seqs.push(a.expected_sequence + 1 + i as i64);
            event_types.push(a.event_types[i].as_str());
            versions.push(a.event_versions[i].as_str());
            payloads.push(a.payloads[i].as_str());
            metadata.push(a.metadata.as_str());
            tenants.push(a.tenant_id);
        }
    }
    let mut conn = connection(sink).await?;
    let result: sqlx::Result<Vec<WrittenRow>> = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, tenant_id) \
         SELECT x.agg, x.id, x.seq, x.typ, x.ver, x.payload::json, x.meta::json, x.tenant \
           FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::uuid[]) \
                AS x(agg, id, seq, typ, ver, payload, meta, tenant) \
         RETURNING aggregate_type, aggregate_id, sequence, tx_id::text::bigint, global_position",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&seqs)
    .bind(&event_types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .bind(&tenants)
    .fetch_all(&mut *conn)
    .await;
    conn.finished(&result);
    drop(conn);
    let written = match result {
        Ok(written) => written,
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => return Err(StoreError::Conflict),
        Err(e) => return Err(e.into()),
    };
    // The position of each append is that of its last event.
    let positions: HashMap<(&str, &str, i64), Position> = written
        .iter()
        .map(|(agg, id, seq, tx_id, pos)| ((agg.as_str(), id.as_str(), *seq), Position::new(*tx_id, *pos)))
        .collect();
    appends
        .iter()
        .map(|a| {
            let last = a.expected_sequence + a.len() as i64;
            let position =
                positions.get(&(a.aggregate_type, a.aggregate_id.as_str(), last)).copied().ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "the append to {} {} was not reported back",
                        a.aggregate_type, a.aggregate_id
                    ))
                })?;
            Ok(a.committed(position))
        })
        .collect()
}

/// A connection for one statement of the store: a held one when free, else one from the pool.
async fn connection(sink: &Sink) -> sqlx::Result<StoreConnection> {
    match sink.held.acquire().await {
        Some(held) => Ok(StoreConnection::Held(held?)),
        None => Ok(StoreConnection::Pooled(sink.pool.acquire().await?)),
    }
}

/// A connection for one statement of the store: a held one when free, else one from the pool.
enum StoreConnection {
    Held(HeldConnection),
    Pooled(PoolConnection<Postgres>),
}

impl StoreConnection {
    fn finished<T>(&mut self, result: &sqlx::Result<T>) {
        if let StoreConnection::Held(c) = self {
            c.finished(result);
        }
    }
}

impl std::ops::Deref for StoreConnection {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            StoreConnection::Held(c) => c,
            StoreConnection::Pooled(c) => c,
        }
    }
}

impl std::ops::DerefMut for StoreConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            StoreConnection::Held(c) => c,
            StoreConnection::Pooled(c) => c,
        }
    }
}

/// Aggregates this process used recently: state and the sequence it is at.
type AggregateCache = quick_cache::sync::Cache<(&'static str, String), (Arc<dyn std::any::Any + Send + Sync>, i64)>;

/// Aggregates kept in memory per process by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;

/// Sends `NOTIFY events_appended` after commits, coalescing: while one notification is on its way,
/// further appends only mark that another is due.
struct Waker {
    due: tokio::sync::Notify,
    started: std::sync::Once,
}

impl Default for Waker {
    fn default() -> Self {
        Waker { due: tokio::sync::Notify::new(), started: std::sync::Once::new() }
    }
}

impl Waker {
    fn poke(self: &Arc<Self>, pool: &PgPool) {
        self.started.call_once(|| {
            let (waker, pool) = (Arc::downgrade(self), pool.clone());
            tokio::spawn(notify_loop(waker, pool));
        });
        self.due.notify_one();
    }
}

async fn notify_loop(waker: std::sync::Weak<Waker>, pool: PgPool) {
    loop {
        let Some(w) = waker.upgrade() else { return };
        // Wake up now and then to notice that the store is gone.
        let due = tokio::time::timeout(Duration::from_secs(5), w.due.notified()).await.is_ok();
        drop(w);
        if !due || pool.is_closed() {
            continue;
        }
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')").bind(EVENTS_CHANNEL).execute(&pool).await {
            // Projectors also poll: a lost notification only delays them.
            tracing::debug!(error = %e, "could not notify projectors");
        }
        // At most one notification per interval: appends meanwhile are covered by the next one.
        tokio::time::sleep(NOTIFY_INTERVAL).await;
    }
}

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
        let mut conn = connection(&self.sink).await?;
        let rows: sqlx::Result<Vec<LoadRow>> = sqlx::query_as(
            "SELECT NULL::bigint, NULL::text, NULL::text, s.payload::text, s.last_sequence \
               FROM aggregate_snapshots s \
              WHERE s.aggregate_type = $1 AND s.aggregate_id = $2 AND s.state_version = $3 \
             UNION ALL \
             SELECT e.sequence, e.event_type, e.event_version, e.payload::text, NULL \
               FROM events e \
              WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 \
                AND e.sequence > COALESCE((SELECT last_sequence FROM aggregate_snapshots \
                     WHERE aggregate_type = $1 AND aggregate_id = $2 AND state_version = $3), 0) \
             ORDER BY 1 NULLS FIRST",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(A::STATE_VERSION)
        .fetch_all(&mut *conn)
        .await;
        conn.finished(&rows);
        drop(conn);
        let rows = rows?;

        let upcasters = A::upcasters();
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
                    let event = decode_event::<A>(
                        aggregate_id,
                        seq,
                        event_type.as_deref().unwrap_or_default(),
                        event_version.as_deref().unwrap_or_default(),
                        &payload,
                        &upcasters,
                    )?;
                    state.apply(event);
                    sequence = seq;
                }
                (None, None) => return Err(StoreError::Corrupt("row without sequence".into())),
            }
        }
        Ok(Loaded { state, sequence })
    }

    /// All events of one aggregate as envelopes (upcast to current versions), in sequence order.
    pub async fn load_events<A: StoredAggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, StoreError> {
        use cqrs_es::persist::PersistedEventRepository;
        let repo = postgres_es::PostgresEventRepository::new(self.sink.pool.clone());
        let serialized = repo.get_events::<A>(aggregate_id).await.map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let upcasters = A::upcasters();
        serialized
            .into_iter()
            .map(|mut ev| {
                for u in &upcasters {
                    if u.can_upcast(&ev.event_type, &ev.event_version) {
                        ev = u.upcast(ev);
                    }
                }
                EventEnvelope::<A>::try_from(ev).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
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
    ) -> Result<Option<Committed>, StoreError> {
        if events.is_empty() {
            return Ok(None);
        }
        let append = Arc::new(Append::of::<A>(aggregate_id, expected_sequence, events, metadata)?);
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
    pub async fn execute<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: &EventMetadata,
    ) -> Result<Outcome<A>, CommandError<A::Error>>
    where
        A: StoredAggregate,
        A::Command: Clone,
    {
        let started = Instant::now();
        let mut attempt = 0;
        let mut trust_cache = true;
        let result = loop {
            let cached = if trust_cache { self.cached::<A>(aggregate_id) } else { None };
            let from_cache = cached.is_some();
            let Loaded { mut state, sequence } = match cached {
                Some(c) => c,
                None => {
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
                break Err(CommandError::Rejected(e));
            }
            match self.append::<A>(aggregate_id, sequence, &events, metadata).await {
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
                    break Err(CommandError::Conflict);
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

/// Turns one stored row into an event of `A`, upcasting older versions first.
pub fn decode_event<A: StoredAggregate>(
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    event_version: &str,
    payload: &str,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<A::Event, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("{} {aggregate_id} event {sequence} ({event_type} v{event_version}): {e}", A::TYPE))
    };
    if !upcasters.iter().any(|u| u.can_upcast(event_type, event_version)) {
        return serde_json::from_str(payload).map_err(|e| corrupt(&e));
    }
    let value: Value = serde_json::from_str(payload).map_err(|e| corrupt(&e))?;
    let mut ev = SerializedEvent::new(
        aggregate_id.to_string(),
        sequence as usize,
        A::TYPE.to_string(),
        event_type.to_string(),
        event_version.to_string(),
        value,
        Value::Null,
    );
    for u in upcasters {
        if u.can_upcast(&ev.event_type, &ev.event_version) {
            ev = u.upcast(ev);
        }
    }
    serde_json::from_value(ev.payload).map_err(|e| corrupt(&e))
}

impl StoredAggregate for aisales_domain::conversation::Conversation {
    const SNAPSHOT_EVERY: i64 = 100;
    // 2: vehicle lookups of the conversation are part of the state.
    // 3: recent provider message ids are kept as keys (`provider_key`).
    // 4: sent replies keep no text.
    // 5: replies know when they may be sent (`not_before`).
    const STATE_VERSION: i32 = 5;

    fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
        aisales_domain::conversation::upcasters()
    }
}

impl StoredAggregate for aisales_domain::vehicle_lookup::VehicleLookup {
    // A lookup has a few dozen events at most.
    const SNAPSHOT_EVERY: i64 = 50;
}

impl StoredAggregate for aisales_domain::probe::Probe {
    // A probe has two events; snapshots would never pay off.
    const SNAPSHOT_EVERY: i64 = i64::MAX;
}
