//! Leads from web quizzes and site forms, for every entry point: lead forms (each with a webhook
//! URL that carries its own secret), a form post becoming a `Lead`, the customer's reply, the
//! operators' actions and the escalation bot's settings. `docs/leads.md` describes the flow.

pub mod clock;
mod forms;

use aisales_domain::lead::{
    self as dl, FormBody, Lead, LeadCommand, LeadError, LeadFields, LeadStatus, NewSubmission, SubmissionError,
};
use aisales_domain::tenant::WorkingHours;
use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

pub use forms::{Form, FormCreated, add_form, authenticate, list_forms, webhook_path};

use super::{CommandError, Context};
use crate::store::{EventMetadata, ExecuteError, Outcome};

/// Name of a tenant's escalation bot token in `integration_secrets`.
pub const BOT_TOKEN_SECRET: &str = "leads:escalation_bot_token";

impl From<ExecuteError<LeadError>> for CommandError {
    fn from(e: ExecuteError<LeadError>) -> Self {
        match e {
            ExecuteError::Rejected(LeadError::NotFound | LeadError::WrongTenant) => CommandError::NotFound("lead"),
            ExecuteError::Rejected(e @ LeadError::EmptyReason) => {
                CommandError::invalid("invalid_reason", e.to_string())
            }
            ExecuteError::Rejected(e) => CommandError::Conflict(e.to_string()),
            ExecuteError::Conflict => {
                CommandError::Conflict("the lead is being changed by someone else; try again".into())
            }
            ExecuteError::Store(e) => e.into(),
        }
    }
}

/// A form body as it arrived.
#[derive(Debug, Clone)]
pub enum FormPost {
    Json(serde_json::Value),
    Fields(Vec<(String, String)>),
}

impl FormPost {
    /// Every key and string value without control characters (line ends kept).
    fn cleaned(self) -> Self {
        use aisales_domain::text::clean_customer;
        fn clean_json(v: serde_json::Value) -> serde_json::Value {
            use serde_json::Value;
            match v {
                Value::String(s) => Value::String(clean_customer(&s)),
                Value::Array(items) => Value::Array(items.into_iter().map(clean_json).collect()),
                Value::Object(map) => {
                    Value::Object(map.into_iter().map(|(k, v)| (clean_customer(&k), clean_json(v))).collect())
                }
                other => other,
            }
        }
        match self {
            FormPost::Json(v) => FormPost::Json(clean_json(v)),
            FormPost::Fields(pairs) => {
                FormPost::Fields(pairs.into_iter().map(|(k, v)| (clean_customer(&k), clean_customer(&v))).collect())
            }
        }
    }
}

/// Why a form post was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// Unknown form, disabled form or wrong secret: nothing is stored.
    #[error("the form's secret is wrong or the form does not exist")]
    Unauthorized,
    /// The body cannot be read as a submission: nothing is stored.
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for PostError {
    fn from(e: sqlx::Error) -> Self {
        PostError::Unexpected(e.into())
    }
}

/// What a form post did.
#[derive(Debug, Clone, Serialize)]
pub struct Posted {
    /// `received` (a new lead), `repeated` (the same submission again: the same lead), or `test`
    /// (a connection test; nothing stored).
    pub outcome: &'static str,
    pub lead_id: Option<Uuid>,
    pub status: Option<&'static str>,
}

/// The tenant's working hours (always open when they cannot be read).
fn working_hours(t: &crate::tenancy::Tenant) -> WorkingHours {
    WorkingHours::parse(&t.timezone, t.working_hours_start, t.working_hours_end, &t.working_days)
        .unwrap_or_else(|_| WorkingHours::new(chrono_tz::Tz::UTC, t.working_hours_start, t.working_hours_start, &[]))
}

/// Reads a form post and stores it as a lead (or a repeat of one). The body is read before
/// anything is stored: an unreadable one is refused; a readable one without contacts becomes a
/// failed lead.
pub async fn post(ctx: &Context, form: &Form, body: FormPost) -> Result<Posted, PostError> {
    let form_id = form.id;
    // What a site sends is a customer's text: without NUL and other control characters before
    // any of it reaches an event (a read model's jsonb refuses NUL).
    let body = body.cleaned();
    let parsed = match &body {
        FormPost::Json(v) => dl::parse_json(v),
        FormPost::Fields(pairs) => dl::parse_form(pairs),
    };
    let submission = match parsed {
        Ok(FormBody::Submission(s)) => s,
        Ok(FormBody::Test) => return Ok(Posted { outcome: "test", lead_id: None, status: None }),
        Err(e @ (SubmissionError::NotAnObject | SubmissionError::Empty)) => {
            metrics::counter!("aisales_lead_posts_total", "source" => form.kind.as_str(), "outcome" => "unreadable")
                .increment(1);
            return Err(PostError::Unreadable(e.to_string()));
        }
    };
    let tenant = ctx
        .tenancy
        .tenant(&ctx.pool, form.tenant_id)
        .await?
        .ok_or_else(|| PostError::Unexpected(anyhow::anyhow!("the form's tenant is gone")))?;
    let fields = LeadFields::extract(&submission, Some(&form.name));
    let kind = fields.kind();
    let fingerprint = submission.fingerprint();
    let now = clock::now(form.tenant_id);
    let text = dl::texts::auto_response(&fields, kind, &tenant.settings, false);
    let new = NewSubmission {
        submission_id: Uuid::now_v7(),
        tenant_id: form.tenant_id,
        form_id,
        form_kind: form.kind,
        format: submission.format,
        fingerprint: fingerprint.clone(),
        fields,
        kind,
        text,
        hours: working_hours(&tenant),
        received_at: now,
    };
    // The same submission a moment ago, across the window boundary, is the lead of the previous
    // window. One round trip reads the lead of this window (usually new) and when the previous
    // window's was received.
    let previous = dl::previous_window_lead_id(form.tenant_id, form_id, &fingerprint, now);
    let current = dl::lead_id(form.tenant_id, form_id, &fingerprint, now);
    let (loaded, previous_at) = ctx
        .store
        .load_noting_first::<Lead>(&current.to_string(), &previous.to_string())
        .await
        .map_err(|e| PostError::Unexpected(anyhow::Error::new(e).context("the lead could not be read")))?;
    let (lead_id, loaded) = match previous_at {
        Some(at) if now - at < chrono::Duration::seconds(dl::DUPLICATE_WINDOW_SECS) => (previous, None),
        _ => (current, Some(loaded)),
    };
    let meta = EventMetadata {
        tenant_id: Some(form.tenant_id),
        actor: format!("form:{form_id}"),
        correlation_id: Uuid::now_v7(),
        causation_id: Some(format!("lead_form:{form_id}")),
        request_id: None,
        occurred_at: Utc::now(),
    };
    let out = ctx
        .store
        .execute_loaded::<Lead>(&lead_id.to_string(), loaded, LeadCommand::Receive(Box::new(new)), &(), &meta)
        .await
        .map_err(|e| PostError::Unexpected(anyhow::Error::new(e).context("the lead could not be stored")))?;
    let repeated = out.state.submissions > 1;
    let status = out.state.status.map(LeadStatus::as_str);
    let outcome = if repeated { "repeated" } else { "received" };
    let metric_outcome = if repeated { "repeated" } else { status.unwrap_or("received") };
    metrics::counter!("aisales_lead_posts_total", "source" => form.kind.as_str(), "outcome" => metric_outcome)
        .increment(1);
    Ok(Posted { outcome, lead_id: Some(lead_id), status })
}

/// Runs a command on a lead of `tenant` (another tenant's lead is "not found").
pub async fn execute(
    ctx: &Context,
    tenant: Uuid,
    lead: Uuid,
    cmd: LeadCommand,
    meta: &EventMetadata,
) -> Result<Outcome<Lead>, CommandError> {
    if super::conversations::owner_of(&ctx.pool, "lead", lead).await? != Some(tenant) {
        return Err(CommandError::NotFound("lead"));
    }
    Ok(ctx.store.execute::<Lead>(&lead.to_string(), cmd, &(), meta).await?)
}

/// An operator's action on a lead.
#[derive(Debug, Clone)]
pub enum Action {
    Qualify,
    Win { note: Option<String> },
    Lose { reason: String },
    Retry,
    Assign { operator: Option<String> },
}

/// Runs an operator's action on a lead of `tenant`.
pub async fn act(
    ctx: &Context,
    tenant: Uuid,
    lead: Uuid,
    action: Action,
    meta: &EventMetadata,
) -> Result<Outcome<Lead>, CommandError> {
    let by = meta.actor.clone();
    let at = clock::now(tenant);
    let cmd = match action {
        Action::Qualify => LeadCommand::Qualify { by, at },
        Action::Win { note } => LeadCommand::Win { by, note, at },
        Action::Lose { reason } => {
            if reason.trim().is_empty() {
                return Err(CommandError::invalid("invalid_reason", "a lost lead needs a reason"));
            }
            LeadCommand::Lose { by, reason, at }
        }
        Action::Retry => LeadCommand::RetryOutreach { by, at },
        Action::Assign { operator } => {
            if let Some(op) = &operator {
                let user: Uuid =
                    op.parse().map_err(|_| CommandError::invalid("invalid_operator", "operator is a user id"))?;
                crate::tenancy::get_user(&ctx.pool, tenant, user).await?.ok_or(CommandError::NotFound("user"))?;
            }
            LeadCommand::Assign { operator, by, at }
        }
    };
    execute(ctx, tenant, lead, cmd, meta).await
}

/// The customer wrote in a conversation where leads were answered: each is marked replied (and its
/// no-reply check cancelled). A lead not waiting for a reply ignores it.
pub async fn customer_replied(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    leads: &[Uuid],
    message_id: Uuid,
    meta: &EventMetadata,
) -> anyhow::Result<()> {
    for lead in leads {
        let cmd = LeadCommand::RecordReply { conversation_id: conversation, message_id, at: clock::now(tenant) };
        match ctx.store.execute::<Lead>(&lead.to_string(), cmd, &(), meta).await {
            Ok(out) if out.committed.is_some() => {
                metrics::counter!("aisales_leads_replied_total").increment(1);
            }
            Ok(_) | Err(ExecuteError::Rejected(_)) => {}
            Err(e) => return Err(anyhow::anyhow!("lead {lead}: {e}")),
        }
    }
    Ok(())
}

/// The channel reported a message undelivered (GREEN-API's `noAccount`): a lead contacted with it
/// goes on with its next attempt; other leads of the conversation ignore it.
pub async fn delivery_failed(
    ctx: &Context,
    tenant: Uuid,
    leads: &[Uuid],
    reply_id: Uuid,
    reason: &str,
    meta: &EventMetadata,
) -> anyhow::Result<()> {
    for lead in leads {
        let cmd = LeadCommand::RecordDeliveryFailed { reply_id, error: reason.to_string(), at: clock::now(tenant) };
        match ctx.store.execute::<Lead>(&lead.to_string(), cmd, &(), meta).await {
            Ok(_) | Err(ExecuteError::Rejected(_)) => {}
            Err(e) => return Err(anyhow::anyhow!("lead {lead}: {e}")),
        }
    }
    Ok(())
}

/// The tenant's escalation bot: its token is stored encrypted, the chat id in the lead settings.
pub async fn set_escalation_bot(
    ctx: &Context,
    tenant: Uuid,
    bot_token: &str,
    chat_id: &str,
) -> Result<(), CommandError> {
    let token = bot_token.trim();
    let chat = chat_id.trim();
    let valid_token = token
        .split_once(':')
        .is_some_and(|(id, rest)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && rest.len() >= 10);
    if !valid_token {
        return Err(CommandError::invalid("invalid_bot_token", "bot_token is a Telegram bot token (123456:ABC…)"));
    }
    let valid_chat = chat.strip_prefix('@').map_or_else(
        || chat.strip_prefix('-').unwrap_or(chat).bytes().all(|b| b.is_ascii_digit()) && !chat.is_empty(),
        |name| name.len() >= 5,
    );
    if !valid_chat {
        return Err(CommandError::invalid("invalid_chat_id", "chat_id is a numeric chat id or @channel"));
    }
    let t = crate::tenancy::get_tenant(&ctx.pool, tenant).await?.ok_or(CommandError::NotFound("tenant"))?;
    let mut settings = t.settings.clone();
    settings.leads.escalation_chat_id = Some(chat.to_string());
    let mut tx = ctx.pool.begin().await?;
    crate::infra::crypto::put(&mut tx, &ctx.keys, Some(tenant), BOT_TOKEN_SECRET, token)
        .await
        .map_err(|e| CommandError::Unexpected(e.into()))?;
    sqlx::query("UPDATE tenants SET settings = $2, updated_at = now() WHERE id = $1")
        .bind(tenant)
        .bind(serde_json::to_value(&settings).map_err(|e| CommandError::Unexpected(e.into()))?)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
