//! Batched read-model writes through JSON: rows are loaded with `row_to_json`, changed in memory
//! and written back with one `jsonb_populate_recordset` upsert per table and batch. One round
//! trip per table instead of one per event is what makes catch-up fast.

use std::collections::HashMap;
use std::hash::Hash;

use serde::Serialize;
use serde::de::DeserializeOwned;
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
    let mut json = serde_json::to_value(rows)?;
    truncate_timestamps(&mut json);
    sqlx::query(&sql).bind(json.to_string()).execute(conn).await?;
    Ok(())
}

/// Cuts RFC 3339 timestamps to microseconds. Postgres keeps microseconds and *rounds* longer
/// fractions, while a state folded in memory truncates them (`micros`): without this, a read model
/// row and the same row replayed from the events could differ by a microsecond.
fn truncate_timestamps(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            let b = s.as_bytes();
            if b.len() > 26 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' {
                let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits > 6 {
                    s.replace_range(26..20 + digits, "");
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(truncate_timestamps),
        serde_json::Value::Object(map) => map.values_mut().for_each(truncate_timestamps),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::truncate_timestamps;

    #[test]
    fn timestamps_are_cut_to_microseconds_and_nothing_else_changes() {
        let mut v = serde_json::json!({
            "a": "2026-11-27T02:54:21.932402789Z",
            "b": ["2026-11-27T02:54:21.932402Z", "2026-11-27T02:54:21.9324029+03:00"],
            "c": "not.a timestamp at all, but long enough",
            "d": 5
        });
        truncate_timestamps(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "a": "2026-11-27T02:54:21.932402Z",
                "b": ["2026-11-27T02:54:21.932402Z", "2026-11-27T02:54:21.932402+03:00"],
                "c": "not.a timestamp at all, but long enough",
                "d": 5
            })
        );
    }
}
