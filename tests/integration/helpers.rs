//! Shared helpers: test databases, an in-process app on a random port, the binary as a child.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fakes::green_api::FakeGreenApi;
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
            ..Default::default()
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
            {
                let handler = aisales::workers::handler(kind, &services).expect("the worker starts");
                let options = aisales::bus::worker::WorkerOptions {
                    shutdown_grace: Duration::from_secs(1),
                    ..aisales::process::worker_options(&settings, kind)
                };
                tokio::spawn(aisales::bus::worker::run(redis.clone(), handler, options, self.cancel.clone()));
            }
        }
    }

    /// Waits until the system is at rest (with [`TestApp::start_background`] running): every
    /// projector has applied every committed event (projectors read an event only once no older
    /// transaction of the cluster is in flight, so this also waits out other tests' open
    /// transactions), no job is due or running, and that still holds
    /// a moment later (a job's result is an event the projectors then apply). Replaces polling
    /// for one read model where the outcome is settled by the events alone.
    pub async fn drain(&self) {
        let quiet = || async {
            let behind: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM projector_checkpoints c, \
                   (SELECT tx_id, global_position FROM events \
                     ORDER BY tx_id DESC, global_position DESC LIMIT 1) h \
                  WHERE (c.tx_id, c.position) < (h.tx_id, h.global_position)",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap();
            let working: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM work_items WHERE status = 'started' OR (status = 'requested' AND due_at <= now())",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap();
            behind == 0 && working == 0
        };
        let start = std::time::Instant::now();
        loop {
            if quiet().await {
                tokio::time::sleep(Duration::from_millis(150)).await;
                if quiet().await {
                    return;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the system did not come to rest within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
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
            .env("INTEGRATION_SECRETS_MASTER_KEY", MASTER_KEY)
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

// -------------------------------------------------------------------------------------------
// Apps, tenants and channels as most feature tests set them up.

pub const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Settings that make the background loops quick in tests.
pub fn fast(extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        ("RATE_LIMIT_API_PER_MINUTE", "0".into()),
        ("RATE_LIMIT_WEBHOOK_PER_MINUTE", "0".into()),
        ("WORKER_VISIBILITY_TIMEOUT_SECS", "2".into()),
        ("WORK_REDISPATCH_SECS", "2".into()),
        ("WORK_SWEEP_INTERVAL_MS", "200".into()),
        ("INTEGRATION_SECRETS_MASTER_KEY", MASTER_KEY.into()),
    ];
    v.extend(extra.iter().cloned());
    v
}

pub async fn app_with(vars: &[(&'static str, String)]) -> TestApp {
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app(&borrowed).await
}

/// A tenant whose suggestions are drafted without waiting for a burst to end.
pub async fn tenant(app: &TestApp) -> TestTenant {
    let t = create_tenant(&app.pool, "Коробки").await;
    app.request(Method::PATCH, "/api/tenant", Some(t.owner()))
        .json(&json!({"settings": {"suggestion_debounce_secs": 0}}))
        .send()
        .await
        .unwrap();
    t
}

pub async fn secret(app: &TestApp, tenant: Uuid, account: &str, what: &str) -> String {
    let mut conn = app.pool.acquire().await.unwrap();
    let name = aisales::tenancy::secret_name(account.parse().unwrap(), what);
    aisales::infra::crypto::get(&mut conn, &app.state.keys, Some(tenant), &name).await.unwrap()
}

/// Adds the fake GREEN-API account; returns (account id, webhook path, webhook token).
pub async fn green_account(app: &TestApp, t: &TestTenant, fake: &FakeGreenApi) -> (String, String, String) {
    let acc = app
        .post_json(
            "/api/channels",
            t.owner(),
            json!({"kind": "green_api", "id_instance": FakeGreenApi::ID_INSTANCE.to_string(), "api_token": FakeGreenApi::TOKEN, "api_url": fake.url()}),
        )
        .await;
    let id = acc["id"].as_str().unwrap().to_string();
    let path = format!("/webhooks/green-api/{}/{id}", t.id);
    assert!(acc["webhook_url"].as_str().unwrap().ends_with(&path));
    let token = secret(app, t.id, &id, "webhook_token").await;
    (id, path, token)
}

pub async fn post_green(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    app.client.post(format!("{}{path}", app.address)).bearer_auth(token).json(body).send().await.unwrap()
}

/// GET that answers `None` while the read model has not caught up (404) or on any other error.
pub async fn try_get(app: &TestApp, path: &str, token: &str) -> Option<Value> {
    let r = app.request(Method::GET, path, Some(token)).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Waits until the conversation has `n` suggestions with `status`, returns them.
pub async fn suggestions(app: &TestApp, token: &str, conversation: &str, status: &str, n: usize) -> Vec<Value> {
    let path = format!("/api/conversations/{conversation}/suggestions?status={status}");
    eventually(Duration::from_secs(20), &format!("{n} {status} suggestion(s)"), || async {
        let v = try_get(app, &path, token).await?;
        let items = v["items"].as_array().cloned().unwrap_or_default();
        (items.len() >= n).then_some(items)
    })
    .await
}

/// Waits until an outbound message reaches `status`.
pub async fn outbound(app: &TestApp, token: &str, conversation: &str, status: &str) -> Value {
    let path = format!("/api/conversations/{conversation}/messages");
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(v) = try_get(app, &path, token).await
                && let Some(m) = v["items"]
                    .as_array()
                    .and_then(|items| items.iter().find(|m| m["direction"] == "out" && m["status"] == status).cloned())
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    match found {
        Ok(m) => m,
        Err(_) => {
            let events: Vec<(String, String)> = sqlx::query_as(
                "SELECT event_type, payload::text FROM events WHERE aggregate_id = $1 ORDER BY sequence",
            )
            .bind(conversation)
            .fetch_all(&app.pool)
            .await
            .unwrap();
            panic!("no outbound message reached {status}; events: {events:#?}")
        }
    }
}

/// The fields of the `event_type` events of aggregate `aggregate_id` (or of every aggregate), in
/// global order, with their customer data opened as every reader of events sees it; each with its
/// aggregate id and sequence.
pub async fn opened_events(pool: &PgPool, aggregate_id: Option<&str>, event_type: &str) -> Vec<(String, i64, Value)> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, payload::text FROM events \
          WHERE event_type = $1 AND ($2::text IS NULL OR aggregate_id = $2) ORDER BY global_position",
    )
    .bind(event_type)
    .bind(aggregate_id)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::with_capacity(rows.len());
    for (id, sequence, payload) in rows {
        let payload = aisales_projections::pii::opened(pool, event_type, payload).await.unwrap();
        let mut v: Value = serde_json::from_str(&payload).unwrap();
        out.push((id, sequence, v[event_type].take()));
    }
    out
}

/// Waits, when needed, until the current wall-clock minute has at least `needed` left. The rate
/// limiter counts hits in fixed windows of one wall-clock minute, so a test that counts hits up to a
/// limit must not straddle two windows (the second would start from zero).
pub async fn room_in_this_rate_window(needed: Duration) {
    let now = chrono::Utc::now();
    let into = Duration::from_millis(
        (now.timestamp().rem_euclid(60) * 1000) as u64 + u64::from(now.timestamp_subsec_millis()),
    );
    let left = Duration::from_secs(60).saturating_sub(into);
    if left < needed {
        tokio::time::sleep(left + Duration::from_millis(50)).await;
    }
}
