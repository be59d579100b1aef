//! Signed identity: a short-lived JWT (ES256, P-256) that the gateway adds, in
//! the header a site names in `[site.headers] assertion`, to requests of complete
//! sign-ins and to forward-auth 200 answers. Applications that can't trust the
//! network between them and the gateway verify it with the keys published at
//! `GET {portal_prefix}/jwks.json`.
//!
//! Keys live in `secrets.dir`:
//!
//! ```text
//!  assertion.key           PKCS#8 PEM, 0600: signs; created when missing
//!  assertion.previous.key  optional, the key before a rotation: published only,
//!                          so tokens signed just before the rotation still verify
//! ```
//!
//! `kid` is the RFC 7638 thumbprint of each public key. Signing is ring's ECDSA
//! on a key parsed once (at start and on SIGHUP), so the hot path costs one
//! signature; nothing here ever logs a token or a key.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The signing key's file in `secrets.dir`.
pub const KEY_FILE: &str = "assertion.key";
/// The key before the last rotation, published but never used to sign.
pub const PREVIOUS_KEY_FILE: &str = "assertion.previous.key";

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("assertion key {path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
}

/// A new P-256 key as PKCS#8 PEM.
pub fn generate_pem() -> Result<Zeroizing<String>, String> {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| "could not generate a P-256 key".to_string())?;
    let b64 = Zeroizing::new(STANDARD.encode(doc.as_ref()));
    let mut pem = Zeroizing::new(String::with_capacity(b64.len() + 80));
    pem.push_str(PEM_BEGIN);
    pem.push('\n');
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    Ok(pem)
}

/// The PKCS#8 DER inside a PEM `PRIVATE KEY` block.
fn pem_to_der(text: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    if text.contains("BEGIN EC PRIVATE KEY") {
        return Err(
            "is a SEC1 (\"EC PRIVATE KEY\") file; convert it to PKCS#8 with \
                    `openssl pkcs8 -topk8 -nocrypt -in old.pem -out assertion.key`"
                .into(),
        );
    }
    let start = text
        .find(PEM_BEGIN)
        .ok_or("is not a PEM \"PRIVATE KEY\" (PKCS#8) file")?
        + PEM_BEGIN.len();
    let len = text[start..]
        .find(PEM_END)
        .ok_or("has no \"END PRIVATE KEY\" line")?;
    let body: Zeroizing<String> = Zeroizing::new(
        text[start..start + len]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    STANDARD
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| "holds invalid base64".into())
}

fn parse_key(text: &str, rng: &SystemRandom) -> Result<EcdsaKeyPair, String> {
    let der = pem_to_der(text)?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, rng)
        .map_err(|e| format!("is not a P-256 PKCS#8 key ({e})"))
}

/// A published public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwk {
    pub x: String,
    pub y: String,
    pub kid: String,
}

impl PublicJwk {
    /// From an uncompressed SEC1 point (`04 || x || y`).
    fn from_point(point: &[u8]) -> Option<PublicJwk> {
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        let kid = thumbprint(&x, &y);
        Some(PublicJwk { x, y, kid })
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": self.x, "y": self.y,
            "kid": self.kid, "use": "sig", "alg": "ES256",
        })
    }
}

/// RFC 7638 JWK thumbprint of a P-256 key: SHA-256 over the required members
/// in lexicographic order, without blanks, base64url.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

struct Signer {
    pair: EcdsaKeyPair,
    /// base64url of the JOSE header (with this key's `kid`).
    header: String,
}

/// The loaded keys: the signing key (if any) and the JWKS document.
pub struct Keys {
    current: Option<Signer>,
    published: Vec<PublicJwk>,
    jwks: Bytes,
    rng: SystemRandom,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

/// The claims of one assertion.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub email: String,
    pub name: String,
    pub groups: Vec<String>,
    /// RFC 8176 methods: `["pwd"]`, or `["pwd", "mfa"]` after a second factor.
    pub amr: Vec<String>,
    /// Factors the sign-in proved (1 or 2).
    pub factors: u8,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub jti: String,
}

/// `iss`: `server.public_url` without a trailing `/`, else `portcullis`.
pub fn issuer(cfg: &crate::config::Config) -> &str {
    cfg.server
        .public_url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/'))
        .unwrap_or("portcullis")
}

impl Keys {
    /// No keys at all: nothing is signed, the JWKS is empty.
    pub fn none() -> Keys {
        Keys::build(None, Vec::new())
    }

    fn build(current: Option<EcdsaKeyPair>, previous: Vec<PublicJwk>) -> Keys {
        let mut published = Vec::new();
        let current = current.and_then(|pair| {
            let jwk = PublicJwk::from_point(pair.public_key().as_ref())?;
            let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": jwk.kid });
            let header = URL_SAFE_NO_PAD.encode(header.to_string());
            published.push(jwk);
            Some(Signer { pair, header })
        });
        for p in previous {
            if !published.contains(&p) {
                published.push(p);
            }
        }
        let jwks = serde_json::json!({
            "keys": published.iter().map(PublicJwk::to_json).collect::<Vec<_>>()
        });
        Keys {
            current,
            published,
            jwks: Bytes::from(jwks.to_string()),
            rng: SystemRandom::new(),
        }
    }

    /// Reads `assertion.key` (and `assertion.previous.key`) from `dir`. When the key
    /// is missing and `create` is set (a site has `assertion` on), makes a new one
    /// first and returns its path too.
    pub fn load(dir: &Path, create: bool) -> Result<(Keys, Option<PathBuf>), AssertionError> {
        let path = dir.join(KEY_FILE);
        let mut created = None;
        if create && !path.exists() {
            let pem = generate_pem().map_err(|msg| AssertionError::Invalid {
                path: path.clone(),
                msg,
            })?;
            crate::secrets::create_private_file(dir, &path, pem.as_bytes())?;
            created = Some(path.clone());
        }
        let rng = SystemRandom::new();
        let read = |path: &Path| -> Result<Option<EcdsaKeyPair>, AssertionError> {
            let bytes = match crate::secrets::read_private(path) {
                Ok(b) => b,
                Err(crate::secrets::SecretsError::Missing { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let invalid = |msg: String| AssertionError::Invalid {
                path: path.to_path_buf(),
                msg,
            };
            let text =
                std::str::from_utf8(&bytes).map_err(|_| invalid("is not a PEM file".into()))?;
            parse_key(text, &rng).map(Some).map_err(invalid)
        };
        let current = read(&path)?;
        let previous_path = dir.join(PREVIOUS_KEY_FILE);
        let previous = read(&previous_path)?
            .map(|p| {
                PublicJwk::from_point(p.public_key().as_ref()).ok_or(AssertionError::Invalid {
                    path: previous_path.clone(),
                    msg: "has an unexpected public key".into(),
                })
            })
            .transpose()?;
        Ok((
            Keys::build(current, previous.into_iter().collect()),
            created,
        ))
    }

    /// The JWKS document (`{"keys": [...]}`), current key first.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// Is there a key to sign with?
    pub fn can_sign(&self) -> bool {
        self.current.is_some()
    }

    /// The compact JWS of `claims`, or `None` without a signing key.
    pub fn sign(&self, claims: &Claims) -> Option<String> {
        let signer = self.current.as_ref()?;
        let payload = serde_json::to_vec(claims).ok()?;
        let mut token = String::with_capacity(signer.header.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&signer.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let sig = signer.pair.sign(&self.rng, token.as_bytes()).ok()?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut token);
        Some(token)
    }

    /// A fresh random `jti` (128 bits, base64url).
    pub fn jti(&self) -> String {
        let mut b = [0u8; 16];
        if self.rng.fill(&mut b).is_err() {
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        }
        URL_SAFE_NO_PAD.encode(b)
    }
}

impl Claims {
    /// The claims for `user` signed in with `factors`, for the site `aud`, valid
    /// from `now` for `ttl`.
    pub fn new(
        iss: &str,
        aud: &str,
        user: &crate::users::User,
        factors: u8,
        now: u64,
        ttl: std::time::Duration,
        jti: String,
    ) -> Claims {
        let mut amr = vec!["pwd".to_string()];
        if factors >= 2 {
            amr.push("mfa".into());
        }
        Claims {
            iss: iss.to_string(),
            aud: aud.to_string(),
            sub: user.name.clone(),
            email: user.email.clone(),
            name: user.shown_name().to_string(),
            groups: user.groups.clone(),
            amr,
            factors,
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl.as_secs()),
            jti,
        }
    }
}

/// The assertion for `user` at site `aud` under `cfg` and `keys`, issued at
/// `now` (Unix seconds), or `None` when there is no signing key (logged).
/// (The running gateway's: [`crate::app::Core::assertion_token`].)
pub fn token(
    keys: &Keys,
    cfg: &crate::config::Config,
    aud: &str,
    user: &crate::users::User,
    factors: u8,
    now: u64,
) -> Option<String> {
    let claims = Claims::new(
        issuer(cfg),
        aud,
        user,
        factors,
        now,
        cfg.assertion.ttl,
        keys.jti(),
    );
    let t = keys.sign(&claims);
    if t.is_none() {
        tracing::error!(
            site = aud,
            "identity assertion not signed: no usable assertion.key"
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    /// RFC 7515 appendix A.3's P-256 key.
    const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const A3_Y: &str = "x_FEzRjmy5YwOVCg_jJSTB1I8zFvc5uGHjF3ZRmjzSk";

    #[test]
    fn thumbprint_known_answer() {
        // RFC 7638's own example is an RSA key; this vector is the same
        // construction over RFC 7515 A.3's EC key, computed independently
        // (Python: sha256 of the canonical JSON, base64url).
        assert_eq!(
            thumbprint(A3_X, A3_Y),
            "gZH9Tj804e-IYBLWxKM1EAudhMKOCXzX5mBGF6xDxWA"
        );
    }

    fn keys_in(dir: &Path) -> Keys {
        Keys::load(dir, true).unwrap().0
    }

    fn alice() -> crate::users::User {
        crate::users::User {
            name: "alice".into(),
            email: "alice@example.com".into(),
            display_name: "Alice Exämple".into(),
            groups: vec!["admins".into(), "staff".into()],
            ..Default::default()
        }
    }

    #[test]
    fn signs_verifiable_tokens_with_the_claims() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys_in(dir.path());
        let claims = Claims::new(
            "https://auth.example.com",
            "app.example.com",
            &alice(),
            2,
            1_700_000_000,
            std::time::Duration::from_secs(60),
            keys.jti(),
        );
        let token = keys.sign(&claims).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["typ"], "JWT");
        let jwks: serde_json::Value = serde_json::from_slice(&keys.jwks()).unwrap();
        let jwk = &jwks["keys"][0];
        assert_eq!(header["kid"], jwk["kid"]);
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(
            jwk["kid"].as_str().unwrap(),
            thumbprint(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap())
        );
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({
                "iss": "https://auth.example.com", "aud": "app.example.com", "sub": "alice",
                "email": "alice@example.com", "name": "Alice Exämple",
                "groups": ["admins", "staff"], "amr": ["pwd", "mfa"], "factors": 2,
                "iat": 1_700_000_000u64, "nbf": 1_700_000_000u64, "exp": 1_700_000_060u64,
                "jti": claims.jti,
            })
        );
        // The signature verifies with the published point, and only over these bytes.
        let mut point = vec![4u8];
        point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point);
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(public.verify(input.as_bytes(), &sig).is_ok());
        assert!(public.verify(b"x.y", &sig).is_err());
        // One factor: amr "pwd" only; every token has its own jti.
        let one = Claims::new(
            "portcullis",
            "a",
            &alice(),
            1,
            0,
            Default::default(),
            keys.jti(),
        );
        assert_eq!(one.amr, vec!["pwd"]);
        assert_ne!(one.jti, claims.jti);
    }

    #[test]
    fn rotation_publishes_the_previous_key_and_signs_with_the_new() {
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = Keys::load(dir.path(), true).unwrap();
        assert!(created.is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap();
            assert_eq!(m.mode() & 0o777, 0o600);
        }
        let old_kid = first.published[0].kid.clone();
        std::fs::rename(
            dir.path().join(KEY_FILE),
            dir.path().join(PREVIOUS_KEY_FILE),
        )
        .unwrap();
        let (second, created) = Keys::load(dir.path(), true).unwrap();
        assert!(created.is_some());
        let kids: Vec<&str> = second.published.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids.len(), 2);
        assert_eq!(
            kids[1], old_kid,
            "previous key published after the current one"
        );
        assert_ne!(kids[0], old_kid);
        // Not needed and missing: nothing created, nothing signed, empty JWKS.
        let empty = tempfile::tempdir().unwrap();
        let (none, created) = Keys::load(empty.path(), false).unwrap();
        assert!(created.is_none() && !none.can_sign());
        assert_eq!(&none.jwks()[..], br#"{"keys":[]}"#);
    }

    #[test]
    fn bad_key_files_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        for (text, want) in [
            ("not a key", "PKCS#8"),
            (
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                "SEC1",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n",
                "base64",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "P-256",
            ),
        ] {
            crate::secrets::create_private_file(dir.path(), &path, text.as_bytes()).unwrap();
            let e = Keys::load(dir.path(), true).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("assertion.key"), "{e}");
            std::fs::remove_file(&path).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            Keys::load(dir.path(), true).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Keys::load(dir.path(), true).unwrap_err().to_string();
            assert!(e.contains("readable by others"), "{e}");
        }
    }

    #[test]
    fn generated_pem_round_trips() {
        let pem = generate_pem().unwrap();
        assert!(pem.starts_with(PEM_BEGIN) && pem.trim_end().ends_with(PEM_END));
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert!(parse_key(&pem, &SystemRandom::new()).is_ok());
    }
}
