//! The set of projectors this deployment runs, and their runtime options.

use std::sync::Arc;

use aisales_projections::stream_stats::StreamStats;
use aisales_projections::{Projector, Target};
use sqlx::PgPool;

use crate::bus::work::{DispatchOptions, WorkProjector};
use crate::config::Settings;
use crate::infra::redis::Redis;
use crate::projection::runtime::RuntimeOptions;

/// Every projector, in the order `projections status` lists them.
pub fn all(settings: &Settings, pool: &PgPool, redis: &Redis) -> Vec<Arc<dyn Projector>> {
    let mut out: Vec<Arc<dyn Projector>> = vec![Arc::new(StreamStats::default())];
    out.extend(aisales_projections::conversation::all(Target::LIVE).into_iter().map(Arc::from));
    out.extend(aisales_projections::vehicle_lookup_views::all(Target::LIVE).into_iter().map(Arc::from));
    out.extend(aisales_projections::lead_views::all(Target::LIVE).into_iter().map(Arc::from));
    out.extend(aisales_projections::price_lookups::all(Target::LIVE).into_iter().map(Arc::from));
    out.push(Arc::new(WorkProjector::new(
        pool.clone(),
        redis.clone(),
        DispatchOptions { prefix: settings.bus.redis_prefix.clone(), stream_max_len: settings.bus.stream_max_len },
    )));
    out
}

/// Runtime options from the settings.
pub fn runtime_options(settings: &Settings) -> RuntimeOptions {
    RuntimeOptions {
        poll_interval: settings.projector_poll_interval,
        gather: settings.projector_gather,
        batch_size: settings.projector_batch_size,
        ..RuntimeOptions::default()
    }
}
