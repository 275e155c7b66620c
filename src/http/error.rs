//! The one error type of the HTTP API: `{"error": {"code": "snake_case", "message": "one sentence"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything an API handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Coded { status: StatusCode, code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("too many requests; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Every password-hashing permit of the process is taken (see `auth::attempts`).
    #[error("too many password checks at once; retry in a moment")]
    Busy,
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Coded { status, .. } => *status,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Coded { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Busy => "busy",
            ApiError::Unexpected(_) => "internal_error",
        }
    }

    /// A 400 with a specific error code.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Coded { status: StatusCode::BAD_REQUEST, code, message: message.into() }
    }

    /// Any status with a specific error code.
    pub fn invalid_with_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Coded { status, code, message: message.into() }
    }
}

impl From<crate::infra::ratelimit::Limited> for ApiError {
    fn from(l: crate::infra::ratelimit::Limited) -> Self {
        ApiError::RateLimited { retry_after_s: l.retry_after_s }
    }
}

impl From<crate::application::CommandError> for ApiError {
    fn from(e: crate::application::CommandError) -> Self {
        use crate::application::CommandError as C;
        match e {
            C::NotFound(what) => ApiError::NotFound(what),
            C::Invalid { code, message } => ApiError::invalid(code, message),
            C::Conflict(m) => ApiError::Conflict(m),
            C::Forbidden(m) => ApiError::Forbidden(m),
            e @ C::Lagging { .. } => {
                ApiError::invalid_with_status(StatusCode::SERVICE_UNAVAILABLE, "projection_lagging", e.to_string())
            }
            C::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Unexpected(anyhow::Error::new(e))
    }
}

/// Whether a failure is the database being out of reach (restarting, failing over, pool
/// exhausted) rather than a fault of the request or of the code: such requests answer 503 with
/// `Retry-After`, so clients and messenger platforms retry instead of giving up.
fn database_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_))
        )
    })
}

/// Seconds a client is asked to wait before retrying when the database is out of reach.
const UNAVAILABLE_RETRY_AFTER_S: u64 = 5;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match self {
            ApiError::Unexpected(e) if database_unreachable(&e) => {
                tracing::warn!(error = %e, "database unreachable; answering 503");
                let mut resp =
                    ApiError::Unavailable("the database is not reachable at the moment; retry shortly".into())
                        .into_response();
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_AFTER_S));
                return resp;
            }
            other => other,
        };
        let status = error.status();
        if let ApiError::Unexpected(e) = &error {
            tracing::error!(error = ?e, "request failed");
        }
        let message = match &error {
            ApiError::Unexpected(_) => "An internal error occurred; it has been logged.".to_string(),
            other => sentence(&other.to_string()),
        };
        let mut resp = (status, Json(json!({ "error": { "code": error.code(), "message": message } }))).into_response();
        if let ApiError::RateLimited { retry_after_s } = error
            && let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let ApiError::Busy = error {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(crate::auth::attempts::BUSY_RETRY_AFTER_S));
        }
        resp
    }
}

/// Capitalises the first letter and ends with a period: error messages read as one sentence.
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    let mut out = match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// JSON body extractor whose rejections use the API error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(ApiError::invalid("invalid_json", rej.body_text())),
        }
    }
}

/// Query extractor whose rejections use the API error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rej) => Err(ApiError::invalid("invalid_query", rej.body_text())),
        }
    }
}

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

#[cfg(test)]
mod tests {
    use super::database_unreachable;
    use crate::store::{ExecuteError, StoreError};

    #[test]
    fn a_store_failure_to_reach_the_database_is_unreachable_through_its_context() {
        let load =
            anyhow::Error::new(StoreError::Database(sqlx::Error::PoolTimedOut)).context("the lead could not be read");
        assert!(database_unreachable(&load));
        let execute: ExecuteError<std::fmt::Error> = ExecuteError::Store(StoreError::Database(sqlx::Error::PoolClosed));
        assert!(database_unreachable(&anyhow::Error::new(execute).context("the lead could not be stored")));
        let conflict: ExecuteError<std::fmt::Error> = ExecuteError::Conflict;
        assert!(!database_unreachable(&anyhow::Error::new(conflict)));
    }
}
