//! Channel accounts and their decrypted credentials, cached briefly in the process so that a
//! webhook burst does not decrypt the same token thousands of times. A change (new token, disabled
//! account) is seen within [`TTL`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use aisales_domain::conversation::ChannelKind;
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;

use crate::channels::green_api::GreenApiCredentials;
use crate::config::Settings;
use crate::crypto::{self, Keyring};
use crate::tenancy::{self, ChannelAccount};

/// How long a cached account or secret is used before it is read again.
pub const TTL: Duration = Duration::from_secs(10);

/// A small time-bounded cache.
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        TtlCache { entries: Mutex::new(HashMap::new()), capacity }
    }

    pub fn get(&self, k: &K) -> Option<V> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(k).filter(|(at, _)| at.elapsed() < TTL).map(|(_, v)| v.clone())
    }

    pub fn remove(&self, k: &K) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(k);
    }

    pub fn put(&self, k: K, v: V) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity {
            map.retain(|_, (at, _)| at.elapsed() < TTL);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(k, (Instant::now(), v));
    }
}

static ACCOUNTS: LazyLock<TtlCache<(Uuid, Uuid), Option<ChannelAccount>>> = LazyLock::new(|| TtlCache::new(10_000));
static SECRETS: LazyLock<TtlCache<(Uuid, String), String>> = LazyLock::new(|| TtlCache::new(10_000));
static BY_KIND: LazyLock<TtlCache<(Uuid, ChannelKind), Option<ChannelAccount>>> =
    LazyLock::new(|| TtlCache::new(10_000));

/// An active (not disabled) account of `tenant`.
pub async fn active(pool: &PgPool, tenant: Uuid, id: Uuid) -> sqlx::Result<Option<ChannelAccount>> {
    if let Some(a) = ACCOUNTS.get(&(tenant, id)) {
        return Ok(a);
    }
    let a = tenancy::channel_account(pool, tenant, id).await?.filter(|a| a.disabled_at.is_none());
    ACCOUNTS.put((tenant, id), a.clone());
    Ok(a)
}

/// The tenant's active account of a kind (Telegram and WhatsApp webhooks carry only the tenant).
pub async fn active_of_kind(pool: &PgPool, tenant: Uuid, kind: ChannelKind) -> sqlx::Result<Option<ChannelAccount>> {
    if let Some(a) = BY_KIND.get(&(tenant, kind)) {
        return Ok(a);
    }
    let a = tenancy::active_account_of_kind(pool, tenant, kind).await?;
    BY_KIND.put((tenant, kind), a.clone());
    Ok(a)
}

/// A decrypted secret of an account.
pub async fn secret(
    pool: &PgPool,
    keys: &Keyring,
    account: &ChannelAccount,
    what: &str,
) -> Result<String, crypto::SecretError> {
    let name = tenancy::secret_name(account.id, what);
    if let Some(v) = SECRETS.get(&(account.tenant_id, name.clone())) {
        return Ok(v);
    }
    let mut conn = pool.acquire().await?;
    let v = crypto::get(&mut conn, keys, Some(account.tenant_id), &name).await?;
    SECRETS.put((account.tenant_id, name), v.clone());
    Ok(v)
}

/// Drops this process's cached copy of a secret that was just replaced (other processes see the
/// new value within [`TTL`]).
pub fn forget_secret(account: &ChannelAccount, what: &str) {
    SECRETS.remove(&(account.tenant_id, tenancy::secret_name(account.id, what)));
}

/// GREEN-API credentials of an account.
pub async fn green_api(pool: &PgPool, keys: &Keyring, account: &ChannelAccount) -> anyhow::Result<GreenApiCredentials> {
    let id_instance: u64 = account
        .config
        .get("id_instance")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("account {} has no id_instance", account.id))?;
    let api_url = account.config.get("api_url").and_then(|v| v.as_str()).map(str::to_string);
    let token = secret(pool, keys, account, "api_token").await?;
    Ok(GreenApiCredentials { api_url, id_instance, api_token: SecretString::from(token) })
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
