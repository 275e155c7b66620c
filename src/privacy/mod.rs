//! Customer data rights: what is held about a customer ([`export`]) and how long lookup evidence
//! is kept ([`retention`]). `docs/privacy.md` describes both.

pub mod export;
pub mod retention;
