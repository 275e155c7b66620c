//! `aisales prices import --tenant ID FILE.csv`: the tenant's own price list.

use std::path::PathBuf;

use clap::Subcommand;

use super::UsageError;
use super::tenants::require_tenant;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Import the tenant's own price list (CSV with `code` and `price` columns; optional
    /// `condition`, `supplier`, `stock`, `title`, `currency`); prints how many rows were taken and
    /// every refused row with its reason.
    Import {
        #[arg(long)]
        tenant: uuid::Uuid,
        file: PathBuf,
    },
}

pub(super) async fn run(settings: &Settings, cmd: PricesCommand) -> anyhow::Result<()> {
    match cmd {
        PricesCommand::Import { tenant, file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
            let pool = crate::infra::db::pool(settings)?;
            require_tenant(&pool, tenant).await?;
            let report = crate::application::price_list::import(&pool, tenant, &text).await?;
            println!("{}", serde_json::to_string(&report)?);
            for r in &report.refused {
                eprintln!("line {}: {}", r.line, r.reason);
            }
            Ok(())
        }
    }
}
