//! Batched read-model writes through JSON: rows are loaded with `row_to_json`, changed in memory
//! and written back with one `jsonb_populate_recordset` upsert per table and batch. One round
//! trip per table instead of one per event is what makes catch-up fast.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;
use serde::de::{DeserializeOwned, Deserializer, Visitor};
use sqlx::PgConnection;

/// Loads the rows of `table` whose `key` column is in `keys`, keyed by `key_of`.
pub async fn load<K, R>(
    conn: &mut PgConnection,
    table: &str,
    key: &str,
    keys: &[K],
    key_of: impl Fn(&R) -> K,
) -> anyhow::Result<HashMap<K, R>>
where
    K: Eq + Hash + Serialize + Send + Sync,
    R: DeserializeOwned,
    for<'q> Vec<K>: sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    K: Clone,
{
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!("SELECT row_to_json(t)::text FROM {table} t WHERE {key} = ANY($1)");
    let rows: Vec<String> = sqlx::query_scalar(&sql).bind(keys.to_vec()).fetch_all(conn).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for text in rows {
        let row: R = serde_json::from_str(&text)?;
        out.insert(key_of(&row), row);
    }
    Ok(out)
}

/// The columns of a row type: the names of its fields, as serde reads them. A row is written
/// with exactly the columns it has, so the struct is the one list of them.
pub fn columns<R: DeserializeOwned>() -> &'static [&'static str] {
    /// Reads the fields a struct's `Deserialize` asks for, and nothing else.
    struct Fields(Option<&'static [&'static str]>);

    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(serde::de::Error::custom("fields read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields = Fields(None);
    let _ = R::deserialize(&mut fields);
    fields.0.unwrap_or_default()
}

/// Inserts or replaces `rows` in `table` (conflict on `pk`), all columns named in `columns`.
pub async fn upsert<R: Serialize>(
    conn: &mut PgConnection,
    table: &str,
    pk: &[&str],
    columns: &[&str],
    rows: &[R],
) -> anyhow::Result<()> {
    write(conn, table, pk, columns, rows, true).await
}

/// Inserts those of `rows` whose `pk` is not in `table` yet, and leaves the others as stored.
pub async fn insert_missing<R: Serialize>(
    conn: &mut PgConnection,
    table: &str,
    pk: &[&str],
    columns: &[&str],
    rows: &[R],
) -> anyhow::Result<()> {
    write(conn, table, pk, columns, rows, false).await
}

async fn write<R: Serialize>(
    conn: &mut PgConnection,
    table: &str,
    pk: &[&str],
    columns: &[&str],
    rows: &[R],
    replace: bool,
) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let cols = columns.join(", ");
    let updates: Vec<&str> =
        if replace { columns.iter().copied().filter(|c| !pk.contains(c)).collect() } else { Vec::new() };
    let set = if updates.is_empty() {
        "NOTHING".to_string()
    } else {
        format!(
            "UPDATE SET ({}) = ROW({})",
            updates.join(", "),
            updates.iter().map(|c| format!("EXCLUDED.{c}")).collect::<Vec<_>>().join(", ")
        )
    };
    let sql = format!(
        "INSERT INTO {table} ({cols}) SELECT {cols} FROM jsonb_populate_recordset(NULL::{table}, $1::jsonb) \
         ON CONFLICT ({}) DO {set}",
        pk.join(", ")
    );
    let json = truncate_timestamps(serde_json::to_string(rows)?);
    sqlx::query(&sql).bind(json).execute(conn).await?;
    Ok(())
}

/// A timestamp as Postgres stores it (microseconds), so that folded and stored rows compare equal.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// Cuts RFC 3339 timestamps in JSON text to microseconds. Postgres keeps microseconds and
/// *rounds* longer fractions, while a state folded in memory truncates them (`micros`): without
/// this, a read model row and the same row replayed from the events could differ by a
/// microsecond. Works on the text (every string is looked at, with its escapes skipped) so that
/// rows are serialized once, without building a JSON tree first.
pub fn truncate_timestamps(json: String) -> String {
    let b = json.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end] != b'"' {
            end += if b[end] == b'\\' { 2 } else { 1 };
        }
        let s = &b[start..end.min(b.len())];
        if s.len() > 26 && s[4] == b'-' && s[10] == b'T' && s[19] == b'.' {
            let digits = s[20..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 6 && !s[..20 + digits].contains(&b'\\') {
                let o = out.get_or_insert_with(|| Vec::with_capacity(b.len()));
                o.extend_from_slice(&b[copied..start + 26]);
                copied = start + 20 + digits;
            }
        }
        i = end + 1;
    }
    match out {
        None => json,
        Some(mut o) => {
            o.extend_from_slice(&b[copied..]);
            // Only ASCII digits were cut: still UTF-8.
            String::from_utf8(o).expect("cutting ASCII digits keeps UTF-8 valid")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{columns, truncate_timestamps};

    #[test]
    fn the_columns_of_a_row_are_its_fields_in_order() {
        #[derive(serde::Deserialize)]
        #[expect(dead_code, reason = "only the fields' names are read")]
        struct Row {
            id: uuid::Uuid,
            #[serde(rename = "day")]
            date: chrono::NaiveDate,
            tags: Vec<String>,
            note: Option<String>,
        }
        assert_eq!(columns::<Row>(), ["id", "day", "tags", "note"]);
        assert!(columns::<String>().is_empty(), "not a struct: no columns");
    }

    #[test]
    fn timestamps_are_cut_to_microseconds_and_nothing_else_changes() {
        let v = serde_json::json!({
            "a": "2026-11-27T02:54:21.932402789Z",
            "b": ["2026-11-27T02:54:21.932402Z", "2026-11-27T02:54:21.9324029+03:00"],
            "c": "not.a timestamp at all, but long enough",
            "d": 5,
            "e": "quote \" and 2026-11-27T02:54:21.932402789Z inside text",
            "f": "\"2026-11-27T02:54:21.932402789Z\" quoted",
            "g": "Привет 2026-11-27T02:54:21.932402789Z"
        });
        let cut: serde_json::Value = serde_json::from_str(&truncate_timestamps(v.to_string())).unwrap();
        assert_eq!(
            cut,
            serde_json::json!({
                "a": "2026-11-27T02:54:21.932402Z",
                "b": ["2026-11-27T02:54:21.932402Z", "2026-11-27T02:54:21.932402+03:00"],
                "c": "not.a timestamp at all, but long enough",
                "d": 5,
                "e": "quote \" and 2026-11-27T02:54:21.932402789Z inside text",
                "f": "\"2026-11-27T02:54:21.932402789Z\" quoted",
                "g": "Привет 2026-11-27T02:54:21.932402789Z"
            })
        );
        let plain = serde_json::json!([{"x": "2026-11-27T02:54:21.932402Z"}]).to_string();
        assert_eq!(truncate_timestamps(plain.clone()), plain);
    }
}
