//! Messenger accounts of the caller's tenant (HTTP): list, show, add, disable, register the
//! webhook again. Tokens are only ever shown masked.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;

use super::paging::Items;
use crate::application::channels::{self as commands, AccountView, NewAccount, view};
use crate::auth::Caller;
use crate::http::{ApiError, ApiJson, AppState};
use crate::tenancy;

/// `POST /api/channels/{id}/webhook`: points the provider at the account's webhook again with a
/// fresh credential (see [`commands::register_webhook`]).
pub async fn register_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(commands::register_webhook(&state, caller.tenant_id, id).await?))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Items<AccountView>>, ApiError> {
    let mut items = Vec::new();
    for a in tenancy::list_channel_accounts(&state.pool, caller.tenant_id).await? {
        items.push(view(&state, a).await?);
    }
    Ok(Json(Items { items }))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<AccountView>, ApiError> {
    let a = tenancy::channel_account(&state.pool, caller.tenant_id, id)
        .await?
        .ok_or(ApiError::NotFound("channel account"))?;
    Ok(Json(view(&state, a).await?))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    Ok((StatusCode::CREATED, Json(commands::add_account(&state, caller.tenant_id, body).await?)))
}

pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    if tenancy::disable_channel_account(&state.pool, caller.tenant_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("channel account"))
    }
}
