//! The one keyed hash: HMAC-SHA256, built so that it can't fail. Cookie CSRF
//! tokens ([`crate::cookies`]), the keys derived from `data.key` and the code
//! hashes ([`crate::auth::sealed`]) all use it.
//!
//! HMAC takes keys of any length: a key longer than SHA-256's 64-byte block is
//! hashed first, a shorter one is zero-padded to the block (RFC 2104). Doing that
//! here gives the block-sized key `Mac::new` takes, so there is no error arm (and
//! no silent fallback) — and the MAC is the standard one, byte for byte.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// SHA-256's block size: HMAC keys are padded or hashed to it.
const BLOCK: usize = 64;

/// A hasher with fixed keys (SipHash-2-4 with zero keys): the same value in every
/// process, so a key made with it stays the same across reloads and restarts. For
/// identities the operator's config makes (pool keys, certificate fingerprints),
/// never for maps a client fills.
pub fn stable_hasher() -> impl std::hash::Hasher {
    #[allow(deprecated)] // SipHasher: fixed keys on purpose, and std's only one
    std::hash::SipHasher::new()
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = Zeroizing::new([0u8; BLOCK]);
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut m = <Hmac<Sha256> as Mac>::new(&(*block).into());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// A 32-byte key derived from `master` for one purpose (`label`), zeroised on drop.
pub fn derive_key(master: &[u8], label: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hmac_sha256(master, &[label]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::digest::KeyInit;

    fn reference(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    #[test]
    fn same_as_hmac_for_every_key_length() {
        for len in [0, 1, 31, 32, 63, 64, 65, 100, 128, 200] {
            let key: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5c).collect();
            assert_eq!(
                hmac_sha256(&key, &[b"portcullis ", b"csrf v1"]).to_vec(),
                reference(&key, b"portcullis csrf v1"),
                "key of {len} bytes"
            );
        }
    }

    #[test]
    fn rfc4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn derived_keys_differ_by_label() {
        assert_ne!(*derive_key(b"k", b"a"), *derive_key(b"k", b"b"));
    }
}
