//! Ephemeral state: sessions, pending challenges, counters, one-time codes.
//!
//! One small trait, [`Store`], with two implementations: [`memory`] (embedded,
//! one process) and [`redis`] (shared by several gateways). Every key carries a
//! TTL, so nothing needs a cleanup job, and every operation that must not race
//! (`take`, `set_nx`, `set_xx`, `incr`) is atomic in both. Keys are given without the
//! configured prefix; implementations add it. [`keys`] builds every key and
//! documents the schema. The conformance suite at the
//! bottom runs against both (Redis in the integration tests).

pub mod keys;
pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The memory store holds `store.max_entries` keys and this call would add one.
    #[error("session store full (store.max_entries)")]
    Full,
    /// A value couldn't be encoded for the store (or one read back decoded): a bug
    /// or data of another version, not the store being down. Logged as such.
    #[error("a stored value can't be encoded or decoded: {0}")]
    Encoding(String),
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;
    /// Sets only when the key is absent; `true` when this call set it.
    async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError>;
    /// Sets only when the key is present (still there), in one step; `true` when
    /// this call set it. For refreshes that must not bring back a deleted key.
    async fn set_xx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError>;
    /// Reads and deletes in one step: of two concurrent takes, one gets the value.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// `true` when the key existed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Adds one and returns the new value; a new key lives for `ttl`.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError>;
    /// Adds to a set and (re)sets the set's TTL.
    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError>;
    async fn set_remove(&self, key: &str, member: &str) -> Result<(), StoreError>;
    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError>;
    /// Remaining time to live, `None` when the key is absent.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    /// Takes one off a counter made by [`incr`](Store::incr), never below 0, keeping
    /// its TTL; an absent key stays absent. Returns the new value.
    async fn decr(&self, key: &str) -> Result<u64, StoreError>;

    /// Do other processes share this store (so a change made elsewhere must be
    /// announced, see [`publish`](Store::publish) and [`watch`](Store::watch))?
    fn shared(&self) -> bool {
        false
    }

    /// Announces `message` on `channel` to every process watching it. A store of
    /// one process has nobody to tell.
    async fn publish(&self, _channel: &str, _message: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Watches `channel` for as long as the future runs, reconnecting as needed:
    /// [`Watch::Up`] once subscribed, each message as [`Watch::Message`], and
    /// [`Watch::Down`] as soon as the subscription is lost (messages may have been
    /// missed). A store of one process returns at once.
    async fn watch(&self, _channel: &str, _on: &OnWatch) {}
}

/// The receiver of what [`Store::watch`] reports.
pub type OnWatch = dyn for<'a> Fn(Watch<'a>) + Send + Sync;

/// What [`Store::watch`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch<'a> {
    Up,
    Message(&'a str),
    Down,
}

pub type DynStore = Arc<dyn Store>;

/// The behaviour every [`Store`] must show. Called by unit tests (memory) and the
/// integration tests (a real redis-server). `pass` lets time go by: the memory
/// store's clock is moved, Redis is waited for.
// A test suite in the library (feature `test-support`) so the Redis integration
// test can run it: its panics are its assertions.
#[cfg(any(test, feature = "test-support"))]
#[allow(clippy::unwrap_used, clippy::panic)]
pub async fn conformance<F, Fut>(store: &dyn Store, pass: F)
where
    F: Fn(Duration) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let ttl = Duration::from_secs(60);
    let k = |s: &str| format!("conformance:{s}");
    assert_eq!(store.get(&k("missing")).await.unwrap(), None);
    store.set(&k("a"), b"1", ttl).await.unwrap();
    assert_eq!(
        store.get(&k("a")).await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    let left = store.ttl(&k("a")).await.unwrap().unwrap();
    assert!(
        left <= ttl && left >= Duration::from_secs(55),
        "ttl {left:?}"
    );
    assert!(!store.set_nx(&k("a"), b"2", ttl).await.unwrap());
    assert!(store.set_nx(&k("b"), b"2", ttl).await.unwrap());
    // set_xx: only what is still there.
    assert!(!store.set_xx(&k("xx"), b"1", ttl).await.unwrap());
    assert_eq!(store.get(&k("xx")).await.unwrap(), None);
    assert!(store.set_xx(&k("a"), b"3", ttl).await.unwrap());
    assert_eq!(
        store.get(&k("a")).await.unwrap().as_deref(),
        Some(&b"3"[..])
    );
    assert!(store.ttl(&k("a")).await.unwrap().is_some());
    assert_eq!(
        store.take(&k("b")).await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(store.take(&k("b")).await.unwrap(), None);
    assert!(store.delete(&k("a")).await.unwrap());
    assert!(!store.delete(&k("a")).await.unwrap());
    assert_eq!(store.incr(&k("n"), ttl).await.unwrap(), 1);
    assert_eq!(store.incr(&k("n"), ttl).await.unwrap(), 2);
    store.set_add(&k("s"), "x", ttl).await.unwrap();
    store.set_add(&k("s"), "y", ttl).await.unwrap();
    store.set_add(&k("s"), "x", ttl).await.unwrap();
    let mut m = store.set_members(&k("s")).await.unwrap();
    m.sort();
    assert_eq!(m, vec!["x".to_string(), "y".to_string()]);
    store.set_remove(&k("s"), "x").await.unwrap();
    assert_eq!(
        store.set_members(&k("s")).await.unwrap(),
        vec!["y".to_string()]
    );
    assert!(store.set_members(&k("none")).await.unwrap().is_empty());
    // Expiry.
    store
        .set(&k("short"), b"x", Duration::from_millis(200))
        .await
        .unwrap();
    pass(Duration::from_millis(400)).await;
    assert_eq!(store.get(&k("short")).await.unwrap(), None);
    // Concurrent takes: exactly one wins.
    store.set(&k("once"), b"v", ttl).await.unwrap();
    let once = k("once");
    let (a, b) = tokio::join!(store.take(&once), store.take(&once));
    assert_eq!(
        usize::from(a.unwrap().is_some()) + usize::from(b.unwrap().is_some()),
        1
    );
    // Concurrent increments: none lost.
    let many = k("many");
    let results = futures::future::join_all((0..50).map(|_| store.incr(&many, ttl))).await;
    let mut seen: Vec<u64> = results.into_iter().map(|r| r.unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=50).collect::<Vec<_>>());
    assert_eq!(store.incr(&k("many"), ttl).await.unwrap(), 51);
    // Decrement: never below zero, never creates a key, keeps the TTL.
    assert_eq!(store.decr(&k("many")).await.unwrap(), 50);
    assert_eq!(store.decr(&k("absent")).await.unwrap(), 0);
    assert_eq!(store.get(&k("absent")).await.unwrap(), None);
    assert_eq!(store.incr(&k("one"), ttl).await.unwrap(), 1);
    assert_eq!(store.decr(&k("one")).await.unwrap(), 0);
    assert_eq!(store.decr(&k("one")).await.unwrap(), 0);
    assert!(store.ttl(&k("one")).await.unwrap().is_some());
    assert_eq!(store.incr(&k("one"), ttl).await.unwrap(), 1);
    store.ping().await.unwrap();
}
