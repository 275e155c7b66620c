//! Prices and mileages as listing pages write them.
//!
//! Prices: `85 000 ₽` (the space may be a no-break, thin or narrow space), `85000 руб.`, `85 т.р.`,
//! `85 тыс. руб`, `85 тыс`, `85к`, `45000р`, `RUB 85000`, `цена: 85 000`, `от 70 000 ₽` (a starting
//! price), ranges `50 000 – 70 000 ₽` / `от 50 до 70 т.р.`, and foreign prices `¥170,000`, `170 000
//! 円`, `$1,200`, `1 200 USD`, `€900`, `₩3 500 000`. A number needs a currency, a thousands word or a
//! price word to be read as a price, so years, quantities and part numbers are not. A number followed
//! by `км` is a mileage, never a price (`120 тыс. км`).
//!
//! Structured prices (`itemprop="price" content="85000"`, `priceCurrency`) carry no sign and count
//! as they are ([`parse_structured_price`]; the old system lost them).
//!
//! **A range counts as its lower end**, like `от …`: that is the price the listing can be bought
//! at. The upper end is kept on the listing ([`PriceText::high`]) but is not a second data point,
//! so a range does not weigh twice in the statistics or the confidence.
//!
//! Bounds: a price is taken between [`MIN_PRICE_RUB`] and [`MAX_PRICE_RUB`] roubles after
//! conversion; a mileage up to [`MAX_MILEAGE_KM`].

use serde::{Deserialize, Serialize};

use super::currency::{Currency, Rates};

/// Cheapest price taken from a page (below it is a part, a deposit or a typo).
pub const MIN_PRICE_RUB: u64 = 1_000;
/// Dearest price taken from a page.
pub const MAX_PRICE_RUB: u64 = 15_000_000;
/// Highest mileage taken from a page.
pub const MAX_MILEAGE_KM: u32 = 500_000;

/// A price read from text, before conversion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PriceText {
    /// The price, or the lower end of a range, in units of `currency`.
    pub amount: f64,
    /// The upper end of a range.
    pub high: Option<f64>,
    pub currency: Currency,
    /// Written as a starting price (`от 70 000 ₽`).
    pub from: bool,
}

/// Why a price was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceRejection {
    /// No price in the text.
    NoPrice,
    /// The structured price names a currency that cannot be converted.
    UnknownCurrency,
    /// Below [`MIN_PRICE_RUB`] after conversion.
    BelowBound,
    /// Above [`MAX_PRICE_RUB`] after conversion.
    AboveBound,
}

impl PriceText {
    /// The price in whole roubles within the bounds, with the range's upper end when it is one.
    pub fn to_rub(&self, rates: &Rates) -> Result<(u64, Option<u64>), PriceRejection> {
        let low = rates.to_rub(self.amount, self.currency).ok_or(PriceRejection::NoPrice)?;
        check_bounds(low)?;
        let high =
            self.high.and_then(|h| rates.to_rub(h, self.currency)).filter(|h| *h > low && check_bounds(*h).is_ok());
        Ok((low, high))
    }
}

fn check_bounds(rub: u64) -> Result<(), PriceRejection> {
    if rub < MIN_PRICE_RUB {
        Err(PriceRejection::BelowBound)
    } else if rub > MAX_PRICE_RUB {
        Err(PriceRejection::AboveBound)
    } else {
        Ok(())
    }
}

/// The first price in `text` (see the module doc for what counts), without bounds.
pub fn parse_price(text: &str) -> Option<PriceText> {
    let s = normalize(text);
    let mut i = 0;
    while i < s.len() {
        if starts_number(&s, i)
            && let Some(found) = price_at(&s, i)
        {
            return Some(found);
        }
        i += 1;
    }
    None
}

/// The first price in `text` in whole roubles within the bounds: `"от 70 000 ₽"` → 70 000,
/// `"999 ₽"` → none.
pub fn parse_rub_price(text: &str, rates: &Rates) -> Option<u64> {
    parse_price(text)?.to_rub(rates).ok().map(|(low, _)| low)
}

/// A structured price: the bare number of `itemprop="price" content="85000"` (or JSON-LD
/// `"price": "85000.00"`) with the currency code beside it (`priceCurrency`), roubles when none
/// is given. `Err(UnknownCurrency)` for a currency that cannot be converted.
pub fn parse_structured_price(value: &str, currency: Option<&str>) -> Result<PriceText, PriceRejection> {
    let currency = match currency.map(str::trim).filter(|c| !c.is_empty()) {
        None => Currency::Rub,
        Some(code) => Currency::parse_code(code).ok_or(PriceRejection::UnknownCurrency)?,
    };
    let compact: String = normalize(value).into_iter().filter(|c| *c != ' ' && *c != '\'').collect();
    // A structured value may still carry a sign or a code ("85000 RUB"): read it as text then.
    if !compact.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',') {
        return parse_price(value).ok_or(PriceRejection::NoPrice);
    }
    let amount = read_plain_number(&compact).ok_or(PriceRejection::NoPrice)?;
    if amount <= 0.0 {
        return Err(PriceRejection::NoPrice);
    }
    Ok(PriceText { amount, high: None, currency, from: false })
}

/// `85000`, `85000.00`, `85000,5`, `85,000` (a comma before exactly three digits groups thousands).
fn read_plain_number(s: &str) -> Option<f64> {
    let separators = s.chars().filter(|c| *c == '.' || *c == ',').count();
    let cleaned: String = if separators == 0 {
        s.to_string()
    } else {
        let last = s.rfind(['.', ','])?;
        let fraction_len = s.len() - last - 1;
        if fraction_len == 3 || separators > 1 && fraction_len != 1 && fraction_len != 2 {
            s.chars().filter(char::is_ascii_digit).collect()
        } else {
            let int: String = s[..last].chars().filter(char::is_ascii_digit).collect();
            format!("{int}.{}", &s[last + 1..])
        }
    };
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The first mileage in `text`: `120 000 км`, `120000 km`, `120 тыс. км`, `120т.км`, `пробег 85 000`.
/// Up to [`MAX_MILEAGE_KM`].
pub fn parse_mileage(text: &str) -> Option<u32> {
    let s = normalize(text);
    let mut i = 0;
    while i < s.len() {
        if starts_number(&s, i)
            && let Some(km) = mileage_at(&s, i)
        {
            return (km <= f64::from(MAX_MILEAGE_KM)).then_some(km.round() as u32);
        }
        i += 1;
    }
    None
}

// ------------------------------------------------------------------------------------------ lexing

/// Lowercase, `ё` → `е`, every kind of space → ` `, every dash → `-`, zero-width characters removed.
fn normalize(text: &str) -> Vec<char> {
    text.chars()
        .filter_map(|c| match c {
            '\u{200b}'..='\u{200d}' | '\u{feff}' | '\u{ad}' => None,
            '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => Some(' '),
            c if c.is_whitespace() => Some(' '),
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe58}' | '\u{fe63}' | '\u{ff0d}' => Some('-'),
            'ё' | 'Ё' => Some('е'),
            c => Some(c.to_lowercase().next().unwrap_or(c)),
        })
        .collect()
}

/// A number starts at `i`: a digit not glued to a letter, digit or decimal point before it
/// (`A245E`, `2.0`, `RAV4`).
fn starts_number(s: &[char], i: usize) -> bool {
    if !s[i].is_ascii_digit() {
        return false;
    }
    match i.checked_sub(1).map(|p| s[p]) {
        None => true,
        Some(p) if p.is_alphanumeric() => {
            // "$1200", "¥170000" have a symbol before; "usd1200" or "х2" are not numbers of ours.
            false
        }
        Some('.' | ',') => i < 2 || !s[i - 2].is_ascii_digit(),
        Some(_) => true,
    }
}

struct Number {
    value: f64,
    end: usize,
}

/// Reads `85 000`, `1 200 000`, `85000`, `1,200.50`, `85,5` from `start` (a digit).
fn read_number(s: &[char], start: usize) -> Number {
    let mut i = start;
    let mut digits = String::new();
    while i < s.len() && s[i].is_ascii_digit() {
        digits.push(s[i]);
        i += 1;
    }
    // Thousands groups: a leading group of 1-3 digits, then groups of exactly three.
    if digits.len() <= 3 {
        while i + 3 < s.len()
            && matches!(s[i], ' ' | '\'' | '.' | ',')
            && s[i + 1..=i + 3].iter().all(char::is_ascii_digit)
            && !s.get(i + 4).is_some_and(char::is_ascii_digit)
        {
            digits.extend(&s[i + 1..=i + 3]);
            i += 4;
        }
    }
    let mut value: f64 = digits.parse().unwrap_or(0.0);
    // Decimals: one or two digits after a point or comma.
    if i + 1 < s.len() && matches!(s[i], '.' | ',') && s[i + 1].is_ascii_digit() {
        let frac_len = s[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac_len <= 2 {
            let frac: String = s[i + 1..i + 1 + frac_len].iter().collect();
            value += frac.parse::<f64>().unwrap_or(0.0) / 10f64.powi(frac_len as i32);
            i += 1 + frac_len;
        }
    }
    Number { value, end: i }
}

fn skip_spaces(s: &[char], mut i: usize) -> usize {
    while i < s.len() && s[i] == ' ' {
        i += 1;
    }
    i
}

/// How a word is matched.
#[derive(Clone, Copy)]
enum Fit {
    /// The whole word (no letter right after).
    Word,
    /// The word's beginning; the rest of its letters are consumed (`руб` → `рублей`).
    Stem,
    /// A symbol: nothing is required after it.
    Symbol,
}

/// Matches `pattern` at `i` and returns the index after it (and after a following dot).
fn match_at(s: &[char], i: usize, pattern: &str, fit: Fit) -> Option<usize> {
    let mut j = i;
    for p in pattern.chars() {
        if s.get(j) != Some(&p) {
            return None;
        }
        j += 1;
    }
    match fit {
        Fit::Symbol => return Some(j),
        Fit::Stem => {
            while j < s.len() && s[j].is_alphabetic() {
                j += 1;
            }
        }
        Fit::Word => {
            if s.get(j).is_some_and(|c| c.is_alphabetic()) {
                return None;
            }
        }
    }
    if s.get(j) == Some(&'.') {
        j += 1;
    }
    Some(j)
}

fn first_match<T: Copy>(s: &[char], i: usize, table: &[(&str, Fit, T)]) -> Option<(usize, T)> {
    table.iter().find_map(|(pattern, fit, value)| match_at(s, i, pattern, *fit).map(|end| (end, *value)))
}

/// Currency signs and words; `р` alone only as a whole word (`45000р`, `45 000 р.`).
const CURRENCIES: &[(&str, Fit, Currency)] = &[
    ("₽", Fit::Symbol, Currency::Rub),
    ("руб", Fit::Stem, Currency::Rub),
    ("р", Fit::Word, Currency::Rub),
    ("rub", Fit::Word, Currency::Rub),
    ("rur", Fit::Word, Currency::Rub),
    ("$", Fit::Symbol, Currency::Usd),
    ("usd", Fit::Word, Currency::Usd),
    ("долл", Fit::Stem, Currency::Usd),
    ("dollar", Fit::Stem, Currency::Usd),
    ("€", Fit::Symbol, Currency::Eur),
    ("eur", Fit::Stem, Currency::Eur),
    ("евро", Fit::Word, Currency::Eur),
    ("¥", Fit::Symbol, Currency::Jpy),
    ("￥", Fit::Symbol, Currency::Jpy),
    ("円", Fit::Symbol, Currency::Jpy),
    ("jpy", Fit::Word, Currency::Jpy),
    ("yen", Fit::Word, Currency::Jpy),
    ("йен", Fit::Stem, Currency::Jpy),
    ("иен", Fit::Stem, Currency::Jpy),
    ("₩", Fit::Symbol, Currency::Krw),
    ("krw", Fit::Word, Currency::Krw),
    ("вон", Fit::Word, Currency::Krw),
];

/// Signs and codes written before a number (`$1 200`, `RUB 85000`).
const PREFIX_CURRENCIES: &[(&str, Currency)] = &[
    ("₽", Currency::Rub),
    ("rub", Currency::Rub),
    ("$", Currency::Usd),
    ("usd", Currency::Usd),
    ("€", Currency::Eur),
    ("eur", Currency::Eur),
    ("¥", Currency::Jpy),
    ("￥", Currency::Jpy),
    ("jpy", Currency::Jpy),
    ("₩", Currency::Krw),
    ("krw", Currency::Krw),
];

/// A multiplier word, and whether it says roubles itself.
#[derive(Clone, Copy)]
struct Multiplier {
    factor: f64,
    roubles: bool,
}

const THOUSAND: Multiplier = Multiplier { factor: 1_000.0, roubles: false };
const THOUSAND_RUB: Multiplier = Multiplier { factor: 1_000.0, roubles: true };
const MILLION: Multiplier = Multiplier { factor: 1_000_000.0, roubles: false };

const MULTIPLIERS: &[(&str, Fit, Multiplier)] = &[
    ("т.р", Fit::Word, THOUSAND_RUB),
    ("т. р", Fit::Word, THOUSAND_RUB),
    ("тр", Fit::Word, THOUSAND_RUB),
    ("тыс", Fit::Stem, THOUSAND),
    ("т", Fit::Word, THOUSAND),
    ("к", Fit::Word, THOUSAND),
    ("k", Fit::Word, THOUSAND),
    ("млн", Fit::Stem, MILLION),
];

/// Kilometres (`км`, `km`, and `ткм` = thousand kilometres).
const KILOMETRES: &[(&str, Fit, f64)] = &[("км", Fit::Word, 1.0), ("km", Fit::Word, 1.0), ("ткм", Fit::Word, 1_000.0)];

/// Words that make the number after them a price in roubles (`цена: 85 000`).
const PRICE_WORDS: &[&str] = &["цена", "стоимость", "price"];
/// Words that make the number after them a mileage (`пробег 85 000`).
const MILEAGE_WORDS: &[&str] = &["пробег", "пробегом", "mileage"];

/// A number with its optional multiplier.
struct Amount {
    value: f64,
    multiplier: Option<Multiplier>,
    end: usize,
}

fn amount_at(s: &[char], start: usize) -> Amount {
    let number = read_number(s, start);
    let after = skip_spaces(s, number.end);
    match first_match(s, after, MULTIPLIERS) {
        Some((end, m)) => Amount { value: number.value, multiplier: Some(m), end },
        None => Amount { value: number.value, multiplier: None, end: number.end },
    }
}

/// The word ending right before `i` (skipping spaces and a colon), lowercased.
fn word_before(s: &[char], i: usize) -> String {
    let mut j = i;
    while j > 0 && matches!(s[j - 1], ' ' | ':') {
        j -= 1;
    }
    let end = j;
    while j > 0 && s[j - 1].is_alphabetic() {
        j -= 1;
    }
    s[j..end].iter().collect()
}

/// A currency sign or code right before `i` (`$1 200`, `RUB 85000`).
fn currency_before(s: &[char], i: usize) -> Option<Currency> {
    let mut j = i;
    while j > 0 && s[j - 1] == ' ' {
        j -= 1;
    }
    PREFIX_CURRENCIES.iter().find_map(|(sign, currency)| {
        let len = sign.chars().count();
        let at = j.checked_sub(len)?;
        let matches = s[at..j].iter().copied().eq(sign.chars());
        let bounded = at == 0 || !s[at - 1].is_alphabetic() || !sign.chars().all(char::is_alphabetic);
        (matches && bounded).then_some(*currency)
    })
}

fn is_kilometres(s: &[char], i: usize) -> bool {
    first_match(s, skip_spaces(s, i), KILOMETRES).is_some()
}

fn price_at(s: &[char], start: usize) -> Option<PriceText> {
    let first = amount_at(s, start);
    if is_kilometres(s, first.end) {
        return None;
    }
    let mut end = first.end;
    let mut second = None;
    // A range: "50 000 - 70 000", "от 50 до 70".
    let after = skip_spaces(s, end);
    let joiner = if s.get(after) == Some(&'-') { Some(after + 1) } else { match_at(s, after, "до", Fit::Word) };
    if let Some(j) = joiner {
        let k = skip_spaces(s, j);
        if k < s.len() && s[k].is_ascii_digit() {
            let amount = amount_at(s, k);
            if is_kilometres(s, amount.end) {
                return None;
            }
            end = amount.end;
            second = Some(amount);
        }
    }
    let suffix = first_match(s, skip_spaces(s, end), CURRENCIES).map(|(_, c)| c);
    let prefix = currency_before(s, start);
    let previous = word_before(s, start);
    let multiplier = first.multiplier.or(second.as_ref().and_then(|a| a.multiplier));
    let currency = suffix
        .or(prefix)
        .or_else(|| multiplier.map(|_| Currency::Rub))
        .or_else(|| PRICE_WORDS.contains(&previous.as_str()).then_some(Currency::Rub))?;
    let scale =
        |a: &Amount, inherited: Option<Multiplier>| a.value * a.multiplier.or(inherited).map_or(1.0, |m| m.factor);
    let inherited = second.as_ref().and_then(|a| a.multiplier);
    let low = scale(&first, if first.value <= second.as_ref().map_or(0.0, |a| a.value) { inherited } else { None });
    let high = second.as_ref().map(|a| scale(a, first.multiplier));
    if low <= 0.0 {
        return None;
    }
    let high = high.filter(|h| *h > low);
    Some(PriceText { amount: low, high, currency, from: previous == "от" })
}

fn mileage_at(s: &[char], start: usize) -> Option<f64> {
    let amount = amount_at(s, start);
    let factor = amount.multiplier.map_or(1.0, |m| m.factor);
    if let Some((_, km)) = first_match(s, skip_spaces(s, amount.end), KILOMETRES) {
        return Some(amount.value * factor * km);
    }
    let previous = word_before(s, start);
    let said = MILEAGE_WORDS.contains(&previous.as_str());
    // "пробег 85 000" or "пробег 85 тыс", but not a price after the word.
    let priced = first_match(s, skip_spaces(s, amount.end), CURRENCIES).is_some()
        || amount.multiplier.is_some_and(|m| m.roubles);
    (said && !priced).then_some(amount.value * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(text: &str) -> Option<(f64, Option<f64>, Currency, bool)> {
        parse_price(text).map(|p| (p.amount, p.high, p.currency, p.from))
    }

    fn rub(text: &str) -> Option<f64> {
        parse_price(text).filter(|p| p.currency == Currency::Rub).map(|p| p.amount)
    }

    #[test]
    fn examples_of_the_old_system() {
        let rates = Rates::offline();
        assert_eq!(parse_rub_price("от 70 000 ₽", &rates), Some(70_000));
        assert_eq!(parse_rub_price("999 ₽", &rates), None, "below the bound");
        assert_eq!(parse_rub_price("16 000 000 ₽", &rates), None, "above the bound");
        assert_eq!(parse_rub_price("15 000 000 ₽", &rates), Some(15_000_000));
        assert_eq!(parse_rub_price("1 000 ₽", &rates), Some(1_000));
        // The old system needed ₽/руб/RUB and lost these two.
        assert_eq!(parse_rub_price("45000р", &rates), Some(45_000));
        assert_eq!(parse_rub_price("$1200", &rates), Some(105_600));
    }

    #[test]
    fn spaces_of_every_kind_group_thousands() {
        for text in [
            "85 000 ₽",
            "85\u{a0}000 ₽",
            "85\u{2009}000\u{a0}₽",
            "85\u{202f}000₽",
            "85000₽",
            "85 000 руб.",
            "85000 рублей",
        ] {
            assert_eq!(rub(text), Some(85_000.0), "{text:?}");
        }
        assert_eq!(rub("1 250 000 руб"), Some(1_250_000.0));
        assert_eq!(rub("RUB 85000"), Some(85_000.0));
        assert_eq!(rub("85 000 RUB"), Some(85_000.0));
        assert_eq!(rub("85 000 р."), Some(85_000.0));
        assert_eq!(rub("Цена: 85 000"), Some(85_000.0), "a price word says roubles");
        assert_eq!(rub("Стоимость 85000"), Some(85_000.0));
    }

    #[test]
    fn thousands_words() {
        for text in [
            "85 т.р.",
            "85т.р.",
            "85 т.р",
            "85 т. р.",
            "85 тр",
            "85 тыс. руб",
            "85 тыс.руб.",
            "85 тыс",
            "85 тысяч рублей",
            "85к",
            "85 k",
            "85т",
        ] {
            assert_eq!(rub(text), Some(85_000.0), "{text:?}");
        }
        assert_eq!(rub("85,5 тыс"), Some(85_500.0));
        assert_eq!(rub("1,2 млн руб"), Some(1_200_000.0));
    }

    #[test]
    fn ranges_count_their_lower_end() {
        assert_eq!(price("50 000 – 70 000 ₽"), Some((50_000.0, Some(70_000.0), Currency::Rub, false)));
        assert_eq!(price("50 000-70 000 руб"), Some((50_000.0, Some(70_000.0), Currency::Rub, false)));
        assert_eq!(price("от 50 000 до 70 000 ₽"), Some((50_000.0, Some(70_000.0), Currency::Rub, true)));
        assert_eq!(price("50–70 т.р."), Some((50_000.0, Some(70_000.0), Currency::Rub, false)));
        assert_eq!(price("от 70 000 ₽"), Some((70_000.0, None, Currency::Rub, true)));
        // A falling "range" is not one: its first number stands alone.
        assert_eq!(price("70 000 - 50 000 ₽"), Some((70_000.0, None, Currency::Rub, false)));
        let rates = Rates::offline();
        assert_eq!(parse_price("50 000 – 70 000 ₽").unwrap().to_rub(&rates), Ok((50_000, Some(70_000))));
    }

    #[test]
    fn foreign_currencies_are_recognised() {
        assert_eq!(price("¥170,000"), Some((170_000.0, None, Currency::Jpy, false)));
        assert_eq!(price("170 000 円"), Some((170_000.0, None, Currency::Jpy, false)));
        assert_eq!(price("170000 JPY"), Some((170_000.0, None, Currency::Jpy, false)));
        assert_eq!(price("170 тыс. йен"), Some((170_000.0, None, Currency::Jpy, false)));
        assert_eq!(price("$1,200.50"), Some((1_200.5, None, Currency::Usd, false)));
        assert_eq!(price("1 200 USD"), Some((1_200.0, None, Currency::Usd, false)));
        assert_eq!(price("€900"), Some((900.0, None, Currency::Eur, false)));
        assert_eq!(price("900 EUR"), Some((900.0, None, Currency::Eur, false)));
        assert_eq!(price("900 евро"), Some((900.0, None, Currency::Eur, false)));
        assert_eq!(price("₩3 500 000"), Some((3_500_000.0, None, Currency::Krw, false)));
        assert_eq!(price("3500000 KRW"), Some((3_500_000.0, None, Currency::Krw, false)));
        let rates = Rates::offline();
        assert_eq!(parse_rub_price("¥170,000", &rates), Some(85_000));
        assert_eq!(parse_rub_price("₩3 500 000", &rates), Some(227_500));
        assert_eq!(parse_rub_price("$5", &rates), None, "440 roubles is below the bound");
    }

    #[test]
    fn numbers_that_are_not_prices() {
        assert_eq!(parse_price("A245E 2012 года, 3 шт"), None);
        assert_eq!(parse_price("пробег 120 тыс. км"), None);
        assert_eq!(parse_price("120 000 км"), None);
        assert_eq!(parse_price("RAV4 2.0"), None);
        assert_eq!(parse_price("цена по запросу"), None);
        assert_eq!(parse_price(""), None);
        assert_eq!(parse_price("0 ₽"), None);
        // The price after a mileage and a year is found.
        assert_eq!(rub("2015 г., пробег 95 000 км, 85 000 ₽"), Some(85_000.0));
        assert_eq!(rub("Коробка A245E — 45 000 ₽"), Some(45_000.0));
    }

    #[test]
    fn structured_prices_count_without_a_sign() {
        let p = parse_structured_price("85000", None).unwrap();
        assert_eq!((p.amount, p.currency), (85_000.0, Currency::Rub));
        assert_eq!(parse_structured_price("85000.00", Some("RUB")).unwrap().amount, 85_000.0);
        assert_eq!(parse_structured_price("85 000", Some("")).unwrap().amount, 85_000.0);
        assert_eq!(parse_structured_price("85,000", None).unwrap().amount, 85_000.0);
        assert_eq!(parse_structured_price("1200.5", Some("usd")).unwrap().currency, Currency::Usd);
        assert_eq!(parse_structured_price("85000", Some("GBP")), Err(PriceRejection::UnknownCurrency));
        assert_eq!(parse_structured_price("", None), Err(PriceRejection::NoPrice));
        assert_eq!(parse_structured_price("0", None), Err(PriceRejection::NoPrice));
        assert_eq!(parse_structured_price("85 000 ₽", None).unwrap().amount, 85_000.0, "a sign in the value");
        let rates = Rates::offline();
        assert_eq!(parse_structured_price("500", None).unwrap().to_rub(&rates), Err(PriceRejection::BelowBound));
    }

    #[test]
    fn mileages() {
        for (text, km) in [
            ("120 000 км", 120_000),
            ("120000 km", 120_000),
            ("120\u{a0}000\u{a0}км", 120_000),
            ("120 тыс. км", 120_000),
            ("120 тыс км", 120_000),
            ("120т.км", 120_000),
            ("120 ткм", 120_000),
            ("Пробег: 85 000", 85_000),
            ("пробег 85 тыс", 85_000),
            ("0 км", 0),
            ("500 000 км", 500_000),
        ] {
            assert_eq!(parse_mileage(text), Some(km), "{text:?}");
        }
        assert_eq!(parse_mileage("600 000 км"), None, "above the bound");
        assert_eq!(parse_mileage("85 000 ₽"), None);
        assert_eq!(parse_mileage("пробег 85 000 ₽"), None);
        assert_eq!(parse_mileage("2015 г., пробег 95 000 км, 85 000 ₽"), Some(95_000));
    }
}
