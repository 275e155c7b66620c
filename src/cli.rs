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
    /// Inspect or rebuild projections.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
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
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", crate::config::example_env());
        return ExitCode::SUCCESS;
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
        Command::Projections(ProjectionsCommand::Status { json }) => projections_status(&settings, json).await,
        Command::Config(_) => Ok(()),
    }
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
            _ = self.cancel.cancelled() => {}
            Some(res) = self.tasks.join_next() => {
                let err = match res {
                    Ok((name, Ok(()))) => anyhow::anyhow!("{name} stopped unexpectedly"),
                    Ok((name, Err(e))) => e.context(format!("{name} failed")),
                    Err(e) => anyhow::anyhow!("a task panicked: {e}"),
                };
                tracing::error!(error = format!("{err:#}"), "stopping every task");
                failure = Some(err);
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
        spawn_projectors(&mut sup, &settings, pool.clone())?;
    }
    sup.wait(grace).await
}

fn spawn_projectors(sup: &mut Supervisor, settings: &Settings, pool: sqlx::PgPool) -> anyhow::Result<()> {
    let runtime = crate::projector::ProjectorRuntime::new(
        pool,
        crate::db::connect_options(settings)?,
        crate::read_models::all(),
        crate::read_models::runtime_options(settings),
    );
    let token = sup.token();
    sup.spawn("projectors", runtime.run(token));
    Ok(())
}

async fn projector(settings: Arc<Settings>) -> anyhow::Result<()> {
    let pool = crate::db::pool(&settings)?;
    let mut sup = Supervisor::new();
    spawn_projectors(&mut sup, &settings, pool)?;
    if let Some(port) = settings.metrics_port {
        let token = sup.token();
        sup.spawn("metrics endpoint", crate::app::serve_metrics(port, token));
    }
    sup.wait(settings.shutdown_grace).await
}

async fn projections_status(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let pool = crate::db::pool(settings)?;
    let rows = crate::projector::status(&pool, &crate::read_models::all()).await?;
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
