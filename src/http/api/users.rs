//! Dashboard users of the caller's tenant.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::paging::Items;
use crate::auth::{Actor, Caller, Role, sessions};
use crate::http::{ApiError, ApiJson, AppState};
use crate::tenancy::{self, User};

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Items<User>>, ApiError> {
    Ok(Json(Items { items: tenancy::list_users(&state.pool, caller.tenant_id).await? }))
}

pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> Result<Json<User>, ApiError> {
    tenancy::get_user(&state.pool, caller.tenant_id, id).await?.map(Json).ok_or(ApiError::NotFound("user"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    email: String,
    role: String,
}

/// A new user and their one-time password (shown this once).
#[derive(Debug, Serialize)]
pub struct Created {
    pub user: User,
    pub one_time_password: String,
}

/// Creates a user with a one-time password, returned once.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let role: Role =
        body.role.parse().map_err(|e: crate::auth::UnknownRole| ApiError::invalid("invalid_role", e.to_string()))?;
    let (user, one_time_password) =
        crate::application::users::add_user(&state.pool, caller.tenant_id, &body.email, role).await?;
    Ok((StatusCode::CREATED, Json(Created { user, one_time_password })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    role: Option<String>,
    disabled: Option<bool>,
}

/// Changes a user's role or disables/enables them. Ends their sessions; the last owner stays.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<User>, ApiError> {
    let mut tx = state.pool.begin().await?;
    // Changes to the users of one tenant are serialised on the tenant's row: two owners demoting
    // each other at once must not both see the other still an owner.
    sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE").bind(caller.tenant_id).execute(&mut *tx).await?;
    let current: Option<String> =
        sqlx::query_scalar("SELECT role FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
            .bind(caller.tenant_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let current = current.ok_or(ApiError::NotFound("user"))?;
    let new_role = match &body.role {
        Some(r) => Some(r.parse::<Role>().map_err(|e| ApiError::invalid("invalid_role", e.to_string()))?),
        None => None,
    };
    let demoting_owner =
        current == "owner" && (new_role.is_some_and(|r| r != Role::Owner) || body.disabled == Some(true));
    if demoting_owner {
        let owners: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'owner' AND disabled_at IS NULL",
        )
        .bind(caller.tenant_id)
        .fetch_one(&mut *tx)
        .await?;
        if owners <= 1 {
            return Err(ApiError::Conflict("the tenant must keep at least one active owner".into()));
        }
    }
    if caller.actor == Actor::User(id) && body.disabled == Some(true) {
        return Err(ApiError::Conflict("you cannot disable yourself".into()));
    }
    sqlx::query(
        "UPDATE users SET role = COALESCE($3, role), \
           disabled_at = CASE WHEN $4::boolean IS NULL THEN disabled_at WHEN $4 THEN COALESCE(disabled_at, now()) ELSE NULL END, \
           updated_at = now() WHERE tenant_id = $1 AND id = $2",
    )
    .bind(caller.tenant_id)
    .bind(id)
    .bind(new_role.map(Role::as_str))
    .bind(body.disabled)
    .execute(&mut *tx)
    .await?;
    sessions::revoke_all_of(&mut tx, id).await?;
    tx.commit().await?;
    tenancy::get_user(&state.pool, caller.tenant_id, id).await?.map(Json).ok_or(ApiError::NotFound("user"))
}
