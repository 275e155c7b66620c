//! `Probe`: a tiny aggregate that sends a no-op job through the whole worker bus (dispatcher →
//! stream → worker → result command). Operators use it to check the bus end to end; the bus
//! benchmark measures with it.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;

use crate::codec::EventSchema;
use crate::pii::Fields;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Commands of [`Probe`].
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeCommand {
    Ping { ping_id: Uuid, at: DateTime<Utc> },
    RecordPong { ping_id: Uuid, worker: String, at: DateTime<Utc> },
}

/// Events of [`Probe`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProbeEvent {
    PingRequested { ping_id: Uuid, at: DateTime<Utc> },
    PongRecorded { ping_id: Uuid, worker: String, at: DateTime<Utc> },
}

impl DomainEvent for ProbeEvent {
    fn event_type(&self) -> String {
        self.name().into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

impl EventSchema for ProbeEvent {
    const AGGREGATE: &'static str = "probe";

    /// No customer data.
    fn fields() -> &'static [Fields] {
        static FIELDS: &[Fields] = &[
            Fields { event: "PingRequested", pii: &[], safe: &["at", "ping_id"] },
            Fields { event: "PongRecorded", pii: &[], safe: &["at", "ping_id", "worker"] },
        ];
        FIELDS
    }
}

/// Errors of [`Probe`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("this probe was already pinged")]
    AlreadyPinged,
    #[error("this probe was never pinged")]
    NotPinged,
    #[error("the pong was already recorded")]
    AlreadyAnswered,
}

/// One ping and its pong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub ping_id: Option<Uuid>,
    pub answered: bool,
}

impl Probe {
    pub fn decide(&self, cmd: ProbeCommand) -> Result<Vec<ProbeEvent>, ProbeError> {
        match cmd {
            ProbeCommand::Ping { .. } if self.ping_id.is_some() => Err(ProbeError::AlreadyPinged),
            ProbeCommand::Ping { ping_id, at } => Ok(vec![ProbeEvent::PingRequested { ping_id, at }]),
            ProbeCommand::RecordPong { .. } if self.ping_id.is_none() => Err(ProbeError::NotPinged),
            ProbeCommand::RecordPong { .. } if self.answered => Err(ProbeError::AlreadyAnswered),
            ProbeCommand::RecordPong { ping_id, worker, at } => {
                Ok(vec![ProbeEvent::PongRecorded { ping_id, worker, at }])
            }
        }
    }

    pub fn evolve(&mut self, e: ProbeEvent) {
        match e {
            ProbeEvent::PingRequested { ping_id, .. } => self.ping_id = Some(ping_id),
            ProbeEvent::PongRecorded { .. } => self.answered = true,
        }
    }
}

crate::impl_aggregate!(Probe, "probe", ProbeCommand, ProbeEvent, ProbeError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pong_is_recorded_once() {
        let mut p = Probe::default();
        let id = Uuid::now_v7();
        for e in p.decide(ProbeCommand::Ping { ping_id: id, at: Utc::now() }).unwrap() {
            p.evolve(e);
        }
        let pong = ProbeCommand::RecordPong { ping_id: id, worker: "w".into(), at: Utc::now() };
        for e in p.decide(pong.clone()).unwrap() {
            p.evolve(e);
        }
        assert_eq!(p.decide(pong), Err(ProbeError::AlreadyAnswered));
    }
}
