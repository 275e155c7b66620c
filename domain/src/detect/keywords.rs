//! Keyword tables: words that give context to an identifier (VIN, FRAME, gearbox), name a gearbox
//! type, or mark an amount of money.
//!
//! Words are compared lowercased, whole (`Exact`) or by their beginning (`Prefix`, for Russian
//! inflections such as коробка/коробку/коробки). Latin `at`/`mt` only count as whole words written
//! in capitals, so "what", "smtp", "Cat" or the English preposition "at" never read as a gearbox
//! type.

use super::gearbox_type::GearboxType;

/// The word supports a VIN nearby.
pub(crate) const VIN_CONTEXT: u8 = 1;
/// The word supports a FRAME (chassis number) nearby.
pub(crate) const FRAME_CONTEXT: u8 = 2;
/// The word is about gearboxes.
pub(crate) const GEARBOX_CONTEXT: u8 = 4;
/// The word marks an amount of money (руб, т.р., тыс, ₽, 25к).
pub(crate) const MONEY_MARKER: u8 = 8;

/// Meaning of a keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Keyword {
    /// Canonical form, used in reasons (`context:акпп`).
    pub(crate) name: &'static str,
    /// Bit set of [`VIN_CONTEXT`], [`FRAME_CONTEXT`], [`GEARBOX_CONTEXT`], [`MONEY_MARKER`].
    pub(crate) roles: u8,
    /// The gearbox type the word names, if any.
    pub(crate) gearbox: Option<GearboxType>,
}

/// A currency sign or money word.
pub(crate) const MONEY: Keyword = Keyword { name: "money", roles: MONEY_MARKER, gearbox: None };

#[derive(Clone, Copy)]
enum Match {
    Exact,
    Prefix,
    /// Whole word, only when written without lowercase letters (`AT`, `МТ`).
    ExactUpper,
    /// Whole word, only right after a number (`25 т.р.`, `5 к`).
    AfterNumber,
}

struct Entry {
    word: &'static str,
    how: Match,
    keyword: Keyword,
}

const fn entry(word: &'static str, how: Match, name: &'static str, roles: u8, gearbox: Option<GearboxType>) -> Entry {
    Entry { word, how, keyword: Keyword { name, roles, gearbox } }
}

use GearboxType::{Amt, Automatic, Cvt, Dct, Manual};
use Match::{AfterNumber, Exact, ExactUpper, Prefix};

const GB: u8 = GEARBOX_CONTEXT;
const VIN: u8 = VIN_CONTEXT;
const FRAME: u8 = FRAME_CONTEXT;
const BODY: u8 = VIN_CONTEXT | FRAME_CONTEXT;
const MONEY_ROLE: u8 = MONEY_MARKER;

const AT: Option<GearboxType> = Some(Automatic);
const MT: Option<GearboxType> = Some(Manual);
const CVT: Option<GearboxType> = Some(Cvt);
const DCT: Option<GearboxType> = Some(Dct);
const AMT: Option<GearboxType> = Some(Amt);

fn bucket(first: char) -> &'static [Entry] {
    match first {
        'а' => {
            const {
                &[
                    entry("акпп", Prefix, "акпп", GB, AT),
                    entry("акп", Exact, "акпп", GB, AT),
                    entry("автомат", Prefix, "автомат", GB, AT),
                    entry("ат", ExactUpper, "AT", GB, AT),
                ]
            }
        }
        'б' => const { &[entry("бесступенчат", Prefix, "вариатор", GB, CVT)] },
        'в' => {
            const {
                &[
                    entry("вин", Exact, "vin", VIN, None),
                    entry("винкод", Exact, "vin", VIN, None),
                    entry("вариатор", Prefix, "вариатор", GB, CVT),
                ]
            }
        }
        'г' => const { &[entry("гидромеханическ", Prefix, "автомат", GB, AT)] },
        'и' => const { &[entry("идентификацион", Prefix, "vin", VIN, None)] },
        'к' => {
            const {
                &[
                    entry("кпп", Exact, "кпп", GB, None),
                    entry("короб", Prefix, "короб", GB, None),
                    entry("кузов", Prefix, "кузов", BODY, None),
                    entry("к", AfterNumber, "money", MONEY_ROLE, None),
                ]
            }
        }
        'м' => {
            const {
                &[
                    entry("мкпп", Prefix, "мкпп", GB, MT),
                    entry("мкп", Exact, "мкпп", GB, MT),
                    entry("механическ", Prefix, "механика", GB, MT),
                    entry("механика", Exact, "механика", GB, MT),
                    entry("механику", Exact, "механика", GB, MT),
                    entry("механике", Exact, "механика", GB, MT),
                    entry("механикой", Exact, "механика", GB, MT),
                    entry("маркировк", Prefix, "маркировка", GB, None),
                    entry("мт", ExactUpper, "MT", GB, MT),
                    entry("млн", AfterNumber, "money", MONEY_ROLE, None),
                ]
            }
        }
        'п' => {
            const { &[entry("птс", Exact, "птс", VIN, None), entry("преселектив", Prefix, "dsg", GB, DCT)] }
        }
        'р' => {
            const {
                &[
                    entry("ркпп", Prefix, "ркпп", GB, AMT),
                    entry("ркп", Exact, "ркпп", GB, AMT),
                    entry("робот", Prefix, "робот", GB, AMT),
                    entry("рама", Exact, "рама", BODY, None),
                    entry("рамы", Exact, "рама", BODY, None),
                    entry("раме", Exact, "рама", BODY, None),
                    entry("раму", Exact, "рама", BODY, None),
                    entry("рамой", Exact, "рама", BODY, None),
                    entry("руб", Prefix, "money", MONEY_ROLE, None),
                    entry("р", AfterNumber, "money", MONEY_ROLE, None),
                ]
            }
        }
        'с' => {
            const {
                &[entry("стс", Exact, "стс", VIN, None), entry("секвентальн", Prefix, "робот", GB, AMT)]
            }
        }
        'т' => {
            const {
                &[
                    entry("тыс", Prefix, "money", MONEY_ROLE, None),
                    entry("т", AfterNumber, "money", MONEY_ROLE, None),
                    entry("тр", AfterNumber, "money", MONEY_ROLE, None),
                    entry("трансмисс", Prefix, "трансмиссия", GB, None),
                    entry("табличк", Prefix, "табличка", GB, None),
                ]
            }
        }
        'ш' => {
            const {
                &[entry("шильд", Prefix, "шильдик", GB, None), entry("шасси", Exact, "шасси", FRAME, None)]
            }
        }
        'a' => {
            const {
                &[
                    entry("automatic", Prefix, "automatic", GB, AT),
                    entry("at", ExactUpper, "AT", GB, AT),
                    entry("amt", Exact, "amt", GB, AMT),
                ]
            }
        }
        'c' => const { &[entry("cvt", Exact, "cvt", GB, CVT), entry("chassis", Exact, "chassis", FRAME, None)] },
        'd' => const { &[entry("dsg", Exact, "dsg", GB, DCT), entry("dct", Exact, "dsg", GB, DCT)] },
        'e' => {
            const { &[entry("easytronic", Exact, "робот", GB, AMT), entry("eur", Exact, "money", MONEY_ROLE, None)] }
        }
        'f' => const { &[entry("frame", Exact, "frame", FRAME, None)] },
        'g' => const { &[entry("gearbox", Prefix, "gearbox", GB, None)] },
        'k' => const { &[entry("k", AfterNumber, "money", MONEY_ROLE, None)] },
        'l' => const { &[entry("lineartronic", Exact, "вариатор", GB, CVT)] },
        'm' => {
            const {
                &[
                    entry("mt", ExactUpper, "MT", GB, MT),
                    entry("manual", Exact, "manual", GB, MT),
                    entry("multitronic", Exact, "вариатор", GB, CVT),
                ]
            }
        }
        'p' => const { &[entry("pts", Exact, "птс", VIN, None), entry("powershift", Exact, "dsg", GB, DCT)] },
        'r' => const { &[entry("rub", Exact, "money", MONEY_ROLE, None)] },
        's' => {
            const {
                &[
                    entry("sts", Exact, "стс", VIN, None),
                    entry("steptronic", Exact, "автомат", GB, AT),
                    entry("selespeed", Exact, "робот", GB, AMT),
                ]
            }
        }
        't' => {
            const {
                &[entry("transmis", Prefix, "transmission", GB, None), entry("tiptronic", Exact, "автомат", GB, AT)]
            }
        }
        'u' => const { &[entry("usd", Exact, "money", MONEY_ROLE, None)] },
        'v' => const { &[entry("vin", Exact, "vin", VIN, None), entry("vincode", Exact, "vin", VIN, None)] },
        'x' => const { &[entry("xtronic", Exact, "вариатор", GB, CVT)] },
        _ => &[],
    }
}

/// Units that mark money when they directly follow a number inside one word (`25т`, `30тыс`, `5к`).
const MONEY_SUFFIXES: &[&str] = &["т", "тр", "к", "k", "р", "млн"];
const MONEY_SUFFIX_PREFIXES: &[&str] = &["тыс", "руб", "rub"];

/// Classifies one lowercased word. `upper` is true when the word as written had no lowercase
/// letters; `after_number` when the previous non-space character was a digit.
/// `word` is UTF-8 and `first` its first character.
pub(crate) fn classify(word: &[u8], first: char, upper: bool, after_number: bool) -> Option<Keyword> {
    if let Some(last_digit) = word.iter().rposition(u8::is_ascii_digit) {
        let suffix = &word[last_digit + 1..];
        let money = MONEY_SUFFIXES.iter().any(|s| s.as_bytes() == suffix)
            || MONEY_SUFFIX_PREFIXES.iter().any(|p| suffix.starts_with(p.as_bytes()));
        return money.then_some(MONEY);
    }
    bucket(first)
        .iter()
        .find(|e| match e.how {
            Exact => word == e.word.as_bytes(),
            Prefix => word.starts_with(e.word.as_bytes()),
            ExactUpper => upper && word == e.word.as_bytes(),
            AfterNumber => after_number && word == e.word.as_bytes(),
        })
        .map(|e| e.keyword)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(word: &str, upper: bool, after_number: bool) -> Option<Keyword> {
        classify(word.as_bytes(), word.chars().next().unwrap_or(' '), upper, after_number)
    }

    fn name(word: &str, upper: bool) -> Option<&'static str> {
        kw(word, upper, false).map(|k| k.name)
    }

    #[test]
    fn russian_inflections_match_by_prefix() {
        assert_eq!(name("коробку", false), Some("короб"));
        assert_eq!(name("вариатора", false), Some("вариатор"));
        assert_eq!(name("автоматическая", false), Some("автомат"));
        assert_eq!(name("механическая", false), Some("механика"));
        assert_eq!(name("кузова", false), Some("кузов"));
        assert_eq!(name("автомобиль", false), None);
        assert_eq!(name("механик", false), None);
        assert_eq!(name("работа", false), None);
    }

    #[test]
    fn latin_at_and_mt_only_as_capitalised_whole_words() {
        assert_eq!(name("at", true), Some("AT"));
        assert_eq!(name("at", false), None);
        assert_eq!(name("what", false), None);
        assert_eq!(name("smtp", false), None);
        assert_eq!(name("mt", true), Some("MT"));
        assert_eq!(name("ат", true), Some("AT"));
    }

    #[test]
    fn money_markers() {
        assert_eq!(kw("25т", false, false), Some(MONEY));
        assert_eq!(kw("от25т", false, false), Some(MONEY));
        assert_eq!(kw("30тыс", false, false), Some(MONEY));
        assert_eq!(kw("р", false, true), Some(MONEY));
        assert_eq!(kw("р", false, false), None);
        assert_eq!(kw("a245e", false, false), None);
        assert_eq!(kw("рублей", false, false), Some(MONEY));
    }
}
