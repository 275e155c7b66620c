//! Realistic conversation histories for benchmarks and large-volume tests: each conversation is
//! driven through the real aggregate (customer messages in bursts, a drafted suggestion, approval,
//! sending, delivery) and its events are appended through the event store in large batches, so
//! the stored events are exactly what production writes, only without one round trip per command.

use aisales_domain::conversation::{
    ChannelKind, Conversation, ConversationCommand, ConversationError, ConversationEvent, Decision, Drafted, Inbound,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use crate::application::identity::{Identity, resolve_identity};
use crate::store::{EventMetadata, EventStore};

/// What to generate.
#[derive(Debug, Clone)]
pub struct HistorySpec {
    pub tenant_id: Uuid,
    pub account_id: Uuid,
    /// Customer messages per conversation.
    pub messages_per_conversation: u32,
    /// Customer messages between two replies of the shop.
    pub burst: u32,
    /// Events appended per store call.
    pub append_batch: usize,
    /// First customer message of every conversation.
    pub start: DateTime<Utc>,
}

impl HistorySpec {
    pub fn new(tenant_id: Uuid, account_id: Uuid, messages_per_conversation: u32) -> Self {
        HistorySpec {
            tenant_id,
            account_id,
            messages_per_conversation,
            burst: 3,
            append_batch: 500,
            start: Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().expect("valid date"),
        }
    }
}

/// The GREEN-API chat id of generated customer `n`.
pub fn chat_id(n: u64) -> String {
    format!("7900{n:07}@c.us")
}

const TEXTS: [&str; 6] = [
    "Здравствуйте, нужна АКПП на Камри 2008",
    "VIN XW8ZZZ61ZEG061733",
    "Сколько стоит с доставкой в Казань?",
    "А контрактная есть? Пробег какой?",
    "Код коробки U660E, фото шильдика пришлю",
    "Спасибо, подумаю",
];

fn decide(
    c: &mut Conversation,
    cmd: ConversationCommand,
    out: &mut Vec<ConversationEvent>,
) -> Result<(), ConversationError> {
    for e in c.decide(cmd)? {
        c.evolve(e.clone());
        out.push(e);
    }
    Ok(())
}

/// The events of one conversation of customer `n` whose identity is `identity`, and the state
/// they fold to.
pub fn conversation_events(
    spec: &HistorySpec,
    n: u64,
    identity: Identity,
) -> Result<(Conversation, Vec<ConversationEvent>), ConversationError> {
    let mut c = Conversation::default();
    let mut out = Vec::new();
    let chat = chat_id(n);
    let phone = chat.trim_end_matches("@c.us").to_string();
    let mut at = spec.start + Duration::seconds((n % 86_400) as i64);
    for k in 0..spec.messages_per_conversation {
        at += Duration::seconds(40);
        let inbound = Inbound {
            tenant_id: spec.tenant_id,
            channel: ChannelKind::GreenApi,
            account_id: spec.account_id,
            chat_id: chat.clone(),
            customer_id: identity.customer_id,
            customer_name: Some(format!("Клиент {n}")),
            customer_phone: Some(phone.clone()),
            message_id: Uuid::now_v7(),
            provider_message_id: format!("H{n}-{k}"),
            text: TEXTS[(k as usize + n as usize) % TEXTS.len()].to_string(),
            attachments: vec![],
            kind: aisales_domain::conversation::MessageKind::Text,
            reply_to: None,
            sent_at: at,
            received_at: at,
            request_id: Uuid::now_v7(),
            debounce: Duration::seconds(3),
            vehicle_id: None,
            transmission_code: None,
        };
        decide(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound)), &mut out)?;
        let answer = (k + 1) % spec.burst.max(1) == 0 || k + 1 == spec.messages_per_conversation;
        let Some(request_id) = c.pending_request.filter(|_| answer) else { continue };
        let suggestion_id = Uuid::now_v7();
        let reply_id = Uuid::now_v7();
        at += Duration::seconds(5);
        decide(
            &mut c,
            ConversationCommand::RecordSuggestion(Box::new(Drafted {
                request_id,
                suggestion_id,
                text: "Добрый день! Есть контрактная АКПП U660E, 45 000 ₽, гарантия 30 дней.".into(),
                intent: "price".into(),
                confidence: 0.82,
                decision: Decision::NeedApproval,
                explanations: vec!["price question".into()],
                source: "ai".into(),
                model: Some("gpt-4o-mini".into()),
                autosend_block_reason: None,
                reply_id: Uuid::now_v7(),
                send_after: at,
            })),
            &mut out,
        )?;
        at += Duration::seconds(30);
        decide(&mut c, ConversationCommand::Approve { suggestion_id, reply_id, send_after: at }, &mut out)?;
        decide(&mut c, ConversationCommand::StartSend { reply_id, at }, &mut out)?;
        let provider_message_id = format!("S{n}-{k}");
        decide(
            &mut c,
            ConversationCommand::RecordSent {
                reply_id,
                provider_message_id: provider_message_id.clone(),
                at: at + Duration::seconds(1),
                reconciled: false,
            },
            &mut out,
        )?;
        decide(
            &mut c,
            ConversationCommand::RecordDelivery {
                provider_message_id,
                status: aisales_domain::conversation::DeliveryStatus::Delivered,
                at: at + Duration::seconds(2),
            },
            &mut out,
        )?;
    }
    Ok((c, out))
}

/// Creates the identity of customer `n` and appends its generated conversation. Returns the
/// identity and the number of events appended.
pub async fn seed_conversation(store: &EventStore, spec: &HistorySpec, n: u64) -> anyhow::Result<(Identity, usize)> {
    let identity =
        resolve_identity(store.pool(), spec.tenant_id, ChannelKind::GreenApi, spec.account_id, &chat_id(n)).await?;
    let id = identity.conversation_id.to_string();
    let loaded = store.load::<Conversation>(&id).await?;
    if loaded.sequence > 0 {
        return Ok((identity, 0));
    }
    let (state, events) =
        conversation_events(spec, n, identity).map_err(|e| anyhow::anyhow!("generator refused: {e}"))?;
    let meta = EventMetadata::system(Some(spec.tenant_id), "seed");
    let mut sequence = 0;
    for chunk in events.chunks(spec.append_batch.max(1)) {
        let subject = crate::store::StoredAggregate::data_subject(&state, &id);
        store.append::<Conversation>(&id, sequence, chunk, &meta, subject).await?;
        sequence += chunk.len() as i64;
    }
    store.save_snapshot(&id, sequence, &state).await;
    Ok((identity, events.len()))
}
