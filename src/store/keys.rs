//! The key schema: every key the gateway writes to its store, built here and
//! nowhere else. With Redis these are visible to operators (`store.key_prefix`,
//! default `portcullis:`, is put in front of each), so the strings below are a
//! contract: change one and every gateway sharing the Redis must change with it.
//!
//! | key | value | lives for |
//! |---|---|---|
//! | `sess:{handle}` | session record (JSON) | `session.idle_timeout` (refreshed) |
//! | `usess:{user}` | set of the account's session handles | as its sessions |
//! | `agent:{handle}` | the session's browser and system ("Firefox on Windows") | `session.absolute_timeout` |
//! | `captcha:{id}` | CAPTCHA answers and pre-session (JSON) | `defense.captcha_ttl` |
//! | `df:acct:{account}` | failed sign-ins of an account | `defense.window` |
//! | `df:lock:{account}` | lock deadline (Unix s) | the lock |
//! | `df:lock:{account}:n` | locks so far (each doubles the next) | `defense.lock_max` |
//! | `df:dev:{account}:{device}` | failures on a known device | `defense.window` |
//! | `df:lockdev:{account}:{device}` | a known device's lock (and `:n`) | the lock |
//! | `df:client:{network}` | failures from a client network | `defense.window` |
//! | `df:spray:{minute}` | distinct unknown names tried in a minute | `defense.window` |
//! | `df:index:accounts`, `df:index:clients` | sets, for `portcullis lock list` | `defense.window` |
//! | `otp:{handle}` | one-time code sent for a pending sign-in (keyed hash) | `otp.code_ttl` |
//! | `otp:{handle}:n` | tries at that code | `otp.send_window` |
//! | `enrol:{handle}` | authenticator secret being set up (sealed) | 15 min |
//! | `totp:{user}:{secret fingerprint}:{step}` | a used TOTP step (no replay) | 4 steps |
//! | `otpsend:cool:{handle}:{method}` | resend pacing | `otp.resend_after` |
//! | `otpsend:acct:{user}`, `otpsend:dest:{hash}`, `otpsend:ip:{network}` | codes sent | `otp.send_window` |
//! | `unlock:{id}` | account named by an unlock link in a lock notice | `defense.lock_max` or more |
//! | `reset:pre:{pre-session}` | the account a reset is for | `otp.code_ttl` |
//! | `reset:acct:{user}` | the reset code (keyed hash) | `otp.code_ttl` |
//! | `reset:tries:{user}` | tries at it | `otp.code_ttl` |
//! | `reset:sent:{user}` | reset codes sent | `otp.send_window` |
//! | `session-invalidate` | a pub/sub **channel**, not a key: handles of changed or removed sessions ([`crate::session::INVALIDATE_CHANNEL`]) | — |
//!
//! Account names are lowercase; `{network}` is an IPv4 address or an IPv6 /64
//! ([`crate::defense::client_key`]); handles and ids are random URL-safe strings.

/// A session's record.
pub fn session(handle: &str) -> String {
    format!("sess:{handle}")
}

/// The set of an account's session handles.
pub fn user_sessions(user: &str) -> String {
    format!("usess:{user}")
}

/// Which browser and system a session runs in, for the account page.
pub fn session_agent(handle: &str) -> String {
    format!("agent:{handle}")
}

/// A CAPTCHA challenge.
pub fn captcha(id: &str) -> String {
    format!("captcha:{id}")
}

/// How many times a lock key (`df:lock:..`, `df:lockdev:..`) has been set.
pub fn lock_repeats(lock: &str) -> String {
    format!("{lock}:n")
}

/// Failed sign-ins of an account (or account@network).
pub fn account_failures(account: &str) -> String {
    format!("df:acct:{account}")
}

/// An account's lock.
pub fn account_lock(account: &str) -> String {
    format!("df:lock:{account}")
}

/// Failed sign-ins of an account on one known device.
pub fn device_failures(account: &str, device: &str) -> String {
    format!("df:dev:{account}:{device}")
}

/// An account's lock on one known device.
pub fn device_lock(account: &str, device: &str) -> String {
    format!("df:lockdev:{account}:{device}")
}

/// Failed sign-ins from a client network.
pub fn client_failures(network: &str) -> String {
    format!("df:client:{network}")
}

/// Unknown names tried in one minute (Unix minutes).
pub fn spray(minute: u64) -> String {
    format!("df:spray:{minute}")
}

/// The accounts with failures or locks (for `portcullis lock list`).
pub const DEFENSE_ACCOUNTS: &str = "df:index:accounts";
/// The client networks with failures (for `portcullis lock list`).
pub const DEFENSE_CLIENTS: &str = "df:index:clients";

/// The one-time code sent for a pending sign-in.
pub fn sign_in_code(handle: &str) -> String {
    format!("otp:{handle}")
}

/// Tries at a code (`otp:..`), surviving a resend.
pub fn code_tries(code_key: &str) -> String {
    format!("{code_key}:n")
}

/// The authenticator secret being set up by a session.
pub fn enrolment(handle: &str) -> String {
    format!("enrol:{handle}")
}

/// A TOTP step used by an account with one app (`fingerprint`: 16 hex digits of
/// the secret's keyed hash).
pub fn totp_step_used(user: &str, fingerprint: &str, step: u64) -> String {
    format!("totp:{user}:{fingerprint}:{step}")
}

/// Pacing of code resends for a pending sign-in and method (`email`, `sms`, `voice`).
pub fn send_cooldown(handle: &str, method: &str) -> String {
    format!("otpsend:cool:{handle}:{method}")
}

/// Codes sent for an account.
pub fn sent_to_account(user: &str) -> String {
    format!("otpsend:acct:{user}")
}

/// Codes sent to a destination (`hash`: 32 hex digits of its keyed hash).
pub fn sent_to_destination(hash: &str) -> String {
    format!("otpsend:dest:{hash}")
}

/// Codes sent on behalf of a client network.
pub fn sent_for_client(network: &str) -> String {
    format!("otpsend:ip:{network}")
}

/// The account an unlock link (in a lock notice) is for.
pub fn unlock(id: &str) -> String {
    format!("unlock:{id}")
}

/// The account a password reset started in a pre-session is for.
pub fn reset_for(pre: &str) -> String {
    format!("reset:pre:{pre}")
}

/// An account's pending reset code.
pub fn reset_code(user: &str) -> String {
    format!("reset:acct:{user}")
}

/// Tries at an account's reset code.
pub fn reset_tries(user: &str) -> String {
    format!("reset:tries:{user}")
}

/// Reset codes sent for an account.
pub fn resets_sent(user: &str) -> String {
    format!("reset:sent:{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings are a contract with operators and with other gateways on the
    /// same Redis: they must never change by accident.
    #[test]
    fn the_schema_is_stable() {
        let cases = [
            (session("h"), "sess:h"),
            (user_sessions("alice"), "usess:alice"),
            (captcha("c"), "captcha:c"),
            (account_failures("alice"), "df:acct:alice"),
            (account_lock("alice"), "df:lock:alice"),
            (lock_repeats(&account_lock("alice")), "df:lock:alice:n"),
            (device_failures("alice", "d"), "df:dev:alice:d"),
            (device_lock("alice", "d"), "df:lockdev:alice:d"),
            (client_failures("192.0.2.1"), "df:client:192.0.2.1"),
            (spray(7), "df:spray:7"),
            (DEFENSE_ACCOUNTS.into(), "df:index:accounts"),
            (DEFENSE_CLIENTS.into(), "df:index:clients"),
            (sign_in_code("h"), "otp:h"),
            (code_tries(&sign_in_code("h")), "otp:h:n"),
            (enrolment("h"), "enrol:h"),
            (totp_step_used("alice", "0123", 9), "totp:alice:0123:9"),
            (send_cooldown("h", "sms"), "otpsend:cool:h:sms"),
            (sent_to_account("alice"), "otpsend:acct:alice"),
            (sent_to_destination("ab"), "otpsend:dest:ab"),
            (
                sent_for_client("2001:db8:0:0::/64"),
                "otpsend:ip:2001:db8:0:0::/64",
            ),
            (unlock("u"), "unlock:u"),
            (reset_for("p"), "reset:pre:p"),
            (reset_code("alice"), "reset:acct:alice"),
            (reset_tries("alice"), "reset:tries:alice"),
            (resets_sent("alice"), "reset:sent:alice"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
