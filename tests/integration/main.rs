//! Integration tests against the real Postgres, Redis and HTTP stack (and the real binary for
//! process-level tests). Each test gets a database of its own.

mod audit_chain;
mod browser;
mod bus;
mod channels;
mod chaos;
mod cli;
mod conversations;
mod dashboard;
mod fakes;
mod global_order;
mod hardening;
mod health;
mod helpers;
mod leads;
mod logs;
mod media;
mod price_lookups;
mod price_sources;
mod privacy;
mod projector;
mod readmodels;
mod repo;
mod retention;
mod secrets;
mod store;
mod tenancy;
mod vehicle_lookup;
mod webhook_routing;
