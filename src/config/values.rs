//! Typed values of the file format: durations and the closed sets of words
//! (`backend = "redis"`, `same_site = "lax"`, ...), read by serde while the file
//! is parsed ([`super::parse`]).
//!
//! A value that doesn't read is a problem of its key: serde's error carries the
//! message written here (`"mongo" is not one of memory, redis`), and
//! [`super::parse`] prefixes the key path — so a bad word names its key and the
//! allowed words, as it did when these were strings matched by the validators.
//! A value of the wrong TOML type reads `invalid type: integer `5`, expected a
//! string`, as for any string key.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::{NotifyBackend, Require, SameSite, SmtpSecurity, TotpAlgorithm};
use crate::policy::Policy;

/// Parses `"90s"`, `"15m"`, `"12h"`, `"30d"` (and anything humantime accepts).
pub fn parse_duration(s: &str) -> Result<Duration, NotADuration> {
    let d = humantime::parse_duration(s.trim()).map_err(|_| NotADuration::Unreadable(s.into()))?;
    if d > MAX_DURATION {
        return Err(NotADuration::TooLong(s.into()));
    }
    Ok(d)
}

/// The longest duration a setting takes: 100 years (of 365.25 days, as `"100y"` reads). Beyond it nothing changes for
/// anyone alive, and the gateway's arithmetic on durations (a lock's doubling, the
/// store's expiry times) must never overflow (attack pass: `lock_max = "300000000000y"`
/// made the second lock panic).
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// A config value that [`parse_duration`] doesn't take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotADuration {
    #[error("{0:?} is not a duration (use e.g. \"90s\", \"15m\", \"12h\", \"30d\")")]
    Unreadable(String),
    #[error("{0:?} is longer than any setting needs (at most 100 years, \"100y\")")]
    TooLong(String),
}

/// A duration as written in the file: a string [`parse_duration`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// Reads a string with `parse` and reports `parse`'s error as the key's problem.
struct WordVisitor<T>(fn(&str) -> Result<T, String>);

impl<T> Visitor<'_> for WordVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.0)(s).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(WordVisitor(|s| {
            parse_duration(s)
                .map(HumanDuration)
                .map_err(|e| e.to_string())
        }))
    }
}

/// A closed set of words a key takes.
pub trait Choice: Sized {
    /// The value `word` names, if any.
    fn from_word(word: &str) -> Option<Self>;
    /// The problem reported for a word that names nothing (it lists the allowed words).
    fn unknown(word: &str) -> String;
}

/// `impl Deserialize` through [`Choice`] (from a string only).
macro_rules! deserialize_choice {
    ($($t:ty),+ $(,)?) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(WordVisitor(|s| {
                    <$t as Choice>::from_word(s).ok_or_else(|| <$t as Choice>::unknown(s))
                }))
            }
        }
    )+};
}

deserialize_choice!(
    SameSite,
    StoreKind,
    UsersKind,
    LockScope,
    TotpAlgorithmSetting,
    Require,
    NotifyBackend,
    ChannelRoute,
    SmtpSecurity,
    PolicySetting,
);

/// `session.same_site`, in any letter case.
impl Choice for SameSite {
    fn from_word(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "lax" => Some(SameSite::Lax),
            "strict" => Some(SameSite::Strict),
            "none" => Some(SameSite::None),
            _ => None,
        }
    }
    fn unknown(word: &str) -> String {
        format!(
            "{:?} is not one of lax, strict, none",
            word.to_ascii_lowercase()
        )
    }
}

/// `store.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKind {
    #[default]
    Memory,
    Redis,
}

impl Choice for StoreKind {
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "memory" => Some(StoreKind::Memory),
            "redis" => Some(StoreKind::Redis),
            _ => None,
        }
    }
    fn unknown(word: &str) -> String {
        format!("{word:?} is not one of memory, redis")
    }
}

/// `users.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsersKind {
    /// A config from before databases keeps its meaning.
    #[default]
    File,
    Sqlite,
    Postgres,
}

impl Choice for UsersKind {
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "file" => Some(UsersKind::File),
            "sqlite" => Some(UsersKind::Sqlite),
            "postgres" => Some(UsersKind::Postgres),
            _ => None,
        }
    }
    fn unknown(word: &str) -> String {
        format!("{word:?} is not supported (file, sqlite or postgres)")
    }
}

/// `defense.lock_scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockScope {
    /// A lock applies to the whole account.
    #[default]
    Account,
    /// A lock applies to the account as seen from one client network.
    AccountNetwork,
}

impl Choice for LockScope {
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "account" => Some(LockScope::Account),
            "account_network" => Some(LockScope::AccountNetwork),
            _ => None,
        }
    }
    fn unknown(word: &str) -> String {
        format!("{word:?} is not one of account, account_network")
    }
}

/// `otp.totp_algorithm`, in any letter case. (A wrapper: [`TotpAlgorithm`]'s own
/// serde form is the one enrolments are stored with.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpAlgorithmSetting(pub TotpAlgorithm);

impl Choice for TotpAlgorithmSetting {
    fn from_word(word: &str) -> Option<Self> {
        match word.to_ascii_uppercase().as_str() {
            "SHA1" => Some(Self(TotpAlgorithm::Sha1)),
            "SHA256" => Some(Self(TotpAlgorithm::Sha256)),
            "SHA512" => Some(Self(TotpAlgorithm::Sha512)),
            _ => None,
        }
    }
    fn unknown(word: &str) -> String {
        format!(
            "{:?} is not one of SHA1, SHA256, SHA512",
            word.to_ascii_uppercase()
        )
    }
}

/// `otp.require`.
impl Choice for Require {
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "optional" => Some(Require::Optional),
            "required" => Some(Require::Required),
            _ => None,
        }
    }
    fn unknown(word: &str) -> String {
        format!("{word:?} is not one of optional, required")
    }
}

/// `notify.backend`.
impl Choice for NotifyBackend {
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "file" => Some(NotifyBackend::File),
            "log" => Some(NotifyBackend::Log),
            "smtp" => Some(NotifyBackend::Smtp),
            "webhook" => Some(NotifyBackend::Webhook),
            _ => None,
        }
    }
    fn unknown(word: &str) -> String {
        format!("{word:?} is not one of file, log, smtp, webhook")
    }
}

/// `notify.email`, `notify.sms`, `notify.voice`: a backend, or `"none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelRoute {
    /// `"none"`: the channel is not offered.
    Off,
    By(NotifyBackend),
}

impl Choice for ChannelRoute {
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "none" => Some(ChannelRoute::Off),
            _ => NotifyBackend::from_word(word).map(ChannelRoute::By),
        }
    }
    fn unknown(word: &str) -> String {
        format!("{word:?} is not one of file, log, smtp, webhook, none")
    }
}

/// `notify.smtp.security`.
impl Choice for SmtpSecurity {
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "starttls" => Some(SmtpSecurity::StartTls),
            "tls" => Some(SmtpSecurity::Tls),
            "none" => Some(SmtpSecurity::None),
            _ => None,
        }
    }
    fn unknown(word: &str) -> String {
        format!("{word:?} is not one of starttls, tls, none")
    }
}

/// `access.default_policy`, `[[rule]].policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySetting(pub Policy);

impl Choice for PolicySetting {
    fn from_word(word: &str) -> Option<Self> {
        Policy::parse(word).map(Self)
    }
    fn unknown(word: &str) -> String {
        format!("{word:?} is not one of bypass, one_factor, two_factor, deny")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct One<T> {
        v: T,
    }

    fn read<T: serde::de::DeserializeOwned>(toml: &str) -> Result<T, String> {
        toml::from_str::<One<T>>(toml)
            .map(|o| o.v)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn durations_read_todays_spellings_and_refuse_the_rest() {
        for (s, secs) in [
            ("90s", 90),
            ("15m", 900),
            ("12h", 43_200),
            ("30d", 2_592_000),
            (" 5s ", 5),
            ("1h 30m", 5400),
            ("0s", 0),
        ] {
            let d: HumanDuration = read(&format!("v = {s:?}")).unwrap();
            assert_eq!(d.0, Duration::from_secs(secs), "{s}");
        }
        assert_eq!(
            read::<HumanDuration>("v = \"soon\"").unwrap_err(),
            "\"soon\" is not a duration (use e.g. \"90s\", \"15m\", \"12h\", \"30d\")"
        );
        assert!(read::<HumanDuration>("v = \"-1s\"").is_err());
        assert_eq!(
            read::<HumanDuration>("v = \"300000000000y\"").unwrap_err(),
            "\"300000000000y\" is longer than any setting needs (at most 100 years, \"100y\")"
        );
        let most: HumanDuration = read("v = \"100y\"").unwrap();
        assert_eq!(most.0, MAX_DURATION);
        assert!(read::<HumanDuration>("v = \"100y 1s\"").is_err());
        assert_eq!(
            read::<HumanDuration>("v = 5").unwrap_err(),
            "invalid type: integer `5`, expected a string"
        );
    }

    #[test]
    fn words_name_the_allowed_values() {
        assert_eq!(read::<SameSite>("v = \"STRICT\""), Ok(SameSite::Strict));
        assert_eq!(
            read::<SameSite>("v = \"Loose\"").unwrap_err(),
            "\"loose\" is not one of lax, strict, none"
        );
        assert_eq!(
            read::<TotpAlgorithmSetting>("v = \"sha512\"").map(|a| a.0),
            Ok(TotpAlgorithm::Sha512)
        );
        assert_eq!(
            read::<TotpAlgorithmSetting>("v = \"md5\"").unwrap_err(),
            "\"MD5\" is not one of SHA1, SHA256, SHA512"
        );
        assert_eq!(
            read::<StoreKind>("v = \"mongo\"").unwrap_err(),
            "\"mongo\" is not one of memory, redis"
        );
        // Case matters where it always did.
        assert!(read::<StoreKind>("v = \"Redis\"").is_err());
        assert_eq!(
            read::<UsersKind>("v = \"ldap\"").unwrap_err(),
            "\"ldap\" is not supported (file, sqlite or postgres)"
        );
        assert_eq!(read::<ChannelRoute>("v = \"none\""), Ok(ChannelRoute::Off));
        assert_eq!(
            read::<ChannelRoute>("v = \"webhook\""),
            Ok(ChannelRoute::By(NotifyBackend::Webhook))
        );
        assert_eq!(
            read::<ChannelRoute>("v = \"pigeon\"").unwrap_err(),
            "\"pigeon\" is not one of file, log, smtp, webhook, none"
        );
        assert_eq!(
            read::<PolicySetting>("v = \"Deny\"").unwrap_err(),
            "\"Deny\" is not one of bypass, one_factor, two_factor, deny"
        );
        assert_eq!(
            read::<LockScope>("v = \"account_network\""),
            Ok(LockScope::AccountNetwork)
        );
        assert_eq!(
            read::<Require>("v = 1").unwrap_err(),
            "invalid type: integer `1`, expected a string"
        );
    }
}
