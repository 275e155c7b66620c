//! Pure rules around reply drafting: the decision policy (AUTO_SEND / NEED_APPROVAL / ESCALATE
//! with the autosend lock), the offline responder used when no AI key is configured, gearbox
//! reply templates, and the human-like sending delay.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::tenant::{AgentSettings, DecisionSettings, NightMode, WorkingHours, parse_weekday};

/// Intents the drafting model may return; anything else is read as `other`.
pub const INTENTS: &[&str] = &[
    "greeting",
    "price",
    "availability",
    "shipping",
    "return",
    "discount",
    "complaint",
    "other",
    "photo_request",
    "price_objection",
    "ready_to_buy",
    "needs_manual_quote",
    "invalid_vin",
    "marking_provided",
    "payment_blocked",
    "warranty_question",
    "want_visit",
    "what_included",
    "mileage_preference",
    "callback_request",
    "contract_data_provided",
    "vehicle_id_request",
    "vehicle_id_received",
    "gearbox_tag_request",
];

/// Normalises an intent name: known names pass, anything else is `other`.
pub fn normalize_intent(intent: &str) -> String {
    let i = intent.trim().to_ascii_lowercase();
    if INTENTS.contains(&i.as_str()) { i } else { "other".to_string() }
}

/// What the decision policy concluded about a drafted reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    AutoSend,
    NeedApproval,
    Escalate,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::AutoSend => "AUTO_SEND",
            Decision::NeedApproval => "NEED_APPROVAL",
            Decision::Escalate => "ESCALATE",
        }
    }
}

/// Input of the decision policy.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftAssessment<'a> {
    pub intent: &'a str,
    pub confidence: f64,
    pub reply: &'a str,
    /// The drafter itself asked for a person.
    pub needs_handoff: bool,
    /// Drafted by the offline responder (always needs approval).
    pub offline: bool,
}

/// Output of the decision policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyOutcome {
    pub decision: Decision,
    pub confidence: f64,
    /// `None` when an AUTO_SEND may really be sent; else why not (FLAG_OFF, SETTING_OFF, INTENT_NOT_ALLOWED, …).
    pub autosend_block_reason: Option<String>,
    pub explanations: Vec<String>,
}

/// Whether a reply mentions a price or an offer (such replies are never sent automatically).
pub fn mentions_price(reply: &str) -> bool {
    let l = reply.to_lowercase();
    let words = ["цена", "стоимость", "стоит", "руб", "₽", "€", "$", "eur", "usd", "скидк", "%"];
    words.iter().any(|w| l.contains(w))
}

/// Decides what happens to a drafted reply. Thresholds are inclusive: confidence equal to `t_auto`
/// is AUTO_SEND, equal to `t_escalate` is NEED_APPROVAL.
///
/// The autosend lock has three keys, checked in order: the deployment's switch
/// (`autosend_feature`), the tenant's setting, and the intent's allow-list. Unlike the old
/// system, an AUTO_SEND that passes all three is really sent.
pub fn decide(settings: &DecisionSettings, autosend_feature: bool, draft: &DraftAssessment<'_>) -> PolicyOutcome {
    let confidence = draft.confidence.clamp(0.0, 1.0);
    let mut explanations = Vec::new();
    let forced = settings.intents_force_handoff.iter().any(|i| i == draft.intent);
    let decision = if draft.offline {
        explanations.push("drafted offline (no AI key configured); an operator approves every reply".to_string());
        Decision::NeedApproval
    } else if forced {
        explanations.push(format!("intent `{}` always goes to an operator", draft.intent));
        Decision::Escalate
    } else if draft.needs_handoff {
        explanations.push("the drafter asked for a person".to_string());
        Decision::Escalate
    } else if confidence >= settings.t_auto {
        explanations.push(format!("confidence {:.0}% ≥ {:.0}% (auto)", confidence * 100.0, settings.t_auto * 100.0));
        Decision::AutoSend
    } else if confidence >= settings.t_escalate {
        explanations.push(format!(
            "confidence {:.0}% between {:.0}% and {:.0}% (approval)",
            confidence * 100.0,
            settings.t_escalate * 100.0,
            settings.t_auto * 100.0
        ));
        Decision::NeedApproval
    } else {
        explanations.push(format!(
            "confidence {:.0}% < {:.0}% (escalate)",
            confidence * 100.0,
            settings.t_escalate * 100.0
        ));
        Decision::Escalate
    };
    let autosend_block_reason = if decision != Decision::AutoSend {
        None
    } else if !autosend_feature {
        Some("FLAG_OFF")
    } else if !settings.autosend_allowed {
        Some("SETTING_OFF")
    } else if !settings.intents_autosend_allowed.iter().any(|i| i == draft.intent) {
        Some("INTENT_NOT_ALLOWED")
    } else if mentions_price(draft.reply) {
        Some("MENTIONS_PRICE")
    } else {
        None
    }
    .map(String::from);
    if let Some(r) = &autosend_block_reason {
        explanations.push(format!("automatic sending is blocked: {r}"));
    }
    PolicyOutcome { decision, confidence, autosend_block_reason, explanations }
}

/// A reply drafted without an AI model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineDraft {
    pub text: String,
    pub intent: String,
}

fn has_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// Drafts a useful reply from rules: greets and asks for the VIN, acknowledges a VIN or FRAME,
/// hands price questions to an operator. `vehicle_id` is a VIN/FRAME found in the conversation.
pub fn offline_reply(
    settings: &AgentSettings,
    last_customer_text: &str,
    vehicle_id: Option<(&str, &str)>,
    first_contact: bool,
) -> OfflineDraft {
    let t = last_customer_text.to_lowercase();
    let vy = settings.address_style == crate::tenant::AddressStyle::Vy;
    let (you, send, your) =
        if vy { ("Вы", "пришлите", "Вашего") } else { ("ты", "пришли", "твоего") };
    let greet = if first_contact { "Здравствуйте! " } else { "" };
    if has_any(&t, &["цена", "цену", "сколько стоит", "стоимост", "почем", "почём", "прайс", "сколько будет"])
    {
        return OfflineDraft {
            text: format!(
                "{greet}Стоимость уточнит менеджер и ответит в ближайшее время. Чтобы подобрать точно, {send} VIN или маркировку коробки передач, если ещё не {}.",
                if vy { "присылали" } else { "присылал" }
            ),
            intent: "price".into(),
        };
    }
    if let Some((kind, value)) = vehicle_id {
        let label = if kind == "FRAME" { "номер кузова" } else { "VIN" };
        return OfflineDraft {
            text: format!(
                "{greet}Спасибо, {label} {value} получили. Проверяем по каталогу, какая коробка передач стоит на {your} автомобиле, и вернёмся с ответом."
            ),
            intent: "vehicle_id_received".into(),
        };
    }
    let greeting = has_any(&t, &["здравств", "привет", "добрый", "доброе", "hello", "hi ", "салам"]);
    let _ = you;
    OfflineDraft {
        text: format!(
            "{}Чтобы подобрать коробку передач, {send}, пожалуйста, VIN-код автомобиля или маркировку КПП (она на шильдике коробки).",
            if greeting || first_contact { "Здравствуйте! " } else { "" }
        ),
        intent: if greeting { "greeting".into() } else { "vehicle_id_request".into() },
    }
}

/// Default gearbox reply templates (tenants can override each by key).
pub fn default_template(key: &str) -> Option<&'static str> {
    Some(match key {
        "gearboxLookupFound" => {
            "По вашему {{idType}} определяется модель КПП: {{model}} (OEM: {{oem}}).\nЕсли есть возможность — пришлите фото шильдика/маркировки КПП для сверки.\nЕсли сейчас не можете — продолжим подбор по OEM."
        }
        "gearboxLookupModelOnly" => {
            "По {{idType}} определяется модель КПП: {{model}}. OEM номер узла на сайте не отобразился.\nЕсли можете — пришлите фото шильдика/маркировки КПП, чтобы точно определить OEM."
        }
        "gearboxTagRequest" => {
            "Начал проверку по {{idType}} 👍\nЧтобы точно сверить коробку и исключить ошибку, если есть возможность — пришлите фото шильдика (маркировки) на коробке передач.\nЕсли сейчас не можете — ничего страшного, продолжу подбор по OEM."
        }
        "gearboxLookupFallback" => {
            "По VIN коробка передач {{gearboxType}} в каталоге не отображается.\nИщу варианты {{gearboxType}} {{make}} {{model}} на основе вашего запроса.\nЕсли есть фото шильдика/маркировки КПП — пришлите, это поможет точнее подобрать."
        }
        "gearboxNoVin" => {
            "Здравствуйте! Чтобы сразу посчитать цену, нужна маркировка коробки (на шильдике КПП) или VIN. Что можете прислать?"
        }
        _ => return None,
    })
}

/// Renders template `key` (the tenant's override when non-empty, else the default) with
/// `{{name}}` placeholders; unknown or missing values render as nothing, and the whitespace a
/// missing value leaves behind is collapsed.
pub fn render_template(settings: &AgentSettings, key: &str, values: &[(&str, Option<&str>)]) -> Option<String> {
    let template = tenant_template(settings, key).or_else(|| default_template(key))?;
    Some(render_text(template, values))
}

/// The tenant's override of template `key`, when it has a non-blank one.
pub fn tenant_template<'a>(settings: &'a AgentSettings, key: &str) -> Option<&'a str> {
    settings.templates.get(key).map(String::as_str).filter(|t| !t.trim().is_empty())
}

/// Fills `{{name}}` placeholders of `template`; unknown or missing values render as nothing, and
/// the whitespace a missing value leaves behind is collapsed (within each line; line breaks stay),
/// also before punctuation.
pub fn render_text(template: &str, values: &[(&str, Option<&str>)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), value.unwrap_or(""));
    }
    // Placeholders without a value.
    while let (Some(a), Some(b)) = (out.find("{{"), out.find("}}")) {
        if b < a {
            break;
        }
        out.replace_range(a..b + 2, "");
    }
    let lines: Vec<String> = out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    let mut out = lines.join("\n").replace("( ", "(");
    // The space a missing value left before punctuation ("{{vin}}." with no VIN).
    for p in [")", ".", ",", "!", "?", ";"] {
        out = out.replace(&format!(" {p}"), p);
    }
    out
}

/// Whether `at` (UTC) falls in the tenant's working hours in its time zone, on a working day
/// (see [`WorkingHours`] for overnight spans, DST and an empty day list). An unknown time zone
/// counts as working hours; unknown day names are ignored.
pub fn is_working_time(
    timezone: &str,
    start: NaiveTime,
    end: NaiveTime,
    working_days: &[String],
    at: DateTime<Utc>,
) -> bool {
    let Ok(tz) = timezone.parse::<chrono_tz::Tz>() else { return true };
    let days: Vec<_> = working_days.iter().filter_map(|d| parse_weekday(d)).collect();
    WorkingHours::new(tz, start, end, &days).is_open(at)
}

/// When a reply should go out, and whether it should at all.
#[derive(Debug, Clone, PartialEq)]
pub enum DelayPlan {
    /// Send after `delay_ms` (0 when delays are off).
    SendAfter { delay_ms: u64, night: bool },
    /// Outside working hours with night mode AUTO_REPLY: send this text instead.
    AutoReply { text: String },
    /// Outside working hours with night mode DISABLE: do not send automatically.
    Hold,
}

/// Longest delay ever planned before a reply (a day): settings above it are refused, and ones
/// stored before that rule are held to it, so a send time can always be computed.
pub const MAX_DELAY_MS: u64 = 86_400_000;

/// Human-like delay before sending a reply of `chars` characters. `jitter` in [-1, 1] and `base`
/// in [0, 1] are random draws supplied by the caller, so the rule itself stays deterministic.
pub fn plan_delay(settings: &AgentSettings, chars: usize, working: bool, base: f64, jitter: f64) -> DelayPlan {
    let d = &settings.delay;
    if !d.enabled {
        return DelayPlan::SendAfter { delay_ms: 0, night: !working };
    }
    if !working {
        match d.night_mode {
            NightMode::AutoReply => return DelayPlan::AutoReply { text: d.night_auto_reply_text.clone() },
            NightMode::Disable => return DelayPlan::Hold,
            NightMode::Delay => {}
        }
    }
    // Base pause by length (short / medium / long message), plus typing time, plus jitter.
    let (base_min, base_max, jitter_ms) = match chars {
        0..100 => (2000.0, 4000.0, 500.0),
        100..300 => (4000.0, 8000.0, 1000.0),
        _ => (8000.0, 15000.0, 2000.0),
    };
    let base_ms = base_min + (base_max - base_min) * base.clamp(0.0, 1.0);
    let typing_ms = chars as f64 / d.typing_speed.max(1.0) * 1000.0;
    let mut total = base_ms + typing_ms + jitter_ms * jitter.clamp(-1.0, 1.0);
    if !working {
        total *= d.night_delay_multiplier;
    }
    let total = total.max(d.min_delay_ms as f64).min(d.max_delay_ms as f64).min(MAX_DELAY_MS as f64);
    DelayPlan::SendAfter { delay_ms: total.round() as u64, night: !working }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft<'a>(intent: &'a str, confidence: f64, reply: &'a str) -> DraftAssessment<'a> {
        DraftAssessment { intent, confidence, reply, needs_handoff: false, offline: false }
    }

    #[test]
    fn thresholds_are_inclusive() {
        let s = DecisionSettings::default();
        assert_eq!(decide(&s, true, &draft("other", 0.80, "ok")).decision, Decision::AutoSend);
        assert_eq!(decide(&s, true, &draft("other", 0.7999, "ok")).decision, Decision::NeedApproval);
        assert_eq!(decide(&s, true, &draft("other", 0.40, "ok")).decision, Decision::NeedApproval);
        assert_eq!(decide(&s, true, &draft("other", 0.39, "ok")).decision, Decision::Escalate);
    }

    #[test]
    fn forced_handoff_intents_escalate_and_offline_drafts_need_approval() {
        let s = DecisionSettings::default();
        assert_eq!(decide(&s, true, &draft("complaint", 0.99, "ok")).decision, Decision::Escalate);
        let mut d = draft("other", 0.99, "ok");
        d.offline = true;
        assert_eq!(decide(&s, true, &d).decision, Decision::NeedApproval);
        d.offline = false;
        d.needs_handoff = true;
        assert_eq!(decide(&s, true, &d).decision, Decision::Escalate);
    }

    #[test]
    fn the_autosend_lock_has_three_keys_and_a_price_guard() {
        let mut s = DecisionSettings::default();
        let out = decide(&s, false, &draft("other", 0.9, "ok"));
        assert_eq!((out.decision, out.autosend_block_reason.as_deref()), (Decision::AutoSend, Some("FLAG_OFF")));
        assert_eq!(decide(&s, true, &draft("other", 0.9, "ok")).autosend_block_reason.as_deref(), Some("SETTING_OFF"));
        s.autosend_allowed = true;
        assert_eq!(
            decide(&s, true, &draft("warranty_question", 0.9, "ok")).autosend_block_reason.as_deref(),
            Some("INTENT_NOT_ALLOWED")
        );
        assert_eq!(
            decide(&s, true, &draft("other", 0.9, "Цена 85 000 руб")).autosend_block_reason.as_deref(),
            Some("MENTIONS_PRICE")
        );
        assert_eq!(decide(&s, true, &draft("other", 0.9, "Добрый день!")).autosend_block_reason, None);
    }

    #[test]
    fn offline_replies_cover_greeting_vin_and_price() {
        let s = AgentSettings::default();
        let g = offline_reply(&s, "Здравствуйте", None, true);
        assert_eq!(g.intent, "greeting");
        assert!(g.text.contains("VIN"));
        let v = offline_reply(&s, "вот вин", Some(("VIN", "JTNBE46K803123456")), false);
        assert_eq!(v.intent, "vehicle_id_received");
        assert!(v.text.contains("JTNBE46K803123456"));
        let p = offline_reply(&s, "Сколько стоит АКПП?", None, false);
        assert_eq!(p.intent, "price");
        assert!(p.text.contains("менеджер"));
        let ty = AgentSettings { address_style: crate::tenant::AddressStyle::Ty, ..Default::default() };
        assert!(offline_reply(&ty, "?", None, false).text.contains("пришли,"));
    }

    #[test]
    fn templates_render_with_overrides_and_missing_values() {
        let mut s = AgentSettings::default();
        let text = render_template(
            &s,
            "gearboxLookupFound",
            &[("idType", Some("VIN-коду")), ("model", Some("U660E")), ("oem", None)],
        )
        .unwrap();
        assert!(text.starts_with("По вашему VIN-коду определяется модель КПП: U660E (OEM:)."), "{text}");
        s.templates.insert("gearboxNoVin".into(), "Пришлите {{what}} пожалуйста".into());
        assert_eq!(render_template(&s, "gearboxNoVin", &[]).unwrap(), "Пришлите пожалуйста");
        s.templates.insert("gearboxTagRequest".into(), "  ".into());
        assert!(render_template(&s, "gearboxTagRequest", &[]).unwrap().starts_with("Начал проверку"));
        assert!(render_template(&s, "nope", &[]).is_none());
    }

    #[test]
    fn working_hours_respect_zone_days_and_overnight_ranges() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let six = NaiveTime::from_hms_opt(18, 0, 0).unwrap();
        let days: Vec<String> = ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec();
        // 2026-11-27 is a Friday; 07:00 UTC = 10:00 Moscow.
        let fri_10_msk = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 27, 7, 0, 0).unwrap();
        assert!(is_working_time("Europe/Moscow", nine, six, &days, fri_10_msk));
        let sat = fri_10_msk + chrono::Duration::days(1);
        assert!(!is_working_time("Europe/Moscow", nine, six, &days, sat), "working days are honoured");
        let fri_20_msk = fri_10_msk + chrono::Duration::hours(10);
        assert!(!is_working_time("Europe/Moscow", nine, six, &days, fri_20_msk));
        assert!(is_working_time("Europe/Moscow", six, nine, &days, fri_20_msk), "overnight range");
    }

    #[test]
    fn delays_follow_length_and_night_mode() {
        let mut s = AgentSettings::default();
        assert_eq!(plan_delay(&s, 50, true, 0.5, 0.0), DelayPlan::SendAfter { delay_ms: 0, night: false });
        s.delay.enabled = true;
        let DelayPlan::SendAfter { delay_ms: short, .. } = plan_delay(&s, 50, true, 0.0, 0.0) else { panic!() };
        let DelayPlan::SendAfter { delay_ms: long, .. } = plan_delay(&s, 600, true, 0.0, 0.0) else { panic!() };
        assert!(short >= 3000 && short < long && long <= 120_000, "{short} {long}");
        let DelayPlan::SendAfter { delay_ms: night, night: true } = plan_delay(&s, 50, false, 0.0, 0.0) else {
            panic!()
        };
        assert!(night > short);
        s.delay.night_mode = NightMode::AutoReply;
        assert!(matches!(plan_delay(&s, 50, false, 0.0, 0.0), DelayPlan::AutoReply { .. }));
        s.delay.night_mode = NightMode::Disable;
        assert_eq!(plan_delay(&s, 50, false, 0.0, 0.0), DelayPlan::Hold);
    }
}

#[cfg(test)]
mod huge_delay_tests {
    use super::*;

    #[test]
    fn a_huge_delay_setting_is_refused_and_never_planned() {
        let mut s = AgentSettings::default();
        s.delay.enabled = true;
        s.delay.min_delay_ms = u64::MAX;
        s.delay.max_delay_ms = u64::MAX;
        assert!(s.validate().is_err(), "a delay beyond a day is refused");
        // Stored before the rule existed: planned at most a day ahead, so adding it to a time
        // cannot overflow.
        let DelayPlan::SendAfter { delay_ms, .. } = plan_delay(&s, 50, true, 0.5, 0.0) else { panic!() };
        assert!(delay_ms <= MAX_DELAY_MS, "{delay_ms}");
        let at = chrono::Utc::now() + chrono::Duration::milliseconds(delay_ms as i64);
        assert!(at > chrono::Utc::now());
    }
}
