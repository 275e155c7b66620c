//! `aisales customer export --tenant T ID [--output FILE]`: a customer's data requests.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use super::UsageError;
use super::tenants::require_tenant;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Print everything held about a customer as one JSON document (conversations, messages,
    /// leads, lookups and files); the same document as `GET /api/customers/{id}/export`.
    Export {
        #[arg(long)]
        tenant: uuid::Uuid,
        /// The customer's id.
        id: uuid::Uuid,
        /// Write the document to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

pub(super) async fn run(settings: &Settings, cmd: CustomerCommand) -> anyhow::Result<()> {
    match cmd {
        CustomerCommand::Export { tenant, id, output } => {
            let pool = crate::infra::db::pool(settings)?;
            require_tenant(&pool, tenant).await?;
            let document = crate::privacy::export::customer_export(&pool, tenant, id, chrono::Utc::now())
                .await?
                .ok_or_else(|| UsageError(format!("tenant {tenant} has no customer {id}")))?;
            let text = serde_json::to_string_pretty(&document)?;
            match output {
                Some(path) => std::fs::write(&path, text + "\n")
                    .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?,
                None => writeln!(std::io::stdout().lock(), "{text}")?,
            }
            Ok(())
        }
    }
}
