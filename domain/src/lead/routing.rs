//! Channel routing: which messengers to try for a lead, in which order, through which account —
//! and what to call it when none works.
//!
//! [`plan_outreach`] is pure: the worker gives it the lead's contacts, the customer's choice, the
//! tenant's strictness and accounts, and a counter for the round-robin; it returns the attempts to
//! make in order and the failure reason to record if every one fails.
//!
//! Order (as the old system routed):
//! - **automatic** (no choice): MAX/WhatsApp through GREEN-API when there is a phone, then
//!   Telegram by username, then Telegram by phone, then WhatsApp Cloud by phone;
//! - **Telegram chosen**: Telegram by username, then by phone;
//! - **MAX chosen**: GREEN-API; **WhatsApp chosen**: GREEN-API, then WhatsApp Cloud;
//! - a choice is *strict* by default (only the chosen messenger is tried, as the customer asked);
//!   a tenant can make it a preference (the chosen one first, then the automatic order).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::contact::{ContactInfo, PreferredChannel};
use crate::conversation::ChannelKind;

/// Why a lead could not be contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The customer chose Telegram; no Telegram attempt worked (or none was possible).
    TelegramFailed,
    /// The customer chose MAX (or WhatsApp) and gave no usable number.
    MaxNoPhone,
    /// The customer chose MAX (or WhatsApp) and the tenant has no usable GREEN-API account.
    MaxNoAccount,
    /// The customer chose MAX (or WhatsApp); sending failed (e.g. the number has no account).
    MaxSendFailed,
    /// The form gave no phone, Telegram username or MAX number.
    NoContactInfo,
    /// Automatic routing: every channel tried failed, or none could be tried.
    AllChannelsFailed,
}

impl FailureReason {
    pub const ALL: [FailureReason; 6] = [
        Self::TelegramFailed,
        Self::MaxNoPhone,
        Self::MaxNoAccount,
        Self::MaxSendFailed,
        Self::NoContactInfo,
        Self::AllChannelsFailed,
    ];

    /// `telegram_failed`, `max_no_phone`, `max_no_account`, `max_send_failed`, `no_contact_info`
    /// or `all_channels_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TelegramFailed => "telegram_failed",
            Self::MaxNoPhone => "max_no_phone",
            Self::MaxNoAccount => "max_no_account",
            Self::MaxSendFailed => "max_send_failed",
            Self::NoContactInfo => "no_contact_info",
            Self::AllChannelsFailed => "all_channels_failed",
        }
    }

    /// Parses the name [`FailureReason::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What operators read.
    pub fn label_ru(self) -> &'static str {
        match self {
            Self::TelegramFailed => "не удалось написать в Telegram",
            Self::MaxNoPhone => "нет номера для MAX",
            Self::MaxNoAccount => "нет подключённого аккаунта MAX",
            Self::MaxSendFailed => "не удалось отправить в MAX",
            Self::NoContactInfo => "в заявке нет контактов",
            Self::AllChannelsFailed => "все каналы недоступны",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel account the outreach may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutreachAccount {
    pub id: Uuid,
    pub channel: ChannelKind,
    /// Authorised with the provider and enabled for automatic messages.
    pub usable: bool,
    pub created_at: DateTime<Utc>,
}

/// Whom an attempt writes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recipient {
    /// A GREEN-API phone chat (`79991234567@c.us`): MAX or WhatsApp.
    GreenApiChat { chat_id: String },
    /// A Telegram user by username (without `@`).
    TelegramUsername { username: String },
    /// A Telegram user by phone number (digits).
    TelegramPhone { phone: String },
    /// A WhatsApp Cloud number (digits).
    WhatsappPhone { phone: String },
}

impl Recipient {
    /// The address as the channel takes it.
    pub fn address(&self) -> &str {
        match self {
            Self::GreenApiChat { chat_id } => chat_id,
            Self::TelegramUsername { username } => username,
            Self::TelegramPhone { phone } | Self::WhatsappPhone { phone } => phone,
        }
    }
}

/// One attempt of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlannedAttempt {
    pub channel: ChannelKind,
    pub account_id: Uuid,
    pub recipient: Recipient,
}

/// The attempts to make, in order, and the reason to record when none succeeds (at once, when
/// there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutreachPlan {
    pub attempts: Vec<PlannedAttempt>,
    pub failure: FailureReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    GreenApi,
    TelegramByUsername,
    TelegramByPhone,
    WhatsappCloud,
}

const AUTOMATIC: [Step; 4] = [Step::GreenApi, Step::TelegramByUsername, Step::TelegramByPhone, Step::WhatsappCloud];

fn chosen_steps(channel: PreferredChannel) -> &'static [Step] {
    match channel {
        PreferredChannel::Telegram => &[Step::TelegramByUsername, Step::TelegramByPhone],
        PreferredChannel::Max => &[Step::GreenApi],
        PreferredChannel::Whatsapp => &[Step::GreenApi, Step::WhatsappCloud],
    }
}

/// The round-robin pick among the usable accounts of `channel`, in creation order: the
/// `counter % n`-th (a counter of leads routed so far, or any number stable for one lead).
pub fn pick_account(accounts: &[OutreachAccount], channel: ChannelKind, counter: u64) -> Option<&OutreachAccount> {
    let mut usable: Vec<&OutreachAccount> = accounts.iter().filter(|a| a.usable && a.channel == channel).collect();
    if usable.is_empty() {
        return None;
    }
    usable.sort_by_key(|a| (a.created_at, a.id));
    let n = usable.len() as u64;
    Some(usable[(counter % n) as usize])
}

/// Plans the outreach of a lead.
pub fn plan_outreach(
    contact: &ContactInfo,
    preferred: Option<PreferredChannel>,
    strict: bool,
    accounts: &[OutreachAccount],
    counter: u64,
) -> OutreachPlan {
    if !contact.is_reachable() {
        return OutreachPlan { attempts: vec![], failure: FailureReason::NoContactInfo };
    }
    let steps: Vec<Step> = match preferred {
        None => AUTOMATIC.to_vec(),
        Some(p) if strict => chosen_steps(p).to_vec(),
        Some(p) => {
            let first = chosen_steps(p);
            first.iter().copied().chain(AUTOMATIC.into_iter().filter(|s| !first.contains(s))).collect()
        }
    };
    let attempts: Vec<PlannedAttempt> = steps
        .into_iter()
        .filter_map(|step| {
            let (channel, recipient) = match step {
                Step::GreenApi => (
                    ChannelKind::GreenApi,
                    Recipient::GreenApiChat { chat_id: contact.green_api_phone()?.green_api_chat_id() },
                ),
                Step::TelegramByUsername => (
                    ChannelKind::Telegram,
                    Recipient::TelegramUsername { username: contact.telegram.as_ref()?.as_str().to_string() },
                ),
                Step::TelegramByPhone => (
                    ChannelKind::Telegram,
                    Recipient::TelegramPhone { phone: contact.phone.as_ref()?.digits().to_string() },
                ),
                Step::WhatsappCloud => (
                    ChannelKind::Whatsapp,
                    Recipient::WhatsappPhone { phone: contact.phone.as_ref()?.digits().to_string() },
                ),
            };
            let account = pick_account(accounts, channel, counter)?;
            Some(PlannedAttempt { channel, account_id: account.id, recipient })
        })
        .collect();
    let failure = match preferred {
        Some(PreferredChannel::Telegram) if strict => FailureReason::TelegramFailed,
        Some(PreferredChannel::Max | PreferredChannel::Whatsapp) if strict => {
            if !attempts.is_empty() {
                FailureReason::MaxSendFailed
            } else if contact.green_api_phone().is_none() {
                FailureReason::MaxNoPhone
            } else {
                FailureReason::MaxNoAccount
            }
        }
        _ => FailureReason::AllChannelsFailed,
    };
    OutreachPlan { attempts, failure }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::lead::contact::{Phone, TelegramUsername};

    fn account(n: u128, channel: ChannelKind, created_min: i64, usable: bool) -> OutreachAccount {
        OutreachAccount {
            id: Uuid::from_u128(n),
            channel,
            usable,
            created_at: Utc.timestamp_opt(1_790_000_000 + created_min * 60, 0).unwrap(),
        }
    }

    fn contact(phone: bool, telegram: bool) -> ContactInfo {
        ContactInfo {
            phone: phone.then(|| Phone::parse("+7 999 123-45-67").unwrap()),
            max_phone: None,
            telegram: telegram.then(|| TelegramUsername::parse("@ivan_petrov").unwrap()),
        }
    }

    fn all_accounts() -> Vec<OutreachAccount> {
        vec![
            account(12, ChannelKind::GreenApi, 2, true),
            account(11, ChannelKind::GreenApi, 1, true),
            account(13, ChannelKind::GreenApi, 0, false),
            account(21, ChannelKind::Telegram, 0, true),
            account(31, ChannelKind::Whatsapp, 0, true),
        ]
    }

    fn channels(plan: &OutreachPlan) -> Vec<(ChannelKind, &str)> {
        plan.attempts.iter().map(|a| (a.channel, a.recipient.address())).collect()
    }

    #[test]
    fn automatic_routing_tries_green_api_then_telegram_then_whatsapp() {
        let plan = plan_outreach(&contact(true, true), None, true, &all_accounts(), 0);
        assert_eq!(
            channels(&plan),
            vec![
                (ChannelKind::GreenApi, "79991234567@c.us"),
                (ChannelKind::Telegram, "ivan_petrov"),
                (ChannelKind::Telegram, "79991234567"),
                (ChannelKind::Whatsapp, "79991234567"),
            ]
        );
        assert_eq!(plan.failure, FailureReason::AllChannelsFailed);
        let plan = plan_outreach(&contact(false, true), None, true, &all_accounts(), 0);
        assert_eq!(channels(&plan), vec![(ChannelKind::Telegram, "ivan_petrov")], "no phone: Telegram by username");
    }

    #[test]
    fn no_contact_at_all_fails_at_once() {
        for preferred in [None, Some(PreferredChannel::Telegram), Some(PreferredChannel::Max)] {
            let plan = plan_outreach(&contact(false, false), preferred, true, &all_accounts(), 0);
            assert_eq!(plan, OutreachPlan { attempts: vec![], failure: FailureReason::NoContactInfo });
        }
    }

    #[test]
    fn a_strict_choice_tries_only_that_messenger() {
        let plan = plan_outreach(&contact(true, true), Some(PreferredChannel::Telegram), true, &all_accounts(), 0);
        assert_eq!(
            channels(&plan),
            vec![(ChannelKind::Telegram, "ivan_petrov"), (ChannelKind::Telegram, "79991234567")]
        );
        assert_eq!(plan.failure, FailureReason::TelegramFailed);
        let no_tg: Vec<_> = all_accounts().into_iter().filter(|a| a.channel != ChannelKind::Telegram).collect();
        let plan = plan_outreach(&contact(true, true), Some(PreferredChannel::Telegram), true, &no_tg, 0);
        assert_eq!(plan, OutreachPlan { attempts: vec![], failure: FailureReason::TelegramFailed });

        let plan = plan_outreach(&contact(true, false), Some(PreferredChannel::Max), true, &all_accounts(), 0);
        assert_eq!(channels(&plan), vec![(ChannelKind::GreenApi, "79991234567@c.us")]);
        assert_eq!(plan.failure, FailureReason::MaxSendFailed);
        let plan = plan_outreach(&contact(false, true), Some(PreferredChannel::Max), true, &all_accounts(), 0);
        assert_eq!(plan, OutreachPlan { attempts: vec![], failure: FailureReason::MaxNoPhone });
        let plan = plan_outreach(&contact(true, false), Some(PreferredChannel::Max), true, &no_tg[2..], 0);
        assert_eq!(plan, OutreachPlan { attempts: vec![], failure: FailureReason::MaxNoAccount });

        let plan = plan_outreach(&contact(true, false), Some(PreferredChannel::Whatsapp), true, &all_accounts(), 0);
        assert_eq!(
            channels(&plan),
            vec![(ChannelKind::GreenApi, "79991234567@c.us"), (ChannelKind::Whatsapp, "79991234567")]
        );
    }

    #[test]
    fn a_preference_goes_first_then_the_automatic_order() {
        let plan = plan_outreach(&contact(true, true), Some(PreferredChannel::Telegram), false, &all_accounts(), 0);
        assert_eq!(
            channels(&plan),
            vec![
                (ChannelKind::Telegram, "ivan_petrov"),
                (ChannelKind::Telegram, "79991234567"),
                (ChannelKind::GreenApi, "79991234567@c.us"),
                (ChannelKind::Whatsapp, "79991234567"),
            ]
        );
        assert_eq!(plan.failure, FailureReason::AllChannelsFailed);
    }

    #[test]
    fn the_max_number_is_used_for_green_api() {
        let mut c = contact(true, false);
        c.max_phone = Some(Phone::parse("89990000000").unwrap());
        let plan = plan_outreach(&c, None, true, &all_accounts(), 0);
        assert_eq!(plan.attempts[0].recipient, Recipient::GreenApiChat { chat_id: "79990000000@c.us".into() });
        assert_eq!(plan.attempts[1].recipient, Recipient::TelegramPhone { phone: "79991234567".into() });
    }

    #[test]
    fn accounts_rotate_in_creation_order_skipping_unusable_ones() {
        let accounts = all_accounts();
        let picks: Vec<u128> = (0..4)
            .map(|counter| pick_account(&accounts, ChannelKind::GreenApi, counter).unwrap().id.as_u128())
            .collect();
        assert_eq!(picks, vec![11, 12, 11, 12], "13 is not authorised; 11 was created first");
        assert!(pick_account(&accounts[..0], ChannelKind::GreenApi, 0).is_none());
        let plan = plan_outreach(&contact(true, false), None, true, &accounts, 1);
        assert_eq!(plan.attempts[0].account_id, Uuid::from_u128(12));
        let plan = plan_outreach(&contact(true, false), None, true, &[], 0);
        assert_eq!(plan, OutreachPlan { attempts: vec![], failure: FailureReason::AllChannelsFailed });
    }

    #[test]
    fn failure_reasons_have_stable_names() {
        for r in FailureReason::ALL {
            assert_eq!(FailureReason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), serde_json::json!(r.as_str()));
        }
    }
}
