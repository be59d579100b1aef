//! `[defense]`: the lockout ladder, CAPTCHAs and rate limits.

use std::time::Duration;

use super::Problems;
use crate::config::defaults::defense as d;
use crate::config::raw::RawDefense;
use crate::config::values::LockScope;
use crate::config::DefenseConfig;

const SECOND: Duration = Duration::from_secs(1);

pub fn validate(r: &RawDefense, v: &mut Problems<'_>) -> DefenseConfig {
    let lock_after = v.int(
        "defense.lock_after",
        r.lock_after,
        d::LOCK_AFTER,
        1,
        1_000_000,
    );
    let defense = DefenseConfig {
        captcha_after: v.int(
            "defense.captcha_after",
            r.captcha_after,
            d::CAPTCHA_AFTER,
            0,
            1_000_000,
        ) as u32,
        lock_after: lock_after as u32,
        window: v.duration("defense.window", r.window, d::WINDOW, SECOND),
        lock_duration: v.duration(
            "defense.lock_duration",
            r.lock_duration,
            d::LOCK_DURATION,
            SECOND,
        ),
        lock_max: v.duration("defense.lock_max", r.lock_max, d::LOCK_MAX, SECOND),
        ip_per_minute: v.int(
            "defense.ip_per_minute",
            r.ip_per_minute,
            d::IP_PER_MINUTE,
            1,
            1_000_000,
        ) as u32,
        known_device_days: v.int(
            "defense.known_device_days",
            r.known_device_days,
            d::KNOWN_DEVICE_DAYS,
            0,
            3650,
        ) as u32,
        known_device_lock_after: v.int(
            "defense.known_device_lock_after",
            r.known_device_lock_after,
            lock_after,
            1,
            1000,
        ) as u32,
        spray_per_minute: v.int(
            "defense.spray_per_minute",
            r.spray_per_minute,
            d::SPRAY_PER_MINUTE,
            0,
            10_000_000,
        ) as u32,
        captcha_ttl: v.duration(
            "defense.captcha_ttl",
            r.captcha_ttl,
            d::CAPTCHA_TTL,
            Duration::from_secs(10),
        ),
        captcha_on_reset: r.captcha_on_reset.unwrap_or(d::CAPTCHA_ON_RESET),
        captcha_on_password_change: r
            .captcha_on_password_change
            .unwrap_or(d::CAPTCHA_ON_PASSWORD_CHANGE),
        lock_per_network: r.lock_scope.unwrap_or_default() == LockScope::AccountNetwork,
    };
    if defense.lock_max < defense.lock_duration {
        v.err(
            "defense.lock_max",
            "must not be shorter than defense.lock_duration",
        );
    }
    defense
}
