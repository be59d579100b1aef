//! Header text kept for the life of the process (issue #11).
//!
//! A header value or name made at run time holds its bytes in a shared buffer, and
//! every copy of it counts a reference up and, when dropped, down again: two atomic
//! operations, on every forwarded request, for each value the gateway copies into
//! the head (the site's `X-Forwarded-Host`, an account's identity values, the
//! peer's `X-Forwarded-For`). Text that lives as long as the process needs no
//! count: its copies are plain pointers. So the few texts that recur on every
//! request are kept here, once each, in pools with a fixed budget of bytes (each
//! entry charged its text and [`ENTRY_COST`] for the set and the allocator); once a
//! text doesn't fit, a pool is full: it keeps and finds nothing more, takes no lock
//! again, and texts are used as they are, counted as before. What a pool holds is
//! never freed: an edited account's old values and a deleted account's stay in
//! memory until the gateway restarts.
//!
//! Only what the gateway would send anyway goes in: names and hosts from the
//! config, account names, e-mail addresses, display names and group lists, and peer
//! addresses. Nothing secret (no cookie, no assertion, no code).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use http::{HeaderName, HeaderValue};

/// One pool: the texts it keeps and the bytes they take.
pub struct Lasting {
    budget: usize,
    kept: Mutex<(HashSet<&'static [u8]>, usize)>,
    /// Set once a text didn't fit: then no look-up takes the lock (a gateway that
    /// sees many peers would otherwise take it on every new one).
    full: AtomicBool,
}

/// What an entry costs besides its text: its place in the set and the allocator's
/// rounding, so that a pool of short texts stays within its budget too.
pub const ENTRY_COST: usize = 48;

/// The longest text a pool keeps: a longer one (a very long group list) is used as
/// it is, and doesn't fill the pool for the texts that fit.
pub const LONGEST: usize = 4096;

/// Names and hosts from the config (each reload keeps only what is new).
pub static CONFIG: LazyLock<Lasting> = LazyLock::new(|| Lasting::new(256 << 10));
/// Accounts' identity values: some 15 000 accounts' worth.
pub static ACCOUNTS: LazyLock<Lasting> = LazyLock::new(|| Lasting::new(4 << 20));
/// Peer addresses (the `X-Forwarded-For` of a direct request): the first thousand
/// or so a gateway sees (behind a load balancer, its few addresses).
pub static PEERS: LazyLock<Lasting> = LazyLock::new(|| Lasting::new(64 << 10));

impl Lasting {
    /// An empty pool that keeps at most `budget` bytes.
    pub fn new(budget: usize) -> Lasting {
        Lasting {
            budget,
            kept: Mutex::new((HashSet::new(), 0)),
            full: AtomicBool::new(false),
        }
    }

    /// `bytes` kept for good: the one copy of it in this pool, made now if it fits.
    fn keep(&self, bytes: &[u8]) -> Option<&'static [u8]> {
        if bytes.len() > LONGEST || self.full.load(Ordering::Relaxed) {
            return None;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = kept.0.get(bytes) {
            return Some(k);
        }
        let used = kept
            .1
            .checked_add(bytes.len())
            .and_then(|u| u.checked_add(ENTRY_COST))
            .filter(|&u| u <= self.budget);
        let Some(used) = used else {
            self.full.store(true, Ordering::Relaxed);
            return None;
        };
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
        let pool = Lasting::new(1024);
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
        // A text longer than any kept is used as it is, and fills nothing.
        let pool = Lasting::new(1 << 20);
        let long = HeaderValue::from_str(&"g".repeat(LONGEST + 1)).unwrap();
        let ptr = long.as_bytes().as_ptr();
        assert_eq!(pool.value(long).as_bytes().as_ptr(), ptr);
        assert!(!pool.full.load(Ordering::Relaxed));
        assert_eq!(pool.kept.lock().unwrap().1, 0);

        let pool = Lasting::new(10 + ENTRY_COST);
        let a = pool.value(HeaderValue::from_str("0123456789").unwrap());
        assert_eq!(a, "0123456789");
        // What it kept it gives again.
        let again = pool.value(HeaderValue::from_str("0123456789").unwrap());
        assert_eq!(again.as_bytes().as_ptr(), a.as_bytes().as_ptr());
        // A text that doesn't fit is used as it is, still right, not kept.
        let fresh = HeaderValue::from_str("x").unwrap();
        let ptr = fresh.as_bytes().as_ptr();
        let b = pool.value(fresh);
        assert_eq!(b, "x");
        assert_eq!(b.as_bytes().as_ptr(), ptr);
        assert_eq!(pool.kept.lock().unwrap().1, 10 + ENTRY_COST);
        // And the pool is full: nothing is looked up any more (no lock taken).
        assert!(pool.full.load(Ordering::Relaxed));
        let late = HeaderValue::from_str("0123456789").unwrap();
        let ptr = late.as_bytes().as_ptr();
        assert_eq!(pool.value(late).as_bytes().as_ptr(), ptr);
    }

    #[test]
    fn a_kept_name_is_the_same_name() {
        let pool = Lasting::new(1024);
        let n = pool.name(HeaderName::from_bytes(b"X-Auth-User").unwrap());
        assert_eq!(n, "x-auth-user");
        let m = pool.name(HeaderName::from_bytes(b"x-auth-user").unwrap());
        assert_eq!(n.as_str().as_ptr(), m.as_str().as_ptr());
        // Standard names stay standard.
        assert_eq!(pool.name(http::header::HOST), http::header::HOST);
    }
}
