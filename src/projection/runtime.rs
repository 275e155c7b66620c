//! The projector runtime: runs every projector in a loop, owned by one process at a time.
//!
//! * **Ownership.** A process owns a projector while it holds a session advisory lock on a
//!   dedicated connection. When the process dies, Postgres drops the connection and the lock, and
//!   another process takes the projector over at its next lease attempt (every `lease_interval`).
//!   Ownership only avoids wasted work: correctness comes from [`apply_next_batch`], which
//!   serialises batches with a transaction lock and moves the checkpoint by compare-and-set.
//! * **Wake-up.** `LISTEN events_appended` (the event store notifies after its appends commit)
//!   wakes the projectors; they also poll every `poll_interval`, so a lost notification only delays them.
//!   Most projectors then let events gather for `gather` before reading (fewer, larger
//!   transactions). An [eager](Projector::eager) projector (the dispatcher: its batches start jobs) reads at once; its
//!   batches grow by themselves with the load, since what arrives during one batch is the next.
//!   When committed events wait behind an older transaction still in flight (a reader never
//!   passes it), an eager projector looks again after a few milliseconds instead of waiting for
//!   the next notification, which may never come.
//! * **One read.** The projectors of a process share an [`EventFeed`]: the first to reach new
//!   events reads them, the others take the same events from memory.
//! * **Stop.** On cancellation each projector finishes the batch in hand (a batch is one
//!   transaction) and exits; nothing half-applied is left.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aisales_projections::events::{self, Position};
use aisales_projections::{BatchOutcome, EventFeed, Projector, apply_next_batch_from};
use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use crate::infra::db::LEASE_SPACE;
pub use crate::infra::instance_name;

/// Channel the event store notifies on.
pub use crate::store::EVENTS_CHANNEL;

/// Tunables of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub poll_interval: Duration,
    /// After a wake-up, how long new events may gather before the batch is read: under a steady
    /// stream of appends this turns many tiny transactions into fewer larger ones.
    pub gather: Duration,
    pub lease_interval: Duration,
    pub batch_size: Option<i64>,
    /// Name shown as the owner in `projections status` (application_name of the lease connection).
    pub instance: String,
    /// While it reports an intake burst, every projector (the dispatcher too) gathers for
    /// [`BURST_GATHER`] (`crate::infra::intake`).
    pub burst: crate::infra::intake::BurstSignal,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            poll_interval: Duration::from_millis(1000),
            gather: Duration::from_millis(20),
            lease_interval: Duration::from_millis(1000),
            batch_size: None,
            instance: instance_name("projector"),
            burst: crate::infra::intake::BurstSignal::off(),
        }
    }
}

/// Runs the given projectors until `cancel` fires.
pub struct ProjectorRuntime {
    pool: PgPool,
    connect: PgConnectOptions,
    projectors: Vec<Arc<dyn Projector>>,
    options: RuntimeOptions,
}

impl ProjectorRuntime {
    pub fn new(
        pool: PgPool,
        connect: PgConnectOptions,
        projectors: Vec<Arc<dyn Projector>>,
        options: RuntimeOptions,
    ) -> Self {
        ProjectorRuntime { pool, connect, projectors, options }
    }

    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let names: Vec<&'static str> = self.projectors.iter().map(|p| p.name()).collect();
        tracing::info!(projectors = ?names, instance = %self.options.instance, "projector runtime starting");
        let owned: Arc<Vec<AtomicBool>> = Arc::new(names.iter().map(|_| AtomicBool::new(false)).collect());
        let (wake_tx, wake_rx) = watch::channel(0u64);
        let (lease_tx, lease_rx) = watch::channel(0u64);
        // The projectors of this process read each new event once, together.
        let feed = Arc::new(EventFeed::default());
        let head = Arc::new(LogHead::default());

        let parked = Arc::new(tokio::sync::Notify::new());

        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(listen(self.pool.clone(), wake_tx, cancel.clone()));
        tasks.spawn(watch_parked(self.pool.clone(), names.clone(), parked.clone(), cancel.clone()));
        tasks.spawn(hold_leases(
            self.connect.clone(),
            names.clone(),
            owned.clone(),
            lease_tx,
            self.options.clone(),
            cancel.clone(),
        ));
        for (i, p) in self.projectors.iter().enumerate() {
            tasks.spawn(drive(
                self.pool.clone(),
                p.clone(),
                feed.clone(),
                head.clone(),
                parked.clone(),
                i,
                owned.clone(),
                wake_rx.clone(),
                lease_rx.clone(),
                self.options.clone(),
                cancel.clone(),
            ));
        }
        while let Some(res) = tasks.join_next().await {
            if let Err(e) = res
                && e.is_panic()
            {
                cancel.cancel();
                anyhow::bail!("a projector task panicked: {e}");
            }
        }
        tracing::info!("projector runtime stopped");
        Ok(())
    }
}

/// Forwards `events_appended` notifications into a watch channel; reconnects with backoff.
async fn listen(pool: PgPool, wake: watch::Sender<u64>, cancel: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    while !cancel.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for new events; polling until reconnected");
                sleep_or_cancel(backoff, &cancel).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if let Err(e) = listener.listen(EVENTS_CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN failed");
            sleep_or_cancel(backoff, &cancel).await;
            continue;
        }
        backoff = Duration::from_millis(200);
        // Whatever arrived while we were not listening is picked up by this wake-up.
        wake.send_modify(|v| *v += 1);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                n = listener.try_recv() => match n {
                    Ok(Some(_)) => wake.send_modify(|v| *v += 1),
                    Ok(None) => {
                        tracing::warn!("LISTEN connection lost; reconnecting");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}

/// Takes and keeps projector leases on one dedicated connection.
async fn hold_leases(
    connect: PgConnectOptions,
    names: Vec<&'static str>,
    owned: Arc<Vec<AtomicBool>>,
    changed: watch::Sender<u64>,
    options: RuntimeOptions,
    cancel: CancellationToken,
) {
    let opts = connect.application_name(&options.instance).disable_statement_logging();
    let mut conn: Option<PgConnection> = None;
    let release_all = |owned: &Vec<AtomicBool>| {
        for (i, o) in owned.iter().enumerate() {
            if o.swap(false, Ordering::SeqCst) {
                tracing::warn!(projector = names[i], "projector lease lost");
                metrics::gauge!("aisales_projector_owned", "projector" => names[i]).set(0.0);
            }
        }
    };
    while !cancel.is_cancelled() {
        if conn.is_none() {
            match PgConnection::connect_with(&opts).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "lease connection failed; retrying");
                    release_all(&owned);
                    changed.send_modify(|v| *v += 1);
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            let mut ok = sqlx::query("SELECT 1").execute(&mut *c).await.is_ok();
            for (i, name) in names.iter().enumerate() {
                if !ok || owned[i].load(Ordering::SeqCst) {
                    continue;
                }
                match sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, hashtext($2))")
                    .bind(LEASE_SPACE)
                    .bind(*name)
                    .fetch_one(&mut *c)
                    .await
                {
                    Ok(true) => {
                        owned[i].store(true, Ordering::SeqCst);
                        metrics::gauge!("aisales_projector_owned", "projector" => *name).set(1.0);
                        tracing::info!(projector = *name, "projector lease taken");
                        changed.send_modify(|v| *v += 1);
                    }
                    Ok(false) => metrics::gauge!("aisales_projector_owned", "projector" => *name).set(0.0),
                    Err(_) => ok = false,
                }
            }
            if !ok {
                tracing::warn!("lease connection broken; leases released");
                conn = None;
                release_all(&owned);
                changed.send_modify(|v| *v += 1);
            }
        }
        sleep_or_cancel(options.lease_interval, &cancel).await;
    }
    // Dropping the connection releases every lease at once.
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

#[expect(clippy::too_many_arguments, reason = "one task per projector, wired once in run()")]
async fn drive(
    pool: PgPool,
    projector: Arc<dyn Projector>,
    feed: Arc<EventFeed>,
    head: Arc<LogHead>,
    parked: Arc<tokio::sync::Notify>,
    index: usize,
    owned: Arc<Vec<AtomicBool>>,
    mut wake: watch::Receiver<u64>,
    mut lease: watch::Receiver<u64>,
    options: RuntimeOptions,
    cancel: CancellationToken,
) {
    let name = projector.name();
    let eager = projector.eager();
    let mut failures: u32 = 0;
    // An eager projector's next look while committed events wait behind a transaction in flight.
    let mut recheck = RECHECK_FIRST;
    while !cancel.is_cancelled() {
        if !owned[index].load(Ordering::SeqCst) {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = lease.changed() => {},
                _ = tokio::time::sleep(options.lease_interval) => {},
            }
            continue;
        }
        // Mark notifications seen before reading, so none that arrive during the batch is missed.
        wake.borrow_and_update();
        let started = Instant::now();
        match apply_next_batch_from(&pool, projector.as_ref(), options.batch_size, Some(&feed)).await {
            Ok(outcome) => {
                failures = 0;
                if outcome.parked > 0 {
                    metrics::counter!("aisales_projector_parked_total", "projector" => name)
                        .increment(outcome.parked as u64);
                    parked.notify_one();
                }
                record(name, &outcome, started.elapsed(), &pool, &head).await;
                let full = outcome.applied as i64 >= options.batch_size.unwrap_or(projector.batch_size());
                if full {
                    continue;
                }
                if !eager {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = wake.changed() => {
                            // Under an intake burst, fewer and larger batches leave the cores
                            // to the server; the read models are at most this much later.
                            let gather = if options.burst.is_on() { options.gather.max(BURST_GATHER) } else { options.gather };
                            sleep_or_cancel(gather, &cancel).await
                        }
                        _ = tokio::time::sleep(options.poll_interval) => {},
                    }
                    continue;
                }
                // Under an intake burst the dispatcher gathers too: jobs start up to this much
                // later, and the cores go to the server's answers.
                if options.burst.is_on() {
                    sleep_or_cancel(BURST_GATHER, &cancel).await;
                    continue;
                }
                // Eager: the next batch starts on the next notification, at once. There is no
                // pause between batches: what arrived during one batch is the next, so batches
                // are small while the queue is short and grow with the load by themselves (a
                // backlog is read in full batches). A pause as long as the batch (tried: it kept
                // the projector busy half of the time) only added its length to every job's wait.
                if outcome.applied > 0 {
                    recheck = RECHECK_FIRST;
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = wake.changed() => {},
                    // Events held back by an older transaction in flight are readable once it
                    // ends, and no notification says when: look again soon after activity,
                    // then less and less often down to the poll interval.
                    _ = tokio::time::sleep(recheck) => {
                        recheck = (recheck * 2).min(options.poll_interval);
                    },
                }
            }
            Err(e) => {
                failures += 1;
                metrics::counter!("aisales_projector_batch_failures_total", "projector" => name).increment(1);
                let delay = Duration::from_millis(200u64 << failures.min(7)).min(Duration::from_secs(30));
                tracing::error!(
                    projector = name,
                    error = format!("{e:#}"),
                    retry_in_ms = delay.as_millis() as u64,
                    "projector batch failed"
                );
                sleep_or_cancel(delay, &cancel).await;
            }
        }
    }
    tracing::info!(projector = name, "projector stopped");
}

/// How long projectors let events gather during an intake burst.
pub const BURST_GATHER: Duration = Duration::from_millis(500);

/// How soon an eager projector looks again after a batch that applied events, without a
/// notification (doubling up to the poll interval while nothing new is read).
const RECHECK_FIRST: Duration = Duration::from_millis(5);

/// How often the parked-aggregates gauge is read again (a retry from the command line is seen
/// within this time).
const PARKED_REFRESH: Duration = Duration::from_secs(5);

/// Keeps `aisales_projector_parked{projector}` (aggregates a projector skips until they are
/// retried) current: one query every few seconds per process, and one right after a batch parked.
async fn watch_parked(
    pool: PgPool,
    names: Vec<&'static str>,
    parked: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
) {
    while !cancel.is_cancelled() {
        let counts = match pool.acquire().await {
            Ok(mut conn) => aisales_projections::parking::counts(&mut conn).await,
            Err(e) => Err(e),
        };
        match counts {
            Ok(counts) => {
                for name in &names {
                    let n = counts.iter().find(|(p, _)| p == name).map_or(0, |(_, n)| *n);
                    metrics::gauge!("aisales_projector_parked", "projector" => *name).set(n as f64);
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot count parked aggregates"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = parked.notified() => {},
            _ = tokio::time::sleep(PARKED_REFRESH) => {},
        }
    }
}

/// The newest global position of the log, for the lag metric: read at most once a second per
/// process, however many projectors ask (each asking after every batch was hundreds of queries a
/// second under load).
#[derive(Default)]
struct LogHead {
    last: tokio::sync::Mutex<Option<(Instant, i64)>>,
}

/// How long a read of the log's head serves the lag metric.
const HEAD_REFRESH: Duration = Duration::from_secs(1);

impl LogHead {
    async fn get(&self, pool: &PgPool) -> Option<i64> {
        let mut last = self.last.lock().await;
        if let Some((at, head)) = *last
            && at.elapsed() < HEAD_REFRESH
        {
            return Some(head);
        }
        let head = sqlx::query_scalar::<_, Option<i64>>("SELECT max(global_position) FROM events")
            .fetch_one(pool)
            .await
            .ok()??;
        *last = Some((Instant::now(), head));
        Some(head)
    }
}

async fn record(name: &'static str, outcome: &BatchOutcome, took: Duration, pool: &PgPool, head: &LogHead) {
    metrics::gauge!("aisales_projector_position", "projector" => name).set(outcome.position.global_position as f64);
    if outcome.applied == 0 {
        metrics::gauge!("aisales_projector_lag_events", "projector" => name).set(0.0);
        metrics::gauge!("aisales_projector_lag_seconds", "projector" => name).set(0.0);
        return;
    }
    metrics::counter!("aisales_projector_events_applied_total", "projector" => name).increment(outcome.applied as u64);
    metrics::histogram!("aisales_projector_batch_duration_seconds", "projector" => name).record(took.as_secs_f64());
    if let Some(at) = outcome.last_recorded_at {
        let age = (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::gauge!("aisales_projector_lag_seconds", "projector" => name).set(age);
    }
    if let Some(head) = head.get(pool).await {
        // The head may be up to a second old: never report less than nothing.
        let lag = (head - outcome.position.global_position).max(0);
        metrics::gauge!("aisales_projector_lag_events", "projector" => name).set(lag as f64);
    }
}

async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) {
    tokio::select! {
        _ = cancel.cancelled() => {},
        _ = tokio::time::sleep(d) => {},
    }
}

/// One row of `aisales projections status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectorStatus {
    pub name: String,
    pub description: String,
    pub position: String,
    pub events_applied: i64,
    pub head: String,
    pub lag_events: i64,
    pub owner: Option<String>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Aggregates the projector could not apply and skips (see `projections retry-parked`).
    pub parked: Vec<aisales_projections::parking::Parked>,
}

/// Checkpoint, head, lag and owner of every projector.
pub async fn status(pool: &PgPool, projectors: &[Arc<dyn Projector>]) -> anyhow::Result<Vec<ProjectorStatus>> {
    let mut conn = pool.acquire().await?;
    let head = events::readable_head(&mut conn).await?.unwrap_or(Position::START);
    let checkpoints = aisales_projections::checkpoint::list(&mut conn).await?;
    let parked = aisales_projections::parking::list(&mut conn, None).await?;
    let mut out = Vec::new();
    for p in projectors {
        let cp = checkpoints.iter().find(|c| c.name == p.name());
        let position = cp.map(|c| c.position).unwrap_or(Position::START);
        let lag = events::count_after(&mut conn, position).await?;
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
              WHERE l.locktype = 'advisory' AND l.granted \
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                AND l.classid = $1::bigint::oid \
                AND l.objid = ((hashtext($2)::bigint + 4294967296) % 4294967296)::oid AND l.objsubid = 2 LIMIT 1",
        )
        .bind(LEASE_SPACE as i64)
        .bind(p.name())
        .fetch_optional(&mut *conn)
        .await?;
        out.push(ProjectorStatus {
            name: p.name().to_string(),
            description: p.description().to_string(),
            position: position.to_string(),
            events_applied: cp.map_or(0, |c| c.events_applied),
            head: head.to_string(),
            lag_events: lag,
            owner,
            updated_at: cp.map(|c| c.updated_at),
            parked: parked.iter().filter(|r| r.projector == p.name()).cloned().collect(),
        });
    }
    Ok(out)
}
