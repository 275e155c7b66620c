//! Dashboard sessions: a random id in an HttpOnly cookie, signed with `SESSION_SECRET`; only the
//! id's SHA-256 is stored, with the session's CSRF token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Actor, AuthMethod, Caller, Role};

/// Name of the session cookie.
pub const COOKIE: &str = "aisales_session";
/// The session cookie's name over HTTPS (see `Settings::session_cookie`).
pub const HOST_COOKIE: &str = "__Host-aisales_session";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], id: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"aisales-session:");
    m.update(id);
    m.finalize().into_bytes().to_vec()
}

/// The cookie value for session `id`: `base64(id).base64(hmac)`.
pub fn sign(secret: &[u8], id: &[u8; 32]) -> String {
    format!("{}.{}", B64.encode(id), B64.encode(mac(secret, id)))
}

/// The session id of a cookie value, if its signature is valid.
pub fn verify(secret: &[u8], value: &str) -> Option<[u8; 32]> {
    let (id, sig) = value.split_once('.')?;
    let id: [u8; 32] = B64.decode(id).ok()?.try_into().ok()?;
    let sig = B64.decode(sig).ok()?;
    let mut m = HmacSha256::new_from_slice(secret).ok()?;
    m.update(b"aisales-session:");
    m.update(&id);
    m.verify_slice(&sig).ok()?;
    Some(id)
}

fn id_hash(id: &[u8; 32]) -> Vec<u8> {
    Sha256::digest(id).to_vec()
}

/// A session just opened.
pub struct NewSession {
    pub cookie_value: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(
    conn: &mut PgConnection,
    secret: &[u8],
    user: Uuid,
    tenant: Uuid,
    ttl: chrono::Duration,
) -> sqlx::Result<NewSession> {
    let mut id = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut id);
    let csrf_token = crate::config::random_token(43);
    let expires_at = Utc::now() + ttl;
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, tenant_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash(&id))
    .bind(user)
    .bind(tenant)
    .bind(&csrf_token)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(NewSession { cookie_value: sign(secret, &id), csrf_token, expires_at })
}

/// A live session: its caller and its CSRF token.
pub struct LiveSession {
    pub caller: Caller,
    pub csrf_token: String,
}

pub async fn lookup(pool: &PgPool, id: &[u8; 32]) -> sqlx::Result<Option<LiveSession>> {
    let row: Option<(Uuid, Uuid, String, String, bool)> = sqlx::query_as(
        "SELECT s.user_id, s.tenant_id, u.role, s.csrf_token, u.must_change_password \
           FROM sessions s JOIN users u ON u.id = s.user_id \
          WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL",
    )
    .bind(id_hash(id))
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(user, tenant_id, role, csrf_token, must_change_password)| {
        Some(LiveSession {
            caller: Caller {
                tenant_id,
                role: role.parse::<Role>().ok()?,
                actor: Actor::User(user),
                method: AuthMethod::Session,
                must_change_password,
            },
            csrf_token,
        })
    }))
}

pub async fn revoke(pool: &PgPool, id: &[u8; 32]) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id_hash = $1").bind(id_hash(id)).execute(pool).await?;
    Ok(())
}

/// Ends every session of a user (password change, role change, disable).
pub async fn revoke_all_of(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_cookies_verify_and_tampering_fails() {
        let id = [5u8; 32];
        let v = sign(b"secret-one-secret-one-secret-one", &id);
        assert_eq!(verify(b"secret-one-secret-one-secret-one", &v), Some(id));
        assert_eq!(verify(b"another-secret-another-secret-xx", &v), None);
        let mut bad = v.clone();
        bad.replace_range(0..1, if v.starts_with('A') { "B" } else { "A" });
        assert_eq!(verify(b"secret-one-secret-one-secret-one", &bad), None);
        assert_eq!(verify(b"secret-one-secret-one-secret-one", "garbage"), None);
    }
}
