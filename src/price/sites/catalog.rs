//! Contract-parts catalogues (japancar.ru, dvsavto.ru, kor-motor.ru, avtgr.ru, qx9.ru, bibika.ru):
//! product cards (`.product-card`, `.product-item`, `.item-card`, `*product*`, `*catalog-item*`)
//! and price tables, found from their prices ([`super::cards`]).

use super::{Page, RawListing, cards, selector};

selector!(
    CARD,
    ".product-card, .product-item, .item-card, [class*='product'], [class*='Product'], [class*='catalog-item'], \
     [class*='item'], [class*='card'], article, li, tr"
);

pub(super) fn parse(page: &Page<'_>) -> Vec<RawListing> {
    cards::parse(page, &CARD)
}
