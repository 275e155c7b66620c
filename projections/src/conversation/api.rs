//! The API's JSON shapes of conversations and suggestions, shared by the read API and audit
//! replay so that both show the same thing. They belong to the HTTP layer, as typed views, and
//! are kept here only until they move there.

use serde_json::{Value, json};

use super::list::ConversationRow;
use super::suggestions::SuggestionRow;
use crate::rows::micros;

/// A conversation as the API shows it.
pub fn conversation_json(r: &ConversationRow) -> Value {
    json!({
        "id": r.conversation_id,
        "channel": r.channel,
        "account_id": r.account_id,
        "chat_id": r.chat_id,
        "customer": { "id": r.customer_id, "name": r.customer_name, "phone": r.customer_phone },
        "status": r.status,
        "muted": r.muted,
        "assigned_operator": r.assigned_operator,
        "last_message": {
            "preview": r.last_message_preview,
            "at": r.last_message_at.map(micros),
            "direction": r.last_message_direction,
        },
        "unread_count": r.unread_count,
        "pending_suggestions": r.pending_suggestions,
        "has_pending_suggestion": r.pending_suggestions > 0,
        "messages_count": r.messages_count,
        "waiting_since": r.awaiting_reply_since.map(micros),
        "vehicle": r.vehicle,
        "created_at": micros(r.created_at),
        "updated_at": micros(r.updated_at),
        "sequence": r.last_sequence,
    })
}

/// A suggestion as the API shows it.
pub fn suggestion_json(r: &SuggestionRow) -> Value {
    json!({
        "id": r.suggestion_id,
        "conversation_id": r.conversation_id,
        "request_id": r.request_id,
        "text": r.text,
        "intent": r.intent,
        "confidence": r.confidence,
        "decision": r.decision,
        "explanations": r.explanations,
        "source": r.source,
        "model": r.model,
        "autosend_block_reason": r.autosend_block_reason,
        "status": r.status,
        "final_text": r.final_text,
        "reply_id": r.reply_id,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at.map(micros),
        "created_at": micros(r.created_at),
    })
}

/// The conversation detail: the conversation and its pending suggestions, oldest first.
pub fn detail_json(conversation: &ConversationRow, suggestions: &[&SuggestionRow]) -> Value {
    let mut v = conversation_json(conversation);
    let mut pending: Vec<&&SuggestionRow> = suggestions.iter().filter(|s| s.status == "pending").collect();
    pending.sort_by_key(|s| (micros(s.created_at), s.suggestion_id));
    v["pending_suggestions_list"] = Value::Array(pending.into_iter().map(|s| suggestion_json(s)).collect());
    v
}

#[cfg(test)]
mod tests {
    use aisales_domain::conversation::{ConversationEvent as E, Decision};
    use chrono::Duration;
    use uuid::Uuid;

    use super::detail_json;
    use crate::conversation::fold;
    use crate::conversation::log::{Log, generated, started};

    #[test]
    fn the_detail_lists_the_pending_suggestions_oldest_first_with_microsecond_times() {
        let (a, s1, s2, s3) = (Uuid::from_u128(0xa), Uuid::from_u128(3), Uuid::from_u128(2), Uuid::from_u128(1));
        let mut log = Log::new();
        log.clock += Duration::nanoseconds(123_456_789);
        log.push(a, started(Uuid::from_u128(9), None, log.clock))
            .push(a, generated(s1, Decision::NeedApproval))
            .push(a, generated(s2, Decision::NeedApproval))
            .push(a, generated(s3, Decision::NeedApproval))
            .push(a, E::SuggestionRejected { suggestion_id: s2, reason: None });
        let folded = fold(&log.decoded()).unwrap();
        let v = detail_json(folded.conversation.as_ref().unwrap(), &folded.suggestions.values().collect::<Vec<_>>());
        let listed: Vec<&str> =
            v["pending_suggestions_list"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(listed, vec![s1.to_string(), s3.to_string()]);
        assert_eq!(v["pending_suggestions"], 2);
        assert_eq!(v["has_pending_suggestion"], true);
        assert_eq!(v["created_at"], "2026-11-27T10:00:00.123456Z");
    }
}
