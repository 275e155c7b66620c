//! Value types of vehicle lookups: the identifier, what the catalogues answered, and what a
//! conversation learns from it. All are stored in events, so they are plain serde types.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::vin::VinInfo;

/// Kind of vehicle identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdType {
    /// 17-character Vehicle Identification Number.
    Vin,
    /// Japanese chassis (frame) number, e.g. `GX110-6012345`.
    Frame,
}

impl IdType {
    /// `"VIN"` or `"FRAME"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vin => "VIN",
            Self::Frame => "FRAME",
        }
    }

    /// Parses `VIN` / `FRAME` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "VIN" => Some(Self::Vin),
            "FRAME" => Some(Self::Frame),
            _ => None,
        }
    }

    /// How a customer text names it after "по": `VIN-коду` / `номеру кузова`.
    pub fn label_ru(self) -> &'static str {
        match self {
            Self::Vin => "VIN-коду",
            Self::Frame => "номеру кузова",
        }
    }
}

impl fmt::Display for IdType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Nothing left after trimming.
    #[error("the identifier is empty")]
    Empty,
    /// Not 17 characters of `A-H J-N P R-Z 0-9`.
    #[error("not a VIN: {0}")]
    InvalidVin(String),
    /// Not a plausible chassis number.
    #[error("not a FRAME number: {0}")]
    InvalidFrame(String),
}

/// A normalised VIN or FRAME number. Built only through [`VehicleId::parse`]: whitespace removed,
/// upper case (FRAME numbers too, so one frame has one cache key), shape checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VehicleId {
    id_type: IdType,
    value: String,
}

impl VehicleId {
    /// Normalises and checks `raw` as an identifier of `id_type`.
    pub fn parse(id_type: IdType, raw: &str) -> Result<Self, IdError> {
        let value: String = raw.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_uppercase).collect();
        if value.is_empty() {
            return Err(IdError::Empty);
        }
        let ok = match id_type {
            IdType::Vin => {
                value.len() == 17 && value.chars().all(|c| c.is_ascii_alphanumeric() && !matches!(c, 'I' | 'O' | 'Q'))
            }
            IdType::Frame => {
                (5..=20).contains(&value.len())
                    && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && value.chars().any(|c| c.is_ascii_digit())
                    && !value.starts_with('-')
                    && !value.ends_with('-')
            }
        };
        if !ok {
            return Err(match id_type {
                IdType::Vin => IdError::InvalidVin(value),
                IdType::Frame => IdError::InvalidFrame(value),
            });
        }
        Ok(Self { id_type, value })
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
}

impl fmt::Display for VehicleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id_type.as_str(), self.value)
    }
}

/// Vehicle facts shown by the catalogue (as displayed; absent fields are `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleMeta {
    /// Make, e.g. `TOYOTA`.
    pub make: Option<String>,
    /// Model, e.g. `CAMRY`.
    pub model: Option<String>,
    /// Year or production date as shown.
    pub year: Option<String>,
    /// Engine code or description.
    pub engine: Option<String>,
    /// Body / chassis type code.
    pub body: Option<String>,
    /// Modification, grade or equipment line.
    pub modification: Option<String>,
    /// Gearbox description as shown (e.g. `A/T 5-SPEED`), not a model code.
    pub transmission: Option<String>,
    /// Drive as shown (e.g. `4WD`).
    pub drive: Option<String>,
}

impl VehicleMeta {
    /// Whether no field is known.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// One OEM number found on the gearbox page, with its part name and name score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OemCandidate {
    /// OEM number as shown (upper case, single spaces).
    pub oem: String,
    /// Part name as shown.
    pub name: String,
    /// Name score: 2 assembly, 1 neutral, −1 ancillary part (see `docs/vehicle-lookup-sites.md`).
    pub score: i8,
}

/// Gearbox identification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GearboxInfo {
    /// Gearbox model code that passed the model rules, e.g. `U241E`.
    pub model: Option<String>,
    /// Factory code / marking, e.g. `U241E-06A`.
    pub factory_code: Option<String>,
    /// OEM number of the gearbox assembly.
    pub oem: Option<String>,
    /// Valid OEM numbers on the gearbox page, in page order.
    pub oem_candidates: Vec<OemCandidate>,
    /// How the catalogue was searched for the OEM: the paths tried and, without an OEM, the step
    /// that stopped the search. Absent in answers recorded before it existed and in decoder-only
    /// answers. Boxed: most events carry none and the answer stays small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oem_search: Option<Box<OemSearch>>,
}

/// The trail of the search for the gearbox OEM on a catalogue: every navigation path tried, in
/// order, and why the search ended without an OEM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OemSearch {
    /// Site searched (`podzamenu`, `prof_rf`).
    pub site: String,
    /// Paths tried, in order; a path tried again after a transient failure appears once per try.
    #[serde(default)]
    pub paths: Vec<OemPathTrial>,
    /// Why no OEM was found; `None` when the OEM was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<OemStepFailure>,
}

impl OemSearch {
    /// One line for an operator: where and why the search stopped.
    pub fn summary(&self) -> Option<String> {
        let f = self.failure.as_ref()?;
        let tries = if f.attempts > 1 { format!(", {} tries", f.attempts) } else { String::new() };
        Some(format!("{} at {}{tries}: {}", f.kind.as_str(), f.step, f.reason))
    }
}

/// One navigation path tried on the way to the gearbox parts list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OemPathTrial {
    /// `accordion` (path A), `schemes_tab` (path C), `content_link` (path B), `text_link` (path D).
    pub path: String,
    /// Try of the OEM step this belongs to (1 first, more after a transient failure).
    pub attempt: u32,
    /// How the path ended.
    pub outcome: OemPathOutcome,
    /// The step it ended at, e.g. `podzamenu.nav.accordion.link`.
    pub step: String,
    /// What was clicked or seen, or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Page URL when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// How one navigation path ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OemPathOutcome {
    /// The parts list was reached and listed OEM numbers.
    Rows,
    /// The path's first control is not on the page.
    NoEntry,
    /// The path started but a later step found nothing to click or the click had no effect.
    Stopped,
    /// The parts list was reached and says it lists nothing.
    EmptyParts,
    /// The parts list was reached but no OEM number could be read from it.
    NoRows,
    /// A step failed (site error, timeout, browser error).
    Failed,
}

/// Why the search for the gearbox OEM ended without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OemFailureKind {
    /// The parts tree is not opened for this make on purpose (VW group, Ford): the model comes from
    /// the vehicle card.
    Skipped,
    /// No navigation path to the gearbox parts list is on the vehicle page.
    NoPath,
    /// A path started but stopped before the parts list (nothing to click, or no effect).
    PathStopped,
    /// The parts list says it lists nothing.
    PartsListEmpty,
    /// The parts list shows no OEM numbers that could be read.
    NoOemNumbers,
    /// The parts list shows only codes that are not OEM numbers (factory codes, serials).
    OnlyInvalidNumbers,
    /// The parts list shows only ancillary parts (filters, gaskets, sensors), no gearbox assembly.
    OnlyAncillaryParts,
    /// The site failed during the step (error page, HTTP error, timeout), also on every retry.
    SiteError,
}

impl OemFailureKind {
    /// The snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skipped => "skipped",
            Self::NoPath => "no_path",
            Self::PathStopped => "path_stopped",
            Self::PartsListEmpty => "parts_list_empty",
            Self::NoOemNumbers => "no_oem_numbers",
            Self::OnlyInvalidNumbers => "only_invalid_numbers",
            Self::OnlyAncillaryParts => "only_ancillary_parts",
            Self::SiteError => "site_error",
        }
    }
}

/// The step that ended the search for the gearbox OEM without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OemStepFailure {
    /// What kind of end.
    pub kind: OemFailureKind,
    /// The step, e.g. `podzamenu.nav.tab.sections` or `podzamenu.oem.choose`.
    pub step: String,
    /// What was seen, in words.
    pub reason: String,
    /// Whether a later lookup may get further (the site failed, rather than showed no OEM).
    pub transient: bool,
    /// Tries of the step (more than one after transient failures).
    pub attempts: u32,
}

/// Who asked for a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupSource {
    /// A VIN/FRAME found in a customer message scored above the lookup threshold.
    Detected,
    /// An operator asked for it.
    Operator,
}

impl LookupSource {
    /// `detected` / `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detected => "detected",
            Self::Operator => "operator",
        }
    }
}

/// What a completed lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultStatus {
    /// The gearbox OEM number (and usually the model) was found in a catalogue.
    Found,
    /// The gearbox model is known, no OEM number.
    ModelOnly,
    /// The catalogues could not be asked; only the offline VIN decoder answered (make, country,
    /// model year).
    DecoderOnly,
}

impl ResultStatus {
    /// `FOUND`, `MODEL_ONLY` or `DECODER_ONLY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Found => "FOUND",
            Self::ModelOnly => "MODEL_ONLY",
            Self::DecoderOnly => "DECODER_ONLY",
        }
    }
}

/// Kind of a piece of evidence kept in the evidence table (never in events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// PNG of the page when the lookup failed or found nothing.
    Screenshot,
    /// Rendered DOM of that page.
    Html,
    /// JSON of the scraper's steps (timings, outcomes), selectors used and sites tried.
    Trace,
}

impl EvidenceKind {
    /// `screenshot`, `html` or `trace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Screenshot => "screenshot",
            Self::Html => "html",
            Self::Trace => "trace",
        }
    }

    /// HTTP content type of the stored bytes.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Screenshot => "image/png",
            Self::Html => "text/html; charset=utf-8",
            Self::Trace => "application/json",
        }
    }
}

/// A reference to one stored piece of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EvidenceRef {
    pub id: Uuid,
    pub kind: EvidenceKind,
}

/// The answer of a completed lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupResult {
    pub status: ResultStatus,
    pub vehicle: VehicleMeta,
    pub gearbox: GearboxInfo,
    /// Catalogue that answered (`podzamenu`, `prof_rf`), or `vin_decoder`.
    pub source: String,
    /// Offline decoding of the VIN (every VIN result carries it).
    pub decoder: Option<VinInfo>,
    /// Lookup confidence (see [`super::confidence`]).
    pub confidence: f64,
    /// Answered from the lookup cache, without a browser.
    pub from_cache: bool,
    /// Why the answer is partial, e.g. the catalogues could not be reached.
    pub note: Option<String>,
    pub evidence: Vec<EvidenceRef>,
}

/// The answer of a lookup no catalogue knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotFoundResult {
    /// First site asked.
    pub source: String,
    pub sources_tried: Vec<String>,
    /// Vehicle facts when the catalogue knows the vehicle but shows no gearbox data.
    pub vehicle: Option<VehicleMeta>,
    pub decoder: Option<VinInfo>,
    pub from_cache: bool,
    pub evidence: Vec<EvidenceRef>,
}

/// Status of the vehicle data a conversation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VehicleDataStatus {
    Found,
    ModelOnly,
    DecoderOnly,
    NotFound,
}

impl VehicleDataStatus {
    /// `FOUND`, `MODEL_ONLY`, `DECODER_ONLY` or `NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Found => "FOUND",
            Self::ModelOnly => "MODEL_ONLY",
            Self::DecoderOnly => "DECODER_ONLY",
            Self::NotFound => "NOT_FOUND",
        }
    }
}

impl From<ResultStatus> for VehicleDataStatus {
    fn from(s: ResultStatus) -> Self {
        match s {
            ResultStatus::Found => Self::Found,
            ResultStatus::ModelOnly => Self::ModelOnly,
            ResultStatus::DecoderOnly => Self::DecoderOnly,
        }
    }
}

/// How a gearbox confirmed from its tag compares with what the lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Nothing confirmed.
    #[default]
    None,
    /// The tag shows the model (or OEM) the lookup found.
    VerifiedMatch,
    /// The tag shows something else than the lookup found; the tag wins.
    Mismatch,
    /// Confirmed from the tag; the lookup had no gearbox to compare with.
    Confirmed,
}

impl Verification {
    /// `none`, `verified_match`, `mismatch` or `confirmed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::VerifiedMatch => "verified_match",
            Self::Mismatch => "mismatch",
            Self::Confirmed => "confirmed",
        }
    }
}

/// A gearbox an operator confirmed from a photo of its tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedGearbox {
    pub model: String,
    pub oem: Option<String>,
    pub factory_code: Option<String>,
    pub verification: Verification,
    pub confirmed_by: String,
}

/// What a conversation learns from a lookup: stored in its `VehicleDataAttached` event and shown as
/// the conversation's `vehicle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleData {
    pub id_type: IdType,
    pub value: String,
    pub status: VehicleDataStatus,
    pub vehicle: VehicleMeta,
    pub gearbox: GearboxInfo,
    /// Catalogue that answered, `vin_decoder`, or for not-found answers the first site asked.
    pub source: Option<String>,
    pub confidence: f64,
    pub decoder: Option<VinInfo>,
    /// The gearbox confirmed from its tag, when an operator did.
    pub confirmed: Option<ConfirmedGearbox>,
    /// Why the data is partial.
    pub note: Option<String>,
}

impl VehicleData {
    /// The make from the catalogue, else from the VIN decoder.
    pub fn make(&self) -> Option<&str> {
        self.vehicle.make.as_deref().or_else(|| self.decoder.as_ref().and_then(|d| d.manufacturer.as_deref()))
    }

    /// The gearbox model: confirmed from the tag, else found.
    pub fn gearbox_model(&self) -> Option<&str> {
        self.confirmed.as_ref().map(|c| c.model.as_str()).or(self.gearbox.model.as_deref())
    }

    /// The gearbox OEM: confirmed from the tag, else found.
    pub fn oem(&self) -> Option<&str> {
        self.confirmed.as_ref().and_then(|c| c.oem.as_deref()).or(self.gearbox.oem.as_deref())
    }

    /// What the drafting prompt states about the vehicle.
    pub fn facts(&self) -> crate::prompt::VehicleFacts {
        let year = self
            .vehicle
            .year
            .clone()
            .or_else(|| self.decoder.as_ref().and_then(|d| d.model_year).map(|y| y.to_string()));
        crate::prompt::VehicleFacts {
            id_type: Some(self.id_type.as_str().into()),
            id_value: Some(self.value.clone()),
            make: self.make().map(str::to_string),
            model: self.vehicle.model.clone(),
            year,
            gearbox_model: self.gearbox_model().map(str::to_string),
            gearbox_type: self.vehicle.transmission.clone(),
            oem: self.oem().map(str::to_string),
        }
    }
}
