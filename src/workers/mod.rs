//! Job handlers, one per kind, and what they share.

pub mod probe;
pub mod send;
pub mod suggest;
pub mod vehicle_lookup;

use std::sync::Arc;

use sqlx::PgPool;

use crate::ai::Drafter;
use crate::bus::Kind;
use crate::bus::worker::JobHandler;
use crate::config::Settings;
use crate::redis_conn::Redis;
use crate::store::{EventMetadata, EventStore};

/// What every handler may use.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub pool: PgPool,
    pub store: EventStore,
    pub redis: Redis,
    pub drafter: Drafter,
    pub http: reqwest::Client,
}

impl Services {
    pub fn new(settings: Arc<Settings>, pool: PgPool, redis: Redis) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("HTTP client builds");
        Services {
            drafter: Drafter::from_settings(&settings),
            store: EventStore::new(pool.clone()),
            settings,
            pool,
            redis,
            http,
        }
    }

    /// Metadata of a command a worker issues for `job`.
    pub fn metadata(&self, job: &crate::bus::Job, kind: Kind) -> EventMetadata {
        EventMetadata {
            tenant_id: job.tenant_id,
            actor: format!("worker:{}", kind.as_str()),
            correlation_id: uuid::Uuid::now_v7(),
            causation_id: Some(format!("job:{}", job.job_id)),
            request_id: None,
            occurred_at: chrono::Utc::now(),
        }
    }
}

/// The handler of `kind`, or `None` when this build has none yet.
pub fn handler(kind: Kind, services: &Services) -> Option<Arc<dyn JobHandler>> {
    match kind {
        Kind::Probe => Some(Arc::new(probe::ProbeHandler { services: services.clone() })),
        Kind::ReplySuggestion => Some(Arc::new(suggest::SuggestHandler { services: services.clone() })),
        Kind::MessageSend => Some(Arc::new(send::SendHandler::new(services.clone()))),
        Kind::VehicleLookup => Some(Arc::new(vehicle_lookup::LookupHandler::new(services.clone()))),
        _ => None,
    }
}
