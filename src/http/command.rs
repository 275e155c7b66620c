//! The metadata of a command sent through HTTP: the authenticated caller as actor, the request's
//! ids, and the correlation id the client sends (`X-Correlation-Id`) or a new one.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::auth::Caller;
use crate::http::ApiError;
use crate::store::EventMetadata;

/// Extracts the [`EventMetadata`] of a command from the request.
pub struct CommandMeta(pub EventMetadata);

impl<S: Send + Sync> FromRequestParts<S> for CommandMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok(CommandMeta(EventMetadata {
            tenant_id: Some(caller.tenant_id),
            actor: caller.actor.metadata_value(),
            correlation_id: header("x-correlation-id").and_then(|v| v.parse().ok()).unwrap_or_else(Uuid::now_v7),
            causation_id: None,
            request_id: header("x-request-id"),
            occurred_at: chrono::Utc::now(),
        }))
    }
}
