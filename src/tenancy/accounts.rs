//! Channel accounts and their decrypted credentials, cached briefly in the process, and the
//! channel clients that use them.

use std::time::Duration;

use aisales_domain::conversation::ChannelKind;
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;

use crate::channels::green_api::GreenApiCredentials;
use crate::config::Settings;
use crate::infra::cache::TtlCache;
use crate::infra::crypto::{self, Keyring};
use crate::tenancy::{self, ChannelAccount, Tenant};

/// How long a cached tenant, account or secret is used before it is read again.
pub const TTL: Duration = Duration::from_secs(10);

/// Tenants, channel accounts and their decrypted credentials, cached briefly so that a webhook
/// burst does not read the same rows and decrypt the same token thousands of times. A change (new
/// token, disabled account, new settings) is seen within [`TTL`]. One per process, owned by the
/// application context.
pub struct TenancyCache {
    tenants: TtlCache<Uuid, Option<Tenant>>,
    accounts: TtlCache<(Uuid, Uuid), Option<ChannelAccount>>,
    by_kind: TtlCache<(Uuid, ChannelKind), Option<ChannelAccount>>,
    secrets: TtlCache<(Uuid, String), String>,
}

impl Default for TenancyCache {
    fn default() -> Self {
        TenancyCache {
            tenants: TtlCache::new(10_000, TTL),
            accounts: TtlCache::new(10_000, TTL),
            by_kind: TtlCache::new(10_000, TTL),
            secrets: TtlCache::new(10_000, TTL),
        }
    }
}

impl TenancyCache {
    /// A tenant (hot paths: webhooks, workers).
    pub async fn tenant(&self, pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Tenant>> {
        if let Some(t) = self.tenants.get(&id) {
            return Ok(t);
        }
        let t = tenancy::get_tenant(pool, id).await?;
        self.tenants.put(id, t.clone());
        Ok(t)
    }

    /// An active (not disabled) account of `tenant`.
    pub async fn active_account(&self, pool: &PgPool, tenant: Uuid, id: Uuid) -> sqlx::Result<Option<ChannelAccount>> {
        if let Some(a) = self.accounts.get(&(tenant, id)) {
            return Ok(a);
        }
        let a = tenancy::channel_account(pool, tenant, id).await?.filter(|a| a.disabled_at.is_none());
        self.accounts.put((tenant, id), a.clone());
        Ok(a)
    }

    /// The tenant's active account of a kind (Telegram and WhatsApp webhooks carry only the tenant).
    pub async fn active_account_of_kind(
        &self,
        pool: &PgPool,
        tenant: Uuid,
        kind: ChannelKind,
    ) -> sqlx::Result<Option<ChannelAccount>> {
        if let Some(a) = self.by_kind.get(&(tenant, kind)) {
            return Ok(a);
        }
        let a = tenancy::active_account_of_kind(pool, tenant, kind).await?;
        self.by_kind.put((tenant, kind), a.clone());
        Ok(a)
    }

    /// A decrypted secret of an account.
    pub async fn secret(
        &self,
        pool: &PgPool,
        keys: &Keyring,
        account: &ChannelAccount,
        what: &str,
    ) -> Result<String, crypto::SecretError> {
        let name = tenancy::secret_name(account.id, what);
        if let Some(v) = self.secrets.get(&(account.tenant_id, name.clone())) {
            return Ok(v);
        }
        let mut conn = pool.acquire().await?;
        let v = crypto::get(&mut conn, keys, Some(account.tenant_id), &name).await?;
        self.secrets.put((account.tenant_id, name), v.clone());
        Ok(v)
    }

    /// Drops this process's cached copy of a secret that was just replaced (other processes see
    /// the new value within [`TTL`]).
    pub fn forget_secret(&self, account: &ChannelAccount, what: &str) {
        self.secrets.remove(&(account.tenant_id, tenancy::secret_name(account.id, what)));
    }

    /// GREEN-API credentials of an account.
    pub async fn green_api(
        &self,
        pool: &PgPool,
        keys: &Keyring,
        account: &ChannelAccount,
    ) -> anyhow::Result<GreenApiCredentials> {
        let id_instance: u64 = account
            .config
            .get("id_instance")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("account {} has no id_instance", account.id))?;
        let api_url = account.config.get("api_url").and_then(|v| v.as_str()).map(str::to_string);
        let token = self.secret(pool, keys, account, "api_token").await?;
        Ok(GreenApiCredentials { api_url, id_instance, api_token: SecretString::from(token) })
    }
}

/// The channel clients, built once per process.
#[derive(Clone)]
pub struct Clients {
    pub green_api: crate::channels::green_api::GreenApiClient,
    pub telegram: crate::channels::telegram::TelegramClient,
    pub whatsapp: crate::channels::whatsapp::WhatsAppClient,
}

impl Clients {
    pub fn new(settings: &Settings, http: reqwest::Client) -> Self {
        Clients {
            green_api: crate::channels::green_api::GreenApiClient::new(http.clone(), settings.green_api_url.clone())
                .with_timeout(settings.channel_timeout),
            telegram: crate::channels::telegram::TelegramClient::new(http.clone(), settings.telegram_api_url.clone())
                .with_timeout(settings.channel_timeout),
            whatsapp: crate::channels::whatsapp::WhatsAppClient::new(http, settings.whatsapp_api_url.clone())
                .with_timeout(settings.channel_timeout),
        }
    }
}
