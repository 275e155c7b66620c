//! The HTTP server: state, routes and the middleware every request passes through.

pub mod api;
pub mod auth_routes;
pub mod authn;
pub mod command;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod lead_webhooks;
pub mod server;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::application::Context;
use crate::config::Settings;
use crate::infra::redis::Redis;

pub use error::{ApiError, ApiJson, ApiQuery};

/// Shared state of every handler: the application context, plus what only the HTTP server has.
#[derive(Clone)]
pub struct AppState {
    pub ctx: Context,
    pub changes: api::live::ChangeFeed,
    pub started: Instant,
    /// Counts form and messenger webhooks (see `crate::infra::intake`).
    pub intake: Arc<crate::infra::intake::IntakeMeter>,
}

impl AppState {
    pub fn new(settings: Arc<Settings>, pool: PgPool, redis: Redis) -> Self {
        Self::with_context(Context::new(settings, pool, redis))
    }

    pub fn with_context(ctx: Context) -> Self {
        AppState { ctx, changes: api::live::ChangeFeed::default(), started: Instant::now(), intake: Arc::default() }
    }
}

impl std::ops::Deref for AppState {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let mut probes = Router::new().route("/health", get(health::health)).route("/ready", get(health::ready));
    // With METRICS_PORT the metrics have a listener of their own, which need not be public.
    if settings.metrics_port.is_none() {
        let token = settings.metrics_token.clone();
        probes = probes.route("/metrics", get(move |headers| health::metrics_for(token.clone(), headers)));
    }

    let auth = Router::new()
        .route("/auth/login", axum::routing::post(auth_routes::login))
        .route("/auth/logout", axum::routing::post(auth_routes::logout));
    // Probes, login and webhooks get the request timeout here; `/api` routes get it per route
    // (the live-update stream is long-lived).
    let timed = Router::new()
        .merge(probes)
        .merge(auth)
        .merge(
            Router::new()
                .merge(webhooks::router())
                .merge(lead_webhooks::router())
                .layer(middleware::from_fn_with_state(state.intake.clone(), count_intake)),
        )
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, settings.request_timeout));
    let api = api::routes_with_timeout(settings.request_timeout).into_router(state.clone());

    let dashboard = crate::dashboard::router(&state);
    Router::new().merge(timed).merge(api).merge(dashboard).fallback(error::not_found).with_state(state).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request| {
                        let request_id = req
                            .extensions()
                            .get::<RequestId>()
                            .and_then(|id| id.header_value().to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        let route = req
                            .extensions()
                            .get::<MatchedPath>()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_else(|| req.uri().path().to_string());
                        tracing::info_span!("request", method = %req.method(), route = %route, request_id = %request_id, tenant_id = tracing::field::Empty)
                    })
                    .on_request(())
                    .on_response(|resp: &Response, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(
                            status = resp.status().as_u16(),
                            latency_ms = latency.as_millis() as u64,
                            "request served"
                        );
                    }),
            )
            .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
            .layer(middleware::from_fn(track_metrics))
            .layer(RequestBodyLimitLayer::new(settings.body_limit)),
    )
}

/// Counts an intake request (a form or messenger webhook) for the burst signal. Only those taken
/// (2xx) count: a flood of refused posts (wrong secrets, unreadable bodies, over the rate limit) is
/// answered cheaply and must not hold every tenant's outreach back.
async fn count_intake(
    State(meter): State<Arc<crate::infra::intake::IntakeMeter>>,
    req: Request,
    next: Next,
) -> Response {
    let resp = next.run(req).await;
    if resp.status().is_success() {
        meter.hit();
    }
    resp
}

/// Records request count, latency and in-flight requests by method and matched route.
async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let in_flight = metrics::gauge!("aisales_http_requests_in_flight");
    in_flight.increment(1.0);
    let resp = next.run(req).await;
    in_flight.decrement(1.0);
    let status = resp.status().as_u16().to_string();
    metrics::counter!("aisales_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("aisales_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}
