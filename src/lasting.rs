//! Header text kept for the life of the process (issue #11).
//!
//! A header value or name made at run time holds its bytes in a shared buffer, and
//! every copy of it counts a reference up and, when dropped, down again: two atomic
//! operations, on every forwarded request, for each value the gateway copies into
//! the head (the site's `X-Forwarded-Host`, an account's identity values, the
//! peer's `X-Forwarded-For`). Text that lives as long as the process needs no
//! count: its copies are plain pointers. So the few texts that recur on every
//! request are kept here, once each, in pools with a fixed budget of bytes; past
//! its budget a pool keeps nothing more, and the text is used as it is, counted as
//! before. What a pool holds is never freed, and never more than its budget.
//!
//! Only what the gateway would send anyway goes in: names and hosts from the
//! config, account names, e-mail addresses, display names and group lists, and peer
//! addresses. Nothing secret (no cookie, no assertion, no code).

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use http::{HeaderName, HeaderValue};

/// One pool: the texts it keeps and the bytes they take.
pub struct Lasting {
    budget: usize,
    kept: Mutex<(HashSet<&'static [u8]>, usize)>,
}

/// Names and hosts from the config (each reload keeps only what is new).
pub static CONFIG: LazyLock<Lasting> = LazyLock::new(|| Lasting::new(256 << 10));
/// Accounts' identity values: some 60 000 accounts' worth.
pub static ACCOUNTS: LazyLock<Lasting> = LazyLock::new(|| Lasting::new(4 << 20));
/// Peer addresses (the `X-Forwarded-For` of a direct request): a few thousand.
pub static PEERS: LazyLock<Lasting> = LazyLock::new(|| Lasting::new(64 << 10));

impl Lasting {
    /// An empty pool that keeps at most `budget` bytes.
    pub fn new(budget: usize) -> Lasting {
        Lasting {
            budget,
            kept: Mutex::new((HashSet::new(), 0)),
        }
    }

    /// `bytes` kept for good: the one copy of it in this pool, made now if it fits.
    fn keep(&self, bytes: &[u8]) -> Option<&'static [u8]> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = kept.0.get(bytes) {
            return Some(k);
        }
        let used = kept.1.checked_add(bytes.len())?;
        if used > self.budget {
            return None;
        }
        let k: &'static [u8] = Box::leak(bytes.to_vec().into_boxed_slice());
        kept.0.insert(k);
        kept.1 = used;
        Some(k)
    }

    /// `value`, its bytes kept in this pool when they fit (then a copy of it is a
    /// pointer, not a reference count); otherwise `value` itself.
    pub fn value(&self, value: HeaderValue) -> HeaderValue {
        let Some(k) = self.keep(value.as_bytes()) else {
            return value;
        };
        let sensitive = value.is_sensitive();
        match HeaderValue::from_maybe_shared(bytes::Bytes::from_static(k)) {
            Ok(mut v) => {
                v.set_sensitive(sensitive);
                v
            }
            // The same bytes made `value`: not reached.
            Err(_) => value,
        }
    }

    /// `name`, kept in this pool when it fits (see [`value`](Self::value)).
    pub fn name(&self, name: HeaderName) -> HeaderName {
        let Some(k) = self.keep(name.as_str().as_bytes()) else {
            return name;
        };
        // A name's text is its lower-case form (what `from_static` takes); checked
        // again so that nothing here can panic.
        match std::str::from_utf8(k) {
            Ok(s) if HeaderName::from_bytes(k).is_ok_and(|n| n.as_str() == s) => {
                HeaderName::from_static(s)
            }
            _ => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_value_is_one_copy_for_good() {
        let pool = Lasting::new(64);
        let a = pool.value(HeaderValue::from_str("alice@example.com").unwrap());
        let b = pool.value(HeaderValue::from_str("alice@example.com").unwrap());
        assert_eq!(a, "alice@example.com");
        // Both are the pool's one copy, not two shared buffers.
        assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
        // And a copy of it points at the same bytes (no new buffer either).
        assert_eq!(a.clone().as_bytes().as_ptr(), a.as_bytes().as_ptr());
        // Sensitivity is the value's own.
        let mut s = HeaderValue::from_str("alice@example.com").unwrap();
        s.set_sensitive(true);
        let s = pool.value(s);
        assert!(s.is_sensitive());
        assert_eq!(s.as_bytes().as_ptr(), a.as_bytes().as_ptr());
        // UTF-8 (obs-text) passes as it came.
        let v = pool.value(HeaderValue::from_bytes("José".as_bytes()).unwrap());
        assert_eq!(v.as_bytes(), "José".as_bytes());
    }

    #[test]
    fn a_pool_keeps_no_more_than_its_budget() {
        let pool = Lasting::new(10);
        let a = pool.value(HeaderValue::from_static("0123456789"));
        assert_eq!(a, "0123456789");
        // Full: a new text is used as it is, still right, not kept.
        let fresh = HeaderValue::from_str("more").unwrap();
        let ptr = fresh.as_bytes().as_ptr();
        let b = pool.value(fresh);
        assert_eq!(b, "more");
        assert_eq!(b.as_bytes().as_ptr(), ptr);
        assert_eq!(pool.kept.lock().unwrap().1, 10);
        // What it kept it still gives.
        let again = pool.value(HeaderValue::from_str("0123456789").unwrap());
        assert_eq!(again.as_bytes().as_ptr(), a.as_bytes().as_ptr());
    }

    #[test]
    fn a_kept_name_is_the_same_name() {
        let pool = Lasting::new(64);
        let n = pool.name(HeaderName::from_bytes(b"X-Auth-User").unwrap());
        assert_eq!(n, "x-auth-user");
        let m = pool.name(HeaderName::from_bytes(b"x-auth-user").unwrap());
        assert_eq!(n.as_str().as_ptr(), m.as_str().as_ptr());
        // Standard names stay standard.
        assert_eq!(pool.name(http::header::HOST), http::header::HOST);
    }
}
