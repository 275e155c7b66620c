//! Typed configuration read once from the environment (and `.env`).
//!
//! Every variable the program reads is declared in [`VARS`]; `.env.example` documents exactly that
//! list (a test compares them). [`Settings::load`] checks every rule and reports *all* problems at
//! once, one line per problem, naming the variable and the fix.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// Deployment environment. `NODE_ENV` is accepted as an alias of `APP_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Staging,
    Production,
}

impl AppEnv {
    /// Production-like environments require real secrets and real service URLs.
    pub fn is_strict(self) -> bool {
        matches!(self, AppEnv::Staging | AppEnv::Production)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Test => "test",
            AppEnv::Staging => "staging",
            AppEnv::Production => "production",
        }
    }
}

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// One environment variable the program reads.
#[derive(Debug, Clone, Copy)]
pub struct VarSpec {
    pub name: &'static str,
    pub group: &'static str,
    /// Default shown in `.env.example` (empty when there is none).
    pub default: &'static str,
    pub help: &'static str,
}

macro_rules! vars {
    ($( $group:literal => [ $( ($name:literal, $default:literal, $help:literal) ),* $(,)? ] ),* $(,)?) => {
        &[ $( $( VarSpec { name: $name, group: $group, default: $default, help: $help }, )* )* ]
    };
}

/// Every environment variable the program reads, grouped as in `.env.example`.
pub const VARS: &[VarSpec] = vars![
    "Environment" => [
        ("APP_ENV", "development", "development | test | staging | production (NODE_ENV is accepted as an alias)"),
        ("NODE_ENV", "", "alias of APP_ENV, kept for the old deployment files"),
        ("HOST", "0.0.0.0", "address the HTTP server binds"),
        ("PORT", "5000", "port the HTTP server binds"),
        ("APP_URL", "", "public base URL, used to build webhook URLs (required in production)"),
        ("TRUST_PROXY", "false", "true when behind a reverse proxy: X-Forwarded-For is trusted and cookies are Secure"),
        ("SHUTDOWN_GRACE_SECS", "20", "how long in-flight requests and jobs may take to finish on SIGTERM"),
        ("REQUEST_TIMEOUT_SECS", "30", "per-request timeout of the HTTP server"),
        ("REQUEST_BODY_LIMIT_BYTES", "2097152", "largest accepted request body"),
    ],
    "Storage" => [
        ("DATABASE_URL", "postgres://aisales:aisales@127.0.0.1:5432/aisales", "PostgreSQL connection URL (required in production)"),
        ("DATABASE_MAX_CONNECTIONS", "20", "connection pool size per process"),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "5", "how long a request waits for a pooled connection"),
        ("REDIS_URL", "redis://127.0.0.1:6379/", "Redis connection URL for worker streams and rate limits (required in production)"),
    ],
    "Secrets" => [
        ("SESSION_SECRET", "", "at least 32 characters; signs dashboard sessions (required in production): openssl rand -hex 32"),
        ("INTEGRATION_SECRETS_MASTER_KEY", "", "base64 of exactly 32 bytes; encrypts channel tokens and API keys (required in production): openssl rand -base64 32"),
        ("INTEGRATION_SECRETS_PREVIOUS_KEYS", "", "comma-separated base64 keys still accepted for decryption during a master key rotation"),
    ],
    "Security and limits" => [
        ("SESSION_TTL_HOURS", "168", "lifetime of a dashboard session"),
        ("LOGIN_LOCKOUT_ATTEMPTS", "10", "consecutive wrong passwords that lock an account"),
        ("LOGIN_LOCKOUT_MINUTES", "15", "how long a locked account stays locked"),
        ("RATE_LIMIT_LOGIN_PER_MINUTE", "10", "login attempts per client IP per minute"),
        ("RATE_LIMIT_API_PER_MINUTE", "1200", "/api requests per tenant per minute (0 disables)"),
        ("RATE_LIMIT_AI_PER_MINUTE", "30", "AI generations per tenant per minute (0 disables)"),
        ("RATE_LIMIT_WEBHOOK_PER_MINUTE", "6000", "webhook calls per channel account per minute (0 disables)"),
    ],
    "Logging and monitoring" => [
        ("LOG_LEVEL", "info", "debug | info | warn | error"),
        ("LOG_FORMAT", "json", "json | pretty (pretty is the default in development)"),
        ("SENTRY_DSN", "", "report errors and panics to Sentry when set"),
        ("METRICS_PORT", "", "workers and projector serve /metrics and /health on this port"),
    ],
    "Worker bus" => [
        ("REDIS_PREFIX", "aisales", "prefix of every Redis key (streams, rate limits): lets several deployments share one Redis"),
        ("WORKER_CONCURRENCY", "4", "jobs one worker process runs at once, per kind"),
        ("WORKER_VISIBILITY_TIMEOUT_SECS", "60", "after this long a job left by a dead consumer is taken over"),
        ("WORKER_MAX_DELIVERIES", "5", "deliveries of one stream entry before it goes to the dead-letter stream"),
        ("WORKER_JOB_TIMEOUT_SECS", "120", "longest a single job may run"),
        ("WORK_REDISPATCH_SECS", "60", "a dispatched job neither started nor finished after this long is dispatched again (5x for lookups)"),
        ("WORK_SWEEP_INTERVAL_MS", "1000", "how often due and lost jobs are looked for"),
        ("STREAM_MAX_LEN", "100000", "approximate length each job stream is trimmed to"),
        ("SEND_MAX_ATTEMPTS", "5", "attempts to deliver one reply before it is marked failed"),
        ("AI_AUTOSEND_ENABLED", "false", "the deployment's switch for sending AUTO_SEND replies without approval (tenants must also allow it)"),
    ],
    "Projectors" => [
        ("PROJECTOR_BATCH_SIZE", "", "events applied per transaction (default: each projector's own size)"),
        ("PROJECTOR_POLL_INTERVAL_MS", "1000", "polling interval when no notification arrives"),
        ("PROJECTOR_GATHER_MS", "20", "after a wake-up, how long a projector lets new events gather before its batch"),
    ],
    "AI" => [
        ("AI_INTEGRATIONS_OPENAI_API_KEY", "", "OpenAI-compatible API key; without it an offline responder drafts replies"),
        ("AI_INTEGRATIONS_OPENAI_BASE_URL", "https://api.openai.com/v1", "base URL of the OpenAI-compatible API, including /v1"),
        ("AI_MODEL", "gpt-4o-mini", "chat model used for reply suggestions"),
        ("AI_TIMEOUT_SECS", "30", "timeout of one AI request"),
    ],
    "Channels" => [
        ("GREEN_API_URL", "https://api.green-api.com", "default GREEN-API base URL (an account may override it)"),
        ("TELEGRAM_API_URL", "https://api.telegram.org", "Telegram Bot API base URL"),
        ("TELEGRAM_WEBHOOK_SECRET", "", "default secret token expected in X-Telegram-Bot-Api-Secret-Token"),
        ("WHATSAPP_API_URL", "https://graph.facebook.com/v21.0", "WhatsApp Cloud API base URL"),
        ("WHATSAPP_APP_SECRET", "", "default app secret for X-Hub-Signature-256 checks"),
        ("WHATSAPP_VERIFY_TOKEN", "", "default token for the webhook verification challenge"),
        ("CHANNEL_TIMEOUT_SECS", "20", "timeout of one messenger API call; a send without an answer in time is reconciled, not repeated"),
    ],
    "Vehicle lookup" => [
        ("WEBDRIVER_URL", "http://127.0.0.1:9515", "ChromeDriver endpoint used by the vehicle-lookup worker"),
        ("PODZAMENU_BASE_URL", "https://podzamenu.ru", "podzamenu.ru base URL"),
        ("PROF_RF_BASE_URL", "https://prof-rf.ru", "prof-rf base URL"),
        ("CHROMIUM_BINARY", "", "Chromium binary ChromeDriver should start (default: ChromeDriver's own search)"),
        ("BROWSER_POOL_SIZE", "2", "browser sessions one vehicle-lookup worker process keeps at most (reused between lookups)"),
        ("BROWSER_PROFILE_DIR", "", "directory for the throwaway browser profiles (default: the system temporary directory)"),
        ("LOOKUP_STEP_TIMEOUT_SECS", "15", "bound of one browser step: navigation, wait, click, extraction"),
        ("LOOKUP_TIMEOUT_SECS", "90", "bound of one lookup attempt over all sites; keep it below WORKER_JOB_TIMEOUT_SECS"),
        ("LOOKUP_MAX_ATTEMPTS", "3", "browser attempts of one lookup before it is given up (the VIN decoder still answers)"),
        ("LOOKUP_RETRY_BACKOFF_SECS", "10", "wait before the second attempt of a lookup; doubles with each further attempt"),
        ("LOOKUP_CACHE_TTL_HOURS", "720", "how long a found or model-only answer is reused for the same VIN/FRAME"),
        ("LOOKUP_NOT_FOUND_CACHE_TTL_HOURS", "24", "how long a not-found answer is reused (catalogues add vehicles)"),
    ],
];

/// The documented `.env` template (`.env.example` is exactly this text).
pub fn example_env() -> String {
    let mut out = String::from(
        "# aisales environment. Every variable the program reads, grouped, with its default.\n\
         # In production and staging DATABASE_URL, REDIS_URL, SESSION_SECRET and\n\
         # INTEGRATION_SECRETS_MASTER_KEY are required; in development and test they default to local\n\
         # services and throwaway secrets. Generated by `aisales config example`.\n",
    );
    let mut group = "";
    for v in VARS {
        if v.group != group {
            group = v.group;
            out.push_str(&format!("\n# --- {group} ---\n"));
        }
        out.push_str(&format!("# {}\n", v.help));
        if v.default.is_empty() {
            out.push_str(&format!("# {}=\n", v.name));
        } else {
            out.push_str(&format!("{}={}\n", v.name, v.default));
        }
    }
    out
}

/// A configuration problem: which variable, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub var: &'static str,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

/// All problems found in one pass.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Abuse limits and session rules.
#[derive(Debug, Clone)]
pub struct Limits {
    pub session_ttl: chrono::Duration,
    pub lockout_attempts: u32,
    pub lockout: chrono::Duration,
    pub login_per_minute: u32,
    pub api_per_minute: u32,
    pub ai_per_minute: u32,
    pub webhook_per_minute: u32,
}

/// Worker bus tunables.
#[derive(Debug, Clone)]
pub struct BusSettings {
    pub redis_prefix: String,
    pub concurrency: usize,
    pub visibility_timeout: Duration,
    pub max_deliveries: u64,
    pub job_timeout: Duration,
    pub redispatch_after: Duration,
    pub sweep_interval: Duration,
    pub stream_max_len: usize,
    pub send_max_attempts: u32,
    pub autosend_enabled: bool,
}

/// Vehicle-lookup worker tunables (browser pool, bounds, retries, cache).
#[derive(Debug, Clone)]
pub struct LookupSettings {
    pub chromium_binary: Option<String>,
    pub pool_size: usize,
    pub profile_dir: Option<std::path::PathBuf>,
    pub step_timeout: Duration,
    pub lookup_timeout: Duration,
    pub max_attempts: u32,
    pub retry_backoff: Duration,
    pub found_ttl: Duration,
    pub not_found_ttl: Duration,
}

/// The 32-byte master key for integration secrets.
pub type MasterKey = SecretBox<[u8; 32]>;

/// Every setting of the program. `Debug` never prints a secret.
pub struct Settings {
    pub app_env: AppEnv,
    pub host: IpAddr,
    pub port: u16,
    pub app_url: Option<String>,
    pub trust_proxy: bool,
    pub shutdown_grace: Duration,
    pub request_timeout: Duration,
    pub body_limit: usize,

    pub database_url: SecretString,
    pub database_max_connections: u32,
    pub database_acquire_timeout: Duration,
    pub redis_url: SecretString,

    pub session_secret: SecretString,
    pub master_key: MasterKey,
    pub previous_master_keys: Vec<MasterKey>,
    pub limits: Limits,

    pub log_level: String,
    pub log_format: LogFormat,
    pub sentry_dsn: Option<SecretString>,
    pub metrics_port: Option<u16>,

    pub bus: BusSettings,
    pub projector_batch_size: Option<i64>,
    pub projector_poll_interval: Duration,
    pub projector_gather: Duration,

    pub openai_api_key: Option<SecretString>,
    pub openai_base_url: String,
    pub ai_model: String,
    pub ai_timeout: Duration,

    pub green_api_url: String,
    pub telegram_api_url: String,
    pub telegram_webhook_secret: Option<SecretString>,
    pub whatsapp_api_url: String,
    pub whatsapp_app_secret: Option<SecretString>,
    pub whatsapp_verify_token: Option<SecretString>,
    pub channel_timeout: Duration,

    pub webdriver_url: String,
    pub podzamenu_base_url: String,
    pub prof_rf_base_url: String,
    pub lookup: LookupSettings,

    /// Non-fatal notes for the operator (defaults taken in development, missing AI key, …).
    pub warnings: Vec<String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const R: &str = "[redacted]";
        let opt = |o: &Option<SecretString>| if o.is_some() { R } else { "None" };
        f.debug_struct("Settings")
            .field("app_env", &self.app_env)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("app_url", &self.app_url)
            .field("trust_proxy", &self.trust_proxy)
            .field("database_url", &redact_url(self.database_url.expose_secret()))
            .field("database_max_connections", &self.database_max_connections)
            .field("redis_url", &redact_url(self.redis_url.expose_secret()))
            .field("session_secret", &R)
            .field("master_key", &R)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("sentry_dsn", &opt(&self.sentry_dsn))
            .field("metrics_port", &self.metrics_port)
            .field("openai_api_key", &opt(&self.openai_api_key))
            .field("openai_base_url", &self.openai_base_url)
            .field("ai_model", &self.ai_model)
            .field("webdriver_url", &self.webdriver_url)
            .finish_non_exhaustive()
    }
}

/// Replaces the user-info part of a URL (`user:password@`) so it can be shown.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Reads variables from a source (the process environment plus `.env`, or a map in tests) and
/// records which problems were found.
struct Reader<'a> {
    source: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl Reader<'_> {
    fn raw(&self, name: &str) -> Option<String> {
        (self.source)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    fn problem(&mut self, var: &'static str, message: impl Into<String>) {
        self.problems.push(Problem { var, message: message.into() });
    }

    fn default_of(name: &str) -> &'static str {
        VARS.iter().find(|v| v.name == name).map(|v| v.default).unwrap_or("")
    }

    fn string(&self, name: &'static str) -> String {
        self.raw(name).unwrap_or_else(|| Self::default_of(name).to_string())
    }

    fn parse<T: std::str::FromStr>(&mut self, name: &'static str, what: &str) -> Option<T> {
        let value = self.string(name);
        match value.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(
                    name,
                    format!(
                        "`{value}` is not {what}; set {what} or remove the variable to use the default `{}`",
                        Self::default_of(name)
                    ),
                );
                None
            }
        }
    }

    fn bool(&mut self, name: &'static str) -> bool {
        let value = self.string(name).to_ascii_lowercase();
        match value.as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" | "" => false,
            _ => {
                self.problem(name, format!("`{value}` is not a boolean; use true or false"));
                false
            }
        }
    }

    fn url(&mut self, name: &'static str, schemes: &[&str]) -> String {
        let value = self.string(name);
        let ok = schemes.iter().any(|s| {
            value.strip_prefix(s).and_then(|rest| rest.strip_prefix("://")).is_some_and(|rest| !rest.is_empty())
        });
        if !ok {
            self.problem(name, format!("is not a valid URL; expected {}://host…", schemes.join("|")));
        }
        value.trim_end_matches('/').to_string()
    }
}

impl Settings {
    /// Reads the process environment, after loading `.env` from the working directory if present
    /// (variables already set in the environment win over `.env`).
    pub fn from_env() -> Result<Settings, ConfigError> {
        load_dotenv();
        Self::load(&|name| std::env::var(name).ok())
    }

    /// Reads settings from any source of variables; reports every problem at once.
    pub fn load(source: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let mut r = Reader { source, problems: Vec::new(), warnings: Vec::new() };

        let env_raw = r.raw("APP_ENV").or_else(|| r.raw("NODE_ENV"));
        let app_env = match env_raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("development") | Some("dev") => AppEnv::Development,
            Some("test") => AppEnv::Test,
            Some("staging") => AppEnv::Staging,
            Some("production") | Some("prod") => AppEnv::Production,
            Some(other) => {
                r.problem(
                    "APP_ENV",
                    format!("`{other}` is not an environment; use development, test, staging or production"),
                );
                AppEnv::Production
            }
        };
        let strict = app_env.is_strict();

        let host = r.parse::<IpAddr>("HOST", "an IP address").unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let port = r.parse::<u16>("PORT", "a port number (0-65535)").unwrap_or(5000);
        let app_url = r.raw("APP_URL").map(|_| r.url("APP_URL", &["http", "https"]));
        if strict && app_url.is_none() {
            r.warnings.push("APP_URL is not set: webhook URLs printed by `channel add` will be relative".into());
        }
        let trust_proxy = r.bool("TRUST_PROXY");
        let shutdown_grace =
            Duration::from_secs(r.parse::<u64>("SHUTDOWN_GRACE_SECS", "a number of seconds").unwrap_or(20));
        let request_timeout =
            Duration::from_secs(r.parse::<u64>("REQUEST_TIMEOUT_SECS", "a number of seconds").unwrap_or(30).max(1));
        let body_limit = r.parse::<usize>("REQUEST_BODY_LIMIT_BYTES", "a number of bytes").unwrap_or(2 * 1024 * 1024);

        let database_url = required_or_default(&mut r, "DATABASE_URL", strict);
        if !database_url.is_empty() {
            r.url("DATABASE_URL", &["postgres", "postgresql"]);
        }
        let database_max_connections = match r.parse::<u32>("DATABASE_MAX_CONNECTIONS", "a positive number") {
            Some(0) => {
                r.problem("DATABASE_MAX_CONNECTIONS", "must be at least 1");
                1
            }
            Some(n) => n,
            None => 20,
        };
        let database_acquire_timeout = Duration::from_secs(
            r.parse::<u64>("DATABASE_ACQUIRE_TIMEOUT_SECS", "a number of seconds").unwrap_or(5).max(1),
        );
        let redis_url = required_or_default(&mut r, "REDIS_URL", strict);
        if !redis_url.is_empty() {
            r.url("REDIS_URL", &["redis", "rediss", "redis+unix", "unix"]);
        }

        let session_secret = match r.raw("SESSION_SECRET") {
            Some(s) if s.chars().count() < 32 => {
                r.problem(
                    "SESSION_SECRET",
                    format!(
                        "too short ({} characters); set at least 32 random characters, e.g. `openssl rand -hex 32`",
                        s.chars().count()
                    ),
                );
                s
            }
            Some(s) => s,
            None if strict => {
                r.problem("SESSION_SECRET", "missing; required in production and staging: set at least 32 random characters, e.g. `openssl rand -hex 32`");
                String::new()
            }
            None => {
                r.warnings.push(
                    "SESSION_SECRET is not set: using a throwaway secret, sessions end when the process restarts"
                        .into(),
                );
                random_token(48)
            }
        };

        let master_key = match r.raw("INTEGRATION_SECRETS_MASTER_KEY") {
            Some(s) => match decode_key(&s) {
                Ok(k) => k,
                Err(why) => {
                    r.problem(
                        "INTEGRATION_SECRETS_MASTER_KEY",
                        format!("{why}; generate one with `openssl rand -base64 32`"),
                    );
                    [0u8; 32]
                }
            },
            None if strict => {
                r.problem("INTEGRATION_SECRETS_MASTER_KEY", "missing; required in production and staging: set base64 of 32 random bytes, e.g. `openssl rand -base64 32`");
                [0u8; 32]
            }
            None => {
                r.warnings.push("INTEGRATION_SECRETS_MASTER_KEY is not set: using a throwaway key, stored channel secrets will not be readable after a restart".into());
                let mut k = [0u8; 32];
                rand::Rng::fill(&mut rand::rng(), &mut k);
                k
            }
        };
        let mut previous_master_keys = Vec::new();
        if let Some(list) = r.raw("INTEGRATION_SECRETS_PREVIOUS_KEYS") {
            for (i, item) in list.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
                match decode_key(item) {
                    Ok(k) => previous_master_keys.push(SecretBox::new(Box::new(k))),
                    Err(why) => r.problem("INTEGRATION_SECRETS_PREVIOUS_KEYS", format!("key #{} {why}", i + 1)),
                }
            }
        }

        let mut count = |name: &'static str| r.parse::<u32>(name, "a whole number").unwrap_or(0);
        let limits = Limits {
            session_ttl: chrono::Duration::hours(i64::from(count("SESSION_TTL_HOURS").max(1))),
            lockout_attempts: count("LOGIN_LOCKOUT_ATTEMPTS").max(1),
            lockout: chrono::Duration::minutes(i64::from(count("LOGIN_LOCKOUT_MINUTES").max(1))),
            login_per_minute: count("RATE_LIMIT_LOGIN_PER_MINUTE"),
            api_per_minute: count("RATE_LIMIT_API_PER_MINUTE"),
            ai_per_minute: count("RATE_LIMIT_AI_PER_MINUTE"),
            webhook_per_minute: count("RATE_LIMIT_WEBHOOK_PER_MINUTE"),
        };

        let log_level = r.string("LOG_LEVEL").to_ascii_lowercase();
        if !["debug", "info", "warn", "error", "trace"].contains(&log_level.as_str()) {
            r.problem("LOG_LEVEL", format!("`{log_level}` is not a level; use debug, info, warn or error"));
        }
        let log_format = match r.raw("LOG_FORMAT").map(|s| s.to_ascii_lowercase()).as_deref() {
            Some("json") => LogFormat::Json,
            Some("pretty") | Some("text") => LogFormat::Pretty,
            None if matches!(app_env, AppEnv::Development) => LogFormat::Pretty,
            None => LogFormat::Json,
            Some(other) => {
                r.problem("LOG_FORMAT", format!("`{other}` is not a format; use json or pretty"));
                LogFormat::Json
            }
        };
        let sentry_dsn = r.raw("SENTRY_DSN");
        if let Some(dsn) = &sentry_dsn
            && dsn.parse::<sentry::types::Dsn>().is_err()
        {
            r.problem("SENTRY_DSN", "is not a valid Sentry DSN (https://<key>@<host>/<project>)");
        }
        let metrics_port = r.raw("METRICS_PORT").and_then(|_| r.parse::<u16>("METRICS_PORT", "a port number"));

        let redis_prefix = r.string("REDIS_PREFIX");
        if redis_prefix.is_empty() || redis_prefix.contains(char::is_whitespace) {
            r.problem("REDIS_PREFIX", "must be a non-empty word without spaces");
        }
        let bus = BusSettings {
            redis_prefix,
            concurrency: r.parse::<usize>("WORKER_CONCURRENCY", "a positive number").unwrap_or(4).max(1),
            visibility_timeout: Duration::from_secs(
                r.parse::<u64>("WORKER_VISIBILITY_TIMEOUT_SECS", "a number of seconds").unwrap_or(60).max(1),
            ),
            max_deliveries: r.parse::<u64>("WORKER_MAX_DELIVERIES", "a positive number").unwrap_or(5).max(1),
            job_timeout: Duration::from_secs(
                r.parse::<u64>("WORKER_JOB_TIMEOUT_SECS", "a number of seconds").unwrap_or(120).max(1),
            ),
            redispatch_after: Duration::from_secs(
                r.parse::<u64>("WORK_REDISPATCH_SECS", "a number of seconds").unwrap_or(60).max(1),
            ),
            sweep_interval: Duration::from_millis(
                r.parse::<u64>("WORK_SWEEP_INTERVAL_MS", "a number of milliseconds").unwrap_or(1000).max(10),
            ),
            stream_max_len: r.parse::<usize>("STREAM_MAX_LEN", "a positive number").unwrap_or(100_000).max(100),
            send_max_attempts: r.parse::<u32>("SEND_MAX_ATTEMPTS", "a positive number").unwrap_or(5).max(1),
            autosend_enabled: r.bool("AI_AUTOSEND_ENABLED"),
        };
        let projector_batch_size = match r
            .raw("PROJECTOR_BATCH_SIZE")
            .and_then(|_| r.parse::<i64>("PROJECTOR_BATCH_SIZE", "a positive number"))
        {
            Some(n) if n < 1 => {
                r.problem("PROJECTOR_BATCH_SIZE", "must be at least 1");
                None
            }
            other => other,
        };
        let projector_gather = Duration::from_millis(
            r.parse::<u64>("PROJECTOR_GATHER_MS", "a number of milliseconds").unwrap_or(20).min(1000),
        );
        let projector_poll_interval = Duration::from_millis(
            r.parse::<u64>("PROJECTOR_POLL_INTERVAL_MS", "a number of milliseconds").unwrap_or(1000).max(10),
        );

        let openai_api_key = r.raw("AI_INTEGRATIONS_OPENAI_API_KEY");
        if openai_api_key.is_none() {
            r.warnings.push("AI_INTEGRATIONS_OPENAI_API_KEY is not set: the offline responder drafts replies and every reply needs approval".into());
        }
        let openai_base_url = r.url("AI_INTEGRATIONS_OPENAI_BASE_URL", &["http", "https"]);
        let ai_model = r.string("AI_MODEL");
        let ai_timeout =
            Duration::from_secs(r.parse::<u64>("AI_TIMEOUT_SECS", "a number of seconds").unwrap_or(30).max(1));

        let green_api_url = r.url("GREEN_API_URL", &["http", "https"]);
        let telegram_api_url = r.url("TELEGRAM_API_URL", &["http", "https"]);
        let telegram_webhook_secret = r.raw("TELEGRAM_WEBHOOK_SECRET");
        let whatsapp_api_url = r.url("WHATSAPP_API_URL", &["http", "https"]);
        let whatsapp_app_secret = r.raw("WHATSAPP_APP_SECRET");
        let whatsapp_verify_token = r.raw("WHATSAPP_VERIFY_TOKEN");
        let channel_timeout =
            Duration::from_secs(r.parse::<u64>("CHANNEL_TIMEOUT_SECS", "a number of seconds").unwrap_or(20).max(1));

        let webdriver_url = r.url("WEBDRIVER_URL", &["http", "https"]);
        let podzamenu_base_url = r.url("PODZAMENU_BASE_URL", &["http", "https"]);
        let prof_rf_base_url = r.url("PROF_RF_BASE_URL", &["http", "https"]);
        let mut secs = |name: &'static str, default: u64| {
            Duration::from_secs(r.parse::<u64>(name, "a number of seconds").unwrap_or(default).max(1))
        };
        let step_timeout = secs("LOOKUP_STEP_TIMEOUT_SECS", 15);
        let lookup_timeout = secs("LOOKUP_TIMEOUT_SECS", 90);
        let retry_backoff = secs("LOOKUP_RETRY_BACKOFF_SECS", 10);
        let mut hours = |name: &'static str, default: u64| {
            Duration::from_secs(r.parse::<u64>(name, "a number of hours").unwrap_or(default) * 3600)
        };
        let found_ttl = hours("LOOKUP_CACHE_TTL_HOURS", 720);
        let not_found_ttl = hours("LOOKUP_NOT_FOUND_CACHE_TTL_HOURS", 24);
        let lookup = LookupSettings {
            chromium_binary: r.raw("CHROMIUM_BINARY"),
            pool_size: r.parse::<usize>("BROWSER_POOL_SIZE", "a positive number").unwrap_or(2).max(1),
            profile_dir: r.raw("BROWSER_PROFILE_DIR").map(std::path::PathBuf::from),
            step_timeout,
            lookup_timeout,
            max_attempts: r.parse::<u32>("LOOKUP_MAX_ATTEMPTS", "a positive number").unwrap_or(3).max(1),
            retry_backoff,
            found_ttl,
            not_found_ttl,
        };
        if lookup.lookup_timeout >= bus.job_timeout {
            r.warnings.push(format!(
                "LOOKUP_TIMEOUT_SECS ({}) is not below WORKER_JOB_TIMEOUT_SECS ({}): lookups are cut short at the job timeout",
                lookup.lookup_timeout.as_secs(),
                bus.job_timeout.as_secs()
            ));
        }

        if !r.problems.is_empty() {
            return Err(ConfigError { problems: r.problems });
        }
        let secret = |s: Option<String>| s.map(SecretString::from);
        Ok(Settings {
            app_env,
            host,
            port,
            app_url,
            trust_proxy,
            shutdown_grace,
            request_timeout,
            body_limit,
            database_url: database_url.into(),
            database_max_connections,
            database_acquire_timeout,
            redis_url: redis_url.into(),
            session_secret: session_secret.into(),
            master_key: SecretBox::new(Box::new(master_key)),
            previous_master_keys,
            limits,
            log_level,
            log_format,
            sentry_dsn: secret(sentry_dsn),
            metrics_port,
            bus,
            projector_batch_size,
            projector_poll_interval,
            projector_gather,
            openai_api_key: secret(openai_api_key),
            openai_base_url,
            ai_model,
            ai_timeout,
            green_api_url,
            telegram_api_url,
            telegram_webhook_secret: secret(telegram_webhook_secret),
            whatsapp_api_url,
            whatsapp_app_secret: secret(whatsapp_app_secret),
            whatsapp_verify_token: secret(whatsapp_verify_token),
            channel_timeout,
            webdriver_url,
            podzamenu_base_url,
            prof_rf_base_url,
            lookup,
            warnings: r.warnings,
        })
    }

    /// Settings for tests and tools: development defaults overridden by `vars`.
    pub fn for_tests(vars: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut with_env = map.clone();
        with_env.entry("APP_ENV".into()).or_insert_with(|| "test".into());
        Settings::load(&|name| with_env.get(name).cloned()).expect("test settings are valid")
    }

    /// Public base URL used in webhook URLs, or a path-only prefix when `APP_URL` is unset.
    pub fn public_base_url(&self) -> &str {
        self.app_url.as_deref().unwrap_or("")
    }
}

fn required_or_default(r: &mut Reader<'_>, name: &'static str, strict: bool) -> String {
    match r.raw(name) {
        Some(v) => v,
        None if strict => {
            r.problem(name, "missing; required in production and staging");
            String::new()
        }
        None => {
            let d = Reader::default_of(name);
            r.warnings.push(format!("{name} is not set: using the local default {}", redact_url(d)));
            d.to_string()
        }
    }
}

fn decode_key(s: &str) -> Result<[u8; 32], String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| "is not valid base64".to_string())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("must decode to exactly 32 bytes, got {}", bytes.len()))
}

/// A random URL-safe token of `len` characters.
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Loads `.env` from the working directory into the process environment without overriding
/// variables that are already set (quotes, comments and `export` are handled by dotenvy).
/// Call before any thread starts.
pub fn load_dotenv() {
    match dotenvy::from_filename(".env") {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => eprintln!("warning: .env could not be read: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        Settings::load(&|n| map.get(n).map(|s| s.to_string()))
    }

    #[test]
    fn production_reports_every_problem_at_once() {
        let err = load(&[("APP_ENV", "production"), ("SESSION_SECRET", "short")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("SESSION_SECRET: too short"), "{text}");
        assert!(text.contains("INTEGRATION_SECRETS_MASTER_KEY: missing"), "{text}");
        assert!(text.contains("DATABASE_URL: missing"), "{text}");
        assert!(text.contains("REDIS_URL: missing"), "{text}");
        assert_eq!(text.lines().count(), err.problems.len());
    }

    #[test]
    fn node_env_is_an_alias() {
        let err = load(&[("NODE_ENV", "production")]).unwrap_err();
        assert!(err.to_string().contains("SESSION_SECRET: missing"));
    }

    #[test]
    fn development_defaults_with_warnings() {
        let s = load(&[]).unwrap();
        assert_eq!(s.app_env, AppEnv::Development);
        assert_eq!(s.port, 5000);
        assert!(s.warnings.iter().any(|w| w.contains("SESSION_SECRET")));
        assert!(s.session_secret.expose_secret().len() >= 32);
    }

    #[test]
    fn master_key_must_be_32_bytes() {
        let err = load(&[("INTEGRATION_SECRETS_MASTER_KEY", "c2hvcnQ=")]).unwrap_err();
        assert!(err.to_string().contains("exactly 32 bytes, got 5"), "{err}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let s = load(&[
            ("DATABASE_URL", "postgres://u:hunter2hunter2@db:5432/x"),
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdefXYZ"),
            ("AI_INTEGRATIONS_OPENAI_API_KEY", "sk-verysecret"),
        ])
        .unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert!(!text.contains("sk-verysecret"), "{text}");
    }

    #[test]
    fn bad_numbers_and_urls_are_named() {
        let err = load(&[("PORT", "http"), ("REDIS_URL", "localhost:6379"), ("LOG_LEVEL", "loud")]).unwrap_err();
        let vars: Vec<_> = err.problems.iter().map(|p| p.var).collect();
        assert_eq!(vars, ["PORT", "REDIS_URL", "LOG_LEVEL"]);
    }
}
