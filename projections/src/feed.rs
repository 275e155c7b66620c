//! Events read once and shared by every projector of a process.
//!
//! Without it each projector reads every event from Postgres itself: under a steady stream of
//! appends nine projectors read, transfer and decode each new event nine times. The feed keeps the
//! most recently read events in memory as a run of chunks, each the result of one read in global
//! order. A projector whose checkpoint falls inside that run takes its next events from memory; the
//! first projector to reach the end of the run reads the next chunk for all of them.
//!
//! The chunks are contiguous in the gap-safe order: a chunk is only appended when it was read
//! right after the last event already held (`read_after` of that position), and a read never
//! passes the oldest transaction still in flight, so no event can later appear between two events
//! the feed holds. A projector behind the oldest chunk held, or ahead of the newest (it read for
//! itself), reads from Postgres as before. Correctness never rests on the feed: a batch still
//! moves its checkpoint by compare-and-set from the position it was read after.

use std::collections::VecDeque;
use std::ops::{Deref, Range};
use std::sync::{Arc, Mutex};

use sqlx::PgConnection;

use crate::events::{self, Position, StoredEvent};

/// Events kept in memory by default (older chunks are dropped first).
pub const DEFAULT_FEED_EVENTS: usize = 4_000;

/// A run of events in global order, borrowed from a chunk the feed shares.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    chunk: Arc<Vec<StoredEvent>>,
    range: Range<usize>,
}

impl Batch {
    /// A batch of events read by the caller.
    pub fn owned(events: Vec<StoredEvent>) -> Self {
        let range = 0..events.len();
        Batch { chunk: Arc::new(events), range }
    }
}

impl Deref for Batch {
    type Target = [StoredEvent];
    fn deref(&self) -> &[StoredEvent] {
        &self.chunk[self.range.clone()]
    }
}

/// One read in global order: the events after `after` (never empty).
#[derive(Debug)]
struct Chunk {
    after: Position,
    events: Arc<Vec<StoredEvent>>,
}

impl Chunk {
    fn last(&self) -> Position {
        self.events.last().map(StoredEvent::position).unwrap_or(self.after)
    }

    /// Index of the first event after `p`, when `p` is this chunk's start or one of its events.
    fn next_index(&self, p: Position) -> Option<usize> {
        if p == self.after {
            return Some(0);
        }
        self.events.binary_search_by(|e| e.position().cmp(&p)).ok().map(|i| i + 1)
    }
}

#[derive(Debug, Default)]
struct Window {
    chunks: VecDeque<Chunk>,
    events: usize,
}

impl Window {
    fn end(&self) -> Option<Position> {
        self.chunks.back().map(Chunk::last)
    }

    /// The next at most `limit` events after `after` held in memory, when `after` is inside the
    /// window and not at its end.
    fn after(&self, after: Position, limit: usize) -> Option<Batch> {
        let first = self.chunks.front()?;
        if after < first.after || Some(after) >= self.end() {
            return None;
        }
        // The chunk holding `after` (as its start or one of its events).
        let mut i = self.chunks.partition_point(|c| c.last() < after);
        let mut chunk = self.chunks.get(i)?;
        let mut start = chunk.next_index(after)?;
        if start == chunk.events.len() {
            i += 1;
            chunk = self.chunks.get(i)?;
            start = 0;
        }
        let end = (start + limit).min(chunk.events.len());
        if end - start == limit || i + 1 >= self.chunks.len() {
            return Some(Batch { chunk: chunk.events.clone(), range: start..end });
        }
        // A projector behind by more than a chunk takes everything held after it (up to its limit)
        // in one batch, as a read would give it: one chunk per batch would never let it catch up.
        let mut events = Vec::with_capacity(limit.min(self.events));
        events.extend_from_slice(&chunk.events[start..]);
        for c in self.chunks.range(i + 1..) {
            let take = (limit - events.len()).min(c.events.len());
            events.extend_from_slice(&c.events[..take]);
            if events.len() == limit {
                break;
            }
        }
        Some(Batch::owned(events))
    }

    fn push(&mut self, chunk: Chunk, max_events: usize) {
        self.events += chunk.events.len();
        self.chunks.push_back(chunk);
        while self.events > max_events && self.chunks.len() > 1 {
            if let Some(old) = self.chunks.pop_front() {
                self.events -= old.events.len();
            }
        }
    }
}

/// Recently read events, shared by the projectors of one process.
#[derive(Debug)]
pub struct EventFeed {
    window: Mutex<Window>,
    /// One reader at a time extends the window; the others wait and then find its chunk.
    reading: tokio::sync::Mutex<()>,
    max_events: usize,
}

impl Default for EventFeed {
    fn default() -> Self {
        EventFeed::new(DEFAULT_FEED_EVENTS)
    }
}

impl EventFeed {
    /// A feed keeping up to about `max_events` events (at least the newest chunk).
    pub fn new(max_events: usize) -> Self {
        EventFeed { window: Mutex::new(Window::default()), reading: tokio::sync::Mutex::new(()), max_events }
    }

    fn held(&self, after: Position, limit: usize) -> Option<Batch> {
        self.window.lock().unwrap_or_else(|p| p.into_inner()).after(after, limit)
    }

    fn end(&self) -> Option<Position> {
        self.window.lock().unwrap_or_else(|p| p.into_inner()).end()
    }

    /// Up to `limit` events after `after` in global order: from memory when held, otherwise read
    /// through `conn` (and kept for the other projectors when they continue the window).
    pub async fn read_after(&self, conn: &mut PgConnection, after: Position, limit: i64) -> sqlx::Result<Batch> {
        let n = limit.max(1) as usize;
        if let Some(batch) = self.held(after, n) {
            metrics::counter!("aisales_projector_feed_events_total", "source" => "memory")
                .increment(batch.len() as u64);
            return Ok(batch);
        }
        let continues = |end: Option<Position>| end.is_none_or(|end| end == after);
        if !continues(self.end()) {
            // Behind the window (catching up) or ahead of it: this projector reads for itself.
            let events = events::read_after(conn, after, limit).await?;
            metrics::counter!("aisales_projector_feed_events_total", "source" => "own_read")
                .increment(events.len() as u64);
            return Ok(Batch::owned(events));
        }
        let _reading = self.reading.lock().await;
        // Another projector may have read the same events while this one waited.
        if let Some(batch) = self.held(after, n) {
            metrics::counter!("aisales_projector_feed_events_total", "source" => "memory")
                .increment(batch.len() as u64);
            return Ok(batch);
        }
        let events = events::read_after(conn, after, limit).await?;
        metrics::counter!("aisales_projector_feed_events_total", "source" => "shared_read")
            .increment(events.len() as u64);
        let batch = Batch::owned(events);
        if !batch.is_empty() {
            let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
            if continues(window.end()) {
                window.push(Chunk { after, events: batch.chunk.clone() }, self.max_events);
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tx: i64, pos: i64) -> StoredEvent {
        StoredEvent::new(
            Position::new(tx, pos),
            "conversation",
            "a",
            pos,
            "T",
            "1",
            "{}".into(),
            "{}".into(),
            chrono::Utc::now(),
            None,
        )
    }

    fn positions(b: &Batch) -> Vec<i64> {
        b.iter().map(|e| e.global_position).collect()
    }

    fn window(max: usize) -> Window {
        let mut w = Window::default();
        // Two chunks: after 0.0 → (10.1, 10.2, 11.3); after 11.3 → (12.4, 14.5)
        w.push(Chunk { after: Position::START, events: Arc::new(vec![event(10, 1), event(10, 2), event(11, 3)]) }, max);
        w.push(Chunk { after: Position::new(11, 3), events: Arc::new(vec![event(12, 4), event(14, 5)]) }, max);
        w
    }

    #[test]
    fn serves_the_events_after_a_position_inside_the_window() {
        let w = window(100);
        assert_eq!(positions(&w.after(Position::START, 3).unwrap()), vec![1, 2, 3]);
        assert_eq!(positions(&w.after(Position::new(10, 1), 1).unwrap()), vec![2]);
        assert_eq!(positions(&w.after(Position::new(10, 1), 2).unwrap()), vec![2, 3]);
        // Behind by more than a chunk: everything held after it, up to the limit, in one batch.
        assert_eq!(positions(&w.after(Position::new(10, 1), 10).unwrap()), vec![2, 3, 4, 5]);
        assert_eq!(positions(&w.after(Position::START, 4).unwrap()), vec![1, 2, 3, 4]);
        // At the end of a chunk: the next chunk.
        assert_eq!(positions(&w.after(Position::new(11, 3), 10).unwrap()), vec![4, 5]);
        assert_eq!(positions(&w.after(Position::new(12, 4), 10).unwrap()), vec![5]);
    }

    #[test]
    fn positions_outside_the_window_or_at_its_end_are_not_served() {
        let w = window(100);
        // At the end: the caller must read what is new.
        assert!(w.after(Position::new(14, 5), 10).is_none());
        // Ahead of the window.
        assert!(w.after(Position::new(15, 9), 10).is_none());
        // A position that is no event of the window (never read by it) is not guessed at.
        assert!(w.after(Position::new(10, 7), 10).is_none());
        assert!(Window::default().after(Position::START, 10).is_none());
    }

    #[test]
    fn old_chunks_are_dropped_beyond_the_bound_but_the_newest_is_kept() {
        let w = window(2);
        assert_eq!(w.chunks.len(), 1);
        assert_eq!(w.events, 2);
        assert!(w.after(Position::START, 10).is_none(), "the dropped chunk is no longer served");
        assert_eq!(positions(&w.after(Position::new(11, 3), 10).unwrap()), vec![4, 5]);
    }
}
