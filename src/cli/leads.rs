//! `aisales lead-form add marquiz|generic --tenant ID [--name N]`: lead forms.

use std::sync::Arc;

use aisales_domain::lead::LeadFormKind;
use clap::Subcommand;

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum LeadFormTop {
    /// Add a lead form; prints {"form_id", "webhook_url"} (the URL carries the form's secret).
    #[command(subcommand)]
    Add(LeadFormCommand),
}

#[derive(Debug, Subcommand)]
pub enum LeadFormCommand {
    /// A Marquiz quiz.
    Marquiz {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long)]
        name: Option<String>,
    },
    /// A site form (JSON or form fields, Tilda and others).
    Generic {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long)]
        name: Option<String>,
    },
}

pub(super) async fn lead_form_add(settings: Arc<Settings>, cmd: LeadFormCommand) -> anyhow::Result<()> {
    let pool = crate::infra::db::pool(&settings)?;
    let redis = crate::infra::redis::Redis::new(&settings)?;
    let ctx = crate::application::Context::new(settings.clone(), pool.clone(), redis);
    let (kind, tenant, name) = match cmd {
        LeadFormCommand::Marquiz { tenant, name } => (LeadFormKind::Marquiz, tenant, name),
        LeadFormCommand::Generic { tenant, name } => (LeadFormKind::Generic, tenant, name),
    };
    super::tenants::require_tenant(&pool, tenant).await?;
    let created = crate::application::leads::add_form(&ctx, tenant, kind, name).await?;
    println!("{}", serde_json::to_string(&created)?);
    Ok(())
}
