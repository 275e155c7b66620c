//! The title filter: only whole used gearboxes are priced.
//!
//! A listing is dropped, with the keyword that decided it, when its title names
//! 1. a part rather than a whole gearbox (гидроблок, насос, сальник, вал, поддон, фильтр, датчик,
//!    ремкомплект, мехатроник, соленоид, …),
//! 2. a broken or parts-only unit (на запчасти, под восстановление, требует ремонта, дефект, не
//!    работает, пинает, …; "с разборки" alone is a normal used unit),
//! 3. a new or rebuilt unit (новая, восстановленная, rebuilt; "как новая" is used),
//! 4. or, for titles of five characters or more, nothing that says "whole gearbox": коробка, КПП,
//!    АКПП, вариатор, контрактная, б/у, в сборе, … or the searched code itself (`JF011E Nissan`).
//!
//! Words are matched at word starts on the lowercased title (`ё` = `е`), so "вал" drops "Вал
//! первичный" but not "интервал", and "насос" also drops "насоса".

use super::listing::DropReason;

#[derive(Clone, Copy)]
enum How {
    /// The whole word.
    Word,
    /// The beginning of a word (Russian endings vary).
    Stem,
}

use How::{Stem, Word};

/// Parts sold separately, and units that are not a gearbox.
const PARTS: &[(&str, How)] = &[
    ("гидроблок", Stem),
    ("гидроплит", Stem),
    ("мехатроник", Stem),
    ("mechatronic", Stem),
    ("насос", Stem),
    ("сальник", Stem),
    ("вал", Word),
    ("вала", Word),
    ("валы", Word),
    ("валу", Word),
    ("валом", Word),
    ("валов", Word),
    ("поддон", Stem),
    ("фильтр", Stem),
    ("датчик", Stem),
    ("ремкомплект", Stem),
    ("рем. комплект", Stem),
    ("соленоид", Stem),
    ("фрикцион", Stem),
    ("шестерн", Stem),
    ("гидротрансформатор", Stem),
    ("блок управления", Stem),
    ("эбу", Word),
    ("кулис", Stem),
    ("трос", Word),
    ("тросик", Stem),
    ("радиатор", Stem),
    ("подушк", Stem),
    ("пыльник", Stem),
    ("прокладк", Stem),
    ("масло", Word),
    ("масла", Word),
    ("щуп", Stem),
    ("маховик", Stem),
    ("корзин", Stem),
    ("раздатк", Stem),
    ("раздаточн", Stem),
    ("крышк", Stem),
];

/// Broken units and units sold for parts.
const DEFECTS: &[(&str, How)] = &[
    ("на запчасти", Word),
    ("под запчасти", Word),
    ("под восстановление", Word),
    ("требует ремонта", Word),
    ("требуется ремонт", Word),
    ("в ремонт", Word),
    ("дефект", Stem),
    ("неисправн", Stem),
    ("не работ", Stem),
    ("не едет", Word),
    ("нет задней", Word),
    ("нет передач", Stem),
    ("пинает", Word),
    ("толчок", Word),
    ("толчки", Word),
    ("рывок", Word),
    ("рывки", Word),
    ("горит check", Word),
];

/// New and rebuilt units.
const NEW_OR_REBUILT: &[(&str, How)] = &[
    ("новая", Word),
    ("новый", Word),
    ("новое", Word),
    ("новую", Word),
    ("восстановл", Stem),
    ("remanufactured", Word),
    ("rebuilt", Word),
    ("reman", Word),
];

/// Words that say the listing is a whole gearbox.
const WHOLE: &[(&str, How)] = &[
    ("в сборе", Word),
    ("коробк", Stem),
    ("кпп", Stem),
    ("акпп", Stem),
    ("мкпп", Stem),
    ("ркпп", Stem),
    ("вариатор", Stem),
    ("робот", Stem),
    ("автомат", Stem),
    ("механика", Word),
    ("контракт", Stem),
    ("б/у", Word),
    ("бу", Word),
    ("cvt", Word),
    ("dsg", Word),
    ("dct", Word),
    ("трансмисси", Stem),
    ("transmission", Stem),
    ("gearbox", Stem),
];

/// Titles shorter than this (in characters) are not required to name a whole gearbox.
const SHORT_TITLE: usize = 5;

fn normalize(title: &str) -> String {
    title
        .chars()
        .map(|c| match c {
            'ё' | 'Ё' => 'е',
            c if c.is_whitespace() => ' ',
            c => c.to_lowercase().next().unwrap_or(c),
        })
        .collect()
}

/// The first keyword of `table` found at a word start of `text` (already normalised).
fn find(text: &str, table: &[(&'static str, How)]) -> Option<&'static str> {
    table.iter().find(|(word, how)| occurs(text, word, *how)).map(|(word, _)| *word)
}

fn occurs(text: &str, word: &str, how: How) -> bool {
    let mut from = 0;
    while let Some(pos) = text[from..].find(word) {
        let start = from + pos;
        let end = start + word.len();
        let starts_word = !text[..start].chars().next_back().is_some_and(char::is_alphanumeric);
        let ends_word = match how {
            Stem => true,
            Word => !text[end..].chars().next().is_some_and(char::is_alphanumeric),
        };
        if starts_word && ends_word {
            return true;
        }
        from = start + word.chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// "как новая": a used unit in good condition, not a new one.
fn only_like_new(text: &str) -> bool {
    ["как новая", "как новый", "как новое", "как новую"].iter().any(|w| occurs(text, w, Word))
        && !["новая", "новый", "новое", "новую"].iter().any(|w| {
            // A "new" not preceded by "как".
            let mut from = 0;
            while let Some(pos) = text[from..].find(w) {
                let start = from + pos;
                let before = text[..start].trim_end();
                if !before.ends_with("как") && occurs(&text[start..], w, Word) {
                    return true;
                }
                from = start + w.len();
            }
            false
        })
}

/// Checks a listing title; `codes` are the codes searched for (a title naming one is about the
/// gearbox). `Err` says why the listing is dropped.
pub fn check_title(title: &str, codes: &[&str]) -> Result<(), DropReason> {
    let text = normalize(title);
    if let Some(keyword) = find(&text, PARTS) {
        return Err(DropReason::NotWholeGearbox { keyword: keyword.to_string() });
    }
    if let Some(keyword) = find(&text, DEFECTS) {
        return Err(DropReason::Defective { keyword: keyword.to_string() });
    }
    if let Some(keyword) = find(&text, NEW_OR_REBUILT)
        && !(keyword.starts_with("нов") && only_like_new(&text))
    {
        return Err(DropReason::NewOrRebuilt { keyword: keyword.to_string() });
    }
    if text.trim().chars().count() < SHORT_TITLE || find(&text, WHOLE).is_some() {
        return Ok(());
    }
    let names_code =
        codes.iter().map(|c| normalize(c.trim())).filter(|c| c.len() >= 3).any(|c| occurs(&text, &c, Word));
    if names_code { Ok(()) } else { Err(DropReason::NoGearboxWord) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(title: &str) -> Option<DropReason> {
        check_title(title, &["JF011E"]).err()
    }

    fn part(k: &str) -> Option<DropReason> {
        Some(DropReason::NotWholeGearbox { keyword: k.into() })
    }

    fn defect(k: &str) -> Option<DropReason> {
        Some(DropReason::Defective { keyword: k.into() })
    }

    #[test]
    fn parts_are_not_gearboxes() {
        assert_eq!(reason("Гидроблок АКПП A245E"), part("гидроблок"));
        assert_eq!(reason("Насос масляный вариатора JF011E"), part("насос"));
        assert_eq!(reason("Сальник первичного вала"), part("сальник"));
        assert_eq!(reason("Вал первичный КПП"), part("вал"));
        assert_eq!(reason("Поддон АКПП"), part("поддон"));
        assert_eq!(reason("Фильтр вариатора"), part("фильтр"));
        assert_eq!(reason("Датчик скорости КПП"), part("датчик"));
        assert_eq!(reason("Ремкомплект АКПП"), part("ремкомплект"));
        assert_eq!(reason("Мехатроник DSG 0AM"), part("мехатроник"));
        assert_eq!(reason("Масло для вариатора"), part("масло"));
        // Word starts only: "интервал" and "Перевалка" hold no "вал".
        assert_eq!(reason("АКПП, интервал обслуживания 60 000 км"), None);
        assert_eq!(reason("Коробка передач, склад Перевалка"), None);
    }

    #[test]
    fn broken_units_are_dropped() {
        assert_eq!(reason("АКПП на запчасти"), defect("на запчасти"));
        assert_eq!(reason("Вариатор под восстановление"), defect("под восстановление"));
        assert_eq!(reason("КПП требует ремонта"), defect("требует ремонта"));
        assert_eq!(reason("АКПП дефект, пинает"), defect("дефект"));
        assert_eq!(reason("Коробка не работает задняя"), defect("не работ"));
        assert_eq!(reason("Вариатор неисправный"), defect("неисправн"));
        assert_eq!(reason("АКПП пинает при переключении"), defect("пинает"));
        // Sold from a breaker's yard: an ordinary used unit.
        assert_eq!(reason("АКПП с разборки, проверена"), None);
        assert_eq!(reason("АКПП с разборки под запчасти"), defect("под запчасти"));
    }

    #[test]
    fn new_and_rebuilt_units_are_dropped() {
        assert_eq!(reason("Новая АКПП A245E"), Some(DropReason::NewOrRebuilt { keyword: "новая".into() }));
        assert_eq!(reason("Вариатор восстановленный"), Some(DropReason::NewOrRebuilt { keyword: "восстановл".into() }));
        assert_eq!(reason("Rebuilt CVT JF011E"), Some(DropReason::NewOrRebuilt { keyword: "rebuilt".into() }));
        assert_eq!(reason("АКПП как новая, контрактная"), None);
        assert_eq!(reason("Новая АКПП, а не как новая"), Some(DropReason::NewOrRebuilt { keyword: "новая".into() }));
    }

    #[test]
    fn a_whole_gearbox_word_is_needed() {
        for title in [
            "АКПП A245E Toyota Corolla",
            "Коробка передач автомат",
            "Контрактная МКПП",
            "КПП в сборе",
            "Вариатор Nissan Qashqai",
            "Б/у КПП Toyota",
            "CVT Nissan",
            "Трансмиссия",
            "JF011E Nissan Qashqai",
            "Купить jf011e",
            "КПП",
            "Toyo",
            "",
        ] {
            assert_eq!(check_title(title, &["JF011E"]), Ok(()), "{title}");
        }
        assert_eq!(reason("Toyota Corolla 2008"), Some(DropReason::NoGearboxWord));
        assert_eq!(reason("Отзывы покупателей"), Some(DropReason::NoGearboxWord));
        assert_eq!(check_title("Nissan Qashqai JF011E", &[]), Err(DropReason::NoGearboxWord));
        // Five characters or more need a gearbox word; a part of the code is not the code.
        assert_eq!(reason("A245E"), Some(DropReason::NoGearboxWord));
        assert_eq!(reason("Nissan JF011"), Some(DropReason::NoGearboxWord));
    }
}
