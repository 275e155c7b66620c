//! The long-running process roles: `aisales serve [--all]`, `aisales projector`, `aisales worker KIND`.

use std::sync::Arc;

use clap::Args;

use super::UsageError;
use crate::config::Settings;
use crate::process::{self, Supervisor};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Also run every projector and worker in this process (the one-command local setup).
    #[arg(long)]
    pub all: bool,
}

pub(super) async fn serve(settings: Arc<Settings>, all: bool) -> anyhow::Result<()> {
    let pool = crate::infra::db::pool(&settings)?;
    let redis = crate::infra::redis::Redis::new(&settings)?;
    let state = crate::http::AppState::new(settings.clone(), pool.clone(), redis.clone());
    let intake = state.intake.clone();
    let app = crate::http::server::Application::build(state).await?;
    let mut sup = Supervisor::new();
    let token = sup.token();
    let (rate, redis_for_intake) = (settings.intake_burst_rate, redis.clone());
    sup.spawn("intake burst signal", async move {
        crate::infra::intake::report(intake, redis_for_intake, rate, token).await;
        Ok(())
    });
    let grace = settings.shutdown_grace;
    let token = sup.token();
    sup.spawn("http server", app.run_until_stopped(token, grace));
    if let Some(port) = settings.metrics_port {
        let token = sup.token();
        sup.spawn("metrics endpoint", crate::http::server::serve_metrics(port, settings.metrics_token.clone(), token));
    }
    if all {
        process::spawn_projectors(&mut sup, &settings, pool.clone(), redis.clone())?;
        process::spawn_workers(&mut sup, &settings, pool.clone(), redis.clone(), None)?;
    }
    sup.wait(grace).await
}

pub(super) async fn worker(settings: Arc<Settings>, kind: &str) -> anyhow::Result<()> {
    let only = match kind {
        "all" => None,
        k => Some(k.parse::<crate::bus::Kind>().map_err(|e| UsageError(e.to_string()))?),
    };
    let pool = crate::infra::db::pool(&settings)?;
    let redis = crate::infra::redis::Redis::new(&settings)?;
    let mut sup = Supervisor::new();
    process::spawn_workers(&mut sup, &settings, pool, redis, only)?;
    if let Some(port) = settings.metrics_port {
        let token = sup.token();
        sup.spawn("metrics endpoint", crate::http::server::serve_metrics(port, settings.metrics_token.clone(), token));
    }
    sup.wait(settings.shutdown_grace).await
}

pub(super) async fn projector(settings: Arc<Settings>) -> anyhow::Result<()> {
    let pool = crate::infra::db::pool(&settings)?;
    let redis = crate::infra::redis::Redis::new(&settings)?;
    let mut sup = Supervisor::new();
    process::spawn_projectors(&mut sup, &settings, pool, redis)?;
    if let Some(port) = settings.metrics_port {
        let token = sup.token();
        sup.spawn("metrics endpoint", crate::http::server::serve_metrics(port, settings.metrics_token.clone(), token));
    }
    sup.wait(settings.shutdown_grace).await
}
