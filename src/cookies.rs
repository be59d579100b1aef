//! Cookie crypto: the session cookie (encrypted, cookie crate private jar), the
//! pre-session cookie that binds forms and challenges before sign-in, and CSRF
//! tokens (HMAC of the session or pre-session id).

use base64::Engine;
use cookie::{Cookie, CookieJar, Key, SameSite as CSameSite};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::config::{SameSite, SessionConfig};

/// The raw values of every cookie called `name` in a `Cookie` header, without
/// allocating: pairs split at `;`, blanks around names and values trimmed (as the
/// cookie crate does; a quoted value is passed as it is).
pub fn values_named<'a: 'n, 'n>(
    header: &'a str,
    name: &'n str,
) -> impl Iterator<Item = &'a str> + 'n {
    // Byte searches (`;`, `=`, blanks are ASCII, so every cut is on a char boundary):
    // this runs on every signed-in request.
    let blank = |c: char| c == ' ' || c == '\t';
    let mut rest = Some(header);
    std::iter::from_fn(move || loop {
        let h = rest?;
        let (pair, next) = match memchr::memchr(b';', h.as_bytes()) {
            Some(i) => (&h[..i], Some(&h[i + 1..])),
            None => (h, None),
        };
        rest = next;
        let Some(eq) = memchr::memchr(b'=', pair.as_bytes()) else {
            continue;
        };
        if pair[..eq].trim_matches(blank) == name {
            return Some(pair[eq + 1..].trim_matches(blank));
        }
    })
}

#[derive(Clone)]
pub struct CookieCrypto {
    key: Key,
    csrf_key: zeroize::Zeroizing<[u8; 32]>,
    pub name: String,
    pub pre_name: String,
    pub device_name: String,
    /// Every cookie the gateway sets (session, pre-session, known device,
    /// remembered browser): none of them ever reaches an application.
    pub own_names: Vec<String>,
    domain: Option<String>,
    secure: bool,
    same_site: CSameSite,
}

impl std::fmt::Debug for CookieCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieCrypto")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CookieCrypto {
    /// `master` is the 64-byte `cookie.key`.
    pub fn new(master: &[u8], cfg: &SessionConfig) -> CookieCrypto {
        CookieCrypto {
            key: Key::derive_from(master),
            csrf_key: crate::crypto::derive_key(master, b"portcullis csrf v1"),
            name: cfg.cookie_name.clone(),
            pre_name: format!("{}_pre", cfg.cookie_name),
            device_name: format!("{}_dev", cfg.cookie_name),
            own_names: ["", "_pre", "_dev", "_2fa"]
                .iter()
                .map(|s| format!("{}{s}", cfg.cookie_name))
                .collect(),
            domain: cfg.domain.clone(),
            secure: cfg.secure,
            same_site: match cfg.same_site {
                SameSite::Lax => CSameSite::Lax,
                SameSite::Strict => CSameSite::Strict,
                SameSite::None => CSameSite::None,
            },
        }
    }

    /// Decrypts the value of cookie `name` found in a `Cookie` header.
    pub fn read(&self, cookie_header: &str, name: &str) -> Option<String> {
        let jar = CookieJar::new();
        for c in Cookie::split_parse(cookie_header.to_string()).flatten() {
            if c.name() == name {
                if let Some(plain) = jar.private(&self.key).decrypt(c) {
                    return Some(plain.value().to_string());
                }
            }
        }
        None
    }

    /// Decrypts one raw value of cookie `name` (allocates only for the check).
    pub fn decrypt_value(&self, name: &str, raw: &str) -> Option<String> {
        let jar = CookieJar::new();
        let c = Cookie::new(name.to_string(), raw.to_string());
        jar.private(&self.key)
            .decrypt(c)
            .map(|plain| plain.value().to_string())
    }

    fn build(&self, name: &str, value: String, host_in_domain: bool) -> Cookie<'static> {
        let mut jar = CookieJar::new();
        let mut c = Cookie::build((name.to_string(), value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(self.same_site)
            .build();
        if let (Some(d), true) = (&self.domain, host_in_domain) {
            c.set_domain(d.clone());
        }
        jar.private_mut(&self.key).add(c);
        jar.get(name)
            .cloned()
            .unwrap_or_else(|| Cookie::new(name.to_string(), String::new()))
    }

    /// `Set-Cookie` for the session; `Domain` only when the host is under `session.domain`.
    pub fn session_cookie(&self, id: &str, host: &str) -> String {
        self.build(&self.name, id.to_string(), self.host_in_domain(host))
            .to_string()
    }

    /// The known-device cookie for `user`: encrypted, long-lived, host-only.
    pub fn device_cookie(&self, user: &str, device: &str, days: u32) -> String {
        self.sealed_cookie(&self.device_name, format!("{user}|{device}"), days)
    }

    /// An encrypted and authenticated (AES-GCM), host-only, `days`-long cookie: the
    /// account name inside is for the gateway only, not for whoever looks at the
    /// browser's cookies on a shared computer.
    fn sealed_cookie(&self, name: &str, value: String, days: u32) -> String {
        let mut jar = CookieJar::new();
        let c = Cookie::build((name.to_string(), value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(CSameSite::Lax)
            .max_age(cookie::time::Duration::days(i64::from(days)))
            .build();
        jar.private_mut(&self.key).add(c);
        jar.get(name).map(|c| c.to_string()).unwrap_or_default()
    }

    /// The values of every genuine cookie called `name` in the header: encrypted
    /// ones, and the signed ones gateways made before they were encrypted (still
    /// genuine: the same key signed them), so an upgrade forgets no browser.
    fn sealed_values(&self, cookie_header: &str, name: &str) -> Vec<String> {
        let jar = CookieJar::new();
        Cookie::split_parse(cookie_header.to_string())
            .flatten()
            .filter(|c| c.name() == name)
            .filter_map(|c| {
                jar.private(&self.key)
                    .decrypt(c.clone())
                    .or_else(|| jar.signed(&self.key).verify(c))
            })
            .map(|c| c.value().to_string())
            .collect()
    }

    /// The device id of this browser for `user`, if it holds a genuine known-device cookie.
    pub fn known_device(&self, cookie_header: &str, user: &str) -> Option<String> {
        self.sealed_values(cookie_header, &self.device_name)
            .into_iter()
            .find_map(|v| match v.split_once('|') {
                Some((u, d)) if u == user && d.len() == 32 => Some(d.to_string()),
                _ => None,
            })
    }

    /// "Remember this browser": skips the second factor for `user` until `expires`
    /// (unix time) or until the account's second factors change (`factors_version`).
    pub fn remember_cookie(
        &self,
        user: &str,
        factors_version: u64,
        expires: u64,
        days: u32,
    ) -> String {
        self.sealed_cookie(
            &self.remember_name(),
            format!("{user}|{factors_version}|{expires}"),
            days,
        )
    }

    pub fn remember_name(&self) -> String {
        format!("{}_2fa", self.name)
    }

    /// Whether this browser holds a genuine, unexpired remember cookie for `user`
    /// made since the account's second factors last changed.
    pub fn remembered(
        &self,
        cookie_header: &str,
        user: &str,
        factors_version: u64,
        now: u64,
    ) -> bool {
        self.sealed_values(cookie_header, &self.remember_name())
            .iter()
            .any(|v| {
                let mut parts = v.split('|');
                parts.next() == Some(user)
                    && parts.next() == Some(factors_version.to_string().as_str())
                    && parts
                        .next()
                        .and_then(|e| e.parse::<u64>().ok())
                        .is_some_and(|e| e > now)
            })
    }

    pub fn pre_cookie(&self, pre_id: &str) -> String {
        self.build(&self.pre_name, pre_id.to_string(), false)
            .to_string()
    }

    /// `Set-Cookie` that deletes cookie `name` (host-only and domain forms alike).
    pub fn clear(&self, name: &str, host: &str) -> Vec<String> {
        let mut out = vec![format!("{name}=; Path=/; Max-Age=0; HttpOnly")];
        if let Some(d) = self.domain.as_ref().filter(|_| self.host_in_domain(host)) {
            out.push(format!("{name}=; Path=/; Domain={d}; Max-Age=0; HttpOnly"));
        }
        out
    }

    pub fn host_in_domain(&self, host: &str) -> bool {
        self.domain
            .as_deref()
            .is_some_and(|d| crate::redirect::within_domain(host, d))
    }

    pub fn csrf_token(&self, binding: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::hmac_sha256(
            &*self.csrf_key,
            &[binding.as_bytes()],
        ))
    }

    pub fn csrf_ok(&self, binding: &str, token: &str) -> bool {
        let want = self.csrf_token(binding);
        want.len() == token.len() && bool::from(want.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// A fresh random id for a pre-session (128 bits, hex).
pub fn new_pre_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) fn cfg() -> SessionConfig {
        SessionConfig {
            cookie_name: "portcullis".into(),
            domain: Some("example.com".into()),
            secure: true,
            same_site: SameSite::Lax,
            idle_timeout: Duration::from_secs(60),
            absolute_timeout: Duration::from_secs(600),
        }
    }

    #[test]
    fn session_cookie_round_trip_and_attributes() {
        let c = CookieCrypto::new(&[7u8; 64], &cfg());
        let set = c.session_cookie("abc", "app.example.com");
        assert!(set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Lax"));
        assert!(set.contains("Domain=example.com"), "{set}");
        assert!(!set.contains("abc"), "value is encrypted: {set}");
        let pair = set.split(';').next().unwrap();
        assert_eq!(c.read(pair, "portcullis").as_deref(), Some("abc"));
        assert!(!c.session_cookie("abc", "other.org").contains("Domain="));
        // Another key can't read it, and tampering is detected.
        let other = CookieCrypto::new(&[8u8; 64], &cfg());
        assert_eq!(other.read(pair, "portcullis"), None);
        assert_eq!(c.read(&pair.replace('=', "=A"), "portcullis"), None);
    }

    #[test]
    fn device_cookie_is_signed_and_bound_to_its_user() {
        let c = CookieCrypto::new(&[7u8; 64], &cfg());
        let set = c.device_cookie("alice", &"d".repeat(32), 90);
        assert!(set.contains("Max-Age=7776000"), "{set}");
        let pair = set.split(';').next().unwrap();
        assert_eq!(
            c.known_device(pair, "alice").as_deref(),
            Some("d".repeat(32).as_str())
        );
        assert_eq!(c.known_device(pair, "bob"), None);
        let forged = format!("portcullis_dev=alice|{}", "d".repeat(32));
        assert_eq!(c.known_device(&forged, "alice"), None);
        // The account name can't be read from the browser's cookies.
        assert!(!set.contains("alice"), "{set}");
        let remember = c.remember_cookie("alice", 3, 1_000, 30);
        assert!(!remember.contains("alice"), "{remember}");
        // Signed-only cookies from earlier versions are still genuine; a signed one
        // with another key isn't.
        let legacy = |key: &cookie::Key, name: &str, value: String| {
            let mut jar = CookieJar::new();
            jar.signed_mut(key)
                .add(Cookie::new(name.to_string(), value));
            jar.get(name).unwrap().to_string()
        };
        let key = c.key.clone();
        let old = legacy(&key, "portcullis_dev", format!("alice|{}", "e".repeat(32)));
        assert_eq!(
            c.known_device(&old, "alice").as_deref(),
            Some("e".repeat(32).as_str())
        );
        let old = legacy(&key, "portcullis_2fa", "alice|3|1000".into());
        assert!(c.remembered(&old, "alice", 3, 999));
        let other = cookie::Key::from(&[9u8; 64]);
        let old = legacy(
            &other,
            "portcullis_dev",
            format!("alice|{}", "e".repeat(32)),
        );
        assert_eq!(c.known_device(&old, "alice"), None);
    }

    #[test]
    fn remember_cookie_is_signed_bound_and_expires() {
        let c = CookieCrypto::new(&[7u8; 64], &cfg());
        let set = c.remember_cookie("alice", 3, 1_000, 30);
        let pair = set.split(';').next().unwrap();
        assert!(c.remembered(pair, "alice", 3, 999));
        assert!(!c.remembered(pair, "alice", 3, 1_000), "expired");
        assert!(!c.remembered(pair, "alice", 4, 999), "factors changed");
        assert!(!c.remembered(pair, "bob", 3, 999));
        assert!(
            !c.remembered("portcullis_2fa=alice|3|99999", "alice", 3, 999),
            "unsigned"
        );
    }

    #[test]
    fn csrf_tokens_bind_to_their_id() {
        let c = CookieCrypto::new(&[7u8; 64], &cfg());
        let t = c.csrf_token("pre1");
        assert!(c.csrf_ok("pre1", &t));
        assert!(!c.csrf_ok("pre2", &t));
        assert!(!c.csrf_ok("pre1", ""));
    }

    proptest::proptest! {
        /// The byte-search form reads exactly what the plain split did.
        #[test]
        fn values_named_is_the_plain_split(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "portcullis", "portcullis_pre", "=", ";", " ", "\t", "x", "\u{e9}", "\"",
            ]), 0..12),
        ) {
            let h = parts.concat();
            let old: Vec<&str> = h
                .split(';')
                .filter_map(|pair| {
                    let (n, v) = pair.split_once('=')?;
                    (n.trim_matches([' ', '\t']) == "portcullis").then(|| v.trim_matches([' ', '\t']))
                })
                .collect();
            let new: Vec<&str> = values_named(&h, "portcullis").collect();
            proptest::prop_assert_eq!(new, old);
        }
    }

    #[test]
    fn values_named_reads_every_spelling_without_allocating() {
        let h = "a=1; portcullis=x1 ;\tportcullis = x2;portcullis_pre=y; =z; portcullis";
        let v: Vec<&str> = values_named(h, "portcullis").collect();
        assert_eq!(v, ["x1", "x2"]);
        assert_eq!(values_named("", "portcullis").count(), 0);
    }
}
