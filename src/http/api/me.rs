//! The caller itself: who am I, and replacing a one-time password.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Actor, Caller, passwords, sessions};
use crate::http::{ApiError, ApiJson, AppState};

/// The caller's tenant as `/api/me` shows it.
#[derive(Debug, Serialize)]
pub struct TenantRef {
    pub id: Uuid,
    pub name: String,
    pub timezone: String,
}

/// Who the caller is.
#[derive(Debug, Serialize)]
pub struct Me {
    pub tenant: TenantRef,
    pub role: crate::auth::Role,
    pub actor: Actor,
    pub auth: crate::auth::AuthMethod,
    pub user: Option<crate::tenancy::User>,
    pub must_change_password: bool,
}

pub async fn show(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let tenant = crate::tenancy::get_tenant(&state.pool, caller.tenant_id).await?.ok_or(ApiError::Unauthorized)?;
    let user = match caller.actor {
        Actor::User(id) => crate::tenancy::get_user(&state.pool, caller.tenant_id, id).await?,
        Actor::Token(_) => None,
    };
    Ok(Json(Me {
        tenant: TenantRef { id: tenant.id, name: tenant.name, timezone: tenant.timezone },
        role: caller.role,
        actor: caller.actor,
        auth: caller.method,
        user,
        must_change_password: caller.must_change_password,
    }))
}

#[derive(Deserialize)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// A password change done.
#[derive(Debug, Serialize)]
pub struct PasswordChanged {
    pub changed: bool,
    pub sessions_ended: bool,
}

/// Replaces the caller's password; ends every other session of the user.
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<Json<PasswordChanged>, ApiError> {
    let Actor::User(user_id) = caller.actor else {
        return Err(ApiError::Forbidden("API tokens have no password".into()));
    };
    passwords::check_policy(&body.new_password).map_err(|m| ApiError::invalid("weak_password", m))?;
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1 AND tenant_id = $2")
        .bind(user_id)
        .bind(caller.tenant_id)
        .fetch_one(&state.pool)
        .await?;
    let current = body.current_password.clone();
    let ok = tokio::task::spawn_blocking(move || passwords::verify(&current, &stored))
        .await
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    if !ok {
        return Err(ApiError::invalid_with_status(
            axum::http::StatusCode::FORBIDDEN,
            "wrong_password",
            "the current password is wrong",
        ));
    }
    let new = body.new_password;
    let hash =
        tokio::task::spawn_blocking(move || passwords::hash(&new)).await.map_err(|e| ApiError::Unexpected(e.into()))?;
    let mut tx = state.pool.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $2, must_change_password = false, updated_at = now() WHERE id = $1")
        .bind(user_id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    sessions::revoke_all_of(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(Json(PasswordChanged { changed: true, sessions_ended: true }))
}
