//! Signed, expiring links to stored files. A link names the tenant, the file and the variant
//! (`original` or `thumbnail`), carries its expiry and an HMAC-SHA256 of all four under a key
//! derived from `SESSION_SECRET`. The file route also demands the caller's own credentials of the
//! same tenant: a link is never public.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// Signs and checks links.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    Expired,
    BadSignature,
}

impl LinkSigner {
    pub fn new(secret: &[u8]) -> Self {
        // A key of its own, so a media signature can never stand for a session's.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"aisales media links v1");
        LinkSigner { key: mac.finalize().into_bytes().to_vec() }
    }

    fn mac(&self, tenant: Uuid, sha256: &str, variant: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{tenant}\n{sha256}\n{variant}\n{expires}").as_bytes());
        mac
    }

    /// The signature of a link.
    pub fn sign(&self, tenant: Uuid, sha256: &str, variant: &str, expires: i64) -> String {
        hex::encode(self.mac(tenant, sha256, variant, expires).finalize().into_bytes())
    }

    /// Checks a link's signature (in constant time) and expiry at `now` (unix seconds).
    pub fn verify(
        &self,
        tenant: Uuid,
        sha256: &str,
        variant: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), LinkError> {
        let given = hex::decode(signature).map_err(|_| LinkError::BadSignature)?;
        self.mac(tenant, sha256, variant, expires).verify_slice(&given).map_err(|_| LinkError::BadSignature)?;
        if now > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_bound_to_tenant_file_variant_and_time() {
        let s = LinkSigner::new(b"a session secret of at least thirty-two bytes");
        let (t, other) = (Uuid::now_v7(), Uuid::now_v7());
        let sig = s.sign(t, "ab", "original", 100);
        assert_eq!(s.verify(t, "ab", "original", 100, &sig, 99), Ok(()));
        assert_eq!(s.verify(t, "ab", "original", 100, &sig, 101), Err(LinkError::Expired));
        assert_eq!(s.verify(other, "ab", "original", 100, &sig, 99), Err(LinkError::BadSignature));
        assert_eq!(s.verify(t, "ab", "thumbnail", 100, &sig, 99), Err(LinkError::BadSignature));
        assert_eq!(s.verify(t, "ab", "original", 200, &sig, 99), Err(LinkError::BadSignature));
        assert_eq!(s.verify(t, "ab", "original", 100, "zz", 99), Err(LinkError::BadSignature));
    }
}
