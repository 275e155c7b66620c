//! The worker runtime: one consumer of a kind's stream in the shared consumer group.
//!
//! * Runs up to `concurrency` jobs at once; acknowledges a job only after its handler returned
//!   (handlers store their result on the aggregate first).
//! * Reclaims entries left pending by dead consumers after `visibility_timeout` (XAUTOCLAIM).
//! * After `max_deliveries`, moves the entry to the dead-letter stream and lets the handler record
//!   the failure on the aggregate, so the dashboard shows it.
//! * Backs off (never crash-loops) when Redis or Postgres is away; recreates its group when Redis
//!   lost it.
//! * On shutdown stops reading and lets in-flight jobs finish (up to the grace period); anything
//!   unfinished stays pending and is reclaimed or re-dispatched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamPendingCountReply, StreamReadOptions, StreamReadReply,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{GROUP, Job, Kind, Stage, streams};
use crate::infra::redis::Redis;

/// Renews a job lease if this consumer still holds it.
static RENEW: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end",
    )
});

/// Releases a job lease if this consumer still holds it.
static RELEASE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
    )
});

fn lease_key(prefix: &str, job_id: &str) -> String {
    format!("{prefix}:lease:{job_id}")
}

/// Value of a job's lease: the consumer holding it and the stream entry it is working from.
fn lease_holder(consumer: &str, entry: &str) -> String {
    format!("{consumer}|{entry}")
}

/// Whether a lease value names a stream entry other than `entry`: the job is in hand under
/// another copy of it.
fn held_under_another_entry(holder: &str, entry: &str) -> bool {
    holder.rsplit_once('|').is_some_and(|(_, held)| held != entry)
}

/// Does one kind of job. Every method must be idempotent: a job can arrive more than once.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    fn kind(&self) -> Kind;

    /// Does the job and records the result on its aggregate. `Err` leaves the entry pending: it is
    /// delivered again after the visibility timeout (use it for infrastructure failures; business
    /// failures and provider retries are recorded as events and return `Ok`).
    async fn handle(&self, job: &Job) -> anyhow::Result<()>;

    /// Records on the aggregate that the job was given up after too many deliveries.
    async fn dead_letter(&self, job: &Job, reason: &str) -> anyhow::Result<()>;

    /// Puts a dead-lettered job back: records the retry on the aggregate (which asks for the work
    /// again through the usual path).
    async fn retry(&self, job: &Job) -> anyhow::Result<()>;

    /// Releases what the handler holds (browser sessions, …) once the worker has stopped.
    async fn shutdown(&self) {}
}

/// Tunables of a worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Key prefix of the streams (`REDIS_PREFIX`).
    pub prefix: String,
    pub consumer: String,
    pub concurrency: usize,
    pub visibility_timeout: Duration,
    pub max_deliveries: u64,
    pub job_timeout: Duration,
    pub shutdown_grace: Duration,
    /// While it reports an intake burst, no new jobs are read (`crate::infra::intake`).
    pub burst: crate::infra::intake::BurstSignal,
}

fn job_of(entry: &redis::streams::StreamId) -> Result<(Job, String), String> {
    let raw = entry
        .map
        .get(streams::FIELD)
        .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
        .ok_or_else(|| "entry has no job field".to_string())?;
    let job = serde_json::from_str::<Job>(&raw).map_err(|e| format!("job cannot be read: {e}"))?;
    Ok((job, raw))
}

/// Runs one worker of `handler.kind()` until `cancel` fires.
pub async fn run(
    redis: Redis,
    handler: Arc<dyn JobHandler>,
    options: WorkerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let kind = handler.kind();
    let stream = kind.stream(&options.prefix);
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut backoff = Duration::from_millis(200);
    let mut last_claim = Instant::now() - options.visibility_timeout;
    let mut group_ready = false;
    tracing::info!(kind = kind.as_str(), consumer = %options.consumer, concurrency = options.concurrency, "worker started");
    let mut reader: Option<redis::aio::MultiplexedConnection> = None;

    while !cancel.is_cancelled() {
        while tasks.try_join_next().is_some() {}
        if reader.is_none() {
            match redis.dedicated().await {
                Ok(c) => reader = Some(c),
                Err(e) => {
                    tracing::warn!(kind = kind.as_str(), error = %e, retry_in_ms = backoff.as_millis() as u64, "Redis unavailable");
                    sleep_or_cancel(backoff, &cancel).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
        }
        let conn = reader.as_mut().expect("connected above");
        if !group_ready {
            if let Err(e) = streams::ensure_group(conn, &options.prefix, kind).await {
                tracing::warn!(kind = kind.as_str(), error = %e, "cannot create the consumer group");
                reader = None;
                sleep_or_cancel(backoff, &cancel).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
            group_ready = true;
        }
        // Wait for a free slot before asking for more work.
        let available = permits.available_permits();
        if available == 0 {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tasks.join_next() => {},
            }
            continue;
        }
        // Give way to the server while it takes in a burst of forms or messages (bounded).
        if options.burst.is_on() {
            tracing::debug!(kind = kind.as_str(), "intake burst: new jobs wait");
            let waited = options.burst.wait_out(&cancel).await;
            metrics::counter!("aisales_worker_gave_way_ms_total", "kind" => kind.as_str())
                .increment(waited.as_millis() as u64);
            continue;
        }

        let mut entries: Vec<(redis::streams::StreamId, u64)> = Vec::new();
        let mut read_at = (chrono::Utc::now(), Instant::now());
        if last_claim.elapsed() >= options.visibility_timeout / 2 {
            last_claim = Instant::now();
            match reclaim(conn, kind, &options, available).await {
                Ok(claimed) => entries.extend(claimed),
                Err(e) if e.code() == Some("NOGROUP") => group_ready = false,
                Err(e) => tracing::warn!(kind = kind.as_str(), error = %e, "reclaiming stale entries failed"),
            }
        }
        if entries.is_empty() {
            let opts = StreamReadOptions::default().group(GROUP, &options.consumer).count(available).block(1000);
            let read: redis::RedisResult<Option<StreamReadReply>> = conn.xread_options(&[&stream], &[">"], &opts).await;
            match read {
                Ok(Some(reply)) => {
                    read_at = (chrono::Utc::now(), Instant::now());
                    backoff = Duration::from_millis(200);
                    for key in reply.keys {
                        entries.extend(key.ids.into_iter().map(|e| (e, 1)));
                    }
                }
                Ok(None) => {
                    backoff = Duration::from_millis(200);
                }
                Err(e) if e.code() == Some("NOGROUP") => {
                    tracing::warn!(
                        kind = kind.as_str(),
                        "consumer group missing (Redis lost its data?); recreating it"
                    );
                    group_ready = false;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(kind = kind.as_str(), error = %e, retry_in_ms = backoff.as_millis() as u64, "reading the stream failed");
                    reader = None;
                    sleep_or_cancel(backoff, &cancel).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
        }

        for (entry, deliveries) in entries {
            let id = entry.id.clone();
            let (job, raw) = match job_of(&entry) {
                Ok(j) => j,
                Err(why) => {
                    tracing::error!(kind = kind.as_str(), entry = %id, reason = %why, "unreadable stream entry dead-lettered");
                    let mut c = redis.conn();
                    let _ = streams::dead_letter(&mut c, &options.prefix, kind, "", &why, deliveries).await;
                    let _: redis::RedisResult<usize> = c.xack(&stream, GROUP, &[&id]).await;
                    continue;
                }
            };
            if deliveries > options.max_deliveries {
                let mut c = redis.conn();
                let holder: Option<String> = c.get(lease_key(&options.prefix, &job.job_id)).await.unwrap_or(None);
                if let Some(holder) = holder {
                    if held_under_another_entry(&holder, &id) {
                        // A copy of a job in hand under another entry: not a poison entry either.
                        let _: redis::RedisResult<usize> = c.xack(&stream, GROUP, &[&id]).await;
                    }
                    // Still being worked on (a long job): not a poison entry.
                    continue;
                }
                let reason = format!("gave up after {} deliveries", deliveries - 1);
                match handler.dead_letter(&job, &reason).await {
                    Ok(()) => {
                        let mut c = redis.conn();
                        let _ =
                            streams::dead_letter(&mut c, &options.prefix, kind, &raw, &reason, deliveries - 1).await;
                        let _: redis::RedisResult<usize> = c.xack(&stream, GROUP, &[&id]).await;
                        tracing::warn!(kind = kind.as_str(), job = %job.job_id, "job dead-lettered");
                    }
                    Err(e) => {
                        tracing::warn!(kind = kind.as_str(), job = %job.job_id, error = format!("{e:#}"), "could not record the dead letter; will retry")
                    }
                }
                continue;
            }
            if deliveries == 1 {
                Stage::Stream.record(kind, super::seconds_between(job.dispatched_at, read_at.0));
            }
            let permit = permits.clone().acquire_owned().await.expect("semaphore open");
            let slot_at = Instant::now();
            Stage::Slot.record(kind, slot_at.duration_since(read_at.1).as_secs_f64());
            let handler = handler.clone();
            let redis = redis.clone();
            let stream = stream.clone();
            let timeout = options.job_timeout;
            let lease_key = lease_key(&options.prefix, &job.job_id);
            let consumer = lease_holder(&options.consumer, &id);
            let visibility = options.visibility_timeout;
            tasks.spawn(async move {
                let _permit = permit;
                // One consumer works on a job at a time. The lease lives as long as the visibility
                // timeout and is renewed while the job runs, so it outlives a dead holder only
                // briefly. A copy delivered while another consumer holds the lease is left alone:
                // the holder acknowledges the entry when it finishes, and if it dies the entry is
                // reclaimed once the lease has expired.
                let mut c = redis.conn();
                let lease_ms = visibility.as_millis() as u64;
                let leased: redis::RedisResult<Option<String>> =
                    redis::cmd("SET").arg(&lease_key).arg(&consumer).arg("NX").arg("PX").arg(lease_ms).query_async(&mut c).await;
                match leased {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        // A second copy of a job someone is working on (the dispatcher pushes a job
                        // again when it is not done in time) is acknowledged: the holder finishes the
                        // job from its own entry, or, if it dies, that entry is reclaimed and the job
                        // pushed again. Left pending, the copy would gather deliveries while the job
                        // runs and be dead-lettered, failing work that was going well.
                        let holder: Option<String> = c.get(&lease_key).await.unwrap_or(None);
                        if holder.as_deref().is_some_and(|h| held_under_another_entry(h, &id)) {
                            let _: redis::RedisResult<usize> = c.xack(&stream, GROUP, &[&id]).await;
                            metrics::counter!("aisales_jobs_processed_total", "kind" => kind.as_str(), "outcome" => "duplicate").increment(1);
                        } else {
                            metrics::counter!("aisales_jobs_processed_total", "kind" => kind.as_str(), "outcome" => "leased_elsewhere").increment(1);
                        }
                        return;
                    }
                    // Not knowing whether we hold the lease is not holding it: the entry stays
                    // pending and is seen again.
                    Err(e) => {
                        tracing::warn!(kind = kind.as_str(), job = %job.job_id, error = %e, "could not take the job's lease; leaving it pending");
                        return;
                    }
                }
                // Stops renewing the lease however this task ends (a panicking handler included),
                // so that a lease never outlives its job by more than its expiry.
                let _renew = AbortOnDrop({
                    let (mut c, key, consumer) = (redis.conn(), lease_key.clone(), consumer.clone());
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(Duration::from_millis((lease_ms / 3).max(100))).await;
                            let _: redis::RedisResult<i64> = RENEW.key(&key).arg(&consumer).arg(lease_ms).invoke_async(&mut c).await;
                        }
                    })
                });
                let started = Instant::now();
                Stage::Lease.record(kind, started.duration_since(slot_at).as_secs_f64());
                let lag = (chrono::Utc::now() - job.dispatched_at).num_milliseconds().max(0) as f64 / 1000.0;
                metrics::histogram!("aisales_job_start_lag_seconds", "kind" => kind.as_str()).record(lag);
                // One span per job: its kind, id and the chain it continues.
                let span = tracing::info_span!(
                    "job",
                    kind = kind.as_str(),
                    job_id = %job.job_id,
                    correlation_id = %job.correlation_id().map(|c| c.to_string()).unwrap_or_default(),
                );
                let result = match tokio::time::timeout(timeout, handler.handle(&job)).instrument(span).await {
                    Ok(r) => r,
                    Err(_) => Err(anyhow::anyhow!("job timed out after {} s", timeout.as_secs())),
                };
                metrics::histogram!("aisales_job_duration_seconds", "kind" => kind.as_str()).record(started.elapsed().as_secs_f64());
                drop(_renew);
                // Acknowledged before the lease goes: an entry seen without a lease between the two
                // would look abandoned, and after its last delivery be dead-lettered.
                match result {
                    Ok(()) => {
                        if let Err(e) = c.xack::<_, _, _, usize>(&stream, GROUP, &[&id]).await {
                            tracing::warn!(kind = kind.as_str(), job = %job.job_id, error = %e, "ack failed; the job will be seen again (harmless)");
                        }
                        metrics::counter!("aisales_jobs_processed_total", "kind" => kind.as_str(), "outcome" => "ok").increment(1);
                    }
                    Err(e) => {
                        metrics::counter!("aisales_jobs_processed_total", "kind" => kind.as_str(), "outcome" => "error").increment(1);
                        tracing::warn!(kind = kind.as_str(), job = %job.job_id, delivery = deliveries, error = format!("{e:#}"), "job failed; it will be delivered again");
                    }
                }
                let _: redis::RedisResult<i64> = RELEASE.key(&lease_key).arg(&consumer).invoke_async(&mut c).await;
            });
        }
    }

    tracing::info!(kind = kind.as_str(), in_flight = tasks.len(), "worker stopping; finishing in-flight jobs");
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(options.shutdown_grace, drain).await.is_err() {
        tracing::warn!(
            kind = kind.as_str(),
            "jobs still running after the grace period; they stay pending and will be delivered again"
        );
    }
    handler.shutdown().await;
    Ok(())
}

/// Claims entries idle longer than the visibility timeout, with their delivery counts.
async fn reclaim(
    conn: &mut redis::aio::MultiplexedConnection,
    kind: Kind,
    options: &WorkerOptions,
    count: usize,
) -> redis::RedisResult<Vec<(redis::streams::StreamId, u64)>> {
    let stream = kind.stream(&options.prefix);
    let idle = options.visibility_timeout.as_millis() as usize;
    let reply: StreamAutoClaimReply = conn
        .xautoclaim_options(
            &stream,
            GROUP,
            &options.consumer,
            idle,
            "0-0",
            StreamAutoClaimOptions::default().count(count),
        )
        .await?;
    let mut out = Vec::new();
    for entry in reply.claimed {
        let pending: StreamPendingCountReply = conn.xpending_count(&stream, GROUP, &entry.id, &entry.id, 1).await?;
        let deliveries = pending.ids.first().map_or(1, |p| p.times_delivered as u64);
        metrics::counter!("aisales_jobs_reclaimed_total", "kind" => kind.as_str()).increment(1);
        out.push((entry, deliveries));
    }
    Ok(out)
}

async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) {
    tokio::select! {
        _ = cancel.cancelled() => {},
        _ = tokio::time::sleep(d) => {},
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::{held_under_another_entry, lease_holder};

    #[test]
    fn a_lease_tells_copies_of_a_job_from_the_entry_in_hand() {
        let holder = lease_holder("aisales-worker@host:12|7", "1764218400000-0");
        assert!(!held_under_another_entry(&holder, "1764218400000-0"), "the entry in hand itself");
        assert!(held_under_another_entry(&holder, "1764218460000-0"), "another copy of the job");
        // A lease written without an entry (an older worker) is never taken for a copy's.
        assert!(!held_under_another_entry("aisales-worker@host:12", "1764218460000-0"));
    }
}
