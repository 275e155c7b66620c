#![forbid(unsafe_code)]
//! Read models of aisales and the projectors that keep them.
//!
//! * [`events`] reads the event log in its global, gap-safe order.
//! * [`pii`] seals customer data in events with the customer's key and opens it on every read.
//! * [`checkpoint`] keeps one checkpoint row per projector.
//! * [`projector`] defines a projector and applies one batch exactly once.
//! * The read models themselves live in their own modules, one projector each: the
//!   conversation read models under [`conversation`], vehicle lookups in [`vehicle_lookup_views`].

pub mod checkpoint;
pub mod conversation;
pub mod events;
pub mod feed;
pub mod lead_views;
pub mod parking;
pub mod pii;
pub mod price_lookups;
pub mod projector;
pub mod rows;
pub mod stream_stats;
pub mod vehicle_lookup_views;

pub use events::{Position, StoredEvent};
pub use feed::{Batch, EventFeed};
pub use projector::{BatchOutcome, Projector, Target, apply_batch_in, apply_next_batch, apply_next_batch_from};
