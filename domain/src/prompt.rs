//! The drafting prompt (built from the tenant's agent settings, the conversation and any vehicle
//! data) and the parsing of the model's JSON answer. Pure: the AI client sends what this builds.

use serde::Deserialize;

use crate::reply::{INTENTS, normalize_intent};
use crate::tenant::{AddressStyle, AgentSettings, Tone};

/// Who wrote a line of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Customer,
    Shop,
}

/// Vehicle facts known for the conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VehicleFacts {
    pub id_type: Option<String>,
    pub id_value: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub year: Option<String>,
    pub gearbox_model: Option<String>,
    pub gearbox_type: Option<String>,
    pub oem: Option<String>,
}

/// The base rules used when a tenant has no prompt of its own.
const BASE_RULES: &str = "Ты — консультант магазина контрактных коробок передач (КПП). Правила:\n\
1. Никогда не выдумывай цены, наличие и сроки доставки: если их нет в данных, скажи, что уточнит менеджер.\n\
2. Задавай уточняющие вопросы: для подбора КПП нужен VIN, номер кузова или маркировка коробки.\n\
3. Отвечай коротко и по делу.\n\
4. Скидки, жалобы и возвраты передавай оператору.\n\
5. Никогда не говори, что ты ИИ или бот.";

/// The system prompt for `settings` of the shop `shop_name`, with vehicle facts when known.
pub fn system_prompt(settings: &AgentSettings, shop_name: &str, vehicle: Option<&VehicleFacts>) -> String {
    let mut blocks =
        vec![settings.system_prompt.clone().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| BASE_RULES.to_string())];
    let c = &settings.company;
    let mut facts = vec![format!("Компания: {}", c.company_name.as_deref().unwrap_or(shop_name))];
    if let Some(s) = &c.specialization {
        facts.push(format!("Специализация: {s}"));
    }
    if let Some(s) = &c.warehouse_city {
        facts.push(format!("Склад: {s}"));
    }
    if let (Some(m), Some(km)) = (c.warranty_months, c.warranty_km) {
        facts.push(format!("Гарантия: {m} мес. или {km} км"));
    }
    if let Some(d) = c.install_days {
        facts.push(format!("Установка: {d} дн."));
    }
    for (k, v) in &c.custom_facts {
        facts.push(format!("{k}: {v}"));
    }
    blocks.push(format!("ДАННЫЕ КОМПАНИИ:\n{}", facts.join("\n")));
    let tone = match settings.tone {
        Tone::Formal => "деловой",
        Tone::Friendly => "дружелюбный",
    };
    let address = match settings.address_style {
        AddressStyle::Vy => "обращайся на «Вы»",
        AddressStyle::Ty => "обращайся на «ты»",
    };
    blocks.push(format!("СТИЛЬ: тон {tone}, {address}, язык ответа: {}.", settings.language));
    blocks.push(if settings.allow_discounts {
        format!("СКИДКИ: можно предложить скидку до {}%.", settings.max_discount_percent)
    } else {
        "СКИДКИ: скидки не предлагай; вежливо передай вопрос менеджеру.".to_string()
    });
    if let Some(v) = vehicle {
        let mut lines = Vec::new();
        if let (Some(t), Some(id)) = (&v.id_type, &v.id_value) {
            lines.push(format!("{t}: {id}"));
        }
        let car: Vec<&str> = [&v.make, &v.model, &v.year].into_iter().filter_map(|x| x.as_deref()).collect();
        if !car.is_empty() {
            lines.push(format!("Автомобиль: {}", car.join(" ")));
        }
        if let Some(g) = &v.gearbox_model {
            lines.push(format!("Модель КПП: {g}"));
        }
        if let Some(g) = &v.gearbox_type {
            lines.push(format!("Тип КПП: {g}"));
        }
        if let Some(o) = &v.oem {
            lines.push(format!("OEM: {o}"));
        }
        if !lines.is_empty() {
            blocks.push(format!("ДАННЫЕ ОБ АВТОМОБИЛЕ (проверены по каталогу):\n{}", lines.join("\n")));
        }
    }
    blocks.push(format!(
        "ФОРМАТ ОТВЕТА: только JSON-объект {{\"reply_text\": string, \"intent\": одно из [{}], \"confidence\": число 0..1, \"needs_handoff\": boolean}}.\n\
         confidence — насколько ответ верен и безопасен для отправки клиенту без проверки.",
        INTENTS.join(", ")
    ));
    blocks.join("\n\n")
}

/// The model's answer, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDraft {
    pub reply: String,
    pub intent: String,
    pub confidence: f64,
    pub needs_handoff: bool,
}

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftParseError {
    #[error("the answer holds no JSON object")]
    NoJson,
    #[error("the answer's JSON is invalid: {0}")]
    Invalid(String),
    #[error("the answer has an empty reply_text")]
    EmptyReply,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(alias = "reply", alias = "text")]
    reply_text: Option<String>,
    intent: Option<String>,
    #[serde(alias = "intent_probability")]
    confidence: Option<f64>,
    #[serde(default)]
    needs_handoff: Option<bool>,
}

/// Parses the model's answer: tolerates markdown fences and text around the JSON object;
/// unknown intents become `other`; confidence is clamped to 0..1 (missing: 0.5).
pub fn parse_draft(answer: &str) -> Result<ParsedDraft, DraftParseError> {
    let start = answer.find('{').ok_or(DraftParseError::NoJson)?;
    let end = answer.rfind('}').ok_or(DraftParseError::NoJson)?;
    if end < start {
        return Err(DraftParseError::NoJson);
    }
    let raw: Raw = serde_json::from_str(&answer[start..=end]).map_err(|e| DraftParseError::Invalid(e.to_string()))?;
    let reply = raw.reply_text.unwrap_or_default().trim().to_string();
    if reply.is_empty() {
        return Err(DraftParseError::EmptyReply);
    }
    Ok(ParsedDraft {
        reply,
        intent: normalize_intent(raw.intent.as_deref().unwrap_or("other")),
        confidence: raw.confidence.filter(|c| c.is_finite()).unwrap_or(0.5).clamp(0.0, 1.0),
        needs_handoff: raw.needs_handoff.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_carries_settings_facts_and_vehicle() {
        let mut s = AgentSettings::default();
        s.company.warehouse_city = Some("Москва".into());
        let v = VehicleFacts {
            id_type: Some("VIN".into()),
            id_value: Some("JTN123".into()),
            gearbox_model: Some("U660E".into()),
            ..Default::default()
        };
        let p = system_prompt(&s, "Коробки.ру", Some(&v));
        assert!(p.contains("Компания: Коробки.ру"));
        assert!(p.contains("Склад: Москва"));
        assert!(p.contains("Модель КПП: U660E"));
        assert!(p.contains("«Вы»"));
        assert!(p.contains("reply_text"));
    }

    #[test]
    fn answers_are_parsed_tolerantly() {
        let a = "```json\n{\"reply_text\": \"Добрый день!\", \"intent\": \"greeting\", \"confidence\": 0.93}\n```";
        assert_eq!(
            parse_draft(a).unwrap(),
            ParsedDraft {
                reply: "Добрый день!".into(),
                intent: "greeting".into(),
                confidence: 0.93,
                needs_handoff: false
            }
        );
        let b = r#"{"reply_text": "x", "intent": "teleport", "intent_probability": 7}"#;
        let d = parse_draft(b).unwrap();
        assert_eq!((d.intent.as_str(), d.confidence), ("other", 1.0));
        assert_eq!(parse_draft("no json here"), Err(DraftParseError::NoJson));
        assert_eq!(parse_draft(r#"{"reply_text": "  "}"#), Err(DraftParseError::EmptyReply));
        assert!(matches!(parse_draft("{not json}"), Err(DraftParseError::Invalid(_))));
    }
}
