//! Group commit: appends of concurrent commands written together by a few writer tasks, one
//! statement and one transaction per batch, each append keeping its own outcome; and the
//! notification that wakes projectors after commits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aisales_projections::Position;
use cqrs_es::DomainEvent;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

use super::{Committed, EVENTS_CHANNEL, EventMetadata, StoreError, StoredAggregate};
use crate::infra::db::{HeldConnection, HeldConnections};

/// Shortest time between two notifications of one store: a busy writer sends at most 200 a
/// second (each is a small transaction of its own), and a projector learns of an append at most
/// this much later than it could.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(5);

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
    /// The data key the events were sealed with when it is new: stored with them.
    new_key: Option<aisales_projections::pii::NewKey>,
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
            new_key: None,
        })
    }

    /// Seals the customer-data fields of the events (`events`, the ones this append was made of)
    /// with the subject's data key ([`aisales_projections::pii`]). With `new_key`, a subject
    /// whose key this process does not hold gets a new key, stored by the statement that writes
    /// these events (which then fails as a conflict if the subject has a key already); without
    /// it, the subject's key is read, or made and stored, first.
    pub(super) async fn seal<A: StoredAggregate>(
        &mut self,
        pool: &sqlx::PgPool,
        subject: &aisales_projections::pii::Subject,
        events: &[A::Event],
        new_key: bool,
    ) -> Result<(), StoreError> {
        let corrupt = |e: anyhow::Error| StoreError::Corrupt(format!("customer data cannot be sealed: {e:#}"));
        let mut key = None;
        for (i, event) in events.iter().enumerate() {
            let paths = <A::Event as aisales_domain::codec::EventSchema>::pii_paths(&self.event_types[i]);
            if paths.is_empty() {
                continue;
            }
            let mut value = serde_json::to_value(event)
                .map_err(|err| StoreError::Corrupt(format!("event cannot be serialized: {err}")))?;
            if new_key && key.is_none() {
                key = Some(aisales_projections::pii::NewKey::make(subject).map_err(corrupt)?);
            }
            match key.as_ref().and_then(Option::as_ref) {
                Some(key) => key.seal(&self.event_types[i], paths, &mut value),
                None => aisales_projections::pii::seal(pool, subject, &self.event_types[i], paths, &mut value)
                    .await
                    .map_err(corrupt)?,
            }
            self.payloads[i] = value.to_string();
        }
        self.new_key = key.flatten();
        Ok(())
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
pub(super) struct Queued {
    pub(super) append: Arc<Append>,
    /// Set when a writer took it: from then on its outcome is unknown until reported.
    pub(super) taken: Arc<std::sync::atomic::AtomicBool>,
    pub(super) done: tokio::sync::oneshot::Sender<Result<Committed, StoreError>>,
}

/// Where appends are written, and who is told about them.
#[derive(Clone)]
pub(super) struct Sink {
    pub(super) pool: PgPool,
    pub(super) held: Arc<HeldConnections>,
    pub(super) waker: Arc<Waker>,
}

/// The queue of appends and the writer tasks that drain it (started with the first append).
pub(super) struct Writers {
    pub(super) queue: tokio::sync::mpsc::Sender<Queued>,
    /// Handed to the writers when they start; dropped with them, which closes the queue.
    waiting: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Queued>>>,
}

impl Writers {
    pub(super) fn new() -> Self {
        let (queue, waiting) = tokio::sync::mpsc::channel(4 * MAX_BATCH * WRITERS);
        Writers { queue, waiting: std::sync::Mutex::new(Some(waiting)) }
    }

    pub(super) fn start(&self, sink: &Sink) {
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
pub(super) async fn write_batch(sink: &Sink, appends: Vec<Arc<Append>>) -> Vec<Result<Committed, StoreError>> {
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
pub(super) async fn write_alone(sink: &Sink, append: Arc<Append>) -> Result<Committed, StoreError> {
    write_batch(sink, vec![append]).await.pop().expect("one outcome per append")
}

/// Counts an append's outcome and, when it was written, wakes the projectors.
fn recorded(sink: &Sink, a: &Append, result: &Result<Committed, StoreError>) {
    match result {
        Ok(_) => {
            if let Some(key) = &a.new_key {
                key.stored();
            }
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
    let keys: Vec<_> = appends.iter().filter_map(|a| a.new_key.as_ref().map(|k| k.row())).collect();
    // New data keys go in with the events, in the same statement: a subject that has a key
    // already fails it as a conflict (nothing written), and its events are sealed again.
    macro_rules! insert_events {
        () => {
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, tenant_id) \
             SELECT x.agg, x.id, x.seq, x.typ, x.ver, x.payload::json, x.meta::json, x.tenant \
               FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::uuid[]) \
                    AS x(agg, id, seq, typ, ver, payload, meta, tenant) \
             RETURNING aggregate_type, aggregate_id, sequence, tx_id::text::bigint, global_position"
        };
    }
    const EVENTS: &str = insert_events!();
    const KEYS_AND_EVENTS: &str = concat!(
        "WITH keys AS ( \
           INSERT INTO data_keys (subject_id, tenant_id, kind, key_id, nonce, wrapped) \
           SELECT * FROM UNNEST($9::uuid[], $10::uuid[], $11::text[], $12::text[], $13::bytea[], $14::bytea[])) ",
        insert_events!()
    );
    let query = sqlx::query_as(if keys.is_empty() { EVENTS } else { KEYS_AND_EVENTS })
        .bind(&types)
        .bind(&ids)
        .bind(&seqs)
        .bind(&event_types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&tenants);
    let query = if keys.is_empty() {
        query
    } else {
        query
            .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.2).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.3).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.4).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.5).collect::<Vec<_>>())
    };
    let mut conn = connection(sink).await?;
    let result: sqlx::Result<Vec<WrittenRow>> = query.fetch_all(&mut *conn).await;
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
pub(super) async fn connection(sink: &Sink) -> sqlx::Result<StoreConnection> {
    match sink.held.acquire().await {
        Some(held) => Ok(StoreConnection::Held(held?)),
        None => Ok(StoreConnection::Pooled(sink.pool.acquire().await?)),
    }
}

/// A connection for one statement of the store: a held one when free, else one from the pool.
pub(super) enum StoreConnection {
    Held(HeldConnection),
    Pooled(PoolConnection<Postgres>),
}

impl StoreConnection {
    pub(super) fn finished<T>(&mut self, result: &sqlx::Result<T>) {
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

/// Sends `NOTIFY events_appended` after commits, coalescing: while one notification is on its way,
/// further appends only mark that another is due.
pub(super) struct Waker {
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
