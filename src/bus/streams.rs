//! Redis stream plumbing: pushing jobs, consumer groups, status and dead letters.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionLike;
use redis::streams::{StreamPendingCountReply, StreamRangeReply};
use serde::Serialize;

use super::{GROUP, Job, Kind};

/// Field holding the job's JSON in a stream entry.
pub const FIELD: &str = "job";

/// Appends jobs to their streams in one pipeline, trimming each stream to about `max_len`
/// entries so memory stays bounded.
pub async fn push<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    prefix: &str,
    jobs: &[Job],
    max_len: usize,
) -> redis::RedisResult<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for job in jobs {
        let json = serde_json::to_string(job).expect("jobs serialize");
        pipe.cmd("XADD")
            .arg(job.kind.stream(prefix))
            .arg("MAXLEN")
            .arg("~")
            .arg(max_len)
            .arg("*")
            .arg(FIELD)
            .arg(json)
            .ignore();
    }
    pipe.query_async::<()>(conn).await?;
    for job in jobs {
        metrics::counter!("aisales_jobs_dispatched_total", "kind" => job.kind.as_str()).increment(1);
    }
    Ok(())
}

/// Creates the kind's stream and consumer group if missing (reading from the start).
pub async fn ensure_group<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    prefix: &str,
    kind: Kind,
) -> redis::RedisResult<()> {
    let r: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(kind.stream(prefix))
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

/// One consumer of a group.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerStatus {
    pub name: String,
    pub pending: usize,
    pub idle_ms: usize,
}

/// What `aisales streams status` shows for one kind.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    pub kind: Kind,
    pub stream: String,
    pub length: usize,
    pub pending: usize,
    pub oldest_pending_age_ms: Option<usize>,
    pub consumers: Vec<ConsumerStatus>,
    pub dead_letters: usize,
}

/// Length, pending entries, oldest pending age, consumers and dead letters of every kind.
pub async fn status<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    prefix: &str,
) -> redis::RedisResult<Vec<StreamStatus>> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let stream = kind.stream(prefix);
        let exists: bool = conn.exists(&stream).await?;
        let length: usize = if exists { conn.xlen(&stream).await? } else { 0 };
        let dead_letters: usize = conn.xlen(kind.dead_letters(prefix)).await.unwrap_or(0);
        let (mut pending, mut oldest, mut consumers) = (0, None, Vec::new());
        if exists {
            let groups: redis::streams::StreamInfoGroupsReply = conn.xinfo_groups(&stream).await?;
            if let Some(g) = groups.groups.iter().find(|g| g.name == GROUP) {
                pending = g.pending;
                let info: redis::streams::StreamInfoConsumersReply = conn.xinfo_consumers(&stream, GROUP).await?;
                consumers = info
                    .consumers
                    .into_iter()
                    .map(|c| ConsumerStatus { name: c.name, pending: c.pending, idle_ms: c.idle })
                    .collect();
                if pending > 0 {
                    let first: StreamPendingCountReply = conn.xpending_count(&stream, GROUP, "-", "+", 1).await?;
                    oldest = first.ids.first().map(|p| p.last_delivered_ms);
                }
            }
        }
        metrics::gauge!("aisales_stream_length", "kind" => kind.as_str()).set(length as f64);
        metrics::gauge!("aisales_stream_pending", "kind" => kind.as_str()).set(pending as f64);
        metrics::gauge!("aisales_stream_dead_letters", "kind" => kind.as_str()).set(dead_letters as f64);
        out.push(StreamStatus {
            kind,
            stream,
            length,
            pending,
            oldest_pending_age_ms: oldest,
            consumers,
            dead_letters,
        });
    }
    Ok(out)
}

/// A dead-lettered job.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub id: String,
    pub kind: Kind,
    pub job: Option<Job>,
    pub raw: Option<String>,
    pub reason: String,
    pub deliveries: u64,
    pub failed_at: Option<DateTime<Utc>>,
}

fn field(map: &HashMap<String, redis::Value>, name: &str) -> Option<String> {
    map.get(name).and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
}

/// Moves a job to its dead-letter stream with the reason.
pub async fn dead_letter<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    prefix: &str,
    kind: Kind,
    job_json: &str,
    reason: &str,
    deliveries: u64,
) -> redis::RedisResult<()> {
    redis::cmd("XADD")
        .arg(kind.dead_letters(prefix))
        .arg("MAXLEN")
        .arg("~")
        .arg(10_000)
        .arg("*")
        .arg(FIELD)
        .arg(job_json)
        .arg("reason")
        .arg(reason)
        .arg("deliveries")
        .arg(deliveries)
        .arg("failed_at")
        .arg(Utc::now().to_rfc3339())
        .query_async::<()>(conn)
        .await?;
    metrics::counter!("aisales_jobs_dead_lettered_total", "kind" => kind.as_str()).increment(1);
    Ok(())
}

fn parse_dead(kind: Kind, entry: redis::streams::StreamId) -> DeadLetter {
    let raw = field(&entry.map, FIELD);
    DeadLetter {
        job: raw.as_deref().and_then(|r| serde_json::from_str(r).ok()),
        raw,
        reason: field(&entry.map, "reason").unwrap_or_default(),
        deliveries: field(&entry.map, "deliveries").and_then(|d| d.parse().ok()).unwrap_or(0),
        failed_at: field(&entry.map, "failed_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
        id: entry.id,
        kind,
    }
}

/// Dead letters of `kind` (oldest first, at most `count`).
pub async fn dead_letters<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    prefix: &str,
    kind: Kind,
    count: usize,
) -> redis::RedisResult<Vec<DeadLetter>> {
    let r: StreamRangeReply = conn.xrange_count(kind.dead_letters(prefix), "-", "+", count).await?;
    Ok(r.ids.into_iter().map(|e| parse_dead(kind, e)).collect())
}

/// One dead letter by id.
pub async fn dead_letter_by_id<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    prefix: &str,
    kind: Kind,
    id: &str,
) -> redis::RedisResult<Option<DeadLetter>> {
    let r: StreamRangeReply = conn.xrange(kind.dead_letters(prefix), id, id).await?;
    Ok(r.ids.into_iter().next().map(|e| parse_dead(kind, e)))
}

/// Removes a dead letter (after it was retried).
pub async fn remove_dead_letter<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    prefix: &str,
    kind: Kind,
    id: &str,
) -> redis::RedisResult<()> {
    let _: usize = conn.xdel(kind.dead_letters(prefix), &[id]).await?;
    Ok(())
}
