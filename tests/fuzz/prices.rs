//! The tenant's price list (`aisales prices import`): any text gives rows and refused lines or a
//! clear error, never a panic; every taken row is a valid one and no line is counted twice.

use aisales::application::price_list::parse_csv;
use aisales_domain::price::{MAX_PRICE_RUB, MIN_PRICE_RUB};
use proptest::prelude::*;

use crate::support::{deterministic, hostile_string, run};

const HEADERS: &[&str] = &[
    "code,price,condition,supplier,stock,title,currency",
    "\u{feff}Артикул;Цена;Состояние;Поставщик;Остаток;Название;Валюта",
    "oem,price",
    "transmission_code;цена;qty",
    "\"code\",\"price\",\"name\"",
    "price,code,code,price",
];

const CELLS: &[&str] = &[
    "U660E",
    "09G-300-033",
    "A6MF1",
    "0AM",
    "70000",
    "70 000",
    "70000.00",
    "70 000,50",
    "12 500 ₽",
    "5000руб.",
    "1e9",
    "-5",
    "0",
    "NaN",
    "inf",
    "новая",
    "б/у",
    "Склад 1",
    "\"a;b\"",
    "\"x\"\"y\"",
    "\"unterminated",
    "12",
    "-1",
    "4294967296",
    "RUB",
    "USD",
    "₽",
    "АКПП",
    "CVT",
    "",
    " ",
    "\t",
];

fn csv() -> BoxedStrategy<String> {
    let cell = prop_oneof![3 => prop::sample::select(CELLS.to_vec()).prop_map(String::from),
                           1 => hostile_string(CELLS.iter().map(|s| s.to_string()).collect())];
    let row = (prop::collection::vec(cell, 0..9), prop::sample::select(vec![",", ";", "\t"]))
        .prop_map(|(cells, sep)| cells.join(sep));
    let ending = prop::sample::select(vec!["\n", "\r\n", "\r", "\n\n"]);
    prop_oneof![
        4 => (prop::sample::select(HEADERS.to_vec()), prop::collection::vec((row, ending), 0..30))
            .prop_map(|(header, rows)| {
                let mut text = header.to_string();
                for (row, end) in rows {
                    text.push_str(end);
                    text.push_str(&row);
                }
                text
            }),
        1 => any::<String>(),
        1 => "[a-z0-9,;\"\n ]{0,200}",
    ]
    .boxed()
}

#[test]
fn price_list_import() {
    run("price_list", csv(), |text| {
        let Ok(list) = deterministic(|| parse_csv(&text))? else { return Ok(()) };
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        prop_assert!(list.rows.len() + list.refused.len() < lines.max(1), "more rows than lines");
        for row in &list.rows {
            prop_assert!(!row.code.is_empty());
            prop_assert!((MIN_PRICE_RUB..=MAX_PRICE_RUB).contains(&row.price), "price out of range: {row:?}");
            prop_assert!(!row.code.contains('\0') && !row.supplier.contains('\0'), "a NUL kept: {row:?}");
        }
        for refused in &list.refused {
            prop_assert!(refused.line >= 2, "line {} refused but the header is line 1", refused.line);
        }
        Ok(())
    });
}
