//! Deterministic ids: a lead's id from its form, fingerprint and time window (so the same form
//! posted ten times at once is one lead), and the id of each outreach message (so a worker that
//! runs a step twice sends once).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::routing::PlannedAttempt;
use super::submission::Fingerprint;

/// Namespace of lead ids.
const LEAD_NAMESPACE: Uuid = Uuid::from_u128(0x9b2e_41c7_5d0a_4f83_a6e1_72c4_d05b_8e19);
/// Namespace of outreach reply ids.
const REPLY_NAMESPACE: Uuid = Uuid::from_u128(0x1c7a_e530_2b94_4e6d_8f02_c93d_47a1_b6f8);

/// Submissions with one fingerprint within this window (seconds) are one lead: a double click,
/// a sender's retry, a customer who sends the form again because nobody answered yet.
pub const DUPLICATE_WINDOW_SECS: i64 = 60 * 60;

fn window(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(DUPLICATE_WINDOW_SECS)
}

fn lead_id_in(tenant: Uuid, form: Uuid, fingerprint: &Fingerprint, window: i64) -> Uuid {
    Uuid::new_v5(&LEAD_NAMESPACE, format!("{tenant}/{form}/{fingerprint}/{window}").as_bytes())
}

/// The id of the lead a submission with `fingerprint` received at `at` on `form` belongs to.
pub fn lead_id(tenant: Uuid, form: Uuid, fingerprint: &Fingerprint, at: DateTime<Utc>) -> Uuid {
    lead_id_in(tenant, form, fingerprint, window(at))
}

/// The id the same submission had in the window before `at`'s. Windows are fixed, so two posts a
/// moment apart can straddle a boundary: a receiver that finds this lead, received less than
/// [`DUPLICATE_WINDOW_SECS`] before `at`, records the post as a repeat of it.
pub fn previous_window_lead_id(tenant: Uuid, form: Uuid, fingerprint: &Fingerprint, at: DateTime<Utc>) -> Uuid {
    lead_id_in(tenant, form, fingerprint, window(at) - 1)
}

/// The id of the outreach message of one attempt: one per lead, round, channel, account and
/// recipient. It is the conversation's reply id, so the delivery path sends it once.
pub fn outreach_reply_id(lead: Uuid, round: u32, attempt: &PlannedAttempt) -> Uuid {
    let key = format!("{lead}/{round}/{}/{}/{}", attempt.channel, attempt.account_id, attempt.recipient.address());
    Uuid::new_v5(&REPLY_NAMESPACE, key.as_bytes())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::conversation::ChannelKind;
    use crate::lead::Recipient;
    use crate::lead::contact::Phone;
    use crate::lead::submission::{FormBody, parse_json};

    fn fingerprint(body: serde_json::Value) -> Fingerprint {
        match parse_json(&body).unwrap() {
            FormBody::Submission(s) => s.fingerprint(),
            FormBody::Test => panic!("not a submission"),
        }
    }

    #[test]
    fn one_form_posted_again_within_the_window_is_one_lead() {
        let fp = fingerprint(serde_json::json!({"contacts": {"phone": "+79991234567"}}));
        let (tenant, form) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 5).unwrap();
        let id = lead_id(tenant, form, &fp, at);
        assert_eq!(id, lead_id(tenant, form, &fp, at + chrono::Duration::minutes(30)));
        assert_ne!(id, lead_id(tenant, form, &fp, at + chrono::Duration::hours(1)), "the next window is a new lead");
        assert_eq!(previous_window_lead_id(tenant, form, &fp, at + chrono::Duration::hours(1)), id);
        assert_ne!(id, lead_id(Uuid::from_u128(9), form, &fp, at), "tenants never share leads");
        assert_ne!(id, lead_id(tenant, Uuid::from_u128(9), &fp, at), "nor do forms");
        let other = fingerprint(serde_json::json!({"contacts": {"phone": "+79990000000"}}));
        assert_ne!(id, lead_id(tenant, form, &other, at));
    }

    #[test]
    fn outreach_reply_ids_are_stable_per_attempt() {
        let lead = Uuid::from_u128(7);
        let phone = Phone::parse("+79991234567").unwrap();
        let a = PlannedAttempt {
            channel: ChannelKind::GreenApi,
            account_id: Uuid::from_u128(3),
            recipient: Recipient::GreenApiChat { chat_id: phone.green_api_chat_id() },
        };
        assert_eq!(outreach_reply_id(lead, 1, &a), outreach_reply_id(lead, 1, &a));
        assert_ne!(outreach_reply_id(lead, 1, &a), outreach_reply_id(lead, 2, &a), "a retry round sends again");
        let b = PlannedAttempt { account_id: Uuid::from_u128(4), ..a.clone() };
        assert_ne!(outreach_reply_id(lead, 1, &a), outreach_reply_id(lead, 1, &b));
    }
}
