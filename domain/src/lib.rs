#![forbid(unsafe_code)]
//! aisales domain: aggregates, commands, events and pure rules. No IO.

pub mod catalog;
pub mod codec;
pub mod conversation;
pub mod detect;
pub mod lead;
pub mod media;
pub mod pii;
pub mod price;
pub mod price_lookup;
pub mod probe;
pub mod prompt;
pub mod reply;
pub mod tenant;
pub mod text;
pub mod vehicle_lookup;
pub mod vin;
