//! A customer's data: the whole record for a data request (`GET /api/customers/{id}/export`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use uuid::Uuid;

use crate::auth::Caller;
use crate::http::{ApiError, AppState};

/// Everything held about the customer ([`crate::privacy::export`]), as a JSON attachment.
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let document = crate::privacy::export::customer_export(&state.pool, caller.tenant_id, id, chrono::Utc::now())
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    let disposition = format!("attachment; filename=\"customer-{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(document)))
}
