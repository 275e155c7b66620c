//! The caller's tenant and its settings.

use axum::Json;
use axum::extract::State;

use crate::auth::Caller;
use crate::http::{ApiError, ApiJson, AppState};
use crate::tenancy::{self, Tenant, TenantPatch, TenantPatchError};

pub async fn show(State(state): State<AppState>, caller: Caller) -> Result<Json<Tenant>, ApiError> {
    tenancy::get_tenant(&state.pool, caller.tenant_id).await?.map(Json).ok_or(ApiError::NotFound("tenant"))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(patch): ApiJson<TenantPatch>,
) -> Result<Json<Tenant>, ApiError> {
    let mut tx = state.pool.begin().await?;
    match tenancy::update_tenant(&mut tx, caller.tenant_id, patch).await {
        Ok(Some(t)) => {
            tx.commit().await?;
            Ok(Json(t))
        }
        Ok(None) => Err(ApiError::NotFound("tenant")),
        Err(TenantPatchError::Invalid(m)) => Err(ApiError::invalid("invalid_settings", m)),
        Err(TenantPatchError::Database(e)) => Err(e.into()),
    }
}
