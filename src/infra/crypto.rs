//! Integration secrets at rest: AES-256-GCM-SIV under `INTEGRATION_SECRETS_MASTER_KEY`.
//!
//! Each value gets a fresh 12-byte nonce. The id of the key that encrypted it is stored with it,
//! so older keys (`INTEGRATION_SECRETS_PREVIOUS_KEYS`) still decrypt during a rotation. The tenant
//! and the secret's name are bound as associated data: a ciphertext copied to another row (another
//! tenant or another name) fails authentication instead of decrypting.

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::config::{MasterKey, Settings};

/// Why a secret could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "secret `{name}` was encrypted with master key {key_id}, which is not configured; \
         add it to INTEGRATION_SECRETS_PREVIOUS_KEYS"
    )]
    UnknownKey { name: String, key_id: String },
    #[error(
        "secret `{name}` failed authentication: the ciphertext was tampered with, moved from another row, \
         or the master key is wrong"
    )]
    Authentication { name: String },
    #[error("secret `{name}` is not stored")]
    Missing { name: String },
    #[error("secret `{name}` is not valid UTF-8 text")]
    NotText { name: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// One usable key with its public id.
struct Key {
    id: String,
    cipher: Aes256GcmSiv,
}

/// Id of a master key: the first 16 hex digits of SHA-256("aisales-master-key" ‖ key). It names the
/// key without revealing it.
pub fn key_id(key: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"aisales-master-key");
    h.update(key);
    hex::encode(&h.finalize()[..8])
}

/// The keyring: the current master key (encrypts) and previous keys (decrypt only).
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
}

/// An encrypted value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

fn make_key(k: &MasterKey) -> Key {
    let bytes = k.expose_secret();
    Key { id: key_id(bytes), cipher: Aes256GcmSiv::new_from_slice(bytes).expect("32-byte key") }
}

/// Associated data binding a value to its row: `aisales:v1:<tenant or global>:<name>`.
fn aad(tenant: Option<Uuid>, name: &str) -> Vec<u8> {
    let scope = tenant.map_or_else(|| "global".to_string(), |t| t.to_string());
    format!("aisales:v1:{scope}:{name}").into_bytes()
}

impl Keyring {
    pub fn from_settings(settings: &Settings) -> Self {
        Keyring {
            current: make_key(&settings.master_key),
            previous: settings.previous_master_keys.iter().map(make_key).collect(),
        }
    }

    /// Id of the key new values are encrypted with.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    pub fn seal(&self, tenant: Option<Uuid>, name: &str, plaintext: &[u8]) -> Sealed {
        let mut nonce = [0u8; 12];
        rand::Rng::fill(&mut rand::rng(), &mut nonce);
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                &Nonce::try_from(&nonce[..]).expect("12-byte nonce"),
                Payload { msg: plaintext, aad: &aad(tenant, name) },
            )
            .expect("AES-GCM-SIV encryption does not fail for in-memory buffers");
        Sealed { key_id: self.current.id.clone(), nonce: nonce.to_vec(), ciphertext }
    }

    pub fn open(&self, tenant: Option<Uuid>, name: &str, sealed: &Sealed) -> Result<Vec<u8>, SecretError> {
        let key = std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| SecretError::UnknownKey { name: name.to_string(), key_id: sealed.key_id.clone() })?;
        if sealed.nonce.len() != 12 {
            return Err(SecretError::Authentication { name: name.to_string() });
        }
        key.cipher
            .decrypt(
                &Nonce::try_from(&sealed.nonce[..]).expect("length checked above"),
                Payload { msg: &sealed.ciphertext, aad: &aad(tenant, name) },
            )
            .map_err(|_| SecretError::Authentication { name: name.to_string() })
    }
}

/// Customer data keys are wrapped by the master keyring, bound to their tenant and subject.
impl aisales_projections::pii::KeyWrap for Keyring {
    fn wrap(&self, tenant: Uuid, subject: Uuid, key: &[u8; 32]) -> (String, Vec<u8>, Vec<u8>) {
        let sealed = self.seal(Some(tenant), &data_key_name(subject), key);
        (sealed.key_id, sealed.nonce, sealed.ciphertext)
    }

    fn unwrap(
        &self,
        tenant: Uuid,
        subject: Uuid,
        key_id: &str,
        nonce: &[u8],
        wrapped: &[u8],
    ) -> anyhow::Result<[u8; 32]> {
        let sealed = Sealed { key_id: key_id.to_string(), nonce: nonce.to_vec(), ciphertext: wrapped.to_vec() };
        let key = self.open(Some(tenant), &data_key_name(subject), &sealed)?;
        key.try_into().map_err(|_| anyhow::anyhow!("the data key of subject {subject} is not 32 bytes"))
    }
}

/// The name a data key is wrapped under (associated data).
fn data_key_name(subject: Uuid) -> String {
    format!("data-key:{subject}")
}

/// Re-wraps every live data key under the current master key, in the caller's transaction.
/// Returns how many were re-wrapped.
pub async fn rewrap_data_keys(conn: &mut PgConnection, keys: &Keyring) -> Result<usize, SecretError> {
    /// Subject, tenant, master key id, nonce and wrapped key.
    type Wrapped = (Uuid, Uuid, String, Vec<u8>, Vec<u8>);
    let rows: Vec<Wrapped> = sqlx::query_as(
        "SELECT subject_id, tenant_id, key_id, nonce, wrapped FROM data_keys \
          WHERE wrapped IS NOT NULL AND key_id <> $1 FOR UPDATE",
    )
    .bind(keys.current_key_id())
    .fetch_all(&mut *conn)
    .await?;
    for (subject, tenant, key_id, nonce, wrapped) in &rows {
        let name = data_key_name(*subject);
        let key = keys.open(
            Some(*tenant),
            &name,
            &Sealed { key_id: key_id.clone(), nonce: nonce.clone(), ciphertext: wrapped.clone() },
        )?;
        let sealed = keys.seal(Some(*tenant), &name, &key);
        sqlx::query("UPDATE data_keys SET key_id = $2, nonce = $3, wrapped = $4 WHERE subject_id = $1")
            .bind(subject)
            .bind(&sealed.key_id)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .execute(&mut *conn)
            .await?;
    }
    Ok(rows.len())
}

/// A masked rendering of a secret for display: its last four characters only.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "••••".into();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("••••{tail}")
}

/// Stores (or replaces) a secret.
pub async fn put(
    conn: &mut PgConnection,
    keys: &Keyring,
    tenant: Option<Uuid>,
    name: &str,
    value: &str,
) -> Result<(), SecretError> {
    let sealed = keys.seal(tenant, name, value.as_bytes());
    sqlx::query(
        "INSERT INTO integration_secrets (id, tenant_id, name, key_id, nonce, ciphertext, hint) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (COALESCE(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), name) DO UPDATE SET \
           key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, \
           hint = EXCLUDED.hint, rotated_at = now()",
    )
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(name)
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(mask(value))
    .execute(conn)
    .await?;
    Ok(())
}

/// Reads and decrypts a secret.
pub async fn get(
    conn: &mut PgConnection,
    keys: &Keyring,
    tenant: Option<Uuid>,
    name: &str,
) -> Result<String, SecretError> {
    let row: Option<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT key_id, nonce, ciphertext FROM integration_secrets WHERE tenant_id IS NOT DISTINCT FROM $1 AND name = $2",
    )
    .bind(tenant)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    let (key_id, nonce, ciphertext) = row.ok_or_else(|| SecretError::Missing { name: name.to_string() })?;
    let plain = keys.open(tenant, name, &Sealed { key_id, nonce, ciphertext })?;
    String::from_utf8(plain).map_err(|_| SecretError::NotText { name: name.to_string() })
}

/// The masked hint of a secret, for display (never the value).
pub async fn hint(conn: &mut PgConnection, tenant: Option<Uuid>, name: &str) -> Result<Option<String>, SecretError> {
    Ok(sqlx::query_scalar("SELECT hint FROM integration_secrets WHERE tenant_id IS NOT DISTINCT FROM $1 AND name = $2")
        .bind(tenant)
        .bind(name)
        .fetch_optional(conn)
        .await?)
}

/// Re-encrypts every secret under the current master key, in the caller's transaction. Fails (and
/// so rolls back everything) if any secret cannot be decrypted. Returns how many were re-encrypted.
pub async fn rotate_all(conn: &mut PgConnection, keys: &Keyring) -> Result<usize, SecretError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        tenant_id: Option<Uuid>,
        name: String,
        key_id: String,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, tenant_id, name, key_id, nonce, ciphertext FROM integration_secrets ORDER BY id FOR UPDATE",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut changed = 0;
    for Row { id, tenant_id: tenant, name, key_id, nonce, ciphertext } in rows {
        let plain = keys.open(tenant, &name, &Sealed { key_id: key_id.clone(), nonce, ciphertext })?;
        if key_id == keys.current_key_id() {
            continue;
        }
        let sealed = keys.seal(tenant, &name, &plain);
        sqlx::query(
            "UPDATE integration_secrets SET key_id = $2, nonce = $3, ciphertext = $4, rotated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .execute(&mut *conn)
        .await?;
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretBox;

    fn ring(current: [u8; 32], previous: &[[u8; 32]]) -> Keyring {
        Keyring {
            current: make_key(&SecretBox::new(Box::new(current))),
            previous: previous.iter().map(|k| make_key(&SecretBox::new(Box::new(*k)))).collect(),
        }
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let k = ring([7; 32], &[]);
        let t = Some(Uuid::now_v7());
        let a = k.seal(t, "channel:x:api_token", b"token-123");
        let b = k.seal(t, "channel:x:api_token", b"token-123");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(k.open(t, "channel:x:api_token", &a).unwrap(), b"token-123");
    }

    #[test]
    fn wrong_key_tamper_and_moved_rows_fail_clearly() {
        let t = Some(Uuid::now_v7());
        let k = ring([1; 32], &[]);
        let sealed = k.seal(t, "n", b"secret");
        // Wrong master key: unknown key id.
        let other = ring([2; 32], &[]);
        assert!(matches!(other.open(t, "n", &sealed), Err(SecretError::UnknownKey { .. })));
        // Same id but wrong bytes would be an authentication failure; tampering is one too.
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(matches!(k.open(t, "n", &tampered), Err(SecretError::Authentication { .. })));
        // Copied to another tenant or another name.
        assert!(matches!(k.open(Some(Uuid::now_v7()), "n", &sealed), Err(SecretError::Authentication { .. })));
        assert!(matches!(k.open(t, "other", &sealed), Err(SecretError::Authentication { .. })));
        assert!(matches!(k.open(None, "n", &sealed), Err(SecretError::Authentication { .. })));
    }

    #[test]
    fn previous_keys_still_decrypt() {
        let old = ring([1; 32], &[]);
        let sealed = old.seal(None, "n", b"v");
        let rotated = ring([9; 32], &[[1; 32]]);
        assert_eq!(rotated.open(None, "n", &sealed).unwrap(), b"v");
        assert_ne!(rotated.current_key_id(), sealed.key_id);
    }

    #[test]
    fn masks_show_only_the_tail() {
        assert_eq!(mask("d75b3a66374942c5b3c019c698abc2067e15"), "••••7e15");
        assert_eq!(mask("short"), "••••");
    }
}
