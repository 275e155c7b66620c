//! The suggestion queue (`rm_suggestions`): reply suggestions with intent, confidence, decision
//! and the operator's verdict.

use aisales_domain::conversation::ConversationEvent as E;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Decoded;
use super::projection::{Feed, ReadModelProjector, RowFold, RowModel, RowOf};

/// Projector of `rm_suggestions`.
pub type Suggestions = ReadModelProjector<SuggestionsModel>;

/// Suggestions as a read model.
pub struct SuggestionsModel;

/// What became of a suggestion, as the suggestions read model and the API say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionState {
    Pending,
    Approved,
    /// Approved by the autosend policy.
    AutoSent,
    Edited,
    Rejected,
    Superseded,
}

impl SuggestionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::AutoSent => "auto_sent",
            Self::Edited => "edited",
            Self::Rejected => "rejected",
            Self::Superseded => "superseded",
        }
    }
}

/// A row of `rm_suggestions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestionRow {
    pub suggestion_id: Uuid,
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub request_id: Uuid,
    pub text: String,
    pub intent: String,
    pub confidence: f64,
    pub decision: String,
    pub explanations: serde_json::Value,
    pub source: String,
    pub model: Option<String>,
    pub autosend_block_reason: Option<String>,
    pub status: String,
    pub final_text: Option<String>,
    pub reply_id: Option<Uuid>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl RowModel for SuggestionsModel {
    const NAME: &'static str = "suggestions";
    const DESCRIPTION: &'static str = "reply suggestions with intent, confidence, decision and the operator's verdict";
}

impl RowFold for SuggestionsModel {
    type Row = SuggestionRow;
    const TABLE: &'static str = "rm_suggestions";
    const PK: &'static [&'static str] = &["suggestion_id"];
    const FEED: Feed<SuggestionRow> = Feed::EachEvent { entity: "suggestion", tells_created: false };

    fn key(row: &SuggestionRow) -> Uuid {
        row.suggestion_id
    }

    /// A generated suggestion makes its row; the verdict on it and the reply queued from it change it.
    fn row_of(event: &Decoded) -> Option<RowOf> {
        match event.event {
            E::SuggestionGenerated { suggestion_id, .. } => Some(RowOf::New(*suggestion_id)),
            E::SuggestionApproved { suggestion_id, .. }
            | E::SuggestionEdited { suggestion_id, .. }
            | E::SuggestionRejected { suggestion_id, .. }
            | E::SuggestionSuperseded { suggestion_id, .. } => Some(RowOf::Stored(*suggestion_id)),
            E::ReplyQueued { suggestion_id, .. } => suggestion_id.map(RowOf::Stored),
            _ => None,
        }
    }

    fn evolve(row: Option<SuggestionRow>, d: &Decoded) -> anyhow::Result<Option<SuggestionRow>> {
        if let E::SuggestionGenerated {
            suggestion_id,
            request_id,
            text,
            intent,
            confidence,
            decision,
            explanations,
            source,
            model,
            autosend_block_reason,
        } = d.event
        {
            return Ok(Some(SuggestionRow {
                suggestion_id: *suggestion_id,
                tenant_id: d.tenant_id.unwrap_or_default(),
                conversation_id: d.conversation_id,
                request_id: *request_id,
                text: text.clone(),
                intent: intent.clone(),
                confidence: *confidence,
                decision: decision.as_str().into(),
                explanations: serde_json::to_value(explanations)?,
                source: source.clone(),
                model: model.clone(),
                autosend_block_reason: autosend_block_reason.clone(),
                status: SuggestionState::Pending.as_str().into(),
                final_text: None,
                reply_id: None,
                decided_by: None,
                decided_at: None,
                created_at: d.recorded_at,
            }));
        }
        let Some(mut row) = row else {
            let id = Self::row_of(d).map(RowOf::key).unwrap_or_default();
            anyhow::bail!("suggestion {id} of conversation {} was never generated", d.conversation_id)
        };
        let mut decided = |status: SuggestionState| {
            row.status = status.as_str().into();
            row.decided_by = d.actor();
            row.decided_at = Some(d.recorded_at);
        };
        match d.event {
            E::SuggestionApproved { automatic, .. } => {
                decided(if *automatic { SuggestionState::AutoSent } else { SuggestionState::Approved })
            }
            E::SuggestionEdited { text, .. } => {
                decided(SuggestionState::Edited);
                row.final_text = Some(text.clone());
            }
            E::SuggestionRejected { .. } => decided(SuggestionState::Rejected),
            E::SuggestionSuperseded { .. } => decided(SuggestionState::Superseded),
            E::ReplyQueued { reply_id, text, .. } => {
                row.reply_id = Some(*reply_id);
                row.final_text = Some(text.clone());
            }
            _ => {}
        }
        Ok(Some(row))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aisales_domain::conversation::{ConversationEvent as E, Decision, ReplyOrigin};
    use uuid::Uuid;

    use super::SuggestionsModel;
    use crate::conversation::log::{A, Log, assert_columns, generated, queued, rows};
    use crate::conversation::projection::{RowFold, RowOf, apply_batch};

    const S: Uuid = Uuid::from_u128(1);

    #[test]
    fn a_drafted_suggestion_waits_for_a_verdict() {
        let mut log = Log::new();
        log.push(A, generated(S, Decision::NeedApproval));
        let s = &rows::<SuggestionsModel>(&log)[&S];
        assert_columns(s);
        assert_eq!(
            (s.status.as_str(), s.decision.as_str(), s.intent.as_str()),
            ("pending", "NEED_APPROVAL", "availability")
        );
        assert_eq!(s.explanations, serde_json::json!(["in stock"]));
        assert_eq!(
            (s.created_at, s.decided_by.as_deref(), s.decided_at),
            (log.clock - chrono::Duration::seconds(1), None, None)
        );
    }

    #[test]
    fn the_verdict_says_who_decided_and_when() {
        let verdicts = [
            (E::SuggestionApproved { suggestion_id: S, automatic: false }, "approved", None),
            (E::SuggestionApproved { suggestion_id: S, automatic: true }, "auto_sent", None),
            (E::SuggestionEdited { suggestion_id: S, text: "Есть, 29 000 ₽".into() }, "edited", Some("Есть, 29 000 ₽")),
            (E::SuggestionRejected { suggestion_id: S, reason: None }, "rejected", None),
            (E::SuggestionSuperseded { suggestion_id: S, by_message_id: Uuid::from_u128(7) }, "superseded", None),
        ];
        for (verdict, status, final_text) in verdicts {
            let mut log = Log::new();
            log.push(A, generated(S, Decision::NeedApproval)).push_by(A, "user:olga", verdict);
            let decided_at = log.clock - chrono::Duration::seconds(1);
            let s = rows::<SuggestionsModel>(&log).remove(&S).unwrap();
            assert_eq!(s.status, status);
            assert_eq!((s.decided_by.as_deref(), s.decided_at), (Some("user:olga"), Some(decided_at)));
            assert_eq!(s.final_text.as_deref(), final_text);
        }
    }

    #[test]
    fn the_reply_queued_from_a_suggestion_is_linked_to_it() {
        let mut log = Log::new();
        let reply = Uuid::from_u128(2);
        log.push(A, generated(S, Decision::AutoSend))
            .push(A, E::SuggestionApproved { suggestion_id: S, automatic: true })
            .push(A, queued(reply, Some(S), "Есть в наличии", ReplyOrigin::Auto))
            .push(A, queued(Uuid::from_u128(3), None, "Ещё вопрос?", ReplyOrigin::Operator));
        let all = rows::<SuggestionsModel>(&log);
        assert_eq!(all.len(), 1, "a reply of its own touches no suggestion");
        let s = &all[&S];
        assert_eq!(
            (s.status.as_str(), s.reply_id, s.final_text.as_deref()),
            ("auto_sent", Some(reply), Some("Есть в наличии"))
        );
    }

    #[test]
    fn a_verdict_on_a_suggestion_never_drafted_is_an_error_and_the_feed_says_updated() {
        let mut log = Log::new();
        log.push(A, E::SuggestionRejected { suggestion_id: S, reason: None });
        let decoded = log.decoded();
        assert_eq!(SuggestionsModel::row_of(&decoded[0]), Some(RowOf::Stored(S)));
        let err = apply_batch::<SuggestionsModel>(HashMap::new(), &decoded).err().unwrap();
        assert!(err.to_string().contains(&format!("suggestion {S} of conversation {A} was never generated")), "{err}");

        let mut log = Log::new();
        log.push(A, generated(S, Decision::Escalate)).push(A, E::SuggestionRejected { suggestion_id: S, reason: None });
        let applied = apply_batch::<SuggestionsModel>(HashMap::new(), &log.decoded()).unwrap();
        let said: Vec<(&str, &str)> = applied.changes.iter().map(|c| (c.entity, c.change)).collect();
        assert_eq!(said, vec![("suggestion", "updated"), ("suggestion", "updated")]);
    }
}
