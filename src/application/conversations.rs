//! Commands on conversations, for every entry point: tenant-checked execution and the operator's
//! actions (replies, decisions on suggestions, status changes). An action on something an earlier
//! event produced (a drafted suggestion, a failed reply) continues that event's chain: same
//! correlation id, causation naming the event.

use aisales_domain::conversation::{Conversation, ConversationCommand as C, Status};
use aisales_domain::reply::{self, DelayPlan};
use aisales_projections::Position;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{CommandError, Context, causes};
use crate::store::{EventMetadata, Outcome};

/// The tenant an aggregate belongs to (from its first event), or `None` when it does not exist.
pub async fn owner_of(pool: &PgPool, aggregate_type: &str, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT tenant_id FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = 1")
        .bind(aggregate_type)
        .bind(id.to_string())
        .fetch_optional(pool)
        .await
        .map(Option::flatten)
}

/// The tenant a conversation belongs to, or `None` when it does not exist.
pub async fn tenant_of(pool: &PgPool, conversation: Uuid) -> sqlx::Result<Option<Uuid>> {
    owner_of(pool, "conversation", conversation).await
}

/// What a command on a conversation did.
#[derive(Debug, Clone)]
pub struct Done {
    pub conversation_id: Uuid,
    pub status: Status,
    pub sequence: i64,
    /// Where the command's last event is; `None` when nothing changed.
    pub position: Option<Position>,
}

impl Done {
    fn of(conversation_id: Uuid, outcome: &Outcome<Conversation>) -> Self {
        Done {
            conversation_id,
            status: outcome.state.status,
            sequence: outcome.sequence,
            position: outcome.committed.map(|c| c.position),
        }
    }
}

/// A reply queued by a command, and when it goes out.
#[derive(Debug, Clone, Copy)]
pub struct Queued {
    pub reply_id: Uuid,
    pub send_after: DateTime<Utc>,
}

/// Runs a command on a conversation of `tenant` (another tenant's id is "not found").
pub async fn execute(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    command: C,
    meta: &EventMetadata,
) -> Result<Outcome<Conversation>, CommandError> {
    if tenant_of(&ctx.pool, conversation).await? != Some(tenant) {
        return Err(CommandError::NotFound("conversation"));
    }
    Ok(ctx.store.execute::<Conversation>(&conversation.to_string(), command, &(), meta).await?)
}

async fn run(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    command: C,
    meta: &EventMetadata,
) -> Result<Done, CommandError> {
    let out = execute(ctx, tenant, conversation, command, meta).await?;
    Ok(Done::of(conversation, &out))
}

/// When a reply should go out for the tenant's delay settings, and the night auto-reply that
/// replaces it outside working hours when one is configured.
async fn send_plan(ctx: &Context, tenant: Uuid, text: &str) -> Result<(DateTime<Utc>, Option<String>), CommandError> {
    let t = ctx.tenancy.tenant(&ctx.pool, tenant).await?.ok_or(CommandError::NotFound("tenant"))?;
    let now = Utc::now();
    let working = reply::is_working_time(&t.timezone, t.working_hours_start, t.working_hours_end, &t.working_days, now);
    let (base, jitter) = (rand::random::<f64>(), rand::random::<f64>() * 2.0 - 1.0);
    match reply::plan_delay(&t.settings, text.chars().count(), working, base, jitter) {
        DelayPlan::SendAfter { delay_ms, .. } => Ok((now + chrono::Duration::milliseconds(delay_ms as i64), None)),
        DelayPlan::AutoReply { text } => Ok((now, Some(text))),
        DelayPlan::Hold => Err(CommandError::Conflict("sending is disabled outside working hours".into())),
    }
}

/// The operator's own reply (sent at once).
pub async fn reply(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    text: String,
    meta: &EventMetadata,
) -> Result<(Done, Queued), CommandError> {
    reply_with_file(ctx, tenant, conversation, text, None, meta).await
}

/// A file of the tenant's media store to send with a reply: its hash and, for documents, the
/// name the customer sees.
#[derive(Debug, Clone)]
pub struct FileRef {
    pub sha256: String,
    pub file_name: Option<String>,
}

/// The operator's own reply with a stored file of the same tenant (the text is its caption and
/// may be empty); a hash the tenant has not stored is `NotFound`, nothing recorded.
pub async fn reply_with_file(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    text: String,
    file: Option<FileRef>,
    meta: &EventMetadata,
) -> Result<(Done, Queued), CommandError> {
    let attachment = match file {
        None => None,
        Some(f) => Some(stored_file(&ctx.pool, tenant, f).await?),
    };
    let queued = Queued { reply_id: Uuid::now_v7(), send_after: Utc::now() };
    let done = run(
        ctx,
        tenant,
        conversation,
        C::Reply { reply_id: queued.reply_id, text, send_after: queued.send_after, attachment },
        meta,
    )
    .await?;
    Ok((done, queued))
}

async fn stored_file(
    pool: &PgPool,
    tenant: Uuid,
    file: FileRef,
) -> Result<aisales_domain::conversation::ReplyAttachment, CommandError> {
    if !crate::media::is_sha256(&file.sha256) {
        return Err(CommandError::Invalid {
            code: "invalid_attachment",
            message: "attachment.sha256 must be the lowercase hex SHA-256 of a stored file".into(),
        });
    }
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT size, mime_type FROM media_objects WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant)
            .bind(&file.sha256)
            .fetch_optional(pool)
            .await
            .map_err(|e| anyhow::Error::new(e).context("loading a media object"))?;
    let Some((size, mime_type)) = row else { return Err(CommandError::NotFound("media")) };
    let file_name = match file.file_name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) {
        Some(n) if n.chars().count() > 200 || n.contains(['/', '\\']) || n.chars().any(char::is_control) => {
            return Err(CommandError::Invalid {
                code: "invalid_attachment",
                message: "attachment.file_name must be a plain name of at most 200 characters".into(),
            });
        }
        Some(n) => n,
        None => format!("{}.{}", &file.sha256[..12], extension(&mime_type)),
    };
    Ok(aisales_domain::conversation::ReplyAttachment { sha256: file.sha256, mime_type, size: size as u64, file_name })
}

fn extension(mime_type: &str) -> &'static str {
    match mime_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "image/heic" => "heic",
        "application/pdf" => "pdf",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "video/mp4" => "mp4",
        _ => "bin",
    }
}

/// A suggestion of `tenant`: its conversation, its text and the chain of the event that drafted it.
async fn suggestion(
    ctx: &Context,
    tenant: Uuid,
    suggestion: Uuid,
) -> Result<(Uuid, String, Option<crate::store::Cause>), CommandError> {
    let row: Option<(Uuid, String)> =
        sqlx::query_as("SELECT conversation_id, text FROM rm_suggestions WHERE tenant_id = $1 AND suggestion_id = $2")
            .bind(tenant)
            .bind(suggestion)
            .fetch_optional(&ctx.pool)
            .await?;
    let (conversation, text) = row.ok_or(CommandError::NotFound("suggestion"))?;
    let cause = causes::suggestion_drafted(&ctx.pool, conversation, suggestion).await?;
    Ok((conversation, text, cause))
}

/// Continues `cause`'s chain when there is one.
fn continuing(meta: &EventMetadata, cause: Option<&crate::store::Cause>) -> EventMetadata {
    match cause {
        Some(c) => meta.clone().continuing(c),
        None => meta.clone(),
    }
}

/// Approves a suggestion: its text is queued (outside working hours, the night auto-reply
/// instead, when the tenant configured one).
pub async fn approve_suggestion(
    ctx: &Context,
    tenant: Uuid,
    suggestion_id: Uuid,
    meta: &EventMetadata,
) -> Result<(Done, Queued), CommandError> {
    let (conversation, text, cause) = suggestion(ctx, tenant, suggestion_id).await?;
    let reply_id = Uuid::now_v7();
    let (send_after, night_text) = send_plan(ctx, tenant, &text).await?;
    let command = match night_text {
        Some(text) => C::Edit { suggestion_id, reply_id, text, send_after },
        None => C::Approve { suggestion_id, reply_id, send_after },
    };
    let done = run(ctx, tenant, conversation, command, &continuing(meta, cause.as_ref())).await?;
    Ok((done, Queued { reply_id, send_after }))
}

/// Sends a suggestion with the operator's text instead of the drafted one.
pub async fn edit_suggestion(
    ctx: &Context,
    tenant: Uuid,
    suggestion_id: Uuid,
    text: String,
    meta: &EventMetadata,
) -> Result<(Done, Queued), CommandError> {
    let (conversation, _, cause) = suggestion(ctx, tenant, suggestion_id).await?;
    let reply_id = Uuid::now_v7();
    let (send_after, _) = send_plan(ctx, tenant, &text).await?;
    let command = C::Edit { suggestion_id, reply_id, text, send_after };
    let done = run(ctx, tenant, conversation, command, &continuing(meta, cause.as_ref())).await?;
    Ok((done, Queued { reply_id, send_after }))
}

/// Rejects a suggestion, with an optional reason.
pub async fn reject_suggestion(
    ctx: &Context,
    tenant: Uuid,
    suggestion_id: Uuid,
    reason: Option<String>,
    meta: &EventMetadata,
) -> Result<Done, CommandError> {
    let (conversation, _, cause) = suggestion(ctx, tenant, suggestion_id).await?;
    run(ctx, tenant, conversation, C::Reject { suggestion_id, reason }, &continuing(meta, cause.as_ref())).await
}

/// Hands the conversation to a person (rejecting `suggestion_id` if given).
pub async fn escalate(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    reason: Option<String>,
    suggestion_id: Option<Uuid>,
    meta: &EventMetadata,
) -> Result<Done, CommandError> {
    let reason = reason.unwrap_or_else(|| "escalated by an operator".into());
    let meta = match suggestion_id {
        Some(s) => continuing(meta, causes::suggestion_drafted(&ctx.pool, conversation, s).await?.as_ref()),
        None => meta.clone(),
    };
    run(ctx, tenant, conversation, C::Escalate { reason, suggestion_id }, &meta).await
}

/// Closes the conversation.
pub async fn resolve(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    meta: &EventMetadata,
) -> Result<Done, CommandError> {
    run(ctx, tenant, conversation, C::Resolve, meta).await
}

/// Opens a resolved or escalated conversation again.
pub async fn reopen(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    meta: &EventMetadata,
) -> Result<Done, CommandError> {
    run(ctx, tenant, conversation, C::Reopen, meta).await
}

/// Switches automatic drafting off (or back on).
pub async fn mute(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    muted: bool,
    meta: &EventMetadata,
) -> Result<Done, CommandError> {
    run(ctx, tenant, conversation, C::Mute { muted }, meta).await
}

/// Assigns the conversation to a user of the tenant (`None`: nobody).
pub async fn assign(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    operator: Option<String>,
    meta: &EventMetadata,
) -> Result<Done, CommandError> {
    if let Some(op) = &operator {
        let user: Uuid = op.parse().map_err(|_| CommandError::invalid("invalid_operator", "operator is a user id"))?;
        crate::tenancy::get_user(&ctx.pool, tenant, user).await?.ok_or(CommandError::NotFound("user"))?;
    }
    run(ctx, tenant, conversation, C::Assign { operator }, meta).await
}

/// Marks the conversation read up to now.
pub async fn mark_read(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    meta: &EventMetadata,
) -> Result<Done, CommandError> {
    run(ctx, tenant, conversation, C::MarkRead, meta).await
}

/// Asks for a new draft answering the latest customer message; the request's id.
pub async fn request_suggestion(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    meta: &EventMetadata,
) -> Result<(Done, Uuid), CommandError> {
    if tenant_of(&ctx.pool, conversation).await? != Some(tenant) {
        return Err(CommandError::NotFound("conversation"));
    }
    let last: Option<Uuid> = sqlx::query_scalar(
        "SELECT message_id FROM rm_messages WHERE tenant_id = $1 AND conversation_id = $2 AND direction = 'in' \
         ORDER BY created_at DESC, message_id DESC LIMIT 1",
    )
    .bind(tenant)
    .bind(conversation)
    .fetch_optional(&ctx.pool)
    .await?;
    let trigger = last.ok_or_else(|| CommandError::Conflict("there is no customer message to answer".into()))?;
    let request_id = Uuid::now_v7();
    let command = C::RequestSuggestion { request_id, trigger_message_id: trigger, at: Utc::now() };
    Ok((run(ctx, tenant, conversation, command, meta).await?, request_id))
}

/// Tries a failed reply again.
pub async fn retry_reply(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    reply_id: Uuid,
    meta: &EventMetadata,
) -> Result<Done, CommandError> {
    let cause = causes::reply_failed(&ctx.pool, conversation, reply_id).await?;
    run(ctx, tenant, conversation, C::RetryReply { reply_id }, &continuing(meta, cause.as_ref())).await
}
