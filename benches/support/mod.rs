//! What the benchmarks share: the pgbench baseline, percentiles, process memory, and the
//! `aisales` binary as a child process.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

/// Reads a numeric setting of the benchmark from the environment.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// pgbench's result for single-row INSERTs.
#[derive(Debug, Clone, Copy)]
pub struct Pgbench {
    pub clients: u32,
    pub tps: f64,
    pub latency_ms: f64,
}

/// Runs `pgbench` with `clients` clients for `seconds`, each transaction one single-row INSERT
/// into a table shaped like a small message row, on the database at `url`.
pub async fn pgbench_insert(url: &str, clients: u32, seconds: u32) -> anyhow::Result<Pgbench> {
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_pgbench_insert (id bigserial PRIMARY KEY, chat_id text NOT NULL, \
         body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&pool)
    .await?;
    pool.close().await;
    let script = std::env::temp_dir().join(format!("aisales-pgbench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "INSERT INTO bench_pgbench_insert (chat_id, body) VALUES ('79001234567@c.us', 'Здравствуйте, нужна АКПП на Камри 2008');\n",
    )?;
    let threads = clients.min(num_cpus()).max(1);
    let out = Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j", &threads.to_string(), "-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(url)
        .output()
        .context("running pgbench (install postgresql-contrib or the postgresql client package)")?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(out.status.success(), "pgbench failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    let number_after = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    Ok(Pgbench {
        clients,
        tps: number_after("tps = ").context("pgbench printed no tps")?,
        latency_ms: number_after("latency average = ").unwrap_or(f64::NAN),
    })
}

/// Writes every dirty page out (`CHECKPOINT`) so that a round does not pay for the previous
/// round's writes, nor for the first-touch full-page images of a checkpoint that the previous round
/// started. Needs the `pg_checkpoint` role (granted by `scripts/lib/services.sh`); skipped with a
/// note when the role is missing.
pub async fn checkpoint(pool: &sqlx::PgPool) {
    if let Err(e) = sqlx::query("CHECKPOINT").execute(pool).await {
        println!("(no CHECKPOINT before this round: {e})");
    }
}

pub fn num_cpus() -> u32 {
    std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1)
}

/// Percentiles of a sample (milliseconds, or any unit).
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(samples: &mut [f64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        samples.sort_by(|a, b| a.total_cmp(b));
        let at = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
        Summary { count: samples.len(), p50: at(0.50), p90: at(0.90), p99: at(0.99), max: samples[samples.len() - 1] }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
            self.p50, self.p90, self.p99, self.max, self.count
        )
    }
}

/// Resident memory of a process from /proc: (current, peak) in MiB.
pub fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<f64> {
        status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some((kib("VmRSS:")? / 1024.0, kib("VmHWM:")? / 1024.0))
}

/// A child `aisales` process, killed when dropped.
pub struct Aisales {
    pub child: Child,
    pub name: String,
}

impl Aisales {
    /// Starts `aisales ARGS` with `env` (and nothing inherited but PATH), logging to a file under
    /// the temp directory.
    pub fn spawn(name: &str, args: &[&str], env: &[(&str, String)]) -> anyhow::Result<Aisales> {
        let dir = scratch_dir();
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aisales"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("APP_ENV", "development")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "warn")
            .current_dir(&dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("starting aisales {args:?}"))?;
        Ok(Aisales { child, name: name.to_string() })
    }

    /// Runs `aisales ARGS` to completion and returns its stdout.
    pub fn run(args: &[&str], env: &[(&str, String)]) -> anyhow::Result<String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aisales"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("APP_ENV", "development")
            .env("LOG_LEVEL", "warn")
            .current_dir(scratch_dir())
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output()?;
        anyhow::ensure!(
            out.status.success(),
            "aisales {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then up to 10 s for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Aisales {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aisales-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Waits until `url` answers 200.
pub async fn wait_healthy(client: &reqwest::Client, url: &str, timeout: Duration) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < timeout, "{url} did not answer within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prints a result line in a fixed format (easy to grep from a log).
pub fn report(name: &str, value: impl std::fmt::Display) {
    println!("RESULT {name:<44} {value}");
}

/// A tenant with one GREEN-API account (ids of both), created directly in the database.
pub async fn tenant_with_account(pool: &sqlx::PgPool) -> anyhow::Result<(uuid::Uuid, uuid::Uuid)> {
    let mut conn = pool.acquire().await?;
    let tenant = aisales::tenancy::create_tenant(&mut conn, "Bench Gearbox Shop").await?;
    let account = aisales::tenancy::create_channel_account(
        &mut conn,
        tenant.id,
        aisales::tenancy::ChannelKind::GreenApi,
        "1101000001",
        "MAX",
        serde_json::json!({ "id_instance": "1101000001", "api_url": "http://127.0.0.1:9" }),
    )
    .await?
    .context("account created")?;
    Ok((tenant.id, account.id))
}

/// Drops the benchmark's database, or keeps it for inspection with `BENCH_KEEP_DB=1`.
pub async fn keep_or_drop(db: aisales::testkit::TestDb) -> anyhow::Result<()> {
    if std::env::var("BENCH_KEEP_DB").is_ok() {
        println!("kept database {}", db.name);
    } else {
        db.drop_db().await?;
    }
    Ok(())
}

/// Waits until every projector in `names` has applied everything readable (the head is read
/// again each round, so events still arriving are waited for too).
pub async fn wait_caught_up(pool: &sqlx::PgPool, names: &[String], timeout: Duration) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut last_print = std::time::Instant::now();
    loop {
        let head: Option<(i64, i64)> = sqlx::query_as(
            "SELECT tx_id::text::bigint, global_position FROM events \
              ORDER BY events.tx_id DESC, events.global_position DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await?;
        let Some(head) = head else { return Ok(()) };
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, position FROM projector_checkpoints \
              WHERE name = ANY($1) AND (tx_id, position) >= ($2::text::xid8, $3)",
        )
        .bind(names)
        .bind(head.0.to_string())
        .bind(head.1)
        .fetch_all(pool)
        .await?;
        if rows.len() == names.len() {
            return Ok(());
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            println!("  catching up: {} of {} at the head ({})", rows.len(), names.len(), head.1);
            last_print = std::time::Instant::now();
        }
        anyhow::ensure!(started.elapsed() < timeout, "projectors did not catch up within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a benchmark of the HTTP stack starts from: a fresh database's settings (with a master key
/// of its own, passed on to child processes), its pool, Redis, the app state and one tenant.
pub struct Shop {
    pub master_key: String,
    pub settings: std::sync::Arc<aisales::config::Settings>,
    pub pool: sqlx::PgPool,
    pub redis: aisales::infra::redis::Redis,
    pub state: aisales::http::AppState,
    pub tenant: aisales::tenancy::Tenant,
}

/// Settings, pool, Redis, state and a tenant named "Bench Gearbox Shop" on `db`.
pub async fn shop(db: &aisales::testkit::TestDb) -> anyhow::Result<Shop> {
    use base64::Engine;
    let master_key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let settings = std::sync::Arc::new(aisales::config::Settings::for_tests(&[
        ("DATABASE_URL", &db.url),
        ("INTEGRATION_SECRETS_MASTER_KEY", &master_key),
        ("REDIS_URL", &redis_url()),
    ]));
    let pool = db.pool(10).await?;
    let redis = aisales::infra::redis::Redis::new(&settings)?;
    let state = aisales::http::AppState::new(settings.clone(), pool.clone(), redis.clone());
    let tenant = {
        let mut conn = pool.acquire().await?;
        aisales::tenancy::create_tenant(&mut conn, "Bench Gearbox Shop").await?
    };
    Ok(Shop { master_key, settings, pool, redis, state, tenant })
}
