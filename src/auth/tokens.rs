//! API tokens: `aisk_` + 40 random characters, stored only as SHA-256, shown once, revocable.
//!
//! The fixed prefix makes a leaked token easy to recognise (secret scanners, log masking); the
//! stored `prefix` (the first 12 characters) lets an operator tell tokens apart without the secret.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Actor, AuthMethod, Caller, Role};

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "aisk_";

/// A token just created: the only time its plain value exists.
#[derive(Debug, Serialize)]
pub struct NewToken {
    pub id: Uuid,
    pub token: String,
    pub prefix: String,
}

/// A stored token as listed (never the secret).
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates a token for `tenant` with `role`.
pub async fn create(
    conn: &mut PgConnection,
    tenant: Uuid,
    name: &str,
    role: Role,
    created_by: &str,
) -> sqlx::Result<NewToken> {
    let token = format!("{TOKEN_PREFIX}{}", crate::config::random_token(40));
    let prefix: String = token.chars().take(12).collect();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO api_tokens (id, tenant_id, name, role, prefix, token_hash, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(tenant)
    .bind(name)
    .bind(role.as_str())
    .bind(&prefix)
    .bind(hash(&token))
    .bind(created_by)
    .execute(conn)
    .await?;
    Ok(NewToken { id, token, prefix })
}

/// The caller a bearer token stands for, if it is valid and not revoked.
pub async fn authenticate(pool: &PgPool, token: &str) -> sqlx::Result<Option<Caller>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let row: Option<(Uuid, Uuid, String, bool)> = sqlx::query_as(
        "SELECT t.id, t.tenant_id, t.role, \
                (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute') AS stale \
           FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id \
          WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
    )
    .bind(hash(token))
    .fetch_optional(pool)
    .await?;
    let Some((id, tenant_id, role, stale)) = row else { return Ok(None) };
    if stale {
        // last_used_at is kept to the minute: one write per token per minute at most.
        let pool = pool.clone();
        tokio::spawn(async move {
            let _ =
                sqlx::query("UPDATE api_tokens SET last_used_at = now() WHERE id = $1").bind(id).execute(&pool).await;
        });
    }
    let Ok(role) = role.parse::<Role>() else { return Ok(None) };
    Ok(Some(Caller {
        tenant_id,
        role,
        actor: Actor::Token(id),
        method: AuthMethod::Token,
        must_change_password: false,
    }))
}

pub async fn list(conn: &mut PgConnection, tenant: Uuid) -> sqlx::Result<Vec<TokenInfo>> {
    sqlx::query_as(
        "SELECT id, name, role, prefix, created_by, created_at, last_used_at, revoked_at FROM api_tokens \
          WHERE tenant_id = $1 ORDER BY created_at",
    )
    .bind(tenant)
    .fetch_all(conn)
    .await
}

/// Revokes a token of `tenant`; false when there is no such (unrevoked) token in that tenant.
pub async fn revoke(conn: &mut PgConnection, tenant: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let r =
        sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL")
            .bind(id)
            .bind(tenant)
            .execute(conn)
            .await?;
    Ok(r.rows_affected() == 1)
}
