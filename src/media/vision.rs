//! Reading photos with an OpenAI-compatible vision model through async-openai (the same client
//! and base URL as drafting). The model is asked to classify the photo and copy the codes it
//! shows as JSON; [`aisales_domain::media::read_photo`] turns the answer into candidates.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestMessageContentPartImage, ChatCompletionRequestMessageContentPartText,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage, ChatCompletionRequestUserMessageContent,
    ChatCompletionRequestUserMessageContentPart, CreateChatCompletionRequestArgs, ImageDetail, ImageUrl,
    ResponseFormat,
};
use base64::Engine;
use secrecy::ExposeSecret;

use crate::config::Settings;

const PROMPT: &str = "You read photos customers of a used-gearbox shop send. Classify the photo and copy what it shows. \
Answer with one JSON object only: {\"type\": \"gearbox_tag\" | \"registration_document\" | \"vin_plate\" | \"other\", \
\"readable\": true|false, \"confidence\": 0..1, \"vin\": string|null, \"frame\": string|null, \"code\": string|null}. \
gearbox_tag: the tag or plate on a gearbox; code is the model code only (the tag may be mirrored or upside down; ignore \
serial numbers of 5+ digits). registration_document: a Russian СТС or ПТС; vin is the VIN field (if it says ОТСУТСТВУЕТ, \
give the body number as frame). vin_plate: a VIN plate or a VIN stamped on the body. Copy characters exactly as printed; \
never complete or guess a character. If the photo is blurred, cut off or glared so a code cannot be read exactly, set \
readable to false.";

/// Why the model could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("the vision model is unavailable: {0}")]
    Unavailable(String),
}

/// The vision client; `None` inside when no AI key is configured.
#[derive(Clone)]
pub struct Vision {
    client: Option<Client<OpenAIConfig>>,
    model: String,
}

impl Vision {
    pub fn from_settings(settings: &Settings) -> Self {
        let client = settings.openai_api_key.as_ref().map(|key| {
            let cfg = OpenAIConfig::new()
                .with_api_base(settings.openai_base_url.clone())
                .with_api_key(key.expose_secret().to_string());
            let http = reqwest::Client::builder()
                .timeout(settings.ai_timeout)
                .connect_timeout(std::time::Duration::from_secs(5))
                .build()
                .expect("HTTP client builds");
            Client::build(http, cfg)
        });
        Vision { client, model: settings.media.vision_model.clone() }
    }

    pub fn is_configured(&self) -> bool {
        self.client.is_some()
    }

    /// Asks the model about one image; returns its message content (JSON, if it obeyed).
    pub async fn read(&self, bytes: &[u8], mime_type: &str) -> Result<String, VisionError> {
        let Some(client) = &self.client else { return Err(VisionError::Unavailable("no AI key".into())) };
        let data_url = format!("data:{mime_type};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes));
        let user = ChatCompletionRequestUserMessage {
            content: ChatCompletionRequestUserMessageContent::Array(vec![
                ChatCompletionRequestUserMessageContentPart::Text(ChatCompletionRequestMessageContentPartText {
                    text: "What does this photo show? Answer with the JSON object.".into(),
                    prompt_cache_breakpoint: None,
                }),
                ChatCompletionRequestUserMessageContentPart::ImageUrl(ChatCompletionRequestMessageContentPartImage {
                    image_url: ImageUrl { url: data_url, detail: Some(ImageDetail::High) },
                    prompt_cache_breakpoint: None,
                }),
            ]),
            name: None,
        };
        let request = CreateChatCompletionRequestArgs::default()
            .model(self.model.clone())
            .messages(vec![ChatCompletionRequestSystemMessage::from(PROMPT).into(), user.into()])
            .response_format(ResponseFormat::JsonObject)
            .max_completion_tokens(200u32)
            .temperature(0.0)
            .build()
            .map_err(|e| VisionError::Unavailable(e.to_string()))?;
        let resp = client.chat().create(request).await.map_err(|e| {
            metrics::counter!("aisales_vision_requests_total", "outcome" => "error").increment(1);
            VisionError::Unavailable(e.to_string())
        })?;
        metrics::counter!("aisales_vision_requests_total", "outcome" => "ok").increment(1);
        Ok(resp.choices.first().and_then(|c| c.message.content.clone()).unwrap_or_default())
    }
}
