//! Worker bus benchmark (`cargo bench --bench bus`) with the no-op job: a probe's `Ping` command
//! commits `PingRequested`; the work projector (`aisales projector`) dispatches a job to the Redis
//! stream; `aisales worker probe` runs it, which is one `RecordPong` command on the probe.
//!
//! 1. Capacity: BENCH_PINGS (default 20,000) pings are committed by 32 writers while the
//!    projector and the worker are stopped; then both start and the bus drains the backlog:
//!    commands/s from their start to the last pong recorded (dispatcher → stream → worker → result
//!    command, with nothing else competing for the cores).
//! 2. Latency at a share of that capacity: BENCH_LOAD (default 0.5) of the rate just measured, or a
//!    fixed BENCH_RATE pings/s, offered open loop for BENCH_SECONDS (default 20). Event commit (the
//!    ping's `recorded_at`) to job start (the pong's `at`, taken when the handler starts),
//!    p50/p90/p99, and where that time went: the stages of `aisales_job_stage_seconds`, read from
//!    the projector's and the worker's `/metrics` before and after the run. Offered as a share of
//!    the capacity measured in the same run, the figure means the same on a slow machine and on a
//!    fast one. The backlog's dead rows are vacuumed and its dirty pages written out before this
//!    phase (`VACUUM`, `CHECKPOINT`), so that the cleanup of phase 1 does not land in it.
//!
//! BENCH_WORKER_CONCURRENCY (default 32) is passed to the worker as WORKER_CONCURRENCY.

mod support;

use std::collections::HashMap;
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
    let fixed_rate: Option<f64> = std::env::var("BENCH_RATE").ok().and_then(|r| r.parse().ok());
    let load: f64 = env_or("BENCH_LOAD", 0.5);
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
    let (projector_port, worker_port) = (support::free_port(), support::free_port());
    let mut projector_env = env.clone();
    projector_env.push(("METRICS_PORT", projector_port.to_string()));
    let mut worker_env = env.clone();
    worker_env.push(("METRICS_PORT", worker_port.to_string()));
    let metrics_urls: Vec<String> =
        [projector_port, worker_port].iter().map(|port| format!("http://127.0.0.1:{port}/metrics")).collect();
    let http = reqwest::Client::new();
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

    // 1. Capacity: a committed backlog drained by the bus.
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
    let capacity = pings as f64 / took;
    report(
        "bus throughput draining the backlog (dispatch → stream → worker → pong)",
        format!("{pings} jobs in {took:.1} s = {capacity:.0} commands/s (process start-up included)"),
    );

    // 2. Latency at a steady rate: a share of the capacity just measured (or BENCH_RATE). The
    // backlog's cleanup (its dead rows vacuumed, its dirty pages written) is done first, so that
    // autovacuum and the checkpointer do not take the cores in the middle of the measured run.
    sqlx::query("VACUUM (ANALYZE) events, work_items").execute(&pool).await?;
    support::checkpoint(&pool).await;
    let rate = fixed_rate.unwrap_or(capacity * load).max(1.0);
    let total = (rate * seconds as f64).round() as u64;
    let before = scrape(&http, &metrics_urls).await?;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
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
    let after = scrape(&http, &metrics_urls).await?;
    let mut steady = latencies(&pool, "s").await?;
    let mean = steady.iter().sum::<f64>() / steady.len().max(1) as f64;
    report(
        &format!("commit → job start at {offered:.0} pings/s ({:.0} % of capacity)", 100.0 * offered / capacity),
        Summary::of(&mut steady),
    );
    println!("where the time went (aisales_job_stage_seconds over the steady run; quantiles are bucket bounds):");
    let mut sum_of_means = 0.0;
    for stage in STAGES {
        let h = after.get(stage).cloned().unwrap_or_default().minus(&before.get(stage).cloned().unwrap_or_default());
        sum_of_means += h.mean_ms();
        report(
            &format!("  {stage}"),
            format!(
                "mean {:.2} ms, p50 ≤ {} ms, p99 ≤ {} ms (n={})",
                h.mean_ms(),
                h.quantile_ms(0.50),
                h.quantile_ms(0.99),
                h.count
            ),
        );
    }
    report("  stages added up (means)", format!("{sum_of_means:.2} ms; commit → start measured: mean {mean:.2} ms"));

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

/// The stages of `aisales_job_stage_seconds`, in the order a job passes them.
const STAGES: [&str; 6] = ["pickup", "batch", "xadd", "stream", "slot", "lease"];

/// One stage's histogram as scraped: cumulative counts by bucket bound (seconds), sum and count.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl Histogram {
    /// What was recorded after `earlier`.
    fn minus(&self, earlier: &Histogram) -> Histogram {
        let at = |le: f64| earlier.buckets.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, n)| *n);
        Histogram {
            buckets: self.buckets.iter().map(|(le, n)| (*le, n - at(*le))).collect(),
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
        }
    }

    fn mean_ms(&self) -> f64 {
        if self.count > 0.0 { 1000.0 * self.sum / self.count } else { 0.0 }
    }

    /// The bound of the bucket that holds the quantile `q`, in milliseconds.
    fn quantile_ms(&self, q: f64) -> String {
        let rank = q * self.count;
        match self.buckets.iter().find(|(_, n)| *n >= rank && *n > 0.0) {
            Some((le, _)) if le.is_finite() => format!("{}", 1000.0 * le),
            Some(_) => "∞".into(),
            None => "-".into(),
        }
    }
}

/// `aisales_job_stage_seconds` of the probe kind by stage, from every `/metrics` in `urls`.
async fn scrape(http: &reqwest::Client, urls: &[String]) -> anyhow::Result<HashMap<String, Histogram>> {
    let mut out: HashMap<String, Histogram> = HashMap::new();
    for url in urls {
        let text = http.get(url).send().await?.error_for_status()?.text().await?;
        for line in text.lines().filter(|l| l.starts_with("aisales_job_stage_seconds")) {
            let label = |name: &str| {
                let start = line.find(&format!("{name}=\""))? + name.len() + 2;
                line[start..].split('"').next()
            };
            let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            let (Some(stage), Some(value), Some("probe")) = (label("stage"), value, label("kind")) else {
                continue;
            };
            let h = out.entry(stage.to_string()).or_default();
            if line.starts_with("aisales_job_stage_seconds_bucket") {
                let le = label("le").and_then(|l| l.parse().ok()).unwrap_or(f64::INFINITY);
                h.buckets.push((le, value));
            } else if line.starts_with("aisales_job_stage_seconds_sum") {
                h.sum = value;
            } else if line.starts_with("aisales_job_stage_seconds_count") {
                h.count = value;
            }
        }
    }
    for h in out.values_mut() {
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Ok(out)
}
