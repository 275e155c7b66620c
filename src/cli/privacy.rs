//! `aisales privacy …`: customer data rights run by hand (`docs/privacy.md`).

use clap::Subcommand;

use super::tenants::require_tenant;
use crate::config::Settings;
use crate::privacy::retention;

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Run one retention pass now: delete vehicle-lookup evidence older than each tenant's limit
    /// and record every deletion; prints one JSON object per lookup whose evidence was deleted.
    Retention {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
        /// Print what would be deleted; delete and record nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Seal the customer data of events stored before sealing existed (the one rewrite of stored
    /// events; docs/privacy.md). Resumable: a second run goes on where the first stopped.
    Migrate {
        /// Events per batch (each batch is one transaction).
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
}

pub(super) async fn run(settings: &Settings, cmd: PrivacyCommand) -> anyhow::Result<()> {
    match cmd {
        PrivacyCommand::Retention { tenant, dry_run } => {
            let pool = crate::infra::db::pool(settings)?;
            if let Some(t) = tenant {
                require_tenant(&pool, t).await?;
            }
            let pass = retention::Pass { tenant, dry_run, ..retention::Pass::new(chrono::Utc::now(), "cli:retention") };
            let summary = retention::pass(&pool, &pass, |d| {
                if let Ok(line) = serde_json::to_string(d) {
                    println!("{line}");
                }
            })
            .await?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            eprintln!(
                "{verb} the evidence of {} lookup(s): {} row(s), {} byte(s)",
                summary.lookups, summary.rows, summary.bytes
            );
            Ok(())
        }
        PrivacyCommand::Migrate { batch } => {
            let pool = crate::infra::db::pool(settings)?;
            let report = crate::privacy::migrate::run(&pool, batch, |r| {
                eprintln!("sealed {} of {} event(s) read, up to position {}", r.sealed, r.scanned, r.position);
            })
            .await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}
