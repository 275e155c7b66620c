//! Property-based fuzzing of every parser that reads outside input: messenger webhooks, lead
//! forms, text detection, the price list and the small text parsers. Each target must never
//! panic and must answer the same input the same way.
//!
//! `cargo test --test fuzz` runs 256 cases per target (`FUZZ_CASES` changes it);
//! `scripts/fuzz.sh` gives each target a time budget (`FUZZ_SECONDS`).

mod channels;
mod corpus;
mod detect;
mod leads;
mod prices;
mod support;
mod texts;
