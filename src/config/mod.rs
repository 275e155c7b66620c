//! Typed configuration read once from the environment (and `.env`).
//!
//! Every variable the program reads is declared in [`VARS`]; `.env.example` documents exactly that
//! list (a test compares them). [`Settings::load`] checks every rule and reports *all* problems at
//! once, one line per problem, naming the variable and the fix.

mod load;
mod reader;
mod vars;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretBox, SecretString};

pub use vars::{VARS, VarSpec, example_env};

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
    /// Password hashes computed at once in this process (see `auth::attempts`).
    pub password_hash_concurrency: u32,
    /// Open event streams per credential / per tenant in this process (0: no cap).
    pub event_streams_per_credential: u32,
    pub event_streams_per_tenant: u32,
    /// How often an open event stream re-checks its credential.
    pub event_stream_recheck: std::time::Duration,
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
    /// The `nice` value the projector and worker roles lower their CPU priority to (0: unchanged),
    /// so that on a shared machine the HTTP server answering webhooks, forms and operators keeps
    /// the CPU while background work catches up.
    pub background_niceness: i32,
    /// Intake requests (form and messenger webhooks) per second from which the server signals a
    /// burst and background work gives way (`crate::infra::intake`); 0: never.
    pub intake_burst_rate: u32,
    /// Longest that background work gives way in one burst; zero: it never does.
    pub intake_burst_max_defer: Duration,

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
    /// When set, `/metrics` answers only `Authorization: Bearer <METRICS_TOKEN>`.
    pub metrics_token: Option<SecretString>,
    pub whatsapp_api_url: String,
    pub whatsapp_app_secret: Option<SecretString>,
    pub whatsapp_verify_token: Option<SecretString>,
    pub channel_timeout: Duration,

    pub webdriver_url: String,
    pub podzamenu_base_url: String,
    pub prof_rf_base_url: String,
    pub lookup: LookupSettings,
    /// Replaces every tenant's no-reply wait of leads (drills, tests); `None`: the tenant's own.
    pub leads_no_reply_after: Option<Duration>,

    /// Non-fatal notes for the operator (defaults taken in development, missing AI key, …).
    pub warnings: Vec<String>,

    /// Price lookups: sources, currency rates, bounds and the clock of their TTLs.
    pub prices: crate::price::PriceLookupConfig,

    /// Customers' files: where they are stored, the limits, the lifetime of signed links.
    pub media: MediaSettings,

    /// How often the retention pass runs (`privacy::retention`).
    pub retention_interval: Duration,
}

/// Settings of stored media.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// `MEDIA_STORE`: a local directory (default `./data/media`), or `s3://bucket/prefix` in a
    /// build with the `s3` feature (credentials from the usual `AWS_*` variables).
    pub store: String,
    /// Largest file stored, in bytes.
    pub max_bytes: u64,
    /// How long a signed link to a stored file works.
    pub link_ttl: Duration,
    /// The model that reads photos (`MEDIA_VISION_MODEL`, default `AI_MODEL`).
    pub vision_model: String,
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
            .field("background_niceness", &self.background_niceness)
            .field("intake_burst_rate", &self.intake_burst_rate)
            .field("intake_burst_max_defer", &self.intake_burst_max_defer)
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

impl Settings {
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

    /// Whether browsers reach the server over HTTPS (behind a TLS proxy, or an `https://` APP_URL):
    /// session cookies are then `Secure` and carry the `__Host-` prefix.
    pub fn secure_cookies(&self) -> bool {
        self.trust_proxy || self.public_base_url().starts_with("https://")
    }

    /// The session cookie's name: `__Host-aisales_session` over HTTPS, which browsers accept only
    /// when `Secure`, for the exact host and path `/` (a sibling subdomain cannot plant one).
    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies() { crate::auth::sessions::HOST_COOKIE } else { crate::auth::sessions::COOKIE }
    }
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
