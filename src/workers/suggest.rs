//! Drafts reply suggestions: waits out the burst window, builds the prompt from the tenant's agent
//! settings, the conversation and its vehicle data, asks the model (or the offline responder when no
//! key is set, or the AI limit is reached), applies the decision policy and records the result.

use std::time::Duration;

use aisales_domain::conversation::{
    Conversation, ConversationCommand, ConversationError, ConversationEvent as E, Drafted,
};
use aisales_domain::prompt::{self, Speaker, VehicleFacts};
use aisales_domain::reply::{self, DelayPlan, DraftAssessment};
use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

use super::Services;
use crate::bus::jobs::DraftSuggestion;
use crate::bus::worker::JobHandler;
use crate::bus::{Job, Kind};
use crate::store::ExecuteError;

pub struct SuggestHandler {
    pub services: Services,
}

/// Messages of a conversation, oldest first, as the drafter sees them.
pub struct History {
    pub lines: Vec<(Speaker, String)>,
    pub vehicle: Option<(String, String)>,
    /// What the last vehicle lookup of the conversation found.
    pub vehicle_data: Option<aisales_domain::vehicle_lookup::VehicleData>,
}

/// The last `limit` messages (both directions) and the last vehicle id found.
pub async fn history(pool: &sqlx::PgPool, conversation: &str, limit: i64) -> anyhow::Result<History> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT event_type, event_version, payload::text FROM events \
          WHERE aggregate_type = 'conversation' AND aggregate_id = $1 \
            AND event_type IN ('MessageReceived', 'ReplyQueued', 'VehicleIdDetected') \
          ORDER BY sequence DESC LIMIT $2",
    )
    .bind(conversation)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut lines = Vec::new();
    let mut vehicle = None;
    let attached: Option<(String, String, String)> = sqlx::query_as(
        "SELECT event_type, event_version, payload::text FROM events \
          WHERE aggregate_type = 'conversation' AND aggregate_id = $1 AND event_type = 'VehicleDataAttached' \
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(conversation)
    .fetch_optional(pool)
    .await?;
    let vehicle_data = match attached {
        Some((t, v, p)) => {
            let p = aisales_projections::pii::opened(pool, &t, p).await?;
            match <aisales_domain::conversation::ConversationEvent as aisales_domain::codec::EventSchema>::decode(
                &t, &v, &p,
            )? {
                E::VehicleDataAttached { data, .. } => Some(*data),
                _ => None,
            }
        }
        None => None,
    };
    for (t, v, p) in rows.into_iter().rev() {
        let p = aisales_projections::pii::opened(pool, &t, p).await?;
        match <aisales_domain::conversation::ConversationEvent as aisales_domain::codec::EventSchema>::decode(
            &t, &v, &p,
        )? {
            E::MessageReceived { text, attachments, .. } => {
                let mut text = text;
                if !attachments.is_empty() {
                    text.push_str("\n[клиент приложил файл]");
                }
                lines.push((Speaker::Customer, text));
            }
            E::ReplyQueued { text, .. } => lines.push((Speaker::Shop, text)),
            E::VehicleIdDetected { id_type, value, .. } => vehicle = Some((id_type.as_str().to_string(), value)),
            _ => {}
        }
    }
    Ok(History { lines, vehicle, vehicle_data })
}

impl SuggestHandler {
    async fn record(&self, job: &Job, cmd: ConversationCommand) -> anyhow::Result<()> {
        let meta = job.metadata(super::actor(Kind::ReplySuggestion));
        match self.services.store.execute::<Conversation>(&job.aggregate_id, cmd, &(), &meta).await {
            // Answered already (a duplicate job, or a newer request): nothing to do.
            Ok(_) | Err(ExecuteError::Rejected(ConversationError::RequestNotPending)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl JobHandler for SuggestHandler {
    fn kind(&self) -> Kind {
        Kind::ReplySuggestion
    }

    async fn handle(&self, job: &Job) -> anyhow::Result<()> {
        let s = &self.services;
        let DraftSuggestion { request_id, .. } = job.payload()?;
        let tenant_id = job.tenant_id.ok_or_else(|| anyhow::anyhow!("job without tenant"))?;
        let tenant =
            s.tenancy.tenant(&s.pool, tenant_id).await?.ok_or_else(|| anyhow::anyhow!("tenant {tenant_id} is gone"))?;
        let debounce = chrono::Duration::seconds(i64::from(tenant.settings.suggestion_debounce_secs));

        // Wait until the customer has stopped writing for the burst window, within half the job's
        // time limit: the rest is for drafting, so a customer who keeps writing still gets a draft
        // instead of a job that times out on every delivery.
        let waited = std::time::Instant::now();
        let budget = s.settings.bus.job_timeout / 2;
        let mut state = s.store.load::<Conversation>(&job.aggregate_id).await?.state;
        for _ in 0..10 {
            if state.pending_request != Some(request_id) {
                return Ok(());
            }
            let ready_at = state.last_customer_message_at.map_or(Utc::now(), |t| t + debounce);
            let wait = (ready_at - Utc::now()).num_milliseconds();
            let left = budget.saturating_sub(waited.elapsed()).as_millis() as i64;
            if wait <= 0 || left <= 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(wait.min(30_000).min(left) as u64)).await;
            state = s.store.load::<Conversation>(&job.aggregate_id).await?.state;
        }
        if state.pending_request != Some(request_id) {
            return Ok(());
        }

        let h = history(&s.pool, &job.aggregate_id, 20).await?;
        let last_customer =
            h.lines.iter().rev().find(|(w, _)| *w == Speaker::Customer).map(|(_, t)| t.clone()).unwrap_or_default();
        let first_contact = !h.lines.iter().any(|(w, _)| *w == Speaker::Shop);
        let ai_allowed = s.drafter.is_configured()
            && crate::infra::ratelimit::check(
                &s.redis,
                crate::infra::ratelimit::Limit::AiPerTenant,
                &tenant_id.to_string(),
                s.settings.limits.ai_per_minute,
            )
            .await
            .is_ok();
        let (text, intent, confidence, needs_handoff, source, model, offline) = if ai_allowed {
            let vehicle = h.vehicle_data.as_ref().map(|d| d.facts()).or_else(|| {
                h.vehicle.as_ref().map(|(t, v)| VehicleFacts {
                    id_type: Some(t.clone()),
                    id_value: Some(v.clone()),
                    ..Default::default()
                })
            });
            let system = prompt::system_prompt(&tenant.settings, &tenant.name, vehicle.as_ref());
            match s.drafter.draft(&system, &h.lines).await {
                Ok(d) => (
                    d.draft.reply,
                    d.draft.intent,
                    d.draft.confidence,
                    d.draft.needs_handoff,
                    "ai",
                    Some(d.model),
                    false,
                ),
                Err(e) => {
                    tracing::warn!(conversation = %job.aggregate_id, error = %e, "drafting failed");
                    return self
                        .record(job, ConversationCommand::FailSuggestion { request_id, reason: e.to_string() })
                        .await;
                }
            }
        } else {
            let vehicle = h.vehicle.as_ref().map(|(t, v)| (t.as_str(), v.as_str()));
            let d = reply::offline_reply(&tenant.settings, &last_customer, vehicle, first_contact);
            (d.text, d.intent, 0.5, false, "offline", None, true)
        };
        let outcome = reply::decide(
            &tenant.settings.decision,
            s.settings.bus.autosend_enabled,
            &DraftAssessment { intent: &intent, confidence, reply: &text, needs_handoff, offline },
        );
        let working = reply::is_working_time(
            &tenant.timezone,
            tenant.working_hours_start,
            tenant.working_hours_end,
            &tenant.working_days,
            Utc::now(),
        );
        let (mut block, mut send_after) = (outcome.autosend_block_reason.clone(), Utc::now());
        match reply::plan_delay(
            &tenant.settings,
            text.chars().count(),
            working,
            rand::random(),
            rand::random::<f64>() * 2.0 - 1.0,
        ) {
            DelayPlan::SendAfter { delay_ms, .. } => send_after += chrono::Duration::milliseconds(delay_ms as i64),
            DelayPlan::AutoReply { .. } | DelayPlan::Hold => {
                if block.is_none() && outcome.decision == aisales_domain::conversation::Decision::AutoSend {
                    block = Some("OUTSIDE_WORKING_HOURS".into());
                }
            }
        }
        let drafted = Drafted {
            request_id,
            suggestion_id: Uuid::now_v7(),
            text,
            intent,
            confidence: outcome.confidence,
            decision: outcome.decision,
            explanations: outcome.explanations,
            source: source.into(),
            model,
            autosend_block_reason: block,
            reply_id: Uuid::now_v7(),
            send_after,
        };
        self.record(job, ConversationCommand::RecordSuggestion(Box::new(drafted))).await
    }

    async fn dead_letter(&self, job: &Job, reason: &str) -> anyhow::Result<()> {
        let DraftSuggestion { request_id, .. } = job.payload()?;
        self.record(job, ConversationCommand::FailSuggestion { request_id, reason: reason.to_string() }).await
    }

    async fn retry(&self, job: &Job) -> anyhow::Result<()> {
        let trigger: Option<Uuid> = sqlx::query_scalar(
            "SELECT (payload->'MessageReceived'->>'message_id')::uuid FROM events \
              WHERE aggregate_type = 'conversation' AND aggregate_id = $1 AND event_type = 'MessageReceived' \
              ORDER BY sequence DESC LIMIT 1",
        )
        .bind(&job.aggregate_id)
        .fetch_optional(&self.services.pool)
        .await?
        .flatten();
        let Some(trigger_message_id) = trigger else { return Ok(()) };
        let cmd =
            ConversationCommand::RequestSuggestion { request_id: Uuid::now_v7(), trigger_message_id, at: Utc::now() };
        let meta = job.metadata(super::actor(Kind::ReplySuggestion));
        self.services.store.execute::<Conversation>(&job.aggregate_id, cmd, &(), &meta).await?;
        Ok(())
    }
}
