//! Retention: personal data kept outside the event log is deleted once it is older than its
//! tenant allows. Today that is vehicle-lookup evidence (screenshots, page HTML, step traces in
//! `lookup_evidence`), kept `tenants.lookup_evidence_retention_days` (30 by default). Events only
//! hold references to evidence, so the log, replay and every read model stay as they were; the
//! lookup's evidence list is then empty and a deleted file answers 404.
//!
//! A pass goes tenant by tenant and deletes in batches of at most `batch_lookups` lookups, each
//! batch one statement that deletes the evidence and records it in `data_deletions` (one row per
//! lookup) together: a backlog never holds a long transaction, and nothing is deleted without its
//! record. Two passes at once (the scheduled one and a run by hand) never record a row twice: a
//! row deleted by one is not returned to the other.
//!
//! The scheduled pass ([`run`]) belongs to the projector role, next to the work sweeper, and runs
//! every `RETENTION_INTERVAL_SECS` in the one process holding its advisory-lock lease;
//! `aisales privacy retention` runs one pass by hand.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// `data_deletions.kind` of deleted vehicle-lookup evidence.
pub const LOOKUP_EVIDENCE: &str = "lookup_evidence";

/// The actor recorded for the scheduled pass.
pub const SCHEDULED_ACTOR: &str = "system:retention";

/// Lookups whose evidence one batch deletes at most.
pub const BATCH_LOOKUPS: i64 = 200;

/// What one pass covers.
#[derive(Debug, Clone)]
pub struct Pass {
    /// Evidence is older than a tenant's limit when created before `now` minus the limit.
    pub now: DateTime<Utc>,
    /// Only this tenant; `None`: every tenant.
    pub tenant: Option<Uuid>,
    /// Report what would be deleted; delete and record nothing.
    pub dry_run: bool,
    /// Recorded as `data_deletions.actor`.
    pub actor: String,
    pub batch_lookups: i64,
}

impl Pass {
    /// A pass over every tenant at `now`, recorded as `actor`.
    pub fn new(now: DateTime<Utc>, actor: impl Into<String>) -> Self {
        Pass { now, tenant: None, dry_run: false, actor: actor.into(), batch_lookups: BATCH_LOOKUPS }
    }
}

/// The evidence of one lookup deleted (or, in a dry run, that would be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion {
    pub tenant_id: Uuid,
    pub kind: &'static str,
    /// The lookup id.
    pub subject: String,
    /// Evidence rows.
    pub rows: i64,
    /// Their content, in bytes.
    pub bytes: i64,
    pub reason: String,
    pub dry_run: bool,
}

/// The totals of a pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub lookups: u64,
    pub rows: i64,
    pub bytes: i64,
}

impl Summary {
    fn add(&mut self, d: &Deletion) {
        self.lookups += 1;
        self.rows += d.rows;
        self.bytes += d.bytes;
    }
}

/// Why evidence of a tenant with a limit of `days` is deleted, as recorded.
fn reason(days: i32) -> String {
    format!("retention: older than {days} day{}", if days == 1 { "" } else { "s" })
}

/// Runs one pass; `each` is called with every lookup whose evidence was deleted (or would be),
/// as soon as its batch committed.
pub async fn pass(pool: &PgPool, p: &Pass, mut each: impl FnMut(&Deletion)) -> anyhow::Result<Summary> {
    let tenants: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT id, lookup_evidence_retention_days FROM tenants WHERE $1::uuid IS NULL OR id = $1 ORDER BY id",
    )
    .bind(p.tenant)
    .fetch_all(pool)
    .await?;
    let mut summary = Summary::default();
    for (tenant, days) in tenants {
        let before = p.now - chrono::Duration::days(i64::from(days));
        let reason = reason(days);
        let deletion = |(subject, rows, bytes): (String, i64, i64)| Deletion {
            tenant_id: tenant,
            kind: LOOKUP_EVIDENCE,
            subject,
            rows,
            bytes,
            reason: reason.clone(),
            dry_run: p.dry_run,
        };
        if p.dry_run {
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                "SELECT lookup_id::text, count(*), sum(size_bytes)::bigint FROM lookup_evidence \
                  WHERE tenant_id = $1 AND created_at < $2 GROUP BY lookup_id ORDER BY min(created_at), lookup_id",
            )
            .bind(tenant)
            .bind(before)
            .fetch_all(pool)
            .await?;
            for d in rows.into_iter().map(deletion) {
                summary.add(&d);
                each(&d);
            }
            continue;
        }
        loop {
            // The oldest rows name the lookups of the batch; all of their old rows go, so one
            // lookup is deleted (and recorded) by one batch.
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                "WITH batch AS ( \
                   SELECT DISTINCT lookup_id FROM ( \
                     SELECT lookup_id FROM lookup_evidence WHERE tenant_id = $1 AND created_at < $2 \
                      ORDER BY created_at LIMIT $3) oldest), \
                 gone AS ( \
                   DELETE FROM lookup_evidence e USING batch b \
                    WHERE e.tenant_id = $1 AND e.lookup_id = b.lookup_id AND e.created_at < $2 \
                   RETURNING e.lookup_id, e.size_bytes) \
                 INSERT INTO data_deletions (tenant_id, kind, subject, rows, bytes, reason, actor) \
                 SELECT $1, $4, lookup_id::text, count(*), sum(size_bytes), $5, $6 FROM gone GROUP BY lookup_id \
                 RETURNING subject, rows::bigint, bytes",
            )
            .bind(tenant)
            .bind(before)
            .bind(p.batch_lookups.max(1))
            .bind(LOOKUP_EVIDENCE)
            .bind(&reason)
            .bind(&p.actor)
            .fetch_all(pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            for d in rows.into_iter().map(deletion) {
                summary.add(&d);
                each(&d);
            }
        }
    }
    Ok(summary)
}

/// Tunables of the scheduled pass.
#[derive(Debug, Clone)]
pub struct RetentionOptions {
    /// Time between two passes (`RETENTION_INTERVAL_SECS`).
    pub interval: Duration,
    /// `application_name` of the lease connection.
    pub instance: String,
}

/// Runs a pass every `interval` while this process holds the retention lease. Without the lease
/// it tries again every minute (or every `interval`, when shorter); a process that takes it over
/// runs a pass at once.
pub async fn run(
    ctx: crate::application::Context,
    connect: PgConnectOptions,
    options: RetentionOptions,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let opts = connect.application_name(&options.instance).disable_statement_logging();
    let retry = options.interval.min(Duration::from_secs(60));
    let mut lease: Option<PgConnection> = None;
    let mut next = tokio::time::Instant::now();
    while !cancel.is_cancelled() {
        if let Some(c) = lease.as_mut()
            && sqlx::query("SELECT 1").execute(&mut *c).await.is_err()
        {
            tracing::warn!("retention lease lost");
            lease = None;
        }
        if lease.is_none() {
            lease = take_lease(&opts).await;
            if lease.is_some() {
                tracing::info!("retention lease taken");
                next = tokio::time::Instant::now();
            }
        }
        if lease.is_some() && tokio::time::Instant::now() >= next {
            let p = Pass::new(Utc::now(), SCHEDULED_ACTOR);
            let outcome = tokio::select! {
                _ = cancel.cancelled() => break,
                r = async {
                    let s = pass(&ctx.pool, &p, |_| {}).await?;
                    erase_inactive(&ctx, p.now, None, SCHEDULED_ACTOR, |_| {}).await?;
                    Ok::<_, anyhow::Error>(s)
                } => r,
            };
            match outcome {
                Ok(s) => {
                    next = tokio::time::Instant::now() + options.interval;
                    if s.lookups > 0 {
                        tracing::info!(
                            lookups = s.lookups,
                            rows = s.rows,
                            bytes = s.bytes,
                            "old lookup evidence deleted"
                        );
                    }
                }
                Err(e) => {
                    next = tokio::time::Instant::now() + retry;
                    tracing::warn!(error = format!("{e:#}"), retry_in_s = retry.as_secs(), "retention pass failed");
                }
            }
        }
        let wake = if lease.is_some() { next } else { tokio::time::Instant::now() + retry };
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    if let Some(c) = lease {
        let _ = c.close().await;
    }
    Ok(())
}

/// Customers of tenants that erase inactive customers (`erase_inactive_customers_months`) whose
/// last message is older than that, not erased yet, at most this many per tenant and pass.
const INACTIVE_BATCH: i64 = 500;

/// Erases the customers inactive for longer than their tenant keeps data ([`super::erase`], cause
/// `inactive`); `each` hears every erasure. Returns how many were erased.
pub async fn erase_inactive(
    ctx: &crate::application::Context,
    now: DateTime<Utc>,
    tenant: Option<Uuid>,
    actor: &str,
    mut each: impl FnMut(&super::erase::Erasure),
) -> anyhow::Result<usize> {
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT c.tenant_id, c.customer_id FROM tenants t \
           JOIN LATERAL (SELECT tenant_id, customer_id FROM rm_customers \
                          WHERE tenant_id = t.id AND chat_id <> $3 \
                            AND NOT EXISTS (SELECT 1 FROM data_keys k WHERE k.subject_id = customer_id \
                                              AND k.erased_at IS NOT NULL) \
                            AND last_seen_at < $1 - make_interval(months => t.erase_inactive_customers_months) \
                          ORDER BY last_seen_at LIMIT $4) c ON true \
          WHERE t.erase_inactive_customers_months IS NOT NULL AND ($2::uuid IS NULL OR t.id = $2)",
    )
    .bind(now)
    .bind(tenant)
    .bind(aisales_domain::pii::ERASED)
    .bind(INACTIVE_BATCH)
    .fetch_all(&ctx.pool)
    .await?;
    let mut erased = 0;
    for (tenant, customer) in due {
        if let Some(e) =
            super::erase::erase_customer(ctx, tenant, customer, actor, aisales_domain::pii::ErasureCause::Inactive)
                .await?
        {
            if !e.already_erased {
                erased += 1;
            }
            each(&e);
        }
    }
    if erased > 0 {
        tracing::info!(customers = erased, "inactive customers erased");
    }
    Ok(erased)
}

/// A connection holding the retention lease, or `None` when another process holds it (or the
/// database cannot be reached).
async fn take_lease(opts: &PgConnectOptions) -> Option<PgConnection> {
    let mut c = PgConnection::connect_with(opts).await.ok()?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext('retention'))")
        .bind(crate::infra::db::LEASE_SPACE)
        .fetch_one(&mut c)
        .await
        .unwrap_or(false);
    if got {
        Some(c)
    } else {
        let _ = c.close().await;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_the_limit() {
        assert_eq!(reason(30), "retention: older than 30 days");
        assert_eq!(reason(1), "retention: older than 1 day");
    }
}
