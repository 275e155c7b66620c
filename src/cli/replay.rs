//! `aisales replay conversation ID [--until-sequence N | --at T | --correlation-id C] [--json]`.

use clap::Subcommand;
use serde::Serialize;

use super::UsageError;
use crate::application::replay::{self, AuditEvent, Until};
use crate::config::Settings;
use crate::http::api::audit::ReplayedState;

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// A conversation's events as a timeline (each with its cause), and its state at that point.
    Conversation {
        id: uuid::Uuid,
        /// Stop after this event.
        #[arg(long, conflicts_with_all = ["at", "correlation_id"])]
        until_sequence: Option<i64>,
        /// Stop at this instant (RFC 3339).
        #[arg(long, conflicts_with = "correlation_id")]
        at: Option<chrono::DateTime<chrono::Utc>>,
        /// Only one chain: the events of this correlation id, across the conversation and the
        /// lookups it asked for, in the log's order.
        #[arg(long)]
        correlation_id: Option<uuid::Uuid>,
        /// Print JSON (events and state) instead of a timeline.
        #[arg(long)]
        json: bool,
    },
}

/// The JSON form of a replay.
#[derive(Serialize)]
struct Replayed<'a> {
    events: &'a [AuditEvent],
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<ReplayedState>,
}

/// A line of a chain: which aggregate, which event, who, and what caused it.
fn chain_line(e: &AuditEvent) -> String {
    format!(
        "{} {}  {:<16} #{:<5} {:<26} {:<28}{}",
        e.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f"),
        e.position,
        e.aggregate_type,
        e.sequence,
        e.event_type,
        e.metadata.get("actor").map(String::as_str).unwrap_or("?"),
        e.caused_by.as_ref().map(|c| format!("  ← {}", replay::cause_text(e, c))).unwrap_or_default()
    )
}

pub(super) async fn replay(
    settings: &Settings,
    id: uuid::Uuid,
    until_sequence: Option<i64>,
    at: Option<chrono::DateTime<chrono::Utc>>,
    correlation_id: Option<uuid::Uuid>,
    json: bool,
) -> anyhow::Result<()> {
    let pool = crate::infra::db::pool(settings)?;
    let missing = || UsageError(format!("there is no conversation {id}"));
    if let Some(correlation) = correlation_id {
        let events = replay::chain(&pool, None, id, correlation).await?.ok_or_else(missing)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&Replayed { events: &events, state: None })?);
        } else {
            for e in &events {
                println!("{}", chain_line(e));
            }
            println!("\n{} event(s) in chain {correlation}", events.len());
        }
        return Ok(());
    }
    let until = match (until_sequence, at) {
        (Some(n), _) => Until::Sequence(n),
        (None, Some(t)) => Until::Instant(t),
        (None, None) => Until::End,
    };
    let r = replay::load(&pool, None, id, until).await?.ok_or_else(missing)?;
    let state = ReplayedState::from(&r);
    if json {
        println!("{}", serde_json::to_string_pretty(&Replayed { events: &r.events, state: Some(state) })?);
        return Ok(());
    }
    for line in r.timeline() {
        println!("{line}");
    }
    println!();
    match &state.detail {
        Some(d) => println!(
            "state after #{}: status {}, {} message(s), {} pending suggestion(s), unread {}",
            state.replayed_to_sequence,
            d.conversation.status,
            d.conversation.messages_count,
            d.conversation.pending_suggestions,
            d.conversation.unread_count
        ),
        None => println!("no state before the first event"),
    }
    Ok(())
}
