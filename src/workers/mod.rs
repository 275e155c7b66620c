//! Job handlers, one per kind, and what they share.

pub mod leads;
pub mod media;
pub mod price_lookup;
pub mod probe;
pub mod send;
pub mod suggest;
pub mod vehicle_lookup;

use std::sync::Arc;

use sqlx::PgPool;

use crate::ai::Drafter;
use crate::application::Context;
use crate::bus::Kind;
use crate::bus::worker::JobHandler;
use crate::config::Settings;
use crate::infra::redis::Redis;

/// What every handler may use: the application context, the drafter and an HTTP client.
#[derive(Clone)]
pub struct Services {
    pub ctx: Context,
    pub drafter: Drafter,
    pub http: reqwest::Client,
}

impl Services {
    pub fn new(settings: Arc<Settings>, pool: PgPool, redis: Redis) -> Self {
        Self::with_context(Context::new(settings, pool, redis))
    }

    pub fn with_context(ctx: Context) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("HTTP client builds");
        Services { drafter: Drafter::from_settings(&ctx.settings), http, ctx }
    }
}

impl std::ops::Deref for Services {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

/// The actor name of a worker of `kind` in event metadata.
pub fn actor(kind: Kind) -> String {
    format!("worker:{}", kind.as_str())
}

/// The handler of `kind`; an error when what it needs cannot be opened (the media store).
pub fn handler(kind: Kind, services: &Services) -> anyhow::Result<Arc<dyn JobHandler>> {
    Ok(match kind {
        Kind::Probe => Arc::new(probe::ProbeHandler { services: services.clone() }),
        Kind::ReplySuggestion => Arc::new(suggest::SuggestHandler { services: services.clone() }),
        Kind::MessageSend => Arc::new(send::SendHandler::new(services.clone())),
        Kind::VehicleLookup => Arc::new(vehicle_lookup::LookupHandler::new(services.clone())),
        Kind::Leads => Arc::new(leads::LeadsHandler::new(services.clone())),
        Kind::PriceLookup => Arc::new(price_lookup::PriceHandler::new(services.clone())),
        Kind::Media => Arc::new(media::MediaHandler::new(services.clone())?),
    })
}
