//! `aisales customer export|erase|erase-lead --tenant T ID`: a customer's data requests.

use std::io::Write;
use std::path::PathBuf;

use aisales_domain::pii::ErasureCause;
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
    /// Erase a customer: destroy their data keys, so every customer-data field of their events
    /// reads `[erased]`, and delete what names them outside the events. Prints what was done;
    /// repeating it is harmless.
    Erase {
        #[arg(long)]
        tenant: uuid::Uuid,
        /// The customer's id.
        id: uuid::Uuid,
    },
    /// Erase a lead that never reached a customer (a failed lead, or one still waiting for its
    /// outreach). A lead that reached a customer is erased with the customer (`customer erase`).
    EraseLead {
        #[arg(long)]
        tenant: uuid::Uuid,
        /// The lead's id.
        id: uuid::Uuid,
    },
}

/// The actor an erasure from the command line is recorded with.
const ACTOR: &str = "cli:erase";

/// What an erasure runs with, once `tenant` is known to exist.
async fn context(
    settings: &std::sync::Arc<Settings>,
    tenant: uuid::Uuid,
) -> anyhow::Result<crate::application::Context> {
    let pool = crate::infra::db::pool(settings)?;
    require_tenant(&pool, tenant).await?;
    let redis = crate::infra::redis::Redis::new(settings)?;
    Ok(crate::application::Context::new(settings.clone(), pool, redis))
}

pub(super) async fn run(settings: std::sync::Arc<Settings>, cmd: CustomerCommand) -> anyhow::Result<()> {
    match cmd {
        CustomerCommand::Export { tenant, id, output } => {
            let pool = crate::infra::db::pool(&settings)?;
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
        CustomerCommand::Erase { tenant, id } => {
            let ctx = context(&settings, tenant).await?;
            let erasure = crate::privacy::erase::erase_customer(&ctx, tenant, id, ACTOR, ErasureCause::Request)
                .await?
                .ok_or_else(|| UsageError(format!("tenant {tenant} has no customer {id}")))?;
            println!("{}", serde_json::to_string(&erasure)?);
            Ok(())
        }
        CustomerCommand::EraseLead { tenant, id } => {
            use crate::privacy::erase::LeadNotErased;
            let ctx = context(&settings, tenant).await?;
            let erasure = match crate::privacy::erase::erase_lead(&ctx, tenant, id, ACTOR, ErasureCause::Request)
                .await?
            {
                Ok(e) => e,
                Err(LeadNotErased::NotFound) => {
                    return Err(UsageError(format!("tenant {tenant} has no lead {id}")).into());
                }
                Err(LeadNotErased::OutreachUnderWay) => {
                    return Err(UsageError(format!(
                        "the outreach to lead {id} is under way; erase it once it has ended (it may reach a customer)"
                    ))
                    .into());
                }
                Err(LeadNotErased::ReachedCustomer(customer)) => {
                    return Err(UsageError(format!(
                        "lead {id} reached customer {customer}: erase the customer (aisales customer erase --tenant {tenant} {customer})"
                    ))
                    .into());
                }
            };
            println!("{}", serde_json::to_string(&erasure)?);
            Ok(())
        }
    }
}
