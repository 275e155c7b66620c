//! The projector runtime and its operations: tasks that keep read models, the dispatcher and
//! metrics up to date ([`runtime`]), the registry of every projector a process runs
//! ([`registry`]), and status, rebuild and verify ([`ops`]).

pub mod ops;
pub mod registry;
pub mod runtime;
