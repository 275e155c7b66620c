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

/// Identities this process resolved recently. An identity never changes once created (aliases are
/// new identities), so a cached one is always right; the cache saves a query per inbound message.
pub struct IdentityCache(quick_cache::sync::Cache<(Uuid, &'static str, String), Identity>);

impl Default for IdentityCache {
    fn default() -> Self {
        IdentityCache(quick_cache::sync::Cache::new(50_000))
    }
}

impl IdentityCache {
    /// [`resolve_identity`] through the cache.
    pub async fn resolve(
        &self,
        pool: &PgPool,
        tenant: Uuid,
        channel: ChannelKind,
        account: Uuid,
        external_id: &str,
    ) -> sqlx::Result<Identity> {
        let key = (tenant, channel.as_str(), external_id.to_string());
        if let Some(found) = self.0.get(&key) {
            return Ok(found);
        }
        let identity = resolve_identity(pool, tenant, channel, account, external_id).await?;
        self.0.insert(key, identity);
        Ok(identity)
    }
}

/// Finds or creates the one customer and conversation of `(tenant, channel, external_id)`.
/// Concurrent first messages of the same person agree on one pair (the primary key decides).
pub async fn resolve_identity(
    pool: &PgPool,
    tenant: Uuid,
    channel: ChannelKind,
    account: Uuid,
    external_id: &str,
) -> sqlx::Result<Identity> {
    let row: Option<(Uuid, Uuid)> = sqlx::query_as(
        "WITH ins AS ( \
           INSERT INTO channel_identities (tenant_id, channel, external_id, customer_id, conversation_id, account_id) \
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING customer_id, conversation_id) \
         SELECT customer_id, conversation_id FROM ins \
         UNION ALL \
         SELECT customer_id, conversation_id FROM channel_identities WHERE tenant_id = $1 AND channel = $2 AND external_id = $3 \
         LIMIT 1",
    )
    .bind(tenant)
    .bind(channel.as_str())
    .bind(external_id)
    .bind(Uuid::now_v7())
    .bind(Uuid::now_v7())
    .bind(account)
    .fetch_optional(pool)
    .await?;
    if let Some((customer_id, conversation_id)) = row {
        return Ok(Identity { customer_id, conversation_id });
    }
    // A concurrent insert of the same identity committed after this statement's snapshot.
    let (customer_id, conversation_id): (Uuid, Uuid) = sqlx::query_as(
        "SELECT customer_id, conversation_id FROM channel_identities WHERE tenant_id = $1 AND channel = $2 AND external_id = $3",
    )
    .bind(tenant)
    .bind(channel.as_str())
    .bind(external_id)
    .fetch_one(pool)
    .await?;
    Ok(Identity { customer_id, conversation_id })
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
