//! Per-tenant settings that domain rules read: agent style, company facts, decision thresholds,
//! human-like delay and reply templates. Stored as JSON on the tenant; every field has a default so
//! older rows and partial updates stay valid.

use std::collections::BTreeMap;

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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn invalid_thresholds_are_rejected() {
        let mut s = AgentSettings::default();
        s.decision.t_auto = 0.3;
        assert_eq!(s.validate().unwrap_err().field, "decision.t_auto");
        s.decision.t_auto = 1.5;
        assert!(s.validate().is_err());
    }
}
