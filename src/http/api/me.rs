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
    // Counted like a login before it is verified: a stolen session cannot guess the password
    // faster than the login form, and a locked account cannot change it.
    let limits = &state.settings.limits;
    let counted = crate::auth::attempts::count(&state.pool, limits, crate::auth::attempts::Account::User(user_id))
        .await?
        .filter(|c| c.tenant_id == caller.tenant_id)
        .ok_or_else(|| {
            ApiError::invalid_with_status(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many wrong passwords; the account is locked for a while",
            )
        })?;
    let ok =
        crate::http::auth_routes::verify_or_busy(limits, body.current_password.clone(), counted.password_hash).await?;
    if !ok {
        return Err(ApiError::invalid_with_status(
            axum::http::StatusCode::FORBIDDEN,
            "wrong_password",
            "the current password is wrong",
        ));
    }
    let hash = crate::auth::attempts::hash(limits, body.new_password)
        .await
        .map_err(|e| if e.is::<crate::auth::attempts::Busy>() { ApiError::Busy } else { ApiError::Unexpected(e) })?;
    let mut tx = state.pool.begin().await?;
    crate::auth::attempts::succeeded(&mut tx, user_id).await?;
    sqlx::query("UPDATE users SET password_hash = $2, must_change_password = false, updated_at = now() WHERE id = $1")
        .bind(user_id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    sessions::revoke_all_of(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(Json(PasswordChanged { changed: true, sessions_ended: true }))
}
