//! `aisales secrets rotate-master-key`.

use clap::Subcommand;

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every secret under INTEGRATION_SECRETS_MASTER_KEY (old keys in
    /// INTEGRATION_SECRETS_PREVIOUS_KEYS), in one transaction.
    RotateMasterKey,
}

pub(super) async fn rotate_master_key(settings: &Settings) -> anyhow::Result<()> {
    let pool = crate::infra::db::pool(settings)?;
    let keys = crate::infra::crypto::Keyring::from_settings(settings);
    let mut tx = pool.begin().await?;
    let n = crate::infra::crypto::rotate_all(&mut tx, &keys).await?;
    let data_keys = crate::infra::crypto::rewrap_data_keys(&mut tx, &keys).await?;
    tx.commit().await?;
    println!(
        "{}",
        serde_json::json!({ "reencrypted": n, "data_keys_rewrapped": data_keys, "key_id": keys.current_key_id() })
    );
    Ok(())
}
