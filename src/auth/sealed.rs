//! Second-factor secrets at rest: AES-256-GCM under a key derived from
//! `data.key`, bound to the account name (as associated data) so a sealed value
//! copied into another account's record doesn't open. Also the keyed hash for
//! codes (backup codes, one-time codes): HMAC-SHA256 under another derived key,
//! so a copy of the users file or the store can't be brute-forced offline.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const PREFIX: &str = "v1:";

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    hash_key: Zeroizing<[u8; 32]>,
}

/// AES-GCM refuses only plaintexts of 64 GiB or more; a second-factor secret is
/// never near that, but the refusal is reported rather than papered over.
#[derive(Debug, thiserror::Error)]
#[error("cannot seal the value (too long)")]
pub struct SealError;

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// `data_key` is the 32-byte `data.key`.
    pub fn new(data_key: &[u8]) -> Sealer {
        let enc = crate::crypto::derive_key(data_key, b"portcullis seal v1");
        Sealer {
            cipher: Aes256Gcm::new(&(*enc).into()),
            hash_key: crate::crypto::derive_key(data_key, b"portcullis codes v1"),
        }
    }

    pub fn seal(&self, plain: &[u8], owner: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
        ))
    }

    /// `None` when the value is not ours, was changed, or belongs to another owner.
    pub fn open(&self, sealed: &str, owner: &str) -> Option<Zeroizing<Vec<u8>>> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix(PREFIX)?)
            .ok()?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let (nonce, ct) = raw.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: owner.as_bytes(),
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    /// A keyed hash of a code in its context (e.g. the account, or a pending sign-in).
    pub fn code_hash(&self, context: &str, code: &str) -> String {
        hex::encode(crate::crypto::hmac_sha256(
            &*self.hash_key,
            &[context.as_bytes(), b"\0", code.as_bytes()],
        ))
    }

    pub fn code_matches(&self, context: &str, code: &str, hash: &str) -> bool {
        let h = self.code_hash(context, code);
        h.len() == hash.len() && bool::from(h.as_bytes().ct_eq(hash.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_bound_to_owner_and_key() {
        let s = Sealer::new(&[1u8; 32]);
        let sealed = s.seal(b"JBSWY3DPEHPK3PXP", "alice").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("JBSWY3DP"));
        assert_eq!(
            s.open(&sealed, "alice").unwrap().as_slice(),
            b"JBSWY3DPEHPK3PXP"
        );
        assert!(s.open(&sealed, "bob").is_none(), "moved to another account");
        assert!(
            Sealer::new(&[2u8; 32]).open(&sealed, "alice").is_none(),
            "other key"
        );
        assert!(s.open("v1:AAAA", "alice").is_none());
        assert!(s.open("plain", "alice").is_none());
        assert_ne!(
            s.seal(b"x", "a").unwrap(),
            s.seal(b"x", "a").unwrap(),
            "fresh nonce each time"
        );
    }

    #[test]
    fn code_hashes_are_keyed_and_contextual() {
        let s = Sealer::new(&[1u8; 32]);
        let h = s.code_hash("alice", "abcd-efgh");
        assert!(s.code_matches("alice", "abcd-efgh", &h));
        assert!(!s.code_matches("bob", "abcd-efgh", &h));
        assert_ne!(h, Sealer::new(&[2u8; 32]).code_hash("alice", "abcd-efgh"));
    }
}
