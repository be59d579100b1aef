//! Brute-force defence: per-client rate limits (governor, in process) in front
//! of failure counters, CAPTCHA escalation and account locks (in the store, so
//! several gateways share them).
//!
//! ```text
//!  attempt ─> governor: > ip_per_minute from this address (/64 for IPv6)? ──> 429 + Retry-After
//!          ─> locked for this browser? ── yes ──> same answer as a wrong password (not counted
//!          │                                      against the account: a lock never extends itself)
//!          ─> CAPTCHA needed?  (account or client failures >= captcha_after,
//!          │                    or the spray breaker is on and the browser is unknown)
//!          │      └─ missing / wrong / reused ──> failure
//!          ─> password ── wrong ──> failure ─> account failures >= lock_after ─> LOCK
//!          │                                   (lock_duration, doubling per repeat, <= lock_max)
//!          └─ right ──> counters of the account reset, browser becomes a known device
//! ```
//!
//! Known devices: a browser that signed in to an account before carries a signed
//! cookie for it. The account lock applies only to *unknown* browsers, so an
//! attacker hammering a known account name can't lock its owner out; a known
//! device's own failures count separately (`known_device_lock_after`).
//! Trade-off: a stolen known-device cookie lets its holder keep guessing after
//! the account locks — but only at the rate limit, up to its own threshold,
//! and only for that one account.
//!
//! Time comes from the [`Clock`] the gateway was built with: the limiters run on
//! it through [`crate::clock::GovernorClock`], lock deadlines and the spray minute
//! read its wall time. Store keys are built by [`crate::store::keys`].

pub mod explain;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::clock::{Clock, GovernorClock};
use crate::config::DefenseConfig;
use crate::store::{keys, DynStore, StoreError};

/// Most client networks a limiter holds state for (about 100 bytes each).
pub const MAX_TRACKED: usize = 100_000;

/// Per-address limits on the injected clock.
type Limiter = RateLimiter<
    IpAddr,
    DashMapStateStore<IpAddr>,
    GovernorClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

pub struct Defense {
    store: DynStore,
    clock: Arc<dyn Clock>,
    limiter: ArcSwap<(u32, Limiter)>,
    /// CAPTCHA challenges created per client address: each is a store entry, so a
    /// client reloading the sign-in page can't grow the store without bound.
    challenges: ArcSwap<(u32, Limiter)>,
}

/// Challenges a client may have created per minute: two per allowed attempt, and
/// some room for reloads.
fn challenges_per_minute(ip_per_minute: u32) -> u32 {
    ip_per_minute.saturating_mul(2).saturating_add(10)
}

/// Where an attempt stands before the password is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Seconds left on a lock that applies to this browser.
    pub locked_for: Option<u64>,
    pub captcha: bool,
}

/// One ladder: an account's (or an account's on one known device) counter, lock
/// and threshold, by store key.
#[derive(Debug, Clone)]
pub struct Ladder {
    account: String,
    /// A known device's ladder (not the account's own).
    device: bool,
    counter: String,
    lock: String,
    threshold: u32,
}

impl Ladder {
    fn of(cfg: &DefenseConfig, a: &str, device: Option<&str>) -> Ladder {
        match device {
            Some(d) => Ladder {
                account: a.to_string(),
                device: true,
                counter: keys::device_failures(a, d),
                lock: keys::device_lock(a, d),
                threshold: cfg.known_device_lock_after,
            },
            None => Ladder {
                account: a.to_string(),
                device: false,
                counter: keys::account_failures(a),
                lock: keys::account_lock(a),
                threshold: cfg.lock_after,
            },
        }
    }
}

impl Attempt {
    /// An attempt met by a lock with `left` seconds to go: not reserved.
    fn locked(ladder: Ladder, left: u64) -> Attempt {
        Attempt {
            ladder,
            n: 0,
            standing: Standing {
                locked_for: Some(left),
                captcha: true,
            },
        }
    }

    /// Whether this attempt was counted on its ladder (not refused on a lock).
    pub fn reserved(&self) -> bool {
        self.n > 0
    }
}

/// A sign-in attempt reserved on its ladder by [`Defense::begin_attempt`].
#[derive(Debug, Clone)]
pub struct Attempt {
    ladder: Ladder,
    /// This attempt's number on the ladder (0: not reserved, the ladder was locked).
    n: u64,
    /// Where the attempt stands: locked (or over the threshold), CAPTCHA needed.
    pub standing: Standing,
}

/// The network a client is counted under: the address, or its /64 for IPv6.
/// The name failures and locks are counted under for an account: the account, or
/// with `lock_scope = "account_network"` the account as seen from one client network.
pub fn account_key(cfg: &DefenseConfig, account: &str, client: IpAddr) -> String {
    if cfg.lock_per_network {
        format!("{account}@{}", client_key(client))
    } else {
        account.to_string()
    }
}

pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(a) => {
            let mut s = a.segments();
            s[4..].fill(0);
            IpAddr::from(s)
        }
    }
}

fn limiter(clock: &Arc<dyn Clock>, per_minute: u32) -> Limiter {
    let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    RateLimiter::dashmap_with_clock(Quota::per_minute(n), GovernorClock(clock.clone()))
}

use crate::store::keys::{DEFENSE_ACCOUNTS as ACCOUNTS, DEFENSE_CLIENTS as CLIENTS};

/// One row of `portcullis lock list`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LockRow {
    pub kind: String,
    pub name: String,
    pub locked_for: Option<u64>,
    pub failures: u64,
}

impl Defense {
    pub fn new(store: DynStore, clock: Arc<dyn Clock>, cfg: &DefenseConfig) -> Defense {
        Defense {
            store,
            limiter: ArcSwap::from_pointee((cfg.ip_per_minute, limiter(&clock, cfg.ip_per_minute))),
            challenges: ArcSwap::from_pointee((
                cfg.ip_per_minute,
                limiter(&clock, challenges_per_minute(cfg.ip_per_minute)),
            )),
            clock,
        }
    }

    /// The clock the ladder and the limits run on.
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// The per-address limit; `Err(wait)` when this attempt is over it. Runs before
    /// any store or argon2 work. A changed `ip_per_minute` (SIGHUP) starts a fresh limiter.
    pub fn check_rate(&self, cfg: &DefenseConfig, ip: IpAddr) -> Result<(), Duration> {
        if self.limiter.load().0 != cfg.ip_per_minute {
            self.limiter.store(Arc::new((
                cfg.ip_per_minute,
                limiter(&self.clock, cfg.ip_per_minute),
            )));
        }
        self.keep_bounded(&self.limiter, cfg.ip_per_minute);
        let l = self.limiter.load();
        l.1.check_key(&group(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.monotonic()))
    }

    /// Holds a limiter to [`MAX_TRACKED`] client networks, whatever the number of
    /// distinct addresses sending: over it, addresses that are quiet again are dropped
    /// at once (not only on the housekeeping timer), and if more than half the bound
    /// is still busy, the limiter starts afresh (a sender with that many addresses
    /// gains nothing a per-address limit could have kept from it).
    fn keep_bounded(&self, slot: &ArcSwap<(u32, Limiter)>, per_minute: u32) {
        let l = slot.load();
        if l.1.len() <= MAX_TRACKED {
            return;
        }
        l.1.retain_recent();
        if l.1.len() > MAX_TRACKED / 2 {
            slot.store(Arc::new((l.0, limiter(&self.clock, per_minute))));
        }
    }

    /// Client networks the sign-in limiter holds state for now.
    pub fn tracked_clients(&self) -> usize {
        self.limiter.load().1.len()
    }

    /// The per-address limit on new CAPTCHA challenges; `Err(wait)` when over it.
    pub fn check_challenge_rate(&self, cfg: &DefenseConfig, ip: IpAddr) -> Result<(), Duration> {
        if self.challenges.load().0 != cfg.ip_per_minute {
            self.challenges.store(Arc::new((
                cfg.ip_per_minute,
                limiter(&self.clock, challenges_per_minute(cfg.ip_per_minute)),
            )));
        }
        self.keep_bounded(&self.challenges, challenges_per_minute(cfg.ip_per_minute));
        let l = self.challenges.load();
        l.1.check_key(&group(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.monotonic()))
    }

    /// Drops limiter state of addresses that have been quiet (keeps memory bounded
    /// under floods from millions of addresses). Called on a timer.
    pub fn housekeeping(&self) {
        for l in [self.limiter.load(), self.challenges.load()] {
            l.1.retain_recent();
            l.1.shrink_to_fit();
        }
    }

    async fn count(&self, key: &str) -> Result<u64, StoreError> {
        Ok(self
            .store
            .get(key)
            .await?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    async fn lock_left(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.store.ttl(key).await?.map(|d| d.as_secs().max(1)))
    }

    fn spray_key(&self) -> String {
        keys::spray(self.clock.now() / 60)
    }

    pub async fn standing(
        &self,
        cfg: &DefenseConfig,
        account: Option<&str>,
        device: Option<&str>,
        client: IpAddr,
    ) -> Result<Standing, StoreError> {
        let ck = client_key(client);
        let client_fails = self.count(&keys::client_failures(&ck)).await?;
        let mut captcha = cfg.captcha_after == 0 || client_fails >= u64::from(cfg.captcha_after);
        let mut locked_for = None;
        match (account, device) {
            (Some(a), Some(d)) => {
                locked_for = self.lock_left(&keys::device_lock(a, d)).await?;
                captcha |=
                    self.count(&keys::device_failures(a, d)).await? >= u64::from(cfg.captcha_after);
            }
            (Some(a), None) => {
                locked_for = self.lock_left(&keys::account_lock(a)).await?;
                captcha |=
                    self.count(&keys::account_failures(a)).await? >= u64::from(cfg.captcha_after);
            }
            _ => {}
        }
        if device.is_none() && cfg.spray_per_minute > 0 {
            captcha |= self.count(&self.spray_key()).await? > u64::from(cfg.spray_per_minute);
        }
        Ok(Standing {
            locked_for,
            captcha,
        })
    }

    /// Starts a sign-in attempt on the ladder of `account` (or of its known
    /// `device`): the attempt is counted *before* the password is checked, in one
    /// atomic step, so a burst of simultaneous attempts can't all slip under the
    /// CAPTCHA or lock threshold. The reservation becomes a failure
    /// ([`attempt_failed`](Self::attempt_failed)), is forgiven when the password
    /// was right ([`attempt_passed`](Self::attempt_passed)), or — on a lock seen
    /// here — isn't made at all (a lock never extends itself).
    pub async fn begin_attempt(
        &self,
        cfg: &DefenseConfig,
        account: &str,
        device: Option<&str>,
        client: IpAddr,
    ) -> Result<Attempt, StoreError> {
        let ladder = Ladder::of(cfg, account, device);
        if let Some(left) = self.lock_left(&ladder.lock).await? {
            return Ok(Attempt::locked(ladder, left));
        }
        let n = self.store.incr(&ladder.counter, cfg.window).await?;
        // A concurrent failure may have locked the ladder (and reset its counter) between
        // the look above and this reservation: then this attempt meets the lock.
        if let Some(left) = self.lock_left(&ladder.lock).await? {
            self.store.decr(&ladder.counter).await?;
            return Ok(Attempt::locked(ladder, left));
        }
        // Attempts beyond the threshold while others are still being checked are
        // refused like a lock: they're counted, and the failures lock the account.
        let over = n > u64::from(ladder.threshold);
        let mut captcha = n > u64::from(cfg.captcha_after);
        let ck = client_key(client);
        captcha |= cfg.captcha_after == 0
            || self.count(&keys::client_failures(&ck)).await? >= u64::from(cfg.captcha_after);
        if device.is_none() && cfg.spray_per_minute > 0 {
            captcha |= self.count(&self.spray_key()).await? > u64::from(cfg.spray_per_minute);
        }
        Ok(Attempt {
            ladder,
            n,
            standing: Standing {
                locked_for: over.then(|| cfg.lock_duration.as_secs().max(1)),
                captcha,
            },
        })
    }

    /// The reserved attempt failed (wrong password, CAPTCHA, refused while over
    /// the threshold): counts it for the client, and locks when it reached the
    /// threshold. Returns the lock's duration when this failure locked.
    pub async fn attempt_failed(
        &self,
        cfg: &DefenseConfig,
        a: &Attempt,
        client: IpAddr,
    ) -> Result<Option<Duration>, StoreError> {
        self.count_client(cfg, client).await?;
        if a.n == 0 || a.n < u64::from(a.ladder.threshold) {
            return Ok(None);
        }
        self.lock(cfg, &a.ladder).await
    }

    /// The password was right: with the sign-in `complete`, the ladder starts
    /// over; with a second step still to come, only this attempt is forgiven (the
    /// second step's failures keep counting).
    pub async fn attempt_passed(&self, a: &Attempt, complete: bool) -> Result<(), StoreError> {
        if a.n == 0 {
            return Ok(());
        }
        if complete {
            self.store.delete(&a.ladder.counter).await?;
        } else {
            self.store.decr(&a.ladder.counter).await?;
        }
        Ok(())
    }

    /// Seconds left on the lock of this ladder, read again (after the slow part of
    /// an attempt, so a lock set meanwhile by a concurrent failure still counts).
    pub async fn locked_now(&self, a: &Attempt) -> Result<Option<u64>, StoreError> {
        self.lock_left(&a.ladder.lock).await
    }

    /// Counts a failed attempt (any factor). Returns the lock duration when this
    /// failure locked the account (or the known device).
    pub async fn record_failure(
        &self,
        cfg: &DefenseConfig,
        account: Option<&str>,
        device: Option<&str>,
        client: IpAddr,
    ) -> Result<Option<Duration>, StoreError> {
        self.count_client(cfg, client).await?;
        match account {
            Some(a) => self.count_account(cfg, a, device).await,
            None => Ok(None),
        }
    }

    /// A failed second step (TOTP, emailed/SMS/voice code, backup code, or the
    /// password asked again), reserved with [`begin_attempt`](Self::begin_attempt)
    /// on the account's ladder, or on its known device's: counted like any failure,
    /// and — from a known device — on the *account's* ladder as well. Whoever is at
    /// this step already has the password, so a fresh browser or a new sign-in must
    /// not buy fresh tries.
    pub async fn second_step_failed(
        &self,
        cfg: &DefenseConfig,
        a: &Attempt,
        client: IpAddr,
    ) -> Result<Option<Duration>, StoreError> {
        let locked = self.attempt_failed(cfg, a, client).await?;
        let account_locked = if a.ladder.device {
            self.count_account(cfg, &a.ladder.account, None).await?
        } else {
            None
        };
        Ok(locked.or(account_locked))
    }

    async fn count_client(&self, cfg: &DefenseConfig, client: IpAddr) -> Result<(), StoreError> {
        let ck = client_key(client);
        self.store
            .incr(&keys::client_failures(&ck), cfg.window)
            .await?;
        self.store.set_add(CLIENTS, &ck, cfg.window).await?;
        self.store
            .incr(&self.spray_key(), Duration::from_secs(120))
            .await?;
        Ok(())
    }

    async fn count_account(
        &self,
        cfg: &DefenseConfig,
        a: &str,
        device: Option<&str>,
    ) -> Result<Option<Duration>, StoreError> {
        let ladder = Ladder::of(cfg, a, device);
        let n = self.store.incr(&ladder.counter, cfg.window).await?;
        if n < u64::from(ladder.threshold) {
            return Ok(None);
        }
        self.lock(cfg, &ladder).await
    }

    /// Locks a ladder that reached its threshold. Each repeated lock doubles, up to
    /// `lock_max`; the repeat count is remembered for `lock_max`. `None` when a
    /// concurrent failure locked it first.
    async fn lock(
        &self,
        cfg: &DefenseConfig,
        ladder: &Ladder,
    ) -> Result<Option<Duration>, StoreError> {
        let repeats_key = keys::lock_repeats(&ladder.lock);
        let before = self.count(&repeats_key).await?;
        let factor = 1u32.checked_shl(before.min(30) as u32).unwrap_or(u32::MAX);
        let dur = cfg.lock_duration.saturating_mul(factor).min(cfg.lock_max);
        let until = self.clock.now() + dur.as_secs();
        let locked = self
            .store
            .set_nx(&ladder.lock, until.to_string().as_bytes(), dur)
            .await?;
        self.store.delete(&ladder.counter).await?;
        if locked {
            self.store
                .incr(&repeats_key, cfg.lock_max.max(cfg.window).saturating_mul(2))
                .await?;
            self.store
                .set_add(
                    ACCOUNTS,
                    &ladder.account,
                    cfg.lock_max.max(cfg.window).saturating_mul(2),
                )
                .await?;
        }
        Ok(locked.then_some(dur))
    }

    /// A success resets the account's counters (not the client's: one good account
    /// must not launder a client's failures on others).
    pub async fn record_success(
        &self,
        account: &str,
        device: Option<&str>,
    ) -> Result<(), StoreError> {
        self.store.delete(&keys::account_failures(account)).await?;
        if let Some(d) = device {
            self.store
                .delete(&keys::device_failures(account, d))
                .await?;
        }
        Ok(())
    }

    /// Locked accounts and clients with failures, for `portcullis lock list`.
    pub async fn list(&self) -> Result<Vec<LockRow>, StoreError> {
        let mut rows = Vec::new();
        for a in self.store.set_members(ACCOUNTS).await? {
            let locked_for = self.lock_left(&keys::account_lock(&a)).await?;
            let failures = self.count(&keys::account_failures(&a)).await?;
            if locked_for.is_some() || failures > 0 {
                rows.push(LockRow {
                    kind: "account".into(),
                    name: a,
                    locked_for,
                    failures,
                });
            }
        }
        for c in self.store.set_members(CLIENTS).await? {
            let failures = self.count(&keys::client_failures(&c)).await?;
            if failures > 0 {
                rows.push(LockRow {
                    kind: "client".into(),
                    name: c,
                    locked_for: None,
                    failures,
                });
            }
        }
        rows.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        Ok(rows)
    }

    /// Forgets the ladders named by the text of an identifier that named no account
    /// (`?name:...`, `?raw:...`: so named before they were named by a keyed digest),
    /// which would otherwise stay listed in the store while new locks renew the list.
    /// Run once at start; returns how many.
    pub async fn forget_typed_names(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for m in self.store.set_members(ACCOUNTS).await? {
            if !m.starts_with('?') {
                continue;
            }
            for k in [
                keys::account_lock(&m),
                keys::account_failures(&m),
                keys::lock_repeats(&keys::account_lock(&m)),
            ] {
                self.store.delete(&k).await?;
            }
            self.store.set_remove(ACCOUNTS, &m).await?;
            n += 1;
        }
        Ok(n)
    }

    /// Unlocks an account (by name) or forgets a client's failures (by address);
    /// returns whether anything was cleared.
    pub async fn clear(&self, name_or_addr: &str) -> Result<bool, StoreError> {
        let mut any = false;
        if let Ok(ip) = name_or_addr.parse::<IpAddr>() {
            let ck = client_key(ip);
            any |= self.store.delete(&keys::client_failures(&ck)).await?;
            self.store.set_remove(CLIENTS, &ck).await?;
            return Ok(any);
        }
        let a = name_or_addr.to_ascii_lowercase();
        // With lock_scope = "account_network" an account is counted per network: clear those too.
        let mut names = vec![a.clone()];
        if !a.contains('@') {
            let prefix = format!("{a}@");
            let members = self.store.set_members(ACCOUNTS).await?;
            names.extend(members.into_iter().filter(|m| m.starts_with(&prefix)));
        }
        for n in names {
            for k in [
                keys::account_lock(&n),
                keys::account_failures(&n),
                keys::lock_repeats(&keys::account_lock(&n)),
            ] {
                any |= self.store.delete(&k).await?;
            }
            self.store.set_remove(ACCOUNTS, &n).await?;
        }
        Ok(any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::store::memory::MemoryStore;

    fn cfg() -> DefenseConfig {
        DefenseConfig {
            captcha_after: 2,
            lock_after: 4,
            window: Duration::from_secs(900),
            lock_duration: Duration::from_secs(60),
            lock_max: Duration::from_secs(200),
            ip_per_minute: 3,
            known_device_days: 90,
            known_device_lock_after: 3,
            spray_per_minute: 5,
            captcha_ttl: Duration::from_secs(300),
            captcha_on_reset: false,
            captcha_on_password_change: false,
            lock_per_network: false,
        }
    }

    /// A ladder on a fresh memory store, its config, and a client.
    fn fresh() -> (Defense, DefenseConfig, IpAddr) {
        let d = Defense::new(
            Arc::new(MemoryStore::new()),
            Arc::new(FakeClock::at(1_000_000)),
            &cfg(),
        );
        (d, cfg(), "10.0.0.1".parse().unwrap())
    }

    /// Ladders named by typed text (before the keyed digest) are forgotten at start;
    /// accounts' are kept.
    #[tokio::test]
    async fn ladders_named_by_typed_text_are_forgotten() {
        let (d, c, ip) = fresh();
        for name in ["?raw:hunter2 secret", "alice", "unknown:0123456789abcdef"] {
            for _ in 0..c.lock_after {
                d.record_failure(&c, Some(name), None, ip).await.unwrap();
            }
        }
        let listed = |rows: Vec<LockRow>| -> Vec<String> {
            rows.into_iter()
                .filter(|r| r.kind == "account")
                .map(|r| r.name)
                .collect()
        };
        assert_eq!(listed(d.list().await.unwrap()).len(), 3);
        assert_eq!(d.forget_typed_names().await.unwrap(), 1);
        assert_eq!(
            listed(d.list().await.unwrap()),
            ["alice", "unknown:0123456789abcdef"]
        );
        let s = d
            .standing(&c, Some("?raw:hunter2 secret"), None, ip)
            .await
            .unwrap();
        assert_eq!(s.locked_for, None);
        assert_eq!(d.forget_typed_names().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn ladder_captcha_then_lock_then_doubling() {
        let (d, c, ip) = fresh();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            d.standing(&c, Some("alice"), None, ip).await.unwrap(),
            Standing {
                locked_for: None,
                captcha: false
            }
        );
        d.record_failure(&c, Some("alice"), None, ip).await.unwrap();
        d.record_failure(&c, Some("alice"), None, other)
            .await
            .unwrap();
        // The account's failures demand a CAPTCHA from anyone, even a fresh client.
        let fresh: IpAddr = "10.9.9.9".parse().unwrap();
        assert!(
            d.standing(&c, Some("alice"), None, fresh)
                .await
                .unwrap()
                .captcha
        );
        d.record_failure(&c, Some("alice"), None, ip).await.unwrap();
        let lock = d
            .record_failure(&c, Some("alice"), None, other)
            .await
            .unwrap();
        assert_eq!(lock, Some(Duration::from_secs(60)));
        let s = d.standing(&c, Some("alice"), None, fresh).await.unwrap();
        assert!(s.locked_for.is_some_and(|t| t <= 60));
        // A known device of alice is not locked by this.
        assert_eq!(
            d.standing(&c, Some("alice"), Some("dev1"), fresh)
                .await
                .unwrap()
                .locked_for,
            None
        );
        // Second lock doubles; third would be capped at lock_max.
        d.clear("alice").await.unwrap();
        for _ in 0..3 {
            d.record_failure(&c, Some("alice"), None, ip).await.unwrap();
        }
        // clear() also forgot the repeat count, so this is a first lock again.
        assert_eq!(
            d.record_failure(&c, Some("alice"), None, ip).await.unwrap(),
            Some(Duration::from_secs(60))
        );
        let store = Arc::new(MemoryStore::new());
        let d = Defense::new(store.clone(), Arc::new(FakeClock::at(1_000_000)), &cfg());
        let mut locks = Vec::new();
        for _ in 0..3 {
            for _ in 0..4 {
                if let Some(dur) = d.record_failure(&c, Some("bob"), None, ip).await.unwrap() {
                    locks.push(dur.as_secs());
                }
            }
            use crate::store::Store;
            store.delete("df:lock:bob").await.unwrap(); // the lock ran out
        }
        assert_eq!(locks, vec![60, 120, 200]);
    }

    #[tokio::test]
    async fn unknown_identifiers_count_toward_the_client_and_spray_breaker() {
        let d = Defense::new(
            Arc::new(MemoryStore::new()),
            Arc::new(FakeClock::at(1_000_000)),
            &cfg(),
        );
        let c = cfg();
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::ffff".parse().unwrap();
        d.record_failure(&c, None, None, ip).await.unwrap();
        d.record_failure(&c, None, None, same_64).await.unwrap();
        assert!(
            d.standing(&c, None, None, ip).await.unwrap().captcha,
            "/64 counted together"
        );
        for i in 0..5 {
            let a: IpAddr = format!("10.1.0.{i}").parse().unwrap();
            d.record_failure(&c, Some(&format!("u{i}")), None, a)
                .await
                .unwrap();
        }
        // 7 failures this minute > spray_per_minute 5: CAPTCHA for unknown devices everywhere.
        let fresh: IpAddr = "10.200.0.1".parse().unwrap();
        assert!(
            d.standing(&c, Some("zed"), None, fresh)
                .await
                .unwrap()
                .captcha
        );
        assert!(
            !d.standing(&c, Some("zed"), Some("dev"), fresh)
                .await
                .unwrap()
                .captcha
        );
        let rows = d.list().await.unwrap();
        assert!(
            rows.iter()
                .any(|r| r.kind == "client" && r.name == "2001:db8:0:0::/64" && r.failures == 2),
            "{rows:?}"
        );
    }

    #[test]
    fn rate_limit_per_address_and_64() {
        let c = cfg();
        let d = Defense::new(Arc::new(MemoryStore::new()), Arc::new(FakeClock::at(0)), &c);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(d.check_rate(&c, a).is_ok());
        assert!(d.check_rate(&c, b).is_ok());
        assert!(d.check_rate(&c, a).is_ok());
        let wait = d.check_rate(&c, b).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(d.check_rate(&c, "10.0.0.1".parse().unwrap()).is_ok());
        d.housekeeping();
    }

    #[test]
    fn limiter_state_stays_bounded_under_a_million_addresses() {
        let c = cfg();
        let clock = FakeClock::at(0);
        let d = Defense::new(Arc::new(MemoryStore::new()), Arc::new(clock.clone()), &c);
        let busy: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(d.check_rate(&c, busy).is_ok());
        }
        let mut most = 0;
        for i in 0..1_000_000u32 {
            let _ = d.check_rate(&c, IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
            most = most.max(d.tracked_clients());
        }
        assert!(most <= MAX_TRACKED + 1, "{most}");
        assert!(d.tracked_clients() <= MAX_TRACKED + 1);
    }
}
