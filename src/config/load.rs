//! Loading [`Settings`] from the environment: every rule checked, every problem reported at once.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{SecretBox, SecretString};

use super::reader::Reader;
use super::*;

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
            password_hash_concurrency: match count("PASSWORD_HASH_CONCURRENCY") {
                0 => std::thread::available_parallelism().map_or(2, |n| n.get() as u32),
                n => n,
            },
            event_streams_per_credential: count("EVENT_STREAMS_PER_CREDENTIAL"),
            event_streams_per_tenant: count("EVENT_STREAMS_PER_TENANT"),
            event_stream_recheck: std::time::Duration::from_secs(u64::from(count("EVENT_STREAM_RECHECK_SECS").max(1))),
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
        let background_niceness = match r
            .raw("BACKGROUND_NICENESS")
            .and_then(|_| r.parse::<i32>("BACKGROUND_NICENESS", "a number from 0 to 19"))
        {
            Some(n) if !(0..=19).contains(&n) => {
                r.problem("BACKGROUND_NICENESS", "must be a number from 0 to 19");
                0
            }
            n => n.unwrap_or(0),
        };
        let intake_burst_rate = r.parse::<u32>("INTAKE_BURST_RATE", "a number of requests per second").unwrap_or(50);
        let intake_burst_max_defer = Duration::from_secs(
            r.parse::<u64>("INTAKE_BURST_MAX_DEFER_SECS", "a number of seconds").unwrap_or(30).min(600),
        );

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
        let metrics_token = r.raw("METRICS_TOKEN");
        if metrics_token.as_ref().is_some_and(|t| t.trim().len() < 16) {
            r.problem("METRICS_TOKEN", "must be at least 16 characters");
        }
        let whatsapp_api_url = r.url("WHATSAPP_API_URL", &["http", "https"]);
        let whatsapp_app_secret = r.raw("WHATSAPP_APP_SECRET");
        let whatsapp_verify_token = r.raw("WHATSAPP_VERIFY_TOKEN");
        let channel_timeout =
            Duration::from_secs(r.parse::<u64>("CHANNEL_TIMEOUT_SECS", "a number of seconds").unwrap_or(20).max(1));

        let leads_no_reply_after = match r.raw("LEADS_NO_REPLY_SECS") {
            Some(_) => r.parse::<u64>("LEADS_NO_REPLY_SECS", "a number of seconds").map(Duration::from_secs),
            None => None,
        };
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

        let price_sources = match crate::price::PriceSourceSettings::load(source) {
            Ok(s) => s,
            Err(e) => {
                for p in e.problems {
                    r.problem(p.var, p.message);
                }
                crate::price::PriceSourceSettings::default()
            }
        };
        let price_defaults = crate::price::PriceLookupConfig::default();
        let prices = crate::price::PriceLookupConfig {
            sources: price_sources,
            rates_url: r.raw("PRICE_RATES_URL").map(|_| r.url("PRICE_RATES_URL", &["http", "https"])),
            lookup_timeout: r
                .parse::<u64>("PRICE_LOOKUP_TIMEOUT_SECS", "a number of seconds")
                .map_or(price_defaults.lookup_timeout, |s| Duration::from_secs(s.clamp(5, 600))),
            page_concurrency: r
                .parse::<usize>("PRICE_PAGE_CONCURRENCY", "a positive number")
                .map_or(price_defaults.page_concurrency, |n| n.clamp(1, 16)),
            ..price_defaults
        };

        let media = super::MediaSettings {
            store: r.raw("MEDIA_STORE").filter(|s| !s.trim().is_empty()).unwrap_or_else(|| {
                if matches!(app_env, AppEnv::Test) {
                    std::env::temp_dir().join("aisales-media").display().to_string()
                } else {
                    "./data/media".into()
                }
            }),
            max_bytes: r
                .parse::<u64>("MEDIA_MAX_BYTES", "a number of bytes")
                .map_or(20 * 1024 * 1024, |n| n.clamp(1024, 1024 * 1024 * 1024)),
            link_ttl: r
                .parse::<u64>("MEDIA_LINK_TTL_SECS", "a number of seconds")
                .map_or(Duration::from_secs(900), |s| Duration::from_secs(s.clamp(1, 7 * 24 * 3600))),
            vision_model: r
                .raw("MEDIA_VISION_MODEL")
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| ai_model.clone()),
        };

        let retention_interval = Duration::from_secs(
            r.parse::<u64>("RETENTION_INTERVAL_SECS", "a number of seconds").unwrap_or(3600).max(1),
        );

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
            background_niceness,
            intake_burst_rate,
            intake_burst_max_defer,
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
            metrics_token: secret(metrics_token),
            whatsapp_api_url,
            whatsapp_app_secret: secret(whatsapp_app_secret),
            whatsapp_verify_token: secret(whatsapp_verify_token),
            channel_timeout,
            webdriver_url,
            podzamenu_base_url,
            prof_rf_base_url,
            lookup,
            leads_no_reply_after,
            warnings: r.warnings,
            prices,
            media,
            retention_interval,
        })
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
