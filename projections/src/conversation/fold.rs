//! One conversation folded from its events with the read models' own folds, as the projectors
//! would write it: what audit replay shows at any event and what `projections verify` compares.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::Decoded;
use super::list::ConversationRow;
use super::projection::apply;
use super::suggestions::{SuggestionRow, SuggestionsModel};

/// A conversation folded from its events, as the projectors would write it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folded {
    pub conversation: Option<ConversationRow>,
    pub suggestions: BTreeMap<Uuid, SuggestionRow>,
}

/// Folds one conversation's events (in sequence order). Events before its start leave no row.
pub fn fold(decoded: &[Decoded]) -> anyhow::Result<Folded> {
    let mut conversation: Option<ConversationRow> = None;
    let mut suggestions: HashMap<Uuid, SuggestionRow> = HashMap::new();
    for d in decoded {
        if conversation.is_none() {
            conversation = ConversationRow::start(d);
        }
        if let Some(row) = conversation.as_mut() {
            row.apply(d);
        }
        apply::<SuggestionsModel>(&mut suggestions, d)?;
    }
    Ok(Folded { conversation, suggestions: suggestions.into_iter().collect() })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aisales_domain::conversation::{ConversationEvent as E, Decision, ReplyOrigin};
    use uuid::Uuid;

    use super::fold;
    use crate::conversation::list::ListModel;
    use crate::conversation::log::{A, Log, generated, queued, received, sent, started};
    use crate::conversation::projection::apply_batch;
    use crate::conversation::suggestions::SuggestionsModel;

    #[test]
    fn a_conversation_folds_to_the_rows_its_projectors_write() {
        let mut log = Log::new();
        let (t0, s1, s2, reply) = (log.clock, Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        log.push(A, started(Uuid::from_u128(9), None, t0))
            .push(A, received(Uuid::from_u128(4), "Нужна АКПП", Some("Иван"), t0))
            .push(A, generated(s1, Decision::NeedApproval))
            .push(A, generated(s2, Decision::NeedApproval))
            .push_by(A, "user:olga", E::SuggestionEdited { suggestion_id: s1, text: "Есть".into() })
            .push(A, queued(reply, Some(s1), "Есть", ReplyOrigin::Edited))
            .push(A, sent(reply, t0));
        let decoded = log.decoded();
        let folded = fold(&decoded).unwrap();
        let list = apply_batch::<ListModel>(HashMap::new(), &decoded).unwrap();
        let suggestions = apply_batch::<SuggestionsModel>(HashMap::new(), &decoded).unwrap();
        assert_eq!(folded.conversation.as_ref(), list.rows.get(&A));
        assert_eq!(folded.suggestions, suggestions.rows.into_iter().collect());
        assert_eq!(folded.conversation.unwrap().pending_suggestions, 1);
        assert_eq!(folded.suggestions[&s1].status, "edited");
    }

    #[test]
    fn events_before_the_start_leave_no_conversation() {
        let mut log = Log::new();
        log.push(A, received(Uuid::from_u128(4), "Нужна АКПП", None, log.clock));
        assert_eq!(fold(&log.decoded()).unwrap(), Default::default());
    }
}
