//! Customers' photos end to end: a GREEN-API `imageMessage` webhook, the file downloaded from the
//! fake's `downloadUrl` (after a failed first try) and stored, the fake vision model reading a
//! registration document, the vehicle lookup asked for, and the photo served through a signed
//! link only to its tenant and only until the link expires. Faults: a file over the limit, an
//! answer that is not JSON, a misread VIN corrected through the look-alike pairs and one that
//! cannot be.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_image};
use crate::fakes::{FakeOpenAi, Reply};
use crate::helpers::{TestApp, TestTenant, app_with, eventually, fast, green_account, post_green, tenant};

const CHAT: &str = "79161234567@c.us";

struct Env {
    app: TestApp,
    t: TestTenant,
    green: FakeGreenApi,
    ai: FakeOpenAi,
    path: String,
    token: String,
    dir: std::path::PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn env(max_bytes: u64) -> Env {
    let green = FakeGreenApi::start().await;
    let ai = FakeOpenAi::start().await;
    let dir = std::env::temp_dir().join(format!("aisales-media-test-{}", uuid::Uuid::now_v7()));
    let app = app_with(&fast(&[
        ("GREEN_API_URL", green.url()),
        ("AI_INTEGRATIONS_OPENAI_API_KEY", FakeOpenAi::API_KEY.into()),
        ("AI_INTEGRATIONS_OPENAI_BASE_URL", ai.base_url()),
        ("MEDIA_STORE", dir.display().to_string()),
        ("MEDIA_MAX_BYTES", max_bytes.to_string()),
    ]))
    .await;
    // The lookup itself needs a browser; here it is enough that it is asked for.
    app.start_background_except(&[aisales::bus::Kind::VehicleLookup]);
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &green).await;
    Env { app, t, green, ai, path, token, dir }
}

/// A small JPEG photo (`shade` makes each one a different file).
fn photo(shade: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([shade, (x % 256) as u8, (y % 256) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

impl Env {
    /// Posts a photo message; returns (conversation id, message id).
    async fn send_photo(&self, id: &str, bytes: Vec<u8>) -> (String, String) {
        let url = self.green.put_file(&format!("{id}.jpg"), bytes, "image/jpeg");
        let body = green_api_incoming_image(FakeGreenApi::ID_INSTANCE, CHAT, id, &url, "image/jpeg");
        let r = post_green(&self.app, &self.path, &self.token, &body).await;
        assert_eq!(r.status(), StatusCode::OK);
        let answer: Value = r.json().await.unwrap();
        let conversation = answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();
        let message: String = sqlx::query_scalar(
            "SELECT payload->'MessageReceived'->>'message_id' FROM events \
              WHERE aggregate_id = $1 AND event_type = 'MessageReceived' \
                AND payload->'MessageReceived'->>'provider_message_id' = $2",
        )
        .bind(&conversation)
        .bind(id)
        .fetch_one(&self.app.pool)
        .await
        .unwrap();
        (conversation, message)
    }

    /// The payload of the conversation's event `event_type` about `message`, once it exists.
    async fn event(&self, conversation: &str, event_type: &str, message: &str) -> Value {
        eventually(Duration::from_secs(30), &format!("{event_type} of {message}"), || async {
            sqlx::query_scalar::<_, Value>(
                "SELECT payload->$2 FROM events WHERE aggregate_id = $1 AND event_type = $2 \
                  AND payload->$2->>'message_id' = $3 ORDER BY sequence LIMIT 1",
            )
            .bind(conversation)
            .bind(event_type)
            .bind(message)
            .fetch_optional(&self.app.pool)
            .await
            .unwrap()
        })
        .await
    }

    async fn count(&self, conversation: &str, event_type: &str, message: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = $2 \
              AND payload->$2->>'message_id' = $3",
        )
        .bind(conversation)
        .bind(event_type)
        .bind(message)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn a_photographed_registration_document_is_stored_read_looked_up_and_served_by_signed_link() {
    let e = env(20 * 1024 * 1024).await;
    e.ai.push_vision_reply(
        json!({"type": "registration_document", "readable": true, "confidence": 0.95, "vin": "1HGCM82633A004352", "frame": null})
            .to_string(),
    );
    // The provider's storage fails the first download; the worker tries again.
    e.green.fail_next_on("/media/", 1, Reply::text(502, "Bad Gateway"));
    let bytes = photo(10);
    let (conversation, message) = e.send_photo("3EB0C7A1F2", bytes.clone()).await;

    let stored = e.event(&conversation, "AttachmentStored", &message).await;
    assert_eq!(e.green.requests_to("/media/").len(), 2, "one failed download, one retry");
    let sha = stored["media"]["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha, aisales::media::sha256_hex(&bytes));
    assert_eq!(stored["media"]["mime_type"], "image/jpeg");
    assert_eq!(stored["media"]["size"], bytes.len() as u64);
    assert!(stored["media"]["thumbnail_sha256"].is_string());

    let read = e.event(&conversation, "PhotoRead", &message).await;
    assert_eq!(read["index"], 0);
    assert_eq!(read["sha256"], sha.as_str());
    assert_eq!(read["reading"]["kind"], "registration_document");
    assert_eq!(read["reading"]["confidence"], 0.95);
    assert_eq!(read["reading"]["candidates"][0]["value"], "1HGCM82633A004352");
    // The vision request carried the stored photo.
    let requests = e.ai.completion_requests();
    assert!(requests.iter().any(|r| r.to_string().contains("data:image/jpeg;base64,")));

    let detected = e.event(&conversation, "VehicleIdDetected", &message).await;
    assert_eq!(detected["value"], "1HGCM82633A004352");
    assert!(detected["reasons"].as_array().unwrap().iter().any(|r| r == "ocr_registration_doc"));
    let lookup = e.event(&conversation, "VehicleLookupRequested", &message).await;
    assert_eq!(lookup["requested_by"], "photo");
    let job_id = format!("vehicle-request:{}", lookup["request_id"].as_str().unwrap());
    eventually(Duration::from_secs(30), "the vehicle lookup job", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM work_items WHERE kind = 'vehicle-lookup' AND job_id = $1")
                .bind(&job_id)
                .fetch_one(&e.app.pool)
                .await
                .unwrap();
        (n == 1).then_some(())
    })
    .await;
    assert_eq!(e.count(&conversation, "AttachmentStored", &message).await, 1, "stored once");
    assert_eq!(e.count(&conversation, "PhotoRead", &message).await, 1, "read once");

    // The photo through its signed link: the owner sees it, another tenant does not.
    let media = e.app.get_json(&format!("/api/media/{sha}"), e.t.owner()).await;
    let url = media["url"].as_str().unwrap();
    let r = e.app.request(Method::GET, url, Some(e.t.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let thumb = e.app.request(Method::GET, media["thumbnail_url"].as_str().unwrap(), Some(e.t.owner())).send().await;
    assert_eq!(thumb.unwrap().status(), StatusCode::OK);
    let other = crate::helpers::create_tenant(&e.app.pool, "Другой магазин").await;
    let r = e.app.request(Method::GET, url, Some(other.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = e.app.request(Method::GET, &format!("/api/media/{sha}"), Some(other.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = e.app.request(Method::GET, url, None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a link is never public");
    // An expired link (signed as the server signs, an hour ago).
    use secrecy::ExposeSecret;
    let signer = aisales::media::sign::LinkSigner::new(e.app.state.settings.session_secret.expose_secret().as_bytes());
    let past = chrono::Utc::now().timestamp() - 3600;
    let expired = format!(
        "/api/media/{sha}/file?tenant={}&variant=original&expires={past}&signature={}",
        e.t.id,
        signer.sign(e.t.id, &sha, "original", past)
    );
    let r = e.app.request(Method::GET, &expired, Some(e.t.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let tampered = url.replace("variant=original", "variant=thumbnail");
    let r = e.app.request(Method::GET, &tampered, Some(e.t.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn oversized_files_unreadable_answers_and_misread_vins() {
    let e = env(200_000).await;

    // Over the limit: refused, nothing stored, nothing read.
    let mut big = vec![0xFF, 0xD8, 0xFF, 0xE0];
    big.extend((0..300_000u32).map(|i| (i % 251) as u8));
    let (conversation, m1) = e.send_photo("BIG0000001", big.clone()).await;
    let refused = e.event(&conversation, "AttachmentRefused", &m1).await;
    assert_eq!(refused["reason"], "too_large");
    let sha = aisales::media::sha256_hex(&big);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM media_objects WHERE sha256 = $1")
        .bind(&sha)
        .fetch_one(&e.app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    assert!(!e.dir.join(e.t.id.to_string()).join(&sha[..2]).join(&sha).exists(), "nothing of it is kept");

    // An answer that is not JSON: the photo is marked not read, nothing is guessed.
    e.ai.push_vision_reply("Looks like a registration certificate, VIN 1HGCM82633A004352.");
    let (_, m2) = e.send_photo("TXT0000002", photo(20)).await;
    let not_read = e.event(&conversation, "PhotoNotRead", &m2).await;
    assert_eq!(not_read["reason"], "invalid_answer");

    // A VIN misread (B for 8): corrected through the look-alike pairs, then looked up.
    e.ai.push_vision_reply(
        json!({"type": "registration_document", "readable": true, "vin": "1HGCMB2633A004352"}).to_string(),
    );
    let (_, m3) = e.send_photo("FIX0000003", photo(30)).await;
    let read = e.event(&conversation, "PhotoRead", &m3).await;
    let reasons = read["reading"]["candidates"][0]["reasons"].as_array().unwrap().clone();
    assert!(reasons.iter().any(|r| r == "autocorrect:pos6:B>8"), "{reasons:?}");
    let detected = e.event(&conversation, "VehicleIdDetected", &m3).await;
    assert_eq!(detected["value"], "1HGCM82633A004352");

    // A VIN no single look-alike explains: flagged, not looked up, a clearer photo asked for.
    e.ai.push_vision_reply(json!({"type": "vin_plate", "readable": true, "vin": "1HGCM82633A004353"}).to_string());
    let (_, m4) = e.send_photo("BAD0000004", photo(40)).await;
    let read = e.event(&conversation, "PhotoRead", &m4).await;
    assert!(read["reading"]["flags"].as_array().unwrap().iter().any(|f| f == "vin_check_digit_invalid"));
    // The reading and what it starts are one command: no lookup followed it.
    assert_eq!(e.count(&conversation, "VehicleIdDetected", &m4).await, 0);
    assert_eq!(e.count(&conversation, "VehicleIdDetected", &m2).await, 0);
    let suggestions: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'SuggestionGenerated'->>'text' FROM events WHERE aggregate_id = $1 \
          AND event_type = 'SuggestionGenerated' AND payload->'SuggestionGenerated'->>'source' = 'template'",
    )
    .bind(&conversation)
    .fetch_all(&e.app.pool)
    .await
    .unwrap();
    assert!(suggestions.iter().any(|s| s.contains("чёткое фото")), "{suggestions:?}");
}

#[tokio::test]
async fn without_an_ai_key_photos_are_stored_and_marked_not_read() {
    let green = FakeGreenApi::start().await;
    let dir = std::env::temp_dir().join(format!("aisales-media-test-{}", uuid::Uuid::now_v7()));
    let app = app_with(&fast(&[("GREEN_API_URL", green.url()), ("MEDIA_STORE", dir.display().to_string())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &green).await;
    let e = Env { ai: FakeOpenAi::start().await, app, t, green, path, token, dir };
    let (conversation, message) = e.send_photo("NOKEY00001", photo(50)).await;
    e.event(&conversation, "AttachmentStored", &message).await;
    let not_read = e.event(&conversation, "PhotoNotRead", &message).await;
    assert_eq!(not_read["reason"], "no_ai_key");
    assert!(!e.ai.completion_requests().iter().any(|r| r.to_string().contains("image_url")));
}
