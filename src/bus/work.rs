//! The `work` projector (the dispatcher): turns events that ask for work into `work_items` rows
//! (exactly once, with its checkpoint) and, after each batch commits, pushes the jobs that are due
//! onto their Redis streams (at least once). Jobs due later, and jobs Redis lost, are pushed by
//! the sweeper.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use aisales_domain::codec::EventSchema;
use aisales_domain::conversation::ConversationEvent as CE;
use aisales_domain::probe::ProbeEvent;
use aisales_domain::vehicle_lookup::VehicleLookupEvent as LE;
use aisales_projections::events::{Position, StoredEvent};
use aisales_projections::{Projector, rows};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::jobs::LeadJob;
use super::jobs::MediaJob;
use super::jobs::PriceLookupJob;
use super::jobs::{DraftSuggestion, JobPayload, JobSpec, LookupRequest, Ping, SendReply, VehicleLookupJob};
use super::{Job, Kind, Stage, streams};
use crate::infra::redis::Redis;
use crate::store::{Cause, EventMetadata, EventRef};
use aisales_domain::lead::LeadEvent as LeadE;
use aisales_domain::price_lookup::PriceLookupEvent as PE;

/// A row of `work_items` (without the dispatcher's operational columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkRow {
    pub job_id: String,
    pub kind: Kind,
    pub tenant_id: Option<Uuid>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub payload: serde_json::Value,
    /// The event that asked for the job last.
    #[serde(default)]
    pub cause: Option<Cause>,
    pub status: String,
    pub due_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &[&str] = &[
    "job_id",
    "kind",
    "tenant_id",
    "aggregate_type",
    "aggregate_id",
    "payload",
    "cause",
    "status",
    "due_at",
    "attempts",
    "last_error",
    "requested_at",
    "updated_at",
];

/// Writes the rows a batch touched. Of those `requested`, the ones `due` now are marked dispatched
/// (`dispatched_at` now, one more dispatch) and the others not dispatched (`dispatched_at` NULL);
/// the other rows keep their dispatch as it was.
async fn write_rows(
    conn: &mut PgConnection,
    out: &[&WorkRow],
    requested: &[&String],
    due: &[&String],
) -> anyhow::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let cols = COLUMNS.join(", ");
        let updates: Vec<&str> = COLUMNS.iter().copied().filter(|c| *c != "job_id").collect();
        let excluded: Vec<String> = updates.iter().map(|c| format!("EXCLUDED.{c}")).collect();
        format!(
            "INSERT INTO work_items ({cols}, dispatched_at, dispatch_count) \
             SELECT {cols}, CASE WHEN job_id = ANY($2) THEN now() END, CASE WHEN job_id = ANY($2) THEN 1 ELSE 0 END \
               FROM jsonb_populate_recordset(NULL::work_items, $1::jsonb) \
             ON CONFLICT (job_id) DO UPDATE SET ({}) = ROW({}), \
                dispatched_at = CASE WHEN EXCLUDED.job_id = ANY($3) THEN EXCLUDED.dispatched_at \
                                     ELSE work_items.dispatched_at END, \
                dispatch_count = work_items.dispatch_count + EXCLUDED.dispatch_count",
            updates.join(", "),
            excluded.join(", ")
        )
    });
    let json = rows::truncate_timestamps(serde_json::to_string(out)?);
    sqlx::query(&SQL).bind(json).bind(due).bind(requested).execute(conn).await?;
    Ok(())
}

impl WorkRow {
    pub fn job(&self) -> Job {
        Job {
            job_id: self.job_id.clone(),
            kind: self.kind,
            tenant_id: self.tenant_id,
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            payload: self.payload.clone(),
            cause: self.cause.clone(),
            requested_at: self.requested_at,
            dispatched_at: Utc::now(),
        }
    }
}

/// A change to a job that an event makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Request {
        job: JobSpec,
        due_at: DateTime<Utc>,
    },
    /// Like `Request`, and a job already done or failed is asked for again.
    Reopen {
        job: JobSpec,
        due_at: DateTime<Utc>,
    },
    Start {
        job_id: String,
    },
    Reschedule {
        job_id: String,
        due_at: DateTime<Utc>,
        reason: String,
    },
    Done {
        job_id: String,
    },
    Fail {
        job_id: String,
        reason: String,
    },
    /// Brings a job that is still outstanding forward to `due_at` (a job done, failed or never
    /// asked for stays as it is).
    Nudge {
        job_id: String,
        due_at: DateTime<Utc>,
    },
}

impl Change {
    fn request(job: impl JobPayload, due_at: DateTime<Utc>) -> Self {
        Change::Request { job: JobSpec::of(&job), due_at }
    }

    fn job_id(&self) -> &str {
        match self {
            Change::Request { job, .. } | Change::Reopen { job, .. } => &job.job_id,
            Change::Start { job_id }
            | Change::Reschedule { job_id, .. }
            | Change::Done { job_id }
            | Change::Fail { job_id, .. }
            | Change::Nudge { job_id, .. } => job_id,
        }
    }

    /// Whether the change asks for the work (again): the job then carries this event as its cause.
    fn asks(&self) -> bool {
        matches!(self, Change::Request { .. } | Change::Reopen { .. } | Change::Reschedule { .. })
    }
}

fn send_job(conversation_id: Uuid, reply_id: Uuid) -> String {
    SendReply { conversation_id, reply_id }.job_id()
}

fn suggestion_job(conversation_id: Uuid, request_id: Uuid) -> String {
    DraftSuggestion { conversation_id, request_id }.job_id()
}

/// The work a vehicle-lookup event asks for or finishes.
fn lookup_changes(e: &StoredEvent, lookup_id: Uuid, ev: LE) -> Vec<Change> {
    use Change::*;
    let round_job = |round: u32| VehicleLookupJob::Lookup { lookup_id, round };
    let mut out = Vec::new();
    if ev.outcome_for().is_some() {
        // One report job per lookup, asked again by every new outcome (a done job is reopened).
        out.push(Reopen { job: JobSpec::of(&VehicleLookupJob::Report { lookup_id }), due_at: e.recorded_at });
    }
    match ev {
        LE::LookupRequested { request_id, round, .. } => {
            out.push(Done { job_id: format!("vehicle-request:{request_id}") });
            out.push(Change::request(round_job(round), e.recorded_at));
        }
        LE::LookupRequestMerged { request_id, .. } => {
            out.push(Done { job_id: format!("vehicle-request:{request_id}") })
        }
        LE::LookupRetryRequested { round, .. } | LE::LookupIdCorrected { round, .. } => {
            out.push(Change::request(round_job(round), e.recorded_at))
        }
        LE::LookupStarted { round, .. } => out.push(Start { job_id: round_job(round).job_id() }),
        LE::LookupRetryScheduled { round, retry_at, reason, .. } => {
            out.push(Reschedule { job_id: round_job(round).job_id(), due_at: retry_at, reason })
        }
        LE::LookupCompleted { round, .. } | LE::LookupNotFound { round, .. } => {
            out.push(Done { job_id: round_job(round).job_id() })
        }
        LE::LookupFailed { round, reason, .. } => out.push(Fail { job_id: round_job(round).job_id(), reason }),
        LE::PriceLookupWanted { oem, model, .. } => out.push(Change::request(
            PriceLookupJob::FromVehicleLookup {
                request_id: Uuid::new_v5(&lookup_id, format!("price:{}", e.sequence).as_bytes()),
                vehicle_lookup_id: lookup_id,
                oem,
                model,
            },
            e.recorded_at,
        )),
        LE::GearboxConfirmed { .. } => {}
    }
    out
}

/// The work a price-lookup event asks for or finishes: a request starts the round's search, which
/// the end of the round finishes; a request answered from a fresh result asks for its offer.
fn price_lookup_changes(e: &StoredEvent, lookup_id: Uuid, ev: PE) -> Vec<Change> {
    use Change::*;
    let search = |round: u32| PriceLookupJob::search_job_id(lookup_id, round);
    match ev {
        PE::PriceLookupRequested { request_id, round, .. } => vec![
            Done { job_id: PriceLookupJob::request_job_id(request_id) },
            Change::request(PriceLookupJob::Search { lookup_id, round }, e.recorded_at),
        ],
        PE::PriceLookupJoined { request_id, requester, answered_from, .. } => {
            let mut out = vec![Done { job_id: PriceLookupJob::request_job_id(request_id) }];
            if answered_from.is_some() && requester.conversation_id().is_some() {
                out.push(Change::request(PriceLookupJob::Offer { lookup_id, request_id }, e.recorded_at));
            }
            out
        }
        PE::PriceSearchStarted { round, .. } => vec![Start { job_id: search(round) }],
        PE::PriceLookupPriced { round, .. }
        | PE::PriceLookupEstimated { round, .. }
        | PE::PriceLookupNotFound { round, .. } => {
            vec![Done { job_id: search(round) }]
        }
        PE::PriceLookupFailed { round, reason, .. } => vec![Fail { job_id: search(round), reason }],
        PE::PriceSourceQueried { .. }
        | PE::PriceListingsRecorded { .. }
        | PE::PriceListingsDiscarded { .. }
        | PE::PriceSuggestionOffered { .. } => vec![],
    }
}

/// The work a conversation event asks for or finishes.
fn conversation_changes(e: &StoredEvent, conversation: Uuid, ev: &CE) -> Vec<Change> {
    use Change::*;
    match ev {
        CE::SuggestionRequested { request_id, not_before, .. } => vec![Change::request(
            DraftSuggestion { conversation_id: conversation, request_id: *request_id },
            *not_before,
        )],
        CE::SuggestionGenerated { request_id, .. } => vec![Done { job_id: suggestion_job(conversation, *request_id) }],
        CE::SuggestionFailed { request_id, reason } => {
            vec![Fail { job_id: suggestion_job(conversation, *request_id), reason: reason.clone() }]
        }
        CE::ReplyQueued { reply_id, send_after, .. } => {
            vec![Change::request(SendReply { conversation_id: conversation, reply_id: *reply_id }, *send_after)]
        }
        CE::ReplySendStarted { reply_id, .. } => vec![Start { job_id: send_job(conversation, *reply_id) }],
        CE::ReplySendRetryScheduled { reply_id, retry_at, reason, .. } => {
            vec![Reschedule { job_id: send_job(conversation, *reply_id), due_at: *retry_at, reason: reason.clone() }]
        }
        CE::ReplyRetryRequested { reply_id } => vec![Reschedule {
            job_id: send_job(conversation, *reply_id),
            due_at: e.recorded_at,
            reason: "retry requested".into(),
        }],
        CE::ReplySent { reply_id, .. } => vec![
            Done { job_id: send_job(conversation, *reply_id) },
            Nudge { job_id: LeadJob::confirm_job_id(*reply_id), due_at: e.recorded_at },
        ],
        CE::ReplyFailed { reply_id, reason, .. } => vec![
            Fail { job_id: send_job(conversation, *reply_id), reason: reason.clone() },
            Nudge { job_id: LeadJob::confirm_job_id(*reply_id), due_at: e.recorded_at },
        ],
        CE::VehicleLookupRequested { lookup_id, request_id, message_id, id_type, value, source, requested_by } => {
            vec![Change::request(
                VehicleLookupJob::Request(LookupRequest {
                    lookup_id: *lookup_id,
                    request_id: *request_id,
                    conversation_id: conversation,
                    message_id: *message_id,
                    id_type: *id_type,
                    value: value.clone(),
                    source: *source,
                    requested_by: requested_by.clone(),
                }),
                e.recorded_at,
            )]
        }
        CE::TransmissionCodeDetected { message_id, code, .. } => vec![Change::request(
            PriceLookupJob::FromMessage {
                request_id: Uuid::new_v5(message_id, b"price"),
                conversation_id: conversation,
                message_id: *message_id,
                code: code.clone(),
            },
            e.recorded_at,
        )],
        CE::VehicleDataAttached { lookup_id, .. } | CE::VehicleLookupFailed { lookup_id, .. } => {
            vec![Done { job_id: VehicleLookupJob::Report { lookup_id: *lookup_id }.job_id() }]
        }
        CE::MessageReceived { message_id, attachments, .. } => attachments
            .iter()
            .enumerate()
            .map(|(index, a)| {
                Change::request(
                    MediaJob::Store {
                        conversation_id: conversation,
                        message_id: *message_id,
                        index: index as u32,
                        attachment: a.clone(),
                    },
                    e.recorded_at,
                )
            })
            .collect(),
        CE::AttachmentStored { message_id, index, media } => {
            let mut out = vec![Done { job_id: MediaJob::store_job_id(*message_id, *index) }];
            if media.mime_type.starts_with("image/") {
                out.push(Change::request(
                    MediaJob::Read {
                        conversation_id: conversation,
                        message_id: *message_id,
                        index: *index,
                        sha256: media.sha256.clone(),
                        mime_type: media.mime_type.clone(),
                    },
                    e.recorded_at,
                ));
            }
            out
        }
        CE::AttachmentRefused { message_id, index, .. } => {
            vec![Done { job_id: MediaJob::store_job_id(*message_id, *index) }]
        }
        CE::PhotoRead { message_id, index, .. } | CE::PhotoNotRead { message_id, index, .. } => {
            vec![Done { job_id: MediaJob::read_job_id(*message_id, *index) }]
        }
        CE::ConversationEscalated { reason, .. } => vec![Change::request(
            LeadJob::NotifyEscalation {
                conversation_id: conversation,
                escalation: e.sequence as u64,
                reason: reason.clone(),
            },
            e.recorded_at,
        )],
        CE::TeamNotified { escalation, .. } | CE::TeamNotificationFailed { escalation, .. } => {
            vec![Done { job_id: LeadJob::escalation_job_id(conversation, *escalation) }]
        }
        _ => vec![],
    }
}

/// The work a lead event asks for or finishes: its timers (the round due at the opening, the
/// no-reply check), the confirmation of each attempt's message, and the team's notifications.
fn lead_changes(e: &StoredEvent, lead_id: Uuid, ev: LeadE) -> Vec<Change> {
    use Change::*;
    let outreach = |round: u32| LeadJob::Outreach { lead_id, round };
    let notify = |notice: String| Change::request(LeadJob::Notify { lead_id, notice }, e.recorded_at);
    match ev {
        LeadE::OutreachScheduled { round, due_at, .. } => vec![Change::request(outreach(round), due_at)],
        LeadE::OutreachStarted { round, .. } => vec![Start { job_id: outreach(round).job_id() }],
        LeadE::OutreachAttempted { round, reply_id, attempted_at, .. } => vec![Change::request(
            LeadJob::Confirm { lead_id, round, reply_id },
            // Brought forward when the message is sent or fails; this is the fallback.
            attempted_at + chrono::Duration::seconds(30),
        )],
        LeadE::OutreachAttemptFailed { reply_id, .. } => vec![Done { job_id: LeadJob::confirm_job_id(reply_id) }],
        LeadE::LeadContacted { round, reply_id, .. } => {
            vec![Done { job_id: outreach(round).job_id() }, Done { job_id: LeadJob::confirm_job_id(reply_id) }]
        }
        LeadE::ContactDeliveryFailed { round, .. } => {
            vec![Reopen { job: JobSpec::of(&outreach(round)), due_at: e.recorded_at }]
        }
        LeadE::LeadFailed { round, .. } => {
            vec![Done { job_id: outreach(round).job_id() }, notify(format!("failed:{round}"))]
        }
        LeadE::OutreachCancelled { round, .. } => vec![Done { job_id: outreach(round).job_id() }],
        LeadE::NoReplyCheckScheduled { check, due_at, .. } => {
            vec![Change::request(LeadJob::NoReply { lead_id, check }, due_at)]
        }
        LeadE::NoReplyCheckCancelled { check, .. } => {
            vec![Done { job_id: LeadJob::NoReply { lead_id, check }.job_id() }]
        }
        LeadE::NoReplyDetected { check, .. } => {
            vec![Done { job_id: LeadJob::NoReply { lead_id, check }.job_id() }, notify(format!("no_reply:{check}"))]
        }
        LeadE::TeamNotified { notice, .. } | LeadE::TeamNotificationFailed { notice, .. } => {
            vec![Done { job_id: LeadJob::Notify { lead_id, notice }.job_id() }]
        }
        _ => vec![],
    }
}

/// The work an event asks for or finishes.
pub fn changes(e: &StoredEvent) -> anyhow::Result<Vec<Change>> {
    use Change::*;
    Ok(match e.aggregate_type.as_str() {
        CE::AGGREGATE => {
            // Decoded once for every projector of the process (the read models decode it too).
            let ev = aisales_projections::conversation::event_of(e)?;
            conversation_changes(e, e.aggregate_id.parse()?, ev)
        }
        ProbeEvent::AGGREGATE => match ProbeEvent::decode(&e.event_type, &e.event_version, &e.payload)? {
            ProbeEvent::PingRequested { ping_id, .. } => vec![Change::request(Ping { ping_id }, e.recorded_at)],
            ProbeEvent::PongRecorded { ping_id, .. } => vec![Done { job_id: Ping { ping_id }.job_id() }],
        },
        LE::AGGREGATE => {
            lookup_changes(e, e.aggregate_id.parse()?, LE::decode(&e.event_type, &e.event_version, &e.payload)?)
        }
        LeadE::AGGREGATE => {
            lead_changes(e, e.aggregate_id.parse()?, LeadE::decode(&e.event_type, &e.event_version, &e.payload)?)
        }
        PE::AGGREGATE => {
            price_lookup_changes(e, e.aggregate_id.parse()?, PE::decode(&e.event_type, &e.event_version, &e.payload)?)
        }
        _ => vec![],
    })
}

/// The cause a job asked for by `e` carries.
fn cause_of(e: &StoredEvent) -> anyhow::Result<Cause> {
    let metadata = EventMetadata::from_map(&e.metadata_map()?);
    Ok(Cause::of(&EventRef::new(&e.aggregate_type, &e.aggregate_id, e.sequence), &metadata))
}

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    pub prefix: String,
    pub stream_max_len: usize,
}

/// Name (and checkpoint) of the dispatcher projector.
pub const WORK_PROJECTOR: &str = "work";

/// The jobs a batch leaves to push once it commits, with what their stage timings need.
#[derive(Default)]
struct DueNow {
    jobs: Vec<Job>,
    /// Per job: since when it could have been picked up (the later of the event that asked for
    /// it and its due time).
    ready_since: Vec<DateTime<Utc>>,
    /// When the batch began.
    read_at: Option<(DateTime<Utc>, Instant)>,
    /// The last event applied for these jobs: a batch the runtime applies again one event at a
    /// time (to park an aggregate that fails) calls `apply` once per event, in order, in one
    /// transaction, and the jobs of every call are pushed.
    upto: Option<Position>,
}

/// The dispatcher projector.
pub struct WorkProjector {
    pool: PgPool,
    redis: Redis,
    options: DispatchOptions,
    due_now: Mutex<DueNow>,
}

impl WorkProjector {
    pub fn new(pool: PgPool, redis: Redis, options: DispatchOptions) -> Self {
        WorkProjector { pool, redis, options, due_now: Mutex::new(DueNow::default()) }
    }
}

#[async_trait]
impl Projector for WorkProjector {
    fn name(&self) -> &'static str {
        WORK_PROJECTOR
    }
    fn description(&self) -> &'static str {
        "dispatcher: outstanding jobs (work_items) pushed onto the worker streams"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["work_items"]
    }
    fn batch_size(&self) -> i64 {
        2000
    }
    fn eager(&self) -> bool {
        // Its batches start jobs: each starts as soon as events are announced.
        true
    }
    fn durable_commit(&self) -> bool {
        // No wait for the WAL flush before the push: a crash can lose only the last batches whole
        // (their checkpoint with them), which are applied and pushed again, and jobs are at least
        // once. Nothing a job did can outlive the record of its dispatch: its worker's first
        // durable commit flushes the WAL up to it, the batch's commit included.
        false
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        // What a batch leaves to push after its commit belongs to that batch only: a batch that
        // failed to commit (and is applied again, here or elsewhere) must not leave its jobs behind.
        // Only a call continuing the same batch (its events after those already applied) adds
        // to what is there.
        let read_at = (Utc::now(), Instant::now());
        {
            let mut due_now = self.due_now.lock().unwrap_or_else(|p| p.into_inner());
            let continues = matches!((due_now.upto, events.first()), (Some(upto), Some(e)) if e.position() > upto);
            if !continues {
                *due_now = DueNow { read_at: Some(read_at), ..DueNow::default() };
            }
        }
        let mut all = Vec::new();
        let mut erased = Vec::new();
        for e in events {
            for c in changes(e)? {
                all.push((e, c));
            }
            if matches!(
                (e.aggregate_type.as_str(), e.event_type.as_str()),
                ("conversation", "CustomerErased") | ("lead", "LeadErased")
            ) {
                erased.push(e);
            }
        }
        if all.is_empty() && erased.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = all.iter().map(|(_, c)| c.job_id().to_string()).collect();
        let mut rows: HashMap<String, WorkRow> =
            rows::load(conn, "work_items", "job_id", &keys, |r: &WorkRow| r.job_id.clone()).await?;
        let mut touched = Vec::new();
        // The last event of the batch that changed each job.
        let mut last_event: HashMap<String, DateTime<Utc>> = HashMap::new();
        for (e, change) in all {
            let at = e.recorded_at;
            last_event.insert(change.job_id().to_string(), at);
            let cause = if change.asks() { Some(cause_of(e)?) } else { None };
            match change {
                Change::Request { job: JobSpec { job_id, kind, payload }, due_at } => {
                    rows.entry(job_id.clone()).or_insert(WorkRow {
                        job_id: job_id.clone(),
                        kind,
                        tenant_id: e.tenant_id,
                        aggregate_type: e.aggregate_type.clone(),
                        aggregate_id: e.aggregate_id.clone(),
                        payload,
                        cause,
                        status: "requested".into(),
                        due_at,
                        attempts: 0,
                        last_error: None,
                        requested_at: at,
                        updated_at: at,
                    });
                    touched.push(job_id);
                }
                Change::Reopen { job: JobSpec { job_id, kind, payload }, due_at } => {
                    let row = rows.entry(job_id.clone()).or_insert(WorkRow {
                        job_id: job_id.clone(),
                        kind,
                        tenant_id: e.tenant_id,
                        aggregate_type: e.aggregate_type.clone(),
                        aggregate_id: e.aggregate_id.clone(),
                        payload: serde_json::Value::Null,
                        cause: None,
                        status: "requested".into(),
                        due_at,
                        attempts: 0,
                        last_error: None,
                        requested_at: at,
                        updated_at: at,
                    });
                    row.payload = payload;
                    row.cause = cause;
                    row.status = "requested".into();
                    row.due_at = due_at;
                    row.updated_at = at;
                    touched.push(job_id);
                }
                Change::Start { job_id } => {
                    if let Some(r) = rows.get_mut(&job_id) {
                        r.status = "started".into();
                        r.attempts += 1;
                        r.updated_at = at;
                        touched.push(job_id);
                    }
                }
                Change::Reschedule { job_id, due_at, reason } => {
                    if let Some(r) = rows.get_mut(&job_id) {
                        r.cause = cause.or(r.cause.take());
                        r.status = "requested".into();
                        r.due_at = due_at;
                        r.last_error = Some(reason);
                        r.updated_at = at;
                        touched.push(job_id);
                    }
                }
                Change::Done { job_id } => {
                    if let Some(r) = rows.get_mut(&job_id) {
                        r.status = "done".into();
                        r.updated_at = at;
                        touched.push(job_id);
                    }
                }
                Change::Nudge { job_id, due_at } => {
                    if let Some(r) = rows.get_mut(&job_id).filter(|r| r.status == "requested" || r.status == "started")
                    {
                        r.status = "requested".into();
                        r.due_at = due_at;
                        r.updated_at = at;
                        touched.push(job_id);
                    }
                }
                Change::Fail { job_id, reason } => {
                    if let Some(r) = rows.get_mut(&job_id) {
                        r.status = "failed".into();
                        r.last_error = Some(reason);
                        r.updated_at = at;
                        touched.push(job_id);
                    }
                }
            }
        }
        touched.sort();
        touched.dedup();
        let out: Vec<&WorkRow> = touched.iter().filter_map(|k| rows.get(k)).collect();
        let erased_aggregate = |r: &WorkRow| {
            erased.iter().any(|e| e.aggregate_type == r.aggregate_type && e.aggregate_id == r.aggregate_id)
        };
        // Requested again (a retry, a reschedule): the last dispatch no longer counts. The jobs
        // already due are marked dispatched by the same statement that writes them, and pushed
        // right after the batch commits (no second transaction to wait for); if the push fails
        // they are unmarked, and if the process dies in between, the sweeper pushes them again
        // after WORK_REDISPATCH_SECS, as for any dispatched job that never started.
        let live: Vec<&WorkRow> = out.iter().copied().filter(|r| !erased_aggregate(r)).collect();
        let requested: Vec<&String> = live.iter().filter(|r| r.status == "requested").map(|r| &r.job_id).collect();
        let now = Utc::now() + chrono::Duration::milliseconds(50);
        let due: Vec<&WorkRow> = live.iter().filter(|r| r.status == "requested" && r.due_at <= now).copied().collect();
        let due_ids: Vec<&String> = due.iter().map(|r| &r.job_id).collect();
        write_rows(conn, &out, &requested, &due_ids).await?;
        // An erased customer's conversation or lead takes no more commands: its outstanding jobs
        // are over, and what they quote of the customer (an escalation's reason, an attachment's
        // link and name, an error) goes.
        for e in &erased {
            sqlx::query(
                "UPDATE work_items SET \
                    status = CASE WHEN status IN ('requested', 'started') THEN 'done' ELSE status END, \
                    payload = CASE WHEN payload ? 'reason' \
                                   THEN jsonb_set(payload - 'attachment', '{reason}', to_jsonb($3::text)) \
                                   ELSE payload - 'attachment' END, \
                    last_error = CASE WHEN last_error IS NULL THEN NULL ELSE $3 END, \
                    updated_at = $4 \
                  WHERE aggregate_type = $1 AND aggregate_id = $2",
            )
            .bind(&e.aggregate_type)
            .bind(&e.aggregate_id)
            .bind(aisales_domain::pii::ERASED)
            .bind(e.recorded_at)
            .execute(&mut *conn)
            .await?;
        }
        let ready_since: Vec<DateTime<Utc>> =
            due.iter().map(|r| last_event.get(&r.job_id).map_or(r.due_at, |at| (*at).max(r.due_at))).collect();
        let mut due_now = self.due_now.lock().unwrap_or_else(|p| p.into_inner());
        due_now.jobs.extend(due.iter().map(|r| r.job()));
        due_now.ready_since.extend(ready_since);
        due_now.upto = events.last().map(|e| e.position());
        Ok(())
    }

    async fn after_commit(&self, _events: &[StoredEvent]) -> anyhow::Result<()> {
        let DueNow { jobs, ready_since, read_at, .. } =
            std::mem::take(&mut *self.due_now.lock().unwrap_or_else(|p| p.into_inner()));
        // A job changed by several calls of one batch is pushed once, as it was last.
        let last: HashMap<String, usize> = jobs.iter().enumerate().map(|(i, j)| (j.job_id.clone(), i)).collect();
        let (mut jobs, ready_since): (Vec<Job>, Vec<DateTime<Utc>>) = jobs
            .into_iter()
            .zip(ready_since)
            .enumerate()
            .filter(|(i, (j, _))| last.get(&j.job_id) == Some(i))
            .map(|(_, pair)| pair)
            .unzip();
        if jobs.is_empty() {
            return Ok(());
        }
        let committed = Instant::now();
        let dispatched_at = Utc::now();
        for j in &mut jobs {
            j.dispatched_at = dispatched_at;
        }
        let mut conn = self.redis.conn();
        if let Err(e) = streams::push(&mut conn, &self.options.prefix, &jobs, self.options.stream_max_len).await {
            // Not pushed: the sweeper's next pass takes them.
            let ids: Vec<&String> = jobs.iter().map(|j| &j.job_id).collect();
            let _ = sqlx::query("UPDATE work_items SET dispatched_at = NULL WHERE job_id = ANY($1)")
                .bind(&ids)
                .execute(&self.pool)
                .await;
            return Err(e.into());
        }
        let xadd = committed.elapsed().as_secs_f64();
        let pushed = Utc::now();
        for (j, ready) in jobs.iter().zip(&ready_since) {
            metrics::histogram!("aisales_dispatch_lag_seconds", "kind" => j.kind.as_str())
                .record(super::seconds_between(j.requested_at, pushed).max(0.0));
            if let Some((read_at, read_instant)) = read_at {
                Stage::Pickup.record(j.kind, super::seconds_between(*ready, read_at));
                Stage::Batch.record(j.kind, committed.duration_since(read_instant).as_secs_f64());
            }
            Stage::Xadd.record(j.kind, xadd);
        }
        Ok(())
    }
}
