//! The sweeper: pushes jobs that became due (delayed commands: human-like send delays, retry
//! backoff, burst windows) and re-pushes jobs that were dispatched but neither started nor
//! finished in time (Redis restarted without persistence, FLUSHALL, a crash between commit and
//! XADD, a worker killed mid-job). One process sweeps at a time (advisory-lock lease).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Job, Kind, streams};
use crate::infra::redis::Redis;

/// Tunables of the sweeper.
#[derive(Debug, Clone)]
pub struct SweeperOptions {
    pub prefix: String,
    pub interval: Duration,
    /// How long a dispatched job may stay unfinished before it is pushed again.
    pub redispatch_after: Duration,
    pub stream_max_len: usize,
    pub instance: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    job_id: String,
    kind: String,
    tenant_id: Option<Uuid>,
    aggregate_type: String,
    aggregate_id: String,
    payload: serde_json::Value,
    cause: Option<serde_json::Value>,
    requested_at: DateTime<Utc>,
}

/// How long a probe (`aisales streams ping`) is pushed again before it is given up: a probe is
/// a check of the bus, not work, and nothing records its failure on an aggregate.
pub const PROBE_EXPIRY_SECS: f64 = 600.0;

/// Gives up probe jobs: those older than [`PROBE_EXPIRY_SECS`] (no probe worker running), or `job_id`
/// (dead-lettered). Returns how many were given up.
pub async fn expire_probes(pool: &PgPool, job_id: Option<&str>, reason: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE work_items SET status = 'failed', last_error = $3, updated_at = now() \
          WHERE kind = 'probe' AND status IN ('requested', 'started') \
            AND (job_id = $1 OR ($1 IS NULL AND requested_at < now() - make_interval(secs => $2)))",
    )
    .bind(job_id)
    .bind(PROBE_EXPIRY_SECS)
    .bind(reason)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Pushes every job that is due and not dispatched recently; returns how many.
pub async fn sweep_once(pool: &PgPool, redis: &Redis, options: &SweeperOptions) -> anyhow::Result<usize> {
    expire_probes(pool, None, "no probe worker answered in time").await?;
    let base = options.redispatch_after.as_secs_f64();
    let slow = Kind::VehicleLookup.redispatch_after(options.redispatch_after).as_secs_f64();
    let rows: Vec<Row> = sqlx::query_as(
        "WITH cand AS ( \
           SELECT job_id FROM work_items \
            WHERE status IN ('requested', 'started') AND due_at <= now() \
              AND (dispatched_at IS NULL OR dispatched_at < now() - make_interval(secs => \
                   CASE WHEN kind IN ('vehicle-lookup', 'price-lookup') THEN $2 ELSE $1 END)) \
            ORDER BY due_at LIMIT 1000 FOR UPDATE SKIP LOCKED) \
         UPDATE work_items w SET dispatched_at = now(), dispatch_count = w.dispatch_count + 1 \
           FROM cand WHERE w.job_id = cand.job_id \
         RETURNING w.job_id, w.kind, w.tenant_id, w.aggregate_type, w.aggregate_id, w.payload, w.cause, w.requested_at",
    )
    .bind(base)
    .bind(slow)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let jobs: Vec<Job> = rows
        .into_iter()
        .filter_map(|r| {
            Some(Job {
                kind: r.kind.parse().ok()?,
                job_id: r.job_id,
                tenant_id: r.tenant_id,
                aggregate_type: r.aggregate_type,
                aggregate_id: r.aggregate_id,
                payload: r.payload,
                cause: r.cause.and_then(|c| serde_json::from_value(c).ok()),
                requested_at: r.requested_at,
                dispatched_at: Utc::now(),
            })
        })
        .collect();
    let mut conn = redis.conn();
    if let Err(e) = streams::push(&mut conn, &options.prefix, &jobs, options.stream_max_len).await {
        // Not pushed: make them eligible again at the next sweep.
        let ids: Vec<&String> = jobs.iter().map(|j| &j.job_id).collect();
        let _ = sqlx::query("UPDATE work_items SET dispatched_at = NULL WHERE job_id = ANY($1)")
            .bind(&ids)
            .execute(pool)
            .await;
        return Err(e.into());
    }
    metrics::counter!("aisales_jobs_swept_total").increment(jobs.len() as u64);
    Ok(jobs.len())
}

/// Sweeps every `interval` while this process holds the sweeper lease.
pub async fn run(
    pool: PgPool,
    connect: PgConnectOptions,
    redis: Redis,
    options: SweeperOptions,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let opts = connect.application_name(&options.instance).disable_statement_logging();
    let mut lease: Option<PgConnection> = None;
    let mut backoff = options.interval;
    let mut last_prune = std::time::Instant::now();
    while !cancel.is_cancelled() {
        if lease.is_none() {
            if let Ok(mut c) = PgConnection::connect_with(&opts).await {
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext('work_sweeper'))")
                    .bind(crate::infra::db::LEASE_SPACE)
                    .fetch_one(&mut c)
                    .await
                    .unwrap_or(false);
                if got {
                    tracing::info!("work sweeper lease taken");
                    lease = Some(c);
                } else {
                    let _ = c.close().await;
                }
            }
        } else if let Some(c) = lease.as_mut()
            && sqlx::query("SELECT 1").execute(&mut *c).await.is_err()
        {
            tracing::warn!("work sweeper lease lost");
            lease = None;
        }
        if lease.is_some() && last_prune.elapsed() > Duration::from_secs(60) {
            last_prune = std::time::Instant::now();
            // The live-update feed keeps a day of changes.
            if let Err(e) = sqlx::query(
                "DELETE FROM read_model_changes WHERE id IN \
                   (SELECT id FROM read_model_changes WHERE created_at < now() - interval '24 hours' LIMIT 10000)",
            )
            .execute(&pool)
            .await
            {
                tracing::warn!(error = %e, "pruning the change feed failed");
            }
        }
        if lease.is_some() {
            match sweep_once(&pool, &redis, &options).await {
                Ok(n) => {
                    backoff = options.interval;
                    if n > 0 {
                        tracing::info!(jobs = n, "sweeper dispatched outstanding jobs");
                    }
                }
                Err(e) => {
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    tracing::warn!(error = format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "sweep failed");
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(if lease.is_some() { backoff } else { Duration::from_secs(1) }) => {}
        }
    }
    if let Some(c) = lease {
        let _ = c.close().await;
    }
    Ok(())
}
