//! The gateway's shared state: what every request can see. Built once at start;
//! the reloadable parts (config rules and sites, users, templates) sit behind
//! `ArcSwap` so a reload never blocks or drops a request.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::auth::password::Hasher;
use crate::clock::{Clock, DynClock, SystemClock};
use crate::config::{Config, StoreBackend};
use crate::cookies::CookieCrypto;
use crate::metrics::Metrics;
use crate::policy::{self, Decision, Factors, Subject};
use crate::redirect::RedirectPolicy;
use crate::secrets::Secrets;
use crate::session::{Lookup, SessionId, SessionRecord, Sessions};
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::{DynStore, StoreError};
use crate::ui::Ui;
use crate::users::cache::Accounts;
use crate::users::User;

/// The request path's part of the shared state: what the proxy, forward-auth
/// and every session lookup need (config snapshot, accounts, sessions, cookies,
/// metrics, the clock, assertion keys). Knows nothing of pages, templates,
/// messages or the brute-force ladder.
pub struct Core {
    /// Replaced only by [`App::reload`]'s store, which also renumbers it
    /// ([`Core::config_now`]).
    pub config: ArcSwap<Config>,
    /// The number of the config in `config`: new with every store
    /// ([`crate::unique_number`]).
    config_number: std::sync::atomic::AtomicU64,
    /// Accounts: the users file, or a database behind a bounded cache.
    pub accounts: Accounts,
    pub redirects: ArcSwap<RedirectPolicy>,
    pub store: DynStore,
    pub sessions: Sessions,
    pub cookies: CookieCrypto,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// Signs identity assertions and publishes the JWKS; re-read on SIGHUP (key rotation).
    pub assertion: ArcSwap<crate::assertion::Keys>,
    pub config_path: Option<PathBuf>,
}

/// The whole gateway: the request path's [`Core`] (reached through `Deref`, so
/// `app.config`, `app.sessions` read as before) plus what only the pages use.
/// Code that needs only the request path takes `&Core` (a `&App` coerces to it).
pub struct App {
    core: Core,
    pub ui: ArcSwap<Ui>,
    pub hasher: Hasher,
    pub defense: crate::defense::Defense,
    pub captchas: crate::captcha::Captchas,
    /// How messages go out; rebuilt from `[notify]` on SIGHUP.
    pub notifier: ArcSwap<crate::notify::Router>,
    /// Seals second-factor secrets at rest (`data.key`).
    pub sealer: crate::auth::sealed::Sealer,
    /// Messages being sent off the request path (reset codes, lock notices), so an
    /// answer never waits on — or reveals by its timing — a delivery.
    pub outgoing: tokio_util::task::TaskTracker,
}

thread_local! {
    /// The config this thread last took, with its number.
    static CONFIG_NOW: std::cell::RefCell<Option<(u64, Arc<Config>)>> =
        const { std::cell::RefCell::new(None) };
}

impl Core {
    /// The config, as [`ArcSwap::load_full`] gives it, for the request path (issue
    /// #11): each thread keeps the one it took last with its number, and takes it
    /// again only when the number changed (a reload). The number is read before the
    /// config and stored after it, so a config taken while a reload raced is at worst
    /// the new one under the old number, taken again at the next request.
    pub fn config_now(&self) -> Arc<Config> {
        let number = self
            .config_number
            .load(std::sync::atomic::Ordering::Acquire);
        CONFIG_NOW.with(|now| {
            let mut now = now.borrow_mut();
            match &*now {
                Some((n, cfg)) if *n == number => cfg.clone(),
                _ => {
                    let cfg = self.config.load_full();
                    *now = Some((number, cfg.clone()));
                    cfg
                }
            }
        })
    }
}

impl std::ops::Deref for App {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl App {
    /// The request path's part, for code that needs nothing else.
    pub fn core(&self) -> &Core {
        &self.core
    }
}

/// What a request's cookie amounts to.
pub enum SessionState {
    /// No session cookie (or one we didn't make).
    None,
    /// A genuine cookie whose session is over (expired, signed out, revoked).
    Ended,
    Valid {
        id: SessionId,
        /// Shared with the session cache (no copy per request).
        record: Arc<SessionRecord>,
        user: Arc<User>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error(transparent)]
    Users(#[from] crate::users::file::UsersFileError),
    #[error(transparent)]
    Accounts(#[from] crate::users::store::AccountError),
    #[error(transparent)]
    Ui(#[from] crate::ui::UiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] crate::auth::password::PasswordError),
    #[error(transparent)]
    Notify(#[from] crate::notify::SetupError),
    #[error(transparent)]
    Assertion(#[from] crate::assertion::AssertionError),
}

impl SessionState {
    /// The account of a complete sign-in (nothing pending): the only kind whose
    /// identity goes to an application.
    pub fn complete_user(&self) -> Option<&Arc<User>> {
        match self {
            SessionState::Valid { record, user, .. } if record.pending.is_done() => Some(user),
            _ => None,
        }
    }

    /// [`complete`](Self::complete), taking the account out (no copy of its `Arc`).
    pub fn into_complete(self) -> Option<(Arc<User>, u8)> {
        match self {
            SessionState::Valid { record, user, .. } if record.pending.is_done() => {
                Some((user, record.factors))
            }
            _ => None,
        }
    }

    /// A complete sign-in's account and the factors it proved (for assertions).
    pub fn complete(&self) -> Option<(&Arc<User>, u8)> {
        match self {
            SessionState::Valid { record, user, .. } if record.pending.is_done() => {
                Some((user, record.factors))
            }
            _ => None,
        }
    }

    /// What this session proves, for the policy.
    pub fn subject(&self) -> Subject<'_> {
        match self {
            SessionState::Valid { record, user, .. } => Subject {
                factors: match record.pending {
                    crate::session::Pending::SecondFactor => Factors::PendingSecond,
                    crate::session::Pending::Enrol => Factors::PendingEnrol,
                    crate::session::Pending::Done if record.factors >= 2 => Factors::Two,
                    crate::session::Pending::Done => Factors::One,
                },
                groups: user.groups.as_slice(),
            },
            _ => Subject {
                factors: Factors::None,
                groups: &[],
            },
        }
    }
}

/// The access decision for one request: the rule that governs it, applied to the session.
/// Shared by the proxy and by forward-auth (`/verify`), so both decide alike.
pub fn decide(cfg: &Config, state: &SessionState, req: &policy::Request<'_>) -> Decision {
    let subject = state.subject();
    let pol = cfg
        .rule_index
        .policy_for(&cfg.rules, cfg.default_policy, req, &subject);
    policy::decide(pol, &subject)
}

pub fn redirect_policy(c: &Config) -> RedirectPolicy {
    RedirectPolicy {
        site_hosts: c.sites.iter().map(|s| s.host.to_string()).collect(),
        domain: c.session.domain.clone(),
        allow_http: !c.session.secure,
    }
}

/// The assertion keys in `dir`, creating `assertion.key` (logged) when a site
/// of `c` signs identity and the key is missing.
fn load_assertion_keys(
    c: &Config,
    dir: &std::path::Path,
) -> Result<crate::assertion::Keys, crate::assertion::AssertionError> {
    let needed = c.sites.iter().any(|s| s.identity.assertion.is_some());
    let (keys, created) = crate::assertion::Keys::load(dir, needed)?;
    if let Some(path) = created {
        tracing::info!(path = %path.display(), "created a new identity assertion key");
    }
    Ok(keys)
}

/// The configured store; the memory store's expiry runs on `clock`.
pub fn open_store(c: &Config, clock: &DynClock) -> Result<DynStore, StoreError> {
    Ok(match &c.store.backend {
        StoreBackend::Memory => {
            Arc::new(MemoryStore::with_clock(clock.clone(), c.store.max_entries))
        }
        StoreBackend::Redis { url } => Arc::new(RedisStore::new(url, &c.store.key_prefix)?),
    })
}

impl App {
    /// The gateway on the system clock.
    pub fn new(config: Config, config_path: Option<PathBuf>) -> Result<App, StartError> {
        Self::with_clock(config, config_path, Arc::new(SystemClock))
    }

    /// The gateway on `clock`: sessions, the memory store, the defense ladder and
    /// rate limits, codes and audit lines all read the time from it.
    pub fn with_clock(
        config: Config,
        config_path: Option<PathBuf>,
        clock: DynClock,
    ) -> Result<App, StartError> {
        let secrets = Secrets::load(&config.secrets_dir)?;
        let accounts = Accounts::open(&config.users, clock.clone())?;
        let ui = Ui::load(&config.ui, &config.server.portal_prefix)?;
        let store = open_store(&config, &clock)?;
        let sessions = Sessions::with_cache(
            store.clone(),
            clock.clone(),
            config.session.idle_timeout,
            config.session.absolute_timeout,
            config.store.session_cache,
        );
        let defense = crate::defense::Defense::new(store.clone(), clock.clone(), &config.defense);
        let captchas = crate::captcha::Captchas::new(store.clone(), config.defense.captcha_ttl);
        let notifier = ArcSwap::from_pointee(
            crate::notify::Router::from_config(&config.notify).map_err(StartError::Notify)?,
        );
        let assertion = ArcSwap::from_pointee(load_assertion_keys(&config, &config.secrets_dir)?);
        let hasher = Hasher::new(config.password.max_concurrent_hashes)?;
        Ok(App {
            notifier,
            sealer: crate::auth::sealed::Sealer::new(&secrets.data_key),
            hasher,
            ui: ArcSwap::from_pointee(ui),
            defense,
            captchas,
            outgoing: tokio_util::task::TaskTracker::new(),
            core: Core {
                assertion,
                cookies: CookieCrypto::new(&secrets.cookie_key, &config.session),
                redirects: ArcSwap::from_pointee(redirect_policy(&config)),
                accounts,
                config: ArcSwap::from_pointee(config),
                config_number: std::sync::atomic::AtomicU64::new(crate::unique_number()),
                store,
                sessions,
                clock,
                metrics: Metrics::new(),
                config_path,
            },
        })
    }

    /// Sends a message in the background (tracked in [`App::outgoing`]).
    pub fn send_later(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        self.outgoing.spawn(f);
    }

    /// Waits until every message handed to [`App::send_later`] so far went out
    /// (or failed): for tests, and for a clean shutdown.
    pub async fn outgoing_settled(&self) {
        self.outgoing.close();
        self.outgoing.wait().await;
        self.outgoing.reopen();
    }

    /// SIGHUP: re-reads the config (rules, sites, access, ui), the templates and the
    /// users file. Listeners, store and secrets need a restart; a change there is logged.
    pub fn reload(&self) {
        if let Some(path) = &self.config_path {
            match Config::load(path) {
                Ok(mut new) => {
                    let old = self.config.load();
                    let waiting: Vec<&str> = [
                        ("server.listen", new.server.listen != old.server.listen),
                        (
                            "server.admin_listen",
                            new.server.admin_listen != old.server.admin_listen,
                        ),
                        // (`threads = 0` is counted again on each load: a new number of
                        // cores is a change too.)
                        ("server.threads", new.server.threads != old.server.threads),
                        (
                            "server.upstream_idle_connections",
                            new.server.upstream_idle_connections
                                != old.server.upstream_idle_connections,
                        ),
                        (
                            "store.backend/redis_url",
                            new.store.backend != old.store.backend,
                        ),
                        ("secrets.dir", new.secrets_dir != old.secrets_dir),
                        (
                            "session.cookie_name",
                            new.session.cookie_name != old.session.cookie_name,
                        ),
                        ("users.backend/url", new.users.backend != old.users.backend),
                    ]
                    .into_iter()
                    .filter_map(|(key, changed)| changed.then_some(key))
                    .collect();
                    if !waiting.is_empty() {
                        tracing::warn!(
                            settings = %waiting.join(", "),
                            "these settings change only on restart: the gateway runs on with the values it started with"
                        );
                        // The running ones stay in the config the gateway runs on, so
                        // that what it reads later (the secrets folder on the next
                        // reload) is what it started with, and the next reload warns
                        // only about a change still waiting (attack pass).
                        new.server.listen = old.server.listen;
                        new.server.admin_listen = old.server.admin_listen;
                        new.server.threads = old.server.threads;
                        new.server.upstream_idle_connections = old.server.upstream_idle_connections;
                        new.store.backend = old.store.backend.clone();
                        new.secrets_dir = old.secrets_dir.clone();
                        new.session.cookie_name = old.session.cookie_name.clone();
                        new.users.backend = old.users.backend.clone();
                    }
                    match Ui::load(&new.ui, &new.server.portal_prefix) {
                        Ok(ui) => self.ui.store(Arc::new(ui)),
                        Err(e) => tracing::error!(error = %e, "templates not reloaded"),
                    }
                    self.redirects.store(Arc::new(redirect_policy(&new)));
                    match load_assertion_keys(&new, &old.secrets_dir) {
                        Ok(k) => self.assertion.store(Arc::new(k)),
                        Err(e) => {
                            tracing::error!(error = %e, "assertion keys not reloaded; keeping the running ones")
                        }
                    }
                    match crate::notify::Router::from_config(&new.notify) {
                        Ok(n) => self.notifier.store(Arc::new(n)),
                        Err(e) => {
                            tracing::error!(error = %e, "[notify] not reloaded; keeping the running one")
                        }
                    }
                    self.config.store(Arc::new(new));
                    self.config_number
                        .store(crate::unique_number(), std::sync::atomic::Ordering::Release);
                    tracing::info!("configuration reloaded");
                }
                Err(e) => {
                    tracing::error!(problems = %e, "configuration not reloaded; keeping the running one")
                }
            }
        }
        self.force_reload_users();
    }
}

impl Core {
    /// The signed identity of `user` for site `aud` ([`crate::assertion::token`])
    /// with the running keys and clock.
    pub fn assertion_token(
        &self,
        cfg: &Config,
        aud: &str,
        user: &User,
        factors: u8,
    ) -> Option<String> {
        crate::assertion::token(
            &self.assertion.load(),
            cfg,
            aud,
            user,
            factors,
            self.clock.now(),
        )
    }

    /// An audit line ([`crate::audit`]) stamped by the gateway's clock.
    pub fn audit(&self, kind: &str, fields: serde_json::Value) {
        crate::audit::event(&*self.clock, kind, fields);
    }

    /// Re-reads the users file if it changed since last time (file backend). Errors keep the old set.
    /// Re-reads the users file if it changed, and ends the sessions of accounts it
    /// removed or changed by hand (see [`crate::users::Accounts::take_ended_by_file`]).
    pub async fn reload_users_if_changed(&self) {
        self.accounts.reload_file(false);
        let mut later = Vec::new();
        for name in self.accounts.take_ended_by_file() {
            match self.sessions.revoke_user(&name).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    user = %name,
                    sessions = n,
                    "sessions ended: the account was removed or changed in the users file"
                ),
                Err(e) => {
                    tracing::debug!(user = %name, error = %e, "sessions not ended yet");
                    later.push(name);
                }
            }
        }
        // Tried again on the next tick, until the store answers (said once a wait).
        let users = later.join(", ");
        if self.accounts.end_later(later) {
            tracing::warn!(%users, "sessions not ended yet; the store is unavailable (tried again each second)");
        }
    }

    /// Re-reads the users file whatever its timestamp says.
    pub fn force_reload_users(&self) {
        self.accounts.reload_file(true);
    }

    /// Resolves the session cookie in a `Cookie` header.
    pub async fn session_state(&self, cookie_header: &str) -> Result<SessionState, StoreError> {
        if cookie_header.is_empty() {
            return Ok(SessionState::None);
        }
        // Through the cookie memo: a cookie seen before isn't decrypted again.
        let Some(from) = self.sessions.id_from_cookie(&self.cookies, cookie_header) else {
            return Ok(SessionState::None);
        };
        let record = match self.sessions.load_found(&from).await? {
            Lookup::Ended => return Ok(SessionState::Ended),
            Lookup::Valid(r) => r,
        };
        self.signed_in(from.found.id, record).await
    }

    /// The usual signed-in request, when the request's `Cookie` is the session
    /// cookie alone with this `value`: its session from the cookie memo, record and
    /// all ([`Sessions::remembered`](crate::session::Sessions::remembered)), the
    /// account checked as always. `None` when the memo can't say: then
    /// [`session_state`](Self::session_state) decides.
    pub async fn remembered_state(&self, value: &[u8]) -> Option<Result<SessionState, StoreError>> {
        let (id, record) = self.sessions.remembered(value)?;
        Some(self.signed_in(id, record).await)
    }

    /// [`remembered_state`](Self::remembered_state) from memory alone, with no wait:
    /// the session and its record from the cookie memo, its account valid in the
    /// account cache (issue #11: the usual signed-in request is answered with no
    /// future of its own). `None` for anything else (no record remembered, an
    /// account to fetch, an account that ends the session): the long way decides.
    pub fn remembered_now(&self, value: &[u8]) -> Option<SessionState> {
        let (id, record) = self.sessions.remembered(value)?;
        let user = self.accounts.cached_now(&record.user)??;
        (user.is_active() && user.credentials_version == record.cred_version)
            .then_some(SessionState::Valid { id, user, record })
    }

    /// A valid session's account: still there, active and with the credentials the
    /// session was made with; otherwise the session ends now.
    async fn signed_in(
        &self,
        id: SessionId,
        record: Arc<SessionRecord>,
    ) -> Result<SessionState, StoreError> {
        let user = self
            .accounts
            .get_cached(&record.user)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        match user {
            Some(u) if u.is_active() && u.credentials_version == record.cred_version => {
                Ok(SessionState::Valid {
                    id,
                    user: u,
                    record,
                })
            }
            _ => {
                // Deleted, disabled, suspended, closed, or credentials changed since sign-in.
                Box::pin(self.sessions.remove(&id.handle(), &record.user)).await?;
                Ok(SessionState::Ended)
            }
        }
    }
}
