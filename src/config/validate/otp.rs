//! `[otp]`: sent codes, authenticator apps, and who must use a second factor.

use std::time::Duration;

use super::Problems;
use crate::config::defaults::otp as d;
use crate::config::raw::RawOtp;
use crate::config::OtpConfig;

const SECOND: Duration = Duration::from_secs(1);
/// The longest `totp_period`.
const TOTP_PERIOD_MAX: Duration = Duration::from_secs(300);

pub fn validate(o: &RawOtp, v: &mut Problems<'_>) -> OtpConfig {
    let totp_period = v.duration(
        "otp.totp_period",
        o.totp_period,
        d::TOTP_PERIOD,
        Duration::from_secs(15),
    );
    if totp_period > TOTP_PERIOD_MAX {
        v.err("otp.totp_period", "must be at most 5m");
    }
    OtpConfig {
        code_ttl: v.duration("otp.code_ttl", o.code_ttl, d::CODE_TTL, SECOND),
        code_length: v.int("otp.code_length", o.code_length, d::CODE_LENGTH, 6, 10) as u32,
        max_attempts: v.int("otp.max_attempts", o.max_attempts, d::MAX_ATTEMPTS, 1, 100) as u32,
        totp_issuer: issuer(o.totp_issuer.as_deref(), v),
        totp_algorithm: o.totp_algorithm.map_or(d::TOTP_ALGORITHM, |a| a.0),
        totp_digits: v.int("otp.totp_digits", o.totp_digits, d::TOTP_DIGITS, 6, 8) as u32,
        totp_period: totp_period.as_secs(),
        require: o.require.unwrap_or(d::REQUIRE),
        require_groups: o.require_groups.clone().unwrap_or_default(),
        remember_days: v.int(
            "otp.remember_days",
            o.remember_days,
            d::REMEMBER_DAYS,
            0,
            400,
        ) as u32,
        reauth_after: v.duration("otp.reauth_after", o.reauth_after, d::REAUTH_AFTER, SECOND),
        send_limit: v.int("otp.send_limit", o.send_limit, d::SEND_LIMIT, 1, 1000) as u32,
        send_limit_client: v.int(
            "otp.send_limit_client",
            o.send_limit_client,
            d::SEND_LIMIT_CLIENT,
            1,
            100_000,
        ) as u32,
        send_window: v.duration("otp.send_window", o.send_window, d::SEND_WINDOW, SECOND),
        resend_after: v.duration(
            "otp.resend_after",
            o.resend_after,
            d::RESEND_AFTER,
            Duration::ZERO,
        ),
    }
}

/// The name in `otpauth://` URIs: non-empty, without `:` (the label's separator).
fn issuer(raw: Option<&str>, v: &mut Problems<'_>) -> String {
    match raw {
        Some(i) if i.trim().is_empty() || i.contains(':') || i.chars().any(char::is_control) => {
            v.err("otp.totp_issuer", "must be a non-empty name without ':'");
            d::TOTP_ISSUER.into()
        }
        Some(i) => i.to_string(),
        None => d::TOTP_ISSUER.into(),
    }
}
