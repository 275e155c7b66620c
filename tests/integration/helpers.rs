//! Shared helpers: test databases, an in-process app on a random port, the binary as a child.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aisales::config::Settings;
use aisales::http::AppState;
use aisales::http::server::Application;
use aisales::infra::redis::Redis;
use aisales::testkit::TestDb;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Redis URL of the test environment.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// A running in-process application.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub pool: PgPool,
    pub state: AppState,
    pub cancel: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
        drop_database_in_background(self.db.clone());
    }
}

/// Drops a test database from a separate thread (Drop cannot await).
pub fn drop_database_in_background(db: TestDb) {
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            let _ = rt.block_on(db.drop_db());
        }
    });
}

/// Starts the app on a random port with its own database; `vars` override settings.
pub async fn spawn_app(vars: &[(&str, &str)]) -> TestApp {
    let db = TestDb::create().await.expect("test database");
    let mut all: Vec<(&str, &str)> = vec![("DATABASE_URL", &db.url), ("PORT", "0"), ("HOST", "127.0.0.1")];
    let redis = redis_url();
    if !vars.iter().any(|(k, _)| *k == "REDIS_URL") {
        all.push(("REDIS_URL", &redis));
    }
    // Streams and rate-limit keys of this app only: tests share one Redis.
    let prefix = format!("t{}", uuid::Uuid::now_v7().simple());
    if !vars.iter().any(|(k, _)| *k == "REDIS_PREFIX") {
        all.push(("REDIS_PREFIX", &prefix));
    }
    all.extend_from_slice(vars);
    let settings = Arc::new(Settings::for_tests(&all));
    let pool = aisales::infra::db::pool(&settings).expect("pool");
    let redis = Redis::new(&settings).expect("redis");
    let state = AppState::new(settings.clone(), pool.clone(), redis);
    let app = Application::build(state.clone()).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let cancel = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(cancel.clone(), Duration::from_secs(1)));
    TestApp { address, client: reqwest::Client::new(), db, pool, state, cancel }
}

/// The `aisales` binary with a clean environment pointing at `db_url`, run in a scratch directory
/// (so no `.env` is picked up).
pub fn aisales(db_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aisales"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "test")
        .env("DATABASE_URL", db_url)
        .env("REDIS_URL", redis_url())
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info")
        .current_dir(scratch_dir());
    cmd
}

/// An empty directory for child processes.
pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aisales-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A child process that is SIGKILLed when dropped.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        ChildGuard(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn aisales"))
    }

    /// Spawns with stdout and stderr appended to `log`.
    pub fn spawn_logged(mut cmd: Command, log: &std::path::Path) -> ChildGuard {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let err = out.try_clone().expect("log file");
        ChildGuard(cmd.stdout(out).stderr(err).spawn().expect("spawn aisales"))
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, then wait up to `deadline` for a clean exit; returns the exit status.
    pub fn terminate(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        let start = std::time::Instant::now();
        while start.elapsed() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A tenant with one API token per role.
pub struct TestTenant {
    pub id: uuid::Uuid,
    pub tokens: std::collections::HashMap<aisales::auth::Role, String>,
}

impl TestTenant {
    pub fn token(&self, role: aisales::auth::Role) -> &str {
        &self.tokens[&role]
    }

    pub fn owner(&self) -> &str {
        self.token(aisales::auth::Role::Owner)
    }
}

/// Creates a tenant named `name` with a token for every role.
pub async fn create_tenant(pool: &PgPool, name: &str) -> TestTenant {
    let mut tx = pool.begin().await.unwrap();
    let tenant = aisales::tenancy::create_tenant(&mut tx, name).await.unwrap();
    let mut tokens = std::collections::HashMap::new();
    for role in aisales::auth::Role::ALL {
        let t =
            aisales::auth::tokens::create(&mut tx, tenant.id, &format!("{role} token"), role, "test").await.unwrap();
        tokens.insert(role, t.token);
    }
    tx.commit().await.unwrap();
    TestTenant { id: tenant.id, tokens }
}

/// Creates a dashboard user with a known password (no password change pending).
pub async fn create_user(
    pool: &PgPool,
    tenant: uuid::Uuid,
    email: &str,
    password: &str,
    role: aisales::auth::Role,
) -> uuid::Uuid {
    let hash = aisales::auth::passwords::hash(password);
    let mut conn = pool.acquire().await.unwrap();
    aisales::tenancy::create_user(&mut conn, tenant, email, role, &hash, false).await.unwrap().id
}

impl TestApp {
    /// A request to `path` with `token` as bearer (when given).
    pub fn request(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, format!("{}{path}", self.address));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }
}

impl TestApp {
    /// Also runs every projector, the sweeper and every worker in this process, stopped with the
    /// app. Polling is fast so tests do not wait on timers.
    pub fn start_background(&self) {
        self.start_background_except(&[]);
    }

    /// Like [`TestApp::start_background`] without the workers of `skip` (a test runs those as
    /// separate processes).
    pub fn start_background_except(&self, skip: &[aisales::bus::Kind]) {
        let settings = self.state.settings.clone();
        let pool = self.pool.clone();
        let redis = self.state.redis.clone();
        let options = aisales::projection::runtime::RuntimeOptions {
            poll_interval: Duration::from_millis(100),
            gather: Duration::from_millis(5),
            lease_interval: Duration::from_millis(200),
            batch_size: None,
            instance: format!("test-{}", uuid::Uuid::now_v7()),
        };
        let runtime = aisales::projection::runtime::ProjectorRuntime::new(
            pool.clone(),
            aisales::infra::db::connect_options(&settings).unwrap(),
            aisales::projection::registry::all(&settings, &pool, &redis),
            options,
        );
        tokio::spawn(runtime.run(self.cancel.clone()));
        let sweeper = aisales::process::sweeper_options(&settings);
        tokio::spawn(aisales::bus::sweeper::run(
            pool.clone(),
            aisales::infra::db::connect_options(&settings).unwrap(),
            redis.clone(),
            sweeper,
            self.cancel.clone(),
        ));
        let services = aisales::workers::Services::new(settings.clone(), pool, redis.clone());
        for kind in aisales::bus::Kind::ALL.into_iter().filter(|k| !skip.contains(k)) {
            if let Some(handler) = aisales::workers::handler(kind, &services) {
                let options = aisales::bus::worker::WorkerOptions {
                    shutdown_grace: Duration::from_secs(1),
                    ..aisales::process::worker_options(&settings, kind)
                };
                tokio::spawn(aisales::bus::worker::run(redis.clone(), handler, options, self.cancel.clone()));
            }
        }
    }

    /// GET returning JSON (panics on a non-2xx answer with the body).
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let r = self.request(reqwest::Method::GET, path, Some(token)).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "GET {path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// POST with a JSON body returning the JSON answer (panics on a non-2xx answer).
    pub async fn post_json(&self, path: &str, token: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self.request(reqwest::Method::POST, path, Some(token)).json(&body).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }
}

impl TestApp {
    /// The `aisales` binary configured like this app (same database, Redis prefix and keys).
    pub fn command(&self, extra: &[(&str, &str)]) -> Command {
        let s = &self.state.settings;
        let mut cmd = aisales(&self.db.url);
        cmd.env("REDIS_PREFIX", &s.bus.redis_prefix)
            .env("INTEGRATION_SECRETS_MASTER_KEY", crate::conversations::MASTER_KEY)
            .env("GREEN_API_URL", &s.green_api_url)
            .env("TELEGRAM_API_URL", &s.telegram_api_url)
            .env("WHATSAPP_API_URL", &s.whatsapp_api_url)
            .env("WORKER_VISIBILITY_TIMEOUT_SECS", s.bus.visibility_timeout.as_secs().to_string())
            .env("WORK_REDISPATCH_SECS", s.bus.redispatch_after.as_secs().to_string());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }
}
