//! Lead form webhooks: `POST /webhooks/leads/{form_id}/{secret}` (the URL `aisales lead-form add`
//! prints). The secret is checked first (401, nothing stored), then the body is read (400 and
//! nothing stored when it cannot be), then the lead is stored before the answer (2xx).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use uuid::Uuid;

use crate::application::leads::{self, FormPost, PostError};
use crate::http::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/leads/{form_id}/{secret}", post(lead_form))
        .route("/webhooks/leads/{form_id}", post(|| async { Err::<Response, _>(unauthorized()) }))
}

fn unauthorized() -> ApiError {
    ApiError::invalid_with_status(StatusCode::UNAUTHORIZED, "webhook_unauthorized", "the form's secret is wrong")
}

fn unreadable(message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_form_body", format!("the form body cannot be read: {}", message.into()))
}

/// Decodes `application/x-www-form-urlencoded` pairs (`+` is a space; bad escapes are kept).
pub fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    fn decode(s: &[u8]) -> Result<String, String> {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    // Two hex digits exactly (`%+1` is no escape).
                    let digit = |b: u8| char::from(b).to_digit(16);
                    let hex = digit(s[i + 1]).zip(digit(s[i + 2])).map(|(h, l)| (h * 16 + l) as u8);
                    match hex {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|_| "the form fields are not UTF-8".to_string())
    }
    let mut pairs = Vec::new();
    for part in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &[][..]),
        };
        pairs.push((decode(k)?, decode(v)?));
    }
    Ok(pairs)
}

fn read_body(headers: &HeaderMap, body: &[u8]) -> Result<FormPost, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return form_pairs(body).map(FormPost::Fields).map_err(unreadable);
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => Ok(FormPost::Json(v)),
        Err(_) if !content_type.contains("json") && body.contains(&b'=') => {
            form_pairs(body).map(FormPost::Fields).map_err(unreadable)
        }
        Err(e) => Err(unreadable(format!("not JSON ({e})"))),
    }
}

/// `POST /webhooks/leads/{form_id}/{secret}`.
async fn lead_form(
    State(state): State<AppState>,
    Path((form_id, secret)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let form_id: Uuid = form_id.parse().map_err(|_| unauthorized())?;
    let form = leads::authenticate(&state, form_id, &secret).await.map_err(|e| match e {
        PostError::Unauthorized => unauthorized(),
        PostError::Unreadable(m) => unreadable(m),
        PostError::Unexpected(e) => ApiError::Unexpected(e),
    })?;
    let post = read_body(&headers, &body)?;
    let posted = leads::post(&state, &form, post).await.map_err(|e| match e {
        PostError::Unauthorized => unauthorized(),
        PostError::Unreadable(m) => unreadable(m),
        PostError::Unexpected(e) => ApiError::Unexpected(e),
    })?;
    metrics::histogram!("aisales_lead_post_seconds", "source" => form.kind.as_str())
        .record(started.elapsed().as_secs_f64());
    let status = if posted.outcome == "received" { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(posted)).into_response())
}

#[cfg(test)]
mod tests {
    use super::form_pairs;

    #[test]
    fn tilda_fields_are_decoded() {
        let pairs = form_pairs("Name=%D0%98%D0%B2%D0%B0%D0%BD&Phone=%2B7+999+123-45-67&test".as_bytes()).unwrap();
        assert_eq!(
            pairs,
            [
                ("Name".to_string(), "Иван".to_string()),
                ("Phone".to_string(), "+7 999 123-45-67".to_string()),
                ("test".to_string(), String::new())
            ]
        );
        assert_eq!(form_pairs(b"a=100%").unwrap(), [("a".to_string(), "100%".to_string())]);
        assert_eq!(
            form_pairs(b"a=%+1&b=%-f&c=%zz&d=%4").unwrap(),
            [
                ("a".to_string(), "% 1".to_string()),
                ("b".to_string(), "%-f".to_string()),
                ("c".to_string(), "%zz".to_string()),
                ("d".to_string(), "%4".to_string())
            ]
        );
    }
}
