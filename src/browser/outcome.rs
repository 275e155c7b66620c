//! What a vehicle lookup is asked and what it answers: serialisable types stored in events.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use aisales_domain::vehicle_lookup::VehicleId;
pub use aisales_domain::vehicle_lookup::{
    GearboxInfo, IdError as QueryError, IdType, OemCandidate, OemFailureKind, OemPathOutcome, OemPathTrial, OemSearch,
    OemStepFailure, VehicleMeta,
};

/// A normalised identifier to look up. Built only through [`VehicleQuery::parse`] (the domain's
/// [`VehicleId`] rules: whitespace removed, upper case for FRAME too, shape checked).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VehicleQuery {
    id_type: IdType,
    value: String,
}

impl VehicleQuery {
    /// Normalises (whitespace removed, upper case, for FRAME too) and checks the shape.
    pub fn parse(id_type: IdType, raw: &str) -> Result<Self, QueryError> {
        Ok(Self::from(VehicleId::parse(id_type, raw)?))
    }

    /// VIN or FRAME.
    pub fn id_type(&self) -> IdType {
        self.id_type
    }

    /// The normalised identifier.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Cache key: `VIN:<value>` / `FRAME:<value>`.
    pub fn cache_key(&self) -> String {
        format!("{}:{}", self.id_type.as_str(), self.value)
    }

    /// World manufacturer identifier (first three characters of a VIN).
    pub fn wmi(&self) -> Option<&str> {
        (self.id_type == IdType::Vin).then(|| self.value.get(..3)).flatten()
    }

    /// VIN assigned in China (WMI region `L`): prof-rf is asked first.
    pub fn is_china_vin(&self) -> bool {
        self.id_type == IdType::Vin && self.value.starts_with('L')
    }
}

impl From<VehicleId> for VehicleQuery {
    fn from(id: VehicleId) -> Self {
        Self { id_type: id.id_type(), value: id.value().to_string() }
    }
}

impl fmt::Display for VehicleQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id_type.as_str(), self.value)
    }
}

/// The site that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// podzamenu.ru catalogue (VIN and FRAME).
    Podzamenu,
    /// prof-rf catalogue of Chinese cars (VIN only).
    ProfRf,
}

impl Source {
    /// `"podzamenu"` / `"prof_rf"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Podzamenu => "podzamenu",
            Self::ProfRf => "prof_rf",
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Did what it should.
    Ok,
    /// Ran fine but found nothing (e.g. a navigation path absent on this page).
    Miss,
    /// Failed; the detail says how.
    Failed,
}

/// Timing and result of one scraper step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step name, prefixed by the site (`podzamenu.goto`).
    pub name: String,
    /// Page URL after the step, when known.
    pub url: Option<String>,
    /// Wall-clock duration.
    pub millis: u64,
    /// Result kind.
    pub outcome: StepOutcome,
    /// What was found, or the error text.
    pub detail: Option<String>,
}

/// What a lookup saw: steps with timings, the selectors/strategies that matched, and for failures
/// and not-found answers a screenshot and the page HTML.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Every step of every site tried, in order.
    pub steps: Vec<StepRecord>,
    /// Which selectors, labels and click strategies produced the data (`site:what:how`).
    pub selectors_used: Vec<String>,
    /// PNG of the page, base64 in JSON.
    #[serde(with = "base64_bytes", default, skip_serializing_if = "Option::is_none")]
    pub screenshot_png: Option<Vec<u8>>,
    /// Rendered DOM of the page (truncated to the configured size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_html: Option<String>,
    /// Last page URL of the site whose answer is returned.
    pub source_url: Option<String>,
    /// Sites asked, in order.
    #[serde(default)]
    pub sources_tried: Vec<Source>,
}

impl Evidence {
    /// Total time of the recorded steps.
    pub fn total_millis(&self) -> u64 {
        self.steps.iter().map(|s| s.millis).sum()
    }
}

/// Result of a lookup that reached a site and got an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LookupOutcome {
    /// The gearbox OEM number (and usually the model) was found.
    Found {
        /// Vehicle facts.
        vehicle: VehicleMeta,
        /// Gearbox model, factory code and OEM.
        gearbox: GearboxInfo,
        /// Site that answered.
        source: Source,
        /// What was seen.
        evidence: Evidence,
    },
    /// The gearbox model is known but no OEM number is shown.
    ModelOnly {
        /// Vehicle facts.
        vehicle: VehicleMeta,
        /// Gearbox model (always `Some`) and factory code; no OEM.
        gearbox: GearboxInfo,
        /// Site that answered.
        source: Source,
        /// What was seen.
        evidence: Evidence,
    },
    /// No site knows the vehicle, or it is known without any gearbox data.
    NotFound {
        /// Site whose answer is kept (the first one asked).
        source: Source,
        /// Vehicle facts when the vehicle itself was found but no gearbox data was shown.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vehicle: Option<VehicleMeta>,
        /// What was seen, with screenshot and HTML.
        evidence: Evidence,
    },
}

impl LookupOutcome {
    /// The evidence of any variant.
    pub fn evidence(&self) -> &Evidence {
        match self {
            Self::Found { evidence, .. } | Self::ModelOnly { evidence, .. } | Self::NotFound { evidence, .. } => {
                evidence
            }
        }
    }

    /// Mutable evidence of any variant.
    pub fn evidence_mut(&mut self) -> &mut Evidence {
        match self {
            Self::Found { evidence, .. } | Self::ModelOnly { evidence, .. } | Self::NotFound { evidence, .. } => {
                evidence
            }
        }
    }

    /// The answering site.
    pub fn source(&self) -> Source {
        match self {
            Self::Found { source, .. } | Self::ModelOnly { source, .. } | Self::NotFound { source, .. } => *source,
        }
    }

    /// Gearbox data, if any.
    pub fn gearbox(&self) -> Option<&GearboxInfo> {
        match self {
            Self::Found { gearbox, .. } | Self::ModelOnly { gearbox, .. } => Some(gearbox),
            Self::NotFound { .. } => None,
        }
    }

    /// `"FOUND"`, `"MODEL_ONLY"` or `"NOT_FOUND"`.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Found { .. } => "FOUND",
            Self::ModelOnly { .. } => "MODEL_ONLY",
            Self::NotFound { .. } => "NOT_FOUND",
        }
    }
}

/// A lookup that got no answer: ChromeDriver down, site down, timeout, session died, bad config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("vehicle lookup failed ({}): {reason}", if *.retryable { "retryable" } else { "permanent" })]
pub struct LookupFailure {
    /// Whether the job should be retried later.
    pub retryable: bool,
    /// What failed.
    pub reason: String,
    /// What was seen up to the failure (screenshot and HTML when the page was reachable); boxed to
    /// keep `Result<LookupOutcome, LookupFailure>` small.
    pub evidence: Box<Evidence>,
}

/// How long a cached lookup answer stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// TTL of `Found` and `ModelOnly` answers.
    pub found_ttl: Duration,
    /// TTL of `NotFound` answers (shorter: catalogues get new vehicles).
    pub not_found_ttl: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self { found_ttl: Duration::from_secs(30 * 24 * 3600), not_found_ttl: Duration::from_secs(24 * 3600) }
    }
}

impl CachePolicy {
    /// TTL for `outcome`. A model-only answer whose OEM step failed because the site failed is
    /// not served from the cache (zero): the next lookup may reach the OEM.
    pub fn ttl_for(&self, outcome: &LookupOutcome) -> Duration {
        match outcome {
            LookupOutcome::ModelOnly { gearbox, .. }
                if gearbox.oem_search.as_ref().and_then(|s| s.failure.as_ref()).is_some_and(|f| f.transient) =>
            {
                Duration::ZERO
            }
            LookupOutcome::Found { .. } | LookupOutcome::ModelOnly { .. } => self.found_ttl,
            LookupOutcome::NotFound { .. } => self.not_found_ttl,
        }
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_some(&STANDARD.encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|t| STANDARD.decode(t.as_bytes()).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_normalisation() {
        let q = VehicleQuery::parse(IdType::Vin, " jtnbk40k2 03012345 ").unwrap();
        assert_eq!(q.value(), "JTNBK40K203012345");
        assert_eq!(q.cache_key(), "VIN:JTNBK40K203012345");
        assert_eq!(q.wmi(), Some("JTN"));
        let f = VehicleQuery::parse(IdType::Frame, "nt31-012345").unwrap();
        assert_eq!(f.value(), "NT31-012345");
        assert!(VehicleQuery::parse(IdType::Vin, "JTNBK40K20301234O").is_err());
        assert!(VehicleQuery::parse(IdType::Frame, "   ").is_err());
        assert!(VehicleQuery::parse(IdType::Vin, "LGWEF6A59NH012345").unwrap().is_china_vin());
    }

    #[test]
    fn evidence_round_trips_with_base64_screenshot() {
        let evidence = Evidence { screenshot_png: Some(vec![0x89, b'P', b'N', b'G']), ..Evidence::default() };
        let json = serde_json::to_value(&evidence).unwrap();
        assert_eq!(json["screenshot_png"], "iVBORw==");
        let back: Evidence = serde_json::from_value(json).unwrap();
        assert_eq!(back, evidence);
        let outcome = LookupOutcome::NotFound { source: Source::ProfRf, vehicle: None, evidence };
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["status"], "NOT_FOUND");
        assert_eq!(json["source"], "prof_rf");
    }
}
