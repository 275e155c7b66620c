//! Leads from web quizzes (Marquiz) and site forms: reading a form body, the fields and kind of a
//! lead, its duplicate fingerprint and id, the first message and the team's notifications, channel
//! routing, and the `Lead` aggregate.
//!
//! ```text
//! received ─┬─▶ contacting ──▶ contacted ──┬─▶ replied
//!           │      ▲   │            │      └─▶ no_reply (the team is told)
//! scheduled ┘      │   └─▶ failed   └─(undelivered)─▶ contacting
//!  (outside hours) └── retry ◀──────┴── (from failed or no_reply)
//! any open status ──▶ qualified ──▶ won | lost      (operators; assigned at any time)
//! ```
//!
//! A form body becomes a [`Submission`] ([`parse_json`], [`parse_form`]); [`LeadFields::extract`]
//! reads its fields; [`lead_id`] names the lead from the form and the submission's
//! [`Fingerprint`] within a time window, so a form posted ten times at once is one lead with nine
//! `SubmissionRepeated`. [`Lead::decide`] is pure: ids, times, the tenant's working hours and what
//! the outreach worker saw come in the commands. `docs/leads.md` describes the whole flow.

mod commands;
mod contact;
mod decide;
mod events;
mod evolve;
mod fields;
mod ids;
mod keys;
mod routing;
mod state;
mod submission;
pub mod texts;

#[cfg(test)]
mod reading_tests;
#[cfg(test)]
mod tests;

pub use commands::{LeadCommand, LeadError, NewSubmission};
pub use contact::{
    ContactInfo, Phone, PhoneError, PreferredChannel, TelegramUsername, TelegramUsernameError, looks_like_phone,
};
pub use events::LeadEvent;
pub use fields::{LeadFields, LeadKind};
pub use ids::{DUPLICATE_WINDOW_SECS, lead_id, outreach_reply_id, previous_window_lead_id};
pub use keys::normalize_key;
pub use routing::{
    FailureReason, OutreachAccount, OutreachPlan, PlannedAttempt, Recipient, pick_account, plan_outreach,
};
pub use state::{AttemptRecord, ContactRecord, Lead, LeadStatus, PendingCheck};
pub use submission::{
    Answer, Fingerprint, FormBody, LeadFormKind, RawContacts, Submission, SubmissionError, SubmissionFormat,
    parse_form, parse_json,
};

crate::impl_aggregate!(Lead, "lead", LeadCommand, LeadEvent, LeadError);
