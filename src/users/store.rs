//! The account store interface: one trait, three backends — the users file
//! ([`super::file::FileAccounts`]), SQLite and PostgreSQL ([`super::sql::SqlAccounts`]).
//!
//! Owns: what an account store must guarantee — uniqueness of every identifier,
//! changes that commit whole or not at all, backup codes used at most once, and an
//! append-only event log. Doesn't own: caching and change propagation between
//! gateways ([`super::cache::Accounts`]).

use async_trait::async_trait;

use super::{Identifier, User};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The database (or users file) can't be reached or written: retry later.
    #[error("account store unavailable: {0}")]
    Unavailable(String),
    /// An identifier (name, email or phone) already belongs to another account.
    #[error("{0}")]
    Conflict(String),
    #[error("no user named {0:?}")]
    NotFound(String),
    /// The change itself was refused (bad value); nothing was written.
    #[error("{0}")]
    Invalid(String),
}

/// One line of an account's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    pub name: String,
    /// Unix seconds.
    pub at: u64,
    /// `signin_ok`, `signin_failed`, `password_changed`, `factors_changed`, `status_changed`, ...
    pub kind: String,
    /// The client address, or `cli`.
    pub client: String,
    pub detail: String,
}

impl AccountEvent {
    pub fn now(
        clock: &dyn crate::clock::Clock,
        name: &str,
        kind: &str,
        client: &str,
        detail: &str,
    ) -> AccountEvent {
        AccountEvent {
            name: name.to_string(),
            at: clock.now(),
            kind: kind.to_string(),
            client: client.to_string(),
            detail: detail.to_string(),
        }
    }
}

/// A change to one account, applied to its current record inside the store's
/// transaction. An `Err` leaves the account untouched.
pub type Change = Box<dyn FnOnce(&mut User) -> Result<(), super::ProfileError> + Send>;

/// What `import` did with one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Created,
    Updated,
    Unchanged,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The account called `name` (normalised lower-case).
    async fn get(&self, name: &str) -> Result<Option<User>, AccountError>;
    /// The account an identifier (name, email or phone) names.
    async fn find(&self, id: &Identifier) -> Result<Option<User>, AccountError>;
    /// Every account, by name (CLI list and export; never on a request path).
    async fn list(&self) -> Result<Vec<User>, AccountError>;
    /// A new account; [`AccountError::Conflict`] when any identifier is taken.
    async fn create(&self, user: User) -> Result<(), AccountError>;
    /// Applies `change` to the current record atomically and returns the new one.
    async fn modify(&self, name: &str, change: Change) -> Result<User, AccountError>;
    /// `false` when there was no such account.
    async fn delete(&self, name: &str) -> Result<bool, AccountError>;
    /// Removes the backup code with keyed hash `code_hash`: `Some(codes left)` for
    /// the one caller that removed it, `None` for everyone else.
    async fn consume_backup_code(
        &self,
        name: &str,
        code_hash: &str,
    ) -> Result<Option<usize>, AccountError>;
    /// Creates or replaces the account as given (import); idempotent.
    async fn import(&self, user: User) -> Result<Imported, AccountError>;
    /// Imports many accounts: one result per account (a conflict refuses that account
    /// only); `Err` when the store itself failed.
    async fn import_many(
        &self,
        users: Vec<User>,
    ) -> Result<Vec<Result<Imported, AccountError>>, AccountError> {
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            match self.import(u).await {
                Err(e @ AccountError::Unavailable(_)) => return Err(e),
                r => out.push(r),
            }
        }
        Ok(out)
    }
    /// Appends to the account's history.
    async fn record(&self, event: AccountEvent) -> Result<(), AccountError>;
    /// The account's latest `limit` events, newest first.
    async fn events(&self, name: &str, limit: usize) -> Result<Vec<AccountEvent>, AccountError>;
}

/// Checks and normalises a record about to be imported: like [`prepare`], but a
/// name that normalisation would change can't carry an authenticator secret or
/// backup codes (both are bound to the name as written, so they would stop
/// working silently): that account is reported, not imported.
pub fn prepare_import(user: User) -> Result<User, AccountError> {
    if let Ok(normal) = super::normalize_name(&user.name) {
        if normal != user.name && (user.has_totp() || !user.backup_codes.is_empty()) {
            return Err(AccountError::Invalid(format!(
                "user {:?}: its authenticator app and backup codes are bound to the name as \
                 written, which the database stores as {normal:?}; reset its second factors \
                 (`portcullis user reset-2fa`) or rename it before importing",
                user.name
            )));
        }
    }
    prepare(user)
}

/// An imported record over the stored one: its versions are the stored ones (an
/// old export can't bring old sessions back to life, and importing the same file
/// twice changes nothing), and a changed password, status or set of second factors
/// ends what came before, as any other change does.
pub fn carry_versions(stored: &User, user: &mut User) {
    let status = |u: &User| (u.disabled, u.closed, u.suspended.clone());
    user.credentials_version = stored.credentials_version;
    if stored.password != user.password || status(stored) != status(user) {
        user.credentials_version = stored.credentials_version + 1;
    }
    user.factors_version = stored.factors_version;
    if stored.totp != user.totp || stored.backup_codes != user.backup_codes {
        user.factors_version = stored.factors_version + 1;
    }
}

/// A new account's versions: random, never those of an account deleted before it.
/// Sessions and "remember this browser" cookies name the account by name and
/// version, so an account created under a name that was used before must not
/// take over what the old one left behind (a session its deletion missed, while
/// the session store was unreachable or a sign-in was racing it). Below 2^53, so
/// that every format they are stored in (TOML, SQL, JSON) reads them exactly.
pub fn fresh_versions(user: &mut User) {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    user.credentials_version = rng.gen_range(1..1u64 << 53);
    user.factors_version = rng.gen_range(1..1u64 << 53);
}

/// A record about to be stored as a new account ([`prepare`], with
/// [`fresh_versions`]).
pub fn prepare_new(user: User) -> Result<User, AccountError> {
    let mut user = prepare(user)?;
    fresh_versions(&mut user);
    Ok(user)
}

/// Checks and normalises a record about to be stored.
pub fn prepare(mut user: User) -> Result<User, AccountError> {
    super::normalize_user(&mut user).map_err(|e| AccountError::Invalid(e.to_string()))?;
    user.backup_codes.sort();
    user.backup_codes.dedup();
    Ok(user)
}

#[cfg(test)]
mod import_tests {
    use super::*;

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            password: "$argon2id$old".into(),
            credentials_version: 5,
            factors_version: 2,
            ..Default::default()
        }
    }

    #[test]
    fn an_old_export_never_lowers_the_versions() {
        let stored = user("alice");
        let mut old = user("alice");
        old.credentials_version = 1;
        old.factors_version = 0;
        carry_versions(&stored, &mut old);
        assert_eq!((old.credentials_version, old.factors_version), (5, 2));
        assert_eq!(old, stored, "same data: unchanged");
        // Nor moves them on: the same file imported again changes nothing.
        let mut later = user("alice");
        later.credentials_version = 9;
        later.factors_version = 7;
        carry_versions(&stored, &mut later);
        assert_eq!(later, stored, "same data, other versions: unchanged");
    }

    #[test]
    fn a_new_account_never_takes_up_the_versions_of_one_deleted_before() {
        // What a deleted account's leftover session or remembered browser carries.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..64 {
            let u = prepare_new(user("alice")).unwrap();
            assert!(u.credentials_version > 0 && u.credentials_version < 1 << 53);
            assert!(u.factors_version > 0 && u.factors_version < 1 << 53);
            assert_ne!((u.credentials_version, u.factors_version), (5, 2));
            assert!(seen.insert(u.credentials_version), "drawn afresh each time");
        }
    }

    #[test]
    fn a_changed_password_status_or_factor_ends_what_came_before() {
        let stored = user("alice");
        let mut next = user("alice");
        next.password = "$argon2id$new".into();
        carry_versions(&stored, &mut next);
        assert_eq!(next.credentials_version, 6);
        let mut next = user("alice");
        next.disabled = true;
        carry_versions(&stored, &mut next);
        assert_eq!(next.credentials_version, 6);
        let mut next = user("alice");
        next.backup_codes = vec!["h".into()];
        carry_versions(&stored, &mut next);
        assert_eq!((next.credentials_version, next.factors_version), (5, 3));
    }

    #[test]
    fn a_name_with_capitals_and_bound_secrets_is_reported() {
        let mut u = user("Alice");
        assert_eq!(
            prepare_import(u.clone()).map(|u| u.name),
            Ok("alice".into())
        );
        u.backup_codes = vec!["h".into()];
        let e = prepare_import(u)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("bound to the name"), "{e}");
    }
}
