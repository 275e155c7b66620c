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
            crate::helpers::opened_events(&self.app.pool, Some(conversation), event_type)
                .await
                .into_iter()
                .map(|(_, _, fields)| fields)
                .find(|fields| fields["message_id"] == message)
        })
        .await
    }

    async fn count_all(&self, conversation: &str, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = $2")
            .bind(conversation)
            .bind(event_type)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
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

/// Files in the media store (originals and thumbnails), at any depth.
fn stored_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().flat_map(|e| if e.path().is_dir() { stored_files(&e.path()) } else { vec![e.path()] }).collect()
}

#[tokio::test]
async fn a_photo_downloading_while_its_customer_is_erased_is_not_kept() {
    let e = env(20 * 1024 * 1024).await;
    // The download is answered only after the erasure has finished.
    e.green.set_latency_on("/media/", Duration::from_secs(8));
    let (conversation, message) = e.send_photo("3EB0ERASE1", photo(30)).await;
    eventually(Duration::from_secs(30), "the download has started", || async {
        (!e.green.requests_to("/media/").is_empty()).then_some(())
    })
    .await;
    let started = crate::helpers::opened_events(&e.app.pool, Some(&conversation), "ConversationStarted").await;
    let customer = started[0].2["customer_id"].as_str().unwrap().to_string();
    let r =
        e.app.request(Method::DELETE, &format!("/api/customers/{customer}"), Some(e.t.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert!(
        e.count(&conversation, "AttachmentStored", &message).await == 0,
        "the erasure finished before the download did"
    );

    // The download completes; the worker finds the customer erased, keeps nothing and
    // acknowledges the job (not failed, so never delivered again nor dead-lettered).
    let media = aisales::bus::Kind::Media;
    eventually(Duration::from_secs(40), "the media job acknowledged", || async {
        let mut c = e.app.state.redis.conn();
        let streams = aisales::bus::streams::status(&mut c, &e.app.state.settings.bus.redis_prefix).await.ok()?;
        let s = streams.into_iter().find(|s| s.kind == media)?;
        (s.length >= 1 && s.pending == 0 && s.dead_letters == 0).then_some(())
    })
    .await;
    e.app.drain().await;
    assert_eq!(e.count_all(&conversation, "AttachmentStored").await, 0);
    assert_eq!(e.count_all(&conversation, "AttachmentRefused").await, 0, "nothing recorded, nothing dead-lettered");
    assert_eq!(stored_files(&e.dir), Vec::<std::path::PathBuf>::new(), "no file of the erased customer is kept");
    let objects: i64 = sqlx::query_scalar("SELECT count(*) FROM media_objects WHERE tenant_id = $1")
        .bind(e.t.id)
        .fetch_one(&e.app.pool)
        .await
        .unwrap();
    assert_eq!(objects, 0);
    assert_eq!(e.green.requests_to("/media/").len(), 1, "downloaded once, not again after the erasure");
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
    let suggestions: Vec<String> =
        crate::helpers::opened_events(&e.app.pool, Some(&conversation), "SuggestionGenerated")
            .await
            .into_iter()
            .filter(|(_, _, s)| s["source"] == "template")
            .map(|(_, _, s)| s["text"].as_str().unwrap().to_string())
            .collect();
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

#[tokio::test]
async fn a_media_worker_whose_store_cannot_be_opened_stops_with_a_clear_error() {
    let db = aisales::testkit::TestDb::create().await.unwrap();
    // A directory cannot be made under a regular file.
    let file = std::env::temp_dir().join(format!("aisales-media-not-a-directory-{}", uuid::Uuid::now_v7()));
    std::fs::write(&file, b"a file").unwrap();
    let out = crate::helpers::aisales(&db.url)
        .args(["worker", "media"])
        .env("MEDIA_STORE", file.join("media"))
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the worker must not run without its store: {text}");
    assert!(text.contains("MEDIA_STORE cannot be opened"), "the error names the setting: {text}");
    assert!(!text.contains("panicked"), "a clean error, not a panic: {text}");
}

/// An operator answers with the customer's own stored photo and with a PDF of the shop: the file
/// goes to GREEN-API's `sendFileByUpload` once, also when the sending worker is killed after the
/// provider took the file and before its answer came back (the journal says it went out). A hash
/// the tenant has not stored (another tenant's included) is refused with nothing recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operators_file_reaches_the_customer_exactly_once_even_when_the_sender_is_killed() {
    let green = FakeGreenApi::start().await;
    let dir = std::env::temp_dir().join(format!("aisales-media-test-{}", uuid::Uuid::now_v7()));
    let store = dir.display().to_string();
    let app = app_with(&fast(&[("GREEN_API_URL", green.url()), ("MEDIA_STORE", store.clone())])).await;
    app.start_background_except(&[aisales::bus::Kind::MessageSend]);
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &green).await;
    let e = Env { app, t, green, ai: FakeOpenAi::start().await, path, token, dir };

    let bytes = photo(40);
    let (conversation, message) = e.send_photo("3EB0SEND01", bytes.clone()).await;
    let stored = e.event(&conversation, "AttachmentStored", &message).await;
    let sha = stored["media"]["sha256"].as_str().unwrap().to_string();
    let replies = "/api/conversations/".to_string() + &conversation + "/messages";

    // Refused, nothing recorded: a hash never stored, another tenant as sender, a malformed hash.
    let queued_before = e.count_all(&conversation, "ReplyQueued").await;
    let unknown = aisales::media::sha256_hex(b"never stored");
    let r = e
        .app
        .request(Method::POST, &replies, Some(e.t.owner()))
        .json(&json!({"text": "", "attachment": {"sha256": unknown}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let other = crate::helpers::create_tenant(&e.app.pool, "Другой магазин").await;
    let r = e
        .app
        .request(Method::POST, &replies, Some(other.owner()))
        .json(&json!({"text": "чужое", "attachment": {"sha256": sha}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "another tenant cannot send into this conversation");
    let r = e
        .app
        .request(Method::POST, &replies, Some(e.t.owner()))
        .json(&json!({"text": "x", "attachment": {"sha256": "../../etc/passwd"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(e.count_all(&conversation, "ReplyQueued").await, queued_before, "nothing recorded");

    // The provider takes the file, but its answer never reaches the worker: it is killed first.
    e.green.hang_next(Duration::from_secs(60));
    let worker = || {
        let mut cmd = e.app.command(&[("MEDIA_STORE", store.as_str())]);
        cmd.args(["worker", "message-send"]);
        cmd
    };
    let mut first = crate::helpers::ChildGuard::spawn(worker());
    let caption = "Это ваш СТС? Подберём коробку по нему";
    let r = e
        .app
        .request(Method::POST, &replies, Some(e.t.owner()))
        .json(&json!({"text": caption, "attachment": {"sha256": sha, "file_name": "sts.jpg"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let queued: Value =
        crate::helpers::opened_events(&e.app.pool, Some(&conversation), "ReplyQueued").await.pop().unwrap().2;
    assert_eq!(queued["attachment"]["sha256"], sha.as_str(), "the reply event names the file: {queued}");
    assert_eq!(queued["attachment"]["mime_type"], "image/jpeg");
    assert_eq!(queued["text"], caption);
    eventually(Duration::from_secs(30), "the provider to take the file", || async {
        (e.green.sent_files().len() == 1).then_some(())
    })
    .await;
    first.kill();

    // A new worker finds the file in the provider's journal and records it without sending again.
    let _second = crate::helpers::ChildGuard::spawn(worker());
    let sent = crate::helpers::outbound(&e.app, e.t.owner(), &conversation, "sent").await;
    let files = e.green.sent_files();
    assert_eq!(files.len(), 1, "exactly one upload");
    assert_eq!(sent["provider_message_id"], files[0].id_message.as_str());
    assert_eq!(files[0].chat_id, CHAT);
    assert_eq!(files[0].file_name, "sts.jpg");
    assert_eq!(files[0].caption, caption);
    assert_eq!(files[0].bytes, bytes, "the stored file itself");
    let reconciled: bool = sqlx::query_scalar(
        "SELECT (payload->'ReplySent'->>'reconciled')::boolean FROM events WHERE aggregate_id = $1 AND event_type = 'ReplySent'",
    )
    .bind(&conversation)
    .fetch_one(&e.app.pool)
    .await
    .unwrap();
    assert!(reconciled, "recorded from the provider's journal, not sent again");

    // A file without a caption, sent normally, also once.
    let r = e
        .app
        .request(Method::POST, &replies, Some(e.t.owner()))
        .json(&json!({"attachment": {"sha256": sha}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    eventually(Duration::from_secs(30), "the second file", || async {
        (e.green.sent_files().len() == 2).then_some(())
    })
    .await;
    let second = &e.green.sent_files()[1];
    assert_eq!(second.caption, "");
    assert_eq!(second.file_name, format!("{}.jpg", &sha[..12]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(e.green.sent_files().len(), 2, "each file sent once");
    assert_eq!(e.green.sent_messages().len(), 2, "and nothing else");
}

/// Telegram gets a photo through `sendPhoto` and any other file through `sendDocument`
/// (multipart); WhatsApp Cloud gets the file uploaded to `/{phone_number_id}/media` and then an
/// `image` or `document` message naming the uploaded id. Each file once, with its caption.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_go_to_telegram_as_photo_or_document_and_to_whatsapp_by_uploaded_media_id() {
    use crate::fakes::telegram::{FakeTelegram, telegram_text_update};
    use crate::fakes::whatsapp::{FakeWhatsApp, whatsapp_signature, whatsapp_text_webhook};
    let green = FakeGreenApi::start().await;
    let telegram = FakeTelegram::start().await;
    let whatsapp = FakeWhatsApp::start().await;
    let dir = std::env::temp_dir().join(format!("aisales-media-test-{}", uuid::Uuid::now_v7()));
    let app = app_with(&fast(&[
        ("GREEN_API_URL", green.url()),
        ("TELEGRAM_API_URL", telegram.url()),
        ("WHATSAPP_API_URL", whatsapp.api_url()),
        ("MEDIA_STORE", dir.display().to_string()),
    ]))
    .await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &green).await;
    let e = Env { app, t, green, ai: FakeOpenAi::start().await, path, token, dir };

    // Two files of the shop's store: a photo and a PDF (as customers sent them on MAX).
    let jpeg = photo(70);
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec();
    let (c, m1) = e.send_photo("3EB0FILE01", jpeg.clone()).await;
    let photo_sha = e.event(&c, "AttachmentStored", &m1).await["media"]["sha256"].as_str().unwrap().to_string();
    let (c, m2) = e.send_photo("3EB0FILE02", pdf.clone()).await;
    let stored = e.event(&c, "AttachmentStored", &m2).await;
    assert_eq!(stored["media"]["mime_type"], "application/pdf");
    let pdf_sha = stored["media"]["sha256"].as_str().unwrap().to_string();

    // A Telegram customer and a WhatsApp customer write.
    let acc = e
        .app
        .post_json("/api/channels", e.t.owner(), json!({"kind": "telegram", "bot_token": FakeTelegram::TOKEN}))
        .await;
    let webhook_secret = crate::helpers::secret(&e.app, e.t.id, acc["id"].as_str().unwrap(), "webhook_secret").await;
    let r = e
        .app
        .client
        .post(format!("{}/webhooks/telegram/{}", e.app.address, e.t.id))
        .header("x-telegram-bot-api-secret-token", &webhook_secret)
        .json(&telegram_text_update(3001, 555333, 555333, "Пётр", 9, "Пришлите фото коробки"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    let tg = answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();
    e.app
        .post_json(
            "/api/channels",
            e.t.owner(),
            json!({"kind": "whatsapp", "phone_number_id": FakeWhatsApp::PHONE_NUMBER_ID, "access_token": FakeWhatsApp::ACCESS_TOKEN,
                   "app_secret": "app-secret-123", "verify_token": "verify-me"}),
        )
        .await;
    let body = serde_json::to_vec(&whatsapp_text_webhook(
        FakeWhatsApp::PHONE_NUMBER_ID,
        "79161234567",
        "Анна",
        "wamid.HBgLFILE1",
        "Пришлите счёт",
    ))
    .unwrap();
    let r = e
        .app
        .client
        .post(format!("{}/webhooks/whatsapp/{}", e.app.address, e.t.id))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", whatsapp_signature(&body, "app-secret-123"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    let wa = answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();

    let send = |conversation: String, body: Value| {
        let e = &e;
        async move {
            e.app.post_json(&format!("/api/conversations/{conversation}/messages"), e.t.owner(), body).await;
        }
    };
    send(tg.clone(), json!({"text": "Вот фото", "attachment": {"sha256": photo_sha}})).await;
    send(tg.clone(), json!({"text": "", "attachment": {"sha256": pdf_sha, "file_name": "schet.pdf"}})).await;
    send(wa.clone(), json!({"text": "Фото коробки", "attachment": {"sha256": photo_sha}})).await;
    send(wa.clone(), json!({"text": "Счёт", "attachment": {"sha256": pdf_sha, "file_name": "schet.pdf"}})).await;
    eventually(Duration::from_secs(30), "four files sent", || async {
        (telegram.sent_files().len() == 2 && whatsapp.sent_files().len() == 2).then_some(())
    })
    .await;

    let mut tg_files = telegram.sent_files();
    tg_files.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(tg_files[0].0, "sendDocument");
    assert_eq!((tg_files[0].1, tg_files[0].2.as_str(), tg_files[0].3.as_str()), (555333, "schet.pdf", ""));
    assert_eq!(tg_files[0].4, pdf);
    assert_eq!(tg_files[1].0, "sendPhoto");
    assert_eq!((tg_files[1].1, tg_files[1].3.as_str()), (555333, "Вот фото"));
    assert_eq!(tg_files[1].4, jpeg);

    let mut wa_files = whatsapp.sent_files();
    wa_files.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(wa_files[0].0, "79161234567");
    assert_eq!((wa_files[0].1.as_str(), wa_files[0].2.as_str()), ("document", "Счёт"));
    assert_eq!(wa_files[0].3.as_deref(), Some("schet.pdf"));
    assert_eq!(wa_files[0].4, pdf);
    assert_eq!(
        (wa_files[1].1.as_str(), wa_files[1].2.as_str(), wa_files[1].3.as_deref()),
        ("image", "Фото коробки", None)
    );
    assert_eq!(wa_files[1].4, jpeg);
    assert_eq!(whatsapp.uploads(), 2, "one upload per file");

    for conversation in [&tg, &wa] {
        eventually(Duration::from_secs(30), "both replies recorded as sent", || async {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'ReplySent'")
                    .bind(conversation)
                    .fetch_one(&e.app.pool)
                    .await
                    .unwrap();
            (n == 2).then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(telegram.sent_files().len() + whatsapp.sent_files().len(), 4, "each file once");
}
