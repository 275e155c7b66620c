//! Stored-media benchmark (`cargo bench --bench media`).
//!
//! Starts `aisales serve`, `aisales projector` and `aisales worker media` as processes on a fresh
//! database, with a GREEN-API account whose media host is a local fake run by the benchmark (it
//! serves a small JPEG, a different file for every message, at each `downloadUrl`). Posts GREEN-API
//! `imageMessage` notifications of distinct customers at a fixed rate (open loop: a request starts
//! every 1/rate seconds whether or not the previous ones have answered), then waits until every
//! photo is stored and reports webhook → stored latency: the `AttachmentStored` event's
//! `recorded_at` minus the moment the webhook was sent. No AI key is given, so photos are stored
//! and thumbnailed but not read: this measures storage.
//!
//! Settings (environment): BENCH_RATE (photos per second, default 100), BENCH_SECONDS (default
//! 10), BENCH_CHATS (distinct customers, default 1000), BENCH_PHOTO_SIDE (the JPEG's longer side in
//! pixels, default 800), BENCH_STORE_TIMEOUT (seconds, default 300), WORKER_CONCURRENCY (passed
//! to the worker, default 16), BENCH_DB_CONNECTIONS (each process's pool, default 8: the database's
//! connections may be shared), BENCH_KEEP_DB=1.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisales::application::channels::{NewAccount, add_account};
use aisales::testkit::TestDb;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use support::{Aisales, Summary, env_or, report};
use uuid::Uuid;

const ID_INSTANCE: &str = "1101000001";

/// The fake media host: one JPEG, made distinct per download by bytes after its end marker
/// (a decoder stops at the marker; the hash differs).
struct Media {
    jpeg: Vec<u8>,
    downloads: AtomicU64,
}

async fn fake_media_host(media: Arc<Media>) -> anyhow::Result<String> {
    async fn file(State(m): State<Arc<Media>>, Path(name): Path<String>) -> impl IntoResponse {
        m.downloads.fetch_add(1, Ordering::Relaxed);
        let mut bytes = m.jpeg.clone();
        bytes.extend_from_slice(name.as_bytes());
        ([(header::CONTENT_TYPE, "image/jpeg")], bytes)
    }
    let app = axum::Router::new().route("/media/{name}", get(file)).with_state(media);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// A photo-like JPEG (gradients and noise, so it compresses as a photo does), `side` px wide, 3:4.
fn photo(side: u32) -> anyhow::Result<Vec<u8>> {
    let h = side * 3 / 4;
    let img = image::RgbImage::from_fn(side, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 8;
        image::Rgb([(x * 255 / side) as u8, (y * 255 / h) as u8, (((x / 16 + y / 16) % 2) * 96 + n) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)?;
    Ok(out.into_inner())
}

fn notification(n: u64, chats: u64, media_url: &str) -> Value {
    let chat = format!("79{:09}@c.us", n % chats);
    let id = format!("3EB0{n:012X}");
    json!({
        "typeWebhook": "incomingMessageReceived",
        "instanceData": {"idInstance": ID_INSTANCE.parse::<u64>().unwrap(), "wid": "79990000000@c.us", "typeInstance": "v3"},
        "timestamp": Utc::now().timestamp(),
        "idMessage": id,
        "senderData": {"chatId": chat, "chatName": "Иван", "sender": chat, "senderName": "Иван", "senderContactName": ""},
        "messageData": {
            "typeMessage": "imageMessage",
            "fileMessageData": {
                "downloadUrl": format!("{media_url}/media/{id}.jpg"),
                "caption": "",
                "fileName": format!("{id}.jpg"),
                "jpegThumbnail": "",
                "mimeType": "image/jpeg",
                "isAnimated": false,
                "forwardingScore": 0,
                "isForwarded": false
            },
        },
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate: u64 = env_or("BENCH_RATE", 100);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let chats: u64 = env_or("BENCH_CHATS", 1000);
    let side: u32 = env_or("BENCH_PHOTO_SIDE", 800);
    let store_timeout: u64 = env_or("BENCH_STORE_TIMEOUT", 300);
    let concurrency: u32 = env_or("WORKER_CONCURRENCY", 16);
    let db_connections: u32 = env_or("BENCH_DB_CONNECTIONS", 8);
    let db = TestDb::create().await?;
    println!("database {}", db.name);
    let jpeg = photo(side)?;
    let media = Arc::new(Media { jpeg, downloads: AtomicU64::new(0) });
    let media_url = fake_media_host(media.clone()).await?;

    let support::Shop { master_key, pool, state, tenant, .. } = support::shop(&db).await?;
    let account = add_account(
        &state,
        tenant.id,
        NewAccount::GreenApi {
            id_instance: ID_INSTANCE.into(),
            api_token: "bench-green-api-token".into(),
            api_url: Some(media_url.clone()),
            media_url: None,
            label: "MAX".into(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("adding the account: {e:?}"))?;
    let token = {
        let mut conn = pool.acquire().await?;
        aisales::infra::crypto::get(
            &mut conn,
            &state.keys,
            Some(tenant.id),
            &aisales::tenancy::secret_name(account.account.id, "webhook_token"),
        )
        .await?
    };

    let store_dir = support::scratch_dir().join("media");
    let port = support::free_port();
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", support::redis_url()),
        ("REDIS_PREFIX", format!("bench{}", Uuid::now_v7().simple())),
        ("INTEGRATION_SECRETS_MASTER_KEY", master_key.clone()),
        ("HOST", "127.0.0.1".into()),
        ("PORT", port.to_string()),
        ("RATE_LIMIT_WEBHOOK_PER_MINUTE", "0".into()),
        ("DATABASE_MAX_CONNECTIONS", db_connections.to_string()),
        ("WORKER_CONCURRENCY", concurrency.to_string()),
        ("MEDIA_STORE", store_dir.display().to_string()),
    ];
    let with_metrics = |e: &Vec<(&'static str, String)>| {
        let mut e = e.clone();
        e.push(("METRICS_PORT", support::free_port().to_string()));
        e
    };
    let server = Aisales::spawn("server", &["serve"], &env)?;
    let projector = Aisales::spawn("projector", &["projector"], &with_metrics(&env))?;
    let worker = Aisales::spawn("worker-media", &["worker", "media"], &with_metrics(&env))?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    support::wait_healthy(&client, &format!("{base}/health"), Duration::from_secs(60)).await?;
    let url = Arc::new(format!("{base}/webhooks/green-api/{}/{}", tenant.id, account.account.id));
    let token = Arc::new(token);
    let media_url = Arc::new(media_url);

    // Open loop: one notification every 1/rate s, each in its own task; the send time of each.
    let sent_at = Arc::new(Mutex::new(HashMap::<String, DateTime<Utc>>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let total = seconds * rate;
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, token, media_url, sent_at, errors) =
            (client.clone(), url.clone(), token.clone(), media_url.clone(), sent_at.clone(), errors.clone());
        tasks.spawn(async move {
            let body = notification(n, chats, &media_url);
            let id = body["idMessage"].as_str().unwrap_or_default().to_string();
            sent_at.lock().unwrap().insert(id, Utc::now());
            let r = client.post(url.as_str()).bearer_auth(token.as_str()).json(&body).send().await;
            let ok = match r {
                Ok(r) => {
                    let ok = r.status().is_success();
                    let _ = r.bytes().await;
                    ok
                }
                Err(_) => false,
            };
            if !ok {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let offered_in = started.elapsed().as_secs_f64();
    while tasks.join_next().await.is_some() {}

    // Every photo stored (or refused, which would be a failure of the run).
    let waiting = Instant::now();
    let outcomes = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE event_type IN ('AttachmentStored', 'AttachmentRefused')",
        )
        .fetch_one(&pool)
        .await
    };
    loop {
        let done = outcomes(pool.clone()).await?;
        if done as u64 >= total {
            break;
        }
        if waiting.elapsed() > Duration::from_secs(store_timeout) {
            report("photos with an outcome", format!("only {done} of {total} after {store_timeout} s"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_stored_after = started.elapsed().as_secs_f64();
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT r.payload->'MessageReceived'->>'provider_message_id', s.recorded_at \
           FROM events s JOIN events r \
             ON r.aggregate_id = s.aggregate_id AND r.event_type = 'MessageReceived' \
            AND r.payload->'MessageReceived'->>'message_id' = s.payload->'AttachmentStored'->>'message_id' \
          WHERE s.event_type = 'AttachmentStored'",
    )
    .fetch_all(&pool)
    .await?;
    let refused: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'AttachmentRefused'")
        .fetch_one(&pool)
        .await?;
    let objects: i64 = sqlx::query_scalar("SELECT count(*) FROM media_objects WHERE thumbnail_sha256 IS NOT NULL")
        .fetch_one(&pool)
        .await?;
    let sent = sent_at.lock().unwrap().clone();
    let mut latencies: Vec<f64> = rows
        .iter()
        .filter_map(|(id, at)| sent.get(id).map(|s| (*at - *s).num_microseconds().unwrap_or(0) as f64 / 1000.0))
        .collect();
    let first = rows.iter().map(|r| r.1).min();
    let last = rows.iter().map(|r| r.1).max();
    let stored_rate = match (first, last) {
        (Some(a), Some(b)) if b > a => rows.len() as f64 / ((b - a).num_milliseconds() as f64 / 1000.0),
        _ => f64::NAN,
    };

    report(
        "photos offered",
        format!(
            "{total} at {rate}/s over {offered_in:.1} s to {chats} chats; JPEG {} bytes ({side} px); worker concurrency {concurrency}",
            media.jpeg.len()
        ),
    );
    report("webhook errors", errors.load(Ordering::Relaxed));
    report(
        "photos stored / refused",
        format!(
            "{} stored ({objects} originals in media_objects), {refused} refused, {} downloads",
            rows.len(),
            media.downloads.load(Ordering::Relaxed)
        ),
    );
    report("stored rate (first to last stored)", format!("{stored_rate:.1} photos/s"));
    report("webhook → stored", Summary::of(&mut latencies));
    report("time to store every photo", format!("{all_stored_after:.1} s from the first webhook"));
    if let Some((_, peak)) = support::rss_mib(worker.pid()) {
        report("media worker peak RSS", format!("{peak:.0} MiB"));
    }
    server.stop();
    projector.stop();
    worker.stop();
    let _ = std::fs::remove_dir_all(&store_dir);
    pool.close().await;
    support::keep_or_drop(db).await?;
    Ok(())
}
