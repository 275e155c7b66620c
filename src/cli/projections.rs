//! `aisales projections status|rebuild|verify`.

use clap::Subcommand;

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Checkpoint, head, lag and owner of every projector.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Build a fresh generation of NAME's tables from event zero (the old one keeps serving),
    /// then swap it in atomically.
    Rebuild {
        name: String,
        /// Print the report as JSON and no progress bar.
        #[arg(long)]
        json: bool,
    },
    /// Compare every read model (or NAME's) with the state folded from the events; print each
    /// difference. Exit code 1 when there is any.
    Verify {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Apply again the events NAME skipped because it could not apply them (parked aggregates,
    /// listed by `status`), after a fix; what still fails stays parked with its new error.
    RetryParked {
        name: String,
        /// Only this aggregate id.
        #[arg(long)]
        aggregate: Option<String>,
        #[arg(long)]
        json: bool,
    },
}
async fn status(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let pool = crate::infra::db::pool(settings)?;
    let redis = crate::infra::redis::Redis::new(settings)?;
    let rows =
        crate::projection::runtime::status(&pool, &crate::projection::registry::all(settings, &pool, &redis)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<24} {:>16} {:>16} {:>10} {:>12}  owner", "projector", "checkpoint", "head", "lag", "applied");
    let parked: Vec<_> = rows.iter().flat_map(|r| r.parked.iter()).cloned().collect();
    for r in rows {
        println!(
            "{:<24} {:>16} {:>16} {:>10} {:>12}  {}",
            r.name,
            r.position,
            r.head,
            r.lag_events,
            r.events_applied,
            r.owner.as_deref().unwrap_or("-")
        );
    }
    if !parked.is_empty() {
        println!();
        println!("{} parked aggregate(s) (skipped until `aisales projections retry-parked NAME`):", parked.len());
        for p in parked {
            println!(
                "  {} {} {} at {} (sequence {}, {}, {} attempt(s)): {}",
                p.projector,
                p.aggregate_type,
                p.aggregate_id,
                p.position,
                p.sequence,
                p.event_type,
                p.attempts,
                p.error
            );
        }
    }
    Ok(())
}

async fn retry_parked(settings: &Settings, name: &str, aggregate: Option<&str>, json: bool) -> anyhow::Result<()> {
    let pool = crate::infra::db::pool(settings)?;
    let redis = crate::infra::redis::Redis::new(settings)?;
    let all = crate::projection::registry::all(settings, &pool, &redis);
    let outcomes = crate::projection::ops::retry_parked(&pool, &all, name, aggregate).await?;
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        if outcomes.is_empty() {
            println!("{name}: nothing parked");
        }
        for o in &outcomes {
            match &o.error {
                None => println!("{name}: {} {} applied ({} events)", o.aggregate_type, o.aggregate_id, o.events),
                Some(e) => println!("{name}: {} {} still parked: {e}", o.aggregate_type, o.aggregate_id),
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} aggregate(s) still parked");
    }
    Ok(())
}

/// Runs `aisales projections …`.
pub(super) async fn run(settings: &Settings, cmd: ProjectionsCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectionsCommand::Status { json } => status(settings, json).await,
        ProjectionsCommand::Rebuild { name, json } => {
            let pool = crate::infra::db::pool(settings)?;
            let redis = crate::infra::redis::Redis::new(settings)?;
            let all = crate::projection::registry::all(settings, &pool, &redis);
            let r = crate::projection::ops::rebuild(&pool, &all, &name, json).await?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "rebuilt {}: {} events in {:.1} s ({:.0} events/s), now at {}",
                    r.projector, r.events, r.seconds, r.events_per_second, r.position
                );
            }
            Ok(())
        }
        ProjectionsCommand::RetryParked { name, aggregate, json } => {
            retry_parked(settings, &name, aggregate.as_deref(), json).await
        }
        ProjectionsCommand::Verify { name, json } => {
            let pool = crate::infra::db::pool(settings)?;
            let redis = crate::infra::redis::Redis::new(settings)?;
            let all = crate::projection::registry::all(settings, &pool, &redis);
            let reports = crate::projection::ops::verify(&pool, &all, name.as_deref(), json).await?;
            let differences: usize = reports.iter().map(|r| r.differences.len()).sum();
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                for r in &reports {
                    if r.differences.is_empty() {
                        println!("{}: no difference at {}", r.projector, r.position);
                    } else {
                        println!("{}: {} difference(s) at {}", r.projector, r.differences.len(), r.position);
                        for d in &r.differences {
                            println!("  {d}");
                        }
                    }
                }
            }
            if differences > 0 {
                anyhow::bail!("{differences} difference(s) between the read models and the events");
            }
            Ok(())
        }
    }
}
