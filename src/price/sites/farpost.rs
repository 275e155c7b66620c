//! farpost.ru: the bulletin engine drom also runs ([`super::bulls`]), and, when its markup is not
//! there, cards found from their prices (`.bull-item`, `.lot-title` and other `*item*` blocks).

use super::{Page, RawListing, bulls, cards, selector};

selector!(CARD, ".bull-item, .lot-title, .lot, [class*='item'], [class*='Item'], article, li, tr");

pub(super) fn parse(page: &Page<'_>) -> Vec<RawListing> {
    let bulletins = bulls::parse(page);
    if !bulletins.is_empty() {
        return bulletins;
    }
    cards::parse(page, &CARD)
}
