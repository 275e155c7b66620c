//! Application services around the `Conversation` aggregate: tenant-checked command execution,
//! the customer identity index, and read-your-writes.

use std::time::{Duration, Instant};

use aisales_domain::conversation::{ChannelKind, Conversation, ConversationCommand, ConversationError};
use aisales_projections::Position;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Caller;
use crate::http::{ApiError, AppState};
use crate::store::{CommandError, EventMetadata, Outcome};

/// The tenant a conversation belongs to (from its first event), or `None` when it does not exist.
pub async fn tenant_of(pool: &PgPool, conversation: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT tenant_id FROM events WHERE aggregate_type = 'conversation' AND aggregate_id = $1 AND sequence = 1",
    )
    .bind(conversation.to_string())
    .fetch_optional(pool)
    .await
    .map(Option::flatten)
}

/// Maps a refused conversation command to the API's error shape.
pub fn api_error(e: CommandError<ConversationError>) -> ApiError {
    use ConversationError as C;
    match e {
        CommandError::Rejected(C::NotFound) => ApiError::NotFound("conversation"),
        CommandError::Rejected(C::SuggestionNotFound) => ApiError::NotFound("suggestion"),
        CommandError::Rejected(C::ReplyNotFound) => ApiError::NotFound("reply"),
        CommandError::Rejected(e @ (C::EmptyText | C::TextTooLong)) => ApiError::invalid("invalid_text", e.to_string()),
        CommandError::Rejected(e) => ApiError::Conflict(e.to_string()),
        CommandError::Conflict => {
            ApiError::Conflict("the conversation is being changed by someone else; try again".into())
        }
        CommandError::Store(e) => ApiError::Unexpected(anyhow::Error::new(e)),
    }
}

/// Metadata of a command sent through the API: the caller as actor, the request's ids.
pub struct CommandMeta(pub EventMetadata);

impl<S: Send + Sync> FromRequestParts<S> for CommandMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok(CommandMeta(EventMetadata {
            tenant_id: Some(caller.tenant_id),
            actor: caller.actor.metadata_value(),
            correlation_id: header("x-correlation-id").and_then(|v| v.parse().ok()).unwrap_or_else(Uuid::now_v7),
            causation_id: None,
            request_id: header("x-request-id"),
            occurred_at: chrono::Utc::now(),
        }))
    }
}

/// Runs a command on a conversation of the caller's tenant (another tenant's id is "not found").
pub async fn execute(
    state: &AppState,
    tenant: Uuid,
    conversation: Uuid,
    command: ConversationCommand,
    meta: &EventMetadata,
) -> Result<Outcome<Conversation>, ApiError> {
    if tenant_of(&state.pool, conversation).await? != Some(tenant) {
        return Err(ApiError::NotFound("conversation"));
    }
    state.store.execute::<Conversation>(&conversation.to_string(), command, &(), meta).await.map_err(api_error)
}

/// The position a command produced, for `X-Position` and read-your-writes.
pub fn position_of(outcome: &Outcome<Conversation>) -> Option<String> {
    outcome.committed.map(|c| c.position.to_string())
}

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

/// Waits until every projector in `projectors` has applied `position` (bounded by `timeout`).
pub async fn wait_for(
    pool: &PgPool,
    projectors: &[&str],
    position: Position,
    timeout: Duration,
) -> Result<(), ApiError> {
    let started = Instant::now();
    loop {
        let lagging: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::text[]) AS p(name) \
             LEFT JOIN projector_checkpoints c ON c.name = p.name \
             WHERE c.name IS NULL OR (c.tx_id::text::bigint, c.position) < ($2, $3)",
        )
        .bind(projectors)
        .bind(position.tx_id)
        .bind(position.global_position)
        .fetch_one(pool)
        .await?;
        if lagging == 0 {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(ApiError::invalid_with_status(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "projection_lagging",
                format!("the read model has not reached position {position} yet; retry shortly"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
