#![forbid(unsafe_code)]
//! aisales: an event-sourced sales desk backend for an auto-parts shop.
//!
//! The binary's subcommands ([`cli`]) run the HTTP server ([`http`], [`app`]), the projector
//! runtime ([`projector`]) and operator tasks. Aggregates and pure rules live in
//! `aisales-domain`; read models and checkpoints in `aisales-projections`.

pub mod accounts;
pub mod ai;
pub mod app;
pub mod auth;
pub mod browser;
pub mod bus;
pub mod bus_cli;
pub mod channels;
pub mod cli;
pub mod config;
pub mod conversations;
pub mod crypto;
pub mod db;
pub mod http;
pub mod ingest;
pub mod price;
pub mod process_metrics;
pub mod projection_ops;
pub mod projector;
pub mod ratelimit;
pub mod read_models;
pub mod redact;
pub mod redis_conn;
pub mod replay;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod testkit;
pub mod workers;
