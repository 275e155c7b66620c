//! A small pool of headless Chromium sessions behind one ChromeDriver.
//!
//! Each session runs in its own fresh profile directory, is health-checked before reuse, retired
//! after a number of uses and closed (profile removed) when it breaks. A semaphore bounds how many
//! sessions exist at once. Nothing here panics: every failure is a [`BrowserError`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::error::BrowserError;

/// How the pool starts and bounds browser sessions.
#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// ChromeDriver endpoint, e.g. `http://127.0.0.1:9515` (`WEBDRIVER_URL`).
    pub webdriver_url: String,
    /// Chromium binary; `None` lets ChromeDriver find one.
    pub chromium_binary: Option<String>,
    /// Most sessions alive (busy or idle) at once.
    pub max_sessions: usize,
    /// A session is closed after this many acquisitions.
    pub session_max_uses: usize,
    /// Upper bound of one scraper step (navigation, wait, click, extraction).
    pub step_timeout: Duration,
    /// Upper bound of creating a session (ChromeDriver + Chromium start).
    pub session_start_timeout: Duration,
    /// How long [`BrowserPool::acquire`] waits for a free slot.
    pub acquire_timeout: Duration,
    /// Bound of the liveness probe run on an idle session before reuse.
    pub health_check_timeout: Duration,
    /// Idle sessions older than this are closed instead of reused.
    pub session_max_age: Duration,
    /// Directory under which each session gets its own profile directory.
    pub profile_root: PathBuf,
    /// Run without a visible window (always true in production).
    pub headless: bool,
    /// Window size in CSS pixels (screenshots use it).
    pub window_size: (u32, u32),
    /// Browser UI language, also sent as `Accept-Language`.
    pub lang: String,
    /// User-Agent override; `None` keeps Chromium's own.
    pub user_agent: Option<String>,
    /// Extra Chromium switches appended after the built-in ones.
    pub extra_args: Vec<String>,
}

impl BrowserConfig {
    /// Defaults for a ChromeDriver at `webdriver_url`.
    pub fn new(webdriver_url: impl Into<String>) -> Self {
        Self {
            webdriver_url: webdriver_url.into(),
            chromium_binary: None,
            max_sessions: 2,
            session_max_uses: 50,
            step_timeout: Duration::from_secs(15),
            session_start_timeout: Duration::from_secs(20),
            acquire_timeout: Duration::from_secs(60),
            health_check_timeout: Duration::from_secs(3),
            session_max_age: Duration::from_secs(30 * 60),
            profile_root: std::env::temp_dir(),
            headless: true,
            window_size: (1280, 900),
            lang: "ru-RU".into(),
            user_agent: None,
            extra_args: Vec::new(),
        }
    }

    /// The ChromeDriver named by `WEBDRIVER_URL`, with `CHROMIUM_BINARY`, `BROWSER_POOL_SIZE`,
    /// `BROWSER_PROFILE_DIR` and `LOOKUP_STEP_TIMEOUT_SECS`.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        let lookup = &settings.lookup;
        let mut config = Self::new(settings.webdriver_url.clone());
        config.chromium_binary.clone_from(&lookup.chromium_binary);
        config.max_sessions = lookup.pool_size;
        config.step_timeout = lookup.step_timeout;
        if let Some(dir) = &lookup.profile_dir {
            config.profile_root.clone_from(dir);
        }
        config
    }

    /// WebDriver capabilities for one session using `profile_dir`.
    pub fn capabilities(&self, profile_dir: &Path) -> serde_json::Map<String, Value> {
        let mut args: Vec<String> = Vec::new();
        if self.headless {
            args.push("--headless=new".into());
        }
        args.extend(
            [
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-features=Translate,MediaRouter,OptimizationHints",
                "--password-store=basic",
                "--mute-audio",
            ]
            .map(String::from),
        );
        args.push(format!("--window-size={},{}", self.window_size.0, self.window_size.1));
        args.push(format!("--lang={}", self.lang));
        if let Some(ua) = &self.user_agent {
            args.push(format!("--user-agent={ua}"));
        }
        args.push(format!("--user-data-dir={}", profile_dir.display()));
        args.extend(self.extra_args.iter().cloned());
        let mut chrome = json!({ "args": args, "prefs": { "intl.accept_languages": self.lang } });
        if let Some(binary) = &self.chromium_binary {
            chrome["binary"] = json!(binary);
        }
        let caps = json!({
            "browserName": "chrome",
            // Return from navigation at DOMContentLoaded, like the SPA needs; the scraper waits for
            // the rendered content itself.
            "pageLoadStrategy": "eager",
            "goog:chromeOptions": chrome,
        });
        match caps {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }
}

/// A bounded, reusable set of browser sessions. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct BrowserPool {
    inner: Arc<Inner>,
}

struct Inner {
    config: BrowserConfig,
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<Session>>,
    closed: AtomicBool,
    background: TaskTracker,
    created: AtomicU64,
}

/// One live WebDriver session and its profile directory.
struct Session {
    client: Client,
    id: String,
    profile_dir: PathBuf,
    uses: usize,
    created_at: Instant,
}

impl std::fmt::Debug for BrowserPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserPool")
            .field("webdriver_url", &self.inner.config.webdriver_url)
            .field("max_sessions", &self.inner.config.max_sessions)
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl BrowserPool {
    /// Creates an empty pool; sessions start lazily on [`BrowserPool::acquire`].
    pub fn new(config: BrowserConfig) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_sessions.max(1)));
        Self {
            inner: Arc::new(Inner {
                config,
                slots,
                idle: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                background: TaskTracker::new(),
                created: AtomicU64::new(0),
            }),
        }
    }

    /// The configuration the pool was built with.
    pub fn config(&self) -> &BrowserConfig {
        &self.inner.config
    }

    /// Number of sessions waiting in the pool.
    pub fn idle_count(&self) -> usize {
        self.inner.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// Number of sessions created since the pool was built.
    pub fn sessions_created(&self) -> u64 {
        self.inner.created.load(Ordering::Relaxed)
    }

    /// Takes a healthy session: an idle one if it answers a liveness probe, else a new one.
    #[tracing::instrument(skip(self), fields(webdriver = %self.inner.config.webdriver_url))]
    pub async fn acquire(&self) -> Result<PooledSession, BrowserError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(BrowserError::PoolClosed);
        }
        let permit = tokio::time::timeout(inner.config.acquire_timeout, inner.slots.clone().acquire_owned())
            .await
            .map_err(|_| BrowserError::timeout("acquire_session", inner.config.acquire_timeout))?
            .map_err(|_| BrowserError::PoolClosed)?;
        let started = Instant::now();
        while let Some(session) = self.pop_idle() {
            if session.uses >= inner.config.session_max_uses.max(1)
                || session.created_at.elapsed() >= inner.config.session_max_age
            {
                self.close_in_background(session, None);
                continue;
            }
            match self.probe(&session).await {
                Ok(()) => return Ok(self.wrap(session, permit, started, true)),
                Err(err) => {
                    tracing::warn!(session = %session.id, error = %err, "idle browser session failed its health check");
                    self.close_in_background(session, None);
                }
            }
        }
        let session = self.start_session().await?;
        Ok(self.wrap(session, permit, started, false))
    }

    /// Closes idle sessions, refuses new acquisitions and waits (bounded) for sessions being
    /// closed in the background. Sessions still in use are closed when they are returned.
    pub async fn close_all(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.slots.close();
        let idle: Vec<Session> = match self.inner.idle.lock() {
            Ok(mut idle) => idle.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for session in idle {
            close_session(session, self.inner.config.health_check_timeout).await;
        }
        self.inner.background.close();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.inner.background.wait()).await;
        self.inner.background.reopen();
    }

    fn pop_idle(&self) -> Option<Session> {
        self.inner.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    fn wrap(
        &self,
        mut session: Session,
        permit: OwnedSemaphorePermit,
        started: Instant,
        reused: bool,
    ) -> PooledSession {
        session.uses += 1;
        PooledSession {
            client: session.client.clone(),
            session: Some(session),
            pool: self.clone(),
            permit: Some(permit),
            broken: false,
            reused,
            acquired_in: started.elapsed(),
        }
    }

    async fn probe(&self, session: &Session) -> Result<(), BrowserError> {
        let bound = self.inner.config.health_check_timeout;
        match tokio::time::timeout(bound, session.client.current_url()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BrowserError::from_cmd("health_check", bound, e)),
            Err(_) => Err(BrowserError::timeout("health_check", bound)),
        }
    }

    async fn start_session(&self) -> Result<Session, BrowserError> {
        let config = &self.inner.config;
        let profile_dir = config.profile_root.join(format!("aisales-chromium-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::create_dir_all(&profile_dir)
            .await
            .map_err(|e| BrowserError::Config(format!("cannot create profile dir {}: {e}", profile_dir.display())))?;
        let caps = config.capabilities(&profile_dir);
        let connect = async {
            let mut builder = ClientBuilder::rustls()
                .map_err(|e| BrowserError::Config(format!("TLS roots for the WebDriver client: {e}")))?;
            builder.capabilities(caps).connect(&config.webdriver_url).await.map_err(BrowserError::from_new_session)
        };
        let client = match tokio::time::timeout(config.session_start_timeout, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => {
                cleanup_profile(&profile_dir).await;
                return Err(err);
            }
            Err(_) => {
                cleanup_profile(&profile_dir).await;
                return Err(BrowserError::timeout("start_session", config.session_start_timeout));
            }
        };
        let step = config.step_timeout;
        let timeouts = TimeoutConfiguration::new(Some(step), Some(step), Some(Duration::ZERO));
        let setup = async {
            client.update_timeouts(timeouts).await?;
            client.session_id().await
        };
        let id = match tokio::time::timeout(step, setup).await {
            Ok(Ok(id)) => id.unwrap_or_default(),
            Ok(Err(e)) => {
                let err = BrowserError::from_cmd("session_setup", step, e);
                close_session(Session::new(client, String::new(), profile_dir), step).await;
                return Err(err);
            }
            Err(_) => {
                close_session(Session::new(client, String::new(), profile_dir), step).await;
                return Err(BrowserError::timeout("session_setup", step));
            }
        };
        self.inner.created.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(session = %id, "browser session started");
        Ok(Session::new(client, id, profile_dir))
    }

    fn give_back(&self, session: Session, permit: Option<OwnedSemaphorePermit>, broken: bool) {
        let inner = &self.inner;
        let retire = broken
            || inner.closed.load(Ordering::Acquire)
            || session.uses >= inner.config.session_max_uses.max(1)
            || session.created_at.elapsed() >= inner.config.session_max_age;
        if retire {
            // The slot stays taken until the browser is really gone.
            self.close_in_background(session, permit);
            return;
        }
        match inner.idle.lock() {
            Ok(mut idle) => idle.push(session),
            Err(_) => self.close_in_background(session, None),
        }
        drop(permit);
    }

    fn close_in_background(&self, session: Session, permit: Option<OwnedSemaphorePermit>) {
        let bound = self.inner.config.health_check_timeout;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                self.inner.background.spawn_on(
                    async move {
                        close_session(session, bound).await;
                        drop(permit);
                    },
                    &handle,
                );
            }
            Err(_) => {
                // No runtime (dropped during shutdown): the WebDriver client ends the session when
                // its last handle goes; the profile is removed here and any browser left running
                // with it is killed.
                let Session { client, profile_dir, .. } = session;
                drop(client);
                remove_profile(&profile_dir);
            }
        }
    }
}

impl Session {
    fn new(client: Client, id: String, profile_dir: PathBuf) -> Self {
        Self { client, id, profile_dir, uses: 0, created_at: Instant::now() }
    }
}

/// Ends the WebDriver session (bounded), kills any browser process still using the profile (the
/// case when ChromeDriver itself died) and removes the profile directory.
async fn close_session(session: Session, bound: Duration) {
    let Session { client, id, profile_dir, .. } = session;
    match tokio::time::timeout(bound, client.close()).await {
        Ok(Ok(())) => tracing::debug!(session = %id, "browser session closed"),
        Ok(Err(e)) => tracing::debug!(session = %id, error = %e, "closing browser session failed"),
        Err(_) => tracing::debug!(session = %id, "closing browser session timed out"),
    }
    cleanup_profile(&profile_dir).await;
}

async fn cleanup_profile(profile_dir: &Path) {
    let dir = profile_dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || remove_profile(&dir)).await;
}

/// Kills any browser still using `dir` and removes it. A browser left by a dead ChromeDriver (and
/// its helper processes, which die with it) may keep writing into the profile for a moment.
fn remove_profile(dir: &Path) {
    for _ in 0..30 {
        kill_browsers_using(dir);
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    tracing::warn!(dir = %dir.display(), "browser profile directory could not be removed");
}

/// Kills processes whose command line names `profile_dir` (`--user-data-dir=<dir>`): the browser a
/// dead ChromeDriver left behind. The directory name is unique to one session, so nothing else
/// matches. Returns how many processes were signalled.
pub fn kill_browsers_using(profile_dir: &Path) -> usize {
    let pids = processes_using(profile_dir);
    for pid in &pids {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    pids.len()
}

/// Process ids (browser and helpers) whose command line contains `--user-data-dir=<profile_dir>`;
/// a directory holding several profiles matches all of them (Linux `/proc`; empty elsewhere).
pub fn processes_using(profile_dir: &Path) -> Vec<u32> {
    let needle = format!("--user-data-dir={}", profile_dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()))
        .filter(|pid| *pid != own)
        .filter(|pid| {
            // Chromium helpers rewrite their argv into one space-joined string, so search the raw
            // command line rather than individual arguments.
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| raw.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// A session lent by the pool. Returned on drop, or closed if marked broken or worn out.
pub struct PooledSession {
    client: Client,
    session: Option<Session>,
    pool: BrowserPool,
    permit: Option<OwnedSemaphorePermit>,
    broken: bool,
    reused: bool,
    acquired_in: Duration,
}

impl std::fmt::Debug for PooledSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledSession")
            .field("id", &self.id())
            .field("uses", &self.uses())
            .field("reused", &self.reused)
            .field("broken", &self.broken)
            .finish()
    }
}

impl PooledSession {
    /// The WebDriver client of this session.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// WebDriver session id (stable while the session is reused).
    pub fn id(&self) -> &str {
        self.session.as_ref().map(|s| s.id.as_str()).unwrap_or("")
    }

    /// The session's own Chromium profile directory.
    pub fn profile_dir(&self) -> Option<&Path> {
        self.session.as_ref().map(|s| s.profile_dir.as_path())
    }

    /// How many times this session has been acquired, this time included.
    pub fn uses(&self) -> usize {
        self.session.as_ref().map(|s| s.uses).unwrap_or(0)
    }

    /// Whether an idle session was reused (as opposed to started for this acquisition).
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Time spent in [`BrowserPool::acquire`] after a slot was free (probe or session start).
    pub fn acquired_in(&self) -> Duration {
        self.acquired_in
    }

    /// Marks the session unusable: it is closed instead of returned.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether the session was marked broken.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Marks the session broken when `err` means the browser or ChromeDriver is unusable.
    pub fn observe(&mut self, err: &BrowserError) {
        if err.breaks_session() {
            self.broken = true;
        }
    }
}

impl Drop for PooledSession {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.pool.give_back(session, self.permit.take(), self.broken);
        }
    }
}
