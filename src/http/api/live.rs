//! `GET /api/events/stream`: server-sent events of read-model changes for the caller's tenant.
//!
//! Each event's id is the change's id in `read_model_changes`; a client that reconnects with
//! `Last-Event-ID` receives everything after it (changes are kept for a day; an unknown or pruned id
//! gets a `reset` event telling the client to reload). Heartbeat comments every 15 s keep proxies
//! from closing the connection. One `LISTEN` and one reader per process serve every open stream
//! (see [`read_changes`]); a stream is re-authorised while it runs and capped per credential and
//! tenant (docs/security.md).
//!
//! Changes are written by several projectors in concurrent transactions, so ids do not commit in
//! order. The stream reads in `(tx_id, id)` order and never past the oldest transaction still in
//! flight (as the event reader does), which is why no change is ever skipped; the cursor is the
//! `(tx_id, id)` of the last change sent, found again from its id on resume.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::Deserialize;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::Caller;
use crate::http::{ApiError, ApiQuery, AppState};

/// Wakes open streams when the projectors record changes, and counts them.
#[derive(Clone, Default)]
pub struct ChangeFeed {
    rx: std::sync::Arc<tokio::sync::OnceCell<watch::Receiver<u64>>>,
    open: Arc<Mutex<OpenStreams>>,
    batches: Arc<tokio::sync::OnceCell<Batches>>,
}

/// Open streams of this process, per credential (a digest of the token or session cookie) and per
/// tenant.
#[derive(Default)]
struct OpenStreams {
    per_credential: HashMap<Vec<u8>, u32>,
    per_tenant: HashMap<Uuid, u32>,
}

/// One open stream's place in the counts, given back when the stream ends.
struct Slot {
    open: Arc<Mutex<OpenStreams>>,
    credential: Vec<u8>,
    tenant: Uuid,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let release = |n: Option<&mut u32>| n.map(|n| *n = n.saturating_sub(1)).is_some();
        if release(open.per_credential.get_mut(&self.credential)) && open.per_credential[&self.credential] == 0 {
            open.per_credential.remove(&self.credential);
        }
        if release(open.per_tenant.get_mut(&self.tenant)) && open.per_tenant[&self.tenant] == 0 {
            open.per_tenant.remove(&self.tenant);
        }
        metrics::gauge!("aisales_event_streams_open").decrement(1.0);
    }
}

impl ChangeFeed {
    /// Subscribes to the process's one reader of changes (started on first use).
    async fn reader(&self, pool: &sqlx::PgPool) -> tokio::sync::broadcast::Receiver<Arc<Vec<Change>>> {
        let wake = self.subscribe(pool).await;
        self.batches
            .get_or_init(|| async {
                let (tx, _) = tokio::sync::broadcast::channel(256);
                tokio::spawn(read_changes(pool.clone(), wake, tx.clone()));
                tx
            })
            .await
            .subscribe()
    }

    /// Takes a place for a new stream, or says which cap it would pass.
    fn open(&self, credential: Vec<u8>, tenant: Uuid, limits: &crate::config::Limits) -> Result<Slot, &'static str> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (per_credential, per_tenant) = (limits.event_streams_per_credential, limits.event_streams_per_tenant);
        if per_credential > 0 && open.per_credential.get(&credential).copied().unwrap_or(0) >= per_credential {
            return Err("this token or session has as many event streams open as it may");
        }
        if per_tenant > 0 && open.per_tenant.get(&tenant).copied().unwrap_or(0) >= per_tenant {
            return Err("this tenant has as many event streams open as it may");
        }
        *open.per_credential.entry(credential.clone()).or_default() += 1;
        *open.per_tenant.entry(tenant).or_default() += 1;
        metrics::gauge!("aisales_event_streams_open").increment(1.0);
        Ok(Slot { open: self.open.clone(), credential, tenant })
    }

    async fn subscribe(&self, pool: &sqlx::PgPool) -> watch::Receiver<u64> {
        self.rx
            .get_or_init(|| async {
                let (tx, rx) = watch::channel(0u64);
                let pool = pool.clone();
                tokio::spawn(async move {
                    loop {
                        if let Ok(mut l) = PgListener::connect_with(&pool).await
                            && l.listen("read_model_changes").await.is_ok()
                        {
                            tx.send_modify(|v| *v += 1);
                            while let Ok(Some(_)) = l.try_recv().await {
                                tx.send_modify(|v| *v += 1);
                            }
                        }
                        if tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                });
                rx
            })
            .await
            .clone()
    }
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    last_event_id: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Change {
    id: i64,
    tx_id: String,
    tenant_id: Uuid,
    entity: String,
    entity_id: Uuid,
    conversation_id: Option<Uuid>,
    change: String,
    position: String,
    created_at: DateTime<Utc>,
}

pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let header_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty());
    let resume =
        match header_id {
            Some(v) => Some(v.parse::<i64>().map_err(|_| {
                ApiError::invalid("invalid_last_event_id", "Last-Event-ID is a number this stream sent")
            })?),
            None => q.last_event_id,
        };
    let tenant = caller.tenant_id;
    // The credential the stream was opened with: checked again while it runs, and the key of its
    // cap. Only the headers that carry it are kept.
    let mut credentials = HeaderMap::new();
    for name in [header::AUTHORIZATION, header::COOKIE] {
        for v in headers.get_all(&name) {
            credentials.append(name.clone(), v.clone());
        }
    }
    let digest = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for v in credentials.values() {
            h.update(v.as_bytes());
            h.update(b"\n");
        }
        h.finalize().to_vec()
    };
    let slot = state.changes.open(digest, tenant, &state.settings.limits).map_err(|why| {
        metrics::counter!("aisales_rate_limited_total", "limit" => "event_streams").increment(1);
        ApiError::invalid_with_status(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", why)
    })?;
    let recheck_every = state.settings.limits.event_stream_recheck;
    let opened_by = (caller.tenant_id, caller.actor);
    let app = state.clone();
    let pool = state.pool.clone();
    let resumed_at: Option<String> = match resume {
        Some(id) => {
            sqlx::query_scalar("SELECT tx_id::text FROM read_model_changes WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant)
                .fetch_optional(&pool)
                .await?
        }
        None => None,
    };
    // Without a resume point (or with one no longer kept) the stream starts with what happens from
    // now on: every change of a transaction not yet finished, nothing older.
    let reset = resume.is_some() && resumed_at.is_none();
    let mut cursor: (String, i64) = match (resumed_at, resume) {
        (Some(tx), Some(id)) => (tx, id),
        _ => (
            sqlx::query_scalar::<_, String>("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(&pool)
                .await?,
            0,
        ),
    };
    // Subscribed before catching up, so that nothing read by the shared reader meanwhile is missed.
    let mut shared = state.changes.reader(&pool).await;
    let s = async_stream(move |tx| async move {
        let _slot = slot;
        let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + recheck_every, recheck_every);
        if reset {
            let _ = tx
                .send(
                    Event::default()
                        .event("reset")
                        .data("{\"reason\":\"changes before this point are no longer kept; reload\"}"),
                )
                .await;
        }
        let send = |c: &Change| {
            let data = serde_json::json!({
                "entity": c.entity, "id": c.entity_id, "conversation_id": c.conversation_id,
                "change": c.change, "position": c.position, "at": c.created_at,
            });
            Event::default().id(c.id.to_string()).event(c.entity.clone()).data(data.to_string())
        };
        'catch_up: loop {
            // Behind the shared reader (a resume, a slow client): read this tenant's changes
            // from the database until nothing more is readable.
            loop {
                let rows: Vec<Change> = match sqlx::query_as(
                    "SELECT id, tx_id::text AS tx_id, tenant_id, entity, entity_id, conversation_id, change, position, created_at \
                       FROM read_model_changes \
                      WHERE tenant_id = $1 AND (tx_id, id) > ($2::text::xid8, $3) \
                        AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
                      ORDER BY tx_id, id LIMIT 500",
                )
                .bind(tenant)
                .bind(&cursor.0)
                .bind(cursor.1)
                .fetch_all(&pool)
                .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let full = rows.len() == 500;
                for c in rows {
                    if tx.send(send(&c)).await.is_err() {
                        return;
                    }
                    cursor = (c.tx_id, c.id);
                }
                if !full {
                    break;
                }
            }
            // Then follow the process's one reader, taking this tenant's changes after the cursor.
            loop {
                tokio::select! {
                    batch = shared.recv() => match batch {
                        Ok(batch) => {
                            let after = order_key(&cursor.0, cursor.1);
                            for c in batch.iter().filter(|c| c.tenant_id == tenant && order_key(&c.tx_id, c.id) > after) {
                                if tx.send(send(c)).await.is_err() {
                                    return;
                                }
                                cursor = (c.tx_id.clone(), c.id);
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue 'catch_up,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    _ = tx.closed() => return,
                    _ = recheck.tick() => {
                        if let Some(reason) = revoked(&app, &credentials, &opened_by).await {
                            let data = serde_json::json!({ "reason": reason }).to_string();
                            let _ = tx.send(Event::default().event("end").data(data)).await;
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat")))
}

/// The place of a change in the stream's order: its transaction id (`xid8`, as text), then its id.
fn order_key(tx_id: &str, id: i64) -> (u64, i64) {
    (tx_id.parse().unwrap_or(0), id)
}

/// Batches of changes of every tenant, read once per process.
type Batches = tokio::sync::broadcast::Sender<Arc<Vec<Change>>>;

/// The process's one reader of `read_model_changes`: woken by the projectors' notifications
/// (polling every 2 s as a fallback), it reads every tenant's new changes in `(tx_id, id)` order,
/// never past the oldest transaction in flight, and hands each batch to every open stream, which
/// keeps its own tenant's. So a change costs one query per process, however many streams are open.
async fn read_changes(pool: sqlx::PgPool, mut wake: watch::Receiver<u64>, batches: Batches) {
    let mut cursor: Option<(String, i64)> = None;
    loop {
        if batches.receiver_count() == 0 && cursor.is_some() {
            // Nobody listens: start again from "now" when someone does.
            cursor = None;
        }
        let from = match &cursor {
            Some(c) => c.clone(),
            None => match sqlx::query_scalar::<_, String>("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(&pool)
                .await
            {
                Ok(xmin) => (xmin, 0),
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let rows: Vec<Change> = match sqlx::query_as(
            "SELECT id, tx_id::text AS tx_id, tenant_id, entity, entity_id, conversation_id, change, position, created_at \
               FROM read_model_changes \
              WHERE (tx_id, id) > ($1::text::xid8, $2) AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
              ORDER BY tx_id, id LIMIT 1000",
        )
        .bind(&from.0)
        .bind(from.1)
        .fetch_all(&pool)
        .await
        {
            Ok(r) => r,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let full = rows.len() == 1000;
        cursor = Some(rows.last().map(|c| (c.tx_id.clone(), c.id)).unwrap_or(from));
        if !rows.is_empty() {
            let _ = batches.send(Arc::new(rows));
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Why the credential a stream was opened with no longer lets it run (logged out, token revoked,
/// user disabled, session expired, or now another tenant or user), or `None` while it does. A
/// failure to check (the database restarting) keeps the stream: it is checked again later.
async fn revoked(
    state: &AppState,
    credentials: &HeaderMap,
    opened_by: &(Uuid, crate::auth::Actor),
) -> Option<&'static str> {
    match crate::http::authn::resolve(state, credentials, &Method::GET).await {
        Ok(c) if (c.tenant_id, &c.actor) == (opened_by.0, &opened_by.1) => None,
        Ok(_) => Some("the credential now belongs to another tenant or user"),
        Err(ApiError::Unauthorized) => {
            Some("the credential is no longer valid (logged out, revoked, disabled or expired)")
        }
        Err(_) => None,
    }
}

/// A stream fed by a task through a bounded channel (ends when the task ends or the client goes).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) })
}
