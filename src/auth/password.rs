//! Passwords: NFKC-normalised, never truncated, hashed with argon2id (OWASP
//! parameters: m=19456 KiB, t=2, p=1) on tokio's blocking pool.
//!
//! Hashing is the gateway's most expensive work, so it is bounded:
//! `password.max_concurrent_hashes` run at once, a few more wait briefly, and
//! the rest are refused with [`PasswordError::Busy`] (the portal answers 503 +
//! Retry-After) instead of queueing without limit while proxied traffic starves.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// Longest password accepted, in bytes (before normalisation).
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("too many sign-ins at once; try again in a moment")]
    Busy,
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The stored hash isn't an argon2 PHC string this gateway can check (corrupt
    /// users file or row, another algorithm, absurd costs). Never matches; the
    /// caller says the password can't be checked. Carries nothing of the hash.
    #[error("the stored password hash can't be read")]
    Unreadable,
}

/// argon2id cost parameters (`[password] argon2_*`). The default is OWASP's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        HashParams {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashParams {
    /// Whether the stored hash `phc` was made otherwise (other algorithm or costs),
    /// so it should be re-made from the password at the next sign-in. A hash that
    /// can't be read is not rehashed here: it never verifies anyway.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let get = |k: &str| parsed.params.get_decimal(k);
        parsed.algorithm.as_str() != "argon2id"
            || get("m") != Some(self.memory_kib)
            || get("t") != Some(self.iterations)
            || get("p") != Some(self.parallelism)
    }
}

fn argon2_with(p: HashParams) -> Argon2<'static> {
    // Config validation keeps the parameters in argon2's range; fall back to its
    // defaults (the OWASP values) rather than panic if they ever weren't.
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn argon2() -> Argon2<'static> {
    argon2_with(HashParams::default())
}

fn normalize(password: &str) -> Zeroizing<String> {
    Zeroizing::new(password.nfkc().collect())
}

/// Hashes synchronously with the default parameters (tests). The gateway uses
/// [`Hasher::hash`].
pub fn hash_now(password: &str) -> Result<String, PasswordError> {
    hash_now_with(password, HashParams::default())
}

/// Hashes synchronously with `params` (CLI).
pub fn hash_now_with(password: &str, params: HashParams) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    let norm = normalize(password);
    argon2_with(params)
        .hash_password(norm.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Most memory a stored hash may ask argon2 for (4 GiB): a corrupt `m=` must not
/// make the gateway try to allocate terabytes.
const MAX_STORED_MEMORY_KIB: u32 = 4 * 1024 * 1024;

/// Whether `phc` is an argon2 hash with parameters argon2 accepts (and a sane
/// memory cost): the hashes [`verify_now`] can really check.
pub fn readable(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let alg_ok = matches!(
        parsed.algorithm.as_str(),
        "argon2id" | "argon2i" | "argon2d"
    );
    alg_ok
        && parsed.hash.is_some()
        && parsed.salt.is_some()
        && Params::try_from(&parsed).is_ok()
        && parsed
            .params
            .get_decimal("m")
            .is_some_and(|m| m <= MAX_STORED_MEMORY_KIB)
}

/// Verifies synchronously. A malformed stored hash never matches.
pub fn verify_now(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let norm = normalize(password);
    argon2().verify_password(norm.as_bytes(), &parsed).is_ok()
}

/// Bounded, off-runtime hashing for the gateway.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Verified against when the account doesn't exist, so unknown identifiers
    /// cost the same time as a wrong password.
    dummy: Arc<String>,
    wait: Duration,
}

impl Hasher {
    pub fn new(max_concurrent: usize) -> Result<Hasher, PasswordError> {
        Ok(Hasher {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy: Arc::new(hash_now("portcullis-dummy-password")?),
            wait: Duration::from_secs(2),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        let out = tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
        Ok(out)
    }

    /// Verifies `password` against `phc`, or against a dummy hash when `phc` is `None`
    /// (unknown account), in which case the answer is always `false`. A stored hash
    /// that can't be read is [`PasswordError::Unreadable`], before any work.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, PasswordError> {
        let pw = Zeroizing::new(password.to_string());
        let (target, real) = match phc {
            Some(p) if !p.is_empty() => {
                if !readable(p) {
                    return Err(PasswordError::Unreadable);
                }
                (p.to_string(), true)
            }
            _ => (self.dummy.to_string(), false),
        };
        let ok = self.run(move || verify_now(&pw, &target)).await?;
        Ok(ok && real)
    }

    /// Hashes with `params` (the config's `[password] argon2_*`).
    pub async fn hash(&self, password: &str, params: HashParams) -> Result<String, PasswordError> {
        let pw = Zeroizing::new(password.to_string());
        self.run(move || hash_now_with(&pw, params)).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify_with_normalisation() {
        let h = hash_now("Pa\u{212B}ss").unwrap(); // Angstrom sign: NFKC → Å
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_now("Pa\u{00C5}ss", &h));
        assert!(!verify_now("pa\u{00C5}ss", &h), "case-sensitive");
        assert!(!verify_now("Pa\u{00C5}s", &h));
        assert!(!verify_now("x", "not a hash"));
    }

    #[test]
    fn other_parameters_are_rehashed() {
        let p = HashParams::default();
        let h = hash_now("pw").unwrap();
        assert!(!p.needs_rehash(&h));
        let cheap = HashParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        };
        let h2 = hash_now_with("pw", cheap).unwrap();
        assert!(h2.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(
            verify_now("pw", &h2),
            "verification reads the hash's own parameters"
        );
        assert!(p.needs_rehash(&h2) && !cheap.needs_rehash(&h2));
        assert!(!p.needs_rehash("not a hash"));
    }

    #[test]
    fn never_truncated() {
        let long = "a".repeat(200);
        let h = hash_now(&long).unwrap();
        assert!(!verify_now(&"a".repeat(199), &h));
        assert!(!verify_now(&format!("{long}b"), &h));
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_unreadable_not_wrong() {
        let h = Hasher::new(1).unwrap();
        let good = hash_now("pw").unwrap();
        assert!(readable(&good));
        let cut = &good[..40]; // into the salt
        let huge = good.replace("m=19456", "m=4294967295");
        let no_output = good.rsplit_once('$').unwrap().0.to_string();
        for bad in [
            "not a hash",
            "$argon2id$",
            cut,
            huge.as_str(),
            no_output.as_str(),
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$argon2id$v=19$m=0,t=0,p=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        ] {
            assert!(!readable(bad), "{bad}");
            assert!(
                matches!(
                    h.verify("pw", Some(bad)).await,
                    Err(PasswordError::Unreadable)
                ),
                "{bad}"
            );
        }
        assert!(h.verify("pw", Some(&good)).await.unwrap());
        assert!(
            !h.verify("pw", Some("")).await.unwrap(),
            "no password: never"
        );
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        let h = Hasher::new(1).unwrap();
        assert!(!h.verify("portcullis-dummy-password", None).await.unwrap());
        let real = h.hash("right", HashParams::default()).await.unwrap();
        assert!(h.verify("right", Some(&real)).await.unwrap());
    }
}
