//! A customer's data: the whole record for a data request (`GET /api/customers/{id}/export`), its
//! erasure (`DELETE /api/customers/{id}`), and the erasure of a lead that never reached a customer
//! (`DELETE /api/leads/{id}`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use uuid::Uuid;

use aisales_domain::pii::ErasureCause;

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

/// Projectors whose rows hold customer data: the erasure answers once they applied it, so the
/// dashboard and the API show `[erased]` from the answer on.
const SCRUBBING_PROJECTORS: &[&str] =
    &["conversations", "messages", "suggestions", "escalations", "customers", "leads"];

/// How long the erasure waits for the read models before answering (they finish on their own).
const SCRUB_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Erases the customer ([`crate::privacy::erase`]): their keys are destroyed, every customer-data
/// field reads `[erased]`, and what names them outside the events is deleted. Repeating it is
/// harmless (`already_erased`).
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let actor = caller.actor.metadata_value();
    let erasure = crate::privacy::erase::erase_customer(&state, caller.tenant_id, id, &actor, ErasureCause::Request)
        .await
        .map_err(ApiError::Unexpected)?
        .ok_or(ApiError::NotFound("customer"))?;
    // The erasure is done; read models lagging behind it finish on their own.
    let scrubbed = match erasure.position.as_deref().and_then(|p| p.parse().ok()) {
        Some(p) => {
            crate::application::consistency::wait_for(&state.pool, SCRUBBING_PROJECTORS, p, SCRUB_WAIT).await.is_ok()
        }
        None => true,
    };
    let mut body = serde_json::to_value(&erasure).map_err(|e| ApiError::Unexpected(e.into()))?;
    body["read_models_scrubbed"] = scrubbed.into();
    Ok(Json(body))
}

/// Erases a lead that never reached a customer ([`crate::privacy::erase::erase_lead`]). A lead that
/// reached one is part of that customer's record: 409, naming the customer to erase instead.
pub async fn erase_lead(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    use crate::privacy::erase::LeadNotErased;
    let actor = caller.actor.metadata_value();
    let erasure = match crate::privacy::erase::erase_lead(&state, caller.tenant_id, id, &actor, ErasureCause::Request)
        .await
        .map_err(ApiError::Unexpected)?
    {
        Ok(e) => e,
        Err(LeadNotErased::NotFound) => return Err(ApiError::NotFound("lead")),
        Err(LeadNotErased::OutreachUnderWay) => {
            return Err(ApiError::Conflict(format!(
                "the outreach to lead {id} is under way; erase it once it has ended (it may reach a customer)"
            )));
        }
        Err(LeadNotErased::ReachedCustomer(customer)) => {
            return Err(ApiError::Conflict(format!(
                "lead {id} reached customer {customer}: it is erased with the customer (DELETE /api/customers/{customer})"
            )));
        }
    };
    let scrubbed = match erasure.position.as_deref().and_then(|p| p.parse().ok()) {
        Some(p) => crate::application::consistency::wait_for(&state.pool, &["leads"], p, SCRUB_WAIT).await.is_ok(),
        None => true,
    };
    let mut body = serde_json::to_value(&erasure).map_err(|e| ApiError::Unexpected(e.into()))?;
    body["read_models_scrubbed"] = scrubbed.into();
    Ok(Json(body))
}
