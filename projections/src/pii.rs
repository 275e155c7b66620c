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

use aisales_domain::pii::{ERASED, for_each_pii};
use anyhow::{anyhow, bail};
use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, Nonce, UnboundKey};
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

/// Finds [`MARK_IN_JSON`] (every payload read is searched for it).
fn mark_finder() -> &'static memchr::memmem::Finder<'static> {
    static FINDER: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
    FINDER.get_or_init(|| memchr::memmem::Finder::new(MARK_IN_JSON))
}

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
    Live { tenant: Uuid, cipher: Arc<LessSafeKey>, read: Instant },
    Erased,
}

/// AES-256-GCM-SIV (RFC 8452) under a data key. The implementation is aws-lc's, which derives
/// the per-message keys GCM-SIV needs far faster than a general-purpose AES backend; envelopes
/// written by any conforming implementation open alike.
fn cipher(raw: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM_SIV, raw).expect("a 32-byte key"))
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
            Key::Live { tenant, cipher: Arc::new(cipher(&raw)), read: Instant::now() }
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
    if let Some(k) = cached(subject.id) {
        return Ok(k);
    }
    // Not held by this process: one statement stores a new key unless the subject has one (or
    // was erased), and returns whichever is stored. A key made here and not stored is dropped.
    let wrap = WRAP.get().ok_or_else(|| anyhow!("no master key is installed"))?;
    let mut raw = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut raw);
    let (key_id, nonce, wrapped) = wrap.wrap(subject.tenant_id, subject.id, &raw);
    let row: Option<KeyRow> = sqlx::query_as(
        "WITH made AS ( \
            INSERT INTO data_keys (subject_id, tenant_id, kind, key_id, nonce, wrapped) \
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject_id) DO NOTHING \
            RETURNING subject_id, tenant_id, key_id, nonce, wrapped) \
         SELECT subject_id, tenant_id, key_id, nonce, wrapped FROM made \
         UNION ALL \
         SELECT subject_id, tenant_id, key_id, nonce, wrapped FROM data_keys \
          WHERE subject_id = $1 AND NOT EXISTS (SELECT 1 FROM made)",
    )
    .bind(subject.id)
    .bind(subject.tenant_id)
    .bind(subject.kind)
    .bind(&key_id)
    .bind(&nonce)
    .bind(&wrapped)
    .fetch_optional(pool)
    .await?;
    let row = match row {
        Some(row) => row,
        // Stored by another transaction that committed after this statement began: read it.
        None => {
            sqlx::query_as("SELECT subject_id, tenant_id, key_id, nonce, wrapped FROM data_keys WHERE subject_id = $1")
                .bind(subject.id)
                .fetch_one(pool)
                .await?
        }
    };
    let (_, key) = key_of(row)?;
    remember(subject.id, key.clone());
    Ok(key)
}

/// `aisales:pii:v1:<tenant>:<subject>:<event type>:<path>`, written without formatting machinery
/// (it is built for every sealed field of every event read).
fn aad(tenant: Uuid, subject: Uuid, event_type: &str, path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(15 + 2 * 37 + event_type.len() + 1 + path.len());
    aad_into(&mut out, tenant, subject, event_type, path.as_bytes());
    out
}

/// [`aad`] written into `out` (cleared first).
fn aad_into(out: &mut Vec<u8>, tenant: Uuid, subject: Uuid, event_type: &str, path: &[u8]) {
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.clear();
    out.extend_from_slice(b"aisales:pii:v1:");
    out.extend_from_slice(tenant.hyphenated().encode_lower(&mut id).as_bytes());
    out.push(b':');
    out.extend_from_slice(subject.hyphenated().encode_lower(&mut id).as_bytes());
    out.push(b':');
    out.extend_from_slice(event_type.as_bytes());
    out.push(b':');
    out.extend_from_slice(path);
}

/// The envelope of one customer-data string: [`MARK`], subject, base64 path and base64
/// `nonce || ciphertext || tag`.
fn envelope_of(cipher: &LessSafeKey, tenant: Uuid, subject: Uuid, event_type: &str, path: &str, clear: &str) -> String {
    let mut nonce = [0u8; 12];
    rand::Rng::fill(&mut rand::rng(), &mut nonce);
    let mut sealed = clear.as_bytes().to_vec();
    cipher
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(tenant, subject, event_type, path)),
            &mut sealed,
        )
        .expect("AES-GCM-SIV sealing does not fail for in-memory buffers");
    let mut blob = Vec::with_capacity(12 + sealed.len());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    format!("{MARK}{}:{}:{}", subject.simple(), B64.encode(path), B64.encode(blob))
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
    seal_fields(cipher.as_deref(), subject, event_type, paths, event);
    Ok(())
}

/// Replaces the strings at `paths` by envelopes under `cipher`, or by [`ERASED`] without one.
fn seal_fields(cipher: Option<&LessSafeKey>, subject: &Subject, event_type: &str, paths: &[&str], event: &mut Value) {
    for_each_pii(event, paths, &mut |path, s| match cipher {
        None => *s = ERASED.to_string(),
        Some(cipher) => *s = envelope_of(cipher, subject.tenant_id, subject.id, event_type, path, s),
    });
}

/// A data key made by this process and not stored yet: it is stored by the same statement that
/// appends the first events sealed with it ([`NewKey::row`]), so a subject that is new together
/// with its aggregate (a lead) costs no statement of its own. When that statement fails because
/// the subject has a key already, the events sealed with this one are not written either; they
/// are sealed again with the stored key ([`seal`]).
#[derive(Clone)]
pub struct NewKey {
    subject: Subject,
    key_id: String,
    nonce: Vec<u8>,
    wrapped: Vec<u8>,
    cipher: Arc<LessSafeKey>,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey").field("subject", &self.subject.id).field("key_id", &self.key_id).finish()
    }
}

/// A row of `data_keys`: (subject, tenant, kind, master key id, nonce, wrapped key).
pub type NewKeyRow<'a> = (Uuid, Uuid, &'static str, &'a str, &'a [u8], &'a [u8]);

impl NewKey {
    /// A fresh key for `subject`, or `None` when nothing is sealed for it (sealing is off, or the
    /// subject is erased) or when this process holds its stored key already.
    pub fn make(subject: &Subject) -> anyhow::Result<Option<NewKey>> {
        if subject.erased || !installed() || cached(subject.id).is_some() {
            return Ok(None);
        }
        let wrap = WRAP.get().ok_or_else(|| anyhow!("no master key is installed"))?;
        let mut raw = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut raw);
        let (key_id, nonce, wrapped) = wrap.wrap(subject.tenant_id, subject.id, &raw);
        Ok(Some(NewKey { subject: *subject, key_id, nonce, wrapped, cipher: Arc::new(cipher(&raw)) }))
    }

    /// Seals the customer-data strings (`paths`) of a serialized event with this key.
    pub fn seal(&self, event_type: &str, paths: &[&str], event: &mut Value) {
        seal_fields(Some(&self.cipher), &self.subject, event_type, paths, event);
    }

    /// The row to insert into `data_keys`.
    pub fn row(&self) -> NewKeyRow<'_> {
        (self.subject.id, self.subject.tenant_id, self.subject.kind, &self.key_id, &self.nonce, &self.wrapped)
    }

    /// Records that the key is stored (its statement committed): this process uses it from now on.
    pub fn stored(&self) {
        remember(
            self.subject.id,
            Key::Live { tenant: self.subject.tenant_id, cipher: self.cipher.clone(), read: Instant::now() },
        );
    }
}

/// One sealed string in a payload's JSON text: the byte range of its literal (quotes included),
/// its subject, the field's path and the sealed bytes (both base64).
struct Literal<'a> {
    start: usize,
    end: usize,
    subject: Uuid,
    path: &'a str,
    blob: &'a str,
}

/// An envelope's parts after [`MARK`]: `<32 hex digits>:<base64 path>:<base64 sealed bytes>`;
/// `None` for anything else, which is then plain text. `scratch` takes the decoded path.
fn envelope<'a>(inner: &'a str, scratch: &mut Vec<u8>) -> Option<(Uuid, &'a str, &'a str)> {
    let mut parts = inner.splitn(3, ':');
    let (id, path, blob) = (parts.next()?, parts.next()?, parts.next()?);
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || blob.is_empty() {
        return None;
    }
    scratch.clear();
    B64.decode_vec(path, scratch).ok()?;
    std::str::from_utf8(scratch).ok()?;
    Some((Uuid::try_parse(id).ok()?, path, blob))
}

/// The sealed strings of a payload, found in its JSON text without parsing it: an envelope holds
/// only hex digits, base64 and `:` after its marker, so its literal ends at the next quote. A
/// marker inside another string is preceded by an odd number of backslashes (its quote is
/// escaped) and is not one.
fn literals(payload: &str) -> Vec<Literal<'_>> {
    let bytes = payload.as_bytes();
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let mut from = 0;
    while let Some(found) = mark_finder().find(&bytes[from..]) {
        let start = from + found;
        let inner_start = start + MARK_IN_JSON.len();
        let Some(len) = memchr::memchr(b'"', &bytes[inner_start..]) else { break };
        let end = inner_start + len + 1;
        from = end;
        let escaped = bytes[..start].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1;
        if escaped {
            continue;
        }
        if let Some((subject, path, blob)) = envelope(&payload[inner_start..end - 1], &mut scratch) {
            out.push(Literal { start, end, subject, path, blob });
        }
    }
    out
}

/// Whether a payload (JSON text) holds sealed strings.
pub fn is_sealed(payload: &str) -> bool {
    mark_finder().find(payload.as_bytes()).is_some()
}

/// Appends `s` to `out` as a JSON string literal, escaped as `serde_json` escapes it.
fn push_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut at = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[at..i]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            out.push_str(short);
        }
        at = i + 1;
    }
    out.push_str(&s[at..]);
    out.push('"');
}

/// Buffers reused across the fields one thread opens.
#[derive(Default)]
struct Scratch {
    path: Vec<u8>,
    sealed: Vec<u8>,
    aad: Vec<u8>,
}

/// `payload` with every sealed string opened with `keys`.
fn open_text(
    keys: &HashMap<Uuid, Key>,
    scratch: &mut Scratch,
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
        match open_one(keys, scratch, l.subject, event_type, l.path, l.blob)? {
            Some(clear) => push_json_str(&mut out, clear),
            None => push_json_str(&mut out, ERASED),
        }
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
    Ok(Some(open_text(&keys, &mut Scratch::default(), event_type, payload, &found)?))
}

/// `payload` opened (see [`open_payload`]).
pub async fn opened<'c>(db: impl sqlx::PgExecutor<'c>, event_type: &str, payload: String) -> anyhow::Result<String> {
    Ok(open_payload(db, event_type, &payload).await?.unwrap_or(payload))
}

/// Sealed events in one read from which opening is shared out among the machine's cores (a
/// projector's batch while it catches up); fewer are opened on the calling thread.
const SHARED_OPENING_MIN: usize = 256;

/// Threads that open one read's events together, at most.
const OPENING_THREADS_MAX: usize = 4;

fn opening_threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(OPENING_THREADS_MAX))
}

/// The opened payloads of `sealed` (index into `events`, its sealed strings).
fn open_all(
    keys: &HashMap<Uuid, Key>,
    events: &[StoredEvent],
    sealed: &[(usize, Vec<Literal<'_>>)],
) -> anyhow::Result<Vec<(usize, String)>> {
    let open_part = |part: &[(usize, Vec<Literal<'_>>)]| -> anyhow::Result<Vec<(usize, String)>> {
        let mut scratch = Scratch::default();
        part.iter()
            .map(|(i, found)| {
                let e = &events[*i];
                Ok((*i, open_text(keys, &mut scratch, &e.event_type, &e.payload, found)?))
            })
            .collect()
    };
    let threads = opening_threads();
    if threads < 2 || sealed.len() < SHARED_OPENING_MIN {
        return open_part(sealed);
    }
    // A long read (a projector catching up) is opened on every core: the calling thread takes
    // the first share, scoped threads the others.
    let mut parts = sealed.chunks(sealed.len().div_ceil(threads));
    let first = parts.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let others: Vec<_> = parts.map(|part| scope.spawn(move || open_part(part))).collect();
        let mut opened = open_part(first)?;
        for other in others {
            opened.extend(other.join().map_err(|_| anyhow!("a thread opening customer data panicked"))??);
        }
        Ok(opened)
    })
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
        // One scan of the text: without a marker `literals` finds nothing at once.
        let found = literals(&e.payload);
        if !found.is_empty() {
            subjects.extend(found.iter().map(|l| l.subject));
            sealed.push((i, found));
        }
    }
    if sealed.is_empty() {
        return Ok(());
    }
    subjects.sort_unstable();
    subjects.dedup();
    let keys = load(db, &subjects).await?;
    let opened = open_all(&keys, events, &sealed)?;
    drop(sealed);
    for (i, payload) in opened {
        events[i].payload = payload;
    }
    Ok(())
}

/// The subject an erasure event names: the customer of `CustomerErased`, the lead of `LeadErased`.
fn erased_subject(e: &StoredEvent) -> Option<Uuid> {
    // The event type first: it rules out nearly every event in one comparison.
    match (e.event_type.as_str(), e.aggregate_type.as_str()) {
        ("CustomerErased", "conversation") => {
            let v: Value = serde_json::from_str(&e.payload).ok()?;
            v.get("CustomerErased")?.get("customer_id")?.as_str()?.parse().ok()
        }
        ("LeadErased", "lead") => e.aggregate_id.parse().ok(),
        _ => None,
    }
}

/// One sealed field opened: its clear text (borrowed from `scratch`), or `None` when the
/// subject's key was destroyed.
fn open_one<'s>(
    keys: &HashMap<Uuid, Key>,
    scratch: &'s mut Scratch,
    subject: Uuid,
    event_type: &str,
    path: &str,
    blob: &str,
) -> anyhow::Result<Option<&'s str>> {
    let (tenant, cipher) = match keys.get(&subject) {
        None => bail!("no data key for subject {subject}"),
        Some(Key::Erased) => return Ok(None),
        Some(Key::Live { tenant, cipher, .. }) => (*tenant, cipher),
    };
    let Scratch { path: path_bytes, sealed, aad } = scratch;
    path_bytes.clear();
    B64.decode_vec(path, path_bytes).map_err(|_| anyhow!("a sealed field of subject {subject} has no path"))?;
    aad_into(aad, tenant, subject, event_type, path_bytes);
    sealed.clear();
    B64.decode_vec(blob, sealed).map_err(|_| anyhow!("a sealed field of subject {subject} is not base64"))?;
    // nonce (12) || ciphertext || tag (16)
    if sealed.len() < 12 + 16 {
        bail!("a sealed field of subject {subject} is too short");
    }
    let (nonce, rest) = sealed.split_at_mut(12);
    let nonce = Nonce::try_assume_unique_for_key(nonce).expect("12 bytes");
    let clear = cipher
        .open_in_place(nonce, Aad::from(&aad[..]), rest)
        .map_err(|_| anyhow!("a sealed field of subject {subject} failed authentication (moved or tampered with)"))?;
    let clear = std::str::from_utf8(clear).map_err(|_| anyhow!("a sealed field of subject {subject} is not text"))?;
    Ok(Some(clear))
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
        let found: Vec<(Uuid, String)> = literals(&payload)
            .into_iter()
            .map(|l| (l.subject, String::from_utf8(B64.decode(l.path).unwrap()).unwrap()))
            .collect();
        assert_eq!(found, [(b, "attachments/*/file_name".to_string()), (a, "text".to_string())]);
        for l in literals(&payload) {
            let literal: String = serde_json::from_str(&payload[l.start..l.end]).unwrap();
            assert!(literal.starts_with(MARK));
        }
        assert!(literals(&serde_json::json!({"E": {"t": "plain"}}).to_string()).is_empty());
    }

    #[test]
    fn clear_text_is_escaped_as_serde_json_escapes_it() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("Привет, \"мир\" \\ ✓ 🚗 \u{2028}");
        for s in [all.as_str(), "", "plain", "\"", "\\\\", "\u{1}pii1:x"] {
            let mut out = String::from("x");
            push_json_str(&mut out, s);
            assert_eq!(out[1..], serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    use aes_gcm_siv::Aes256GcmSiv;
    use aes_gcm_siv::aead::{Aead, KeyInit, Payload};

    /// A field sealed by another AES-256-GCM-SIV implementation (RustCrypto's, which wrote the
    /// first sealed events), in the envelope [`seal`] writes.
    fn sealed_with(
        cipher: &Aes256GcmSiv,
        tenant: Uuid,
        subject: Uuid,
        event_type: &str,
        path: &str,
        clear: &str,
    ) -> String {
        let nonce = [9u8; 12];
        let sealed = cipher
            .encrypt(
                &aes_gcm_siv::Nonce::try_from(&nonce[..]).unwrap(),
                Payload { msg: clear.as_bytes(), aad: &aad(tenant, subject, event_type, path) },
            )
            .unwrap();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!("{MARK}{}:{}:{}", subject.simple(), B64.encode(path), B64.encode(blob))
    }

    #[test]
    fn a_long_read_opened_on_several_threads_equals_one_opened_alone() {
        let (tenant, live, erased) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let cipher = Aes256GcmSiv::new_from_slice(&[3u8; 32]).unwrap();
        let keys = HashMap::from([
            (live, Key::Live { tenant, cipher: Arc::new(super::cipher(&[3u8; 32])), read: Instant::now() }),
            (erased, Key::Erased),
        ]);
        let n = SHARED_OPENING_MIN * 3 + 7;
        let mut events = Vec::new();
        let mut expected = Vec::new();
        for i in 0..n {
            let subject = if i % 5 == 0 { erased } else { live };
            let text = format!("сообщение №{i} \"Kia\"\n");
            let payload = serde_json::json!({"MessageReceived": {
                "text": sealed_with(&cipher, tenant, subject, "MessageReceived", "text", &text),
                "n": i,
            }})
            .to_string();
            let clear = if subject == erased { ERASED.to_string() } else { text };
            expected.push(serde_json::json!({"MessageReceived": {"text": clear, "n": i}}));
            events.push(StoredEvent::new(
                crate::events::Position::new(1, i as i64 + 1),
                "conversation",
                "c",
                i as i64 + 1,
                "MessageReceived",
                "1",
                payload,
                "{}".into(),
                chrono::Utc::now(),
                Some(tenant),
            ));
        }
        let sealed: Vec<_> = events.iter().enumerate().map(|(i, e)| (i, literals(&e.payload))).collect();
        let together = open_all(&keys, &events, &sealed).unwrap();
        assert_eq!(together.len(), n);
        for (k, (i, payload)) in together.iter().enumerate() {
            assert_eq!(k, *i, "in the order read");
            assert_eq!(serde_json::from_str::<Value>(payload).unwrap(), expected[*i]);
        }
        let alone = open_all(&keys, &events, &sealed[..SHARED_OPENING_MIN - 1]).unwrap();
        assert_eq!(alone[..], together[..SHARED_OPENING_MIN - 1]);

        // A field moved to another path fails authentication, on any thread.
        let mut moved = events.clone();
        moved[n - 1].payload = moved[n - 1].payload.replace(&B64.encode("text"), &B64.encode("sender_name"));
        let sealed: Vec<_> = moved.iter().enumerate().map(|(i, e)| (i, literals(&e.payload))).collect();
        let err = open_all(&keys, &moved, &sealed).unwrap_err();
        assert!(err.to_string().contains("failed authentication"), "{err}");
    }

    #[test]
    fn envelopes_sealed_here_open_with_any_aes_gcm_siv_and_only_as_their_field() {
        let (tenant, subject) = (Uuid::now_v7(), Uuid::now_v7());
        let key = [5u8; 32];
        let text = "Нужна АКПП на Kia Rio 2015";
        let envelope = envelope_of(&cipher(&key), tenant, subject, "MessageReceived", "text", text);
        let inner = envelope.strip_prefix(MARK).unwrap();
        let blob = B64.decode(inner.rsplit(':').next().unwrap()).unwrap();
        let other = Aes256GcmSiv::new_from_slice(&key).unwrap();
        let open = |path: &str| {
            other.decrypt(
                &aes_gcm_siv::Nonce::try_from(&blob[..12]).unwrap(),
                Payload { msg: &blob[12..], aad: &aad(tenant, subject, "MessageReceived", path) },
            )
        };
        assert_eq!(open("text").unwrap(), text.as_bytes());
        assert!(open("sender_name").is_err());
        // Two sealings of one text differ (a fresh nonce each).
        assert_ne!(envelope, envelope_of(&cipher(&key), tenant, subject, "MessageReceived", "text", text));
    }
}
