//! Settings and operations pages (owners and admins).

use axum::extract::State;
use axum::response::Response;

use super::page;
use super::session::Operator;
use crate::http::AppState;

/// `GET /settings`.
pub async fn settings(State(_state): State<AppState>, op: Operator) -> Response {
    if !op.is_admin() {
        return page::forbidden(&op);
    }
    page::not_found(&op)
}

/// `GET /ops`.
pub async fn operations(State(_state): State<AppState>, op: Operator) -> Response {
    if !op.is_admin() {
        return page::forbidden(&op);
    }
    page::not_found(&op)
}
