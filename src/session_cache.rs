//! The per-process cache of session records in front of the [`Store`](crate::store::Store),
//! so a signed-in request needs no store round trip (and no JSON decoding).
//!
//! Revocation stays correct:
//! - every change to a stored record (remove, update) goes through
//!   [`Sessions`](crate::session::Sessions), which drops the entry here right after
//!   the store write and, for a shared store, publishes the handle on the store's
//!   invalidation channel (Redis pub/sub), which every gateway listens to;
//! - with a shared store the cache serves entries only while this process is
//!   subscribed ([`SessionCache::set_live`]): on a lost subscription it is flushed
//!   and every request reads the store until the subscription is back;
//! - entries live at most `store.session_cache` (default 5 s): the backstop;
//! - a record read from the store is only cached if no invalidation happened
//!   while it was being read (the generation counter), so a sign-out racing a
//!   read can't leave the old record behind.
//!
//! Bounded: at most `max_entries` records (a full shard drops its expired
//! entries, then everything, before taking a new one).
//!
//! In front of it, the **cookie memo** (issue #11): the raw value of a session
//! cookie already decrypted here → its session id and cache key, so a signed-in
//! request skips the cookie's AES-GCM and the id's SHA-256. It only ever says which
//! session a cookie names, never that the session is valid (the record above, with
//! its invalidation, decides that on every request), and it is tied to the
//! record cache besides:
//! - only a value that decrypted with this gateway's key is put in (a tampered or
//!   foreign cookie never is; such values are looked up, never stored);
//! - an entry is served only while the cache serves (enabled and live), within
//!   `store.session_cache` of being made, and while no invalidation has happened
//!   since (any sign-out, revocation or change, here or announced by another
//!   gateway, makes every entry stale); a flush empties it;
//! - bounded like the records (at most `max_entries`, same shard policy).
//!
//! A memo entry also carries the session's record as last loaded through that
//! cookie ([`SessionCache::memo_attach`]), so the usual signed-in request is one
//! look-up and one clock read. The record is served from there only while the
//! entry itself is (so no longer than after any invalidation), and only until its
//! next touch is due or the session would expire by its own timeouts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;
use crate::session::{SessionId, SessionRecord};

const SHARDS: usize = 16;

/// A map with foldhash, seeded per process: it hashes a cookie value or key on
/// every signed-in request, several times faster than the standard SipHash. Flooding
/// isn't a concern: only values that decrypted with this gateway's key, and keys
/// of sessions it loaded, are ever inserted (and each shard is bounded).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The key of a cached record: the SHA-256 of the session id (the store handle, unencoded).
pub type Key = [u8; 32];

struct Cached {
    record: Arc<SessionRecord>,
    /// On the clock's monotonic time.
    until: Duration,
}

/// A cookie value seen before: the session it names.
struct Memo {
    id: SessionId,
    key: Key,
    until: Duration,
    /// The cache's generation when it was made: stale after any invalidation.
    generation: u64,
    /// The session's record, loaded after the entry was made and before any
    /// invalidation, and (monotonic) until when it may be served from here.
    record: Option<(Arc<SessionRecord>, Duration)>,
}

/// One shard of the cookie memo: raw cookie value → what it names.
type MemoShard = Map<Box<[u8]>, Memo>;

/// What the cookie memo knows about a session cookie's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Remembered {
    pub id: SessionId,
    pub key: Key,
    /// Its session's record, when one is attached and may still be served
    /// without the store (see [`SessionCache::memo_attach`]).
    pub record: Option<Arc<SessionRecord>>,
}

pub struct SessionCache {
    clock: Arc<dyn Clock>,
    shards: Vec<Mutex<Map<Key, Cached>>>,
    /// Raw session-cookie value → the session it names (see the module docs).
    memo: Vec<Mutex<MemoShard>>,
    ttl: Duration,
    per_shard: usize,
    live: AtomicBool,
    generation: AtomicU64,
}

impl SessionCache {
    /// A cache keeping records for `ttl` (zero: disabled), serving them from the
    /// start when `live` (a store in this process), else once [`set_live`](Self::set_live).
    pub fn new(
        clock: Arc<dyn Clock>,
        ttl: Duration,
        live: bool,
        max_entries: usize,
    ) -> SessionCache {
        SessionCache {
            clock,
            shards: (0..SHARDS).map(|_| Mutex::new(Map::default())).collect(),
            memo: (0..SHARDS).map(|_| Mutex::new(Map::default())).collect(),
            ttl,
            per_shard: (max_entries / SHARDS).max(1),
            live: AtomicBool::new(live),
            generation: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &Key) -> MutexGuard<'_, Map<Key, Cached>> {
        // The key is a SHA-256: its first byte is as good as any hash.
        self.shards[usize::from(key[0]) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn memo_shard(&self, cookie: &[u8]) -> MutexGuard<'_, MemoShard> {
        // Session cookies are base64 of random ciphertext: any byte spreads them.
        let b = cookie.last().copied().unwrap_or(0);
        self.memo[usize::from(b) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The time and `cookie`'s memo shard, locked, for a change to the memo made on
    /// what was read at generation `since`: `None` when the cache isn't serving or an
    /// invalidation came in since. (Checked under the shard lock: an invalidation
    /// bumps the generation, which makes an entry stale whether it comes before or
    /// after this check.)
    fn memo_since(
        &self,
        cookie: &[u8],
        since: u64,
    ) -> Option<(Duration, MutexGuard<'_, MemoShard>)> {
        if !self.enabled() || !self.is_live() {
            return None;
        }
        let now = self.clock.monotonic();
        let shard = self.memo_shard(cookie);
        (self.generation() == since).then_some((now, shard))
    }

    /// The session a cookie value names, if this value was decrypted here before
    /// and nothing was invalidated since (see the module docs), with its record
    /// while that may be served from here.
    pub fn memo_get(&self, cookie: &[u8]) -> Option<Remembered> {
        if !self.enabled() || !self.is_live() {
            return None;
        }
        let generation = self.generation();
        let now = self.clock.monotonic();
        let shard = self.memo_shard(cookie);
        let m = shard.get(cookie)?;
        if m.generation != generation || m.until <= now {
            return None;
        }
        let record = m
            .record
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(r, _)| r.clone());
        Some(Remembered {
            id: m.id.clone(),
            key: m.key,
            record,
        })
    }

    /// Attaches `record`, loaded for the session `cookie` names when the generation
    /// was `since` ([`generation`](Self::generation), taken before the load), to
    /// the cookie's memo entry, to be served from there for at most `fresh_for` (and
    /// never beyond the entry's own life). Nothing happens when an invalidation came
    /// in since `since`, or when the entry is of another generation: a record read
    /// before a sign-out must not be attached to an entry made after it.
    pub fn memo_attach(
        &self,
        cookie: &[u8],
        record: &Arc<SessionRecord>,
        fresh_for: Duration,
        since: u64,
    ) {
        let Some((now, mut shard)) = self.memo_since(cookie, since) else {
            return;
        };
        let Some(m) = shard.get_mut(cookie) else {
            return;
        };
        if m.generation != since || m.until <= now {
            return;
        }
        // No longer than the record cache itself would serve this copy (the cache's
        // lifetime from its read in the store: the backstop should an invalidation be
        // lost), so only the copy it holds now. (The memo's lock, then a record
        // shard's: nothing takes them the other way round.)
        let cached_until = self
            .shard(&m.key)
            .get(&m.key)
            .filter(|c| Arc::ptr_eq(&c.record, record))
            .map(|c| c.until);
        if let Some(cached_until) = cached_until {
            m.record = Some((
                record.clone(),
                (now + fresh_for).min(m.until).min(cached_until),
            ));
        }
    }

    /// Remembers that `cookie` (a value that decrypted with this gateway's key, no
    /// other) names `id`; nothing happens when an invalidation came in since
    /// `since` ([`generation`](Self::generation), taken before decrypting).
    pub fn memo_insert(&self, cookie: &[u8], id: SessionId, key: Key, since: u64) {
        let Some((now, mut shard)) = self.memo_since(cookie, since) else {
            return;
        };
        if shard.len() >= self.per_shard && !shard.contains_key(cookie) {
            shard.retain(|_, m| m.until > now && m.generation == since);
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(
            cookie.into(),
            Memo {
                id,
                key,
                until: now + self.ttl,
                generation: since,
                record: None,
            },
        );
    }

    /// Cookie values remembered now (stale ones not yet dropped included).
    pub fn memo_len(&self) -> usize {
        self.memo
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// Is the cache serving (subscribed to invalidations, or needing none)?
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// A fresh cached record, if any.
    pub fn get(&self, key: &Key) -> Option<Arc<SessionRecord>> {
        if !self.enabled() || !self.is_live() {
            return None;
        }
        let shard = self.shard(key);
        let c = shard.get(key)?;
        (c.until > self.clock.monotonic()).then(|| c.record.clone())
    }

    /// Take this before reading the store; pass it to [`insert`](Self::insert).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches a record read when the generation was `since`; nothing happens when an
    /// invalidation came in meanwhile, or when the cache isn't serving.
    pub fn insert(&self, key: Key, record: Arc<SessionRecord>, since: u64) {
        if !self.enabled() || !self.is_live() {
            return;
        }
        let now = self.clock.monotonic();
        let mut shard = self.shard(&key);
        // Checked under the shard lock: an invalidation bumps the generation before
        // it takes this lock, so it either sees this entry or this check fails.
        if self.generation() != since {
            return;
        }
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, c| c.until > now);
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(
            key,
            Cached {
                record,
                until: now + self.ttl,
            },
        );
    }

    /// Drops one record (changed or removed in the store).
    ///
    /// The generation moves while the record's shard is locked, with the record
    /// gone before the lock is released: whoever sees the new generation can no
    /// longer read the old record (else a request could read the new generation,
    /// then the old record, and attach it to a memo entry of the new generation).
    /// `insert` still either lands before this (and is removed here) or sees the new
    /// generation and refuses.
    pub fn invalidate(&self, key: &Key) {
        let mut shard = self.shard(key);
        self.generation.fetch_add(1, Ordering::AcqRel);
        shard.remove(key);
    }

    /// [`invalidate`](Self::invalidate) by the hex handle; anything that isn't a
    /// handle flushes everything.
    pub fn invalidate_handle(&self, handle: &str) {
        let mut key = [0u8; 32];
        match hex::decode_to_slice(handle, &mut key) {
            Ok(()) => self.invalidate(&key),
            Err(_) => self.flush(),
        }
    }

    /// Drops every record.
    pub fn flush(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        for s in &self.memo {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Subscribed (`true`) or not: a change either way flushes the cache, so nothing
    /// read before the subscription started is served after it.
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
        self.flush();
    }

    /// Records held now (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn cache(ttl: Duration, live: bool, max: usize) -> (FakeClock, SessionCache) {
        let clock = FakeClock::at(1_000_000);
        let c = SessionCache::new(Arc::new(clock.clone()), ttl, live, max);
        (clock, c)
    }

    fn rec(user: &str) -> Arc<SessionRecord> {
        Arc::new(SessionRecord {
            user: user.into(),
            factors: 1,
            created: 1,
            last_seen: 1,
            client: "127.0.0.1".into(),
            cred_version: 0,
            pending: Default::default(),
            auth_at: 1,
        })
    }

    #[test]
    fn serves_what_was_inserted_until_invalidated() {
        let (_, c) = cache(Duration::from_secs(5), true, 1000);
        let k = [7u8; 32];
        let g = c.generation();
        c.insert(k, rec("alice"), g);
        assert_eq!(c.get(&k).unwrap().user, "alice");
        c.invalidate_handle(&hex::encode(k));
        assert!(c.get(&k).is_none());
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_cached() {
        let (_, c) = cache(Duration::from_secs(5), true, 1000);
        let k = [1u8; 32];
        let g = c.generation();
        c.invalidate(&[2u8; 32]); // any invalidation while the store was being read
        c.insert(k, rec("alice"), g);
        assert!(c.get(&k).is_none());
    }

    #[test]
    fn not_live_serves_nothing_and_going_live_starts_empty() {
        let (_, c) = cache(Duration::from_secs(5), false, 1000);
        let k = [3u8; 32];
        let g = c.generation();
        c.insert(k, rec("alice"), g);
        assert!(c.get(&k).is_none());
        c.set_live(true);
        c.insert(k, rec("alice"), g); // read before the subscription: refused
        assert!(c.get(&k).is_none());
        let g = c.generation();
        c.insert(k, rec("alice"), g);
        assert!(c.get(&k).is_some());
        c.set_live(false);
        assert!(c.get(&k).is_none());
        assert!(c.is_empty());
    }

    /// A 5 s cache where a cookie value (`v`) names a session (`k`, `id`) whose
    /// record was just read and attached, nothing having happened meanwhile.
    #[allow(clippy::type_complexity)] // the parts of one fixture
    fn attached() -> (
        FakeClock,
        SessionCache,
        &'static [u8],
        Key,
        SessionId,
        Arc<SessionRecord>,
    ) {
        let (clock, c) = cache(Duration::from_secs(5), true, 1000);
        let (v, k) = (b"cookie-value".as_slice(), [4u8; 32]);
        let id = SessionId::generate();
        let alice = rec("alice");
        let g = c.generation();
        c.memo_insert(v, id.clone(), k, g);
        c.insert(k, alice.clone(), g);
        c.memo_attach(v, &alice, Duration::from_secs(60), g);
        (clock, c, v, k, id, alice)
    }

    #[test]
    fn a_record_read_before_an_invalidation_is_never_attached() {
        let (clock, c, v, k, id, alice) = attached();
        // Attached when nothing happened since the read began.
        assert_eq!(c.memo_get(v).unwrap().record, Some(alice.clone()));
        // A read begins (and gets the cached record), an unrelated sign-out comes in,
        // and a second request re-makes the memo entry under the new generation: the
        // first read's record is not attached to it.
        let read_began = c.generation();
        c.invalidate(&[9u8; 32]);
        c.memo_insert(v, id.clone(), k, c.generation());
        c.memo_attach(v, &alice, Duration::from_secs(60), read_began);
        let hit = c.memo_get(v).unwrap();
        assert_eq!(hit.id, id);
        assert!(
            hit.record.is_none(),
            "a record read before the last invalidation"
        );
        // The session's own sign-out: its record is gone, there is nothing to attach.
        c.invalidate(&k);
        let g = c.generation();
        c.memo_insert(v, id.clone(), k, g);
        c.memo_attach(v, &alice, Duration::from_secs(60), g);
        assert!(
            c.memo_get(v).unwrap().record.is_none(),
            "a signed-out record"
        );
        // Only the copy the record cache holds is attached.
        let fresh = rec("alice");
        c.insert(k, fresh.clone(), g);
        c.memo_attach(v, &rec("alice"), Duration::from_secs(60), g);
        assert!(
            c.memo_get(v).unwrap().record.is_none(),
            "not the cached copy"
        );
        // `fresh_for` bounds the record but not the entry.
        c.memo_attach(v, &fresh, Duration::from_secs(2), g);
        assert!(c.memo_get(v).unwrap().record.is_some());
        clock.advance(2);
        let hit = c.memo_get(v).unwrap();
        assert!(hit.record.is_none(), "stale by `fresh_for`");
        // Off: nothing is attached.
        let (_, off) = cache(Duration::ZERO, true, 64);
        off.memo_insert(v, id.clone(), k, 0);
        off.insert(k, alice.clone(), 0);
        off.memo_attach(v, &alice, Duration::from_secs(60), 0);
        assert!(off.memo_get(v).is_none());
    }

    /// A lost invalidation is caught by the cache's lifetime: a record re-attached
    /// to a re-made memo entry is served no longer than the cache serves that copy
    /// (its lifetime counted from the read in the store, not from the re-attaching).
    #[test]
    fn an_attached_record_lives_no_longer_than_the_cached_copy() {
        let (clock, c, v, k, id, alice) = attached();
        clock.advance(4);
        // An unrelated sign-out makes the entry stale; the next request re-makes it
        // (good for 5 s more) and finds the same cached copy, 1 s from its end.
        c.invalidate(&[9u8; 32]);
        assert!(c.memo_get(v).is_none());
        let g = c.generation();
        c.memo_insert(v, id.clone(), k, g);
        c.memo_attach(v, &alice, Duration::from_secs(60), g);
        assert!(c.memo_get(v).unwrap().record.is_some());
        clock.advance(1);
        let hit = c.memo_get(v).unwrap();
        assert!(hit.record.is_none(), "served past the cached copy's end");
        assert!(c.get(&k).is_none());
    }

    /// Whoever reads the generation an invalidation made can no longer read the
    /// record it dropped (so can't attach it to an entry of that generation). Each
    /// record notes the generation its own invalidation makes; a reader that read a
    /// generation at least that high before finding the record caught the gap.
    #[test]
    fn whoever_sees_an_invalidation_never_reads_the_record_it_dropped() {
        let (_, c) = cache(Duration::from_secs(60), true, 1000);
        let c = Arc::new(c);
        let k = [5u8; 32];
        let done = Arc::new(AtomicBool::new(false));
        // Records the reader found: the writer goes on until there are enough (on a
        // busy machine the reader may start late), within bounds.
        let seen = Arc::new(AtomicU64::new(0));
        let reader = {
            let (c, done, seen) = (c.clone(), done.clone(), seen.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    let g = c.generation();
                    if let Some(r) = c.get(&k) {
                        assert!(
                            g < r.created,
                            "read generation {g}, then its dropped record"
                        );
                        seen.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        for i in 0u64..20_000_000 {
            let since = c.generation();
            let mut r = SessionRecord::clone(&rec("a"));
            r.created = since + 1;
            c.insert(k, Arc::new(r), since);
            c.invalidate(&k);
            let enough = i >= 100_000 && seen.load(Ordering::Relaxed) >= 1_000;
            // (A reader that stopped found a dropped record.)
            if enough || reader.is_finished() {
                break;
            }
        }
        done.store(true, Ordering::Release);
        assert!(reader.join().is_ok(), "the reader read a dropped record");
        assert!(
            seen.load(Ordering::Relaxed) > 0,
            "the reader never raced the writer"
        );
    }

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let (clock, c) = cache(Duration::from_secs(5), true, 64);
        let k = [9u8; 32];
        c.insert(k, rec("a"), c.generation());
        clock.advance(4);
        assert!(c.get(&k).is_some());
        clock.advance(1);
        assert!(c.get(&k).is_none());
        for i in 0..10_000u32 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            c.insert(k, rec("a"), c.generation());
        }
        assert!(c.len() <= 64, "{}", c.len());
        let (_, off) = cache(Duration::ZERO, true, 64);
        off.insert(k, rec("a"), off.generation());
        assert!(off.get(&k).is_none());
    }
}
