//! The `work` projector (the dispatcher): turns events that ask for work into `work_items` rows
//! (exactly once, with its checkpoint) and, after each batch commits, pushes the jobs that are due
//! onto their Redis streams (at least once). Jobs due later, and jobs Redis lost, are pushed by
//! the sweeper.

use std::collections::HashMap;
use std::sync::Mutex;

use aisales_domain::conversation::ConversationEvent as CE;
use aisales_domain::probe::ProbeEvent;
use aisales_domain::vehicle_lookup::VehicleLookupEvent as LE;
use aisales_projections::events::StoredEvent;
use aisales_projections::{Projector, rows};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Job, Kind, streams};
use crate::redis_conn::Redis;

/// A row of `work_items` (without the dispatcher's operational columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkRow {
    pub job_id: String,
    pub kind: Kind,
    pub tenant_id: Option<Uuid>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub payload: serde_json::Value,
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
    "status",
    "due_at",
    "attempts",
    "last_error",
    "requested_at",
    "updated_at",
];

impl WorkRow {
    pub fn job(&self) -> Job {
        Job {
            job_id: self.job_id.clone(),
            kind: self.kind,
            tenant_id: self.tenant_id,
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            payload: self.payload.clone(),
            requested_at: self.requested_at,
            dispatched_at: Utc::now(),
        }
    }
}

/// A change to a job that an event makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Request {
        job_id: String,
        kind: Kind,
        payload: serde_json::Value,
        due_at: DateTime<Utc>,
    },
    /// Like `Request`, and a job already done or failed is asked for again.
    Reopen {
        job_id: String,
        kind: Kind,
        payload: serde_json::Value,
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
}

/// Job id of a reply's send.
pub fn send_job(reply_id: Uuid) -> String {
    format!("send:{reply_id}")
}

/// Job id of a suggestion request.
pub fn suggestion_job(request_id: Uuid) -> String {
    format!("suggest:{request_id}")
}

/// Job id of recording a conversation's lookup request on the lookup.
pub fn lookup_request_job(request_id: Uuid) -> String {
    format!("vehicle-request:{request_id}")
}

/// Job id of one round of a vehicle lookup.
pub fn lookup_round_job(lookup_id: &str, round: u32) -> String {
    format!("vehicle-lookup:{lookup_id}:{round}")
}

/// Job id of telling the conversation about a lookup's newest outcome.
pub fn lookup_report_job(lookup_id: &str) -> String {
    format!("vehicle-report:{lookup_id}")
}

/// The work a vehicle-lookup event asks for or finishes.
fn lookup_changes(e: &StoredEvent, ev: LE) -> Vec<Change> {
    use Change::*;
    let lookup = &e.aggregate_id;
    let round_job = |round: u32| lookup_round_job(lookup, round);
    let round_request = |round: u32| Request {
        job_id: round_job(round),
        kind: Kind::VehicleLookup,
        payload: json!({ "action": "lookup", "lookup_id": lookup, "round": round }),
        due_at: e.recorded_at,
    };
    let mut out = Vec::new();
    if ev.outcome_for().is_some() {
        // One report job per lookup, asked again by every new outcome (a done job is reopened).
        out.push(Reopen {
            job_id: lookup_report_job(lookup),
            kind: Kind::VehicleLookup,
            payload: json!({ "action": "report", "lookup_id": lookup }),
            due_at: e.recorded_at,
        });
    }
    match ev {
        LE::LookupRequested { request_id, round, .. } => {
            out.push(Done { job_id: lookup_request_job(request_id) });
            out.push(round_request(round));
        }
        LE::LookupRequestMerged { request_id, .. } => out.push(Done { job_id: lookup_request_job(request_id) }),
        LE::LookupRetryRequested { round, .. } | LE::LookupIdCorrected { round, .. } => out.push(round_request(round)),
        LE::LookupStarted { round, .. } => out.push(Start { job_id: round_job(round) }),
        LE::LookupRetryScheduled { round, retry_at, reason, .. } => {
            out.push(Reschedule { job_id: round_job(round), due_at: retry_at, reason })
        }
        LE::LookupCompleted { round, .. } | LE::LookupNotFound { round, .. } => {
            out.push(Done { job_id: round_job(round) })
        }
        LE::LookupFailed { round, reason, .. } => out.push(Fail { job_id: round_job(round), reason }),
        LE::GearboxConfirmed { .. } | LE::PriceLookupWanted { .. } => {}
    }
    out
}

/// The work an event asks for or finishes.
pub fn changes(e: &StoredEvent) -> anyhow::Result<Vec<Change>> {
    use Change::*;
    Ok(match e.aggregate_type.as_str() {
        aisales_projections::conversation_views::CONVERSATION => {
            // Decoded once for every projector of the process (the read models decode it too).
            let ev = aisales_projections::conversation_views::event_of(e)?.clone();
            let conversation = &e.aggregate_id;
            match ev {
                CE::SuggestionRequested { request_id, not_before, .. } => vec![Request {
                    job_id: suggestion_job(request_id),
                    kind: Kind::ReplySuggestion,
                    payload: json!({ "conversation_id": conversation, "request_id": request_id }),
                    due_at: not_before,
                }],
                CE::SuggestionGenerated { request_id, .. } => vec![Done { job_id: suggestion_job(request_id) }],
                CE::SuggestionFailed { request_id, reason } => {
                    vec![Fail { job_id: suggestion_job(request_id), reason }]
                }
                CE::ReplyQueued { reply_id, send_after, .. } => vec![Request {
                    job_id: send_job(reply_id),
                    kind: Kind::MessageSend,
                    payload: json!({ "conversation_id": conversation, "reply_id": reply_id }),
                    due_at: send_after,
                }],
                CE::ReplySendStarted { reply_id, .. } => vec![Start { job_id: send_job(reply_id) }],
                CE::ReplySendRetryScheduled { reply_id, retry_at, reason, .. } => {
                    vec![Reschedule { job_id: send_job(reply_id), due_at: retry_at, reason }]
                }
                CE::ReplyRetryRequested { reply_id } => {
                    vec![Reschedule {
                        job_id: send_job(reply_id),
                        due_at: e.recorded_at,
                        reason: "retry requested".into(),
                    }]
                }
                CE::ReplySent { reply_id, .. } => vec![Done { job_id: send_job(reply_id) }],
                CE::ReplyFailed { reply_id, reason, .. } => vec![Fail { job_id: send_job(reply_id), reason }],
                CE::VehicleLookupRequested {
                    lookup_id,
                    request_id,
                    message_id,
                    id_type,
                    value,
                    source,
                    requested_by,
                } => {
                    vec![Request {
                        job_id: lookup_request_job(request_id),
                        kind: Kind::VehicleLookup,
                        payload: json!({
                            "action": "request",
                            "lookup_id": lookup_id,
                            "request_id": request_id,
                            "conversation_id": conversation,
                            "message_id": message_id,
                            "id_type": id_type,
                            "value": value,
                            "source": source,
                            "requested_by": requested_by,
                        }),
                        due_at: e.recorded_at,
                    }]
                }
                CE::VehicleDataAttached { lookup_id, .. } | CE::VehicleLookupFailed { lookup_id, .. } => {
                    vec![Done { job_id: lookup_report_job(&lookup_id.to_string()) }]
                }
                _ => vec![],
            }
        }
        "probe" => match serde_json::from_str::<ProbeEvent>(&e.payload)? {
            ProbeEvent::PingRequested { ping_id, .. } => vec![Request {
                job_id: format!("probe:{ping_id}"),
                kind: Kind::Probe,
                payload: json!({ "ping_id": ping_id }),
                due_at: e.recorded_at,
            }],
            ProbeEvent::PongRecorded { ping_id, .. } => vec![Done { job_id: format!("probe:{ping_id}") }],
        },
        aisales_projections::vehicle_lookup_views::VEHICLE_LOOKUP => lookup_changes(
            e,
            aisales_projections::vehicle_lookup_views::decode_event(&e.event_type, &e.event_version, &e.payload)?,
        ),
        _ => vec![],
    })
}

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    pub prefix: String,
    pub stream_max_len: usize,
}

/// The dispatcher projector.
pub struct WorkProjector {
    pool: PgPool,
    redis: Redis,
    options: DispatchOptions,
    due_now: Mutex<Vec<Job>>,
}

impl WorkProjector {
    pub fn new(pool: PgPool, redis: Redis, options: DispatchOptions) -> Self {
        WorkProjector { pool, redis, options, due_now: Mutex::new(Vec::new()) }
    }
}

#[async_trait]
impl Projector for WorkProjector {
    fn name(&self) -> &'static str {
        "work"
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
    fn durable_commit(&self) -> bool {
        // What was pushed to the streams and the record of it should not disagree after a crash.
        true
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        // What a batch leaves to push after its commit belongs to that batch only: a batch that
        // failed to commit (and is applied again, here or elsewhere) must not leave its jobs behind.
        self.due_now.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let mut all = Vec::new();
        for e in events {
            for c in changes(e)? {
                all.push((e, c));
            }
        }
        if all.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = all
            .iter()
            .map(|(_, c)| match c {
                Change::Request { job_id, .. }
                | Change::Reopen { job_id, .. }
                | Change::Start { job_id }
                | Change::Reschedule { job_id, .. }
                | Change::Done { job_id }
                | Change::Fail { job_id, .. } => job_id.clone(),
            })
            .collect();
        let mut rows: HashMap<String, WorkRow> =
            rows::load(conn, "work_items", "job_id", &keys, |r: &WorkRow| r.job_id.clone()).await?;
        let mut touched = Vec::new();
        for (e, change) in all {
            let at = e.recorded_at;
            match change {
                Change::Request { job_id, kind, payload, due_at } => {
                    rows.entry(job_id.clone()).or_insert(WorkRow {
                        job_id: job_id.clone(),
                        kind,
                        tenant_id: e.tenant_id,
                        aggregate_type: e.aggregate_type.clone(),
                        aggregate_id: e.aggregate_id.clone(),
                        payload,
                        status: "requested".into(),
                        due_at,
                        attempts: 0,
                        last_error: None,
                        requested_at: at,
                        updated_at: at,
                    });
                    touched.push(job_id);
                }
                Change::Reopen { job_id, kind, payload, due_at } => {
                    let row = rows.entry(job_id.clone()).or_insert(WorkRow {
                        job_id: job_id.clone(),
                        kind,
                        tenant_id: e.tenant_id,
                        aggregate_type: e.aggregate_type.clone(),
                        aggregate_id: e.aggregate_id.clone(),
                        payload: serde_json::Value::Null,
                        status: "requested".into(),
                        due_at,
                        attempts: 0,
                        last_error: None,
                        requested_at: at,
                        updated_at: at,
                    });
                    row.payload = payload;
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
        rows::upsert(conn, "work_items", &["job_id"], COLUMNS, &out).await?;
        // Requested again (a retry, a reschedule): the last dispatch no longer counts.
        let requested: Vec<&String> = out.iter().filter(|r| r.status == "requested").map(|r| &r.job_id).collect();
        if !requested.is_empty() {
            sqlx::query("UPDATE work_items SET dispatched_at = NULL WHERE job_id = ANY($1)")
                .bind(&requested)
                .execute(&mut *conn)
                .await?;
        }
        let now = Utc::now() + chrono::Duration::milliseconds(50);
        let due: Vec<Job> =
            out.iter().filter(|r| r.status == "requested" && r.due_at <= now).map(|r| r.job()).collect();
        *self.due_now.lock().unwrap_or_else(|p| p.into_inner()) = due;
        Ok(())
    }

    async fn after_commit(&self, _events: &[StoredEvent]) -> anyhow::Result<()> {
        let jobs = std::mem::take(&mut *self.due_now.lock().unwrap_or_else(|p| p.into_inner()));
        if jobs.is_empty() {
            return Ok(());
        }
        let mut conn = self.redis.conn();
        streams::push(&mut conn, &self.options.prefix, &jobs, self.options.stream_max_len).await?;
        for j in &jobs {
            let lag = (Utc::now() - j.requested_at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("aisales_dispatch_lag_seconds", "kind" => j.kind.as_str()).record(lag);
        }
        let ids: Vec<&String> = jobs.iter().map(|j| &j.job_id).collect();
        sqlx::query(
            "UPDATE work_items SET dispatched_at = now(), dispatch_count = dispatch_count + 1 WHERE job_id = ANY($1)",
        )
        .bind(&ids)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
