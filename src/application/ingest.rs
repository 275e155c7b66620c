//! Inbound pipeline shared by the webhooks: a parsed provider notification becomes commands on
//! conversations. Messages are stored before the webhook is answered (nothing is acknowledged
//! that is not durable), and a provider message id delivered twice, even concurrently, yields one
//! message: the conversation remembers recent provider ids and concurrent appends conflict on the
//! event sequence, so the loser retries and finds the id already there.

use aisales_domain::conversation::{
    Attachment, ChannelKind, Conversation, ConversationCommand, ConversationError, DeliveryStatus, DetectedCode,
    DetectedVehicleId, Inbound,
};
use aisales_domain::detect;
use aisales_domain::vehicle_lookup::{self, IdType, VehicleId};
use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use super::identity::{self, Identity};
use super::{Context, causes};
use crate::channels::{self, DeliveryState, InboundMessage, Notification};
use crate::store::{EventMetadata, ExecuteError};
use crate::tenancy::ChannelAccount;

/// What happened to one inbound message.
#[derive(Debug, Clone, Serialize)]
pub struct Ingested {
    pub conversation_id: Uuid,
    pub duplicate: bool,
    pub position: Option<String>,
}

/// What a webhook call did, for its answer.
#[derive(Debug, Default, Serialize)]
pub struct WebhookOutcome {
    pub messages: Vec<Ingested>,
    pub statuses: usize,
    pub ignored: Option<String>,
    pub dead_lettered: bool,
}

fn metadata(tenant: Uuid, kind: ChannelKind, provider_id: &str, request_id: Option<String>) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(tenant),
        actor: "customer".into(),
        correlation_id: Uuid::now_v7(),
        causation_id: Some(format!("{}:{provider_id}", kind.as_str())),
        request_id,
        occurred_at: Utc::now(),
    }
}

/// Stores one customer message in its conversation (creating customer and conversation on first
/// contact).
///
/// A customer whose data was erased has no identity any more, so their next message starts a new
/// customer; this process may still hold the old identity in its cache, which the erased
/// conversation refuses: the identity is then forgotten and resolved again.
pub async fn message(
    ctx: &Context,
    account: &ChannelAccount,
    m: InboundMessage,
    debounce_secs: u32,
    request_id: Option<String>,
) -> anyhow::Result<Ingested> {
    match message_once(ctx, account, m.clone(), debounce_secs, request_id.clone()).await {
        Err(e) if erased(&e) => {
            let clean = aisales_domain::text::clean_customer(&m.chat_id);
            for id in [Some(&clean), m.sender_alias.as_ref()].into_iter().flatten() {
                ctx.identities.forget(account.tenant_id, account.kind, account.id, id);
            }
            message_once(ctx, account, m, debounce_secs, request_id).await
        }
        r => r,
    }
}

/// Whether a command failed because the conversation's customer was erased.
pub(crate) fn erased(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<ExecuteError<ConversationError>>(),
        Some(ExecuteError::Rejected(ConversationError::Erased))
    )
}

async fn message_once(
    ctx: &Context,
    account: &ChannelAccount,
    mut m: InboundMessage,
    debounce_secs: u32,
    request_id: Option<String>,
) -> anyhow::Result<Ingested> {
    // Ids and names reach text columns before the conversation sees them: without NUL and other
    // control characters (which Postgres refuses or a screen misprints). The text itself is
    // cleaned by the conversation.
    for s in [&mut m.chat_id, &mut m.provider_message_id] {
        *s = aisales_domain::text::clean_customer(s);
    }
    m.sender_name = m.sender_name.as_deref().map(aisales_domain::text::clean_customer);
    let tenant = account.tenant_id;
    let kind = account.kind;
    let (identity, new_alias): (Identity, Option<String>) = match &m.sender_alias {
        Some(alias) => {
            let (identity, new) = with_alias(ctx, account, &m.chat_id, alias).await?;
            (identity, new.then(|| alias.clone()))
        }
        None => (ctx.identities.resolve(&ctx.pool, tenant, kind, account.id, &m.chat_id).await?, None),
    };
    let detection = detect::detect(&m.text);
    let vehicle_id = detection.vehicle_id(detect::VEHICLE_LOOKUP_MIN_SCORE).and_then(|c| {
        let id_type = IdType::parse(c.kind.as_str())?;
        // One lookup per identifier and conversation: its id is derived from both.
        let lookup_id = VehicleId::parse(id_type, &c.value)
            .ok()
            .map(|id| vehicle_lookup::lookup_id(tenant, Some(identity.conversation_id), &id));
        Some(DetectedVehicleId {
            id_type,
            value: c.value.clone(),
            score: c.score,
            reasons: c.reasons.clone(),
            lookup_id,
        })
    });
    // A code starts a price lookup unless a VIN or FRAME of the same message starts a vehicle
    // lookup (which asks for the price with the gearbox's OEM number).
    let transmission_code =
        detection.price_lookup_code().map(|c| DetectedCode { code: c.value.clone(), score: c.score });
    let phone = m.phone.clone().or_else(|| match kind {
        ChannelKind::GreenApi => channels::green_api::phone_of(&m.chat_id),
        ChannelKind::Whatsapp => channels::phone_digits(&m.chat_id),
        ChannelKind::Telegram => None,
    });
    let attachments = m
        .attachments
        .iter()
        .map(|a| Attachment {
            kind: a.kind,
            url: a.url.clone(),
            file_name: a.file_name.clone(),
            mime_type: a.mime_type.clone(),
            file_id: a.file_id.clone(),
        })
        .collect();
    let meta = metadata(tenant, kind, &m.provider_message_id, request_id);
    let message_id = Uuid::now_v7();
    let inbound = Inbound {
        tenant_id: tenant,
        channel: kind,
        account_id: account.id,
        chat_id: m.chat_id,
        customer_id: identity.customer_id,
        customer_name: m.sender_name,
        customer_phone: phone,
        message_id,
        provider_message_id: m.provider_message_id,
        text: m.text,
        attachments,
        kind: m.kind,
        reply_to: m.reply_to,
        sent_at: m.sent_at,
        received_at: meta.occurred_at,
        request_id: Uuid::now_v7(),
        debounce: chrono::Duration::seconds(i64::from(debounce_secs)),
        vehicle_id,
        transmission_code,
    };
    let out = ctx
        .store
        .execute::<Conversation>(
            &identity.conversation_id.to_string(),
            ConversationCommand::ReceiveMessage(Box::new(inbound)),
            &(),
            &meta,
        )
        .await?;
    if let Some(alias) = new_alias {
        let meta = EventMetadata::system(Some(tenant), format!("provider:{}", kind.as_str()));
        ctx.store
            .execute::<Conversation>(
                &identity.conversation_id.to_string(),
                ConversationCommand::LinkAlias { alias },
                &(),
                &meta,
            )
            .await?;
    }
    metrics::counter!("aisales_messages_received_total", "channel" => kind.as_str(), "duplicate" => if out.committed.is_none() { "true" } else { "false" })
        .increment(1);
    // A customer answering a lead's first message: the lead is marked replied (again harmlessly
    // when the message was a duplicate).
    if !out.state.leads.is_empty() {
        super::leads::customer_replied(ctx, tenant, identity.conversation_id, &out.state.leads, message_id, &meta)
            .await?;
    }
    Ok(Ingested {
        conversation_id: identity.conversation_id,
        duplicate: out.committed.is_none(),
        position: out.committed.map(|c| c.position.to_string()),
    })
}

/// The conversation and reply of a provider message id we sent.
async fn sent_reply(
    ctx: &Context,
    tenant: Uuid,
    kind: ChannelKind,
    provider_id: &str,
) -> sqlx::Result<Option<(Uuid, Uuid, String)>> {
    sqlx::query_as(
        "SELECT conversation_id, reply_id, chat_id FROM outbound_messages WHERE tenant_id = $1 AND channel = $2 AND provider_message_id = $3",
    )
    .bind(tenant)
    .bind(kind.as_str())
    .bind(provider_id)
    .fetch_optional(&ctx.pool)
    .await
}

/// Records a delivery status of one of our replies (statuses of unknown messages are ignored).
pub async fn status(ctx: &Context, account: &ChannelAccount, s: channels::DeliveryStatus) -> anyhow::Result<bool> {
    let Some((conversation, reply, _)) =
        sent_reply(ctx, account.tenant_id, account.kind, &s.provider_message_id).await?
    else {
        return Ok(false);
    };
    let status = match s.status {
        DeliveryState::Sent => return Ok(false),
        DeliveryState::Delivered => DeliveryStatus::Delivered,
        DeliveryState::Read => DeliveryStatus::Read,
        DeliveryState::Failed { reason } => DeliveryStatus::Failed { reason },
        DeliveryState::NoAccount => {
            DeliveryStatus::Failed { reason: "the recipient has no account on this messenger".to_string() }
        }
    };
    let mut meta = EventMetadata::system(Some(account.tenant_id), format!("provider:{}", account.kind.as_str()));
    // A delivery status continues the chain of the send it reports on.
    if let Some(cause) = causes::reply_sent(&ctx.pool, conversation, reply).await? {
        meta = meta.continuing(&cause);
    }
    let failure = match &status {
        DeliveryStatus::Failed { reason } => Some(reason.clone()),
        _ => None,
    };
    let cmd = ConversationCommand::RecordDelivery { provider_message_id: s.provider_message_id, status, at: s.at };
    match ctx.store.execute::<Conversation>(&conversation.to_string(), cmd, &(), &meta).await {
        Ok(out) => {
            // A lead's first message reported undelivered: the lead's round goes on.
            if let Some(reason) = failure
                && !out.state.leads.is_empty()
            {
                super::leads::delivery_failed(ctx, account.tenant_id, &out.state.leads, reply, &reason, &meta).await?;
            }
            Ok(true)
        }
        Err(ExecuteError::Rejected(ConversationError::ReplyNotFound)) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// The identity of a sender who comes with two ids (WhatsApp: the phone number as `chat_id` and
/// the business-scoped user id as `alias`): one customer whichever of them was seen first. A
/// person first met by the user id alone keeps that conversation, now also under the phone.
/// Also says whether the alias is new (the conversation records it once the message is in).
async fn with_alias(
    ctx: &Context,
    account: &ChannelAccount,
    chat_id: &str,
    alias: &str,
) -> anyhow::Result<(Identity, bool)> {
    let (pool, tenant, kind) = (&ctx.pool, account.tenant_id, account.kind);
    if let Some(known) = ctx.identities.cached(tenant, kind, account.id, alias) {
        return Ok((known, false));
    }
    let identity = match identity::find_identity(pool, tenant, kind, chat_id).await? {
        None => match identity::find_identity(pool, tenant, kind, alias).await? {
            Some(by_alias) => {
                identity::add_alias(pool, tenant, kind, account.id, chat_id, by_alias, alias).await?;
                by_alias
            }
            None => ctx.identities.resolve(pool, tenant, kind, account.id, chat_id).await?,
        },
        Some(_) => ctx.identities.resolve(pool, tenant, kind, account.id, chat_id).await?,
    };
    let new = identity::add_alias(pool, tenant, kind, account.id, alias, identity, chat_id).await?;
    ctx.identities.remember(tenant, kind, account.id, alias, identity);
    Ok((identity, new))
}

/// Learns a customer alias from the echo of one of our GREEN-API sends: the same person seen as
/// a phone chat id (where we sent) and a MAX internal id (what their messages carry).
pub async fn echo(ctx: &Context, account: &ChannelAccount, e: channels::OutgoingEcho) -> anyhow::Result<bool> {
    let Some((conversation, _, sent_to)) =
        sent_reply(ctx, account.tenant_id, account.kind, &e.provider_message_id).await?
    else {
        return Ok(false);
    };
    let Some(alias) = channels::green_api::ChatAlias::from_echo(&sent_to, &e) else { return Ok(false) };
    let Some(identity) =
        identity::find_identity(&ctx.pool, account.tenant_id, account.kind, &alias.phone_chat_id).await?
    else {
        return Ok(false);
    };
    if identity.conversation_id != conversation {
        return Ok(false);
    }
    identity::add_alias(
        &ctx.pool,
        account.tenant_id,
        account.kind,
        account.id,
        &alias.internal_id,
        identity,
        &alias.phone_chat_id,
    )
    .await?;
    let meta = EventMetadata::system(Some(account.tenant_id), format!("provider:{}", account.kind.as_str()));
    ctx.store
        .execute::<Conversation>(
            &conversation.to_string(),
            ConversationCommand::LinkAlias { alias: alias.internal_id },
            &(),
            &meta,
        )
        .await?;
    Ok(true)
}

/// Keeps a notification we could not use, for inspection.
pub async fn dead_letter(
    ctx: &Context,
    account: &ChannelAccount,
    kind: &str,
    reason: &str,
    body: &[u8],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO webhook_dead_letters (id, tenant_id, account_id, provider, kind, reason, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7())
    .bind(account.tenant_id)
    .bind(account.id)
    .bind(account.kind.as_str())
    .bind(kind)
    .bind(reason)
    .bind(String::from_utf8_lossy(body).as_ref())
    .execute(&ctx.pool)
    .await?;
    metrics::counter!("aisales_webhook_dead_letters_total", "channel" => account.kind.as_str()).increment(1);
    Ok(())
}

/// Applies one parsed notification.
pub async fn notification(
    ctx: &Context,
    account: &ChannelAccount,
    n: Notification,
    raw: &[u8],
    debounce_secs: u32,
    request_id: Option<String>,
    out: &mut WebhookOutcome,
) -> anyhow::Result<()> {
    match n {
        Notification::Messages(messages) => {
            for m in messages {
                out.messages.push(message(ctx, account, m, debounce_secs, request_id.clone()).await?);
            }
        }
        Notification::Statuses(statuses) => {
            for s in statuses {
                if status(ctx, account, s).await? {
                    out.statuses += 1;
                }
            }
        }
        Notification::OutgoingEcho(e) => {
            echo(ctx, account, e).await?;
        }
        Notification::StateChanged { state: s } => {
            sqlx::query("UPDATE channel_accounts SET status = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2")
                .bind(account.tenant_id)
                .bind(account.id)
                .bind(&s)
                .execute(&ctx.pool)
                .await?;
        }
        Notification::Ignored { reason } => out.ignored = Some(reason),
        Notification::Unknown { kind } => {
            dead_letter(ctx, account, &kind, "unknown notification type", raw).await?;
            out.dead_lettered = true;
        }
    }
    Ok(())
}
