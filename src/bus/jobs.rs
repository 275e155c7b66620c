//! The jobs, one type per kind of work: the dispatcher builds them from events, the stream carries
//! them as JSON, the worker of the kind reads them back typed ([`Job::payload`]). A job also
//! carries the [`Cause`] of the event that asked for it, so the commands a worker issues keep the
//! chain: same correlation id, causation naming that event.
//!
//! Payload shapes are stable: jobs stored before a change keep reading (`work_items` keeps
//! undispatched jobs across deploys).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Job, Kind};
use crate::store::{Cause, EventMetadata};
use aisales_domain::vehicle_lookup::{IdType, LookupSource};

/// A kind of work and its payload.
pub trait JobPayload: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stream and worker that do it.
    const KIND: Kind;

    /// The job's id: the same work asked for twice has the same id (a second request of it is
    /// the same job).
    fn job_id(&self) -> String;
}

/// A job as the dispatcher asks for it: kind, id and payload, ready to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub kind: Kind,
    pub job_id: String,
    pub payload: serde_json::Value,
}

impl JobSpec {
    pub fn of<J: JobPayload>(job: &J) -> Self {
        JobSpec {
            kind: J::KIND,
            job_id: job.job_id(),
            payload: serde_json::to_value(job).expect("a job payload serializes"),
        }
    }
}

/// A job whose payload is not what its kind expects (a bug, or a hand-edited stream entry).
#[derive(Debug, thiserror::Error)]
#[error("the payload of job {job_id} is not a {kind} job: {source}")]
pub struct BadPayload {
    pub job_id: String,
    pub kind: Kind,
    pub source: serde_json::Error,
}

impl Job {
    /// The payload, typed.
    pub fn payload<J: JobPayload>(&self) -> Result<J, BadPayload> {
        serde_json::from_value(self.payload.clone()).map_err(|source| BadPayload {
            job_id: self.job_id.clone(),
            kind: J::KIND,
            source,
        })
    }

    /// Metadata of a command `actor` issues for this job: it continues the chain of the event that
    /// asked for the job. A job recorded before jobs carried their cause starts a new chain and
    /// names itself as the cause.
    pub fn metadata(&self, actor: impl Into<String>) -> EventMetadata {
        match &self.cause {
            Some(cause) => EventMetadata::from_cause(cause, self.tenant_id, actor),
            None => {
                let mut m = EventMetadata::system(self.tenant_id, actor);
                m.causation_id = Some(format!("job:{}", self.job_id));
                m
            }
        }
    }

    /// The correlation id of the chain this job belongs to, when it carries one.
    pub fn correlation_id(&self) -> Option<Uuid> {
        self.cause.as_ref().map(|c: &Cause| c.correlation_id)
    }
}

/// Send a queued reply through its channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReply {
    pub conversation_id: Uuid,
    pub reply_id: Uuid,
}

impl JobPayload for SendReply {
    const KIND: Kind = Kind::MessageSend;
    fn job_id(&self) -> String {
        format!("send:{}", self.reply_id)
    }
}

/// Draft a reply suggestion for a conversation's pending request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftSuggestion {
    pub conversation_id: Uuid,
    pub request_id: Uuid,
}

impl JobPayload for DraftSuggestion {
    const KIND: Kind = Kind::ReplySuggestion;
    fn job_id(&self) -> String {
        format!("suggest:{}", self.request_id)
    }
}

/// The work of vehicle lookups, told apart by `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum VehicleLookupJob {
    /// Record a conversation's request on the lookup (creating it, or merging into it).
    Request(LookupRequest),
    /// Run one round of a lookup with the browser.
    Lookup { lookup_id: Uuid, round: u32 },
    /// Tell the conversation about the lookup's newest outcome.
    Report { lookup_id: Uuid },
}

/// A conversation's request for a vehicle lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupRequest {
    pub lookup_id: Uuid,
    pub request_id: Uuid,
    pub conversation_id: Uuid,
    pub message_id: Option<Uuid>,
    pub id_type: IdType,
    pub value: String,
    pub source: LookupSource,
    pub requested_by: String,
}

impl VehicleLookupJob {
    /// The lookup the job is about.
    pub fn lookup_id(&self) -> Uuid {
        match self {
            VehicleLookupJob::Request(r) => r.lookup_id,
            VehicleLookupJob::Lookup { lookup_id, .. } | VehicleLookupJob::Report { lookup_id } => *lookup_id,
        }
    }
}

impl JobPayload for VehicleLookupJob {
    const KIND: Kind = Kind::VehicleLookup;
    fn job_id(&self) -> String {
        match self {
            VehicleLookupJob::Request(r) => format!("vehicle-request:{}", r.request_id),
            VehicleLookupJob::Lookup { lookup_id, round } => format!("vehicle-lookup:{lookup_id}:{round}"),
            VehicleLookupJob::Report { lookup_id } => format!("vehicle-report:{lookup_id}"),
        }
    }
}

/// The work of price lookups, told apart by `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PriceLookupJob {
    /// A vehicle lookup found a gearbox whose price is wanted (its `PriceLookupWanted` event).
    FromVehicleLookup {
        request_id: Uuid,
        vehicle_lookup_id: Uuid,
        oem: String,
        #[serde(default)]
        model: Option<String>,
    },
    /// A transmission code in a customer message.
    FromMessage { request_id: Uuid, conversation_id: Uuid, message_id: Uuid, code: String },
    /// Run one round's search over the sources, conclude it and offer the answer.
    Search { lookup_id: Uuid, round: u32 },
    /// Offer the recorded answer to the conversations waiting for it (a request answered from a
    /// fresh result).
    Offer { lookup_id: Uuid, request_id: Uuid },
}

impl PriceLookupJob {
    /// The job id of the request `request_id` (the request's events finish it).
    pub fn request_job_id(request_id: Uuid) -> String {
        format!("price-request:{request_id}")
    }

    /// The job id of the search of `round`.
    pub fn search_job_id(lookup_id: Uuid, round: u32) -> String {
        format!("price-search:{lookup_id}:{round}")
    }
}

impl JobPayload for PriceLookupJob {
    const KIND: Kind = Kind::PriceLookup;
    fn job_id(&self) -> String {
        match self {
            PriceLookupJob::FromVehicleLookup { request_id, .. } | PriceLookupJob::FromMessage { request_id, .. } => {
                Self::request_job_id(*request_id)
            }
            PriceLookupJob::Search { lookup_id, round } => Self::search_job_id(*lookup_id, *round),
            PriceLookupJob::Offer { request_id, .. } => format!("price-offer:{request_id}"),
        }
    }
}

/// A no-op through the whole bus (operators' end-to-end check, the bus benchmark).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub ping_id: Uuid,
}

impl JobPayload for Ping {
    const KIND: Kind = Kind::Probe;
    fn job_id(&self) -> String {
        format!("probe:{}", self.ping_id)
    }
}

/// The work on customers' files, told apart by `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum MediaJob {
    /// Download attachment `index` of a customer message from its provider and store it.
    Store { conversation_id: Uuid, message_id: Uuid, index: u32, attachment: aisales_domain::conversation::Attachment },
    /// Read a stored photo (VIN plate, registration document, gearbox tag).
    Read { conversation_id: Uuid, message_id: Uuid, index: u32, sha256: String, mime_type: String },
}

impl MediaJob {
    /// The id of the store job of an attachment.
    pub fn store_job_id(message_id: Uuid, index: u32) -> String {
        format!("media-store:{message_id}:{index}")
    }

    /// The id of the read job of a photo.
    pub fn read_job_id(message_id: Uuid, index: u32) -> String {
        format!("media-read:{message_id}:{index}")
    }
}

impl JobPayload for MediaJob {
    const KIND: Kind = Kind::Media;
    fn job_id(&self) -> String {
        match self {
            MediaJob::Store { message_id, index, .. } => Self::store_job_id(*message_id, *index),
            MediaJob::Read { message_id, index, .. } => Self::read_job_id(*message_id, *index),
        }
    }
}

/// The work of leads, told apart by `action`. Every timer of a lead is one of these jobs, due at
/// its time in `work_items` (durable: restarts and a lost Redis do not lose it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum LeadJob {
    /// Run (or go on with) an outreach round: due now, or at the opening.
    Outreach { lead_id: Uuid, round: u32 },
    /// Find out how an attempt's message fared on the delivery path, and go on.
    Confirm { lead_id: Uuid, round: u32, reply_id: Uuid },
    /// The no-reply check of a contacted lead.
    NoReply { lead_id: Uuid, check: u32 },
    /// Tell the team through the escalation bot (`notice`: `failed:<round>`, `no_reply:<check>`).
    Notify { lead_id: Uuid, notice: String },
    /// Tell the team through the same bot that a conversation was escalated (`escalation`: the
    /// sequence number of its `ConversationEscalated`).
    NotifyEscalation { conversation_id: Uuid, escalation: u64, reason: String },
}

impl LeadJob {
    /// The id of the escalation notice of a conversation.
    pub fn escalation_job_id(conversation_id: Uuid, escalation: u64) -> String {
        format!("escalation-notify:{conversation_id}:{escalation}")
    }

    /// The id of the confirm job of an attempt's message.
    pub fn confirm_job_id(reply_id: Uuid) -> String {
        format!("lead-confirm:{reply_id}")
    }
}

impl JobPayload for LeadJob {
    const KIND: Kind = Kind::Leads;
    fn job_id(&self) -> String {
        match self {
            LeadJob::Outreach { lead_id, round } => format!("lead-outreach:{lead_id}:{round}"),
            LeadJob::Confirm { reply_id, .. } => Self::confirm_job_id(*reply_id),
            LeadJob::NoReply { lead_id, check } => format!("lead-no-reply:{lead_id}:{check}"),
            LeadJob::Notify { lead_id, notice } => format!("lead-notify:{lead_id}:{notice}"),
            LeadJob::NotifyEscalation { conversation_id, escalation, .. } => {
                Self::escalation_job_id(*conversation_id, *escalation)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_stored_before_they_were_typed_still_read() {
        // Payloads as the dispatcher wrote them with `json!` before.
        let send: SendReply = serde_json::from_value(serde_json::json!({
            "conversation_id": "0194f0c2-0000-7000-8000-000000000001",
            "reply_id": "0194f0c2-0000-7000-8000-000000000002",
        }))
        .unwrap();
        assert_eq!(send.job_id(), "send:0194f0c2-0000-7000-8000-000000000002");
        let request: VehicleLookupJob = serde_json::from_value(serde_json::json!({
            "action": "request",
            "lookup_id": "0194f0c2-0000-7000-8000-000000000001",
            "request_id": "0194f0c2-0000-7000-8000-000000000003",
            "conversation_id": "0194f0c2-0000-7000-8000-000000000004",
            "message_id": null,
            "id_type": "VIN",
            "value": "JTNBE46K803123456",
            "source": "detected",
            "requested_by": "conversation",
        }))
        .unwrap();
        assert!(matches!(&request, VehicleLookupJob::Request(r) if r.id_type == IdType::Vin));
        let round: VehicleLookupJob = serde_json::from_value(serde_json::json!({
            "action": "lookup", "lookup_id": "0194f0c2-0000-7000-8000-000000000001", "round": 2
        }))
        .unwrap();
        assert_eq!(round.job_id(), "vehicle-lookup:0194f0c2-0000-7000-8000-000000000001:2");
        let spec = JobSpec::of(&round);
        assert_eq!(spec.payload["action"], "lookup");
        assert_eq!(spec.kind, Kind::VehicleLookup);
    }
}
