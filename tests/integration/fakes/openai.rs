//! A fake OpenAI API: `POST /v1/chat/completions` answering real `chat.completion` objects whose
//! message content comes from a scripted queue, and OpenAI error bodies.

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::{Value, json};

use super::{FakeServer, Handler, RecordedRequest, Reply, lock, next_seq};

struct OpenAiState {
    replies: VecDeque<String>,
    /// Answers to requests carrying an image (vision), apart from the drafting queue.
    vision_replies: VecDeque<String>,
    default_reply: String,
}

/// A fake OpenAI-compatible API.
pub struct FakeOpenAi {
    server: FakeServer,
    state: Arc<Mutex<OpenAiState>>,
}

impl Deref for FakeOpenAi {
    type Target = FakeServer;

    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

impl FakeOpenAi {
    /// The API key the fake accepts.
    pub const API_KEY: &'static str = "sk-test-0000000000000000000000000000000000000000";
    /// The reply when the queue is empty.
    pub const DEFAULT_REPLY: &'static str =
        r#"{"reply":"Здравствуйте! Подскажите, пожалуйста, VIN или марку, модель и год автомобиля.","confidence":0.5}"#;

    pub async fn start() -> FakeOpenAi {
        let state = Arc::new(Mutex::new(OpenAiState {
            replies: VecDeque::new(),
            vision_replies: VecDeque::new(),
            default_reply: Self::DEFAULT_REPLY.into(),
        }));
        let handler_state = state.clone();
        let handler: Handler = Arc::new(move |req| handle(&handler_state, req));
        FakeOpenAi { server: FakeServer::start(handler).await, state }
    }

    /// The base URL including `/v1`, as `AI_INTEGRATIONS_OPENAI_BASE_URL` takes it.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// Queues the content of a later completion (typically JSON text).
    pub fn push_reply(&self, content: impl Into<String>) {
        lock(&self.state).replies.push_back(content.into());
    }

    /// Queues the content of a later completion of a request that carries an image (the vision
    /// reading of a photo); requests without one keep using [`FakeOpenAi::push_reply`]'s queue.
    pub fn push_vision_reply(&self, content: impl Into<String>) {
        lock(&self.state).vision_replies.push_back(content.into());
    }

    /// The content answered when the queue is empty.
    pub fn set_default_reply(&self, content: impl Into<String>) {
        lock(&self.state).default_reply = content.into();
    }

    /// The JSON bodies of the chat completion requests received, oldest first.
    pub fn completion_requests(&self) -> Vec<Value> {
        self.requests_to("/chat/completions").into_iter().map(|r| r.body).collect()
    }

    /// The next `n` calls fail with OpenAI's error for `status` ([`FakeOpenAi::error`]).
    pub fn fail_next_status(&self, n: usize, status: u16) {
        self.fail_next(n, Self::error(status));
    }

    /// OpenAI's error answers: 401 `invalid_api_key`, 429 `rate_limit_exceeded` (with
    /// `retry-after`), 500 `server_error`, 503 overloaded.
    pub fn error(status: u16) -> Reply {
        let body = |message: &str, kind: &str, code: Value| json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
        match status {
            401 => Reply::json(
                401,
                body("Incorrect API key provided: sk-wrong. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", json!("invalid_api_key")),
            ),
            429 => Reply::json(
                429,
                body("Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.", "requests", json!("rate_limit_exceeded")),
            )
            .with_header("retry-after", "20"),
            503 => Reply::json(503, body("The engine is currently overloaded, please try again later", "server_error", Value::Null)),
            other => Reply::json(
                other,
                body("The server had an error while processing your request. Sorry about that!", "server_error", Value::Null),
            ),
        }
    }
}

fn handle(state: &Mutex<OpenAiState>, req: &RecordedRequest) -> Reply {
    if req.path != "/v1/chat/completions" || req.method != "POST" {
        let message = format!("Invalid URL ({} {})", req.method, req.path);
        return Reply::json(
            404,
            json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}),
        );
    }
    if req.header("authorization") != Some(&format!("Bearer {}", FakeOpenAi::API_KEY)) {
        return FakeOpenAi::error(401);
    }
    let invalid = |message: &str, param: &str| {
        Reply::json(
            400,
            json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": null}}),
        )
    };
    let Some(model) = req.body.get("model").and_then(Value::as_str) else {
        return invalid("you must provide a model parameter", "model");
    };
    let Some(messages) = req.body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()) else {
        return invalid("[] is too short - 'messages'", "messages");
    };
    let content = {
        let mut state = lock(state);
        let vision = messages.iter().any(|m| m.to_string().contains("\"image_url\""));
        let queued = if vision { state.vision_replies.pop_front() } else { state.replies.pop_front() };
        queued.unwrap_or_else(|| state.default_reply.clone())
    };
    let prompt_chars: usize = messages.iter().map(|m| m.to_string().chars().count()).sum();
    let prompt_tokens = (prompt_chars / 4).max(1);
    let completion_tokens = (content.chars().count() / 4).max(1);
    Reply::json(
        200,
        json!({
            "id": format!("chatcmpl-fake{:016}", next_seq()),
            "object": "chat.completion",
            "created": Utc::now().timestamp(),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake0000",
        }),
    )
}
