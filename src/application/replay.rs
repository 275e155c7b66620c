//! Audit replay of one conversation: its events with their metadata and what caused each, the
//! chain of one correlation id across the aggregates it touched, and the conversation's state
//! folded up to any sequence number or instant (with the same folding code the read models use,
//! so the state at event k is what the API showed right after event k).

use std::collections::{BTreeSet, HashMap};

use aisales_domain::codec::EventSchema;
use aisales_domain::conversation::{Conversation, ConversationEvent as E, DeliveryStatus};
use aisales_projections::conversation::{self, Folded};
use aisales_projections::events::{self, StoredEvent};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::EventRef;

/// Up to where to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    End,
    Sequence(i64),
    Instant(DateTime<Utc>),
}

/// One event as the audit log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: String,
    pub payload: Value,
    pub metadata: HashMap<String, String>,
    /// The chain the event belongs to (the customer message, request or job that started it).
    pub correlation_id: Option<String>,
    /// What caused the event, when its metadata names a cause.
    pub caused_by: Option<CausedBy>,
    pub recorded_at: DateTime<Utc>,
    pub position: String,
}

/// The cause of an event.
#[derive(Debug, Clone, Serialize)]
pub struct CausedBy {
    /// The causation id as stored: an event (`conversation:<id>:<sequence>`), or something outside
    /// the log such as a provider's message id (`green_api:<id>`).
    pub id: String,
    /// The causing event, when the cause is an event of the log.
    pub event: Option<CauseEvent>,
}

/// An event named as a cause.
#[derive(Debug, Clone, Serialize)]
pub struct CauseEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    /// Its type, when it is still in the log.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
}

impl AuditEvent {
    fn of(e: &StoredEvent) -> anyhow::Result<Self> {
        let metadata = e.metadata_map()?;
        Ok(AuditEvent {
            aggregate_type: e.aggregate_type.clone(),
            aggregate_id: e.aggregate_id.clone(),
            sequence: e.sequence,
            event_type: e.event_type.clone(),
            version: e.event_version.clone(),
            payload: serde_json::from_str(&e.payload)?,
            correlation_id: metadata.get("correlation_id").cloned(),
            caused_by: metadata.get("causation_id").map(|id| CausedBy { id: id.clone(), event: None }),
            metadata,
            recorded_at: e.recorded_at,
            position: e.position().to_string(),
        })
    }
}

/// Names the causing events of `events`: from `events` themselves where they hold the cause, else
/// with one query over the log.
async fn resolve_causes(pool: &PgPool, events: &mut [AuditEvent]) -> sqlx::Result<()> {
    let known: HashMap<(String, String, i64), String> = events
        .iter()
        .map(|e| ((e.aggregate_type.clone(), e.aggregate_id.clone(), e.sequence), e.event_type.clone()))
        .collect();
    let refs: BTreeSet<(String, String, i64)> = events
        .iter()
        .filter_map(|e| e.caused_by.as_ref()?.id.parse::<EventRef>().ok())
        .map(|r| (r.aggregate_type, r.aggregate_id, r.sequence))
        .filter(|k| !known.contains_key(k))
        .collect();
    let mut found = known;
    if !refs.is_empty() {
        let (types, (ids, seqs)): (Vec<String>, (Vec<String>, Vec<i64>)) =
            refs.into_iter().map(|(t, i, s)| (t, (i, s))).unzip();
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.event_type \
               FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS r(t, i, s) \
               JOIN events e ON e.aggregate_type = r.t AND e.aggregate_id = r.i AND e.sequence = r.s",
        )
        .bind(&types)
        .bind(&ids)
        .bind(&seqs)
        .fetch_all(pool)
        .await?;
        found.extend(rows.into_iter().map(|(t, i, s, ty)| ((t, i, s), ty)));
    }
    for e in events {
        if let Some(c) = &mut e.caused_by
            && let Ok(r) = c.id.parse::<EventRef>()
        {
            let event_type = found.get(&(r.aggregate_type.clone(), r.aggregate_id.clone(), r.sequence)).cloned();
            c.event = Some(CauseEvent {
                aggregate_type: r.aggregate_type,
                aggregate_id: r.aggregate_id,
                sequence: r.sequence,
                event_type,
            });
        }
    }
    Ok(())
}

/// Whether `conversation` exists and, with `tenant`, belongs to it.
async fn visible(pool: &PgPool, tenant: Option<Uuid>, conversation: Uuid) -> sqlx::Result<bool> {
    let owner = crate::application::conversations::tenant_of(pool, conversation).await?;
    Ok(owner.is_some() && (tenant.is_none() || owner == tenant))
}

/// A page of the conversation's events after `after_sequence` (at most `limit`, and whether more
/// follow), each with its cause; `None` when the conversation does not exist for `tenant`.
pub async fn events_page(
    pool: &PgPool,
    tenant: Option<Uuid>,
    conversation: Uuid,
    after_sequence: i64,
    limit: usize,
) -> anyhow::Result<Option<(Vec<AuditEvent>, bool)>> {
    if !visible(pool, tenant, conversation).await? {
        return Ok(None);
    }
    let mut conn = pool.acquire().await?;
    let stored = events::read_stream_page(
        &mut conn,
        E::AGGREGATE,
        &conversation.to_string(),
        after_sequence,
        i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
    )
    .await?;
    drop(conn);
    let more = stored.len() > limit;
    let mut page = stored.iter().take(limit).map(AuditEvent::of).collect::<anyhow::Result<Vec<_>>>()?;
    resolve_causes(pool, &mut page).await?;
    Ok(Some((page, more)))
}

/// Every event of one chain (`correlation_id`) that the conversation started or took part in, in
/// the log's order: the conversation's own events and those of the lookups it asked for.
pub async fn chain(
    pool: &PgPool,
    tenant: Option<Uuid>,
    conversation: Uuid,
    correlation_id: Uuid,
) -> anyhow::Result<Option<Vec<AuditEvent>>> {
    if !visible(pool, tenant, conversation).await? {
        return Ok(None);
    }
    let mut conn = pool.acquire().await?;
    let own = events::read_stream(&mut conn, E::AGGREGATE, &conversation.to_string(), None).await?;
    // The lookups of the conversation are where its chains continue.
    let mut related: BTreeSet<(String, String)> = BTreeSet::new();
    for e in &own {
        if let Ok(
            E::VehicleLookupRequested { lookup_id, .. }
            | E::VehicleDataAttached { lookup_id, .. }
            | E::VehicleLookupFailed { lookup_id, .. },
        ) = conversation::event_of(e)
        {
            related.insert(("vehicle_lookup".to_string(), lookup_id.to_string()));
        }
        // A price suggestion continues the chain of its price lookup (its request id).
        if let Ok(E::SuggestionGenerated { request_id, source, .. }) = conversation::event_of(e)
            && source == "price_lookup"
        {
            related.insert(("price_lookup".to_string(), request_id.to_string()));
        }
    }
    let correlation = correlation_id.to_string();
    let mut all: Vec<StoredEvent> = own
        .into_iter()
        .filter(|e| e.metadata_map().is_ok_and(|m| m.get("correlation_id") == Some(&correlation)))
        .collect();
    for (aggregate_type, aggregate_id) in related {
        let theirs = events::read_stream(&mut conn, &aggregate_type, &aggregate_id, None).await?;
        all.extend(
            theirs
                .into_iter()
                .filter(|e| e.metadata_map().is_ok_and(|m| m.get("correlation_id") == Some(&correlation))),
        );
    }
    drop(conn);
    all.sort_by_key(|e| e.position());
    let mut out = all.iter().map(AuditEvent::of).collect::<anyhow::Result<Vec<_>>>()?;
    resolve_causes(pool, &mut out).await?;
    Ok(Some(out))
}

/// A conversation replayed.
pub struct Replay {
    pub events: Vec<AuditEvent>,
    pub folded: Folded,
    pub aggregate: Conversation,
    /// The stored events replayed (each decoded once, on first use).
    pub stored: Vec<StoredEvent>,
}

/// Reads the conversation's events up to `until`; `None` when it does not exist (or, with
/// `tenant`, belongs to another tenant).
pub async fn load(
    pool: &PgPool,
    tenant: Option<Uuid>,
    conversation: Uuid,
    until: Until,
) -> anyhow::Result<Option<Replay>> {
    if !visible(pool, tenant, conversation).await? {
        return Ok(None);
    }
    let mut conn = pool.acquire().await?;
    let seq = match until {
        Until::Sequence(n) => Some(n),
        _ => None,
    };
    let mut stored: Vec<StoredEvent> =
        events::read_stream(&mut conn, E::AGGREGATE, &conversation.to_string(), seq).await?;
    drop(conn);
    if let Until::Instant(at) = until {
        stored.retain(|e| e.recorded_at <= at);
    }
    let decoded = conversation::decode(&stored)?;
    let folded = conversation::fold(&decoded)?;
    let mut aggregate = Conversation::default();
    for d in &decoded {
        aggregate.evolve(d.event.clone());
    }
    let mut events = stored.iter().map(AuditEvent::of).collect::<anyhow::Result<Vec<_>>>()?;
    resolve_causes(pool, &mut events).await?;
    Ok(Some(Replay { events, folded, aggregate, stored }))
}

impl Replay {
    /// The sequence replayed to (0 when nothing was).
    pub fn sequence(&self) -> i64 {
        self.events.last().map_or(0, |e| e.sequence)
    }

    /// A readable timeline: one line per event, who did what and when, and what caused it.
    pub fn timeline(&self) -> Vec<String> {
        self.stored
            .iter()
            .zip(&self.events)
            .map(|(stored, e)| {
                let what = conversation::event_of(stored).map_or_else(|err| format!("({err})"), describe);
                let who = e.metadata.get("actor").cloned().unwrap_or_else(|| "?".into());
                format!(
                    "#{:<5} {}  {:<28} {:<22} {}{}",
                    e.sequence,
                    e.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    who,
                    e.event_type,
                    what,
                    e.caused_by.as_ref().map(|c| format!("  ← {}", cause_text(e, c))).unwrap_or_default()
                )
            })
            .collect()
    }
}

/// How the timeline names a cause: `#7 SuggestionGenerated` within the same conversation, the
/// other aggregate's event otherwise, or the raw causation id.
pub fn cause_text(e: &AuditEvent, c: &CausedBy) -> String {
    match &c.event {
        Some(ev) if ev.aggregate_type == e.aggregate_type && ev.aggregate_id == e.aggregate_id => {
            format!("#{} {}", ev.sequence, ev.event_type.as_deref().unwrap_or("?"))
        }
        Some(ev) => format!(
            "{} {} #{} {}",
            ev.aggregate_type,
            ev.aggregate_id,
            ev.sequence,
            ev.event_type.as_deref().unwrap_or("?")
        ),
        None => c.id.clone(),
    }
}

fn clip(s: &str) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() > 90 {
        format!("{}…", one_line.chars().take(90).collect::<String>())
    } else {
        one_line
    }
}

/// What an event says, in a few words.
pub fn describe(e: &E) -> String {
    match e {
        E::ConversationStarted { channel, customer_name, .. } => {
            format!("{} conversation with {}", channel, customer_name.as_deref().unwrap_or("an unnamed customer"))
        }
        E::MessageReceived { text, .. } => format!("customer: «{}»", clip(text)),
        E::CustomerAliasLinked { alias } => format!("also known as {alias}"),
        E::VehicleIdDetected { id_type, value, score, .. } => format!("{id_type} {value} found (score {score:.2})"),
        E::TransmissionCodeDetected { code, score, .. } => format!("gearbox code {code} found (score {score:.2})"),
        E::VehicleLookupRequested { id_type, value, source, requested_by, .. } => {
            format!("lookup of {} {value} asked for ({}, {requested_by})", id_type.as_str(), source.as_str())
        }
        E::VehicleDataAttached { data, .. } => {
            let vehicle: Vec<&str> = [&data.vehicle.make, &data.vehicle.model, &data.vehicle.year]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            let gearbox: Vec<&str> =
                [&data.gearbox.model, &data.gearbox.oem].into_iter().flatten().map(String::as_str).collect();
            format!(
                "vehicle {}: {}; gearbox {}",
                data.status.as_str(),
                if vehicle.is_empty() { "unknown".to_string() } else { vehicle.join(" ") },
                if gearbox.is_empty() { "unknown".to_string() } else { gearbox.join(", ") }
            )
        }
        E::VehicleLookupFailed { id_type, value, reason, .. } => {
            format!("lookup of {} {value} failed: {reason}", id_type.as_str())
        }
        E::SuggestionRequested { not_before, .. } => format!("draft wanted after {}", not_before.format("%H:%M:%S")),
        E::SuggestionGenerated { text, intent, confidence, decision, source, autosend_block_reason, .. } => format!(
            "{source} draft, intent {intent}, confidence {:.0}%, {}{}: «{}»",
            confidence * 100.0,
            decision.as_str(),
            autosend_block_reason.as_ref().map(|r| format!(" (blocked: {r})")).unwrap_or_default(),
            clip(text)
        ),
        E::SuggestionFailed { reason, .. } => format!("drafting failed: {reason}"),
        E::SuggestionSuperseded { .. } => "draft superseded by a newer customer message".into(),
        E::SuggestionApproved { automatic: true, .. } => "draft approved automatically".into(),
        E::SuggestionApproved { automatic: false, .. } => "draft approved".into(),
        E::SuggestionEdited { text, .. } => format!("draft edited to «{}»", clip(text)),
        E::SuggestionRejected { reason, .. } => {
            format!("draft rejected{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())
        }
        E::OperatorReplied { text, .. } => format!("operator: «{}»", clip(text)),
        E::ReplyQueued { origin, send_after, .. } => {
            format!("reply queued ({origin:?}), not before {}", send_after.format("%H:%M:%S"))
        }
        E::ReplySendStarted { attempt, .. } => format!("sending, attempt {attempt}"),
        E::ReplySent { provider_message_id, reconciled, .. } => {
            format!(
                "sent as {provider_message_id}{}",
                if *reconciled { " (found in the provider's journal)" } else { "" }
            )
        }
        E::ReplySendRetryScheduled { attempt, retry_at, reason, .. } => {
            format!("attempt {attempt} failed ({reason}); retry at {}", retry_at.format("%H:%M:%S"))
        }
        E::ReplyFailed { reason, permanent, .. } => {
            format!("delivery failed{}: {reason}", if *permanent { " for good" } else { "" })
        }
        E::ReplyRetryRequested { .. } => "operator asked to send again".into(),
        E::ReplyDelivered { status, .. } => match status {
            DeliveryStatus::Failed { reason } => format!("provider reports the message failed: {reason}"),
            other => format!("provider reports {}", other.as_str()),
        },
        E::ConversationEscalated { reason, .. } => format!("escalated: {reason}"),
        E::ConversationResolved => "resolved".into(),
        E::ConversationReopened { reason } => format!("reopened: {reason}"),
        E::ConversationMuted { muted } => {
            if *muted {
                "muted".into()
            } else {
                "unmuted".into()
            }
        }
        E::StatusChanged { from, to, reason } => format!("{from} → {to} ({reason})"),
        E::OperatorAssigned { operator } => format!("assigned to {}", operator.as_deref().unwrap_or("nobody")),
        E::ConversationRead => "read by an operator".into(),
        E::LeadLinked { lead_id } => format!("first message to lead {lead_id}"),
        E::AttachmentStored { index, media, .. } => {
            format!("attachment {index} stored ({}, {} bytes)", media.mime_type, media.size)
        }
        E::AttachmentRefused { index, reason, .. } => format!("attachment {index} not stored: {}", reason.as_str()),
        E::PhotoRead { index, reading, .. } => format!(
            "photo {index} read as {} (confidence {:.2}){}",
            reading.kind.as_str(),
            reading.confidence,
            reading.candidates.first().map(|c| format!(": {} {}", c.kind.as_str(), c.value)).unwrap_or_default()
        ),
        E::PhotoNotRead { index, reason, .. } => format!("photo {index} not read ({reason:?})"),
        E::TeamNotified { escalation, .. } => format!("the team was told of escalation #{escalation}"),
        E::TeamNotificationFailed { escalation, error } => {
            format!("the team could not be told of escalation #{escalation}: {error}")
        }
        E::CustomerErased { erased_by, cause, .. } => {
            let why = match cause {
                aisales_domain::pii::ErasureCause::Request => "on request",
                aisales_domain::pii::ErasureCause::Inactive => "after inactivity",
            };
            format!("the customer's data was erased {why} by {erased_by}")
        }
    }
}
