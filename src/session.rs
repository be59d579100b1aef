//! Sessions: opaque 256-bit ids, records in the [`Store`], timeouts enforced
//! here (server-side), and a per-user index so "sign out everywhere", password
//! changes and disabling an account end every session at once.
//!
//! The store key is a SHA-256 of the id, so read access to the store (or a
//! `session list`) never yields a usable session id.
//!
//! ```text
//!   sign-in ok ──> create (new id: no fixation) ──> cookie(encrypt(id))
//!   request ──> load(id) ── missing ──────────────> Ended   (sign in again, "session ended")
//!                        ├─ idle or absolute over ─> Ended   (record deleted)
//!                        └─ ok ─> touch (at most every `touch_every`) ──> Valid
//! ```
//!
//! The touch is a conditional write (`set_xx`: only if the record is still
//! there), so a sign-out or revocation that lands between the read and the
//! touch is not undone by it.

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::cookies::CookieCrypto;
use crate::session_cache::{Key, Remembered, SessionCache};
use crate::store::keys::{session as record_key, user_sessions as user_key};
use crate::store::{DynStore, StoreError, Watch};

/// A raw session id; `Debug` never shows it. Shared (`Arc`): a copy out of the
/// cookie memo costs no allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(Arc<str>);

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

impl SessionId {
    pub fn generate() -> SessionId {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        SessionId(hex::encode(b).into())
    }

    /// Accepts only what [`generate`](Self::generate) makes.
    pub fn parse(s: &str) -> Option<SessionId> {
        (s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| SessionId(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The handle stored and shown to operators (hash of the id).
    pub fn handle(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: String,
    /// 1 = password only, 2 = password and a second factor.
    pub factors: u8,
    pub created: u64,
    pub last_seen: u64,
    pub client: String,
    /// The account's `credentials_version` at sign-in; a later change ends the session.
    pub cred_version: u64,
    /// What must happen before this session is a full sign-in.
    #[serde(default, skip_serializing_if = "Pending::is_done")]
    pub pending: Pending,
    /// When the password was last entered (sign-in or re-entry), for changes that
    /// need a recent password. 0 in records from older versions: use `created`.
    #[serde(default)]
    pub auth_at: u64,
}

/// A step of the sign-in still to do.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Pending {
    #[default]
    Done,
    /// The account uses two-step verification: the challenge comes first.
    SecondFactor,
    /// Two-step verification is required and not set up yet: enrolment comes first.
    Enrol,
}

impl Pending {
    pub fn is_done(&self) -> bool {
        *self == Pending::Done
    }
}

impl SessionRecord {
    pub fn password_at(&self) -> u64 {
        if self.auth_at == 0 {
            self.created
        } else {
            self.auth_at
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Shared with the session cache: a cached record is handed out without a copy.
    Valid(Arc<SessionRecord>),
    /// The cookie was genuine but the session is gone (expired, signed out, revoked).
    Ended,
}

/// The session a request's `Cookie` header names ([`Sessions::id_from_cookie`]).
pub struct FromCookie<'a> {
    pub found: Remembered,
    /// The cookie's value as the memo knows it (`None`: read by the cookie
    /// crate's parser, never remembered).
    pub value: Option<&'a str>,
}

impl std::fmt::Debug for FromCookie<'_> {
    /// Never the cookie's value (a bearer credential).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromCookie")
            .field("found", &self.found)
            .field("value", &self.value.map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Clone)]
pub struct Sessions {
    store: DynStore,
    clock: Arc<dyn Clock>,
    pub idle: Duration,
    pub absolute: Duration,
    /// Records read recently, so most requests need no store round trip.
    pub cache: Arc<SessionCache>,
}

/// The store channel (under the key prefix) on which a changed or removed session's
/// handle is announced to every gateway, which then drops its cached copy.
pub const INVALIDATE_CHANNEL: &str = "session-invalidate";

/// Default `store.session_cache`.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// Most session records cached per process.
pub const CACHE_MAX_ENTRIES: usize = 200_000;

fn key_of(id: &SessionId) -> Key {
    Sha256::digest(id.0.as_bytes()).into()
}

impl Sessions {
    /// The clock sessions are stamped and expired by.
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    pub fn new(
        store: DynStore,
        clock: Arc<dyn Clock>,
        idle: Duration,
        absolute: Duration,
    ) -> Sessions {
        Self::with_cache(store, clock, idle, absolute, DEFAULT_CACHE_TTL)
    }

    /// [`new`](Self::new) with a cache keeping records for `cache_ttl` (zero: no cache).
    /// With a shared store the cache serves nothing until [`watch`](Self::watch) runs
    /// and is subscribed.
    pub fn with_cache(
        store: DynStore,
        clock: Arc<dyn Clock>,
        idle: Duration,
        absolute: Duration,
        cache_ttl: Duration,
    ) -> Sessions {
        let live = !store.shared();
        Sessions {
            cache: Arc::new(SessionCache::new(
                clock.clone(),
                cache_ttl,
                live,
                CACHE_MAX_ENTRIES,
            )),
            store,
            clock,
            idle,
            absolute,
        }
    }

    /// Keeps this process's cache in step with the other gateways on a shared store:
    /// drops what they announce, and stops serving from the cache while the
    /// announcements can't be heard. Runs until dropped; returns at once for a store
    /// of one process.
    pub async fn watch(&self) {
        let cache = self.cache.clone();
        self.store
            .watch(INVALIDATE_CHANNEL, &move |w| match w {
                Watch::Up => cache.set_live(true),
                Watch::Down => cache.set_live(false),
                Watch::Message(handle) => cache.invalidate_handle(handle),
            })
            .await
    }

    /// Drops a changed or removed record from this process's cache and tells the
    /// other gateways to do the same. Called after the store write.
    async fn changed(&self, handle: &str) -> Result<(), StoreError> {
        self.cache.invalidate_handle(handle);
        if self.store.shared() {
            // Once more on a failure: the other gateways otherwise keep the record
            // until their cache's TTL (`store.session_cache`).
            if let Err(e) = self.store.publish(INVALIDATE_CHANNEL, handle).await {
                tracing::warn!(error = %e, "session change not announced; retrying once");
                self.store.publish(INVALIDATE_CHANNEL, handle).await?;
            }
        }
        Ok(())
    }

    /// How often a session's `last_seen` (and its idle timer in the store) is
    /// refreshed: a tenth of the idle timeout, between 1 s and 60 s. Requests in
    /// between write nothing.
    pub fn touch_every(&self) -> u64 {
        (self.idle.as_secs() / 10).clamp(1, 60)
    }

    fn ttl_for(&self, r: &SessionRecord, now: u64) -> Option<Duration> {
        let idle_end = r.last_seen.saturating_add(self.idle.as_secs());
        let abs_end = r.created.saturating_add(self.absolute.as_secs());
        let end = idle_end.min(abs_end);
        (end > now).then(|| Duration::from_secs(end - now))
    }

    pub async fn create(
        &self,
        user: &str,
        factors: u8,
        client: &str,
        cred_version: u64,
    ) -> Result<(SessionId, SessionRecord), StoreError> {
        let now = self.clock.now();
        let record = SessionRecord {
            user: user.to_string(),
            factors,
            created: now,
            last_seen: now,
            client: client.to_string(),
            cred_version,
            pending: Pending::Done,
            auth_at: now,
        };
        self.create_from(record).await
    }

    /// Stores `record` under a new id (sign-in, or a step up that changes privilege:
    /// the id changes whenever what the session proves changes).
    pub async fn create_from(
        &self,
        record: SessionRecord,
    ) -> Result<(SessionId, SessionRecord), StoreError> {
        let now = self.clock.now();
        let id = SessionId::generate();
        let user = record.user.as_str();
        self.save(&id.handle(), &record, now).await?;
        self.store
            .set_add(&user_key(user), &id.handle(), self.absolute)
            .await?;
        Ok((id, record))
    }

    /// Replaces a session by one with a new id and `record` (which keeps the old
    /// creation time, so the absolute timeout still counts from the sign-in).
    pub async fn rotate(
        &self,
        old: &SessionId,
        record: SessionRecord,
    ) -> Result<(SessionId, SessionRecord), StoreError> {
        let user = record.user.clone();
        let out = self.create_from(record).await?;
        self.remove(&old.handle(), &user).await?;
        Ok(out)
    }

    async fn save(&self, handle: &str, r: &SessionRecord, now: u64) -> Result<(), StoreError> {
        let Some(ttl) = self.ttl_for(r, now) else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(r).map_err(|e| StoreError::Encoding(e.to_string()))?;
        self.store.set(&record_key(handle), &bytes, ttl).await
    }

    /// The session named by a `Cookie` header's session cookie. A cookie value
    /// decrypted here before comes from the cache's memo, without AES-GCM or SHA-256
    /// (and perhaps with its record); only a value that decrypts is remembered (see
    /// [`crate::session_cache`]). Like [`CookieCrypto::read`]: the first cookie of
    /// that name that decrypts counts.
    pub fn id_from_cookie<'a>(
        &self,
        cookies: &CookieCrypto,
        header: &'a str,
    ) -> Option<FromCookie<'a>> {
        let name = cookies.name.as_str();
        // In cookie order, the first value that is ours wins, remembered or not (a
        // remembered later value must not beat an earlier genuine one: a sibling
        // subdomain could plant one).
        let since = self.cache.generation();
        for raw in crate::cookies::values_named(header, name) {
            if let Some(hit) = self.cache.memo_get(raw.as_bytes()) {
                return Some(FromCookie {
                    found: hit,
                    value: Some(raw),
                });
            }
            if let Some(plain) = cookies.decrypt_value(name, raw) {
                let id = SessionId::parse(&plain)?;
                let key = key_of(&id);
                self.cache
                    .memo_insert(raw.as_bytes(), id.clone(), key, since);
                return Some(FromCookie {
                    found: Remembered {
                        id,
                        key,
                        record: None,
                    },
                    value: Some(raw),
                });
            }
        }
        // Spellings the plain split above doesn't read (quoted values): the cookie
        // crate's own parser, never remembered.
        let id = SessionId::parse(&cookies.read(header, name)?)?;
        let key = key_of(&id);
        Some(FromCookie {
            found: Remembered {
                id,
                key,
                record: None,
            },
            value: None,
        })
    }

    /// The usual signed-in request: a session cookie value this process decrypted
    /// before, whose record it loaded since and may still serve without the store
    /// (no invalidation since, no touch due, not expired; see
    /// [`crate::session_cache`]). `None` sends the request the long way.
    pub fn remembered(&self, value: &[u8]) -> Option<(SessionId, Arc<SessionRecord>)> {
        let hit = self.cache.memo_get(value)?;
        Some((hit.id, hit.record?))
    }

    /// The session [`id_from_cookie`](Self::id_from_cookie) found: its remembered
    /// record, else [`load_keyed`](Self::load_keyed), whose valid record is then
    /// remembered with the cookie's value.
    pub async fn load_found(&self, from: &FromCookie<'_>) -> Result<Lookup, StoreError> {
        if let Some(r) = &from.found.record {
            return Ok(Lookup::Valid(r.clone()));
        }
        let since = self.cache.generation();
        let looked = self.load_keyed(from.found.key).await?;
        if let (Lookup::Valid(r), Some(value)) = (&looked, from.value) {
            let fresh_for = self.fresh_for(r, self.clock.now_ms());
            self.cache
                .memo_attach(value.as_bytes(), r, fresh_for, since);
        }
        Ok(looked)
    }

    /// How long `r` may be served without the store from `now_ms` (Unix time, ms):
    /// until its next touch is due or it ends by its timeouts, whichever is first —
    /// in whole seconds, as [`load_keyed`](Self::load_keyed) judges them.
    fn fresh_for(&self, r: &SessionRecord, now_ms: u64) -> Duration {
        let until = r
            .last_seen
            .saturating_add(self.touch_every())
            .min(r.last_seen.saturating_add(self.idle.as_secs()))
            .min(r.created.saturating_add(self.absolute.as_secs()));
        Duration::from_millis(until.saturating_mul(1000).saturating_sub(now_ms))
    }

    /// Loads and checks a session; refreshes its idle timer now and then. A record
    /// cached in this process is used when fresh (see [`crate::session_cache`]).
    pub async fn load(&self, id: &SessionId) -> Result<Lookup, StoreError> {
        self.load_keyed(key_of(id)).await
    }

    /// [`load`](Self::load) by the session's cache key (from [`id_from_cookie`](Self::id_from_cookie)).
    pub async fn load_keyed(&self, key: Key) -> Result<Lookup, StoreError> {
        let now = self.clock.now();
        // The usual signed-in request: a fresh cached record, no touch due.
        if let Some(r) = self.cache.get(&key) {
            if self.ttl_for(&r, now).is_some()
                && now.saturating_sub(r.last_seen) < self.touch_every()
            {
                return Ok(Lookup::Valid(r));
            }
        }
        // Boxed: the store's futures stay out of every request's future (issue #11).
        Box::pin(self.load_from_store(key, now)).await
    }

    /// [`load_keyed`](Self::load_keyed) past the fast path: a touch is due, or the store decides.
    async fn load_from_store(&self, key: Key, now: u64) -> Result<Lookup, StoreError> {
        if let Some(r) = self.cache.get(&key) {
            if self.ttl_for(&r, now).is_some() {
                let since = self.cache.generation();
                let mut r = SessionRecord::clone(&r);
                r.last_seen = now;
                let handle = hex::encode(key);
                if !self.touch(&handle, &r, now).await? {
                    self.cache.invalidate(&key);
                    return Ok(Lookup::Ended);
                }
                let r = Arc::new(r);
                self.cache.insert(key, r.clone(), since);
                return Ok(Lookup::Valid(r));
            }
            // Over by the cached copy's clock: the store decides.
        }
        let since = self.cache.generation();
        let handle = hex::encode(key);
        let Some(bytes) = self.store.get(&record_key(&handle)).await? else {
            return Ok(Lookup::Ended);
        };
        let Ok(mut r) = serde_json::from_slice::<SessionRecord>(&bytes) else {
            self.store.delete(&record_key(&handle)).await?;
            return Ok(Lookup::Ended);
        };
        let now = self.clock.now();
        if self.ttl_for(&r, now).is_none() {
            self.remove(&handle, &r.user).await?;
            return Ok(Lookup::Ended);
        }
        if now.saturating_sub(r.last_seen) >= self.touch_every() {
            r.last_seen = now;
            if !self.touch(&handle, &r, now).await? {
                // Removed since we read it (signed out, revoked): it stays removed.
                return Ok(Lookup::Ended);
            }
        }
        let r = Arc::new(r);
        self.cache.insert(key, r.clone(), since);
        Ok(Lookup::Valid(r))
    }

    /// Writes a refreshed record only if it is still stored; `false` when it is gone.
    async fn touch(&self, handle: &str, r: &SessionRecord, now: u64) -> Result<bool, StoreError> {
        let Some(ttl) = self.ttl_for(r, now) else {
            return Ok(false);
        };
        let bytes = serde_json::to_vec(r).map_err(|e| StoreError::Encoding(e.to_string()))?;
        self.store.set_xx(&record_key(handle), &bytes, ttl).await
    }

    /// Replaces the record (e.g. after a second factor), keeping the id.
    pub async fn update(&self, id: &SessionId, r: &SessionRecord) -> Result<(), StoreError> {
        let handle = id.handle();
        // Only while it exists: an update racing a sign-out (or "sign out
        // everywhere") must not bring the session back outside the user's index.
        let _ = self.touch(&handle, r, self.clock.now()).await?;
        self.changed(&handle).await
    }

    /// Ends one session: gone from the store, from this process's cache and (by the
    /// announcement) from every other gateway's.
    pub async fn remove(&self, handle: &str, user: &str) -> Result<bool, StoreError> {
        // Whatever fails below, this gateway stops serving the record now, and the
        // others are told after the delete (a read racing it is caught by the
        // cache's generation check).
        self.cache.invalidate_handle(handle);
        let existed = self.store.delete(&record_key(handle)).await;
        let announced = self.changed(handle).await;
        let unindexed = self.store.set_remove(&user_key(user), handle).await;
        let existed = existed?;
        announced?;
        unindexed?;
        Ok(existed)
    }

    /// Live sessions of a user, by handle; stale index entries are cleaned up.
    pub async fn list(&self, user: &str) -> Result<Vec<(String, SessionRecord)>, StoreError> {
        let mut out = Vec::new();
        for handle in self.store.set_members(&user_key(user)).await? {
            match self.store.get(&record_key(&handle)).await? {
                Some(b) => {
                    if let Ok(r) = serde_json::from_slice::<SessionRecord>(&b) {
                        out.push((handle, r));
                    }
                }
                None => self.store.set_remove(&user_key(user), &handle).await?,
            }
        }
        out.sort_by_key(|(_, r)| r.created);
        Ok(out)
    }

    /// Ends every session of a user; returns how many were live.
    pub async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        let mut n = 0;
        for handle in self.store.set_members(&user_key(user)).await? {
            if self.remove(&handle, user).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Ends every session of a user but `keep` (a handle); returns how many were live.
    pub async fn revoke_others(&self, user: &str, keep: &str) -> Result<usize, StoreError> {
        let mut n = 0;
        for handle in self.store.set_members(&user_key(user)).await? {
            if handle != keep && self.remove(&handle, user).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Ends one session by handle (or unique handle prefix of at least 8 characters).
    pub async fn revoke_one(&self, user: &str, handle_prefix: &str) -> Result<usize, StoreError> {
        if handle_prefix.len() < 8 {
            return Ok(0);
        }
        let mut n = 0;
        for (handle, _) in self.list(user).await? {
            if handle.starts_with(handle_prefix) && self.remove(&handle, user).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::store::memory::MemoryStore;
    use crate::store::Store;

    fn sessions(clock: &FakeClock) -> Sessions {
        Sessions::new(
            Arc::new(MemoryStore::new()),
            Arc::new(clock.clone()),
            Duration::from_secs(600),
            Duration::from_secs(3600),
        )
    }

    #[tokio::test]
    async fn idle_timeout_is_enforced_and_activity_extends_it() {
        let clock = FakeClock::at(1_000_000);
        let s = sessions(&clock);
        let (id, _) = s.create("alice", 1, "127.0.0.1", 0).await.unwrap();
        clock.advance(500);
        assert!(matches!(s.load(&id).await.unwrap(), Lookup::Valid(_)));
        clock.advance(500); // 500 s since last activity: still within 600
        assert!(matches!(s.load(&id).await.unwrap(), Lookup::Valid(_)));
        clock.advance(601);
        assert_eq!(s.load(&id).await.unwrap(), Lookup::Ended);
    }

    #[tokio::test]
    async fn absolute_timeout_wins_over_activity() {
        let clock = FakeClock::at(1_000_000);
        let s = sessions(&clock);
        let (id, _) = s.create("alice", 1, "127.0.0.1", 0).await.unwrap();
        for _ in 0..7 {
            clock.advance(500);
            assert!(matches!(s.load(&id).await.unwrap(), Lookup::Valid(_)));
        }
        clock.advance(200); // 3700 s after creation
        assert_eq!(s.load(&id).await.unwrap(), Lookup::Ended);
    }

    #[tokio::test]
    async fn revoke_user_ends_all_and_list_shows_handles_not_ids() {
        let clock = FakeClock::at(1_000_000);
        let s = sessions(&clock);
        let (a, _) = s.create("alice", 1, "c1", 0).await.unwrap();
        let (b, _) = s.create("alice", 1, "c2", 0).await.unwrap();
        let (c, _) = s.create("bob", 1, "c3", 0).await.unwrap();
        let listed = s.list("alice").await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed
            .iter()
            .all(|(h, _)| h != a.as_str() && h != b.as_str()));
        assert_eq!(s.revoke_user("alice").await.unwrap(), 2);
        assert_eq!(s.load(&a).await.unwrap(), Lookup::Ended);
        assert_eq!(s.load(&b).await.unwrap(), Lookup::Ended);
        assert!(matches!(s.load(&c).await.unwrap(), Lookup::Valid(_)));
    }

    /// A store that runs a hook right after the next `get`, standing in for a
    /// request that races the refresh.
    struct RaceStore {
        inner: MemoryStore,
        after_get: std::sync::Mutex<Option<String>>,
    }

    #[async_trait::async_trait]
    impl Store for RaceStore {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            let v = self.inner.get(key).await?;
            let hook = self.after_get.lock().unwrap().take();
            if let Some(k) = hook {
                // A sign-out on another request, between this read and the touch.
                self.inner.delete(&k).await?;
            }
            Ok(v)
        }
        async fn set(&self, k: &str, v: &[u8], t: Duration) -> Result<(), StoreError> {
            self.inner.set(k, v, t).await
        }
        async fn set_nx(&self, k: &str, v: &[u8], t: Duration) -> Result<bool, StoreError> {
            self.inner.set_nx(k, v, t).await
        }
        async fn set_xx(&self, k: &str, v: &[u8], t: Duration) -> Result<bool, StoreError> {
            self.inner.set_xx(k, v, t).await
        }
        async fn take(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.take(k).await
        }
        async fn delete(&self, k: &str) -> Result<bool, StoreError> {
            self.inner.delete(k).await
        }
        async fn incr(&self, k: &str, t: Duration) -> Result<u64, StoreError> {
            self.inner.incr(k, t).await
        }
        async fn decr(&self, k: &str) -> Result<u64, StoreError> {
            self.inner.decr(k).await
        }
        async fn set_add(&self, k: &str, m: &str, t: Duration) -> Result<(), StoreError> {
            self.inner.set_add(k, m, t).await
        }
        async fn set_remove(&self, k: &str, m: &str) -> Result<(), StoreError> {
            self.inner.set_remove(k, m).await
        }
        async fn set_members(&self, k: &str) -> Result<Vec<String>, StoreError> {
            self.inner.set_members(k).await
        }
        async fn ttl(&self, k: &str) -> Result<Option<Duration>, StoreError> {
            self.inner.ttl(k).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_sign_out_between_load_and_touch_is_not_undone() {
        let clock = FakeClock::at(1_000_000);
        let store = Arc::new(RaceStore {
            inner: MemoryStore::new(),
            after_get: std::sync::Mutex::new(None),
        });
        let s = Sessions::new(
            store.clone(),
            Arc::new(clock.clone()),
            Duration::from_secs(600),
            Duration::from_secs(3600),
        );
        let (id, _) = s.create("alice", 1, "127.0.0.1", 0).await.unwrap();
        clock.advance(120); // due for a touch
        *store.after_get.lock().unwrap() = Some(record_key(&id.handle()));
        assert_eq!(s.load(&id).await.unwrap(), Lookup::Ended);
        assert_eq!(
            store.inner.get(&record_key(&id.handle())).await.unwrap(),
            None,
            "the touch must not write the removed session back"
        );
        assert_eq!(s.load(&id).await.unwrap(), Lookup::Ended);
    }

    #[test]
    fn ids_are_random_and_strictly_parsed() {
        let a = SessionId::generate();
        assert_ne!(a, SessionId::generate());
        assert_eq!(SessionId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(SessionId::parse("abc"), None);
        assert_eq!(SessionId::parse(&a.as_str().to_uppercase()), None);
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    /// Sessions on the fake clock, and the gateway's cookie keys.
    fn memo_world() -> (FakeClock, Sessions, CookieCrypto) {
        let clock = FakeClock::at(1_000_000);
        let s = sessions(&clock);
        let c = CookieCrypto::new(&[7u8; 64], &crate::cookies::tests::cfg());
        (clock, s, c)
    }

    /// The session cookie's value in a `Cookie` header (the memo's key).
    fn value_of(cookie: &str) -> &[u8] {
        crate::cookies::values_named(cookie, "portcullis")
            .next()
            .unwrap()
            .as_bytes()
    }

    /// The session id and cache key a `Cookie` header names.
    fn id_key(s: &Sessions, c: &CookieCrypto, header: &str) -> Option<(SessionId, Key)> {
        s.id_from_cookie(c, header)
            .map(|f| (f.found.id, f.found.key))
    }

    /// What the memo says about a value: the session's id and key.
    fn memo(s: &Sessions, value: &[u8]) -> Option<(SessionId, Key)> {
        s.cache.memo_get(value).map(|r| (r.id, r.key))
    }

    /// The session cookie of a new session of `user`, as a `Cookie` header.
    async fn signed_in(s: &Sessions, c: &CookieCrypto, user: &str) -> (SessionId, String) {
        let (id, _) = s.create(user, 1, "127.0.0.1", 0).await.unwrap();
        let set = c.session_cookie(id.as_str(), "app.example.com");
        let pair = set.split(';').next().unwrap().to_string();
        (id, pair)
    }

    #[tokio::test]
    async fn the_cookie_memo_skips_decryption_but_never_outlives_a_sign_out() {
        let (_, s, c) = memo_world();
        let (id, cookie) = signed_in(&s, &c, "alice").await;
        let raw = value_of(&cookie);
        assert!(memo(&s, raw).is_none());
        let (got, key) = id_key(&s, &c, &format!("x=1; {cookie}")).unwrap();
        assert_eq!(got, id);
        // Now remembered: the same value resolves from the memo.
        assert_eq!(memo(&s, raw), Some((id.clone(), key)));
        assert!(matches!(s.load_keyed(key).await.unwrap(), Lookup::Valid(_)));
        // Another session's sign-out already makes the entry stale (any invalidation).
        let (other, _) = signed_in(&s, &c, "bob").await;
        s.remove(&other.handle(), "bob").await.unwrap();
        assert!(memo(&s, raw).is_none());
        assert_eq!(id_key(&s, &c, &cookie).map(|x| x.0), Some(id.clone()));
        // Signing out ends it at once, memo or not.
        s.remove(&id.handle(), "alice").await.unwrap();
        assert!(memo(&s, raw).is_none());
        let (_, key) = id_key(&s, &c, &cookie).unwrap();
        assert_eq!(s.load_keyed(key).await.unwrap(), Lookup::Ended);
        // "Sign out everywhere" likewise.
        let (id2, cookie2) = signed_in(&s, &c, "alice").await;
        let (_, key2) = id_key(&s, &c, &cookie2).unwrap();
        assert!(s.cache.memo_len() > 0);
        assert_eq!(s.revoke_user("alice").await.unwrap(), 1);
        let raw2 = value_of(&cookie2);
        assert!(memo(&s, raw2).is_none());
        assert_eq!(s.load_keyed(key2).await.unwrap(), Lookup::Ended);
        assert_eq!(s.load(&id2).await.unwrap(), Lookup::Ended);
    }

    #[tokio::test]
    async fn a_remembered_record_is_served_only_while_the_store_has_no_say() {
        let clock = FakeClock::at(1_000_000);
        // A cache that outlives the touch interval (60 s for a 600 s idle timeout),
        // so that the touch is what bounds a remembered record here.
        let s = Sessions::with_cache(
            Arc::new(MemoryStore::new()),
            Arc::new(clock.clone()),
            Duration::from_secs(600),
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        );
        let c = CookieCrypto::new(&[7u8; 64], &crate::cookies::tests::cfg());
        let (id, cookie) = signed_in(&s, &c, "alice").await;
        let raw = value_of(&cookie);
        assert!(s.remembered(raw).is_none(), "never seen");
        let from = s.id_from_cookie(&c, &cookie).unwrap();
        assert!(from.found.record.is_none());
        let shown = format!("{from:?}");
        assert!(
            !shown.contains(std::str::from_utf8(raw).unwrap()),
            "{shown}"
        );
        assert!(
            s.remembered(raw).is_none(),
            "known, but no record loaded yet"
        );
        let Lookup::Valid(r) = s.load_found(&from).await.unwrap() else {
            panic!("a live session")
        };
        let (got, remembered) = s.remembered(raw).unwrap();
        assert_eq!((got, &remembered), (id.clone(), &r));
        // The long way finds it too, with its record.
        let longer = format!("x=1; {cookie}");
        let from = s.id_from_cookie(&c, &longer).unwrap();
        assert_eq!(from.found.record.as_ref(), Some(&r));
        // Until a touch is due: then the store is written again, and the refreshed
        // record is remembered.
        clock.advance(59);
        assert!(s.remembered(raw).is_some());
        clock.advance(1);
        assert!(s.remembered(raw).is_none(), "a touch is due");
        let from = s.id_from_cookie(&c, &cookie).unwrap();
        let Lookup::Valid(r) = s.load_found(&from).await.unwrap() else {
            panic!("a live session")
        };
        assert_eq!(r.last_seen, 1_000_060);
        assert_eq!(s.remembered(raw).unwrap().1.last_seen, 1_000_060);
        // Any invalidation (another session's sign-out): not from the memo.
        let (other, _) = signed_in(&s, &c, "bob").await;
        s.remove(&other.handle(), "bob").await.unwrap();
        assert!(s.remembered(raw).is_none());
        let from = s.id_from_cookie(&c, &cookie).unwrap();
        assert!(from.found.record.is_none());
        assert!(matches!(
            s.load_found(&from).await.unwrap(),
            Lookup::Valid(_)
        ));
        assert!(s.remembered(raw).is_some());
        // Its own sign-out: ended, memo or not.
        s.remove(&id.handle(), "alice").await.unwrap();
        assert!(s.remembered(raw).is_none());
        let from = s.id_from_cookie(&c, &cookie).unwrap();
        assert_eq!(s.load_found(&from).await.unwrap(), Lookup::Ended);
        assert!(s.remembered(raw).is_none());
    }

    #[test]
    fn a_record_is_fresh_until_its_touch_or_its_end() {
        let clock = FakeClock::at(1_000_000);
        let s = sessions(&clock); // idle 600 s (touch every 60 s), absolute 3600 s
        let now = 1_000_000u64;
        let rec = |created: u64, last_seen: u64| SessionRecord {
            user: "alice".into(),
            factors: 1,
            created,
            last_seen,
            client: "127.0.0.1".into(),
            cred_version: 0,
            pending: Pending::Done,
            auth_at: created,
        };
        let ms = Duration::from_millis;
        assert_eq!(s.fresh_for(&rec(now, now), now * 1000), ms(60_000));
        assert_eq!(
            s.fresh_for(&rec(now, now - 10), now * 1000 + 500),
            ms(49_500)
        );
        // The absolute end comes first.
        assert_eq!(s.fresh_for(&rec(now - 3590, now), now * 1000), ms(10_000));
        // Due or over: nothing.
        assert_eq!(s.fresh_for(&rec(now, now - 60), now * 1000), ms(0));
        assert_eq!(s.fresh_for(&rec(now - 4000, now), now * 1000), ms(0));
    }

    #[tokio::test]
    async fn the_first_genuine_cookie_wins_even_when_a_later_one_is_remembered() {
        let (_, s, c) = memo_world();
        let (victim, victims) = signed_in(&s, &c, "alice").await;
        let (planted, planteds) = signed_in(&s, &c, "mallory").await;
        // Mallory's value is remembered (she used it); a sibling subdomain plants it
        // after the victim's own cookie.
        assert_eq!(id_key(&s, &c, &planteds).map(|x| x.0), Some(planted));
        let both = format!("{victims}; {planteds}");
        assert_eq!(id_key(&s, &c, &both).map(|x| x.0), Some(victim.clone()));
        // And once the victim's is remembered too, still the first.
        assert_eq!(id_key(&s, &c, &both).map(|x| x.0), Some(victim));
    }

    #[tokio::test]
    async fn tampered_and_foreign_cookies_never_enter_the_memo() {
        let (_, s, c) = memo_world();
        let foreign = CookieCrypto::new(&[8u8; 64], &crate::cookies::tests::cfg());
        let (_, theirs) = signed_in(&s, &foreign, "mallory").await;
        assert!(s.id_from_cookie(&c, &theirs).is_none());
        let (_, ours) = signed_in(&s, &c, "alice").await;
        // One character of the ciphertext changed.
        let (name, value) = ours.split_once('=').unwrap();
        let mut v = value.as_bytes().to_vec();
        v[10] = if v[10] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(v).unwrap());
        assert!(s.id_from_cookie(&c, &tampered).is_none());
        assert!(s.id_from_cookie(&c, "portcullis=not-a-cookie").is_none());
        assert_eq!(
            s.cache.memo_len(),
            0,
            "nothing that failed to decrypt is remembered"
        );
        assert!(s.id_from_cookie(&c, &ours).is_some());
        assert_eq!(s.cache.memo_len(), 1);
    }

    #[tokio::test]
    async fn the_memo_expires_with_the_cache_and_is_bounded() {
        let (clock, s, c) = memo_world();
        let (_, cookie) = signed_in(&s, &c, "alice").await;
        let raw = value_of(&cookie);
        id_key(&s, &c, &cookie).unwrap();
        assert!(memo(&s, raw).is_some());
        clock.advance(DEFAULT_CACHE_TTL.as_secs());
        assert!(
            memo(&s, raw).is_none(),
            "no longer than store.session_cache"
        );

        let small = SessionCache::new(Arc::new(clock.clone()), DEFAULT_CACHE_TTL, true, 64);
        let id = SessionId::generate();
        for i in 0..10_000u32 {
            small.memo_insert(
                format!("v{i}").as_bytes(),
                id.clone(),
                [0; 32],
                small.generation(),
            );
        }
        assert!(small.memo_len() <= 64, "{}", small.memo_len());
    }
}
