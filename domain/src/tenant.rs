//! Per-tenant settings that domain rules read: agent style, company facts, decision thresholds,
//! human-like delay, reply templates and lead handling. Stored as JSON on the tenant; every field
//! has a default so older rows and partial updates stay valid.
//!
//! The working schedule (time zone, hours, days) lives in the tenant's own columns;
//! [`WorkingHours`] is its rule: whether an instant is inside, and when it next opens.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Tone of the drafted replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    #[default]
    Formal,
    Friendly,
}

/// How the customer is addressed in Russian: formal «Вы» or informal «ты».
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressStyle {
    #[default]
    Vy,
    Ty,
}

/// Facts about the shop the assistant may state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CompanyFacts {
    pub company_name: Option<String>,
    pub specialization: Option<String>,
    pub warehouse_city: Option<String>,
    pub warranty_months: Option<u32>,
    pub warranty_km: Option<u32>,
    pub install_days: Option<u32>,
    /// Extra facts, `key: value`.
    pub custom_facts: BTreeMap<String, String>,
}

/// Thresholds and locks of the decision policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecisionSettings {
    /// Confidence at or above which a reply may be sent automatically.
    pub t_auto: f64,
    /// Confidence below which the conversation is escalated.
    pub t_escalate: f64,
    /// The tenant's switch for automatic sending (the second lock).
    pub autosend_allowed: bool,
    /// Intents whose replies may be sent automatically (the third lock).
    pub intents_autosend_allowed: Vec<String>,
    /// Intents that always go to an operator.
    pub intents_force_handoff: Vec<String>,
}

impl Default for DecisionSettings {
    fn default() -> Self {
        DecisionSettings {
            t_auto: 0.80,
            t_escalate: 0.40,
            autosend_allowed: false,
            intents_autosend_allowed: ["price", "availability", "shipping", "other"].map(String::from).to_vec(),
            intents_force_handoff: [
                "discount",
                "complaint",
                "photo_request",
                "needs_manual_quote",
                "want_visit",
                "callback_request",
                "contract_data_provided",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// What happens to replies outside working hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NightMode {
    /// Send later, with a longer delay.
    #[default]
    Delay,
    /// Send a fixed auto-reply instead.
    AutoReply,
    /// Do not send automatically.
    Disable,
}

/// Human-like sending delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DelaySettings {
    pub enabled: bool,
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Characters per second of simulated typing.
    pub typing_speed: f64,
    pub night_mode: NightMode,
    pub night_delay_multiplier: f64,
    pub night_auto_reply_text: String,
}

impl Default for DelaySettings {
    fn default() -> Self {
        DelaySettings {
            enabled: false,
            min_delay_ms: 3000,
            max_delay_ms: 120_000,
            typing_speed: 35.0,
            night_mode: NightMode::Delay,
            night_delay_multiplier: 3.0,
            night_auto_reply_text: "Спасибо за сообщение! Мы ответим в рабочее время.".into(),
        }
    }
}

/// Everything configurable about a tenant's assistant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentSettings {
    pub language: String,
    pub tone: Tone,
    pub address_style: AddressStyle,
    pub currency: String,
    pub allow_discounts: bool,
    pub max_discount_percent: u8,
    /// Replaces the built-in base instructions when set.
    pub system_prompt: Option<String>,
    pub company: CompanyFacts,
    pub decision: DecisionSettings,
    pub delay: DelaySettings,
    /// Reply template overrides by key (e.g. `gearboxLookupFound`); empty means the default.
    pub templates: BTreeMap<String, String>,
    /// Seconds a burst of customer messages is collected before one suggestion is drafted.
    pub suggestion_debounce_secs: u32,
    /// How leads from web forms are answered and followed up.
    pub leads: LeadSettings,
    /// Whether customers' photos (VIN plates, registration documents, gearbox tags) are read
    /// when an AI key is configured. On by default.
    pub photo_reading: bool,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            language: "ru".into(),
            tone: Tone::Formal,
            address_style: AddressStyle::Vy,
            currency: "RUB".into(),
            allow_discounts: false,
            max_discount_percent: 0,
            system_prompt: None,
            company: CompanyFacts::default(),
            decision: DecisionSettings::default(),
            delay: DelaySettings::default(),
            templates: BTreeMap::new(),
            suggestion_debounce_secs: 3,
            leads: LeadSettings::default(),
            photo_reading: true,
        }
    }
}

/// A rule an update broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

impl AgentSettings {
    /// Checks the rules the API enforces on every update.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let err = |field, message: &str| Err(SettingsError { field, message: message.to_string() });
        let d = &self.decision;
        if !(0.0..=1.0).contains(&d.t_auto) {
            return err("decision.t_auto", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&d.t_escalate) {
            return err("decision.t_escalate", "must be between 0 and 1");
        }
        if d.t_auto < d.t_escalate {
            return err("decision.t_auto", "must be greater than or equal to decision.t_escalate");
        }
        if self.max_discount_percent > 100 {
            return err("max_discount_percent", "must be between 0 and 100");
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return err("currency", "must be a three-letter ISO code such as RUB");
        }
        let delay = &self.delay;
        if delay.max_delay_ms > crate::reply::MAX_DELAY_MS {
            return err("delay.max_delay_ms", "must be at most 86400000 (a day)");
        }
        if delay.min_delay_ms > delay.max_delay_ms {
            return err("delay.min_delay_ms", "must be less than or equal to delay.max_delay_ms");
        }
        if !(1.0..=10.0).contains(&delay.night_delay_multiplier) {
            return err("delay.night_delay_multiplier", "must be between 1 and 10");
        }
        if delay.typing_speed < 1.0 {
            return err("delay.typing_speed", "must be at least 1 character per second");
        }
        if self.suggestion_debounce_secs > 120 {
            return err("suggestion_debounce_secs", "must be at most 120 seconds");
        }
        self.leads.validate()
    }
}

/// Lead handling of a tenant: which auto-responses are detailed, the no-reply follow-up, channel
/// strictness and where the escalation bot writes. Reply texts can be overridden through
/// [`AgentSettings::templates`] (keys in `docs/leads.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeadSettings {
    /// The detailed gearbox auto-response; off, gearbox leads get the short acknowledgement.
    pub gearbox_template_enabled: bool,
    /// The detailed engine auto-response; off, engine leads get the short acknowledgement.
    pub engine_template_enabled: bool,
    /// The detailed tire auto-response; off, tire leads get the short acknowledgement.
    pub tires_template_enabled: bool,
    /// Minutes after the first message without a customer reply before the team is told; 0 turns
    /// the check off.
    pub no_reply_minutes: u32,
    /// A channel the customer chose is the only one tried (otherwise it is tried first, then the
    /// others).
    pub strict_preferred_channel: bool,
    /// Telegram chat the escalation bot writes to (a numeric chat id or `@channel`); none: no
    /// notifications.
    pub escalation_chat_id: Option<String>,
}

impl Default for LeadSettings {
    fn default() -> Self {
        LeadSettings {
            gearbox_template_enabled: true,
            engine_template_enabled: true,
            tires_template_enabled: true,
            no_reply_minutes: 15,
            strict_preferred_channel: true,
            escalation_chat_id: None,
        }
    }
}

impl LeadSettings {
    /// Longest no-reply wait: one day.
    pub const MAX_NO_REPLY_MINUTES: u32 = 24 * 60;

    /// How long to wait for the customer's reply after the first message; `None` when the check
    /// is off.
    pub fn no_reply_after(&self) -> Option<Duration> {
        (self.no_reply_minutes > 0).then(|| Duration::minutes(i64::from(self.no_reply_minutes)))
    }

    /// Checks the rules the API enforces on every update.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let err = |field, message: &str| Err(SettingsError { field, message: message.to_string() });
        if self.no_reply_minutes > Self::MAX_NO_REPLY_MINUTES {
            return err("leads.no_reply_minutes", "must be between 0 (off) and 1440 minutes");
        }
        if let Some(chat) = &self.escalation_chat_id {
            let chat = chat.trim();
            let numeric = chat.strip_prefix('-').unwrap_or(chat);
            let numeric = !numeric.is_empty() && numeric.bytes().all(|b| b.is_ascii_digit());
            let channel = chat.strip_prefix('@').is_some_and(|c| {
                (5..=32).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
            if chat.len() > 100 || !(numeric || channel) {
                return err(
                    "leads.escalation_chat_id",
                    "must be a Telegram chat id such as -1001234567890 or @channel",
                );
            }
        }
        Ok(())
    }
}

/// Parses a day name: `mon`..`sun`, full English names, or Russian `пн`..`вс` (any case).
pub fn parse_weekday(s: &str) -> Option<Weekday> {
    use Weekday::*;
    Some(match s.trim().to_lowercase().as_str() {
        "mon" | "monday" | "пн" => Mon,
        "tue" | "tuesday" | "вт" => Tue,
        "wed" | "wednesday" | "ср" => Wed,
        "thu" | "thursday" | "чт" => Thu,
        "fri" | "friday" | "пт" => Fri,
        "sat" | "saturday" | "сб" => Sat,
        "sun" | "sunday" | "вс" => Sun,
        _ => return None,
    })
}

/// A tenant's working schedule: opening and closing time in its time zone, on its working days.
///
/// - A working day's hours start at `start` on that day and end at `end`, on the next day when
///   `end` is not after `start` (an overnight span, e.g. 20:00–08:00, belongs to the day it
///   starts on). `start == end` means the whole day.
/// - No working day configured means always open (the old system ignored the days; a tenant
///   with none must not be closed forever).
/// - Times are resolved in the time zone on each date, so DST changes move the instants: an
///   opening inside a skipped hour happens when the clocks jump, an opening inside a repeated hour
///   at its first occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    timezone: Tz,
    start: NaiveTime,
    end: NaiveTime,
    /// Bit `n` set: the day `n` days after Monday is a working day.
    days: u8,
}

impl WorkingHours {
    /// A schedule from typed parts.
    pub fn new(timezone: Tz, start: NaiveTime, end: NaiveTime, days: &[Weekday]) -> Self {
        let days = days.iter().fold(0u8, |mask, d| mask | 1 << d.num_days_from_monday());
        WorkingHours { timezone, start, end, days }
    }

    /// A schedule from the tenant's columns: an IANA time zone and day names (see
    /// [`parse_weekday`]).
    pub fn parse(timezone: &str, start: NaiveTime, end: NaiveTime, days: &[String]) -> Result<Self, SettingsError> {
        let tz = timezone.trim().parse::<Tz>().map_err(|_| SettingsError {
            field: "timezone",
            message: format!("`{timezone}` is not an IANA time zone such as Europe/Moscow"),
        })?;
        let days = days
            .iter()
            .map(|d| {
                parse_weekday(d).ok_or_else(|| SettingsError {
                    field: "working_days",
                    message: format!("`{d}` is not one of mon..sun"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WorkingHours::new(tz, start, end, &days))
    }

    /// The time zone the hours are read in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Opening time.
    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// Closing time.
    pub fn end(&self) -> NaiveTime {
        self.end
    }

    /// Whether `day` is a working day (every day is when none is configured).
    pub fn is_working_day(&self, day: Weekday) -> bool {
        self.days == 0 || self.days & (1 << day.num_days_from_monday()) != 0
    }

    /// Whether `at` is inside the working hours.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        if self.days == 0 {
            return true;
        }
        let today = at.with_timezone(&self.timezone).date_naive();
        [today.pred_opt(), Some(today)].into_iter().flatten().filter(|d| self.is_working_day(d.weekday())).any(|d| {
            let (open, close) = self.span(d);
            open <= at && at < close
        })
    }

    /// The next opening after `at`, or `None` when `at` is inside the working hours. Looks at
    /// most a week and a day ahead, which always finds one.
    pub fn next_opening(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(at) {
            return None;
        }
        let today = at.with_timezone(&self.timezone).date_naive();
        (0..=8)
            .filter_map(|n| today.checked_add_days(chrono::Days::new(n)))
            .filter(|d| self.is_working_day(d.weekday()))
            .map(|d| self.span(d).0)
            .find(|open| *open > at)
    }

    /// The opening and closing instants of the span starting on local date `day`.
    fn span(&self, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let open = local_instant(self.timezone, day, self.start);
        let close_day = if self.end > self.start { day } else { day.succ_opt().unwrap_or(day) };
        (open, local_instant(self.timezone, close_day, self.end))
    }
}

/// The instant of a local date and time: the first one of a repeated hour, or the end of a
/// skipped one.
fn local_instant(tz: Tz, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let local = day.and_time(time);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => (1..=2 * 24 * 60)
            .find_map(|m| tz.from_local_datetime(&(local + Duration::minutes(m))).earliest())
            .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc)),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn defaults_follow_the_old_system() {
        let s = AgentSettings::default();
        assert_eq!(s.decision.t_auto, 0.80);
        assert_eq!(s.decision.t_escalate, 0.40);
        assert!(!s.decision.autosend_allowed);
        assert!(s.decision.intents_force_handoff.contains(&"complaint".to_string()));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn partial_json_keeps_defaults() {
        let s: AgentSettings = serde_json::from_str(r#"{"tone":"friendly","decision":{"t_auto":0.9}}"#).unwrap();
        assert_eq!(s.tone, Tone::Friendly);
        assert_eq!(s.decision.t_auto, 0.9);
        assert_eq!(s.decision.t_escalate, 0.40);
        assert_eq!(s.currency, "RUB");
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    const WEEKDAYS: [Weekday; 5] = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];

    #[test]
    fn working_hours_honour_the_days_and_open_on_the_next_working_day() {
        let h = WorkingHours::new(chrono_tz::Europe::Moscow, hm(9, 0), hm(18, 0), &WEEKDAYS);
        // 2026-11-27 is a Friday; Moscow is UTC+3.
        assert!(h.is_open(utc(2026, 11, 27, 7, 0)), "Fri 10:00");
        assert_eq!(h.next_opening(utc(2026, 11, 27, 7, 0)), None);
        assert!(h.is_open(utc(2026, 11, 27, 6, 0)), "Fri 09:00, the opening itself");
        assert!(!h.is_open(utc(2026, 11, 27, 15, 0)), "Fri 18:00, the closing itself");
        let monday_nine = utc(2026, 11, 30, 6, 0);
        assert_eq!(h.next_opening(utc(2026, 11, 27, 15, 0)), Some(monday_nine), "Friday evening → Monday");
        assert!(!h.is_open(utc(2026, 11, 28, 9, 0)), "Saturday noon is not a working day");
        assert_eq!(h.next_opening(utc(2026, 11, 28, 9, 0)), Some(monday_nine));
        assert_eq!(h.next_opening(utc(2026, 11, 30, 5, 59)), Some(monday_nine), "Monday 08:59");
        assert_eq!(h.next_opening(utc(2026, 11, 26, 20, 0)), Some(utc(2026, 11, 27, 6, 0)), "Thu 23:00 → Fri 09:00");
    }

    #[test]
    fn a_single_working_day_opens_up_to_a_week_later() {
        let h = WorkingHours::new(chrono_tz::Europe::Moscow, hm(10, 0), hm(14, 0), &[Weekday::Sun]);
        // From Sunday 15:00 (closed) to next Sunday 10:00.
        assert_eq!(h.next_opening(utc(2026, 11, 29, 12, 0)), Some(utc(2026, 12, 6, 7, 0)));
        assert_eq!(h.next_opening(utc(2026, 11, 30, 12, 0)), Some(utc(2026, 12, 6, 7, 0)), "from Monday");
    }

    #[test]
    fn overnight_hours_belong_to_the_day_they_start() {
        let h = WorkingHours::new(chrono_tz::Europe::Moscow, hm(20, 0), hm(8, 0), &WEEKDAYS);
        assert!(h.is_open(utc(2026, 11, 27, 19, 0)), "Fri 22:00");
        assert!(h.is_open(utc(2026, 11, 28, 0, 0)), "Sat 03:00 ends Friday's night");
        assert!(!h.is_open(utc(2026, 11, 28, 6, 0)), "Sat 09:00");
        assert_eq!(h.next_opening(utc(2026, 11, 28, 6, 0)), Some(utc(2026, 11, 30, 17, 0)), "→ Mon 20:00");
        assert!(!h.is_open(utc(2026, 11, 30, 0, 0)), "Mon 03:00 would be Sunday's night");
        assert!(h.is_open(utc(2026, 11, 26, 2, 0)), "Thu 05:00 is Wednesday's night");
    }

    #[test]
    fn no_working_day_is_always_open_and_equal_times_are_the_whole_day() {
        let always = WorkingHours::new(chrono_tz::Europe::Moscow, hm(9, 0), hm(18, 0), &[]);
        for h in 0..24 {
            assert!(always.is_open(utc(2026, 11, 28, h, 30)));
        }
        assert_eq!(always.next_opening(utc(2026, 11, 28, 23, 0)), None);
        let day = WorkingHours::new(chrono_tz::Europe::Moscow, hm(0, 0), hm(0, 0), &WEEKDAYS);
        assert!(day.is_open(utc(2026, 11, 27, 20, 59)), "Fri 23:59");
        assert!(!day.is_open(utc(2026, 11, 27, 21, 0)), "Sat 00:00");
        assert_eq!(day.next_opening(utc(2026, 11, 27, 21, 0)), Some(utc(2026, 11, 29, 21, 0)), "Mon 00:00 Moscow");
    }

    #[test]
    fn working_hours_follow_daylight_saving_time() {
        // New York moves to EDT on Sunday 2026-03-08: 09:00 is 14:00 UTC before, 13:00 UTC after.
        let ny = WorkingHours::new(chrono_tz::America::New_York, hm(9, 0), hm(17, 0), &WEEKDAYS);
        assert!(!ny.is_open(utc(2026, 3, 6, 13, 30)), "Fri 08:30 EST");
        assert!(ny.is_open(utc(2026, 3, 9, 13, 30)), "Mon 09:30 EDT");
        assert_eq!(ny.next_opening(utc(2026, 3, 6, 23, 0)), Some(utc(2026, 3, 9, 13, 0)), "Friday night → Monday EDT");
        // Berlin skips 02:00–03:00 on 2026-03-29: an opening at 02:30 happens when the clocks jump.
        let every_day =
            [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
        let berlin = WorkingHours::new(chrono_tz::Europe::Berlin, hm(2, 30), hm(10, 0), &every_day);
        assert_eq!(berlin.next_opening(utc(2026, 3, 29, 0, 30)), Some(utc(2026, 3, 29, 1, 0)), "03:00 CEST");
        // Berlin repeats 02:00–03:00 on 2026-10-25: the first 02:30 (CEST) opens.
        assert_eq!(berlin.next_opening(utc(2026, 10, 25, 0, 0)), Some(utc(2026, 10, 25, 0, 30)));
        assert!(berlin.is_open(utc(2026, 10, 25, 8, 59)), "09:59 CET");
        assert!(!berlin.is_open(utc(2026, 10, 25, 9, 0)), "10:00 CET");
    }

    #[test]
    fn working_hours_parse_the_tenants_columns() {
        let days: Vec<String> = ["mon", "Tue", "сб"].map(String::from).to_vec();
        let h = WorkingHours::parse("Asia/Yekaterinburg", hm(9, 0), hm(18, 0), &days).unwrap();
        assert_eq!(h.timezone(), chrono_tz::Asia::Yekaterinburg);
        assert!(h.is_working_day(Weekday::Sat) && !h.is_working_day(Weekday::Wed));
        assert_eq!(WorkingHours::parse("Mars/Base", hm(9, 0), hm(18, 0), &[]).unwrap_err().field, "timezone");
        assert_eq!(
            WorkingHours::parse("Europe/Moscow", hm(9, 0), hm(18, 0), &["funday".into()]).unwrap_err().field,
            "working_days"
        );
    }

    #[test]
    fn lead_settings_default_to_the_old_behaviour_and_are_checked() {
        let s = AgentSettings::default();
        assert_eq!(s.leads.no_reply_minutes, 15);
        assert_eq!(s.leads.no_reply_after(), Some(Duration::minutes(15)));
        assert!(s.leads.strict_preferred_channel);
        assert!(s.leads.detailed_reply(crate::lead::LeadKind::Tires));
        let partial: AgentSettings = serde_json::from_str(r#"{"leads":{"no_reply_minutes":0}}"#).unwrap();
        assert_eq!(partial.leads.no_reply_after(), None, "0 turns the check off");
        assert!(partial.leads.gearbox_template_enabled);
        let mut bad = AgentSettings::default();
        bad.leads.no_reply_minutes = 1441;
        assert_eq!(bad.validate().unwrap_err().field, "leads.no_reply_minutes");
        bad.leads.no_reply_minutes = 30;
        for (chat, ok) in
            [("-1001234567890", true), ("123456", true), ("@shop_alerts", true), ("shop", false), ("-", false)]
        {
            bad.leads.escalation_chat_id = Some(chat.into());
            assert_eq!(bad.validate().is_ok(), ok, "{chat}");
        }
    }

    #[test]
    fn invalid_thresholds_are_rejected() {
        let mut s = AgentSettings::default();
        s.decision.t_auto = 0.3;
        assert_eq!(s.validate().unwrap_err().field, "decision.t_auto");
        s.decision.t_auto = 1.5;
        assert!(s.validate().is_err());
    }
}
