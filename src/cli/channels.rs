//! `aisales channel add green-api|telegram|whatsapp …`: messenger accounts.

use std::sync::Arc;

use clap::Subcommand;

use crate::config::Settings;

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

pub(super) async fn channel_add(settings: Arc<Settings>, cmd: ChannelCommand) -> anyhow::Result<()> {
    use crate::application::channels::{NewAccount, add_account};
    let pool = crate::infra::db::pool(&settings)?;
    let redis = crate::infra::redis::Redis::new(&settings)?;
    let ctx = crate::application::Context::new(settings.clone(), pool.clone(), redis);
    let (tenant, new) = match cmd {
        ChannelCommand::GreenApi { tenant, id_instance, api_token, api_url, label } => {
            (tenant, NewAccount::GreenApi { id_instance, api_token, api_url, media_url: None, label })
        }
        ChannelCommand::Telegram { tenant, bot_token, label } => (tenant, NewAccount::Telegram { bot_token, label }),
        ChannelCommand::Whatsapp { tenant, phone_number_id, access_token, app_secret, verify_token, label } => {
            (tenant, NewAccount::Whatsapp { phone_number_id, access_token, app_secret, verify_token, label })
        }
    };
    super::tenants::require_tenant(&pool, tenant).await?;
    let view = add_account(&ctx, tenant, new).await?;
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
