//! The conversation read models under their earlier paths; they live in [`crate::conversation`].

pub use crate::conversation::api::{conversation_json, detail_json, suggestion_json};
pub(crate) use crate::conversation::projection::record_changes;
pub use crate::conversation::{
    CONVERSATION, Change, ConversationList, ConversationRow, CustomerRow, Customers, DailyStats, Decoded,
    EscalationRow, Escalations, Folded, MessageRow, Messages, Statistics, SuggestionRow, Suggestions, all, decode,
    decode_event, event_of, fold,
};
