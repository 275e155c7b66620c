//! The leads board (`rm_leads`): one row per lead with its status, kind, contacts, the car and
//! gearbox it asks about, how it was reached (channel, conversation), why it failed, and the times
//! the funnel statistics count (received → contacted → replied → won).
//!
//! A lead whose customer is erased (`LeadErased`) is written again from its events as they now read,
//! its customer data `[erased]` ([`erasure`](crate::conversation::erasure)), so that its row is the
//! one a rebuild makes.

use std::collections::HashMap;

use aisales_domain::lead::{LeadEvent as E, LeadStatus};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::conversation::erasure::read_erased;
use crate::conversation::{Change, record_changes};
use crate::events::StoredEvent;
use crate::projector::{Projector, Target};
use crate::rows;

/// Aggregate type of leads in the event log.
pub const LEAD: &str = "lead";

/// A row of `rm_leads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadRow {
    pub lead_id: Uuid,
    pub tenant_id: Uuid,
    pub form_id: Uuid,
    pub form_kind: String,
    /// The quiz's or form's name.
    pub source: String,
    pub status: String,
    pub kind: String,
    pub name: Option<String>,
    /// `+79991234567`.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub telegram: Option<String>,
    pub preferred_channel: Option<String>,
    /// The channel the customer was reached on.
    pub channel: Option<String>,
    pub account_id: Option<Uuid>,
    pub vin: Option<String>,
    pub car: Option<String>,
    pub gearbox_type: Option<String>,
    pub city: Option<String>,
    /// Every extracted field (`LeadFields`).
    pub fields: Value,
    /// The first message.
    pub text: String,
    pub failure_reason: Option<String>,
    /// Why the first message waits (outside working hours).
    pub note: Option<String>,
    pub conversation_id: Option<Uuid>,
    pub round: i32,
    pub attempts: i32,
    pub submissions: i32,
    /// When the pending outreach round is due.
    pub due_at: Option<DateTime<Utc>>,
    /// When the pending no-reply check fires.
    pub no_reply_due_at: Option<DateTime<Utc>>,
    pub assigned_to: Option<String>,
    pub lost_reason: Option<String>,
    pub received_at: DateTime<Utc>,
    pub contacted_at: Option<DateTime<Utc>>,
    pub replied_at: Option<DateTime<Utc>>,
    pub qualified_at: Option<DateTime<Utc>>,
    pub won_at: Option<DateTime<Utc>>,
    pub lost_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub last_sequence: i64,
}

fn set(status: &mut String, s: LeadStatus) {
    *status = s.as_str().to_string();
}

impl LeadRow {
    /// Folds one event into the row; `None` for a row that does not exist yet and an event that
    /// does not open it.
    pub fn open(lead_id: Uuid, event: &E, at: DateTime<Utc>) -> Option<LeadRow> {
        let E::LeadReceived { tenant_id, form_id, form_kind, kind, fields, text, received_at, .. } = event else {
            return None;
        };
        Some(LeadRow {
            lead_id,
            tenant_id: *tenant_id,
            form_id: *form_id,
            form_kind: form_kind.as_str().to_string(),
            source: fields.form_name.clone(),
            status: LeadStatus::Received.as_str().to_string(),
            kind: kind.as_str().to_string(),
            name: fields.client_name.clone(),
            phone: fields.phone.as_ref().map(|p| p.e164()),
            email: fields.email.clone(),
            telegram: fields.telegram.as_ref().map(|t| t.as_str().to_string()),
            preferred_channel: fields.preferred_channel.map(|c| c.as_str().to_string()),
            channel: None,
            account_id: None,
            vin: fields.vin.clone(),
            car: fields.car.clone(),
            gearbox_type: fields.gearbox_type.clone(),
            city: fields.city.clone(),
            fields: serde_json::to_value(fields).unwrap_or(Value::Null),
            text: text.clone(),
            failure_reason: None,
            note: None,
            conversation_id: None,
            round: 0,
            attempts: 0,
            submissions: 1,
            due_at: None,
            no_reply_due_at: None,
            assigned_to: None,
            lost_reason: None,
            received_at: *received_at,
            contacted_at: None,
            replied_at: None,
            qualified_at: None,
            won_at: None,
            lost_at: None,
            updated_at: at,
            last_sequence: 0,
        })
    }

    pub fn apply(&mut self, event: &E, at: DateTime<Utc>, sequence: i64) {
        use LeadStatus as S;
        self.updated_at = at;
        self.last_sequence = sequence;
        match event {
            E::LeadReceived { .. } => {}
            E::SubmissionRepeated { .. } => self.submissions += 1,
            E::OutreachScheduled { round, due_at, outside_hours, note, .. } => {
                set(&mut self.status, if *outside_hours { S::Scheduled } else { S::Received });
                self.round = *round as i32;
                self.attempts = 0;
                self.due_at = Some(*due_at);
                self.note = note.clone();
                self.failure_reason = None;
            }
            E::OutreachStarted { .. } => {
                set(&mut self.status, S::Contacting);
                self.due_at = None;
            }
            E::OutreachAttempted { .. } => self.attempts += 1,
            E::OutreachAttemptFailed { .. } => {}
            E::LeadContacted { channel, account_id, conversation_id, contacted_at, .. } => {
                set(&mut self.status, S::Contacted);
                self.channel = Some(channel.as_str().to_string());
                self.account_id = Some(*account_id);
                self.conversation_id = Some(*conversation_id);
                self.contacted_at.get_or_insert(*contacted_at);
            }
            E::ContactDeliveryFailed { .. } => set(&mut self.status, S::Contacting),
            E::LeadFailed { reason, .. } => {
                set(&mut self.status, S::Failed);
                self.failure_reason = Some(reason.as_str().to_string());
                self.due_at = None;
            }
            E::OutreachCancelled { .. } => self.due_at = None,
            E::NoReplyCheckScheduled { due_at, .. } => self.no_reply_due_at = Some(*due_at),
            E::NoReplyCheckCancelled { .. } => self.no_reply_due_at = None,
            E::NoReplyDetected { .. } => {
                set(&mut self.status, S::NoReply);
                self.no_reply_due_at = None;
            }
            E::CustomerReplied { replied_at, .. } => {
                set(&mut self.status, S::Replied);
                self.replied_at.get_or_insert(*replied_at);
            }
            E::LeadQualified { qualified_at, .. } => {
                set(&mut self.status, S::Qualified);
                self.qualified_at = Some(*qualified_at);
            }
            E::LeadWon { won_at, .. } => {
                set(&mut self.status, S::Won);
                self.won_at = Some(*won_at);
            }
            E::LeadLost { reason, lost_at, .. } => {
                set(&mut self.status, S::Lost);
                self.lost_reason = Some(reason.clone());
                self.lost_at = Some(*lost_at);
            }
            E::LeadAssigned { operator, .. } => self.assigned_to = operator.clone(),
            E::TeamNotified { .. } | E::TeamNotificationFailed { .. } => {}
            // The lead takes no more commands: no round or check is due any more.
            E::LeadErased { .. } => {
                self.due_at = None;
                self.no_reply_due_at = None;
            }
        }
    }
}

/// Projector of `rm_leads`.
pub struct Leads {
    target: Target,
    name: &'static str,
}

impl Leads {
    pub fn new(target: Target) -> Self {
        Leads { target, name: target.name("leads") }
    }
}

fn decode(e: &StoredEvent) -> anyhow::Result<E> {
    <E as aisales_domain::codec::EventSchema>::decode(&e.event_type, &e.event_version, &e.payload)
        .map_err(|err| anyhow::anyhow!("lead {} event {} ({}): {err}", e.aggregate_id, e.sequence, e.event_type))
}

#[async_trait]
impl Projector for Leads {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "leads board: status, kind, contacts, channel, conversation, failure reason, funnel times"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_leads"]
    }
    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(Leads::new(target)))
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let mut items = Vec::new();
        for e in events.iter().filter(|e| e.aggregate_type == LEAD) {
            items.push((e, e.aggregate_id.parse::<Uuid>()?, decode(e)?));
        }
        if items.is_empty() {
            return Ok(());
        }
        let table = self.target.table("rm_leads");
        let keys: Vec<Uuid> = items.iter().map(|(_, id, _)| *id).collect();
        let mut rows: HashMap<Uuid, LeadRow> =
            rows::load(conn, &table, "lead_id", &keys, |r: &LeadRow| r.lead_id).await?;
        let changes = fold(&mut rows, &items);
        let mut touched: Vec<Uuid> = changes.iter().map(|c| c.entity_id).collect();
        touched.sort();
        touched.dedup();
        let out: Vec<&LeadRow> = touched.iter().filter_map(|id| rows.get(id)).collect();
        rows::upsert(conn, &table, &["lead_id"], rows::columns::<LeadRow>(), &out).await?;
        record_changes(conn, self.target, &changes).await?;
        rewrite_erased(conn, &table, &items).await
    }
}

/// Folds lead events (in global order) into `rows`: a lead's row opens with `LeadReceived` and
/// takes each later event once. Returns what the live-update feed hears: one change per event that
/// changed a row.
fn fold(rows: &mut HashMap<Uuid, LeadRow>, items: &[(&StoredEvent, Uuid, E)]) -> Vec<Change> {
    let mut changes = Vec::new();
    for (e, id, event) in items {
        let row = match rows.entry(*id) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => match LeadRow::open(*id, event, e.recorded_at) {
                Some(row) => v.insert(row),
                None => continue,
            },
        };
        if e.sequence > row.last_sequence {
            row.apply(event, e.recorded_at, e.sequence);
        }
        changes.push(Change {
            tenant_id: row.tenant_id,
            entity: "lead",
            entity_id: *id,
            conversation_id: row.conversation_id,
            change: "updated",
            position: e.position().to_string(),
        });
    }
    changes
}

/// Writes the row of each lead the batch erases again, folded from its events (up to its last one
/// in the batch) as they now read. The feed heard of it with the erasure.
async fn rewrite_erased(conn: &mut PgConnection, table: &str, items: &[(&StoredEvent, Uuid, E)]) -> anyhow::Result<()> {
    let mut last: HashMap<Uuid, i64> =
        items.iter().filter(|(_, _, event)| matches!(event, E::LeadErased { .. })).map(|(_, id, _)| (*id, 0)).collect();
    for (e, id, _) in items {
        if let Some(l) = last.get_mut(id) {
            *l = (*l).max(e.sequence);
        }
    }
    if last.is_empty() {
        return Ok(());
    }
    let mut stream = Vec::new();
    for (id, until) in last {
        stream.extend(read_erased::<E>(conn, id, until).await?);
    }
    let mut erased = Vec::with_capacity(stream.len());
    for e in &stream {
        erased.push((e, e.aggregate_id.parse::<Uuid>()?, decode(e)?));
    }
    let mut rows = HashMap::new();
    fold(&mut rows, &erased);
    let out: Vec<&LeadRow> = rows.values().collect();
    rows::upsert(conn, table, &["lead_id"], rows::columns::<LeadRow>(), &out).await
}

/// Every lead projector, writing into `target`.
pub fn all(target: Target) -> Vec<Box<dyn Projector>> {
    vec![Box::new(Leads::new(target))]
}

#[cfg(test)]
mod tests {
    use aisales_domain::lead::{Fingerprint, LeadEvent as E, LeadFormKind, LeadKind, SubmissionFormat};
    use aisales_domain::pii::ErasureCause;
    use chrono::{Duration, TimeZone, Utc};
    use uuid::Uuid;

    use super::LeadRow;

    #[test]
    fn an_erased_lead_has_nothing_due() {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let received = E::LeadReceived {
            tenant_id: Uuid::from_u128(0x7e),
            form_id: Uuid::from_u128(1),
            form_kind: LeadFormKind::Marquiz,
            submission_id: Uuid::from_u128(2),
            format: SubmissionFormat::Marquiz,
            fingerprint: Fingerprint::default(),
            kind: LeadKind::Gearbox,
            fields: Box::default(),
            text: "Здравствуйте".into(),
            received_at: t,
        };
        let lead = Uuid::from_u128(3);
        let mut row = LeadRow::open(lead, &received, t).unwrap();
        let events = [
            received,
            E::OutreachScheduled {
                round: 1,
                due_at: t + Duration::hours(10),
                outside_hours: true,
                note: None,
                requested_by: "form".into(),
                scheduled_at: t,
            },
            E::NoReplyCheckScheduled {
                check: 1,
                conversation_id: Uuid::from_u128(4),
                channel: aisales_domain::conversation::ChannelKind::Telegram,
                due_at: t + Duration::hours(1),
                after_secs: 3600,
            },
        ];
        for (n, e) in events.iter().enumerate() {
            row.apply(e, t, n as i64 + 1);
        }
        assert!(row.due_at.is_some() && row.no_reply_due_at.is_some());
        let erased = E::LeadErased { erased_by: "user:olga".into(), cause: ErasureCause::Request, erased_at: t };
        row.apply(&erased, t + Duration::hours(2), 4);
        assert_eq!((row.due_at, row.no_reply_due_at, row.last_sequence), (None, None, 4));
        assert_eq!(row.status, "scheduled", "its status stays");
    }
}
