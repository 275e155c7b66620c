//! The set of projectors this deployment runs, and their runtime options.

use std::sync::Arc;

use aisales_projections::Projector;
use aisales_projections::stream_stats::StreamStats;

use crate::config::Settings;
use crate::projector::RuntimeOptions;

/// Every projector, in the order `projections status` lists them.
pub fn all() -> Vec<Arc<dyn Projector>> {
    vec![Arc::new(StreamStats)]
}

/// Runtime options from the settings.
pub fn runtime_options(settings: &Settings) -> RuntimeOptions {
    RuntimeOptions {
        poll_interval: settings.projector_poll_interval,
        batch_size: settings.projector_batch_size,
        ..RuntimeOptions::default()
    }
}
