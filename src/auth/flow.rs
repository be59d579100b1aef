//! What every flow machine ([`super::signin`], [`super::second_step`]) shares:
//! the narrow dependencies they run on ([`Deps`]), what they know of the browser
//! ([`Browser`]), and the one error type for "not an answer about the person"
//! ([`AuthError`]). No `Request`, no form, no HTML: the portal parses, calls a
//! machine, and renders the typed outcome it gets back.

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::password::Hasher;
use crate::auth::sealed::Sealer;
use crate::captcha::Captchas;
use crate::clock::Clock;
use crate::config::Config;
use crate::cookies::CookieCrypto;
use crate::defense::Defense;
use crate::metrics::Metrics;
use crate::session::Sessions;
use crate::store::{Store, StoreError};
use crate::users::cache::Accounts;
use crate::users::store::AccountError;
use crate::users::User;

/// The services a flow uses, borrowed for one call. Built by the portal from the
/// gateway's state, and by the unit tests from a memory store and a fake clock.
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub store: &'a dyn Store,
    pub accounts: &'a Accounts,
    pub sessions: &'a Sessions,
    pub hasher: &'a Hasher,
    pub defense: &'a Defense,
    pub captchas: &'a Captchas,
    pub sealer: &'a Sealer,
    pub clock: &'a dyn Clock,
    pub metrics: &'a Metrics,
}

impl Deps<'_> {
    /// An audit line ([`crate::audit`]) stamped by the flow's clock.
    pub fn audit(&self, kind: &str, fields: serde_json::Value) {
        crate::audit::event(self.clock, kind, fields);
    }

    /// A name for the audit log: an account's as it is; a name no account has
    /// (`?name:...`, the key of an identifier that named none) as `unknown:` and a
    /// keyed digest of it, the same for the same text. What was typed may be a
    /// password in the wrong box, and secrets never go to the log.
    pub fn audited_name(&self, name: &str) -> String {
        match name.strip_prefix('?') {
            Some(typed) => {
                let digest = self.sealer.code_hash("audit identifier", typed);
                format!("unknown:{}", digest.get(..16).unwrap_or_default())
            }
            None => name.to_string(),
        }
    }

    /// The ladder key an account's failures count under (see [`crate::defense::account_key`]).
    pub fn ladder_key(&self, account: &str, client: IpAddr) -> String {
        crate::defense::account_key(&self.config.defense, account, client)
    }
}

/// What the browser proves with its signed cookies: nothing else of the request.
#[derive(Clone, Copy)]
pub struct Browser<'a> {
    pub cookies: &'a CookieCrypto,
    /// The `Cookie` header ("" when absent).
    pub cookie_header: &'a str,
    pub client: IpAddr,
}

impl Browser<'_> {
    /// This browser's known-device id for `user` (a complete sign-in made it one).
    pub fn known_device(&self, user: &str) -> Option<String> {
        self.cookies.known_device(self.cookie_header, user)
    }

    /// Whether this browser is remembered ("don't ask again") for `user` now.
    pub fn remembered(&self, user: &User, now: u64) -> bool {
        self.cookies
            .remembered(self.cookie_header, &user.name, user.factors_version, now)
    }
}

/// A flow could not reach an answer about the person: a service is down, or
/// data it read can't be used. Each is logged and answered deliberately by the
/// portal (see `portal::error`); none is a 500.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The store (sessions, counters, codes) can't be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The account database can't be reached (or refused a change).
    #[error(transparent)]
    Accounts(#[from] AccountError),
    /// Something stored (a pending code, an enrolment) can't be decoded or sealed:
    /// not the store being down, but data this version can't use.
    #[error("{what} can't be decoded or encoded")]
    Decode { what: &'static str },
    /// The account's stored password hash can't be read (corrupt users file or
    /// database row): the password can't be checked. The hash is never logged.
    #[error("the stored password hash of {user:?} can't be read")]
    HashUnreadable { user: String },
    /// A change to one account wasn't made (`what`: "password", ...).
    #[error("{what} not changed: {why}")]
    NotChanged {
        what: &'static str,
        why: AccountError,
    },
    /// Hashing failed for another reason than being busy.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// A failure that locked a ladder, and whose owner should hear of it.
#[derive(Debug, Clone)]
pub struct Locked {
    pub duration: std::time::Duration,
    /// The account to send the lock notice to (with its unlock link), when one is due.
    pub notify: Option<Arc<User>>,
}

/// A world for the flow machines' unit tests: memory store, fake clock, a users
/// file in a temporary folder, real hasher, ladder and CAPTCHAs.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::IpAddr;
    use std::sync::Arc;

    use super::{Browser, Deps};
    use crate::auth::password::{hash_now_with, HashParams, Hasher};
    use crate::auth::sealed::Sealer;
    use crate::captcha::Captchas;
    use crate::clock::FakeClock;
    use crate::config::Config;
    use crate::cookies::CookieCrypto;
    use crate::defense::Defense;
    use crate::metrics::Metrics;
    use crate::session::Sessions;
    use crate::store::memory::MemoryStore;
    use crate::store::DynStore;
    use crate::users::cache::Accounts;
    use crate::users::User;

    pub const PASSWORD: &str = "correct horse battery";
    pub const CLIENT: &str = "192.0.2.7";

    pub struct World {
        pub config: Config,
        pub clock: FakeClock,
        pub store: DynStore,
        pub accounts: Accounts,
        pub sessions: Sessions,
        pub hasher: Hasher,
        pub defense: Defense,
        pub captchas: Captchas,
        pub sealer: Sealer,
        pub metrics: Metrics,
        pub cookies: CookieCrypto,
        _dir: tempfile::TempDir,
    }

    /// Cheap argon2 costs: the machines, not argon2, are under test.
    pub fn cheap_hash(password: &str) -> String {
        let p = HashParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        hash_now_with(password, p).unwrap()
    }

    impl World {
        /// `extra`: config sections beyond a site and the users file.
        pub fn new(extra: &str) -> World {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("users.toml"), "").unwrap();
            let text = format!(
                "[[site]]\nhost = \"app.test\"\nupstream = \"127.0.0.1:3000\"\n\n[users]\nfile = \"users.toml\"\n{extra}"
            );
            let config = Config::from_str(&text, dir.path()).unwrap();
            let clock = FakeClock::at(1_700_000_000);
            let dyn_clock: crate::clock::DynClock = Arc::new(clock.clone());
            let store: DynStore = Arc::new(MemoryStore::with_clock(dyn_clock.clone(), 100_000));
            World {
                accounts: Accounts::open(&config.users, dyn_clock.clone()).unwrap(),
                sessions: Sessions::new(
                    store.clone(),
                    dyn_clock.clone(),
                    config.session.idle_timeout,
                    config.session.absolute_timeout,
                ),
                hasher: Hasher::new(4).unwrap(),
                defense: Defense::new(store.clone(), dyn_clock.clone(), &config.defense),
                captchas: Captchas::new(store.clone(), config.defense.captcha_ttl),
                sealer: Sealer::new(&[7u8; 32]),
                metrics: Metrics::new(),
                cookies: CookieCrypto::new(&[9u8; 64], &config.session),
                store,
                clock,
                config,
                _dir: dir,
            }
        }

        pub fn deps(&self) -> Deps<'_> {
            Deps {
                config: &self.config,
                store: &*self.store,
                accounts: &self.accounts,
                sessions: &self.sessions,
                hasher: &self.hasher,
                defense: &self.defense,
                captchas: &self.captchas,
                sealer: &self.sealer,
                clock: &self.clock,
                metrics: &self.metrics,
            }
        }

        /// A browser with `cookies` (a `Cookie` header) from [`CLIENT`].
        pub fn browser<'a>(&'a self, cookies: &'a str) -> Browser<'a> {
            Browser {
                cookies: &self.cookies,
                cookie_header: cookies,
                client: CLIENT.parse::<IpAddr>().unwrap(),
            }
        }

        /// Adds `user` (its password [`PASSWORD`] unless it has one).
        pub async fn add(&self, mut user: User) -> Arc<User> {
            if user.password.is_empty() {
                user.password = cheap_hash(PASSWORD);
            }
            let name = user.name.clone();
            self.accounts.create(user).await.unwrap();
            self.accounts.get(&name).await.unwrap().unwrap()
        }

        /// The image answer of CAPTCHA `id`.
        pub async fn captcha_answer(&self, id: &str) -> String {
            let (image, _) = self.captchas.answers_for_tests(id).await.unwrap().unwrap();
            image
        }
    }
}
