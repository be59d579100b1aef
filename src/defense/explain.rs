//! `portcullis check-config --explain`: the configured `[defense]` ladder in
//! numbers, so an operator can tune lockout without guessing. Pure: config in,
//! text and numbers out.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::DefenseConfig;

const DAY: u64 = 86_400;

/// What an attacker who never learns the password can do against one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Passwords tried against one account in the first 24 hours.
    pub first_day: u64,
    /// Passwords per account per day once every lock lasts `lock_max`.
    pub steady_per_day: u64,
    /// How many of the first day's tries come with a CAPTCHA to solve.
    pub first_day_with_captcha: u64,
    /// Seconds of each lock in order, until they stop growing.
    pub locks: Vec<u64>,
}

/// The lock lengths: `lock_duration`, doubling per repeat, up to `lock_max`.
fn lock_lengths(cfg: &DefenseConfig) -> Vec<u64> {
    let base = cfg.lock_duration.as_secs().max(1);
    let max = cfg.lock_max.as_secs().max(base);
    let mut out = Vec::new();
    let mut d = base;
    loop {
        out.push(d.min(max));
        if d >= max || out.len() >= 32 {
            return out;
        }
        d = d.saturating_mul(2);
    }
}

/// The attack on one account from one address (or, with `lock_scope = "account"`,
/// from any number of addresses: the lock is the account's), as fast as the
/// per-address limit allows, each lock waited out.
pub fn budget(cfg: &DefenseConfig) -> Budget {
    let locks = lock_lengths(cfg);
    let per_lock = u64::from(cfg.lock_after.max(1));
    let per_minute = u64::from(cfg.ip_per_minute.max(1));
    // Time to make one round of `lock_after` tries at the rate limit.
    let round = (per_lock * 60)
        .div_ceil(per_minute)
        .saturating_sub(60 / per_minute);
    let captcha_free = u64::from(cfg.captcha_after).min(per_lock);
    let mut t = 0u64;
    let mut tries = 0u64;
    let mut with_captcha = 0u64;
    let mut i = 0usize;
    while t < DAY {
        // The round: tries spread over `round` seconds; count those inside the day.
        let fit = if round == 0 {
            per_lock
        } else {
            (((DAY - t) * per_lock) / round.max(1)).min(per_lock)
        };
        tries += fit;
        // The first round starts on a clean ladder; later rounds start right after a
        // lock, with the account's counter reset, so each has its CAPTCHA-free tries.
        with_captcha += fit.saturating_sub(captcha_free);
        let lock = locks[i.min(locks.len() - 1)];
        t = t.saturating_add(round).saturating_add(lock);
        i += 1;
        if i > 10_000 {
            break;
        }
    }
    let max_lock = *locks.last().unwrap_or(&DAY);
    let steady_per_day = (DAY * per_lock) / (max_lock + round).max(1);
    Budget {
        first_day: tries,
        steady_per_day,
        first_day_with_captcha: with_captcha,
        locks,
    }
}

fn human(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// The report `check-config --explain` prints.
pub fn explain(cfg: &DefenseConfig) -> String {
    let b = budget(cfg);
    let mut s = String::new();
    let _ = writeln!(s, "The defence ladder for one account ([defense]):");
    let _ = writeln!(
        s,
        "  - every client address: at most {} sign-in attempts a minute (then 429)",
        cfg.ip_per_minute
    );
    if cfg.captcha_after == 0 {
        let _ = writeln!(s, "  - a CAPTCHA with every attempt (captcha_after = 0)");
    } else {
        let _ = writeln!(
            s,
            "  - the first {} tries: the plain form; after {} failures within {}: a CAPTCHA with every attempt",
            cfg.captcha_after,
            cfg.captcha_after,
            human(cfg.window.as_secs())
        );
    }
    let _ = writeln!(
        s,
        "  - at {} failures within {}: locked for unknown browsers",
        cfg.lock_after,
        human(cfg.window.as_secs())
    );
    let _ = write!(s, "  - lock lengths, each repeat doubling:");
    for (i, l) in b.locks.iter().enumerate() {
        let _ = write!(s, "{}{}", if i == 0 { " " } else { ", " }, human(*l));
    }
    let _ = writeln!(s, " (lock_max {})", human(cfg.lock_max.as_secs()));
    let _ = writeln!(
        s,
        "  - repeats are remembered for {}; after that the next lock is {} again",
        human(cfg.lock_max.max(cfg.window).as_secs().saturating_mul(2)),
        human(b.locks.first().copied().unwrap_or(0))
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "What that means for an attacker who doesn't know the password:"
    );
    let scope = if cfg.lock_per_network {
        "from one client network (lock_scope = \"account_network\": every further network of the attacker's gets as many again)"
    } else {
        "from one address or from any number of them (the lock is the account's)"
    };
    let _ = writeln!(
        s,
        "  - {} passwords against one account in the first day, {} of them with a CAPTCHA to solve, {}",
        b.first_day, b.first_day_with_captcha, scope
    );
    let _ = writeln!(
        s,
        "  - then about {} a day while the locks last {} each",
        b.steady_per_day,
        human(*b.locks.last().unwrap_or(&0))
    );
    if cfg.spray_per_minute > 0 {
        let _ = writeln!(
            s,
            "  - trying many accounts at once: above {} failures a minute across all accounts, every unknown browser gets a CAPTCHA",
            cfg.spray_per_minute
        );
    }
    let _ = writeln!(
        s,
        "  - second steps (codes) and reset codes count on the same ladder"
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "What that means for the real person:");
    let _ = writeln!(
        s,
        "  - mistyping {} times in {} brings a CAPTCHA; {} times locks the account for unknown browsers for {}",
        cfg.captcha_after.max(1),
        human(cfg.window.as_secs()),
        cfg.lock_after,
        human(b.locks.first().copied().unwrap_or(0))
    );
    if cfg.known_device_days > 0 {
        let _ = writeln!(
            s,
            "  - on a browser they signed in with before (a known device, for {} days) an attacker's lock doesn't hold them up; their own browser locks only after {} of its own failures",
            cfg.known_device_days, cfg.known_device_lock_after
        );
    } else {
        let _ = writeln!(
            s,
            "  - known devices are off (known_device_days = 0): an attacker's lock holds the owner up too"
        );
    }
    let _ = writeln!(
        s,
        "  - locked or not, a password reset by email works, and the lock notice's link unlocks at once"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> DefenseConfig {
        DefenseConfig {
            captcha_after: 3,
            lock_after: 10,
            window: Duration::from_secs(900),
            lock_duration: Duration::from_secs(900),
            lock_max: Duration::from_secs(86_400),
            ip_per_minute: 30,
            known_device_days: 90,
            known_device_lock_after: 10,
            spray_per_minute: 100,
            captcha_ttl: Duration::from_secs(300),
            captcha_on_reset: false,
            captcha_on_password_change: false,
            lock_per_network: false,
        }
    }

    #[test]
    fn defaults_in_numbers() {
        let b = budget(&defaults());
        assert_eq!(
            b.locks,
            vec![900, 1800, 3600, 7200, 14_400, 28_800, 57_600, 86_400]
        );
        // Rounds of 10 tries (18 s at 30/min), then 15m, 30m, 1h, 2h, 4h, 8h, 16h locks:
        // the 7th round starts at about 15.8 h, the 8th after the 16 h lock, past the day.
        assert_eq!(b.first_day, 70);
        assert_eq!(b.first_day_with_captcha, 49);
        assert_eq!(b.steady_per_day, 9);
        let text = explain(&defaults());
        assert!(
            text.contains("70 passwords against one account in the first day"),
            "{text}"
        );
        assert!(
            text.contains("15m, 30m, 1h, 2h, 4h, 8h, 16h, 1day"),
            "{text}"
        );
    }

    #[test]
    fn harsher_and_gentler_settings_move_the_numbers() {
        let mut c = defaults();
        c.lock_after = 5;
        c.lock_duration = Duration::from_secs(3600);
        let harsh = budget(&c);
        assert!(harsh.first_day < 70, "{harsh:?}");
        c.lock_after = 50;
        c.lock_duration = Duration::from_secs(60);
        c.lock_max = Duration::from_secs(60);
        let gentle = budget(&c);
        assert!(gentle.first_day > 10_000, "{gentle:?}");
        // Never an endless loop or a panic on edge values.
        c.lock_after = 1;
        c.ip_per_minute = 1;
        c.captcha_after = 0;
        c.lock_duration = Duration::from_secs(1);
        c.lock_max = Duration::from_secs(1);
        let tiny = budget(&c);
        assert!(tiny.first_day > 0);
        let _ = explain(&c);
    }
}
