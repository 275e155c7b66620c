//! The worker bus: aggregates ask for work with events; the `work` projector records each job in
//! `work_items` and pushes it onto a Redis stream per kind; workers in consumer groups do it and
//! report back with commands. Redis is only the transport: a job stays outstanding in Postgres until
//! its aggregate records it done, and the sweeper dispatches again whatever Redis lost.

pub mod jobs;
pub mod streams;
pub mod sweeper;
pub mod work;
pub mod worker;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A kind of job: one stream, one consumer group, one `aisales worker KIND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    MessageSend,
    ReplySuggestion,
    VehicleLookup,
    PriceLookup,
    Leads,
    Probe,
    Media,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::MessageSend,
        Kind::ReplySuggestion,
        Kind::VehicleLookup,
        Kind::PriceLookup,
        Kind::Leads,
        Kind::Probe,
        Kind::Media,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MessageSend => "message-send",
            Kind::ReplySuggestion => "reply-suggestion",
            Kind::VehicleLookup => "vehicle-lookup",
            Kind::PriceLookup => "price-lookup",
            Kind::Leads => "leads",
            Kind::Probe => "probe",
            Kind::Media => "media",
        }
    }

    /// The stream of this kind's jobs (`prefix` is `REDIS_PREFIX`).
    pub fn stream(self, prefix: &str) -> String {
        format!("{prefix}:jobs:{}", self.as_str())
    }

    /// The dead-letter stream of this kind.
    pub fn dead_letters(self, prefix: &str) -> String {
        format!("{prefix}:dead:{}", self.as_str())
    }

    /// How long a dispatched job may stay unfinished before it is dispatched again. Browser
    /// lookups take longer than a message send.
    pub fn redispatch_after(self, base: Duration) -> Duration {
        match self {
            Kind::VehicleLookup | Kind::PriceLookup => base * 5,
            _ => base,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown kind name.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown worker kind `{0}`; use message-send, reply-suggestion, vehicle-lookup, price-lookup, leads, probe, media or all"
)]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// A stage of a job's way from the event that asks for it to the start of its handler. Each is a
/// histogram `aisales_job_stage_seconds{kind,stage}`; together they add up to the time from the
/// event's commit to the job's start (docs/worker-bus.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Event stored → in a dispatcher batch: the notification, the wake-up, older transactions
    /// still in flight (the log is read in commit order), the batch before.
    Pickup,
    /// The dispatcher's batch: `work_items` written and committed.
    Batch,
    /// Batch committed → `XADD` acknowledged by Redis.
    Xadd,
    /// On the stream until a worker's `XREADGROUP` returns it (all the worker's slots busy, or
    /// the worker still busy with the previous read).
    Stream,
    /// Read → a free slot of the worker's concurrency.
    Slot,
    /// Slot → the job's lease taken; the handler starts.
    Lease,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pickup => "pickup",
            Stage::Batch => "batch",
            Stage::Xadd => "xadd",
            Stage::Stream => "stream",
            Stage::Slot => "slot",
            Stage::Lease => "lease",
        }
    }

    /// Records `seconds` spent in this stage by one job of `kind`.
    pub fn record(self, kind: Kind, seconds: f64) {
        metrics::histogram!("aisales_job_stage_seconds", "kind" => kind.as_str(), "stage" => self.as_str())
            .record(seconds.max(0.0));
    }
}

/// Seconds from `from` to `to` (wall clocks, possibly of two processes on one host).
pub(crate) fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// Consumer group every worker joins.
pub const GROUP: &str = "aisales-workers";

/// One job as carried on a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub kind: Kind,
    pub tenant_id: Option<Uuid>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub payload: serde_json::Value,
    /// The event that asked for the job (absent on jobs recorded before jobs carried it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<crate::store::Cause>,
    /// When the event that asked for the job was stored.
    pub requested_at: DateTime<Utc>,
    /// When this copy was put on the stream.
    pub dispatched_at: DateTime<Utc>,
}
