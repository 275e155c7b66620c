//! What leads are told, and what the team is told about them.
//!
//! - [`auto_response`]: the first message to the customer, per lead kind (the old system's, word
//!   for word), with the tenant's per-kind switch and template overrides;
//! - [`failed_lead_notice`], [`no_reply_notice`], [`escalation_notice`]: the escalation bot's
//!   messages to the team's Telegram chat, in Telegram's Markdown with every
//!   customer-typed value escaped.
//!
//! Template keys (in the tenant's `templates`): `leadGearbox`, `leadEngine`, `leadTires` (a
//! kind's detailed message), `leadAcknowledgement` (the short one, used when a kind's detailed
//! message is switched off), `leadAfterHours` (the after-hours line). Placeholders: `{{name}}`,
//! `{{formName}}`, `{{car}}`, `{{vin}}`, `{{city}}`, `{{gearboxType}}`, `{{engineType}}`,
//! `{{engineVolume}}`, `{{engineModel}}`, `{{tireSeason}}`, `{{tireSize}}`, `{{details}}` (the
//! default's field lines) and `{{closing}}` (the default's last line).

use chrono::Duration;

use super::contact::PreferredChannel;
use super::fields::{LeadFields, LeadKind};
use super::routing::FailureReason;
use crate::conversation::ChannelKind;
use crate::reply::{render_text, tenant_template};
use crate::tenant::AgentSettings;

/// The short auto-response of a kind whose detailed message is switched off.
pub const ACKNOWLEDGEMENT: &str = "Здравствуйте! Получили вашу заявку. Свяжемся с вами в ближайшее время 👍";
/// The line added to a message sent outside working hours.
pub const AFTER_HOURS: &str = "Утром приеду на работу, скину Вам подходящий вариант 👍";

/// Template key of a kind's detailed auto-response.
pub fn template_key(kind: LeadKind) -> &'static str {
    match kind {
        LeadKind::Gearbox => "leadGearbox",
        LeadKind::Engine => "leadEngine",
        LeadKind::Tires => "leadTires",
    }
}

/// The default message's parts: greeting, field lines, closing line.
struct Draft {
    greeting: &'static str,
    lines: Vec<String>,
    closing: &'static str,
}

impl Draft {
    fn text(&self) -> String {
        let mut blocks = vec![self.greeting.to_string()];
        if !self.lines.is_empty() {
            blocks.push(self.lines.join("\n"));
        }
        blocks.push(self.closing.to_string());
        blocks.join("\n\n")
    }
}

fn line(out: &mut Vec<String>, label: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
        out.push(format!("{label}: {v}"));
    }
}

/// `W/H/D` of the size fields given, joined by `/`.
fn tire_size(f: &LeadFields) -> Option<String> {
    let parts: Vec<&str> =
        [&f.tire_width, &f.tire_height, &f.tire_diameter].into_iter().filter_map(|p| p.as_deref()).collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn draft(f: &LeadFields, kind: LeadKind) -> Draft {
    let mut lines = Vec::new();
    match kind {
        LeadKind::Gearbox => {
            line(&mut lines, "🚗 Автомобиль", f.car.as_deref());
            line(&mut lines, "⚙️ Тип КПП", f.gearbox_type.as_deref());
            line(&mut lines, "📍 Город", f.city.as_deref());
            line(&mut lines, "🔑 VIN", f.vin.as_deref());
            Draft {
                greeting: "Здравствуйте! Получили вашу заявку на подбор КПП.",
                lines,
                closing: if f.vin.is_some() {
                    "Всё верно?"
                } else {
                    "Напишите ВИН-код или маркировку коробки — подберём точный вариант 🙏"
                },
            }
        }
        LeadKind::Engine => {
            line(&mut lines, "🚗 Автомобиль", f.car.as_deref());
            line(&mut lines, "⚙️ Тип", f.engine_type.as_deref());
            line(&mut lines, "📦 Объём", f.engine_volume.as_deref());
            line(&mut lines, "🔧 Модель двигателя", f.engine_model.as_deref());
            line(&mut lines, "📍 Город", f.city.as_deref());
            line(&mut lines, "🔑 VIN", f.vin.as_deref());
            Draft {
                greeting: "Здравствуйте! Получили вашу заявку на подбор двигателя.",
                lines,
                closing: if f.vin.is_some() || f.engine_model.is_some() {
                    "Всё верно?"
                } else {
                    "Напишите ВИН-код или маркировку двигателя — подберём точный вариант 🙏"
                },
            }
        }
        LeadKind::Tires => {
            let by_size = f.tire_method.as_deref().is_some_and(|m| m.to_lowercase().contains("размер"));
            match tire_size(f) {
                Some(size) if by_size => line(&mut lines, "🔧 Размер", Some(&size)),
                _ => line(&mut lines, "🚗 Автомобиль", f.car.as_deref()),
            }
            line(&mut lines, "🌦 Сезон", f.tire_season.as_deref());
            line(&mut lines, "📍 Город", f.city.as_deref());
            Draft {
                greeting: "Здравствуйте! Получили вашу заявку на подбор шин.", lines, closing: "Всё верно?"
            }
        }
    }
}

/// The first message to a lead of `kind`: the tenant's template for the kind when it has one,
/// else the default; the short acknowledgement when the kind's detailed message is switched off;
/// with the after-hours line when `after_hours`.
pub fn auto_response(fields: &LeadFields, kind: LeadKind, settings: &AgentSettings, after_hours: bool) -> String {
    let mut text = if !settings.leads.detailed_reply(kind) {
        tenant_template(settings, "leadAcknowledgement")
            .map(|t| render(t, &placeholders(fields, kind)))
            .unwrap_or_else(|| ACKNOWLEDGEMENT.to_string())
    } else if let Some(template) = tenant_template(settings, template_key(kind)) {
        render(template, &placeholders(fields, kind))
    } else {
        draft(fields, kind).text()
    };
    if after_hours {
        text.push_str("\n\n");
        text.push_str(tenant_template(settings, "leadAfterHours").unwrap_or(AFTER_HOURS).trim());
    }
    text
}

fn placeholders(f: &LeadFields, kind: LeadKind) -> Vec<(&'static str, Option<String>)> {
    let d = draft(f, kind);
    vec![
        ("name", f.client_name.clone()),
        ("formName", Some(f.form_name.clone())),
        ("car", f.car.clone()),
        ("vin", f.vin.clone()),
        ("city", f.city.clone()),
        ("gearboxType", f.gearbox_type.clone()),
        ("engineType", f.engine_type.clone()),
        ("engineVolume", f.engine_volume.clone()),
        ("engineModel", f.engine_model.clone()),
        ("tireSeason", f.tire_season.clone()),
        ("tireSize", tire_size(f)),
        ("details", (!d.lines.is_empty()).then(|| d.lines.join("\n"))),
        ("closing", Some(d.closing.to_string())),
    ]
}

fn render(template: &str, values: &[(&'static str, Option<String>)]) -> String {
    let values: Vec<(&str, Option<&str>)> = values.iter().map(|(k, v)| (*k, v.as_deref())).collect();
    render_text(template, &values)
}

/// Escapes Telegram Markdown (the legacy `Markdown` parse mode): `_`, `*`, `` ` `` and `[`.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '_' | '*' | '`' | '[') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How the escalation bot names a channel a lead was contacted on.
pub fn channel_label(channel: ChannelKind) -> &'static str {
    match channel {
        ChannelKind::GreenApi => "MAX (WhatsApp)",
        ChannelKind::Telegram => "Telegram",
        ChannelKind::Whatsapp => "WhatsApp",
    }
}

/// `15 минут`, `1 минуты`, `21 минуты`, `30 секунд` (after «в течение»).
pub fn duration_ru(d: Duration) -> String {
    let genitive = |n: i64, one: &str, many: &str| {
        let word = if n % 10 == 1 && n % 100 != 11 { one } else { many };
        format!("{n} {word}")
    };
    let secs = d.num_seconds().max(0);
    if secs >= 60 && secs % 60 == 0 {
        genitive(secs / 60, "минуты", "минут")
    } else {
        genitive(secs, "секунды", "секунд")
    }
}

/// The lead's block of the team notifications (only the fields given).
fn lead_block(f: &LeadFields) -> String {
    let e = |v: &Option<String>| v.as_deref().map(escape_markdown);
    let mut lines = Vec::new();
    line(&mut lines, "📋 Заявка", Some(&escape_markdown(&f.form_name)));
    line(&mut lines, "🚗 Автомобиль", e(&f.car).as_deref());
    line(&mut lines, "🔑 VIN", e(&f.vin).as_deref());
    line(&mut lines, "🏙 Город", e(&f.city).as_deref());
    line(&mut lines, "⚙️ Тип КПП", e(&f.gearbox_type).as_deref());
    let engine: Vec<&str> =
        [&f.engine_type, &f.engine_volume, &f.engine_model].into_iter().filter_map(|v| v.as_deref()).collect();
    if !engine.is_empty() {
        line(&mut lines, "🔧 Двигатель", Some(&escape_markdown(&engine.join(", "))));
    }
    let mut tires: Vec<String> = f.tire_season.iter().cloned().collect();
    match (&f.tire_width, &f.tire_height, &f.tire_diameter) {
        (Some(w), Some(h), Some(d)) => tires.push(format!("{w}/{h} {d}")),
        _ => tires.extend(f.tire_method.iter().cloned()),
    }
    if !tires.is_empty() {
        line(&mut lines, "🛞 Шины", Some(&escape_markdown(&tires.join(", "))));
    }
    lines.join("\n")
}

fn client_lines(f: &LeadFields) -> Vec<String> {
    vec![
        format!("👤 Клиент: {}", f.client_name.as_deref().map_or_else(|| "Неизвестный клиент".into(), escape_markdown)),
        format!(
            "📱 Телефон: {}",
            f.phone
                .as_ref()
                .map(|p| p.e164())
                .or_else(|| f.phone_raw.as_deref().map(escape_markdown))
                .unwrap_or("—".into())
        ),
    ]
}

/// The bot's message about a lead nobody could be reached for.
pub fn failed_lead_notice(f: &LeadFields, reason: FailureReason) -> String {
    let mut lines = vec!["🚨 *Не удалось связаться с клиентом*".to_string(), String::new()];
    lines.extend(client_lines(f));
    lines.push(format!("💬 Telegram: {}", f.telegram.as_ref().map_or("—".into(), |t| escape_markdown(&t.handle()))));
    lines.push(format!("📡 Канал: {}", f.preferred_channel.map_or("авто", PreferredChannel::label)));
    lines.push(format!("❓ Причина: {}", reason.label_ru()));
    lines.push(String::new());
    lines.push(lead_block(f));
    lines.push(String::new());
    if reason == FailureReason::NoContactInfo {
        lines.push("❗ В заявке нет ни телефона, ни Telegram, ни номера MAX.".into());
        match &f.email {
            Some(email) => lines.push(format!("Напишите клиенту на почту: {}", escape_markdown(email))),
            None => lines.push("Проверьте заявку вручную.".into()),
        }
    } else {
        lines.push("❗ Клиент не зарегистрирован ни в одном из мессенджеров.".into());
        lines.push("Необходимо *позвонить* клиенту и уточнить удобный способ связи.".into());
    }
    lines.join("\n")
}

/// The bot's message about a lead that has not answered the first message within `after`.
pub fn no_reply_notice(f: &LeadFields, channel: ChannelKind, after: Duration) -> String {
    let mut lines = vec!["⏰ *Клиент не отвечает*".to_string(), String::new()];
    lines.extend(client_lines(f));
    lines.push(format!("📡 Канал: {}", channel_label(channel)));
    lines.push(String::new());
    lines.push(lead_block(f));
    lines.push(String::new());
    lines.push(format!("Клиент не ответил на первое сообщение в течение *{}*.", duration_ru(after)));
    lines.push("Рекомендуем позвонить вручную.".into());
    lines.join("\n")
}

/// What the bot says about an escalated conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalatedConversation<'a> {
    pub client_name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub channel: ChannelKind,
    /// Why it was escalated (the conversation's reason).
    pub reason: &'a str,
    /// The customer's last message.
    pub last_message: Option<&'a str>,
}

/// Longest quote of the customer's last message in a notification, in characters.
const QUOTE_CHARS: usize = 200;

/// The bot's message about a conversation that needs a person.
pub fn escalation_notice(c: &EscalatedConversation<'_>) -> String {
    let mut lines = vec!["🆘 *Диалог требует внимания оператора*".to_string(), String::new()];
    lines.push(format!("👤 Клиент: {}", c.client_name.map_or_else(|| "Неизвестный клиент".into(), escape_markdown)));
    lines.push(format!("📱 Телефон: {}", c.phone.map_or_else(|| "—".into(), escape_markdown)));
    lines.push(format!("📡 Канал: {}", channel_label(c.channel)));
    lines.push(format!("❓ Причина: {}", escape_markdown(c.reason)));
    if let Some(text) = c.last_message.map(str::trim).filter(|t| !t.is_empty()) {
        let mut quote: String =
            text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(QUOTE_CHARS).collect();
        if text.chars().count() > QUOTE_CHARS {
            quote.push('…');
        }
        lines.push(format!("💬 Последнее сообщение: {}", escape_markdown(&quote)));
    }
    lines.push(String::new());
    lines.push("Ответьте клиенту в панели оператора.".into());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::contact::{Phone, TelegramUsername};

    fn gearbox_lead() -> LeadFields {
        LeadFields {
            form_name: "Подбор КПП".into(),
            client_name: Some("Иван".into()),
            phone: Phone::parse("+7 999 123-45-67").ok(),
            car: Some("Toyota Camry 2015".into()),
            gearbox_type: Some("Автомат".into()),
            city: Some("Казань".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_gearbox_message_is_the_reference_text() {
        let s = AgentSettings::default();
        let mut f = gearbox_lead();
        assert_eq!(
            auto_response(&f, LeadKind::Gearbox, &s, false),
            "Здравствуйте! Получили вашу заявку на подбор КПП.\n\n\
             🚗 Автомобиль: Toyota Camry 2015\n⚙️ Тип КПП: Автомат\n📍 Город: Казань\n\n\
             Напишите ВИН-код или маркировку коробки — подберём точный вариант 🙏"
        );
        f.vin = Some("JTNBE46K803123456".into());
        assert_eq!(
            auto_response(&f, LeadKind::Gearbox, &s, false),
            "Здравствуйте! Получили вашу заявку на подбор КПП.\n\n\
             🚗 Автомобиль: Toyota Camry 2015\n⚙️ Тип КПП: Автомат\n📍 Город: Казань\n🔑 VIN: JTNBE46K803123456\n\n\
             Всё верно?"
        );
        assert_eq!(
            auto_response(&LeadFields::default(), LeadKind::Gearbox, &s, false),
            "Здравствуйте! Получили вашу заявку на подбор КПП.\n\n\
             Напишите ВИН-код или маркировку коробки — подберём точный вариант 🙏",
            "no field lines, no empty block"
        );
    }

    #[test]
    fn the_engine_message_is_the_reference_text() {
        let s = AgentSettings::default();
        let mut f = LeadFields {
            car: Some("Toyota RAV4".into()),
            engine_type: Some("Бензин".into()),
            engine_volume: Some("2.4".into()),
            city: Some("Омск".into()),
            ..Default::default()
        };
        assert_eq!(
            auto_response(&f, LeadKind::Engine, &s, false),
            "Здравствуйте! Получили вашу заявку на подбор двигателя.\n\n\
             🚗 Автомобиль: Toyota RAV4\n⚙️ Тип: Бензин\n📦 Объём: 2.4\n📍 Город: Омск\n\n\
             Напишите ВИН-код или маркировку двигателя — подберём точный вариант 🙏"
        );
        f.engine_model = Some("2AZ-FE".into());
        assert_eq!(
            auto_response(&f, LeadKind::Engine, &s, false),
            "Здравствуйте! Получили вашу заявку на подбор двигателя.\n\n\
             🚗 Автомобиль: Toyota RAV4\n⚙️ Тип: Бензин\n📦 Объём: 2.4\n🔧 Модель двигателя: 2AZ-FE\n📍 Город: Омск\n\n\
             Всё верно?",
            "an engine model is enough to confirm"
        );
        f.engine_model = None;
        f.vin = Some("JTMBD33V805123456".into());
        assert!(auto_response(&f, LeadKind::Engine, &s, false).ends_with("🔑 VIN: JTMBD33V805123456\n\nВсё верно?"));
    }

    #[test]
    fn the_tire_message_shows_the_size_when_chosen_by_size() {
        let s = AgentSettings::default();
        let mut f = LeadFields {
            car: Some("Kia Rio".into()),
            tire_method: Some("По размеру".into()),
            tire_width: Some("205".into()),
            tire_diameter: Some("R16".into()),
            tire_season: Some("Зима".into()),
            city: Some("Тверь".into()),
            ..Default::default()
        };
        assert_eq!(
            auto_response(&f, LeadKind::Tires, &s, false),
            "Здравствуйте! Получили вашу заявку на подбор шин.\n\n\
             🔧 Размер: 205/R16\n🌦 Сезон: Зима\n📍 Город: Тверь\n\nВсё верно?"
        );
        f.tire_method = Some("По марке авто".into());
        assert_eq!(
            auto_response(&f, LeadKind::Tires, &s, false),
            "Здравствуйте! Получили вашу заявку на подбор шин.\n\n\
             🚗 Автомобиль: Kia Rio\n🌦 Сезон: Зима\n📍 Город: Тверь\n\nВсё верно?"
        );
        f.car = None;
        assert_eq!(
            auto_response(&f, LeadKind::Tires, &s, false),
            "Здравствуйте! Получили вашу заявку на подбор шин.\n\n🌦 Сезон: Зима\n📍 Город: Тверь\n\nВсё верно?"
        );
    }

    #[test]
    fn switched_off_kinds_get_the_acknowledgement_and_after_hours_adds_the_line() {
        let mut s = AgentSettings::default();
        s.leads.gearbox_template_enabled = false;
        let f = gearbox_lead();
        assert_eq!(auto_response(&f, LeadKind::Gearbox, &s, false), ACKNOWLEDGEMENT);
        assert_eq!(
            auto_response(&f, LeadKind::Gearbox, &s, true),
            "Здравствуйте! Получили вашу заявку. Свяжемся с вами в ближайшее время 👍\n\n\
             Утром приеду на работу, скину Вам подходящий вариант 👍"
        );
        assert!(auto_response(&f, LeadKind::Engine, &s, false).contains("подбор двигателя"), "per kind");
        s.leads.engine_template_enabled = false;
        s.leads.tires_template_enabled = false;
        assert_eq!(auto_response(&f, LeadKind::Engine, &s, false), ACKNOWLEDGEMENT);
        assert_eq!(auto_response(&f, LeadKind::Tires, &s, false), ACKNOWLEDGEMENT);
    }

    #[test]
    fn tenant_templates_override_the_defaults() {
        let mut s = AgentSettings::default();
        s.templates.insert(
            "leadGearbox".into(),
            "{{name}}, добрый день! Заявка «{{formName}}»: {{car}}, {{gearboxType}} {{vin}}.\n\n{{details}}\n\n{{closing}}"
                .into(),
        );
        let f = gearbox_lead();
        assert_eq!(
            auto_response(&f, LeadKind::Gearbox, &s, false),
            "Иван, добрый день! Заявка «Подбор КПП»: Toyota Camry 2015, Автомат.\n\n\
             🚗 Автомобиль: Toyota Camry 2015\n⚙️ Тип КПП: Автомат\n📍 Город: Казань\n\n\
             Напишите ВИН-код или маркировку коробки — подберём точный вариант 🙏"
        );
        s.templates.insert("leadAfterHours".into(), "Ответим утром.".into());
        assert!(auto_response(&f, LeadKind::Gearbox, &s, true).ends_with("\n\nОтветим утром."));
        s.templates.insert("leadGearbox".into(), "   ".into());
        assert!(
            auto_response(&f, LeadKind::Gearbox, &s, false)
                .starts_with("Здравствуйте! Получили вашу заявку на подбор КПП."),
            "a blank template is no template"
        );
        s.leads.gearbox_template_enabled = false;
        s.templates.insert("leadAcknowledgement".into(), "{{name}}, спасибо за заявку!".into());
        assert_eq!(auto_response(&f, LeadKind::Gearbox, &s, false), "Иван, спасибо за заявку!");
    }

    #[test]
    fn markdown_is_escaped_where_customers_type() {
        assert_eq!(escape_markdown("ivan_petrov *VIP* [x] `y`"), "ivan\\_petrov \\*VIP\\* \\[x] \\`y\\`");
        let f = LeadFields {
            form_name: "Подбор_КПП".into(),
            client_name: Some("*Иван*".into()),
            telegram: TelegramUsername::parse("@ivan_petrov").ok(),
            car: Some("Mazda_6".into()),
            ..Default::default()
        };
        let text = failed_lead_notice(&f, FailureReason::AllChannelsFailed);
        assert!(text.contains("👤 Клиент: \\*Иван\\*"), "{text}");
        assert!(text.contains("💬 Telegram: @ivan\\_petrov"), "{text}");
        assert!(text.contains("📋 Заявка: Подбор\\_КПП"), "{text}");
        assert!(text.contains("🚗 Автомобиль: Mazda\\_6"), "{text}");
        assert!(text.starts_with("🚨 *Не удалось связаться с клиентом*"), "the bot's own Markdown stays");
    }

    #[test]
    fn the_failed_lead_notice_is_the_reference_text() {
        let mut f = gearbox_lead();
        f.vin = Some("JTNBE46K803123456".into());
        f.engine_type = Some("Бензин".into());
        f.engine_volume = Some("2.5".into());
        f.tire_season = Some("Зима".into());
        f.tire_width = Some("215".into());
        f.tire_height = Some("60".into());
        f.tire_diameter = Some("R16".into());
        f.preferred_channel = Some(PreferredChannel::Max);
        assert_eq!(
            failed_lead_notice(&f, FailureReason::MaxSendFailed),
            "🚨 *Не удалось связаться с клиентом*\n\n\
             👤 Клиент: Иван\n📱 Телефон: +79991234567\n💬 Telegram: —\n📡 Канал: MAX\n❓ Причина: не удалось отправить в MAX\n\n\
             📋 Заявка: Подбор КПП\n🚗 Автомобиль: Toyota Camry 2015\n🔑 VIN: JTNBE46K803123456\n🏙 Город: Казань\n\
             ⚙️ Тип КПП: Автомат\n🔧 Двигатель: Бензин, 2.5\n🛞 Шины: Зима, 215/60 R16\n\n\
             ❗ Клиент не зарегистрирован ни в одном из мессенджеров.\n\
             Необходимо *позвонить* клиенту и уточнить удобный способ связи."
        );
        let nobody = LeadFields {
            form_name: "Квиз".into(),
            tire_method: Some("По авто".into()),
            tire_width: Some("215".into()),
            email: Some("a@b.ru".into()),
            ..Default::default()
        };
        let text = failed_lead_notice(&nobody, FailureReason::NoContactInfo);
        assert!(
            text.contains("👤 Клиент: Неизвестный клиент\n📱 Телефон: —\n💬 Telegram: —\n📡 Канал: авто"),
            "{text}"
        );
        assert!(text.contains("🛞 Шины: По авто"), "an incomplete size shows the method: {text}");
        assert!(
            text.ends_with(
                "❗ В заявке нет ни телефона, ни Telegram, ни номера MAX.\nНапишите клиенту на почту: a@b.ru"
            )
        );
    }

    #[test]
    fn the_no_reply_notice_names_the_tenants_wait() {
        let f = gearbox_lead();
        assert_eq!(
            no_reply_notice(&f, ChannelKind::GreenApi, Duration::minutes(15)),
            "⏰ *Клиент не отвечает*\n\n\
             👤 Клиент: Иван\n📱 Телефон: +79991234567\n📡 Канал: MAX (WhatsApp)\n\n\
             📋 Заявка: Подбор КПП\n🚗 Автомобиль: Toyota Camry 2015\n🏙 Город: Казань\n⚙️ Тип КПП: Автомат\n\n\
             Клиент не ответил на первое сообщение в течение *15 минут*.\nРекомендуем позвонить вручную."
        );
        let text = no_reply_notice(&f, ChannelKind::Telegram, Duration::minutes(21));
        assert!(text.contains("📡 Канал: Telegram") && text.contains("*21 минуты*"), "{text}");
        assert_eq!(duration_ru(Duration::minutes(1)), "1 минуты");
        assert_eq!(duration_ru(Duration::minutes(11)), "11 минут");
        assert_eq!(duration_ru(Duration::minutes(2)), "2 минут");
        assert_eq!(duration_ru(Duration::seconds(30)), "30 секунд");
        assert_eq!(duration_ru(Duration::seconds(90)), "90 секунд");
        assert_eq!(channel_label(ChannelKind::Whatsapp), "WhatsApp");
    }

    #[test]
    fn the_escalation_notice_quotes_the_last_message() {
        let long = "А".repeat(250);
        let text = escalation_notice(&EscalatedConversation {
            client_name: Some("Олег_К"),
            phone: Some("+79990000000"),
            channel: ChannelKind::Telegram,
            reason: "intent `complaint` always goes to an operator",
            last_message: Some(&long),
        });
        assert!(text.starts_with("🆘 *Диалог требует внимания оператора*\n\n👤 Клиент: Олег\\_К\n📱 Телефон: +79990000000\n📡 Канал: Telegram\n"), "{text}");
        assert!(text.contains("❓ Причина: intent \\`complaint\\` always goes to an operator"), "{text}");
        assert!(text.contains(&format!("💬 Последнее сообщение: {}…", "А".repeat(200))), "{text}");
        let text = escalation_notice(&EscalatedConversation {
            client_name: None,
            phone: None,
            channel: ChannelKind::GreenApi,
            reason: "low confidence",
            last_message: None,
        });
        assert!(text.contains("👤 Клиент: Неизвестный клиент\n📱 Телефон: —\n📡 Канал: MAX (WhatsApp)"), "{text}");
        assert!(!text.contains("Последнее сообщение"));
    }
}
