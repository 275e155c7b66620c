//! Customer data in stored events: sealed with the customer's own data key, opened on every read.
//!
//! Each data subject (a customer, or a lead before it becomes one) gets a random 256-bit data key
//! the first time an event of theirs holds customer data. The key is stored wrapped by the master
//! key (`data_keys`); the wrapping is done by the process's [`KeyWrap`], installed once at start
//! ([`install`]). Every customer-data string of an event (declared per event type,
//! [`aisales_domain::pii`]) is replaced by an envelope: [`MARK`], the subject's id and the
//! AES-256-GCM-SIV ciphertext with its nonce, bound to the tenant, the subject, the event type and
//! the field's path as associated data. The envelope is a JSON string, so a sealed payload has the
//! shape of a clear one.
//!
//! Erasing a subject destroys their key ([`destroy`]); every envelope of theirs then opens as
//! [`ERASED`]. Every reader of events opens payloads first ([`open_payload`], [`open_events`]):
//! the projectors, the event store's loads, replay, the dispatcher and the workers. Keys are
//! cached per process: a live key for [`LIVE_KEY_TTL`], so another process sees an erasure within
//! that time; an erased key for good.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use aisales_domain::pii::{ERASED, for_each_pii};
use anyhow::{anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::events::StoredEvent;

/// How a sealed string starts (a control character no customer-data field keeps).
pub const MARK: &str = "\u{1}pii1:";
/// [`MARK`] as it starts a string in JSON text.
const MARK_IN_JSON: &str = "\"\\u0001pii1:";

/// How long a process trusts a cached live key before reading it again.
pub const LIVE_KEY_TTL: Duration = Duration::from_secs(30);

/// Keys cached per process, at most.
const CACHE_CAPACITY: usize = 100_000;

/// Whose data an event holds: the key that seals it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub tenant_id: Uuid,
    pub id: Uuid,
    /// `customer` or `lead`.
    pub kind: &'static str,
    /// Erased already: customer data is written as [`ERASED`], never sealed.
    pub erased: bool,
}

/// Wraps and unwraps data keys with the master key (the process's keyring).
pub trait KeyWrap: Send + Sync {
    /// `(master key id, nonce, wrapped key)` of `key`, bound to the tenant and subject.
    fn wrap(&self, tenant: Uuid, subject: Uuid, key: &[u8; 32]) -> (String, Vec<u8>, Vec<u8>);
    /// The data key back.
    fn unwrap(
        &self,
        tenant: Uuid,
        subject: Uuid,
        key_id: &str,
        nonce: &[u8],
        wrapped: &[u8],
    ) -> anyhow::Result<[u8; 32]>;
}

static WRAP: OnceLock<Arc<dyn KeyWrap>> = OnceLock::new();

/// Installs the process's key wrapping (the first call wins). Without it events are written in
/// clear and sealed ones cannot be opened.
pub fn install(wrap: Arc<dyn KeyWrap>) {
    let _ = WRAP.set(wrap);
}

static SEALING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Turns sealing off (customer data then written in clear) or on again. Only the sealing
/// benchmark turns it off, to measure its cost side by side in one process; it is on everywhere
/// else, and opening is never off.
pub fn set_sealing(on: bool) {
    SEALING.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Whether sealing is on in this process.
pub fn installed() -> bool {
    WRAP.get().is_some() && SEALING.load(std::sync::atomic::Ordering::Relaxed)
}

#[derive(Clone)]
enum Key {
    Live { tenant: Uuid, cipher: Arc<Aes256GcmSiv>, read: Instant },
    Erased,
}

fn cache() -> &'static Mutex<HashMap<Uuid, Key>> {
    static CACHE: OnceLock<Mutex<HashMap<Uuid, Key>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

fn cached(subject: Uuid) -> Option<Key> {
    let cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    match cache.get(&subject)? {
        Key::Live { read, .. } if read.elapsed() > LIVE_KEY_TTL => None,
        k => Some(k.clone()),
    }
}

fn remember(subject: Uuid, key: Key) {
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CACHE_CAPACITY {
        cache.clear();
    }
    cache.insert(subject, key);
}

/// Forgets this process's copy of a subject's key (after destroying it).
pub fn forget(subject: Uuid) {
    remember(subject, Key::Erased);
}

type KeyRow = (Uuid, Uuid, Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);

fn key_of(row: KeyRow) -> anyhow::Result<(Uuid, Key)> {
    let (subject, tenant, key_id, nonce, wrapped) = row;
    let key = match (key_id, nonce, wrapped) {
        (Some(key_id), Some(nonce), Some(wrapped)) => {
            let wrap = WRAP.get().ok_or_else(|| anyhow!("customer data is sealed but no master key is installed"))?;
            let raw = wrap.unwrap(tenant, subject, &key_id, &nonce, &wrapped)?;
            let cipher = Aes256GcmSiv::new_from_slice(&raw).expect("32-byte key");
            Key::Live { tenant, cipher: Arc::new(cipher), read: Instant::now() }
        }
        _ => Key::Erased,
    };
    Ok((subject, key))
}

/// The keys of `subjects`: those this process holds (fresh), the others read from `data_keys`
/// (and cached).
async fn load<'c>(db: impl sqlx::PgExecutor<'c>, subjects: &[Uuid]) -> anyhow::Result<HashMap<Uuid, Key>> {
    let mut keys = HashMap::with_capacity(subjects.len());
    let mut missing = Vec::new();
    for s in subjects {
        match cached(*s) {
            Some(k) => {
                keys.insert(*s, k);
            }
            None => missing.push(*s),
        }
    }
    if missing.is_empty() {
        return Ok(keys);
    }
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT subject_id, tenant_id, key_id, nonce, wrapped FROM data_keys WHERE subject_id = ANY($1)",
    )
    .bind(&missing)
    .fetch_all(db)
    .await?;
    for row in rows {
        let (subject, key) = key_of(row)?;
        remember(subject, key.clone());
        keys.insert(subject, key);
    }
    Ok(keys)
}

/// The subject's key, made on first use.
async fn key_for(pool: &PgPool, subject: &Subject) -> anyhow::Result<Key> {
    // Cached, or stored already (the usual case once a cached key has grown stale): no new key
    // is made and nothing is written.
    if let Some(k) = load(pool, &[subject.id]).await?.remove(&subject.id) {
        return Ok(k);
    }
    let wrap = WRAP.get().ok_or_else(|| anyhow!("no master key is installed"))?;
    let mut raw = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut raw);
    let (key_id, nonce, wrapped) = wrap.wrap(subject.tenant_id, subject.id, &raw);
    sqlx::query(
        "INSERT INTO data_keys (subject_id, tenant_id, kind, key_id, nonce, wrapped) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (subject_id) DO NOTHING",
    )
    .bind(subject.id)
    .bind(subject.tenant_id)
    .bind(subject.kind)
    .bind(&key_id)
    .bind(&nonce)
    .bind(&wrapped)
    .execute(pool)
    .await?;
    let row: KeyRow =
        sqlx::query_as("SELECT subject_id, tenant_id, key_id, nonce, wrapped FROM data_keys WHERE subject_id = $1")
            .bind(subject.id)
            .fetch_one(pool)
            .await?;
    let (_, key) = key_of(row)?;
    remember(subject.id, key.clone());
    Ok(key)
}

/// `aisales:pii:v1:<tenant>:<subject>:<event type>:<path>`, written without formatting machinery
/// (it is built for every sealed field of every event read).
fn aad(tenant: Uuid, subject: Uuid, event_type: &str, path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(15 + 2 * 37 + event_type.len() + 1 + path.len());
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(b"aisales:pii:v1:");
    out.extend_from_slice(tenant.hyphenated().encode_lower(&mut id).as_bytes());
    out.push(b':');
    out.extend_from_slice(subject.hyphenated().encode_lower(&mut id).as_bytes());
    out.push(b':');
    out.extend_from_slice(event_type.as_bytes());
    out.push(b':');
    out.extend_from_slice(path.as_bytes());
    out
}

/// Seals the customer-data strings (`paths`) of a serialized event of `event_type`.
pub async fn seal(
    pool: &PgPool,
    subject: &Subject,
    event_type: &str,
    paths: &[&str],
    event: &mut Value,
) -> anyhow::Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let key = if subject.erased || !installed() { None } else { Some(key_for(pool, subject).await?) };
    let cipher = match key {
        None if !subject.erased => return Ok(()),
        Some(Key::Live { tenant, cipher, .. }) => {
            if tenant != subject.tenant_id {
                bail!("data subject {} belongs to another tenant", subject.id);
            }
            Some(cipher)
        }
        None | Some(Key::Erased) => None,
    };
    for_each_pii(event, paths, &mut |path, s| match &cipher {
        None => *s = ERASED.to_string(),
        Some(cipher) => {
            let mut nonce = [0u8; 12];
            rand::Rng::fill(&mut rand::rng(), &mut nonce);
            let sealed = cipher
                .encrypt(
                    &Nonce::try_from(&nonce[..]).expect("12-byte nonce"),
                    Payload { msg: s.as_bytes(), aad: &aad(subject.tenant_id, subject.id, event_type, path) },
                )
                .expect("AES-GCM-SIV encryption does not fail for in-memory buffers");
            let mut blob = nonce.to_vec();
            blob.extend_from_slice(&sealed);
            *s = format!("{MARK}{}:{}:{}", subject.id.simple(), B64.encode(path), B64.encode(blob));
        }
    });
    Ok(())
}

/// One sealed string in a payload's JSON text: the byte range of its literal (quotes included),
/// its subject, the field's path and the sealed bytes (base64).
struct Literal<'a> {
    start: usize,
    end: usize,
    subject: Uuid,
    path: String,
    blob: &'a str,
}

/// An envelope's parts after [`MARK`]: `<32 hex digits>:<base64 path>:<base64 sealed bytes>`;
/// `None` for anything else, which is then plain text.
fn envelope(inner: &str) -> Option<(Uuid, String, &str)> {
    let mut parts = inner.splitn(3, ':');
    let (id, path, blob) = (parts.next()?, parts.next()?, parts.next()?);
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || blob.is_empty() {
        return None;
    }
    let path = String::from_utf8(B64.decode(path).ok()?).ok()?;
    Some((Uuid::try_parse(id).ok()?, path, blob))
}

/// The sealed strings of a payload, found in its JSON text without parsing it: an envelope holds
/// only hex digits, base64 and `:` after its marker, so its literal ends at the next quote. A
/// marker inside another string is preceded by an odd number of backslashes (its quote is
/// escaped) and is not one.
fn literals(payload: &str) -> Vec<Literal<'_>> {
    let bytes = payload.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = payload[from..].find(MARK_IN_JSON) {
        let start = from + found;
        let inner_start = start + MARK_IN_JSON.len();
        let Some(len) = payload[inner_start..].find('"') else { break };
        let end = inner_start + len + 1;
        from = end;
        let escaped = bytes[..start].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1;
        if escaped {
            continue;
        }
        if let Some((subject, path, blob)) = envelope(&payload[inner_start..end - 1]) {
            out.push(Literal { start, end, subject, path, blob });
        }
    }
    out
}

/// Whether a payload (JSON text) holds sealed strings.
pub fn is_sealed(payload: &str) -> bool {
    payload.contains(MARK_IN_JSON)
}

/// `payload` with every sealed string opened with `keys` (`None`: nothing was sealed).
fn open_text(
    keys: &HashMap<Uuid, Key>,
    event_type: &str,
    payload: &str,
    found: &[Literal<'_>],
) -> anyhow::Result<String> {
    let mut out = String::with_capacity(payload.len());
    let mut at = 0;
    for l in found {
        out.push_str(&payload[at..l.start]);
        // The path is sealed relative to the event's fields, so it is checked by the
        // authentication: the ciphertext opens only as the field it was sealed for.
        let clear = open_one(keys, l.subject, event_type, &l.path, l.blob)?;
        out.push_str(&serde_json::to_string(&clear)?);
        at = l.end;
    }
    out.push_str(&payload[at..]);
    Ok(out)
}

/// Opens a payload: every sealed string replaced by its clear text, or by [`ERASED`] when its key
/// was destroyed. A payload without sealed strings is returned as `None` (unchanged).
pub async fn open_payload<'c>(
    db: impl sqlx::PgExecutor<'c>,
    event_type: &str,
    payload: &str,
) -> anyhow::Result<Option<String>> {
    if !is_sealed(payload) {
        return Ok(None);
    }
    let found = literals(payload);
    if found.is_empty() {
        return Ok(None);
    }
    let mut subjects: Vec<Uuid> = found.iter().map(|l| l.subject).collect();
    subjects.sort();
    subjects.dedup();
    let keys = load(db, &subjects).await?;
    Ok(Some(open_text(&keys, event_type, payload, &found)?))
}

/// `payload` opened (see [`open_payload`]).
pub async fn opened<'c>(db: impl sqlx::PgExecutor<'c>, event_type: &str, payload: String) -> anyhow::Result<String> {
    Ok(open_payload(db, event_type, &payload).await?.unwrap_or(payload))
}

/// Opens the payloads of `events` in place, reading the keys they need in one query.
///
/// An erasure event read here tells this process that its subject's key is gone, before the
/// cached copy would expire: a projector that rewrites an erased aggregate's rows from its events
/// then reads them as `[erased]` at once.
pub async fn open_events<'c>(db: impl sqlx::PgExecutor<'c>, events: &mut [StoredEvent]) -> anyhow::Result<()> {
    for e in events.iter() {
        if let Some(subject) = erased_subject(e) {
            forget(subject);
        }
    }
    let mut subjects = Vec::new();
    let mut sealed = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if is_sealed(&e.payload) {
            let found = literals(&e.payload);
            subjects.extend(found.iter().map(|l| l.subject));
            if !found.is_empty() {
                sealed.push((i, found));
            }
        }
    }
    if sealed.is_empty() {
        return Ok(());
    }
    subjects.sort();
    subjects.dedup();
    let keys = load(db, &subjects).await?;
    let mut opened = Vec::with_capacity(sealed.len());
    for (i, found) in &sealed {
        let e = &events[*i];
        opened.push((*i, open_text(&keys, &e.event_type, &e.payload, found)?));
    }
    drop(sealed);
    for (i, payload) in opened {
        events[i].payload = payload;
    }
    Ok(())
}

/// The subject an erasure event names: the customer of `CustomerErased`, the lead of `LeadErased`.
fn erased_subject(e: &StoredEvent) -> Option<Uuid> {
    match (e.aggregate_type.as_str(), e.event_type.as_str()) {
        ("conversation", "CustomerErased") => {
            let v: Value = serde_json::from_str(&e.payload).ok()?;
            v.get("CustomerErased")?.get("customer_id")?.as_str()?.parse().ok()
        }
        ("lead", "LeadErased") => e.aggregate_id.parse().ok(),
        _ => None,
    }
}

fn open_one(
    keys: &HashMap<Uuid, Key>,
    subject: Uuid,
    event_type: &str,
    path: &str,
    blob: &str,
) -> anyhow::Result<String> {
    let key = keys.get(&subject).cloned().ok_or_else(|| anyhow!("no data key for subject {subject}"))?;
    let (tenant, cipher) = match key {
        Key::Erased => return Ok(ERASED.to_string()),
        Key::Live { tenant, cipher, .. } => (tenant, cipher),
    };
    let blob = B64.decode(blob).map_err(|_| anyhow!("a sealed field of subject {subject} is not base64"))?;
    if blob.len() < 12 {
        bail!("a sealed field of subject {subject} is too short");
    }
    let (nonce, ciphertext) = blob.split_at(12);
    let clear = cipher
        .decrypt(
            &Nonce::try_from(nonce).expect("12 bytes"),
            Payload { msg: ciphertext, aad: &aad(tenant, subject, event_type, path) },
        )
        .map_err(|_| anyhow!("a sealed field of subject {subject} failed authentication (moved or tampered with)"))?;
    String::from_utf8(clear).map_err(|_| anyhow!("a sealed field of subject {subject} is not text"))
}

/// Destroys a subject's data key (a tombstone row stays, so the subject never gets a new one).
/// Returns whether a live key was destroyed (false: erased already).
pub async fn destroy(
    conn: &mut sqlx::PgConnection,
    tenant: Uuid,
    subject: Uuid,
    kind: &str,
    by: &str,
) -> anyhow::Result<bool> {
    let owner: Option<Uuid> = sqlx::query_scalar("SELECT tenant_id FROM data_keys WHERE subject_id = $1")
        .bind(subject)
        .fetch_optional(&mut *conn)
        .await?;
    if owner.is_some_and(|t| t != tenant) {
        bail!("data subject {subject} belongs to another tenant");
    }
    let destroyed = sqlx::query(
        "INSERT INTO data_keys (subject_id, tenant_id, kind, erased_at, erased_by) VALUES ($1, $2, $3, now(), $4) \
         ON CONFLICT (subject_id) DO UPDATE SET key_id = NULL, nonce = NULL, wrapped = NULL, \
             erased_at = now(), erased_by = EXCLUDED.erased_by \
         WHERE data_keys.wrapped IS NOT NULL",
    )
    .bind(subject)
    .bind(tenant)
    .bind(kind)
    .bind(by)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    forget(subject);
    Ok(destroyed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(subject: Uuid, path: &str) -> String {
        format!("{MARK}{}:{}:{}", subject.simple(), B64.encode(path), B64.encode([7u8; 20]))
    }

    #[test]
    fn associated_data_names_tenant_subject_event_and_field() {
        let (t, s) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(
            aad(t, s, "MessageReceived", "text"),
            format!("aisales:pii:v1:{t}:{s}:MessageReceived:text").into_bytes()
        );
    }

    #[test]
    fn envelopes_are_found_in_the_text_and_nothing_else_is() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let payload = serde_json::json!({"MessageReceived": {
            "text": sealed(a, "text"),
            "attachments": [{"file_name": sealed(b, "attachments/*/file_name"), "kind": "image"}],
            // A customer's text quoting an envelope's opening is escaped inside its own string.
            "note": format!("\"{}", sealed(a, "x")),
            "broken": format!("{MARK}not-an-envelope"),
        }})
        .to_string();
        assert!(is_sealed(&payload));
        let found: Vec<(Uuid, String)> = literals(&payload).into_iter().map(|l| (l.subject, l.path)).collect();
        assert_eq!(found, [(b, "attachments/*/file_name".to_string()), (a, "text".to_string())]);
        for l in literals(&payload) {
            let literal: String = serde_json::from_str(&payload[l.start..l.end]).unwrap();
            assert!(literal.starts_with(MARK));
        }
        assert!(literals(&serde_json::json!({"E": {"t": "plain"}}).to_string()).is_empty());
    }
}
