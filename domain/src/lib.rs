#![forbid(unsafe_code)]
//! aisales domain: aggregates, commands, events and pure rules. No IO.

pub mod detect;
pub mod tenant;
pub mod vin;
