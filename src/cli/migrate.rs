//! `aisales migrate`: applies pending migrations; a second run does nothing.

use crate::config::Settings;

/// Applies pending migrations and says which.
pub(super) async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = crate::infra::db::pool(settings)?;
    let applied = crate::infra::db::migrate(&pool).await?;
    if applied.is_empty() {
        println!("database schema is up to date; nothing to apply");
    } else {
        for m in &applied {
            println!("applied {} {}", m.version, m.description);
        }
        println!("{} migration(s) applied", applied.len());
    }
    Ok(())
}
