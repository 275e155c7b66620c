//! Every environment variable the program reads, with its group, default and help: the source of
//! `.env.example` and of `aisales config example`.

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
        ("DATABASE_URL", "postgres://aisales:aisales@127.0.0.1:5432/aisales", "PostgreSQL connection URL (required in production); a loopback host (127.0.0.1, ::1, localhost) is reached without TLS unless the URL sets sslmode, other hosts keep the default sslmode=prefer"),
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
        ("PASSWORD_HASH_CONCURRENCY", "0", "password hashes (argon2, ~19 MiB each) computed at once per process, 0: one per core; a login over it waits up to 1 s, then answers 503"),
        ("EVENT_STREAMS_PER_CREDENTIAL", "5", "open /api/events/stream connections per API token or session and process (0: no cap)"),
        ("EVENT_STREAMS_PER_TENANT", "100", "open /api/events/stream connections per tenant and process (0: no cap)"),
        ("EVENT_STREAM_RECHECK_SECS", "30", "how often an open event stream checks its credential again (logout, revocation, disabled user, expiry end it)"),
    ],
    "Logging and monitoring" => [
        ("LOG_LEVEL", "info", "debug | info | warn | error"),
        ("LOG_FORMAT", "json", "json | pretty (pretty is the default in development)"),
        ("SENTRY_DSN", "", "report errors and panics to Sentry when set"),
        ("METRICS_PORT", "", "serve /metrics and /health on this port (the server then answers 404 for /metrics on its main port)"),
        ("METRICS_TOKEN", "", "when set, /metrics needs `Authorization: Bearer <token>` (16 characters or more)"),
    ],
    "Worker bus" => [
        ("REDIS_PREFIX", "aisales", "prefix of every Redis key (streams, rate limits): lets several deployments share one Redis"),
        ("WORKER_CONCURRENCY", "4", "jobs one worker process runs at once, per kind"),
        ("BACKGROUND_NICENESS", "0", "CPU priority (nice, 0-19) the projector and worker processes lower themselves to, so the HTTP server keeps the CPU under bursts; 0 leaves it"),
        ("INTAKE_BURST_RATE", "50", "form and messenger webhooks per second from which the server signals a burst: the leads worker and the projectors give way to it until it ends; 0 never signals"),
        ("INTAKE_BURST_MAX_DEFER_SECS", "30", "longest background work gives way in one burst (0: never)"),
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
    "Leads" => [
        ("LEADS_NO_REPLY_SECS", "", "replaces every tenant's no-reply wait of leads, in seconds (drills and tests); unset: each tenant's own setting, 15 minutes by default"),
    ],
    "Media" => [
        ("MEDIA_STORE", "./data/media", "where customers' files are stored: a local directory, or s3://bucket/prefix in a build with the s3 feature (AWS_* variables give the endpoint and credentials)"),
        ("MEDIA_MAX_BYTES", "20971520", "largest file stored; a larger one is recorded as too_large and nothing of it is kept"),
        ("MEDIA_LINK_TTL_SECS", "900", "how long a signed link to a stored file works"),
        ("MEDIA_VISION_MODEL", "", "the model that reads photos of VIN plates, registration documents and gearbox tags (default: AI_MODEL)"),
    ],
    "Price lookup" => [
        ("YANDEX_SEARCH_API_URL", "https://searchapi.api.cloud.yandex.net", "Yandex Cloud Search API base URL; searches go to {URL}/v2/web/search"),
        ("YANDEX_SEARCH_API_KEY", "", "API key of a service account with the search-api.webSearch.user role; without it the market search is skipped"),
        ("YANDEX_FOLDER_ID", "", "Yandex Cloud folder the searches are billed to (required with the key)"),
        ("YANDEX_SEARCH_TIMEOUT_SECS", "15", "timeout of one search request"),
        ("PRICE_SITE_ORIGINS", "", "comma-separated domain=origin pairs: listing URLs on domain (or a subdomain) are fetched from origin with the same path and query (local replicas and tests)"),
        ("PRICE_PAGE_TIMEOUT_SECS", "10", "timeout of fetching one listing page, redirects and body included"),
        ("PRICE_PAGE_MAX_BYTES", "4194304", "largest listing page read; a bigger page is given up"),
        ("PRICE_RENDER_TIMEOUT_SECS", "25", "timeout of rendering one listing page in the browser"),
        ("PRICE_RATES_URL", "", "currency API answering {\"date\", \"rub\": {\"jpy\": …}} for foreign listings (fetched twice a day); without it fixed offline rates are used"),
        ("PRICE_LOOKUP_TIMEOUT_SECS", "60", "bound of one whole price search over every source"),
        ("PRICE_PAGE_CONCURRENCY", "4", "listing pages one price search reads at once"),
    ],
    "Privacy" => [
        ("RETENTION_INTERVAL_SECS", "3600", "how often the projector role deletes vehicle-lookup evidence older than each tenant's retention (docs/privacy.md)"),
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
