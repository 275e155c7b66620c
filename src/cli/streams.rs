//! `aisales streams …`: stream status, dead letters, and probing the bus end to end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aisales_domain::probe::{Probe, ProbeCommand};
use uuid::Uuid;

use crate::bus::{Kind, streams};
use clap::Subcommand;

use crate::cli::UsageError;
use crate::config::Settings;
use crate::store::{EventMetadata, EventStore};

#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// Length, pending entries, oldest pending age and consumers of every stream.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Dead-lettered jobs.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLettersCommand),
    /// Send probe jobs through the whole bus and wait for their answers.
    Ping {
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List dead letters (of one kind, or all).
    List {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back: one by id, or every one of a kind with --all.
    Retry {
        kind: String,
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

fn kind(s: &str) -> anyhow::Result<Kind> {
    s.parse::<Kind>().map_err(|e| UsageError(e.to_string()).into())
}

pub async fn streams(settings: Arc<Settings>, cmd: StreamsCommand) -> anyhow::Result<()> {
    let redis = crate::infra::redis::Redis::new(&settings)?;
    let mut conn = redis.conn();
    let prefix = settings.bus.redis_prefix.as_str();
    match cmd {
        StreamsCommand::Status { json } => {
            let rows = streams::status(&mut conn, prefix).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!(
                "{:<18} {:>8} {:>8} {:>14} {:>6}  consumers",
                "kind", "length", "pending", "oldest pending", "dead"
            );
            for r in rows {
                let oldest =
                    r.oldest_pending_age_ms.map_or("-".to_string(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
                let consumers: Vec<String> = r
                    .consumers
                    .iter()
                    .map(|c| format!("{} ({} pending, idle {}s)", c.name, c.pending, c.idle_ms / 1000))
                    .collect();
                println!(
                    "{:<18} {:>8} {:>8} {:>14} {:>6}  {}",
                    r.kind.as_str(),
                    r.length,
                    r.pending,
                    oldest,
                    r.dead_letters,
                    consumers.join(", ")
                );
            }
        }
        StreamsCommand::DeadLetters(DeadLettersCommand::List { kind: k, json }) => {
            let kinds = match k {
                Some(k) => vec![kind(&k)?],
                None => Kind::ALL.to_vec(),
            };
            let mut all = Vec::new();
            for k in kinds {
                all.extend(streams::dead_letters(&mut conn, prefix, k, 1000).await?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("no dead letters");
            } else {
                for d in all {
                    let job = d.job.as_ref().map_or("(unreadable)".to_string(), |j| {
                        format!("{} {}:{}", j.job_id, j.aggregate_type, j.aggregate_id)
                    });
                    println!("{} {} {} after {} deliveries: {}", d.kind, d.id, job, d.deliveries, d.reason);
                }
            }
        }
        StreamsCommand::DeadLetters(DeadLettersCommand::Retry { kind: k, id, all }) => {
            let k = kind(&k)?;
            let pool = crate::infra::db::pool(&settings)?;
            let services = crate::workers::Services::new(settings.clone(), pool, redis.clone());
            let handler = crate::workers::handler(k, &services)?;
            let letters = match (id, all) {
                (Some(id), _) => vec![
                    streams::dead_letter_by_id(&mut conn, prefix, k, &id)
                        .await?
                        .ok_or_else(|| UsageError(format!("no dead letter {id} of {k}")))?,
                ],
                (None, true) => streams::dead_letters(&mut conn, prefix, k, 10_000).await?,
                (None, false) => return Err(UsageError("name a dead letter id, or pass --all".into()).into()),
            };
            let mut retried = 0;
            for d in letters {
                let Some(job) = &d.job else {
                    eprintln!("skipping {}: the job cannot be read", d.id);
                    continue;
                };
                handler.retry(job).await?;
                streams::remove_dead_letter(&mut conn, prefix, k, &d.id).await?;
                retried += 1;
            }
            println!("{}", serde_json::json!({ "retried": retried }));
        }
        StreamsCommand::Ping { count, timeout_secs } => {
            let pool = crate::infra::db::pool(&settings)?;
            let store = EventStore::new(pool.clone());
            let meta = EventMetadata::system(None, "cli:streams-ping");
            let started = Instant::now();
            let mut ids = Vec::new();
            for _ in 0..count.max(1) {
                let id = Uuid::now_v7();
                store
                    .execute::<Probe>(
                        &id.to_string(),
                        ProbeCommand::Ping { ping_id: id, at: chrono::Utc::now() },
                        &(),
                        &meta,
                    )
                    .await?;
                ids.push(id.to_string());
            }
            let deadline = Duration::from_secs(timeout_secs);
            loop {
                let answered: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM events WHERE aggregate_type = 'probe' AND event_type = 'PongRecorded' AND aggregate_id = ANY($1)",
                )
                .bind(&ids)
                .fetch_one(&pool)
                .await?;
                if answered as usize == ids.len() {
                    println!(
                        "{}",
                        serde_json::json!({ "pings": ids.len(), "answered": answered, "seconds": started.elapsed().as_secs_f64() })
                    );
                    return Ok(());
                }
                if started.elapsed() > deadline {
                    anyhow::bail!(
                        "{answered} of {} pings answered within {timeout_secs} s: are the projector and a probe worker running?",
                        ids.len()
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    Ok(())
}
