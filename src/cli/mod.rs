//! The `aisales` command line: one binary, one subcommand per process role or operator task.

mod channels;
mod customers;
mod detect;
mod leads;
mod migrate;
mod prices;
mod privacy;
mod projections;
mod replay;
mod roles;
mod secrets;
pub mod streams;
mod tenants;

pub use channels::{ChannelCommand, ChannelTop};
pub use leads::{LeadFormCommand, LeadFormTop};
pub use prices::PricesCommand;
pub use privacy::PrivacyCommand;
pub use projections::ProjectionsCommand;
pub use replay::ReplayCommand;
pub use roles::ServeArgs;
pub use secrets::SecretsCommand;
pub use streams::{DeadLettersCommand, StreamsCommand};
pub use tenants::{TenantCommand, TokenCommand, UserCommand};

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

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
    /// Lead forms (`aisales lead-form add marquiz|generic --tenant ID [--name N]`).
    #[command(name = "lead-form", subcommand)]
    LeadForm(LeadFormTop),
    /// The tenant's own price list (`aisales prices import --tenant ID FILE.csv`).
    #[command(subcommand)]
    Prices(PricesCommand),
    /// Customer data rights (`aisales privacy retention [--tenant ID] [--dry-run]`).
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// A customer's data requests (`aisales customer export --tenant T ID`).
    #[command(subcommand)]
    Customer(customers::CustomerCommand),
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the event catalog (Markdown; `docs/events.md` is this output).
    Catalog,
    /// Print which fields of each event type hold customer data (Markdown;
    /// `docs/privacy-fields.md` is this output).
    PrivacyFields,
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
    if let Command::Events(EventsCommand::PrivacyFields) = cli.command {
        print!("{}", aisales_domain::pii::markdown());
        return ExitCode::SUCCESS;
    }
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", crate::config::example_env());
        return ExitCode::SUCCESS;
    }
    if let Command::Detect { text } = &cli.command {
        return match detect::detect(text.as_deref()) {
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
    // Before any thread starts, so that every thread of the process inherits the priority.
    let niced = match role {
        "projector" | "worker" if settings.background_niceness > 0 => {
            Some(crate::process::lower_cpu_priority(settings.background_niceness))
        }
        _ => None,
    };
    let _telemetry = crate::infra::telemetry::init(&settings, role);
    match niced {
        Some(Ok(())) => tracing::info!(niceness = settings.background_niceness, "CPU priority lowered"),
        Some(Err(e)) => tracing::warn!("the CPU priority could not be lowered: {e}"),
        None => {}
    }
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
        Err(e) if is_usage(&e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "command failed");
            eprintln!("error: {}", crate::infra::redact::redact(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Arc<Settings>) -> anyhow::Result<()> {
    // Every command that reads or writes events seals and opens customer data with this keyring.
    aisales_projections::pii::install(Arc::new(crate::infra::crypto::Keyring::from_settings(&settings)));
    match command {
        Command::Serve(args) => roles::serve(settings, args.all).await,
        Command::Migrate => migrate::migrate(&settings).await,
        Command::Projector => roles::projector(settings).await,
        Command::Worker { kind } => roles::worker(settings, &kind).await,
        Command::Streams(cmd) => streams::streams(settings, cmd).await,
        Command::Replay(ReplayCommand::Conversation { id, until_sequence, at, correlation_id, json }) => {
            replay::replay(&settings, id, until_sequence, at, correlation_id, json).await
        }
        Command::Projections(cmd) => projections::run(&settings, cmd).await,
        Command::Config(_) | Command::Events(_) => Ok(()),
        Command::Tenant(TenantCommand::Create { name }) => tenants::tenant_create(&settings, &name).await,
        Command::User(UserCommand::Add { tenant, email, role }) => {
            tenants::user_add(settings, tenant, &email, role).await
        }
        Command::Token(cmd) => tenants::token(&settings, cmd).await,
        Command::Channel(ChannelTop::Add(cmd)) => channels::channel_add(settings, cmd).await,
        Command::Secrets(SecretsCommand::RotateMasterKey) => secrets::rotate_master_key(&settings).await,
        Command::Detect { .. } => Ok(()),
        Command::LeadForm(LeadFormTop::Add(cmd)) => leads::lead_form_add(settings, cmd).await,
        Command::Prices(cmd) => prices::run(&settings, cmd).await,
        Command::Privacy(cmd) => privacy::run(&settings, cmd).await,
        Command::Customer(cmd) => customers::run(settings, cmd).await,
    }
}

/// A problem with the arguments: printed as one sentence, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Whether a failure is the caller's (bad arguments, an unknown id): exit code 2 rather than 1.
fn is_usage(e: &anyhow::Error) -> bool {
    use crate::application::CommandError as C;
    e.downcast_ref::<UsageError>().is_some()
        || matches!(e.downcast_ref::<C>(), Some(C::Invalid { .. } | C::NotFound(_) | C::Conflict(_) | C::Forbidden(_)))
}
