//! The tenant's own price list: a CSV import (`aisales prices import`) that takes every good row
//! and names every refused one with its reason. Columns by header name (any order, `,` or `;`
//! separated, double quotes as in RFC 4180): `code` (or `oem`, `transmission_code`), `price`, and
//! optionally `condition`, `supplier`, `stock`, `title`, `currency` (RUB only).

use std::collections::HashMap;

use aisales_domain::price::{MAX_PRICE_RUB, MIN_PRICE_RUB};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::CommandError;
use super::price_lookups::list_code;

/// One row of the list, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceListRow {
    pub code: String,
    pub price: u64,
    pub condition: String,
    pub supplier: String,
    pub stock: Option<u32>,
    pub title: Option<String>,
}

/// A row that was not taken, with the line it is on (1 is the header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedRow {
    pub line: usize,
    pub reason: String,
}

/// What a CSV held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedList {
    pub rows: Vec<PriceListRow>,
    pub refused: Vec<RefusedRow>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub taken: usize,
    pub refused: Vec<RefusedRow>,
}

/// Splits one CSV line into fields (quotes may hold the separator and `""`).
fn fields(line: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    // A list is the tenant's text: control characters (which Postgres refuses as NUL) are dropped.
    out.into_iter().map(|f| aisales_domain::text::clean_customer(f.trim())).collect()
}

/// A price as a list writes it: `70000`, `70 000`, `70000.00`, `70 000,50`, with or without `₽`/`руб`.
fn parse_price(text: &str) -> Result<u64, String> {
    let cleaned: String = text
        .trim()
        .trim_end_matches("₽")
        .trim_end_matches("руб.")
        .trim_end_matches("руб")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if cleaned.is_empty() {
        return Err("the price is empty".into());
    }
    let normal = cleaned.replace(',', ".");
    let value: f64 = normal.parse().map_err(|_| format!("`{text}` is not a price in roubles"))?;
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("`{text}` is not a positive price"));
    }
    let rub = value.round() as u64;
    if !(MIN_PRICE_RUB..=MAX_PRICE_RUB).contains(&rub) {
        return Err(format!("{rub} ₽ is outside {MIN_PRICE_RUB}..{MAX_PRICE_RUB} ₽"));
    }
    Ok(rub)
}

/// Reads a price list. A file without the needed columns is an error (nothing is taken).
pub fn parse_csv(text: &str) -> Result<ParsedList, CommandError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(CommandError::invalid("empty_price_list", "the file is empty; the first line names the columns"));
    };
    let sep = if header.matches(';').count() > header.matches(',').count() { ';' } else { ',' };
    let names: Vec<String> = fields(header, sep).into_iter().map(|n| n.to_lowercase()).collect();
    let column = |choices: &[&str]| names.iter().position(|n| choices.contains(&n.as_str()));
    let code_col = column(&["code", "oem", "transmission_code", "код", "артикул"]).ok_or_else(|| {
        CommandError::invalid("invalid_price_list", "the header has no `code` column (or `oem`, `transmission_code`)")
    })?;
    let price_col = column(&["price", "цена"])
        .ok_or_else(|| CommandError::invalid("invalid_price_list", "the header has no `price` column"))?;
    let condition_col = column(&["condition", "состояние"]);
    let supplier_col = column(&["supplier", "поставщик"]);
    let stock_col = column(&["stock", "qty", "остаток"]);
    let title_col = column(&["title", "name", "название"]);
    let currency_col = column(&["currency", "валюта"]);
    let mut out = ParsedList::default();
    let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
    for (index, line) in lines {
        let line_no = index + 1;
        let f = fields(line, sep);
        let get = |col: Option<usize>| col.and_then(|c| f.get(c)).map(String::as_str).unwrap_or("");
        let refuse = |reason: String| RefusedRow { line: line_no, reason };
        let code = list_code(get(Some(code_col)));
        if code.is_empty() {
            out.refused.push(refuse("the code is empty".into()));
            continue;
        }
        if code.chars().count() > 40 || !code.chars().all(|c| c.is_alphanumeric() || "-./()".contains(c)) {
            out.refused.push(refuse(format!("`{code}` is not a part code")));
            continue;
        }
        if aisales_domain::price::is_gearbox_type_label(&code) {
            out.refused.push(refuse(format!("`{code}` is a gearbox type, not a code")));
            continue;
        }
        let currency = get(currency_col).to_uppercase();
        if !matches!(currency.as_str(), "" | "RUB" | "RUR" | "₽" | "РУБ") {
            out.refused.push(refuse(format!("currency `{currency}`: the list takes roubles only")));
            continue;
        }
        let price = match parse_price(get(Some(price_col))) {
            Ok(p) => p,
            Err(reason) => {
                out.refused.push(refuse(reason));
                continue;
            }
        };
        let stock = match get(stock_col) {
            "" => None,
            s => match s.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    out.refused.push(refuse(format!("stock `{s}` is not a whole number")));
                    continue;
                }
            },
        };
        let condition = get(condition_col).to_string();
        let supplier = get(supplier_col).to_string();
        let key = (code.clone(), condition.to_lowercase(), supplier.to_lowercase());
        if let Some(first) = seen.get(&key) {
            out.refused.push(refuse(format!("the same code, condition and supplier as line {first}")));
            continue;
        }
        seen.insert(key, line_no);
        let title = Some(get(title_col).to_string()).filter(|t| !t.is_empty());
        out.rows.push(PriceListRow { code, price, condition, supplier, stock, title });
    }
    Ok(out)
}

/// Imports a price list for `tenant`: good rows are added or replace the row of the same code,
/// condition and supplier; refused rows are reported. One transaction.
pub async fn import(pool: &PgPool, tenant: Uuid, csv: &str) -> Result<ImportReport, CommandError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)").bind(tenant).fetch_one(pool).await?;
    if !exists {
        return Err(CommandError::NotFound("tenant"));
    }
    let parsed = parse_csv(csv)?;
    let mut tx = pool.begin().await?;
    for r in &parsed.rows {
        sqlx::query(
            "INSERT INTO price_list_items (tenant_id, code, condition, supplier, title, price, currency, stock, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'RUB', $7, now()) \
             ON CONFLICT (tenant_id, code, condition, supplier) DO UPDATE SET title = EXCLUDED.title, \
               price = EXCLUDED.price, stock = EXCLUDED.stock, updated_at = now()",
        )
        .bind(tenant)
        .bind(&r.code)
        .bind(&r.condition)
        .bind(&r.supplier)
        .bind(&r.title)
        .bind(r.price as i64)
        .bind(r.stock.map(|s| i32::try_from(s).unwrap_or(i32::MAX)))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(ImportReport { taken: parsed.rows.len(), refused: parsed.refused })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_cells_are_dropped() {
        let parsed = parse_csv("code;price;supplier\nJF011E;70000;Скла\u{0}д\u{1b} 1\n").unwrap();
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.rows[0].supplier, "Склад 1");
    }

    #[test]
    fn takes_good_rows_and_names_every_refused_one() {
        let csv = "code;price;condition;supplier;stock\n\
                   jf011e;70 000;б/у;Склад 1;2\n\
                   A245E;\"45000,00\";;;\n\
                   ;5000;;;\n\
                   CVT;50000;;;\n\
                   U660E;0;;;\n\
                   U660E;дорого;;;\n\
                   JF011E;71000;Б/У;склад 1;\n\
                   RE4F04A;60000;;;x\n";
        let parsed = parse_csv(csv).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0].code, "JF011E");
        assert_eq!(parsed.rows[0].price, 70_000);
        assert_eq!(parsed.rows[0].stock, Some(2));
        assert_eq!(parsed.rows[1].price, 45_000);
        let lines: Vec<usize> = parsed.refused.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7, 8, 9]);
        assert!(parsed.refused[2].reason.contains("positive"), "{:?}", parsed.refused[2]);
        assert!(parsed.refused[4].reason.contains("line 2"), "{:?}", parsed.refused[4]);
        assert!(parsed.refused[5].reason.contains("stock"), "{:?}", parsed.refused[5]);
    }

    #[test]
    fn a_file_without_the_columns_takes_nothing() {
        assert!(parse_csv("name,cost\nx,1\n").is_err());
        assert!(parse_csv("").is_err());
    }
}
