//! Customers' files: downloaded from the provider by the media worker, stored content-addressed
//! through the `object_store` crate (a local directory by default, S3-compatible in a build with
//! the `s3` feature), served only through signed, expiring links to the owning tenant, and photos
//! read by a vision model (`vision`). `docs/media.md` describes it all.

pub mod fetch;
pub mod sign;
pub mod vision;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::MediaSettings;

/// Types stored; anything else is refused (`refused_type`).
const ACCEPTED: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/heic",
    "application/pdf",
    "audio/ogg",
    "audio/mpeg",
    "video/mp4",
];

/// The type of a file from its first bytes; `None` when it is not one of the accepted types. The
/// provider's claimed type is not trusted: a page of HTML called `image/jpeg` is refused.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    let mime = if starts(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "image/gif"
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else if starts(b"%PDF-") {
        "application/pdf"
    } else if starts(b"OggS") {
        "audio/ogg"
    } else if starts(b"ID3") || starts(&[0xFF, 0xFB]) || starts(&[0xFF, 0xF3]) {
        "audio/mpeg"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        match &bytes[8..12] {
            b"heic" | b"heix" | b"mif1" => "image/heic",
            _ => "video/mp4",
        }
    } else {
        return None;
    };
    ACCEPTED.contains(&mime).then_some(mime)
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` is a hex SHA-256 (what a stored file is named by).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The store of customers' files. Objects are named `<tenant>/<sha[..2]>/<sha>`: the same file
/// sent twice is stored once per tenant, and no tenant's name can reach another's.
#[derive(Clone)]
pub struct MediaStore {
    inner: Arc<dyn ObjectStore>,
    pub max_bytes: u64,
}

/// A file ready to be stored.
pub struct Checked {
    pub sha256: String,
    pub mime_type: &'static str,
    pub bytes: Bytes,
}

impl MediaStore {
    /// The store `MEDIA_STORE` names: a local directory (created if missing), or `s3://bucket/prefix`
    /// in a build with the `s3` feature.
    pub fn from_settings(settings: &MediaSettings) -> anyhow::Result<MediaStore> {
        let inner: Arc<dyn ObjectStore> = if let Some(rest) = settings.store.strip_prefix("s3://") {
            s3_store(rest)?
        } else {
            std::fs::create_dir_all(&settings.store)
                .map_err(|e| anyhow::anyhow!("cannot create the media directory {}: {e}", settings.store))?;
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&settings.store)?)
        };
        Ok(MediaStore { inner, max_bytes: settings.max_bytes })
    }

    /// The store `MEDIA_STORE` names, opened once per process and location and shared after
    /// that (the server's file route and the worker's jobs do not open it again each time). An
    /// error names the setting: a worker that cannot open its store stops with it, cleanly.
    pub fn shared(settings: &MediaSettings) -> anyhow::Result<MediaStore> {
        static OPENED: std::sync::LazyLock<Mutex<HashMap<(String, u64), MediaStore>>> =
            std::sync::LazyLock::new(Default::default);
        let key = (settings.store.clone(), settings.max_bytes);
        if let Some(store) = OPENED.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(store.clone());
        }
        let store =
            Self::from_settings(settings).map_err(|e| anyhow::anyhow!("MEDIA_STORE cannot be opened: {e:#}"))?;
        OPENED.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_insert(store.clone());
        Ok(store)
    }

    fn path(tenant: Uuid, sha256: &str) -> Path {
        Path::from(format!("{tenant}/{}/{sha256}", &sha256[..2]))
    }

    /// Stores `bytes` under its hash (a file already there is left as it is). The local store
    /// writes to a temporary file and renames it, so an object is whole or absent.
    pub async fn put(&self, tenant: Uuid, checked: &Checked) -> anyhow::Result<()> {
        let path = Self::path(tenant, &checked.sha256);
        if self.inner.head(&path).await.is_ok() {
            return Ok(());
        }
        self.inner.put(&path, PutPayload::from(checked.bytes.clone())).await?;
        Ok(())
    }

    /// Deletes the tenant's file named `sha256` (nothing when it is not there).
    pub async fn delete(&self, tenant: Uuid, sha256: &str) -> anyhow::Result<()> {
        if !is_sha256(sha256) {
            return Ok(());
        }
        match self.inner.delete(&Self::path(tenant, sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant's file named `sha256`, if stored.
    pub async fn get(&self, tenant: Uuid, sha256: &str) -> anyhow::Result<Option<Bytes>> {
        if !is_sha256(sha256) {
            return Ok(None);
        }
        match self.inner.get(&Self::path(tenant, sha256)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(feature = "s3")]
fn s3_store(rest: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let s3 = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket).build()?;
    Ok(if prefix.is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(s3, prefix.trim_matches('/')))
    })
}

#[cfg(not(feature = "s3"))]
fn s3_store(_rest: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    anyhow::bail!("MEDIA_STORE names an S3 bucket, but this build has no S3 support (build with --features s3)")
}

/// Checks a downloaded file: its size against the limit, its type from its bytes.
pub fn check(bytes: Bytes, max_bytes: u64) -> Result<Checked, aisales_domain::media::MediaRefusal> {
    use aisales_domain::media::MediaRefusal;
    if bytes.len() as u64 > max_bytes {
        return Err(MediaRefusal::TooLarge);
    }
    let mime_type = sniff(&bytes).ok_or(MediaRefusal::RefusedType)?;
    Ok(Checked { sha256: sha256_hex(&bytes), mime_type, bytes })
}

/// A JPEG thumbnail (at most 320 px on its longer side) of a JPEG or PNG image; `None` for other
/// types or an image that cannot be decoded.
pub fn thumbnail(bytes: &[u8], mime_type: &str) -> Option<Checked> {
    let format = match mime_type {
        "image/jpeg" => image::ImageFormat::Jpeg,
        "image/png" => image::ImageFormat::Png,
        _ => return None,
    };
    let img = image::load_from_memory_with_format(bytes, format).ok()?;
    let thumb = img.thumbnail(320, 320).to_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    thumb.write_to(&mut out, image::ImageFormat::Jpeg).ok()?;
    let bytes = Bytes::from(out.into_inner());
    Some(Checked { sha256: sha256_hex(&bytes), mime_type: "image/jpeg", bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes_not_the_claim() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"<html><body>not a photo</body></html>"), None);
        assert_eq!(sniff(b"MZ\x90\x00"), None);
    }

    #[test]
    fn size_is_checked_before_type() {
        use aisales_domain::media::MediaRefusal;
        assert_eq!(check(Bytes::from(vec![0u8; 2048]), 1024).err(), Some(MediaRefusal::TooLarge));
        assert_eq!(check(Bytes::from_static(b"plain text"), 1024).err(), Some(MediaRefusal::RefusedType));
        let ok = check(Bytes::from_static(b"%PDF-1.4 tiny"), 1024).unwrap();
        assert_eq!(ok.mime_type, "application/pdf");
        assert!(is_sha256(&ok.sha256));
    }

    #[test]
    fn thumbnails_of_images() {
        let img = image::RgbImage::from_pixel(800, 400, image::Rgb([200, 30, 30]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let t = thumbnail(png.get_ref(), "image/png").unwrap();
        let back = image::load_from_memory(&t.bytes).unwrap();
        assert_eq!((back.width(), back.height()), (320, 160));
        assert!(thumbnail(b"%PDF-", "application/pdf").is_none());
    }
}
