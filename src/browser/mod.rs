//! Headless browser (WebDriver) sessions and the vehicle-lookup site scrapers.
//!
//! [`BrowserPool`] lends ChromeDriver sessions; [`lookup_vehicle`] asks podzamenu.ru and prof-rf
//! for a VIN or FRAME and answers with a [`LookupOutcome`] (found, model only, not found) or a
//! [`LookupFailure`] that says whether a retry can help. Selectors and keyword lists are data
//! ([`PodzamenuSelectors`], [`ProfRfSelectors`], [`FieldLabels`], [`OemScoring`]); the site steps
//! are described in `docs/vehicle-lookup-sites.md`.

mod error;
mod facts;
mod lookup;
mod outcome;
mod page;
pub mod podzamenu;
mod pool;
pub mod prof_rf;
pub mod rules;

pub use error::BrowserError;
pub use facts::FieldLabels;
pub use lookup::{ScrapeSettings, SiteConfig, SourceStrategy, lookup_vehicle};
pub use outcome::{
    CachePolicy, Evidence, GearboxInfo, IdType, LookupFailure, LookupOutcome, OemCandidate, OemFailureKind,
    OemPathOutcome, OemPathTrial, OemSearch, OemStepFailure, QueryError, Source, StepOutcome, StepRecord, VehicleMeta,
    VehicleQuery,
};
pub use page::ClickStrategy;
pub use podzamenu::{NavPath, PodzamenuSelectors};
pub use pool::{BrowserConfig, BrowserPool, PooledSession, kill_browsers_using, processes_using};
pub use prof_rf::ProfRfSelectors;
pub use rules::OemScoring;
