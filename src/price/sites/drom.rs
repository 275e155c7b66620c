//! baza.drom.ru and drom.ru: the bulletin engine's lists and pages ([`super::bulls`]).

use super::{Page, RawListing, bulls};

pub(super) fn parse(page: &Page<'_>) -> Vec<RawListing> {
    bulls::parse(page)
}
