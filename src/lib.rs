//! Portcullis: a reverse-proxy authentication gateway on Pingora.
//!
//! Layers, outermost first: [`proxy`] (Pingora, dispatch only: classify with
//! [`request`], decide with [`policy`], answer with [`respond`]) → [`portal`]
//! (the gateway's own pages) → [`policy`], [`session`], [`auth`], [`users`],
//! [`store`] (no Pingora, unit-tested without a server). [`app`] holds the
//! shared state (its request-path part, `app::Core`, knows nothing of pages).

/// `Debug` for a struct that shows some fields and only the names of its secret
/// ones (passwords, codes, hashes, tokens): a stray `{:?}` in a log line never
/// prints a secret.
macro_rules! debug_hiding {
    ($t:ident $(<$lt:lifetime>)? { $($shown:ident),* } hides { $($hidden:ident),* }) => {
        impl $(<$lt>)? ::std::fmt::Debug for $t $(<$lt>)? {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($t))
                    $(.field(stringify!($shown), &self.$shown))*
                    $(.field(stringify!($hidden), &"<hidden>"))*
                    .finish()
            }
        }
    };
}

/// Helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// A header map of `(name, value)` pairs, in order (repeated names append).
    pub fn header_map(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        h
    }
}

pub mod app;
pub mod assertion;
pub mod audit;
pub mod auth;
pub mod captcha;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod cookies;
pub mod crypto;
pub mod defense;
pub mod forwardauth;
pub mod i18n;
pub mod identity;
pub mod lasting;
pub mod logs;
pub mod metrics;
pub mod notify;
pub mod pathnorm;
pub mod policy;
pub mod portal;
pub mod proxy;
pub mod redirect;
pub mod request;
pub mod respond;
pub mod sample_app;
pub mod secrets;
pub mod server;
pub mod session;
pub mod session_cache;
pub mod spoofable;
pub mod store;
pub mod tls;
pub mod ui;
pub mod users;

/// A number no other call in this process returns. It marks one version of shared
/// state (the accounts as read, the config as loaded) for the per-thread memories
/// that check it on every use (issue #11): a version dropped and another made at the
/// same address, or another gateway's in the same process, never has the same number.
pub fn unique_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
