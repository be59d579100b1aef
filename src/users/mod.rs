//! Durable accounts: the [`User`] record, identifier normalisation, and the
//! in-memory [`Directory`] the gateway looks people up in.
//!
//! Owns: which identifier forms exist and how they compare (user name and email
//! case-insensitively, phone numbers as E.164). Doesn't own: passwords' hashing
//! ([`crate::auth::password`]) or where the records live ([`file`]).

pub mod cache;
pub mod file;
pub mod sql;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phone: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// argon2id PHC string; empty = no password set (cannot sign in).
    #[serde(default)]
    pub password: String,
    /// Disabled by an operator: refused like a wrong password.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Suspended, with the reason shown after a correct password (empty = not suspended).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suspended: String,
    /// Closed: the sign-in page says so after a correct password.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
    /// Bumped whenever credentials change; sessions older than a change are refused.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub credentials_version: u64,
    /// The authenticator app's secret, sealed with `data.key` (empty = none enrolled).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub totp: String,
    /// Keyed hashes of the unused backup codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backup_codes: Vec<String>,
    /// Bumped whenever second factors change; "remember this browser" cookies
    /// from before a change stop working.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub factors_version: u64,
    /// When the authenticator app was enrolled (Unix seconds; 0 = unknown or none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub totp_enrolled_at: u64,
    /// This account's identity header values, made on first use (see
    /// [`crate::identity::IdentityHeaders::header_values`]). Never stored; a copy
    /// starts empty, so a changed copy makes its own.
    #[serde(skip)]
    pub header_values: crate::identity::ValueCache,
}

/// Where an account stands. Only `Active` accounts sign in or keep sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<'a> {
    Active,
    Disabled,
    Suspended(&'a str),
    Closed,
}

impl Status<'_> {
    /// The word stored in a database and printed by the CLI.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
            Status::Suspended(_) => "suspended",
            Status::Closed => "closed",
        }
    }
}

impl User {
    /// What people are called on pages, in messages and in `Remote-Name`.
    pub fn shown_name(&self) -> &str {
        if self.display_name.is_empty() {
            &self.name
        } else {
            &self.display_name
        }
    }

    pub fn has_totp(&self) -> bool {
        !self.totp.is_empty()
    }

    /// Closed beats suspended beats disabled.
    pub fn status(&self) -> Status<'_> {
        if self.closed {
            Status::Closed
        } else if !self.suspended.is_empty() {
            Status::Suspended(&self.suspended)
        } else if self.disabled {
            Status::Disabled
        } else {
            Status::Active
        }
    }

    pub fn is_active(&self) -> bool {
        self.status() == Status::Active
    }

    /// Sets the status from its stored form (`word`, and the reason for `suspended`).
    /// Anything but `active` also ends the account's sessions (credentials version).
    pub fn set_status(&mut self, word: &str, reason: &str) -> Result<(), ProfileError> {
        let (disabled, suspended, closed) = match word {
            "active" => (false, String::new(), false),
            "disabled" => (true, String::new(), false),
            "suspended" if !reason.trim().is_empty() => (false, reason.trim().to_string(), false),
            "suspended" => return Err(ProfileError::SuspensionWithoutReason),
            "closed" => (false, String::new(), true),
            other => return Err(ProfileError::UnknownStatus(other.to_string())),
        };
        if word != "active" && word != self.status().word() {
            self.credentials_version += 1;
        }
        self.disabled = disabled;
        self.suspended = suspended;
        self.closed = closed;
        Ok(())
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("user names use 1-64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")]
    BadName,
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    #[error("{0:?} is not a phone number in international form (+ and country code)")]
    BadPhone(String),
}

/// Why an account's identifiers, profile or status can't be taken as given.
/// The messages are the ones operators have always read (CLI, users file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("a suspension needs a reason")]
    SuspensionWithoutReason,
    #[error("unknown account status {0:?}")]
    UnknownStatus(String),
    #[error("display name and groups may not hold control characters (groups no commas)")]
    ControlCharacters,
    /// `at` names where: `user name`, `user[3].name`.
    #[error("{at} {name:?}: {why}")]
    Name {
        at: String,
        name: String,
        why: IdentifierError,
    },
    #[error("user {user:?}: {why}")]
    Identifier { user: String, why: IdentifierError },
    #[error("user {user:?}: {why}")]
    Profile {
        user: String,
        why: Box<ProfileError>,
    },
    #[error("{0} {1:?} appears twice")]
    Twice(&'static str, String),
    #[error("{0} {1:?} belongs to two accounts")]
    Shared(&'static str, String),
}

/// A normalised identifier as typed on the sign-in page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    Name(String),
    Email(String),
    Phone(String),
}

impl Identifier {
    /// Classifies and normalises what someone typed. `None` when it can't be any identifier.
    pub fn parse(input: &str) -> Option<Identifier> {
        let s = input.trim();
        if s.is_empty() || s.len() > 320 {
            return None;
        }
        if s.contains('@') {
            return normalize_email(s).ok().map(Identifier::Email);
        }
        if s.starts_with('+') || (s.starts_with('(') && s.contains('+')) {
            return normalize_phone(s).ok().map(Identifier::Phone);
        }
        normalize_name(s).ok().map(Identifier::Name)
    }

    /// A stable key for counters and logs: the same for every spelling of one identifier.
    pub fn key(&self) -> String {
        match self {
            Identifier::Name(n) => format!("name:{n}"),
            Identifier::Email(e) => format!("email:{e}"),
            Identifier::Phone(p) => format!("phone:{p}"),
        }
    }
}

pub fn normalize_name(s: &str) -> Result<String, IdentifierError> {
    let n = s.trim().to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && n.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(n)
    } else {
        Err(IdentifierError::BadName)
    }
}

pub fn normalize_email(s: &str) -> Result<String, IdentifierError> {
    let e = s.trim().to_lowercase();
    let bad = || IdentifierError::BadEmail(s.to_string());
    let (local, domain) = e.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || e.len() > 254
        || e.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
        || local.contains('@')
    {
        return Err(bad());
    }
    Ok(e)
}

/// E.164: `+` and country code; spaces, dashes, dots and brackets accepted on input,
/// a national trunk prefix like `(0)` dropped.
pub fn normalize_phone(s: &str) -> Result<String, IdentifierError> {
    let bad = || IdentifierError::BadPhone(s.to_string());
    let t = s.trim();
    if !t
        .chars()
        .all(|c| c.is_ascii_digit() || " -.()+".contains(c))
        || t.matches('+').count() != 1
    {
        return Err(bad());
    }
    let number = phonenumber::parse(None, t).map_err(|_| bad())?;
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    let digits = e164.len().saturating_sub(1);
    if !e164.starts_with('+') || !(8..=15).contains(&digits) {
        return Err(bad());
    }
    Ok(e164)
}

/// Display name, groups and suspension reason end up in headers and pages: no
/// control characters (and no commas in groups).
pub fn check_profile(u: &User) -> Result<(), ProfileError> {
    let bad = |v: &str| v.chars().any(char::is_control);
    if bad(&u.display_name)
        || bad(&u.suspended)
        || u.groups.iter().any(|g| bad(g) || g.contains(','))
    {
        return Err(ProfileError::ControlCharacters);
    }
    Ok(())
}

/// Normalises an account's identifiers in place (name, email, phone), checking them.
pub fn normalize_user(u: &mut User) -> Result<(), ProfileError> {
    u.name = normalize_name(&u.name).map_err(|why| ProfileError::Name {
        at: "user name".into(),
        name: u.name.clone(),
        why,
    })?;
    let of = |u: &User| {
        let user = u.name.clone();
        move |why| ProfileError::Identifier { user, why }
    };
    if !u.email.is_empty() {
        u.email = normalize_email(&u.email).map_err(of(u))?;
    }
    if !u.phone.is_empty() {
        u.phone = normalize_phone(&u.phone).map_err(of(u))?;
    }
    check_profile(u).map_err(|why| ProfileError::Profile {
        user: u.name.clone(),
        why: Box::new(why),
    })
}

/// All accounts, indexed by every identifier form. Cheap to clone behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Shared, so a request holding its user never copies the record.
    users: Vec<Arc<User>>,
    /// foldhash: read by name on every signed-in request; keys come from the
    /// accounts themselves, never from a client.
    by_name: Index,
    by_email: Index,
    by_phone: Index,
}

type Index = HashMap<String, usize, foldhash::fast::RandomState>;

impl Directory {
    /// Builds the indexes; refuses a set where one identifier belongs to two accounts.
    pub fn new(users: Vec<User>) -> Result<Directory, ProfileError> {
        let mut d = Directory {
            users: Vec::new(),
            ..Default::default()
        };
        for (i, u) in users.iter().enumerate() {
            let name = normalize_name(&u.name).map_err(|why| ProfileError::Name {
                at: format!("user[{i}].name"),
                name: u.name.clone(),
                why,
            })?;
            let of = |why| ProfileError::Identifier {
                user: name.clone(),
                why,
            };
            check_profile(u).map_err(|why| ProfileError::Profile {
                user: name.clone(),
                why: Box::new(why),
            })?;
            if d.by_name.insert(name.clone(), i).is_some() {
                return Err(ProfileError::Twice("user name", name));
            }
            if !u.email.is_empty() {
                let email = normalize_email(&u.email).map_err(of)?;
                if d.by_email.insert(email.clone(), i).is_some() {
                    return Err(ProfileError::Shared("email", email));
                }
            }
            if !u.phone.is_empty() {
                let phone = normalize_phone(&u.phone).map_err(of)?;
                if d.by_phone.insert(phone.clone(), i).is_some() {
                    return Err(ProfileError::Shared("phone", phone));
                }
            }
        }
        d.users = users.into_iter().map(Arc::new).collect();
        Ok(d)
    }

    pub fn users(&self) -> &[Arc<User>] {
        &self.users
    }

    pub fn get(&self, name: &str) -> Option<&Arc<User>> {
        // Lower-cased copy only when needed (session records hold the stored name).
        let i = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_name.get(&name.to_ascii_lowercase())
        } else {
            self.by_name.get(name)
        };
        i.map(|&i| &self.users[i])
    }

    pub fn find(&self, id: &Identifier) -> Option<&Arc<User>> {
        let i = match id {
            Identifier::Name(n) => self.by_name.get(n),
            Identifier::Email(e) => self.by_email.get(e),
            Identifier::Phone(p) => self.by_phone.get(p),
        }?;
        self.users.get(*i)
    }

    /// Is this identifier (any form) already someone else's?
    pub fn owner_of(&self, id: &Identifier) -> Option<&str> {
        self.find(id).map(|u| u.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_table() {
        let cases = [
            ("alice", Some(Identifier::Name("alice".into()))),
            ("  Alice ", Some(Identifier::Name("alice".into()))),
            (
                "Alice@Example.COM",
                Some(Identifier::Email("alice@example.com".into())),
            ),
            (
                "+44 20 7946 0958",
                Some(Identifier::Phone("+442079460958".into())),
            ),
            (
                "+44 (0)20-7946-0958",
                Some(Identifier::Phone("+442079460958".into())),
            ),
            (
                "+1 (415) 555-2671",
                Some(Identifier::Phone("+14155552671".into())),
            ),
            (
                "+1.415.555.2671",
                Some(Identifier::Phone("+14155552671".into())),
            ),
            ("", None),
            ("bad name!", None),
            ("@nope", None),
            ("+12", None),
            ("+1 415 555 2671 ext 3", None),
        ];
        for (input, want) in cases {
            assert_eq!(Identifier::parse(input), want, "input {input:?}");
        }
    }

    #[test]
    fn normalisation_is_idempotent() {
        for p in ["+44 20 7946 0958", "+1 (415) 555-2671"] {
            let once = normalize_phone(p).unwrap();
            assert_eq!(normalize_phone(&once).unwrap(), once);
        }
        let e = normalize_email("A.B@C.Example").unwrap();
        assert_eq!(normalize_email(&e).unwrap(), e);
    }

    #[test]
    fn directory_finds_every_form_and_refuses_duplicates() {
        let alice = User {
            name: "alice".into(),
            email: "Alice@Example.com".into(),
            phone: "+1 415 555 2671".into(),
            ..Default::default()
        };
        let d = Directory::new(vec![alice.clone()]).unwrap();
        for input in ["ALICE", "alice@example.com", "+1 (415) 555-2671"] {
            assert_eq!(
                d.find(&Identifier::parse(input).unwrap())
                    .map(|u| u.name.as_str()),
                Some("alice")
            );
        }
        let bob = User {
            name: "bob".into(),
            email: "alice@EXAMPLE.com".into(),
            ..Default::default()
        };
        assert!(Directory::new(vec![alice, bob]).is_err());
    }

    #[test]
    fn statuses_and_what_they_end() {
        let mut u = User::default();
        assert_eq!(u.status(), Status::Active);
        u.set_status("suspended", " unpaid ").unwrap();
        assert_eq!(u.status(), Status::Suspended("unpaid"));
        assert_eq!(u.credentials_version, 1, "leaving active ends the sessions");
        assert!(u.set_status("suspended", "  ").is_err());
        assert!(u.set_status("frozen", "").is_err());
        u.set_status("closed", "").unwrap();
        assert_eq!((u.status(), u.suspended.as_str()), (Status::Closed, ""));
        assert_eq!(u.credentials_version, 2);
        u.set_status("active", "").unwrap();
        assert!(u.is_active());
        assert_eq!(u.credentials_version, 2, "old sessions stay ended");
        u.set_status("disabled", "").unwrap();
        assert_eq!(u.status().word(), "disabled");
        // A suspension reason ends up on a page: no control characters.
        u.suspended = "a\r\nb".into();
        assert!(check_profile(&u).is_err());
    }

    #[test]
    fn names_and_groups_cannot_inject_headers() {
        let evil = User {
            name: "eve".into(),
            display_name: "Eve\r\nRemote-User: admin".into(),
            ..Default::default()
        };
        assert!(Directory::new(vec![evil]).is_err());
        let comma = User {
            name: "eve".into(),
            groups: vec!["a,admins".into()],
            ..Default::default()
        };
        assert!(Directory::new(vec![comma]).is_err());
        let zoe = User {
            name: "zoe".into(),
            display_name: "Zoë Ünal".into(),
            ..Default::default()
        };
        assert!(Directory::new(vec![zoe]).is_ok(), "UTF-8 names are fine");
    }
}

debug_hiding!(User { name, display_name, email, phone, groups, disabled, suspended, closed, credentials_version, factors_version, totp_enrolled_at } hides { password, totp, backup_codes });

#[cfg(test)]
mod debug_tests {
    #[test]
    fn a_users_debug_output_hides_the_hash_and_factors() {
        let u = super::User {
            name: "alice".into(),
            password: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            totp: "sealed-totp".into(),
            backup_codes: vec!["code-hash".into()],
            ..Default::default()
        };
        let shown = format!("{u:?}");
        assert!(shown.contains("alice"), "{shown}");
        for secret in ["argon2id", "sealed-totp", "code-hash"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

#[cfg(test)]
mod profile_error_tests {
    use super::*;

    /// Operators read these in the CLI and in users-file errors: the wording is kept.
    #[test]
    fn typed_errors_keep_the_messages_operators_read() {
        let mut u = User {
            name: "alice".into(),
            ..Default::default()
        };
        let e = u.set_status("frozen", "").unwrap_err();
        assert_eq!(e, ProfileError::UnknownStatus("frozen".into()));
        assert_eq!(e.to_string(), "unknown account status \"frozen\"");
        let e = u.set_status("suspended", " ").unwrap_err();
        assert_eq!(e.to_string(), "a suspension needs a reason");
        let twin = |email: &str| User {
            name: format!("u{}", email.len()),
            email: email.into(),
            ..Default::default()
        };
        let e = Directory::new(vec![twin("a@x.org"), twin("A@x.org ")]).unwrap_err();
        assert_eq!(e.to_string(), "email \"a@x.org\" belongs to two accounts");
        let e = Directory::new(vec![u.clone(), u.clone()]).unwrap_err();
        assert_eq!(e.to_string(), "user name \"alice\" appears twice");
        let bad = User {
            name: "-x".into(),
            ..Default::default()
        };
        let e = Directory::new(vec![bad.clone()]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("user[0].name \"-x\": user names use"),
            "{e}"
        );
        let e = normalize_user(&mut bad.clone()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("user name \"-x\": user names use"),
            "{e}"
        );
        let mut bad = User {
            name: "bob".into(),
            phone: "12".into(),
            ..Default::default()
        };
        let e = normalize_user(&mut bad).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("user \"bob\": \"12\" is not a phone"),
            "{e}"
        );
    }
}
