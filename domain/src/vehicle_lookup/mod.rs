//! The `VehicleLookup` aggregate: one VIN/FRAME case of a tenant, usually of a conversation.
//!
//! ```text
//! requested ──▶ started ──▶ completed (FOUND | MODEL_ONLY | DECODER_ONLY)
//!     ▲            │   └───▶ not found
//!     │            ├──────▶ retry scheduled ──▶ started …
//!     │            └──────▶ failed
//!     └── retry / corrected id / asked again (from not found or failed; retry also from DECODER_ONLY)
//! ```
//!
//! Each pass from "requested" to an end is a *round* (one worker job); a round makes up to the
//! configured number of browser *attempts*. [`VehicleLookup::decide`] is pure: ids, times and what
//! the worker saw come in the commands. Screenshots and page HTML never enter events: they are
//! stored apart and referenced by [`EvidenceRef`].

mod suggest;
mod types;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;

use crate::codec::EventSchema;
use crate::pii::Fields;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use suggest::{GearboxSuggestion, confidence, gearbox_suggestion, gearbox_type_label};
pub use types::{
    ConfirmedGearbox, EvidenceKind, EvidenceRef, GearboxInfo, IdError, IdType, LookupResult, LookupSource,
    NotFoundResult, OemCandidate, OemFailureKind, OemPathOutcome, OemPathTrial, OemSearch, OemStepFailure,
    ResultStatus, VehicleData, VehicleDataStatus, VehicleId, VehicleMeta, Verification,
};

use crate::vin::VinInfo;

/// Request ids remembered to recognise a request delivered twice.
const RECENT_REQUESTS: usize = 64;

/// Namespace of deterministic lookup ids.
const LOOKUP_NAMESPACE: Uuid = Uuid::from_u128(0x6a1c_53d0_8f0e_4c55_9a77_3b1e_0c2d_5e41);

/// The id of the lookup of `id` in `conversation` of `tenant`: the same inputs give the same id, so
/// a conversation asks for one identifier once, however often the customer repeats it.
pub fn lookup_id(tenant: Uuid, conversation: Option<Uuid>, id: &VehicleId) -> Uuid {
    let conversation = conversation.map_or_else(|| "-".to_string(), |c| c.to_string());
    Uuid::new_v5(&LOOKUP_NAMESPACE, format!("{tenant}/{conversation}/{}", id.cache_key()).as_bytes())
}

/// Where a lookup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupStatus {
    Requested,
    Started,
    RetryScheduled,
    Completed,
    NotFound,
    Failed,
}

impl LookupStatus {
    pub const ALL: [LookupStatus; 6] =
        [Self::Requested, Self::Started, Self::RetryScheduled, Self::Completed, Self::NotFound, Self::Failed];

    /// `requested`, `started`, `retry_scheduled`, `completed`, `not_found` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Started => "started",
            Self::RetryScheduled => "retry_scheduled",
            Self::Completed => "completed",
            Self::NotFound => "not_found",
            Self::Failed => "failed",
        }
    }

    /// Parses the name [`LookupStatus::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the round has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::NotFound | Self::Failed)
    }
}

/// Kind of the last outcome a lookup recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastOutcome {
    /// Completed or not found: [`VehicleLookup::data`] holds the answer.
    Answer,
    /// The round failed: [`VehicleLookup::failure`] says why.
    Failure,
    /// A gearbox was confirmed from its tag (also in [`VehicleLookup::data`]).
    Confirmation,
}

/// Why a price lookup is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceOrigin {
    /// The catalogue showed the gearbox OEM.
    Lookup,
    /// An operator confirmed the OEM from the gearbox tag.
    Tag,
}

/// A request for a lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRequest {
    /// Identifies this request: a request delivered twice is recorded once.
    pub request_id: Uuid,
    pub tenant_id: Uuid,
    pub conversation_id: Option<Uuid>,
    /// The customer message the identifier was found in.
    pub message_id: Option<Uuid>,
    pub id: VehicleId,
    pub source: LookupSource,
    /// `conversation`, `user:<id>`, `token:<id>`, …
    pub requested_by: String,
    pub at: DateTime<Utc>,
}

/// What can be asked of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum VehicleLookupCommand {
    /// Look the identifier up (a no-op for a request already recorded).
    Request(Box<NewRequest>),
    /// A worker claims the next attempt of `round` (before it opens a browser).
    Start { round: u32, at: DateTime<Utc> },
    /// A catalogue (or the cache, or the VIN decoder alone) answered.
    Complete { round: u32, result: Box<LookupResult>, at: DateTime<Utc> },
    /// Every catalogue asked says the vehicle is unknown.
    RecordNotFound { round: u32, result: Box<NotFoundResult>, at: DateTime<Utc> },
    /// The attempt failed in a way a later attempt may not.
    ScheduleRetry { round: u32, retry_at: DateTime<Utc>, reason: String, evidence: Vec<EvidenceRef> },
    /// The round is given up.
    Fail { round: u32, reason: String, decoder: Option<VinInfo>, evidence: Vec<EvidenceRef>, at: DateTime<Utc> },
    /// An operator asks for another round (after not found, failed, or a decoder-only answer).
    Retry { by: String, at: DateTime<Utc> },
    /// An operator corrects the identifier; a new round looks the corrected one up.
    CorrectId { id: VehicleId, by: String, at: DateTime<Utc> },
    /// An operator read the gearbox from a photo of its tag.
    ConfirmGearbox {
        model: String,
        oem: Option<String>,
        factory_code: Option<String>,
        note: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
}

/// What happened to a lookup. Listed in `docs/events.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VehicleLookupEvent {
    /// A round was asked for (the first, or again after not found or failed).
    LookupRequested {
        request_id: Uuid,
        round: u32,
        tenant_id: Uuid,
        conversation_id: Option<Uuid>,
        message_id: Option<Uuid>,
        id_type: IdType,
        value: String,
        source: LookupSource,
        requested_by: String,
        requested_at: DateTime<Utc>,
    },
    /// Asked again while a round was running or after it completed: nothing new to do.
    LookupRequestMerged { request_id: Uuid, source: LookupSource, requested_by: String, status: LookupStatus },
    /// A worker started attempt `attempt` of `round`.
    LookupStarted { round: u32, attempt: u32, started_at: DateTime<Utc> },
    /// The vehicle and its gearbox (or only what the VIN decoder knows) were found.
    /// (`conversation_id`, here and in the other outcomes, says whom to tell.)
    LookupCompleted {
        round: u32,
        attempt: u32,
        conversation_id: Option<Uuid>,
        result: LookupResult,
        completed_at: DateTime<Utc>,
    },
    /// No catalogue knows the vehicle.
    LookupNotFound {
        round: u32,
        attempt: u32,
        conversation_id: Option<Uuid>,
        result: NotFoundResult,
        completed_at: DateTime<Utc>,
    },
    /// An attempt failed; the next one is due at `retry_at`.
    LookupRetryScheduled {
        round: u32,
        attempt: u32,
        retry_at: DateTime<Utc>,
        reason: String,
        evidence: Vec<EvidenceRef>,
    },
    /// The round was given up.
    LookupFailed {
        round: u32,
        attempts: u32,
        conversation_id: Option<Uuid>,
        reason: String,
        decoder: Option<VinInfo>,
        evidence: Vec<EvidenceRef>,
        failed_at: DateTime<Utc>,
    },
    /// An operator asked for another round.
    LookupRetryRequested { round: u32, requested_by: String, requested_at: DateTime<Utc> },
    /// An operator corrected the identifier; `round` looks the new one up.
    LookupIdCorrected {
        round: u32,
        id_type: IdType,
        previous_value: String,
        value: String,
        corrected_by: String,
        corrected_at: DateTime<Utc>,
    },
    /// An operator confirmed the gearbox from a photo of its tag.
    GearboxConfirmed {
        conversation_id: Option<Uuid>,
        model: String,
        oem: Option<String>,
        factory_code: Option<String>,
        verification: Verification,
        note: Option<String>,
        confirmed_by: String,
        confirmed_at: DateTime<Utc>,
    },
    /// A gearbox OEM is known: a price lookup is wanted (picked up by the price lookup).
    PriceLookupWanted { oem: String, model: Option<String>, origin: PriceOrigin },
}

impl VehicleLookupEvent {
    /// The conversation to tell about an outcome (answers, failures, confirmations).
    pub fn outcome_for(&self) -> Option<Uuid> {
        use VehicleLookupEvent::*;
        match self {
            LookupCompleted { conversation_id, .. }
            | LookupNotFound { conversation_id, .. }
            | LookupFailed { conversation_id, .. }
            | GearboxConfirmed { conversation_id, .. } => *conversation_id,
            _ => None,
        }
    }

    /// The round a job-related event belongs to.
    pub fn round(&self) -> Option<u32> {
        use VehicleLookupEvent::*;
        match self {
            LookupRequested { round, .. }
            | LookupStarted { round, .. }
            | LookupCompleted { round, .. }
            | LookupNotFound { round, .. }
            | LookupRetryScheduled { round, .. }
            | LookupFailed { round, .. }
            | LookupRetryRequested { round, .. }
            | LookupIdCorrected { round, .. } => Some(*round),
            LookupRequestMerged { .. } | GearboxConfirmed { .. } | PriceLookupWanted { .. } => None,
        }
    }
}

impl DomainEvent for VehicleLookupEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl EventSchema for VehicleLookupEvent {
    const AGGREGATE: &'static str = "vehicle_lookup";

    /// No customer data: a VIN or FRAME number identifies a car, not a person; the rest is what
    /// the catalogues showed and who of the staff asked.
    fn fields() -> &'static [Fields] {
        static FIELDS: &[Fields] = &[
            Fields {
                event: "LookupRequested",
                pii: &[],
                safe: &[
                    "conversation_id",
                    "id_type",
                    "message_id",
                    "request_id",
                    "requested_at",
                    "requested_by",
                    "source",
                    "tenant_id",
                    "value",
                ],
            },
            Fields {
                event: "LookupRequestMerged",
                pii: &[],
                safe: &["request_id", "requested_by", "source", "status"],
            },
            Fields { event: "LookupStarted", pii: &[], safe: &["started_at"] },
            Fields {
                event: "LookupCompleted",
                pii: &[],
                safe: &[
                    "completed_at",
                    "conversation_id",
                    "result/decoder/check_digit",
                    "result/decoder/country",
                    "result/decoder/manufacturer",
                    "result/decoder/plant",
                    "result/decoder/region",
                    "result/decoder/serial",
                    "result/decoder/vds",
                    "result/decoder/vin",
                    "result/decoder/wmi",
                    "result/evidence/*/id",
                    "result/evidence/*/kind",
                    "result/gearbox/factory_code",
                    "result/gearbox/model",
                    "result/gearbox/oem",
                    "result/gearbox/oem_candidates/*/name",
                    "result/gearbox/oem_candidates/*/oem",
                    "result/gearbox/oem_search/failure/kind",
                    "result/gearbox/oem_search/failure/reason",
                    "result/gearbox/oem_search/failure/step",
                    "result/gearbox/oem_search/paths/*/detail",
                    "result/gearbox/oem_search/paths/*/outcome",
                    "result/gearbox/oem_search/paths/*/path",
                    "result/gearbox/oem_search/paths/*/step",
                    "result/gearbox/oem_search/paths/*/url",
                    "result/gearbox/oem_search/site",
                    "result/note",
                    "result/source",
                    "result/status",
                    "result/vehicle/body",
                    "result/vehicle/drive",
                    "result/vehicle/engine",
                    "result/vehicle/make",
                    "result/vehicle/model",
                    "result/vehicle/modification",
                    "result/vehicle/transmission",
                    "result/vehicle/year",
                ],
            },
            Fields {
                event: "LookupNotFound",
                pii: &[],
                safe: &[
                    "completed_at",
                    "conversation_id",
                    "result/decoder/check_digit",
                    "result/decoder/country",
                    "result/decoder/manufacturer",
                    "result/decoder/plant",
                    "result/decoder/region",
                    "result/decoder/serial",
                    "result/decoder/vds",
                    "result/decoder/vin",
                    "result/decoder/wmi",
                    "result/evidence/*/id",
                    "result/evidence/*/kind",
                    "result/source",
                    "result/sources_tried/*",
                    "result/vehicle/body",
                    "result/vehicle/drive",
                    "result/vehicle/engine",
                    "result/vehicle/make",
                    "result/vehicle/model",
                    "result/vehicle/modification",
                    "result/vehicle/transmission",
                    "result/vehicle/year",
                ],
            },
            Fields {
                event: "LookupRetryScheduled",
                pii: &[],
                safe: &["evidence/*/id", "evidence/*/kind", "reason", "retry_at"],
            },
            Fields {
                event: "LookupFailed",
                pii: &[],
                safe: &[
                    "conversation_id",
                    "decoder/check_digit",
                    "decoder/country",
                    "decoder/manufacturer",
                    "decoder/plant",
                    "decoder/region",
                    "decoder/serial",
                    "decoder/vds",
                    "decoder/vin",
                    "decoder/wmi",
                    "evidence/*/id",
                    "evidence/*/kind",
                    "failed_at",
                    "reason",
                ],
            },
            Fields { event: "LookupRetryRequested", pii: &[], safe: &["requested_at", "requested_by"] },
            Fields {
                event: "LookupIdCorrected",
                pii: &[],
                safe: &["corrected_at", "corrected_by", "id_type", "previous_value", "value"],
            },
            Fields {
                event: "GearboxConfirmed",
                pii: &[],
                safe: &[
                    "confirmed_at",
                    "confirmed_by",
                    "conversation_id",
                    "factory_code",
                    "model",
                    "note",
                    "oem",
                    "verification",
                ],
            },
            Fields { event: "PriceLookupWanted", pii: &[], safe: &["model", "oem", "origin"] },
        ];
        FIELDS
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VehicleLookupError {
    #[error("the vehicle lookup does not exist")]
    NotFound,
    #[error("the vehicle lookup belongs to another tenant")]
    WrongTenant,
    #[error("round {0} of this lookup is over")]
    StaleRound(u32),
    #[error("the lookup is {0}; nothing to run")]
    NotRunnable(&'static str),
    #[error("a {0} lookup cannot be retried; only not found, failed or decoder-only lookups can")]
    CannotRetry(&'static str),
    #[error("the lookup is {0}; wait until it ends")]
    Running(&'static str),
    #[error("the corrected identifier is the one already looked up")]
    SameId,
    #[error("the gearbox model is empty")]
    EmptyModel,
}

/// The aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VehicleLookup {
    /// `None` until the first request.
    pub status: Option<LookupStatus>,
    pub tenant_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    pub id: Option<VehicleId>,
    pub source: Option<LookupSource>,
    pub round: u32,
    /// Attempts of the current round.
    pub attempt: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub retry_at: Option<DateTime<Utc>>,
    /// Status of the last completed answer.
    pub result_status: Option<ResultStatus>,
    /// What the last answer (completed or not found) told, with any confirmed gearbox.
    pub data: Option<VehicleData>,
    /// Why the last round failed.
    pub failure: Option<String>,
    pub confirmed: Option<ConfirmedGearbox>,
    /// Outcomes recorded so far (answers, failures, confirmations): the conversation applies them
    /// in this order and each once.
    pub revision: u32,
    pub last_outcome: Option<LastOutcome>,
    /// OEMs a price lookup was already asked for.
    pub price_wanted: Vec<String>,
    pub recent_requests: VecDeque<Uuid>,
}

fn normalize_code(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

fn clean(s: Option<String>) -> Option<String> {
    s.map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase()).filter(|v| !v.is_empty())
}

impl VehicleLookup {
    fn price_already_wanted(&self, oem: &str) -> bool {
        let oem = normalize_code(oem);
        self.price_wanted.iter().any(|w| normalize_code(w) == oem)
    }

    fn current_round(&self, round: u32) -> Result<(), VehicleLookupError> {
        if round != self.round || self.status.is_some_and(LookupStatus::is_final) {
            return Err(VehicleLookupError::StaleRound(round));
        }
        Ok(())
    }

    /// Checks a command against the state and returns the events it produces.
    pub fn decide(&self, command: VehicleLookupCommand) -> Result<Vec<VehicleLookupEvent>, VehicleLookupError> {
        use LookupStatus as S;
        use VehicleLookupCommand as C;
        use VehicleLookupEvent as E;
        let Some(status) = self.status else {
            return match command {
                C::Request(r) => Ok(vec![self.requested(*r, 1)]),
                _ => Err(VehicleLookupError::NotFound),
            };
        };
        match command {
            C::Request(r) => {
                if r.tenant_id != self.tenant_id {
                    return Err(VehicleLookupError::WrongTenant);
                }
                if self.recent_requests.contains(&r.request_id) {
                    return Ok(vec![]);
                }
                match status {
                    S::NotFound | S::Failed => Ok(vec![self.requested(*r, self.round + 1)]),
                    _ => Ok(vec![E::LookupRequestMerged {
                        request_id: r.request_id,
                        source: r.source,
                        requested_by: r.requested_by,
                        status,
                    }]),
                }
            }
            C::Start { round, at } => {
                self.current_round(round)?;
                match status {
                    S::Requested | S::RetryScheduled => {
                        Ok(vec![E::LookupStarted { round, attempt: self.attempt + 1, started_at: at }])
                    }
                    other => Err(VehicleLookupError::NotRunnable(other.as_str())),
                }
            }
            C::Complete { round, result, at } => {
                self.current_round(round)?;
                let mut out = Vec::new();
                if result.status == ResultStatus::Found
                    && let Some(oem) = result.gearbox.oem.clone()
                    && !self.price_already_wanted(&oem)
                {
                    out.push(E::PriceLookupWanted {
                        oem,
                        model: result.gearbox.model.clone(),
                        origin: PriceOrigin::Lookup,
                    });
                }
                out.insert(
                    0,
                    E::LookupCompleted {
                        round,
                        attempt: self.attempt,
                        conversation_id: self.conversation_id,
                        result: *result,
                        completed_at: at,
                    },
                );
                Ok(out)
            }
            C::RecordNotFound { round, result, at } => {
                self.current_round(round)?;
                Ok(vec![E::LookupNotFound {
                    round,
                    attempt: self.attempt,
                    conversation_id: self.conversation_id,
                    result: *result,
                    completed_at: at,
                }])
            }
            C::ScheduleRetry { round, retry_at, reason, evidence } => {
                self.current_round(round)?;
                if status != S::Started {
                    return Err(VehicleLookupError::NotRunnable(status.as_str()));
                }
                Ok(vec![E::LookupRetryScheduled { round, attempt: self.attempt, retry_at, reason, evidence }])
            }
            C::Fail { round, reason, decoder, evidence, at } => {
                self.current_round(round)?;
                Ok(vec![E::LookupFailed {
                    round,
                    attempts: self.attempt,
                    conversation_id: self.conversation_id,
                    reason,
                    decoder,
                    evidence,
                    failed_at: at,
                }])
            }
            C::Retry { by, at } => {
                let retryable = match status {
                    S::NotFound | S::Failed => true,
                    S::Completed => self.result_status == Some(ResultStatus::DecoderOnly),
                    _ => false,
                };
                if !retryable {
                    let what = if status == S::Completed { "completed" } else { status.as_str() };
                    return Err(VehicleLookupError::CannotRetry(what));
                }
                Ok(vec![E::LookupRetryRequested { round: self.round + 1, requested_by: by, requested_at: at }])
            }
            C::CorrectId { id, by, at } => {
                if !status.is_final() {
                    return Err(VehicleLookupError::Running(status.as_str()));
                }
                let previous = self.id.as_ref().map(|i| i.value().to_string()).unwrap_or_default();
                if self.id.as_ref() == Some(&id) {
                    return Err(VehicleLookupError::SameId);
                }
                Ok(vec![E::LookupIdCorrected {
                    round: self.round + 1,
                    id_type: id.id_type(),
                    previous_value: previous,
                    value: id.value().to_string(),
                    corrected_by: by,
                    corrected_at: at,
                }])
            }
            C::ConfirmGearbox { model, oem, factory_code, note, by, at } => {
                let model = clean(Some(model)).ok_or(VehicleLookupError::EmptyModel)?;
                let oem = clean(oem);
                let factory_code = clean(factory_code);
                let verification = self.verify(&model, oem.as_deref());
                let mut out = vec![E::GearboxConfirmed {
                    conversation_id: self.conversation_id,
                    model: model.clone(),
                    oem: oem.clone(),
                    factory_code,
                    verification,
                    note: note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
                    confirmed_by: by,
                    confirmed_at: at,
                }];
                if let Some(oem) = oem
                    && !self.price_already_wanted(&oem)
                {
                    out.push(E::PriceLookupWanted { oem, model: Some(model), origin: PriceOrigin::Tag });
                }
                Ok(out)
            }
        }
    }

    fn requested(&self, r: NewRequest, round: u32) -> VehicleLookupEvent {
        VehicleLookupEvent::LookupRequested {
            request_id: r.request_id,
            round,
            tenant_id: r.tenant_id,
            conversation_id: r.conversation_id,
            message_id: r.message_id,
            id_type: r.id.id_type(),
            value: r.id.value().to_string(),
            source: r.source,
            requested_by: r.requested_by,
            requested_at: r.at,
        }
    }

    /// Compares a gearbox read from its tag with what the lookup found.
    fn verify(&self, model: &str, oem: Option<&str>) -> Verification {
        let Some(gearbox) = self.data.as_ref().map(|d| &d.gearbox) else { return Verification::Confirmed };
        let found_model = gearbox.model.as_deref().map(normalize_code);
        let found_oems: Vec<String> = gearbox
            .oem
            .iter()
            .map(|o| normalize_code(o))
            .chain(gearbox.oem_candidates.iter().filter(|c| c.score > 0).map(|c| normalize_code(&c.oem)))
            .collect();
        if found_model.is_none() && found_oems.is_empty() {
            return Verification::Confirmed;
        }
        let model_matches = found_model.is_some_and(|m| {
            let tag = normalize_code(model);
            // A tag often carries a longer marking (`U241E-06A`) than the catalogue's model.
            !m.is_empty() && (tag == m || tag.starts_with(&m))
        });
        let oem_matches = oem.is_some_and(|o| found_oems.contains(&normalize_code(o)));
        if model_matches || oem_matches { Verification::VerifiedMatch } else { Verification::Mismatch }
    }

    /// Folds one event into the state.
    pub fn evolve(&mut self, event: VehicleLookupEvent) {
        use VehicleLookupEvent as E;
        match event {
            E::LookupRequested {
                request_id,
                round,
                tenant_id,
                conversation_id,
                message_id,
                id_type,
                value,
                source,
                ..
            } => {
                self.status = Some(LookupStatus::Requested);
                self.tenant_id = tenant_id;
                if self.conversation_id.is_none() {
                    self.conversation_id = conversation_id;
                }
                if message_id.is_some() {
                    self.message_id = message_id;
                }
                if let Ok(id) = VehicleId::parse(id_type, &value) {
                    self.id = Some(id);
                }
                self.source.get_or_insert(source);
                self.new_round(round);
                self.remember(request_id);
            }
            E::LookupRequestMerged { request_id, .. } => self.remember(request_id),
            E::LookupStarted { attempt, started_at, .. } => {
                self.status = Some(LookupStatus::Started);
                self.attempt = attempt;
                self.started_at = Some(started_at);
                self.retry_at = None;
            }
            E::LookupCompleted { result, .. } => {
                self.status = Some(LookupStatus::Completed);
                self.last_outcome = Some(LastOutcome::Answer);
                self.result_status = Some(result.status);
                self.failure = None;
                self.revision += 1;
                let (id_type, value) = self.id_parts();
                self.data = Some(VehicleData {
                    id_type,
                    value,
                    status: result.status.into(),
                    vehicle: result.vehicle,
                    gearbox: result.gearbox,
                    source: Some(result.source),
                    confidence: result.confidence,
                    decoder: result.decoder,
                    confirmed: self.confirmed.clone(),
                    note: result.note,
                });
            }
            E::LookupNotFound { result, .. } => {
                self.status = Some(LookupStatus::NotFound);
                self.last_outcome = Some(LastOutcome::Answer);
                self.result_status = None;
                self.failure = None;
                self.revision += 1;
                let (id_type, value) = self.id_parts();
                let source = Some(result.source);
                self.data = Some(VehicleData {
                    id_type,
                    value,
                    status: VehicleDataStatus::NotFound,
                    vehicle: result.vehicle.unwrap_or_default(),
                    gearbox: GearboxInfo::default(),
                    confidence: confidence(VehicleDataStatus::NotFound, false, false, source.as_deref(), false),
                    source,
                    decoder: result.decoder,
                    confirmed: self.confirmed.clone(),
                    note: None,
                });
            }
            E::LookupRetryScheduled { retry_at, reason, .. } => {
                self.status = Some(LookupStatus::RetryScheduled);
                self.retry_at = Some(retry_at);
                self.failure = Some(reason);
            }
            E::LookupFailed { reason, .. } => {
                self.status = Some(LookupStatus::Failed);
                self.last_outcome = Some(LastOutcome::Failure);
                self.result_status = None;
                self.failure = Some(reason);
                self.revision += 1;
            }
            E::LookupRetryRequested { round, .. } => {
                self.status = Some(LookupStatus::Requested);
                self.new_round(round);
            }
            E::LookupIdCorrected { round, id_type, value, .. } => {
                self.status = Some(LookupStatus::Requested);
                if let Ok(id) = VehicleId::parse(id_type, &value) {
                    self.id = Some(id);
                }
                self.new_round(round);
            }
            E::GearboxConfirmed { model, oem, factory_code, verification, confirmed_by, .. } => {
                let confirmed = ConfirmedGearbox { model, oem, factory_code, verification, confirmed_by };
                let (id_type, value) = self.id_parts();
                // Without an answer (failed lookup) the tag is all the conversation learns.
                let data = self.data.get_or_insert_with(|| VehicleData {
                    id_type,
                    value,
                    status: VehicleDataStatus::NotFound,
                    vehicle: VehicleMeta::default(),
                    gearbox: GearboxInfo::default(),
                    source: None,
                    confidence: 0.0,
                    decoder: None,
                    confirmed: None,
                    note: None,
                });
                data.confirmed = Some(confirmed.clone());
                self.confirmed = Some(confirmed);
                self.revision += 1;
                self.last_outcome = Some(LastOutcome::Confirmation);
            }
            E::PriceLookupWanted { oem, .. } => self.price_wanted.push(oem),
        }
    }

    fn new_round(&mut self, round: u32) {
        self.round = round;
        self.attempt = 0;
        self.started_at = None;
        self.retry_at = None;
    }

    fn remember(&mut self, request_id: Uuid) {
        self.recent_requests.push_back(request_id);
        while self.recent_requests.len() > RECENT_REQUESTS {
            self.recent_requests.pop_front();
        }
    }

    fn id_parts(&self) -> (IdType, String) {
        self.id.as_ref().map_or((IdType::Vin, String::new()), |i| (i.id_type(), i.value().to_string()))
    }
}

crate::impl_aggregate!(VehicleLookup, "vehicle_lookup", VehicleLookupCommand, VehicleLookupEvent, VehicleLookupError);
