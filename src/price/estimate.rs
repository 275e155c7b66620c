//! The AI estimate of a used gearbox's price (OpenAI-compatible chat API through async-openai):
//! asked only where the tenant enables it and no market price was found, answered as
//! `{"priceMin": …, "priceMax": …}` in roubles. What comes back is an estimate, recorded and shown
//! as one; whether it is plausible is the aggregate's call.

use std::time::Duration;

use aisales_domain::price::{PriceSubject, gearbox_label};
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequestArgs, ResponseFormat,
};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::config::Settings;

/// Why no estimate came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstimateError {
    #[error("no AI key is configured")]
    NotConfigured,
    #[error("the AI service failed{}: {message}", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    Service { status: Option<u16>, message: String },
    #[error("no answer from the AI service within {0} s")]
    Timeout(u64),
    #[error("the AI answer holds no price range: {0}")]
    Unreadable(String),
}

impl EstimateError {
    /// The HTTP status of the failure, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            EstimateError::Service { status, .. } => *status,
            _ => None,
        }
    }
}

/// Asks a chat model for a price range.
#[derive(Clone)]
pub struct PriceEstimator {
    client: Option<Client<OpenAIConfig>>,
    model: String,
    timeout: Duration,
}

impl PriceEstimator {
    pub fn from_settings(settings: &Settings) -> Self {
        let client = settings.openai_api_key.as_ref().map(|key| {
            let cfg = OpenAIConfig::new()
                .with_api_base(settings.openai_base_url.clone())
                .with_api_key(key.expose_secret().to_string());
            let http = reqwest::Client::builder()
                .timeout(settings.ai_timeout)
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client builds");
            Client::build(http, cfg)
        });
        PriceEstimator { client, model: settings.ai_model.clone(), timeout: settings.ai_timeout }
    }

    pub fn is_configured(&self) -> bool {
        self.client.is_some()
    }

    /// The question asked for `subject` (recorded as the source's query).
    pub fn question(subject: &PriceSubject) -> String {
        let label = gearbox_label(subject.gearbox_type);
        let name = subject.model_name().or(subject.code()).unwrap_or_default();
        let mut q = format!("used {label} {name}").trim().to_string();
        if let Some(oem) = &subject.oem {
            q.push_str(&format!(", OEM {oem}"));
        }
        let vehicle = subject.vehicle_line();
        if !vehicle.is_empty() {
            q.push_str(&format!(", vehicle {vehicle}"));
        }
        q
    }

    /// `(min, max)` in roubles.
    pub async fn estimate(&self, subject: &PriceSubject) -> Result<(u64, u64), EstimateError> {
        let Some(client) = &self.client else { return Err(EstimateError::NotConfigured) };
        let system = "You estimate current prices of used (contract) transmissions sold in Russia. \
                      Answer ONLY a JSON object {\"priceMin\": number, \"priceMax\": number} in roubles, rounded to \
                      1000, with priceMax at most 3 times priceMin. Use prices of sites such as baza.drom.ru, \
                      farpost.ru, avito.ru, japancar.ru.";
        let user = format!("Transmission: {}. What does it cost used in Russia now?", Self::question(subject));
        let messages: Vec<ChatCompletionRequestMessage> = vec![
            ChatCompletionRequestSystemMessage::from(system).into(),
            ChatCompletionRequestUserMessage::from(user.as_str()).into(),
        ];
        let request = CreateChatCompletionRequestArgs::default()
            .model(self.model.clone())
            .messages(messages)
            .response_format(ResponseFormat::JsonObject)
            .max_completion_tokens(200u32)
            .temperature(0.0)
            .build()
            .map_err(|e| EstimateError::Service { status: None, message: e.to_string() })?;
        let answer = match tokio::time::timeout(self.timeout, client.chat().create(request)).await {
            Err(_) => return Err(EstimateError::Timeout(self.timeout.as_secs())),
            Ok(Err(e)) => return Err(service_error(e)),
            Ok(Ok(answer)) => answer,
        };
        let content = answer.choices.first().and_then(|c| c.message.content.clone()).unwrap_or_default();
        parse_estimate(&content)
    }
}

fn service_error(e: OpenAIError) -> EstimateError {
    match e {
        OpenAIError::ApiError(r) => {
            EstimateError::Service { status: Some(r.status_code.as_u16()), message: r.api_error.message }
        }
        other => EstimateError::Service { status: None, message: other.to_string() },
    }
}

/// Reads `{"priceMin": …, "priceMax": …}` (numbers or numeric strings, code fences allowed).
pub fn parse_estimate(content: &str) -> Result<(u64, u64), EstimateError> {
    let text = content.trim().trim_start_matches("```json").trim_start_matches("```").trim_end_matches("```");
    let start = text.find('{');
    let end = text.rfind('}');
    let json = match (start, end) {
        (Some(s), Some(e)) if e > s => &text[s..=e],
        _ => return Err(EstimateError::Unreadable(excerpt(content))),
    };
    let v: Value = serde_json::from_str(json).map_err(|_| EstimateError::Unreadable(excerpt(content)))?;
    let num = |key: &str| -> Option<u64> {
        match v.get(key)? {
            Value::Number(n) => n.as_f64().filter(|f| f.is_finite() && *f > 0.0).map(|f| f.round() as u64),
            Value::String(s) => s.chars().filter(char::is_ascii_digit).collect::<String>().parse().ok(),
            _ => None,
        }
    };
    match (num("priceMin"), num("priceMax")) {
        (Some(min), Some(max)) => Ok((min, max)),
        _ => Err(EstimateError::Unreadable(excerpt(content))),
    }
}

fn excerpt(s: &str) -> String {
    s.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_range_in_its_usual_shapes() {
        assert_eq!(parse_estimate(r#"{"priceMin": 60000, "priceMax": 90000}"#), Ok((60000, 90000)));
        assert_eq!(
            parse_estimate("```json\n{\"priceMin\": \"60 000\", \"priceMax\": 90000.4}\n```"),
            Ok((60000, 90000))
        );
        assert!(parse_estimate("I cannot tell").is_err());
        assert!(parse_estimate(r#"{"priceMin": 0, "priceMax": 90000}"#).is_err());
    }
}
