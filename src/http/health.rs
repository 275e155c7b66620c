//! `/health` (the process runs), `/ready` (its dependencies answer) and `/metrics`.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::http::AppState;

/// `/health`: the process runs.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_s: u64,
}

impl Health {
    /// A process up since `started`.
    pub fn since(started: Instant) -> Self {
        Health { status: "ok", version: env!("CARGO_PKG_VERSION"), uptime_s: started.elapsed().as_secs() }
    }
}

pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health::since(state.started))
}

/// `/ready`: whether the dependencies answer, each check with its result.
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// `ready`, `degraded` (an optional dependency fails) or `unready`.
    pub status: &'static str,
    pub checks: Vec<Check>,
}

/// One dependency check of `/ready`.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: &'static str,
    pub message: String,
    pub latency_ms: u64,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn timed<F, T>(name: &'static str, fut: F) -> Check
where
    F: std::future::Future<Output = anyhow::Result<T>>,
    T: Into<String>,
{
    let started = Instant::now();
    let result = tokio::time::timeout(CHECK_TIMEOUT, fut).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(Ok(msg)) => Check { name, status: "pass", message: msg.into(), latency_ms },
        Ok(Err(e)) => Check { name, status: "fail", message: first_line(&e), latency_ms },
        Err(_) => Check {
            name,
            status: "fail",
            message: format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
            latency_ms,
        },
    }
}

fn first_line(e: &anyhow::Error) -> String {
    crate::infra::redact::redact(&format!("{e:#}")).lines().next().unwrap_or_default().to_string()
}

/// Runs every readiness check. `ready` means every required dependency passes.
pub async fn readiness(state: &AppState) -> (StatusCode, Readiness) {
    let pool = state.pool.clone();
    let postgres = timed("postgres", async move {
        sqlx::query("SELECT 1").execute(&pool).await?;
        Ok("connected")
    });
    let redis = state.redis.clone();
    let redis = timed("redis", async move {
        redis.ping().await?;
        Ok("PONG")
    });
    let pool = state.pool.clone();
    let migrations = timed("migrations", async move {
        let pending = crate::infra::db::pending(&pool).await?;
        if pending.is_empty() {
            Ok("schema is current".to_string())
        } else {
            anyhow::bail!("{} migration(s) not applied; run `aisales migrate`", pending.len())
        }
    });
    let (postgres, redis, migrations) = tokio::join!(postgres, redis, migrations);
    let ai = if state.settings.openai_api_key.is_some() {
        Check { name: "ai", status: "pass", message: "API key configured".into(), latency_ms: 0 }
    } else {
        Check {
            name: "ai",
            status: "fail",
            message: "AI_INTEGRATIONS_OPENAI_API_KEY not set; the offline responder drafts replies".into(),
            latency_ms: 0,
        }
    };
    let required_ok = [&postgres, &redis, &migrations].iter().all(|c| c.status == "pass");
    let (code, status) = match (required_ok, ai.status == "pass") {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unready"),
        (true, false) => (StatusCode::OK, "degraded"),
        (true, true) => (StatusCode::OK, "ready"),
    };
    (code, Readiness { status, checks: vec![postgres, redis, migrations, ai] })
}

pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (code, body) = readiness(&state).await;
    (code, Json(body))
}

/// `/metrics` behind `METRICS_TOKEN` when one is set: 401 without the right bearer token.
pub async fn metrics_for(
    token: Option<secrecy::SecretString>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    if let Some(token) = token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let expected = secrecy::ExposeSecret::expose_secret(&token);
        if given.is_empty() || !crate::auth::constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "metrics need the token\n",
            )
                .into_response();
        }
    }
    metrics().await.into_response()
}

pub async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::infra::telemetry::render_metrics())
}
