//! `aisales projections rebuild NAME` and `aisales projections verify`.
//!
//! Both build another generation of a projector's tables from event zero, with the projector's
//! own code, into `<table>__next` (rebuild) or `<table>__verify` (verify) tables. A rebuild then
//! swaps the new generation in atomically while the old one kept serving; a verification holds the
//! live projector still, brings both generations to the same position and prints every row that
//! differs.

use std::sync::Arc;
use std::time::Instant;

use aisales_projections::events::{self, Position};
use aisales_projections::{Projector, Target, apply_batch_in, checkpoint};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::{PgConnection, PgPool};

/// Generation used by verification.
pub const VERIFY: Target = Target { suffix: "__verify" };

/// Batch size of generation builds (large: nothing else competes for these tables).
const BUILD_BATCH: i64 = 5000;

fn progress(total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} events  {per_sec}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Creates empty `<table><suffix>` copies (columns, defaults, indexes, constraints) of the
/// projector's tables and resets the generation's checkpoint.
async fn prepare(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    generation: &dyn Projector,
    target: Target,
) -> anyhow::Result<()> {
    for t in projector.tables() {
        let next = target.table(t);
        sqlx::query(&format!("DROP TABLE IF EXISTS {next}")).execute(&mut *conn).await?;
        sqlx::query(&format!("CREATE TABLE {next} (LIKE {t} INCLUDING ALL)")).execute(&mut *conn).await?;
    }
    checkpoint::reset(conn, generation.name()).await?;
    aisales_projections::parking::clear(conn, generation.name()).await?;
    Ok(())
}

/// Applies batches of `generation` in autonomous transactions until it has caught up with the
/// readable head. Returns the events applied.
async fn catch_up(pool: &PgPool, generation: &dyn Projector, bar: &ProgressBar) -> anyhow::Result<u64> {
    let mut total = 0u64;
    loop {
        let mut tx = pool.begin().await?;
        let (out, _) = apply_batch_in(&mut tx, generation, Some(BUILD_BATCH), None).await?;
        tx.commit().await?;
        total += out.applied as u64;
        bar.inc(out.applied as u64);
        if bar.position() > bar.length().unwrap_or(0) {
            bar.set_length(bar.position());
        }
        if out.applied == 0 {
            return Ok(total);
        }
    }
}

/// Applies batches of `projector` inside `conn`'s transaction up to `upto`.
async fn catch_up_in(conn: &mut PgConnection, projector: &dyn Projector, upto: Position) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let (out, _) = apply_batch_in(conn, projector, Some(BUILD_BATCH), Some(upto)).await?;
        total += out.applied as u64;
        if out.applied == 0 {
            return Ok(total);
        }
    }
}

fn find(projectors: &[Arc<dyn Projector>], name: &str) -> anyhow::Result<Arc<dyn Projector>> {
    projectors.iter().find(|p| p.name() == name).cloned().ok_or_else(|| {
        let names: Vec<&str> = projectors.iter().map(|p| p.name()).collect();
        crate::application::CommandError::invalid(
            "unknown_projector",
            format!("there is no projector `{name}`; projectors: {}", names.join(", ")),
        )
        .into()
    })
}

/// What a rebuild did.
#[derive(Debug, serde::Serialize)]
pub struct RebuildReport {
    pub projector: String,
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    pub position: String,
}

/// Rebuilds `name` from event zero into a new generation, then swaps it in atomically.
pub async fn rebuild(
    pool: &PgPool,
    projectors: &[Arc<dyn Projector>],
    name: &str,
    quiet: bool,
) -> anyhow::Result<RebuildReport> {
    let live = find(projectors, name)?;
    let next = live.generation(Target::NEXT).ok_or_else(|| {
        crate::application::CommandError::invalid(
            "not_rebuildable",
            format!("`{name}` cannot be rebuilt from the events (its effects are outside the read models)"),
        )
    })?;
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    prepare(&mut conn, live.as_ref(), next.as_ref(), Target::NEXT).await?;
    let total = events::count_after(&mut conn, Position::START).await?;
    drop(conn);
    let bar = progress(total as u64, quiet);
    bar.set_prefix(format!("rebuilding {name}"));
    let mut applied = catch_up(pool, next.as_ref(), &bar).await?;
    bar.finish_and_clear();

    // Swap: hold the live projector still, apply what arrived meanwhile, rename, move the checkpoint.
    let mut tx = pool.begin().await?;
    aisales_projections::projector::lock(&mut tx, live.name()).await?;
    loop {
        let (out, _) = apply_batch_in(&mut tx, next.as_ref(), Some(BUILD_BATCH), None).await?;
        applied += out.applied as u64;
        if out.applied == 0 {
            break;
        }
    }
    for t in live.tables() {
        swap_table(&mut tx, t, &Target::NEXT.table(t)).await?;
    }
    let cp = checkpoint::load_or_create(&mut tx, next.name()).await?;
    sqlx::query(
        "INSERT INTO projector_checkpoints (name, tx_id, position, events_applied, updated_at) VALUES ($1, $2::text::xid8, $3, $4, now()) \
         ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, position = EXCLUDED.position, \
           events_applied = EXCLUDED.events_applied, updated_at = now()",
    )
    .bind(live.name())
    .bind(cp.position.tx_id.to_string())
    .bind(cp.position.global_position)
    .bind(cp.events_applied)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM projector_checkpoints WHERE name = $1").bind(next.name()).execute(&mut *tx).await?;
    // What the new generation could not apply is what the live projector now skips.
    aisales_projections::parking::rename(&mut tx, next.name(), live.name()).await?;
    tx.commit().await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RebuildReport {
        projector: name.to_string(),
        events: applied,
        seconds,
        events_per_second: applied as f64 / seconds.max(1e-9),
        position: cp.position.to_string(),
    })
}

/// Replaces `live` by `next` (renaming `next`'s indexes to the live names), inside a transaction.
async fn swap_table(tx: &mut PgConnection, live: &str, next: &str) -> anyhow::Result<()> {
    // Index names by definition (name and table removed), to give the new ones the old names.
    let defs = |table: &str| {
        format!(
            "SELECT indexname, regexp_replace(regexp_replace(indexdef, '^CREATE (UNIQUE )?INDEX \\S+ ON \\S+', 'CREATE \\1INDEX ON'), '\\s+', ' ', 'g') \
               FROM pg_indexes WHERE schemaname = current_schema() AND tablename = '{table}'"
        )
    };
    let old: Vec<(String, String)> = sqlx::query_as(&defs(live)).fetch_all(&mut *tx).await?;
    let new: Vec<(String, String)> = sqlx::query_as(&defs(next)).fetch_all(&mut *tx).await?;
    let retired = format!("{live}__retired");
    sqlx::query(&format!("ALTER TABLE {live} RENAME TO {retired}")).execute(&mut *tx).await?;
    sqlx::query(&format!("ALTER TABLE {next} RENAME TO {live}")).execute(&mut *tx).await?;
    sqlx::query(&format!("DROP TABLE {retired}")).execute(&mut *tx).await?;
    for (old_name, def) in old {
        if let Some((new_name, _)) = new.iter().find(|(_, d)| *d == def) {
            sqlx::query(&format!("ALTER INDEX {new_name} RENAME TO {old_name}")).execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// Differences of one projector.
#[derive(Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub projector: String,
    pub position: String,
    pub differences: Vec<String>,
}

/// Builds every rebuildable projector from event zero into scratch tables and compares them row by
/// row with the live tables at the same position. Prints nothing; returns the differences.
pub async fn verify(
    pool: &PgPool,
    projectors: &[Arc<dyn Projector>],
    only: Option<&str>,
    quiet: bool,
) -> anyhow::Result<Vec<VerifyReport>> {
    let mut reports = Vec::new();
    for live in projectors {
        if only.is_some_and(|o| o != live.name()) {
            continue;
        }
        let Some(scratch) = live.generation(VERIFY) else { continue };
        let mut conn = pool.acquire().await?;
        prepare(&mut conn, live.as_ref(), scratch.as_ref(), VERIFY).await?;
        // Skip what the live projector skips: a parked aggregate's row stops at the event before
        // the one that failed in both (a scratch batch might fold that event away and apply it).
        aisales_projections::parking::copy(&mut conn, live.name(), scratch.name()).await?;
        let total = events::count_after(&mut conn, Position::START).await?;
        drop(conn);
        let bar = progress(total as u64, quiet);
        bar.set_prefix(format!("verifying {}", live.name()));
        catch_up(pool, scratch.as_ref(), &bar).await?;
        bar.finish_and_clear();

        // Hold the live projector still and bring both generations to the same position.
        let mut tx = pool.begin().await?;
        aisales_projections::projector::lock(&mut tx, live.name()).await?;
        let live_cp = checkpoint::load_or_create(&mut tx, live.name()).await?.position;
        let scratch_cp = checkpoint::load_or_create(&mut tx, scratch.name()).await?.position;
        let target = live_cp.max(scratch_cp);
        catch_up_in(&mut tx, live.as_ref(), target).await?;
        catch_up_in(&mut tx, scratch.as_ref(), target).await?;
        let mut report =
            VerifyReport { projector: live.name().to_string(), position: target.to_string(), differences: Vec::new() };
        for t in live.tables() {
            let s = VERIFY.table(t);
            for (label, a, b) in
                [("only in the read model", *t, s.as_str()), ("missing from the read model", s.as_str(), *t)]
            {
                let rows: Vec<String> = sqlx::query_scalar(&format!(
                    "SELECT row_to_json(x)::text FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) x LIMIT 50"
                ))
                .fetch_all(&mut *tx)
                .await?;
                report.differences.extend(rows.into_iter().map(|r| format!("{t}: {label}: {r}")));
            }
        }
        for t in live.tables() {
            sqlx::query(&format!("DROP TABLE IF EXISTS {}", VERIFY.table(t))).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM projector_checkpoints WHERE name = $1").bind(scratch.name()).execute(&mut *tx).await?;
        aisales_projections::parking::clear(&mut tx, scratch.name()).await?;
        tx.commit().await?;
        reports.push(report);
    }
    Ok(reports)
}

/// Applies again what projector `name` parked (every aggregate, or only `aggregate`).
pub async fn retry_parked(
    pool: &PgPool,
    projectors: &[Arc<dyn Projector>],
    name: &str,
    aggregate: Option<&str>,
) -> anyhow::Result<Vec<aisales_projections::parking::RetryOutcome>> {
    let projector = find(projectors, name)?;
    aisales_projections::parking::retry(pool, projector.as_ref(), aggregate).await
}
