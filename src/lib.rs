#![forbid(unsafe_code)]
//! aisales: an event-sourced sales desk backend for an auto-parts shop.
//!
//! The binary's subcommands ([`cli`]) run the HTTP server ([`http`], [`app`]), the projector
//! runtime ([`projector`]) and operator tasks. Aggregates and pure rules live in
//! `aisales-domain`; read models and checkpoints in `aisales-projections`.

pub mod ai;
pub mod application;
pub mod auth;
pub mod browser;
pub mod bus;
pub mod channels;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod http;
pub mod infra;
pub mod media;
pub mod price;
pub mod privacy;
pub mod process;
pub mod projection;
pub mod store;
pub mod tenancy;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod workers;
