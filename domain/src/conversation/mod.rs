//! The `Conversation` aggregate: one customer on one channel of a tenant.
//!
//! Commands are checked against the state by [`Conversation::decide`] (pure: ids and times come in
//! the command) and produce events; [`Conversation::evolve`] folds events into state. The state is
//! kept small (recent provider ids, open suggestions and replies) so that long conversations load
//! quickly from snapshots.

mod commands;
mod decide;
mod events;
mod evolve;
mod state;
mod types;

pub use commands::LeadMessage;
pub use commands::PriceReport;
pub use commands::{
    ConversationCommand, ConversationError, DetectedCode, DetectedVehicleId, Drafted, Inbound, LookupReport,
    LookupReportOutcome, MAX_TEXT, MediaOutcome, PhotoReport, TemplateSuggestion,
};
pub use events::{ConversationEvent, message_received_v1_to_v2, reply_delivered_v1_to_v2};
pub use state::{Conversation, LookupProgress, LookupRef, ReplyState, SuggestionState, provider_key};
pub use types::{
    Attachment, AttachmentKind, ChannelKind, DeliveryStatus, MessageKind, ReplyAttachment, ReplyOrigin, ReplyStatus,
    Status, SuggestionStatus, UnknownChannelKind,
};

pub use crate::reply::Decision;

#[cfg(test)]
mod tests;
