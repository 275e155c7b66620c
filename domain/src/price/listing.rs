//! Listings: what a page parser saw ([`RawListing`]), what is kept ([`Listing`], priced in whole
//! roubles), and what is dropped and why ([`DroppedListing`], [`DropReason`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::currency::{Currency, Rates};
use super::filter::check_title;
use super::parse::{
    MAX_PRICE_RUB, MIN_PRICE_RUB, PriceRejection, PriceText, parse_mileage, parse_price, parse_structured_price,
};

/// Longest title kept (characters).
pub const MAX_TITLE_CHARS: usize = 200;

/// One listing as a page parser read it: texts as shown, nothing interpreted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawListing {
    /// The listing's own page, or the page it was read from.
    pub url: String,
    /// The site (`baza.drom.ru`), when the parser knows it better than the URL does (a local
    /// replica of a site keeps the real site here).
    #[serde(default)]
    pub site: Option<String>,
    #[serde(default)]
    pub title: String,
    /// The price as written (`85 000 ₽`, `от 70 т.р.`).
    #[serde(default)]
    pub price_text: Option<String>,
    /// A structured price: `itemprop="price" content="…"` or JSON-LD `price`.
    #[serde(default)]
    pub structured_price: Option<String>,
    /// Its `priceCurrency`, when given.
    #[serde(default)]
    pub structured_currency: Option<String>,
    /// The mileage as written (`120 000 км`).
    #[serde(default)]
    pub mileage_text: Option<String>,
}

/// Where a listing sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Market {
    /// Priced in roubles.
    Ru,
    /// Priced in a foreign currency (Japanese auctions, eBay, European sellers).
    Intl,
}

/// A foreign price before conversion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OriginalPrice {
    pub amount: f64,
    pub currency: Currency,
}

/// A listing that counts: a whole used gearbox with a price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub url: String,
    /// Host without `www.` (`baza.drom.ru`).
    pub site: String,
    pub title: String,
    /// Whole roubles; the lower end of a range.
    pub price: u64,
    /// The upper end of a range, in roubles.
    #[serde(default)]
    pub price_high: Option<u64>,
    /// The foreign price it was converted from.
    #[serde(default)]
    pub original: Option<OriginalPrice>,
    #[serde(default)]
    pub mileage_km: Option<u32>,
    pub market: Market,
}

impl Listing {
    /// Identity of a listing for de-duplication: its URL (scheme, `www.`, fragment and trailing
    /// slash ignored) and its price. Several prices read from one catalogue page stay distinct;
    /// the same listing found twice does not.
    pub fn key(&self) -> String {
        format!("{}|{}", url_key(&self.url), self.price)
    }
}

/// Why a listing does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum DropReason {
    /// The title names a part (`keyword`), not a whole gearbox.
    NotWholeGearbox { keyword: String },
    /// The title says the unit is broken or sold for parts.
    Defective { keyword: String },
    /// The title says the unit is new or rebuilt; used units are priced here.
    NewOrRebuilt { keyword: String },
    /// The title names no whole gearbox.
    NoGearboxWord,
    /// No price could be read.
    NoPrice,
    /// The price is in a currency that cannot be converted.
    UnknownCurrency { currency: String },
    /// Outside the price bounds after conversion.
    OutOfBounds { min: u64, max: u64 },
    /// The same listing (URL and price) was already taken.
    Duplicate,
    /// Below the price floor.
    BelowFloor { floor: u64 },
    /// Below a share of the median: a deposit, a part or a typo.
    BelowMedianShare { median: u64, limit: u64 },
    /// A foreign price far above the Russian median.
    ForeignAboveRuMedian { ru_median: u64, limit: u64 },
    /// Outside the interquartile fences.
    Outlier { low: u64, high: u64 },
}

impl DropReason {
    /// The reason's code (`not_whole_gearbox`, `outlier`, …), for metrics and filters.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotWholeGearbox { .. } => "not_whole_gearbox",
            Self::Defective { .. } => "defective",
            Self::NewOrRebuilt { .. } => "new_or_rebuilt",
            Self::NoGearboxWord => "no_gearbox_word",
            Self::NoPrice => "no_price",
            Self::UnknownCurrency { .. } => "unknown_currency",
            Self::OutOfBounds { .. } => "out_of_bounds",
            Self::Duplicate => "duplicate",
            Self::BelowFloor { .. } => "below_floor",
            Self::BelowMedianShare { .. } => "below_median_share",
            Self::ForeignAboveRuMedian { .. } => "foreign_above_ru_median",
            Self::Outlier { .. } => "outlier",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotWholeGearbox { keyword } => write!(f, "a part ({keyword}), not a whole gearbox"),
            Self::Defective { keyword } => write!(f, "broken or sold for parts ({keyword})"),
            Self::NewOrRebuilt { keyword } => write!(f, "new or rebuilt ({keyword})"),
            Self::NoGearboxWord => f.write_str("the title names no whole gearbox"),
            Self::NoPrice => f.write_str("no price"),
            Self::UnknownCurrency { currency } => write!(f, "unknown currency {currency}"),
            Self::OutOfBounds { min, max } => write!(f, "price outside {min}..{max} RUB"),
            Self::Duplicate => f.write_str("already taken"),
            Self::BelowFloor { floor } => write!(f, "below the {floor} RUB floor"),
            Self::BelowMedianShare { median, limit } => write!(f, "below {limit} RUB (1% of the median {median})"),
            Self::ForeignAboveRuMedian { ru_median, limit } => {
                write!(f, "foreign price above {limit} RUB (2.5 × the Russian median {ru_median})")
            }
            Self::Outlier { low, high } => write!(f, "outside the fences {low}..{high} RUB"),
        }
    }
}

/// A listing that does not count, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedListing {
    pub url: String,
    pub site: String,
    pub title: String,
    /// The price in roubles, when one was read.
    #[serde(default)]
    pub price: Option<u64>,
    pub reason: DropReason,
}

impl DroppedListing {
    /// `listing` dropped for `reason`.
    pub fn of(listing: Listing, reason: DropReason) -> Self {
        Self { url: listing.url, site: listing.site, title: listing.title, price: Some(listing.price), reason }
    }
}

/// The host of `url`, lowercased, without port and user (`https://www.Avito.ru:443/x` →
/// `www.avito.ru`). `None` when there is none.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?.trim_end_matches('.').to_lowercase();
    (!host.is_empty() && !host.contains(char::is_whitespace)).then_some(host)
}

/// The site of `url`: its host without `www.`.
pub fn site_of(url: &str) -> Option<String> {
    host_of(url).map(|h| h.strip_prefix("www.").map(str::to_string).unwrap_or(h))
}

/// `url` without scheme, `www.`, fragment and trailing slash, host lowercased.
fn url_key(url: &str) -> String {
    let url = url.trim();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('#').next().unwrap_or(rest);
    let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
    let authority = authority.to_lowercase();
    let authority = authority.strip_prefix("www.").unwrap_or(&authority);
    format!("{authority}{}", path.trim_end_matches('/'))
}

fn clean_title(title: &str) -> String {
    title.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(MAX_TITLE_CHARS).collect()
}

/// Turns what a parser saw into a listing that counts, or says why it does not. `codes` are the
/// searched codes (a title naming one is about the gearbox). The title is checked first, then the
/// price: the structured price when there is one, else the price text. The mileage comes from its
/// own text, else from the title.
pub fn normalize_listing(raw: RawListing, rates: &Rates, codes: &[&str]) -> Result<Listing, DroppedListing> {
    let url = raw.url.trim().to_string();
    let site = raw
        .site
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| site_of(s).unwrap_or_else(|| s.to_lowercase()))
        .or_else(|| site_of(&url))
        .unwrap_or_else(|| "unknown".to_string());
    let title = clean_title(&raw.title);
    let dropped = |price: Option<u64>, reason: DropReason| DroppedListing {
        url: url.clone(),
        site: site.clone(),
        title: title.clone(),
        price,
        reason,
    };
    check_title(&title, codes).map_err(|reason| dropped(None, reason))?;
    let structured = raw.structured_price.as_deref().filter(|s| !s.trim().is_empty());
    let text: Option<PriceText> =
        match structured.map(|s| parse_structured_price(s, raw.structured_currency.as_deref())) {
            Some(Ok(p)) => Some(p),
            Some(Err(PriceRejection::UnknownCurrency)) => {
                let currency = raw.structured_currency.clone().unwrap_or_default().trim().to_string();
                return Err(dropped(None, DropReason::UnknownCurrency { currency }));
            }
            _ => raw.price_text.as_deref().and_then(parse_price),
        };
    let text = text.ok_or_else(|| dropped(None, DropReason::NoPrice))?;
    let price = rates.to_rub(text.amount, text.currency).ok_or_else(|| dropped(None, DropReason::NoPrice))?;
    if !(MIN_PRICE_RUB..=MAX_PRICE_RUB).contains(&price) {
        return Err(dropped(Some(price), DropReason::OutOfBounds { min: MIN_PRICE_RUB, max: MAX_PRICE_RUB }));
    }
    let price_high =
        text.high.and_then(|h| rates.to_rub(h, text.currency)).filter(|h| *h > price && *h <= MAX_PRICE_RUB);
    let mileage_km = raw.mileage_text.as_deref().and_then(parse_mileage).or_else(|| parse_mileage(&title));
    let (original, market) = match text.currency {
        Currency::Rub => (None, Market::Ru),
        currency => (Some(OriginalPrice { amount: text.amount, currency }), Market::Intl),
    };
    Ok(Listing { url, site, title, price, price_high, original, mileage_km, market })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(title: &str, price: &str) -> RawListing {
        RawListing {
            url: "https://baza.drom.ru/sell/123.html".into(),
            title: title.into(),
            price_text: Some(price.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_whole_gearbox_with_a_price_counts() {
        let rates = Rates::offline();
        let mut r = raw("  Контрактная АКПП   A245E, пробег 85 000 км ", "от 50 000 – 70 000 ₽");
        r.mileage_text = None;
        let l = normalize_listing(r, &rates, &["A245E"]).unwrap();
        assert_eq!(l.site, "baza.drom.ru");
        assert_eq!(l.title, "Контрактная АКПП A245E, пробег 85 000 км");
        assert_eq!((l.price, l.price_high), (50_000, Some(70_000)));
        assert_eq!(l.mileage_km, Some(85_000), "the mileage from the title");
        assert_eq!(l.market, Market::Ru);
        assert_eq!(l.original, None);
    }

    #[test]
    fn structured_prices_win_over_text() {
        let rates = Rates::offline();
        let mut r = raw("АКПП A245E", "");
        r.price_text = None;
        r.structured_price = Some("85000".into());
        assert_eq!(normalize_listing(r.clone(), &rates, &[]).unwrap().price, 85_000);
        r.structured_currency = Some("JPY".into());
        let l = normalize_listing(r.clone(), &rates, &[]).unwrap();
        assert_eq!((l.price, l.market), (42_500, Market::Intl));
        assert_eq!(l.original, Some(OriginalPrice { amount: 85_000.0, currency: Currency::Jpy }));
        r.structured_currency = Some("GBP".into());
        let d = normalize_listing(r, &rates, &[]).unwrap_err();
        assert_eq!(d.reason, DropReason::UnknownCurrency { currency: "GBP".into() });
    }

    #[test]
    fn drops_say_why() {
        let rates = Rates::offline();
        let d = normalize_listing(raw("Насос АКПП", "5 000 ₽"), &rates, &[]).unwrap_err();
        assert_eq!(d.reason, DropReason::NotWholeGearbox { keyword: "насос".into() });
        assert_eq!(d.reason.code(), "not_whole_gearbox");
        assert_eq!(d.price, None);
        let d = normalize_listing(raw("АКПП", "цена по запросу"), &rates, &[]).unwrap_err();
        assert_eq!(d.reason, DropReason::NoPrice);
        let d = normalize_listing(raw("АКПП", "500 ₽"), &rates, &[]).unwrap_err();
        assert_eq!((d.price, d.reason.code()), (Some(500), "out_of_bounds"));
        assert_eq!(d.reason.to_string(), "price outside 1000..15000000 RUB");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["reason"]["code"], "out_of_bounds");
    }

    #[test]
    fn hosts_and_keys() {
        assert_eq!(host_of("https://www.Avito.ru:443/moskva?q=1").as_deref(), Some("www.avito.ru"));
        assert_eq!(site_of("https://www.avito.ru/x").as_deref(), Some("avito.ru"));
        assert_eq!(site_of("http://user@baza.drom.ru./sell").as_deref(), Some("baza.drom.ru"));
        assert_eq!(site_of("").as_deref(), None);
        let rates = Rates::offline();
        let a = normalize_listing(raw("АКПП", "85 000 ₽"), &rates, &[]).unwrap();
        let mut b = a.clone();
        b.url = "http://WWW.baza.drom.ru/sell/123.html/#photos".into();
        assert_eq!(a.key(), b.key());
        b.price = 86_000;
        assert_ne!(a.key(), b.key());
    }
}
