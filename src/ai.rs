//! The OpenAI-compatible chat client that drafts replies (async-openai against
//! `AI_INTEGRATIONS_OPENAI_BASE_URL`, JSON output, a timeout, bounded retries: async-openai retries
//! 429 and 5xx answers three times with backoff; an unusable answer is asked for once more).

use std::time::Duration;

use aisales_domain::prompt::{self, ParsedDraft, Speaker};
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs, ResponseFormat,
};
use secrecy::ExposeSecret;

use crate::config::Settings;

/// Why drafting failed.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// Worth trying again later (rate limit, server error, timeout, network).
    #[error("the AI service is unavailable: {0}")]
    Transient(String),
    /// Trying again will not help (bad key, bad request, unusable answers).
    #[error("the AI service refused the request: {0}")]
    Permanent(String),
}

/// A drafted reply with the model that drafted it.
#[derive(Debug, Clone, PartialEq)]
pub struct AiDraft {
    pub draft: ParsedDraft,
    pub model: String,
}

/// Drafts replies with a chat model; `None` inside when no key is configured.
#[derive(Clone)]
pub struct Drafter {
    client: Option<Client<OpenAIConfig>>,
    model: String,
    retries: u32,
}

impl Drafter {
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
        Drafter { client, model: settings.ai_model.clone(), retries: 1 }
    }

    /// Whether a model is configured (otherwise the offline responder drafts).
    pub fn is_configured(&self) -> bool {
        self.client.is_some()
    }

    /// Asks the model for a reply to `history` (oldest first) under `system`.
    pub async fn draft(&self, system: &str, history: &[(Speaker, String)]) -> Result<AiDraft, AiError> {
        let Some(client) = &self.client else { return Err(AiError::Permanent("no AI key is configured".into())) };
        let mut messages: Vec<ChatCompletionRequestMessage> =
            vec![ChatCompletionRequestSystemMessage::from(system).into()];
        for (who, text) in history {
            messages.push(match who {
                Speaker::Customer => ChatCompletionRequestUserMessage::from(text.as_str()).into(),
                Speaker::Shop => ChatCompletionRequestAssistantMessage::from(text.as_str()).into(),
            });
        }
        let request = CreateChatCompletionRequestArgs::default()
            .model(self.model.clone())
            .messages(messages)
            .response_format(ResponseFormat::JsonObject)
            .max_completion_tokens(600u32)
            .temperature(0.2)
            .build()
            .map_err(|e| AiError::Permanent(e.to_string()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = client.chat().create(request.clone()).await;
            let err = match result {
                Ok(resp) => {
                    let content = resp.choices.first().and_then(|c| c.message.content.clone()).unwrap_or_default();
                    match prompt::parse_draft(&content) {
                        Ok(draft) => {
                            metrics::counter!("aisales_ai_requests_total", "outcome" => "ok").increment(1);
                            return Ok(AiDraft { draft, model: resp.model });
                        }
                        Err(e) => AiError::Transient(format!("unusable answer: {e}")),
                    }
                }
                Err(e) => classify(e),
            };
            metrics::counter!("aisales_ai_requests_total", "outcome" => "error").increment(1);
            // async-openai itself retries rate limits and server errors (3 retries with backoff);
            // here only an unusable answer is asked for once more.
            match err {
                AiError::Transient(reason) if reason.starts_with("unusable answer") && attempt <= self.retries => {
                    tracing::debug!(reason = %reason, "asking the model again");
                }
                AiError::Transient(reason) if reason.starts_with("unusable answer") => {
                    return Err(AiError::Permanent(reason));
                }
                other => return Err(other),
            }
        }
    }
}

fn classify(e: OpenAIError) -> AiError {
    match e {
        OpenAIError::ApiError(r) => {
            let status = r.status_code.as_u16();
            let msg = format!("{} {}", status, r.api_error.message);
            if status == 429 || status >= 500 || status == 408 {
                AiError::Transient(msg)
            } else {
                AiError::Permanent(msg)
            }
        }
        OpenAIError::Reqwest(e) => AiError::Transient(e.to_string()),
        OpenAIError::JSONDeserialize(e, _) => AiError::Transient(format!("unreadable response: {e}")),
        other => AiError::Permanent(other.to_string()),
    }
}
