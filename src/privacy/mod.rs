//! Customer data rights: what is held about a customer ([`export`]), erasing it ([`erase`]) and
//! how long lookup evidence is kept ([`retention`]). `docs/privacy.md` describes both.

pub mod erase;
pub mod export;
pub mod migrate;
pub mod retention;
