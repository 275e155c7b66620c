//! API tokens of the caller's tenant: created (shown once), listed (masked), revoked.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::paging::Items;
use crate::auth::{Caller, Role, tokens};
use crate::http::{ApiError, ApiJson, AppState};

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Items<tokens::TokenInfo>>, ApiError> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(Items { items: tokens::list(&mut conn, caller.tenant_id).await? }))
}

/// A new token: its secret is shown this once.
#[derive(Debug, Serialize)]
pub struct Created {
    pub id: Uuid,
    pub api_token: String,
    pub prefix: String,
    pub role: Role,
    pub name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    role: String,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let role: Role =
        body.role.parse().map_err(|e: crate::auth::UnknownRole| ApiError::invalid("invalid_role", e.to_string()))?;
    if role == Role::Owner && caller.role != Role::Owner {
        return Err(ApiError::Forbidden("only an owner can create owner tokens".into()));
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("invalid_name", "a token name has 1 to 100 characters"));
    }
    let mut conn = state.pool.acquire().await?;
    let t = tokens::create(&mut conn, caller.tenant_id, name, role, &caller.actor.metadata_value()).await?;
    let created = Created { id: t.id, api_token: t.token, prefix: t.prefix, role, name: name.to_string() };
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut conn = state.pool.acquire().await?;
    if tokens::revoke(&mut conn, caller.tenant_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("token"))
    }
}
