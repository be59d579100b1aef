//! The one place that reads the time. Everything else is given a [`Clock`]
//! (`App::with_clock`, `MemoryStore::with_clock`, `Defense::new`, `Sessions::new`),
//! so tests drive time with a [`FakeClock`] instead of sleeping.
//!
//! A clock tells two times:
//! - wall time ([`Clock::now`], [`Clock::now_ms`]): Unix time, for what is stored or
//!   shown (session stamps, lock deadlines, TOTP steps, audit lines);
//! - monotonic time ([`Clock::monotonic`]): since an arbitrary origin and never going
//!   back, for expiry inside this process (the memory store) and rate limits
//!   (governor, through [`GovernorClock`]).
//!
//! `clippy.toml` forbids `SystemTime::now` and `Instant::now` everywhere else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> u64;
    /// Time since a fixed origin of this clock; never goes back.
    fn monotonic(&self) -> Duration;
    /// Unix time in seconds.
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The shared, dynamically chosen clock every component is given.
pub type DynClock = Arc<dyn Clock>;

/// The system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// The origin of [`SystemClock::monotonic`]: the first time it was asked.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the clock
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    #[allow(clippy::disallowed_methods)] // the clock
    fn monotonic(&self) -> Duration {
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that moves only when told to: wall and monotonic time move together.
#[derive(Debug, Default, Clone)]
pub struct FakeClock(Arc<AtomicU64>);

impl FakeClock {
    /// A clock showing Unix time `t` (seconds).
    pub fn at(t: u64) -> FakeClock {
        FakeClock(Arc::new(AtomicU64::new(t.saturating_mul(1000))))
    }
    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: u64) {
        self.advance_by(Duration::from_secs(secs));
    }
    /// Moves the clock forward by `d` (millisecond resolution).
    pub fn advance_by(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.now_ms())
    }
}

/// A [`Clock`] as governor's clock, so rate limiters run on the injected time
/// (governor's own `FakeRelativeClock` idea, with our clock behind it).
#[derive(Clone)]
pub struct GovernorClock(pub DynClock);

impl governor::clock::Clock for GovernorClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.0.monotonic()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_told() {
        let c = FakeClock::at(1_000);
        assert_eq!(c.now(), 1_000);
        assert_eq!(c.now_ms(), 1_000_000);
        c.advance_by(Duration::from_millis(1_500));
        assert_eq!(c.now(), 1_001);
        assert_eq!(c.monotonic(), Duration::from_millis(1_001_500));
        c.advance(9);
        assert_eq!(c.now(), 1_010);
    }

    #[test]
    fn system_clock_is_unix_time_and_monotonic() {
        let c = SystemClock;
        assert!(c.now() > 1_700_000_000, "Unix time in seconds");
        assert_eq!(c.now(), c.now_ms() / 1000);
        let a = c.monotonic();
        assert!(c.monotonic() >= a);
    }

    #[test]
    fn governor_runs_on_the_given_clock() {
        use governor::{Quota, RateLimiter};
        let fake = FakeClock::at(5);
        let l = RateLimiter::direct_with_clock(
            Quota::per_minute(std::num::NonZeroU32::MIN),
            GovernorClock(Arc::new(fake.clone())),
        );
        assert!(l.check().is_ok());
        assert!(l.check().is_err(), "one a minute");
        fake.advance(61);
        assert!(l.check().is_ok(), "a minute later on the fake clock");
    }
}
