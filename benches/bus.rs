//! Worker bus benchmark (`cargo bench --bench bus`) with the no-op job: a probe's `Ping` command
//! commits `PingRequested`; the work projector (`aisales projector`) dispatches a job to the Redis
//! stream; `aisales worker probe` runs it, which is one `RecordPong` command on the probe.
//!
//! 1. Throughput: BENCH_PINGS (default 20,000) pings are committed by 32 writers while the
//!    projector and the worker are stopped; then both start and the bus drains the backlog:
//!    commands/s from their start to the last pong recorded (dispatcher → stream → worker → result
//!    command, with nothing else competing for the two cores).
//! 2. Latency at a steady offered load of BENCH_RATE pings/s (default 1,000) for BENCH_SECONDS
//!    (default 20): event commit (the ping's `recorded_at`) to job start (the pong's `at`, taken
//!    when the handler starts), p50/p99.
//!
//! BENCH_WORKER_CONCURRENCY (default 32) is passed to the worker as WORKER_CONCURRENCY.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aisales::store::{EventMetadata, EventStore};
use aisales::testkit::TestDb;
use aisales_domain::probe::{Probe, ProbeCommand};
use support::{Aisales, Summary, env_or, report};
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pings: u64 = env_or("BENCH_PINGS", 20_000);
    let rate: u64 = env_or("BENCH_RATE", 1_000);
    let seconds: u64 = env_or("BENCH_SECONDS", 20);
    let concurrency: u32 = env_or("BENCH_WORKER_CONCURRENCY", 32);
    let db = TestDb::create().await?;
    println!("database {}", db.name);
    let pool = db.pool(32).await?;
    let store = EventStore::new(pool.clone());

    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", support::redis_url()),
        ("REDIS_PREFIX", format!("bench{}", Uuid::now_v7().simple())),
        ("WORKER_CONCURRENCY", concurrency.to_string()),
        ("DATABASE_MAX_CONNECTIONS", "24".into()),
    ];
    let mut projector_env = env.clone();
    projector_env.push(("METRICS_PORT", support::free_port().to_string()));
    let mut worker_env = env.clone();
    worker_env.push(("METRICS_PORT", support::free_port().to_string()));
    let spawn = || -> anyhow::Result<(Aisales, Aisales)> {
        Ok((
            Aisales::spawn("projector", &["projector"], &projector_env)?,
            Aisales::spawn("worker", &["worker", "probe"], &worker_env)?,
        ))
    };
    // Warm up: the bus answers one ping end to end.
    let (projector, worker) = spawn()?;
    ping(&store, "warmup").await?;
    wait_pongs(&pool, 1, Duration::from_secs(60)).await?;
    worker.stop();
    projector.stop();

    // 1. Throughput: a committed backlog drained by the bus.
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (store, next) = (store.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= pings {
                    return anyhow::Ok(());
                }
                ping(&store, &format!("t{n}")).await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let committed = started.elapsed().as_secs_f64();
    report(
        "backlog committed by 32 writers (bus stopped)",
        format!("{pings} pings in {committed:.1} s = {:.0} commands/s", pings as f64 / committed),
    );
    let started = Instant::now();
    let (projector, worker) = spawn()?;
    wait_pongs(&pool, pings + 1, Duration::from_secs(600)).await?;
    let took = started.elapsed().as_secs_f64();
    report(
        "bus throughput draining the backlog (dispatch → stream → worker → pong)",
        format!("{pings} jobs in {took:.1} s = {:.0} commands/s (process start-up included)", pings as f64 / took),
    );

    // 2. Latency at a steady rate.
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..total {
        ticker.tick().await;
        let store = store.clone();
        tasks.spawn(async move { ping(&store, &format!("s{n}")).await });
        while let Some(r) = tasks.try_join_next() {
            r??;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let offered = total as f64 / started.elapsed().as_secs_f64();
    wait_pongs(&pool, pings + 1 + total, Duration::from_secs(600)).await?;
    let mut steady = latencies(&pool, "s").await?;
    report(&format!("commit → job start at {offered:.0} pings/s"), Summary::of(&mut steady));

    if let Some((_, peak)) = support::rss_mib(worker.pid()) {
        report("worker peak RSS", format!("{peak:.0} MiB"));
    }
    worker.stop();
    projector.stop();
    pool.close().await;
    support::keep_or_drop(db).await?;
    Ok(())
}

async fn ping(store: &EventStore, id: &str) -> anyhow::Result<()> {
    let meta = EventMetadata::system(None, "bench");
    let cmd = ProbeCommand::Ping { ping_id: Uuid::now_v7(), at: chrono::Utc::now() };
    store.execute::<Probe>(&format!("bench-{id}"), cmd, &(), &meta).await?;
    Ok(())
}

async fn wait_pongs(pool: &sqlx::PgPool, n: u64, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let pongs: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PongRecorded'").fetch_one(pool).await?;
        if pongs as u64 >= n {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < timeout, "{pongs} of {n} pongs after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Milliseconds from each ping's commit to its job's start, for probes named `bench-{prefix}…`.
async fn latencies(pool: &sqlx::PgPool, prefix: &str) -> anyhow::Result<Vec<f64>> {
    Ok(sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM (pong.payload->'PongRecorded'->>'at')::timestamptz - ping.recorded_at) * 1000)::float8 \
           FROM events ping JOIN events pong ON pong.aggregate_type = ping.aggregate_type \
            AND pong.aggregate_id = ping.aggregate_id AND pong.sequence = 2 \
          WHERE ping.aggregate_type = 'probe' AND ping.sequence = 1 AND ping.aggregate_id LIKE $1",
    )
    .bind(format!("bench-{prefix}%"))
    .fetch_all(pool)
    .await?)
}
