//! Webhook ingest benchmark (`cargo bench --bench ingest`).
//!
//! Starts `aisales serve` and `aisales projector` as processes on a fresh database, then posts
//! GREEN-API `incomingMessageReceived` text notifications for 1,000 chats over 32 keep-alive
//! connections: after a warm-up, requests/s and latency percentiles over the measured window, the
//! server's peak RSS, and the projection lag sampled throughout (age of the oldest event a read
//! model has not applied yet). pgbench single-row INSERTs at 32 clients are measured in the same
//! run as the baseline. Then 1,000,000 customer messages are stored (10,000 conversations of 100
//! messages, through the real aggregate), the projector catches up, and the load runs again on
//! 1,000 of those long conversations.
//!
//! Settings (environment): BENCH_SECONDS (measured window, default 20), BENCH_WARMUP (default 5),
//! BENCH_STORED_MESSAGES (default 1000000; 0 skips the second round), BENCH_CONNECTIONS (32),
//! BENCH_KEEP_DB=1; PROJECTOR_GATHER_MS and PROJECTOR_BATCH_SIZE are passed to the projector.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aisales::application::channels::{NewAccount, add_account};
use aisales::store::EventStore;
use aisales::testkit::TestDb;
use aisales::testkit::history::{self, HistorySpec};
use serde_json::json;
use support::{Aisales, Summary, env_or, report};
use uuid::Uuid;

const CHATS: u64 = 1_000;
const ID_INSTANCE: &str = "1101000001";

struct Target {
    base: String,
    path: String,
    token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = env_or("BENCH_SECONDS", 20);
    let warmup: u64 = env_or("BENCH_WARMUP", 5);
    let connections: usize = env_or("BENCH_CONNECTIONS", 32);
    let stored_messages: u64 = env_or("BENCH_STORED_MESSAGES", 1_000_000);
    let db = TestDb::create().await?;
    println!("database {}", db.name);

    let support::Shop { master_key, settings, pool, redis, state, tenant } = support::shop(&db).await?;
    let account = add_account(
        &state,
        tenant.id,
        NewAccount::GreenApi {
            id_instance: ID_INSTANCE.into(),
            api_token: "bench-green-api-token".into(),
            api_url: Some("http://127.0.0.1:9".into()),
            media_url: None,
            label: "MAX".into(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("adding the account: {e:?}"))?;
    let token = {
        let mut conn = pool.acquire().await?;
        aisales::infra::crypto::get(
            &mut conn,
            &state.keys,
            Some(tenant.id),
            &aisales::tenancy::secret_name(account.account.id, "webhook_token"),
        )
        .await?
    };
    let read_models: Vec<String> = aisales::projection::registry::all(&settings, &pool, &redis)
        .iter()
        .filter(|p| p.generation(aisales_projections::Target::NEXT).is_some())
        .map(|p| p.name().to_string())
        .collect();

    let port = support::free_port();
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", support::redis_url()),
        ("REDIS_PREFIX", format!("bench{}", Uuid::now_v7().simple())),
        ("INTEGRATION_SECRETS_MASTER_KEY", master_key.clone()),
        ("HOST", "127.0.0.1".into()),
        ("PORT", port.to_string()),
        ("RATE_LIMIT_WEBHOOK_PER_MINUTE", "0".into()),
        ("DATABASE_MAX_CONNECTIONS", "24".into()),
    ];
    let server = Aisales::spawn("server", &["serve"], &env)?;
    let mut projector_env = env.clone();
    projector_env.push(("METRICS_PORT", support::free_port().to_string()));
    // Tuning of the projector under test, passed through when set.
    for name in ["PROJECTOR_GATHER_MS", "PROJECTOR_BATCH_SIZE"] {
        if let Ok(v) = std::env::var(name) {
            projector_env.push((name, v));
        }
    }
    // BENCH_NO_PROJECTOR=1 (diagnostics): ingest alone, no read models kept.
    let projector = if std::env::var("BENCH_NO_PROJECTOR").is_ok() {
        None
    } else {
        Some(Aisales::spawn("projector", &["projector"], &projector_env)?)
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;
    support::wait_healthy(&client, &format!("{base}/health"), Duration::from_secs(30)).await?;
    let target =
        Arc::new(Target { base, path: format!("/webhooks/green-api/{}/{}", tenant.id, account.account.id), token });

    let empty =
        round(&client, &target, &pool, &read_models, &db.url, server.pid(), 0, connections, warmup, seconds).await?;
    print_round("empty database", &empty);

    if stored_messages > 0 {
        let per_conversation = 100u64;
        let conversations = stored_messages.div_ceil(per_conversation);
        let spec = HistorySpec::new(tenant.id, account.account.id, per_conversation as u32);
        let store = EventStore::new(pool.clone());
        let seeded = Instant::now();
        let next = Arc::new(AtomicU64::new(CHATS));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (store, spec, next) = (store.clone(), spec.clone(), next.clone());
            tasks.spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= CHATS + conversations {
                        return anyhow::Ok(());
                    }
                    history::seed_conversation(&store, &spec, n).await?;
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MessageReceived'")
            .fetch_one(&pool)
            .await?;
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await?;
        report(
            "stored history",
            format!("{messages} customer messages, {events} events, seeded in {:.0} s", seeded.elapsed().as_secs_f64()),
        );
        let caught = Instant::now();
        support::wait_caught_up(&pool, &read_models, Duration::from_secs(3600)).await?;
        report("projector caught up with the history", format!("{:.0} s", caught.elapsed().as_secs_f64()));
        sqlx::query("VACUUM ANALYZE").execute(&pool).await?;

        let full =
            round(&client, &target, &pool, &read_models, &db.url, server.pid(), CHATS, connections, warmup, seconds)
                .await?;
        print_round(&format!("{messages} messages stored"), &full);
        report("rate with the history vs empty", format!("{:+.1}%", 100.0 * (full.rate - empty.rate) / empty.rate));
    }
    if let Some((_, peak)) = support::rss_mib(server.pid()) {
        report("server peak RSS over the whole run", format!("{peak:.0} MiB"));
    }
    server.stop();
    if let Some(p) = projector {
        p.stop();
    }
    pool.close().await;
    support::keep_or_drop(db).await?;
    Ok(())
}

struct Round {
    pgbench: support::Pgbench,
    rate: f64,
    latency: Summary,
    errors: u64,
    lag: Summary,
    rss: (f64, f64),
}

fn print_round(name: &str, r: &Round) {
    report(&format!("[{name}] pgbench single-row INSERT, 32 clients"), format!("{:.0} tx/s", r.pgbench.tps));
    report(
        &format!("[{name}] webhook ingest"),
        format!("{:.0} requests/s = {:.0}% of pgbench, {} errors", r.rate, 100.0 * r.rate / r.pgbench.tps, r.errors),
    );
    report(&format!("[{name}] webhook latency"), r.latency);
    if std::env::var("BENCH_NO_PROJECTOR").is_ok() {
        report(&format!("[{name}] projection lag"), "not measured (BENCH_NO_PROJECTOR: no projector running)");
    } else {
        report(&format!("[{name}] projection lag (oldest unapplied event)"), r.lag);
    }
    report(&format!("[{name}] server RSS now / peak"), format!("{:.0} / {:.0} MiB", r.rss.0, r.rss.1));
}

#[allow(clippy::too_many_arguments)]
async fn round(
    client: &reqwest::Client,
    target: &Arc<Target>,
    pool: &sqlx::PgPool,
    read_models: &[String],
    db_url: &str,
    server_pid: u32,
    first_chat: u64,
    connections: usize,
    warmup: u64,
    seconds: u64,
) -> anyhow::Result<Round> {
    support::checkpoint(pool).await;
    let pgbench = support::pgbench_insert(db_url, 32, seconds as u32).await?;
    if std::env::var("BENCH_NO_PROJECTOR").is_err() {
        support::wait_caught_up(pool, read_models, Duration::from_secs(600)).await?;
    }
    support::checkpoint(pool).await;

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let (client, target, measuring, stop, sent, errors) =
            (client.clone(), target.clone(), measuring.clone(), stop.clone(), sent.clone(), errors.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(100_000);
            let mut i = 0u64;
            let run = Uuid::now_v7().simple().to_string();
            while !stop.load(Ordering::Relaxed) {
                let n = first_chat + (c as u64 + i * connections as u64) % CHATS;
                let body = notification(n, &format!("B{run}{c}x{i}"), i);
                i += 1;
                let t = Instant::now();
                let r = client
                    .post(format!("{}{}", target.base, target.path))
                    .bearer_auth(&target.token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        let _ = r.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                if measuring.load(Ordering::Relaxed) {
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    sent.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        });
    }
    // Lag sampler: age of the oldest event some read model has not applied.
    let sampler = {
        let (pool, stop, measuring, names) = (pool.clone(), stop.clone(), measuring.clone(), read_models.to_vec());
        tokio::spawn(async move {
            let mut lags = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let lag: Option<f64> = sqlx::query_scalar(
                    "SELECT COALESCE(max(EXTRACT(EPOCH FROM clock_timestamp() - ( \
                        SELECT e.recorded_at FROM events e WHERE (e.tx_id, e.global_position) > (c.tx_id, c.position) \
                        ORDER BY e.tx_id, e.global_position LIMIT 1)))::float8, 0) \
                     FROM projector_checkpoints c WHERE c.name = ANY($1)",
                )
                .bind(&names)
                .fetch_one(&pool)
                .await
                .ok();
                if measuring.load(Ordering::Relaxed)
                    && let Some(l) = lag
                {
                    lags.push(l * 1000.0);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            lags
        })
    };
    tokio::time::sleep(Duration::from_secs(warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        latencies.extend(r?);
    }
    let mut lags = sampler.await?;
    let rss = support::rss_mib(server_pid).unwrap_or_default();
    Ok(Round {
        pgbench,
        rate: sent.load(Ordering::Relaxed) as f64 / elapsed,
        latency: Summary::of(&mut latencies),
        errors: errors.load(Ordering::Relaxed),
        lag: Summary::of(&mut lags),
        rss,
    })
}

/// A GREEN-API `incomingMessageReceived` text notification from customer `n`.
fn notification(n: u64, id_message: &str, i: u64) -> String {
    let chat = history::chat_id(n);
    json!({
        "typeWebhook": "incomingMessageReceived",
        "instanceData": {"idInstance": ID_INSTANCE.parse::<u64>().unwrap_or(0), "wid": "79990000000@c.us", "typeInstance": "whatsapp"},
        "timestamp": 1_790_000_000 + i,
        "idMessage": id_message,
        "senderData": {"chatId": chat, "chatName": format!("Клиент {n}"), "sender": chat, "senderName": format!("Клиент {n}"), "senderContactName": ""},
        "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": "Здравствуйте, нужна АКПП на Камри 2008, сколько стоит?"}}
    })
    .to_string()
}
