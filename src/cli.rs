//! The `aisales` command line: one binary, one subcommand per process role or operator task.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

#[derive(Debug, Parser)]
#[command(name = "aisales", version, about = "Sales desk backend: messenger conversations, AI replies, vehicle lookup")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (with --all also every projector and worker in this process).
    Serve(ServeArgs),
    /// Apply pending database migrations; a second run does nothing.
    Migrate,
    /// Run every projector (read models, dispatcher, metrics) until stopped.
    Projector,
    /// Run a worker: one kind (message-send, reply-suggestion, vehicle-lookup, price-lookup, leads,
    /// probe) or `all`.
    Worker { kind: String },
    /// Inspect the worker streams and dead letters.
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// Replay what happened in a conversation.
    #[command(subcommand)]
    Replay(ReplayCommand),
    /// The event catalog.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Inspect or rebuild projections.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Tenants (shops).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Dashboard users.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Messenger accounts (`aisales channel add green-api|telegram|whatsapp …`).
    #[command(subcommand)]
    Channel(ChannelTop),
    /// Integration secrets.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Find VIN, FRAME and gearbox codes in TEXT (or in each line of stdin); prints one JSON
    /// object per input. Needs no database.
    Detect {
        /// The text to read; without it, every line of stdin is one input.
        text: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and an owner API token; prints {"tenant_id", "api_token"}.
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a dashboard user; prints the user and a one-time password.
    Add {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: crate::auth::Role,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token (shown once).
    Create {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: crate::auth::Role,
    },
    /// Revoke an API token.
    Revoke {
        #[arg(long)]
        tenant: uuid::Uuid,
        token_id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChannelTop {
    /// Add an account.
    #[command(subcommand)]
    Add(ChannelCommand),
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Add a GREEN-API (MAX/WhatsApp) account; prints {"account_id", "webhook_url"}.
    #[command(name = "green-api")]
    GreenApi {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long = "id-instance")]
        id_instance: String,
        #[arg(long = "api-token")]
        api_token: String,
        #[arg(long = "api-url")]
        api_url: Option<String>,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Add a Telegram bot; prints {"account_id", "webhook_url"}.
    Telegram {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long = "bot-token")]
        bot_token: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Add a WhatsApp Cloud API number; prints {"account_id", "webhook_url", "verify_token"}.
    Whatsapp {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long = "phone-number-id")]
        phone_number_id: String,
        #[arg(long = "access-token")]
        access_token: String,
        #[arg(long = "app-secret")]
        app_secret: String,
        #[arg(long = "verify-token")]
        verify_token: Option<String>,
        #[arg(long, default_value = "")]
        label: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every secret under INTEGRATION_SECRETS_MASTER_KEY (old keys in
    /// INTEGRATION_SECRETS_PREVIOUS_KEYS), in one transaction.
    RotateMasterKey,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the event catalog (Markdown; `docs/events.md` is this output).
    Catalog,
}

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// A conversation's events as a timeline, and its state at that point.
    Conversation {
        id: uuid::Uuid,
        /// Stop after this event.
        #[arg(long, conflicts_with = "at")]
        until_sequence: Option<i64>,
        /// Stop at this instant (RFC 3339).
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
        /// Print JSON (events and state) instead of a timeline.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// Length, pending entries, oldest pending age and consumers of every stream.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Dead-lettered jobs.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLettersCommand),
    /// Send probe jobs through the whole bus and wait for their answers.
    Ping {
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List dead letters (of one kind, or all).
    List {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back: one by id, or every one of a kind with --all.
    Retry {
        kind: String,
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Also run every projector and worker in this process (the one-command local setup).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Checkpoint, head, lag and owner of every projector.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Build a fresh generation of NAME's tables from event zero (the old one keeps serving),
    /// then swap it in atomically.
    Rebuild {
        name: String,
        /// Print the report as JSON and no progress bar.
        #[arg(long)]
        json: bool,
    },
    /// Compare every read model (or NAME's) with the state folded from the events; print each
    /// difference. Exit code 1 when there is any.
    Verify {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the environment; print every problem on its own line.
    Check,
    /// Print a documented `.env` template of every variable the program reads.
    Example,
}

/// Exit code for bad configuration or arguments.
pub const EXIT_CONFIG: u8 = 2;

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Command::Events(EventsCommand::Catalog) = cli.command {
        print!("{}", aisales_domain::catalog::markdown());
        return ExitCode::SUCCESS;
    }
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", crate::config::example_env());
        return ExitCode::SUCCESS;
    }
    if let Command::Detect { text } = &cli.command {
        return match detect(text.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot read or write: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Settings (and .env) are read before any thread starts.
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            for p in &e.problems {
                eprintln!("{p}");
            }
            if let Command::Config(ConfigCommand::Check) = cli.command {
                eprintln!("configuration is invalid: {} problem(s)", e.problems.len());
            } else {
                eprintln!(
                    "refusing to start: the configuration is invalid ({} problem(s)); fix the variables above",
                    e.problems.len()
                );
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Command::Config(ConfigCommand::Check) = cli.command {
        for w in &settings.warnings {
            eprintln!("warning: {w}");
        }
        println!("configuration is valid ({} environment)", settings.app_env.as_str());
        return ExitCode::SUCCESS;
    }
    let role = match &cli.command {
        Command::Serve(_) => "server",
        Command::Projector => "projector",
        Command::Worker { .. } => "worker",
        _ => "cli",
    };
    let _telemetry = crate::telemetry::init(&settings, role);
    if role != "cli" {
        for w in &settings.warnings {
            tracing::warn!("{w}");
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = Arc::new(settings);
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<UsageError>().is_some() => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "command failed");
            eprintln!("error: {}", crate::redact::redact(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Arc<Settings>) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(settings, args.all).await,
        Command::Migrate => migrate(&settings).await,
        Command::Projector => projector(settings).await,
        Command::Worker { kind } => worker(settings, &kind).await,
        Command::Streams(cmd) => crate::bus_cli::streams(settings, cmd).await,
        Command::Replay(ReplayCommand::Conversation { id, until_sequence, at, json }) => {
            replay(&settings, id, until_sequence, at, json).await
        }
        Command::Projections(ProjectionsCommand::Status { json }) => projections_status(&settings, json).await,
        Command::Projections(ProjectionsCommand::Rebuild { name, json }) => {
            let pool = crate::db::pool(&settings)?;
            let redis = crate::redis_conn::Redis::new(&settings)?;
            let all = crate::read_models::all(&settings, &pool, &redis);
            let r = crate::projection_ops::rebuild(&pool, &all, &name, json).await?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "rebuilt {}: {} events in {:.1} s ({:.0} events/s), now at {}",
                    r.projector, r.events, r.seconds, r.events_per_second, r.position
                );
            }
            Ok(())
        }
        Command::Projections(ProjectionsCommand::Verify { name, json }) => {
            let pool = crate::db::pool(&settings)?;
            let redis = crate::redis_conn::Redis::new(&settings)?;
            let all = crate::read_models::all(&settings, &pool, &redis);
            let reports = crate::projection_ops::verify(&pool, &all, name.as_deref(), json).await?;
            let differences: usize = reports.iter().map(|r| r.differences.len()).sum();
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                for r in &reports {
                    if r.differences.is_empty() {
                        println!("{}: no difference at {}", r.projector, r.position);
                    } else {
                        println!("{}: {} difference(s) at {}", r.projector, r.differences.len(), r.position);
                        for d in &r.differences {
                            println!("  {d}");
                        }
                    }
                }
            }
            if differences > 0 {
                anyhow::bail!("{differences} difference(s) between the read models and the events");
            }
            Ok(())
        }
        Command::Config(_) | Command::Events(_) => Ok(()),
        Command::Tenant(TenantCommand::Create { name }) => tenant_create(&settings, &name).await,
        Command::User(UserCommand::Add { tenant, email, role }) => user_add(settings, tenant, &email, role).await,
        Command::Token(cmd) => token(&settings, cmd).await,
        Command::Channel(ChannelTop::Add(cmd)) => channel_add(settings, cmd).await,
        Command::Secrets(SecretsCommand::RotateMasterKey) => rotate_master_key(&settings).await,
        Command::Detect { .. } => Ok(()),
    }
}

/// `aisales detect [TEXT]`: one JSON object per input (`TEXT`, or each line of stdin), with the
/// offline decoding of every VIN.
fn detect(text: Option<&str>) -> std::io::Result<()> {
    use chrono::Datelike;
    use std::io::{BufRead, Write};
    let year = chrono::Utc::now().year().clamp(1980, 2100) as u16;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let one = |input: &str, out: &mut std::io::BufWriter<std::io::StdoutLock<'_>>| -> std::io::Result<()> {
        let detection = aisales_domain::detect::detect(input).with_vin_info(year);
        serde_json::to_writer(&mut *out, &detection)?;
        out.write_all(b"\n")
    };
    match text {
        Some(t) => one(t, &mut out)?,
        None => {
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                one(line.strip_suffix('\r').unwrap_or(&line), &mut out)?;
            }
        }
    }
    out.flush()
}

/// A problem with the arguments: printed as one sentence, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn api_to_cli(e: crate::http::ApiError) -> anyhow::Error {
    use crate::http::ApiError;
    match e {
        ApiError::Unexpected(e) => e,
        other if other.status().is_client_error() => UsageError(other.to_string()).into(),
        other => anyhow::anyhow!(other.to_string()),
    }
}

async fn require_tenant(pool: &sqlx::PgPool, tenant: uuid::Uuid) -> anyhow::Result<()> {
    match crate::tenancy::get_tenant(pool, tenant).await? {
        Some(_) => Ok(()),
        None => Err(UsageError(format!("there is no tenant {tenant}")).into()),
    }
}

async fn tenant_create(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(UsageError("a tenant name has 1 to 200 characters".into()).into());
    }
    let pool = crate::db::pool(settings)?;
    let mut tx = pool.begin().await?;
    let tenant = crate::tenancy::create_tenant(&mut tx, name).await?;
    let token = crate::auth::tokens::create(
        &mut tx,
        tenant.id,
        "owner token (created by aisales tenant create)",
        crate::auth::Role::Owner,
        "cli",
    )
    .await?;
    tx.commit().await?;
    println!("{}", serde_json::json!({ "tenant_id": tenant.id, "api_token": token.token }));
    Ok(())
}

async fn user_add(
    settings: Arc<Settings>,
    tenant: uuid::Uuid,
    email: &str,
    role: crate::auth::Role,
) -> anyhow::Result<()> {
    let pool = crate::db::pool(&settings)?;
    require_tenant(&pool, tenant).await?;
    let (user, password) = crate::http::api::users::add_user(&pool, tenant, email, role).await.map_err(api_to_cli)?;
    println!(
        "{}",
        serde_json::json!({ "user_id": user.id, "email": user.email, "role": user.role, "one_time_password": password })
    );
    Ok(())
}

async fn token(settings: &Settings, cmd: TokenCommand) -> anyhow::Result<()> {
    let pool = crate::db::pool(settings)?;
    match cmd {
        TokenCommand::Create { tenant, name, role } => {
            require_tenant(&pool, tenant).await?;
            let mut conn = pool.acquire().await?;
            let t = crate::auth::tokens::create(&mut conn, tenant, name.trim(), role, "cli").await?;
            println!("{}", serde_json::json!({ "token_id": t.id, "api_token": t.token, "role": role }));
        }
        TokenCommand::Revoke { tenant, token_id } => {
            let mut conn = pool.acquire().await?;
            if !crate::auth::tokens::revoke(&mut conn, tenant, token_id).await? {
                return Err(UsageError(format!("tenant {tenant} has no active token {token_id}")).into());
            }
            println!("{}", serde_json::json!({ "revoked": token_id }));
        }
    }
    Ok(())
}

async fn channel_add(settings: Arc<Settings>, cmd: ChannelCommand) -> anyhow::Result<()> {
    use crate::http::api::channels::{NewAccount, add_account};
    let pool = crate::db::pool(&settings)?;
    let redis = crate::redis_conn::Redis::new(&settings)?;
    let state = crate::http::AppState::new(settings.clone(), pool.clone(), redis);
    let (tenant, new) = match cmd {
        ChannelCommand::GreenApi { tenant, id_instance, api_token, api_url, label } => {
            (tenant, NewAccount::GreenApi { id_instance, api_token, api_url, media_url: None, label })
        }
        ChannelCommand::Telegram { tenant, bot_token, label } => (tenant, NewAccount::Telegram { bot_token, label }),
        ChannelCommand::Whatsapp { tenant, phone_number_id, access_token, app_secret, verify_token, label } => {
            (tenant, NewAccount::Whatsapp { phone_number_id, access_token, app_secret, verify_token, label })
        }
    };
    require_tenant(&pool, tenant).await?;
    let view = add_account(&state, tenant, new).await.map_err(api_to_cli)?;
    let mut out = serde_json::json!({
        "account_id": view.account.id,
        "webhook_url": view.webhook_url,
        "webhook_registration": view.webhook_registration,
    });
    // The credential the provider must present, when the webhook has to be configured by hand.
    for (name, value) in view.webhook_credentials {
        out[name] = value;
    }
    println!("{out}");
    Ok(())
}

async fn rotate_master_key(settings: &Settings) -> anyhow::Result<()> {
    let pool = crate::db::pool(settings)?;
    let keys = crate::crypto::Keyring::from_settings(settings);
    let mut tx = pool.begin().await?;
    let n = crate::crypto::rotate_all(&mut tx, &keys).await?;
    tx.commit().await?;
    println!("{}", serde_json::json!({ "reencrypted": n, "key_id": keys.current_key_id() }));
    Ok(())
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = crate::db::pool(settings)?;
    let applied = crate::db::migrate(&pool).await?;
    if applied.is_empty() {
        println!("database schema is up to date; nothing to apply");
    } else {
        for m in &applied {
            println!("applied {} {}", m.version, m.description);
        }
        println!("{} migration(s) applied", applied.len());
    }
    Ok(())
}

/// Runs named long-lived tasks until one of them ends or a signal arrives, then stops the rest.
pub struct Supervisor {
    cancel: CancellationToken,
    tasks: tokio::task::JoinSet<(&'static str, anyhow::Result<()>)>,
}

impl Supervisor {
    pub fn new() -> Self {
        let cancel = CancellationToken::new();
        crate::app::cancel_on_signals(cancel.clone());
        Supervisor { cancel, tasks: tokio::task::JoinSet::new() }
    }

    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub fn spawn<F>(&mut self, name: &'static str, fut: F)
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks.spawn(async move { (name, fut.await) });
    }

    /// Waits for a signal or for the first task to stop; then cancels the others and waits for
    /// them. A task that stops on its own before shutdown is reported as a failure.
    pub async fn wait(mut self, grace: std::time::Duration) -> anyhow::Result<()> {
        let mut failure: Option<anyhow::Error> = None;
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => {}
            Some(res) = self.tasks.join_next() => {
                // A task that stopped because a stop was asked for (SIGTERM arriving while this
                // select was being polled) is not a failure.
                let asked = self.cancel.is_cancelled();
                let err = match res {
                    Ok((name, Ok(()))) if asked => {
                        tracing::debug!(task = name, "task stopped");
                        None
                    }
                    Ok((name, Ok(()))) => Some(anyhow::anyhow!("{name} stopped unexpectedly")),
                    Ok((name, Err(e))) => Some(e.context(format!("{name} failed"))),
                    Err(e) => Some(anyhow::anyhow!("a task panicked: {e}")),
                };
                if let Some(err) = err {
                    tracing::error!(error = format!("{err:#}"), "stopping every task");
                    failure = Some(err);
                }
                self.cancel.cancel();
            }
        }
        let drain = async {
            while let Some(res) = self.tasks.join_next().await {
                match res {
                    Ok((name, Err(e))) => {
                        tracing::error!(task = name, error = format!("{e:#}"), "task ended with an error")
                    }
                    Ok((name, Ok(()))) => tracing::debug!(task = name, "task stopped"),
                    Err(e) => tracing::error!(error = %e, "task panicked"),
                }
            }
        };
        if tokio::time::timeout(grace + std::time::Duration::from_secs(5), drain).await.is_err() {
            tracing::warn!("tasks still running after the shutdown deadline; exiting anyway");
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

async fn serve(settings: Arc<Settings>, all: bool) -> anyhow::Result<()> {
    let pool = crate::db::pool(&settings)?;
    let redis = crate::redis_conn::Redis::new(&settings)?;
    let state = crate::http::AppState::new(settings.clone(), pool.clone(), redis.clone());
    let app = crate::app::Application::build(state).await?;
    let mut sup = Supervisor::new();
    let grace = settings.shutdown_grace;
    let token = sup.token();
    sup.spawn("http server", app.run_until_stopped(token, grace));
    if all {
        spawn_projectors(&mut sup, &settings, pool.clone(), redis.clone())?;
        spawn_workers(&mut sup, &settings, pool.clone(), redis.clone(), None)?;
    }
    sup.wait(grace).await
}

fn spawn_projectors(
    sup: &mut Supervisor,
    settings: &Settings,
    pool: sqlx::PgPool,
    redis: crate::redis_conn::Redis,
) -> anyhow::Result<()> {
    let runtime = crate::projector::ProjectorRuntime::new(
        pool.clone(),
        crate::db::connect_options(settings)?,
        crate::read_models::all(settings, &pool, &redis),
        crate::read_models::runtime_options(settings),
    );
    let token = sup.token();
    sup.spawn("projectors", runtime.run(token));
    let sweeper = crate::bus::sweeper::SweeperOptions {
        prefix: settings.bus.redis_prefix.clone(),
        interval: settings.bus.sweep_interval,
        redispatch_after: settings.bus.redispatch_after,
        stream_max_len: settings.bus.stream_max_len,
        instance: crate::projector::instance_name("sweeper"),
    };
    let token = sup.token();
    sup.spawn(
        "work sweeper",
        crate::bus::sweeper::run(pool, crate::db::connect_options(settings)?, redis, sweeper, token),
    );
    Ok(())
}

/// Starts workers for `only` (or every kind that has a handler).
fn spawn_workers(
    sup: &mut Supervisor,
    settings: &Arc<Settings>,
    pool: sqlx::PgPool,
    redis: crate::redis_conn::Redis,
    only: Option<crate::bus::Kind>,
) -> anyhow::Result<()> {
    let services = crate::workers::Services::new(settings.clone(), pool, redis.clone());
    let kinds: Vec<crate::bus::Kind> = match only {
        Some(k) => vec![k],
        None => crate::bus::Kind::ALL.to_vec(),
    };
    for kind in kinds {
        let Some(handler) = crate::workers::handler(kind, &services) else {
            if only.is_some() {
                return Err(UsageError(format!("this build has no worker for {kind}")).into());
            }
            continue;
        };
        let options = crate::bus::worker::WorkerOptions {
            prefix: settings.bus.redis_prefix.clone(),
            consumer: crate::projector::instance_name(&format!("worker-{kind}")),
            concurrency: settings.bus.concurrency,
            visibility_timeout: settings.bus.visibility_timeout,
            max_deliveries: settings.bus.max_deliveries,
            job_timeout: settings.bus.job_timeout,
            shutdown_grace: settings.shutdown_grace,
        };
        let token = sup.token();
        let name: &'static str = Box::leak(format!("{kind} worker").into_boxed_str());
        sup.spawn(name, crate::bus::worker::run(redis.clone(), handler, options, token));
    }
    Ok(())
}

async fn worker(settings: Arc<Settings>, kind: &str) -> anyhow::Result<()> {
    let only = match kind {
        "all" => None,
        k => Some(k.parse::<crate::bus::Kind>().map_err(|e| UsageError(e.to_string()))?),
    };
    let pool = crate::db::pool(&settings)?;
    let redis = crate::redis_conn::Redis::new(&settings)?;
    let mut sup = Supervisor::new();
    spawn_workers(&mut sup, &settings, pool, redis, only)?;
    if let Some(port) = settings.metrics_port {
        let token = sup.token();
        sup.spawn("metrics endpoint", crate::app::serve_metrics(port, token));
    }
    sup.wait(settings.shutdown_grace).await
}

async fn projector(settings: Arc<Settings>) -> anyhow::Result<()> {
    let pool = crate::db::pool(&settings)?;
    let redis = crate::redis_conn::Redis::new(&settings)?;
    let mut sup = Supervisor::new();
    spawn_projectors(&mut sup, &settings, pool, redis)?;
    if let Some(port) = settings.metrics_port {
        let token = sup.token();
        sup.spawn("metrics endpoint", crate::app::serve_metrics(port, token));
    }
    sup.wait(settings.shutdown_grace).await
}

async fn projections_status(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let pool = crate::db::pool(settings)?;
    let redis = crate::redis_conn::Redis::new(settings)?;
    let rows = crate::projector::status(&pool, &crate::read_models::all(settings, &pool, &redis)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<24} {:>16} {:>16} {:>10} {:>12}  owner", "projector", "checkpoint", "head", "lag", "applied");
    for r in rows {
        println!(
            "{:<24} {:>16} {:>16} {:>10} {:>12}  {}",
            r.name,
            r.position,
            r.head,
            r.lag_events,
            r.events_applied,
            r.owner.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

async fn replay(
    settings: &Settings,
    id: uuid::Uuid,
    until_sequence: Option<i64>,
    at: Option<chrono::DateTime<chrono::Utc>>,
    json: bool,
) -> anyhow::Result<()> {
    use crate::replay::Until;
    let until = match (until_sequence, at) {
        (Some(n), _) => Until::Sequence(n),
        (None, Some(t)) => Until::Instant(t),
        (None, None) => Until::End,
    };
    let pool = crate::db::pool(settings)?;
    let r = crate::replay::load(&pool, None, id, until)
        .await?
        .ok_or_else(|| UsageError(format!("there is no conversation {id}")))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "events": r.events, "state": r.state_json() }))?
        );
        return Ok(());
    }
    for line in r.timeline() {
        println!("{line}");
    }
    let s = r.state_json();
    println!();
    println!(
        "state after #{}: status {}, {} message(s), {} pending suggestion(s), unread {}",
        s["replayed_to_sequence"],
        s["status"].as_str().unwrap_or("?"),
        s["messages_count"],
        s["pending_suggestions"],
        s["unread_count"]
    );
    Ok(())
}
