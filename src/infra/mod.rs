//! Infrastructure the rest of the process stands on: the database pool and held connections,
//! Redis, encryption of stored secrets, telemetry and process metrics, log redaction, rate limits.

pub mod cache;
pub mod crypto;
pub mod db;
pub mod process_metrics;
pub mod ratelimit;
pub mod redact;
pub mod redis;
pub mod telemetry;
