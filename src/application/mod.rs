//! The application layer: what every entry point (webhooks, the API, the dashboard, workers and
//! the CLI) runs. A command goes in with a [`Context`] and [`EventMetadata`](crate::store::EventMetadata) and comes out as an
//! outcome or a [`CommandError`]; nothing here knows about HTTP.

pub mod causes;
pub mod channels;
pub mod consistency;
pub mod conversations;
mod error;
pub mod identity;
pub mod ingest;
pub mod leads;
pub mod price_list;
pub mod price_lookups;
pub mod replay;
pub mod users;
pub mod vehicle_lookups;

use std::sync::Arc;

use sqlx::PgPool;

pub use error::{CommandError, OnUnique, is_unique_violation};

use crate::config::Settings;
use crate::infra::crypto::Keyring;
use crate::infra::redis::Redis;
use crate::store::EventStore;
use crate::tenancy::accounts::TenancyCache;

/// What commands and queries run with: the process's connections and caches. Cheap to clone;
/// one per process, shared by the HTTP server, the workers and the CLI.
#[derive(Clone)]
pub struct Context {
    pub settings: Arc<Settings>,
    pub pool: PgPool,
    pub store: EventStore,
    pub redis: Redis,
    pub keys: Arc<Keyring>,
    /// Tenants, channel accounts and their secrets, cached for a few seconds.
    pub tenancy: Arc<TenancyCache>,
    /// Customer identities resolved by this process.
    pub identities: Arc<identity::IdentityCache>,
}

impl Context {
    pub fn new(settings: Arc<Settings>, pool: PgPool, redis: Redis) -> Self {
        let keys = Arc::new(Keyring::from_settings(&settings));
        // Customer data in events is sealed with keys this keyring wraps (first install wins).
        aisales_projections::pii::install(keys.clone());
        Context {
            store: EventStore::new(pool.clone()),
            keys,
            tenancy: Arc::default(),
            identities: Arc::default(),
            settings,
            pool,
            redis,
        }
    }
}
