//! Infrastructure the rest of the process stands on: the database pool and held connections,
//! Redis, encryption of stored secrets, telemetry and process metrics, log redaction, rate limits.

pub mod cache;
pub mod clock;
pub mod crypto;
pub mod db;
pub mod intake;
pub mod process_metrics;
pub mod ratelimit;
pub mod redact;
pub mod redis;
pub mod telemetry;

/// The name this process goes by in leases, consumer groups and logs: role, host and pid.
pub fn instance_name(role: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("aisales-{role}@{host}:{}", std::process::id())
}
