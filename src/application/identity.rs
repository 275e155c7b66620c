//! Customer identities: which customer and conversation a channel identity (a chat id on an
//! account's messenger, or an alias of one) belongs to.

use aisales_domain::conversation::ChannelKind;
use sqlx::PgPool;
use uuid::Uuid;

/// Customer and conversation of a channel identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub customer_id: Uuid,
    pub conversation_id: Uuid,
}

/// Identities this process resolved recently, per account. An identity never changes once created
/// (aliases are new identities), so a cached one is always right; the cache saves a query per
/// inbound message.
pub struct IdentityCache(quick_cache::sync::Cache<(Uuid, &'static str, Uuid, String), Identity>);

impl Default for IdentityCache {
    fn default() -> Self {
        IdentityCache(quick_cache::sync::Cache::new(50_000))
    }
}

impl IdentityCache {
    /// The identity cached for `external_id` on `account`, if any.
    pub fn cached(&self, tenant: Uuid, channel: ChannelKind, account: Uuid, external_id: &str) -> Option<Identity> {
        self.0.get(&(tenant, channel.as_str(), account, external_id.to_string()))
    }

    /// Forgets the identity cached for `external_id` on `account` (its customer was erased).
    pub fn forget(&self, tenant: Uuid, channel: ChannelKind, account: Uuid, external_id: &str) {
        self.0.remove(&(tenant, channel.as_str(), account, external_id.to_string()));
    }

    /// Caches an identity found another way (an alias).
    pub fn remember(&self, tenant: Uuid, channel: ChannelKind, account: Uuid, external_id: &str, identity: Identity) {
        self.0.insert((tenant, channel.as_str(), account, external_id.to_string()), identity);
    }

    /// [`resolve_identity`] through the cache.
    pub async fn resolve(
        &self,
        pool: &PgPool,
        tenant: Uuid,
        channel: ChannelKind,
        account: Uuid,
        external_id: &str,
    ) -> sqlx::Result<Identity> {
        let key = (tenant, channel.as_str(), account, external_id.to_string());
        if let Some(found) = self.0.get(&key) {
            return Ok(found);
        }
        let identity = resolve_identity(pool, tenant, channel, account, external_id).await?;
        self.0.insert(key, identity);
        Ok(identity)
    }
}

/// The key of a person's identity on a second account of the same channel (a second bot or number
/// of the tenant): `<external id>#<account id>`. The first account that met the person keeps the
/// plain external id, so identities made before accounts were told apart stay as they are.
fn account_scoped(external_id: &str, account: Uuid) -> String {
    format!("{external_id}#{account}")
}

/// Finds or creates the customer and conversation of `external_id` on `account`.
///
/// One person is one customer per tenant and channel, and has one conversation per account: a
/// customer who writes to two numbers or bots of the shop gets a conversation on each, so that
/// every reply goes out from the account the customer wrote to, and message ids (which providers
/// make unique per account only) are never mistaken for each other's duplicates.
/// Concurrent first messages of the same person agree on one pair (the primary key decides).
pub async fn resolve_identity(
    pool: &PgPool,
    tenant: Uuid,
    channel: ChannelKind,
    account: Uuid,
    external_id: &str,
) -> sqlx::Result<Identity> {
    let (first, first_account) = find_or_insert(pool, tenant, channel, external_id, account, Uuid::now_v7()).await?;
    if first_account == account {
        return Ok(first);
    }
    let (scoped, _) =
        find_or_insert(pool, tenant, channel, &account_scoped(external_id, account), account, first.customer_id)
            .await?;
    Ok(scoped)
}

/// The identity stored under `key`, inserting one for `account` and `customer` (with a new
/// conversation) when there is none; with the account the stored identity belongs to.
async fn find_or_insert(
    pool: &PgPool,
    tenant: Uuid,
    channel: ChannelKind,
    key: &str,
    account: Uuid,
    customer: Uuid,
) -> sqlx::Result<(Identity, Uuid)> {
    let row: Option<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "WITH ins AS ( \
           INSERT INTO channel_identities (tenant_id, channel, external_id, customer_id, conversation_id, account_id) \
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING customer_id, conversation_id, account_id) \
         SELECT customer_id, conversation_id, account_id FROM ins \
         UNION ALL \
         SELECT customer_id, conversation_id, account_id FROM channel_identities \
          WHERE tenant_id = $1 AND channel = $2 AND external_id = $3 \
         LIMIT 1",
    )
    .bind(tenant)
    .bind(channel.as_str())
    .bind(key)
    .bind(customer)
    .bind(Uuid::now_v7())
    .bind(account)
    .fetch_optional(pool)
    .await?;
    // `None`: a concurrent insert of the same identity committed after this statement's snapshot.
    let (customer_id, conversation_id, owner) = match row {
        Some(row) => row,
        None => {
            sqlx::query_as(
                "SELECT customer_id, conversation_id, account_id FROM channel_identities \
                  WHERE tenant_id = $1 AND channel = $2 AND external_id = $3",
            )
            .bind(tenant)
            .bind(channel.as_str())
            .bind(key)
            .fetch_one(pool)
            .await?
        }
    };
    Ok((Identity { customer_id, conversation_id }, owner))
}

/// The identity of `(tenant, channel, external_id)` if it is known (aliases included).
pub async fn find_identity(
    pool: &PgPool,
    tenant: Uuid,
    channel: ChannelKind,
    external_id: &str,
) -> sqlx::Result<Option<Identity>> {
    let row: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT customer_id, conversation_id FROM channel_identities WHERE tenant_id = $1 AND channel = $2 AND external_id = $3",
    )
    .bind(tenant)
    .bind(channel.as_str())
    .bind(external_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(customer_id, conversation_id)| Identity { customer_id, conversation_id }))
}

/// Records `alias` as another id of the identity of `conversation` (idempotent).
pub async fn add_alias(
    pool: &PgPool,
    tenant: Uuid,
    channel: ChannelKind,
    account: Uuid,
    alias: &str,
    identity: Identity,
    alias_of: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "INSERT INTO channel_identities (tenant_id, channel, external_id, customer_id, conversation_id, account_id, alias_of) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(channel.as_str())
    .bind(alias)
    .bind(identity.customer_id)
    .bind(identity.conversation_id)
    .bind(account)
    .bind(alias_of)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}
