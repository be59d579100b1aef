//! The embedded store: sharded hash maps in this process.
//!
//! A std `Mutex` per shard, never held across an `.await`: critical sections are
//! a hash lookup, so an async mutex would only add overhead. Expired entries are
//! dropped when touched and by a sweep that runs when a shard has grown.
//!
//! The store holds at most `store.max_entries` keys, so a flood of new keys
//! (sign-in attempts from many addresses, challenges) can't grow it without
//! bound. When it is full, expired entries are swept from every shard first; if
//! it is still full, operations that would add a *new* key fail with
//! [`StoreError::Full`] (callers fail closed: 503). Updates of existing keys
//! always succeed, so live sessions and counters keep working.
//!
//! Expiry follows the [`crate::clock::Clock`] the store is given
//! ([`MemoryStore::with_clock`]; its monotonic time), so tests move time instead
//! of sleeping.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{Store, StoreError};
use crate::clock::{DynClock, SystemClock};

/// A point in the clock's monotonic time ([`crate::clock::Clock::monotonic`]).
type Tick = Duration;

enum Value {
    Bytes(Vec<u8>),
    Set(HashSet<String>),
    Count(u64),
}

struct Entry {
    value: Value,
    expires: Tick,
}

#[derive(Default)]
struct Shard {
    map: HashMap<String, Entry>,
    sweep_at: usize,
}

pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
    /// Keys across all shards (kept up to date under each shard's lock).
    entries: AtomicUsize,
    max_entries: usize,
    /// When a full store last swept every shard: at most one such O(n) sweep per
    /// `sweep_every`, so a full store can't be made to sweep on every request.
    last_sweep: Mutex<Option<Tick>>,
    sweep_every: Duration,
    clock: DynClock,
}

const SHARDS: usize = 16;

/// The default bound, as `store.max_entries`.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

type Map = HashMap<String, Entry>;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A store holding at most about `max_entries` keys (concurrent inserts on
    /// different shards may overshoot by fewer than the number of shards).
    pub fn with_max_entries(max_entries: usize) -> MemoryStore {
        Self::with_clock(std::sync::Arc::new(SystemClock), max_entries)
    }

    /// A store on `clock` (expiry follows it) holding at most about `max_entries` keys.
    pub fn with_clock(clock: DynClock, max_entries: usize) -> MemoryStore {
        MemoryStore {
            clock,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        sweep_at: 1024,
                    })
                })
                .collect(),
            hasher: Default::default(),
            entries: AtomicUsize::new(0),
            max_entries,
            last_sweep: Mutex::new(None),
            sweep_every: Duration::from_secs(1),
        }
    }

    fn lock(&self, idx: usize) -> std::sync::MutexGuard<'_, Shard> {
        // A poisoned lock means a panic while holding it; the map itself is still sound.
        self.shards[idx].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings the global count in line with a shard whose size went from `before`
    /// to `after` (called with that shard's lock held).
    fn account(&self, before: usize, after: usize) {
        if after > before {
            self.entries.fetch_add(after - before, Ordering::Relaxed);
        } else if before > after {
            self.entries.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// Runs `f` on the key's shard (expired entry for `key` already dropped).
    /// `f` learns whether a new key may be added; it returns `None` when it
    /// needed to add one and couldn't. Then every shard is swept of expired
    /// entries (unless that was done within `sweep_every`) and `f` runs once
    /// more; `None` again is [`StoreError::Full`].
    fn with<T>(
        &self,
        key: &str,
        f: impl Fn(&mut Map, Tick, bool) -> Option<T>,
    ) -> Result<T, StoreError> {
        if let Some(t) = self.try_with(key, &f) {
            return Ok(t);
        }
        self.sweep();
        self.try_with(key, &f).ok_or(StoreError::Full)
    }

    /// [`with`](Self::with) for operations that never add a key.
    fn read<T>(&self, key: &str, f: impl Fn(&mut Map, Tick) -> T) -> T {
        let idx = self.shard_of(key);
        let mut shard = self.lock(idx);
        let before = shard.map.len();
        let t = self.prepare(&mut shard, key, |m, now, _| f(m, now));
        self.account(before, shard.map.len());
        t
    }

    fn try_with<T>(&self, key: &str, f: &impl Fn(&mut Map, Tick, bool) -> Option<T>) -> Option<T> {
        let idx = self.shard_of(key);
        let mut shard = self.lock(idx);
        let before = shard.map.len();
        let t = self.prepare(&mut shard, key, f);
        self.account(before, shard.map.len());
        t
    }

    fn shard_of(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn prepare<T>(&self, shard: &mut Shard, key: &str, f: impl Fn(&mut Map, Tick, bool) -> T) -> T {
        let now = self.clock.monotonic();
        if shard.map.len() >= shard.sweep_at {
            shard.map.retain(|_, e| e.expires > now);
            shard.sweep_at = (shard.map.len() * 2).max(1024);
        }
        let map = &mut shard.map;
        if map.get(key).is_some_and(|e| e.expires <= now) {
            map.remove(key);
        }
        // Counted before this shard's own changes are accounted, which only ever
        // removed entries above, so this errs toward refusing.
        let room = self.entries.load(Ordering::Relaxed) < self.max_entries;
        f(map, now, room)
    }

    /// Drops expired entries from every shard, one shard lock at a time.
    fn sweep(&self) {
        let now = self.clock.monotonic();
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| now.saturating_sub(t) < self.sweep_every) {
                return;
            }
            *last = Some(now);
        }
        for idx in 0..SHARDS {
            let mut shard = self.lock(idx);
            let before = shard.map.len();
            shard.map.retain(|_, e| e.expires > now);
            self.account(before, shard.map.len());
        }
    }

    /// Keys held now (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn bytes(value: &[u8], expires: Tick) -> Entry {
    Entry {
        value: Value::Bytes(value.to_vec()),
        expires,
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read(key, |m, _| match m.get(key).map(|e| &e.value) {
            Some(Value::Bytes(b)) => Some(b.clone()),
            Some(Value::Count(n)) => Some(n.to_string().into_bytes()),
            _ => None,
        }))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.with(key, |m, now, room| {
            if let Some(e) = m.get_mut(key) {
                *e = bytes(value, now.saturating_add(ttl));
                return Some(());
            }
            if !room {
                return None;
            }
            m.insert(key.to_string(), bytes(value, now.saturating_add(ttl)));
            Some(())
        })
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        self.with(key, |m, now, room| {
            if m.contains_key(key) {
                return Some(false);
            }
            if !room {
                return None;
            }
            m.insert(key.to_string(), bytes(value, now.saturating_add(ttl)));
            Some(true)
        })
    }

    async fn set_xx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        Ok(self.read(key, |m, now| match m.get_mut(key) {
            Some(e) => {
                *e = bytes(value, now.saturating_add(ttl));
                true
            }
            None => false,
        }))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read(key, |m, _| match m.remove(key).map(|e| e.value) {
            Some(Value::Bytes(b)) => Some(b),
            Some(Value::Count(n)) => Some(n.to_string().into_bytes()),
            _ => None,
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.read(key, |m, _| m.remove(key).is_some()))
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        self.with(key, |m, now, room| {
            if !room && !m.contains_key(key) {
                return None;
            }
            let e = m.entry(key.to_string()).or_insert(Entry {
                value: Value::Count(0),
                expires: now.saturating_add(ttl),
            });
            let n = match &e.value {
                Value::Count(n) => n + 1,
                Value::Bytes(b) => {
                    std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0)
                        + 1
                }
                Value::Set(_) => 1,
            };
            e.value = Value::Count(n);
            Some(n)
        })
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        self.with(key, |m, now, room| {
            if !room && !m.contains_key(key) {
                return None;
            }
            let e = m.entry(key.to_string()).or_insert(Entry {
                value: Value::Set(HashSet::new()),
                expires: now,
            });
            if !matches!(e.value, Value::Set(_)) {
                e.value = Value::Set(HashSet::new());
            }
            if let Value::Set(s) = &mut e.value {
                s.insert(member.to_string());
            }
            e.expires = now.saturating_add(ttl);
            Some(())
        })
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        self.read(key, |m, _| {
            let empty = match m.get_mut(key).map(|e| &mut e.value) {
                Some(Value::Set(s)) => {
                    s.remove(member);
                    s.is_empty()
                }
                _ => false,
            };
            if empty {
                m.remove(key);
            }
        });
        Ok(())
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.read(key, |m, _| match m.get(key).map(|e| &e.value) {
            Some(Value::Set(s)) => s.iter().cloned().collect(),
            _ => Vec::new(),
        }))
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        Ok(self.read(key, |m, now| {
            m.get(key).map(|e| e.expires.saturating_sub(now))
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn decr(&self, key: &str) -> Result<u64, StoreError> {
        Ok(self.read(key, |m, _| match m.get_mut(key) {
            Some(Entry {
                value: Value::Count(n),
                ..
            }) => {
                *n = n.saturating_sub(1);
                *n
            }
            _ => 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let clock = crate::clock::FakeClock::at(1_000);
        let store = MemoryStore::with_clock(std::sync::Arc::new(clock.clone()), 1000);
        super::super::conformance(&store, |d| {
            clock.advance_by(d);
            std::future::ready(())
        })
        .await;
    }

    #[tokio::test]
    async fn a_full_store_refuses_new_keys_but_updates_existing_ones() {
        let s = MemoryStore::with_max_entries(40);
        let ttl = Duration::from_secs(60);
        for i in 0..40 {
            s.set(&format!("k{i}"), b"v", ttl).await.unwrap();
        }
        assert_eq!(s.len(), 40);
        // Every way of adding a key is refused.
        assert!(matches!(
            s.set("new", b"v", ttl).await,
            Err(StoreError::Full)
        ));
        assert!(matches!(
            s.set_nx("new", b"v", ttl).await,
            Err(StoreError::Full)
        ));
        assert!(matches!(s.incr("new", ttl).await, Err(StoreError::Full)));
        assert!(matches!(
            s.set_add("new", "m", ttl).await,
            Err(StoreError::Full)
        ));
        assert_eq!(s.get("new").await.unwrap(), None);
        // Existing keys still change.
        s.set("k1", b"w", ttl).await.unwrap();
        assert_eq!(s.get("k1").await.unwrap().as_deref(), Some(&b"w"[..]));
        assert!(!s.set_nx("k2", b"x", ttl).await.unwrap());
        assert!(s.set_xx("k3", b"x", ttl).await.unwrap());
        s.delete("k4").await.unwrap();
        s.delete("k5").await.unwrap();
        assert_eq!(
            s.incr("k4", ttl).await.unwrap(),
            1,
            "room again after a delete"
        );
        s.set_add("k5", "m", ttl).await.unwrap();
        assert_eq!(s.incr("k4", ttl).await.unwrap(), 2, "an existing counter");
        assert!(matches!(s.incr("new", ttl).await, Err(StoreError::Full)));
        assert_eq!(s.len(), 40);
    }

    #[tokio::test]
    async fn a_full_store_sweeps_expired_entries_before_refusing() {
        let clock = crate::clock::FakeClock::at(1_000);
        let mut s = MemoryStore::with_clock(std::sync::Arc::new(clock.clone()), 20);
        s.sweep_every = Duration::ZERO;
        for i in 0..10 {
            s.set(&format!("short{i}"), b"v", Duration::from_millis(30))
                .await
                .unwrap();
        }
        for i in 0..10 {
            s.set(&format!("long{i}"), b"v", Duration::from_secs(60))
                .await
                .unwrap();
        }
        assert!(matches!(
            s.set("new", b"v", Duration::from_secs(60)).await,
            Err(StoreError::Full)
        ));
        clock.advance_by(Duration::from_millis(60));
        // The expired ten are swept (from every shard), making room.
        for i in 0..10 {
            s.set(&format!("new{i}"), b"v", Duration::from_secs(60))
                .await
                .unwrap();
        }
        assert_eq!(s.len(), 20);
        assert!(matches!(
            s.set("one-more", b"v", Duration::from_secs(60)).await,
            Err(StoreError::Full)
        ));
        for i in 0..10 {
            assert!(s.get(&format!("long{i}")).await.unwrap().is_some());
        }
    }

    #[tokio::test]
    async fn a_full_store_sweeps_everything_at_most_once_per_interval() {
        let clock = crate::clock::FakeClock::at(1_000);
        let mut s = MemoryStore::with_clock(std::sync::Arc::new(clock.clone()), 1000);
        s.sweep_every = Duration::from_secs(1);
        for i in 0..1000 {
            s.set(&format!("k{i}"), b"v", Duration::from_millis(30))
                .await
                .unwrap();
        }
        // This refusal sweeps (nothing has expired yet)...
        assert!(matches!(
            s.set("a", b"v", Duration::from_secs(60)).await,
            Err(StoreError::Full)
        ));
        clock.advance_by(Duration::from_millis(60));
        // ...so this one, within the interval, doesn't sweep again: still full.
        assert!(matches!(
            s.set("b", b"v", Duration::from_secs(60)).await,
            Err(StoreError::Full)
        ));
        assert_eq!(s.len(), 1000);
    }
}
