//! [`Accounts`]: the gateway's view of the account store — a bounded per-process
//! cache in front of the database, kept current by the store's change feed.
//!
//! The signed-in request path reads the cache only ([`Accounts::get_cached`]); a
//! miss (or an entry past its staleness bound) fetches the one account. Sign-in,
//! reset and account pages read the store itself ([`Accounts::find`]), so a
//! change is seen there at once, and a store that is down answers them with an
//! error (the pages say 503). While the change feed can't reach the database,
//! cached accounts keep serving signed-in traffic for `[users] stale_for`, then
//! each request needs the database again.
//!
//! Database work runs on a small runtime of its own, so connections never depend
//! on which of the server's runtimes happened to open them.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lru::LruCache;

use super::file::FileAccounts;
use super::sql::{Feed, SqlAccounts};
use super::store::{AccountError, AccountEvent, AccountStore, Change, Imported};
use super::{Identifier, User};
use crate::clock::DynClock;
use crate::config::{UsersBackend, UsersConfig};

enum Backend {
    File(Arc<FileAccounts>),
    Sql(Arc<SqlAccounts>),
}

/// `lost_at` before the change feed was ever healthy: the cache serves nothing.
const NEVER_HEARD: u64 = u64::MAX;

struct Shared {
    cache: Mutex<LruCache<String, Arc<User>>>,
    /// The clock's monotonic milliseconds when the change feed was lost; 0 = healthy.
    lost_at: AtomicU64,
    /// Bumped by every change heard of: a record fetched while it moved may be
    /// older than the change, so it isn't cached.
    generation: AtomicU64,
    clock: DynClock,
    stale_for: Duration,
}

impl Shared {
    fn feed(&self, f: Feed) {
        if matches!(f, Feed::Changed(_) | Feed::Flush) {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        match f {
            Feed::Changed(name) if name == "*" => self.lock().clear(),
            Feed::Changed(name) => {
                self.lock().pop(&name);
            }
            Feed::Flush => self.lock().clear(),
            Feed::Healthy => self.lost_at.store(0, Ordering::Relaxed),
            Feed::Lost => {
                let ms = u64::try_from(self.clock.monotonic().as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1);
                let _ = self
                    .lost_at
                    .compare_exchange(0, ms, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<User>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Can cached accounts be trusted? Yes while the feed works, and for
    /// `stale_for` after it stopped.
    fn fresh(&self) -> bool {
        let lost = self.lost_at.load(Ordering::Relaxed);
        if lost == NEVER_HEARD {
            return false;
        }
        lost == 0
            || self
                .clock
                .monotonic()
                .saturating_sub(Duration::from_millis(lost))
                < self.stale_for
    }
}

/// A runtime for database work; shut down without blocking when dropped
/// (an `App` may be dropped inside async code).
struct DbRuntime(Option<tokio::runtime::Runtime>);

impl Drop for DbRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

pub struct Accounts {
    backend: Backend,
    store: Arc<dyn AccountStore>,
    shared: Arc<Shared>,
    rt: DbRuntime,
}

fn join_err(e: tokio::task::JoinError) -> AccountError {
    AccountError::Unavailable(format!("account task failed: {e}"))
}

impl Accounts {
    /// Opens the configured backend. Nothing connects yet: a gateway starts while its
    /// database is down (and answers 503 where it needs it).
    pub fn open(cfg: &UsersConfig, clock: DynClock) -> Result<Accounts, AccountError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(4)
            .thread_name("accounts")
            .enable_all()
            .build()
            .map_err(|e| AccountError::Unavailable(e.to_string()))?;
        let backend = {
            let _guard = rt.enter();
            match &cfg.backend {
                UsersBackend::File(path) => Backend::File(Arc::new(
                    FileAccounts::open(path).map_err(|e| AccountError::Invalid(e.to_string()))?,
                )),
                UsersBackend::Sql(url) => {
                    Backend::Sql(Arc::new(SqlAccounts::open(url, clock.clone())?))
                }
            }
        };
        let store: Arc<dyn AccountStore> = match &backend {
            Backend::File(f) => f.clone(),
            Backend::Sql(s) => s.clone(),
        };
        let cap = NonZeroUsize::new(cfg.cache_size.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(Accounts {
            backend,
            store,
            shared: Arc::new(Shared {
                cache: Mutex::new(LruCache::new(cap)),
                // Not trusted until the change feed has been heard from once: a
                // gateway whose first LISTEN fails mustn't serve what it cached.
                lost_at: AtomicU64::new(NEVER_HEARD),
                generation: AtomicU64::new(0),
                clock,
                stale_for: cfg.stale_for,
            }),
            rt: DbRuntime(Some(rt)),
        })
    }

    fn handle(&self) -> Result<&tokio::runtime::Handle, AccountError> {
        self.rt
            .0
            .as_ref()
            .map(|r| r.handle())
            .ok_or_else(|| AccountError::Unavailable("shut down".into()))
    }

    /// Runs `f(store)` on the accounts runtime.
    async fn run<T: Send + 'static, F>(
        &self,
        f: impl FnOnce(Arc<dyn AccountStore>) -> F,
    ) -> Result<T, AccountError>
    where
        F: std::future::Future<Output = Result<T, AccountError>> + Send + 'static,
    {
        let fut = f(self.store.clone());
        self.handle()?.spawn(fut).await.map_err(join_err)?
    }

    /// For the CLI (no runtime of its own): runs `fut` to completion on the accounts runtime.
    pub fn block_on<T>(
        &self,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, AccountError> {
        Ok(self.handle()?.block_on(fut))
    }

    /// The store itself (the conformance tests and the CLI).
    pub fn store(&self) -> Arc<dyn AccountStore> {
        self.store.clone()
    }

    pub fn is_file(&self) -> bool {
        matches!(self.backend, Backend::File(_))
    }

    /// Creates or upgrades the database schema (a no-op for the users file).
    pub async fn migrate(&self) -> Result<(), AccountError> {
        match &self.backend {
            Backend::File(_) => Ok(()),
            Backend::Sql(s) => {
                let s = s.clone();
                self.handle()?
                    .spawn(async move { s.migrate().await })
                    .await
                    .map_err(join_err)?
            }
        }
    }

    /// Schema migrations not yet applied; an error when the database can't be reached.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, AccountError> {
        match &self.backend {
            Backend::File(_) => Ok(Vec::new()),
            Backend::Sql(s) => {
                let s = s.clone();
                let h = self.handle()?.clone();
                h.spawn(async move {
                    tokio::time::timeout(Duration::from_secs(5), s.pending_migrations())
                        .await
                        .unwrap_or_else(|_| {
                            Err(AccountError::Unavailable("no answer within 5 s".into()))
                        })
                })
                .await
                .map_err(join_err)?
            }
        }
    }

    /// Starts following changes from other gateways and the CLI (databases only; the
    /// users file is re-read by [`Accounts::reload_file`]).
    pub fn start_feed(&self) {
        if let (Backend::Sql(s), Ok(h)) = (&self.backend, self.handle()) {
            let (s, shared) = (s.clone(), self.shared.clone());
            h.spawn(async move { s.watch(move |f| shared.feed(f)).await });
        }
    }

    /// Users file: re-read it if it changed (or always, with `force`).
    pub fn reload_file(&self, force: bool) {
        if let Backend::File(f) = &self.backend {
            f.reload(force);
        }
    }

    /// Users file: the accounts whose sessions its re-reads found ended (removed, or
    /// changed by hand without a new `credentials_version`) since the last call.
    pub fn take_ended_by_file(&self) -> Vec<String> {
        match &self.backend {
            Backend::File(f) => f.take_ended(),
            Backend::Sql(_) => Vec::new(),
        }
    }

    /// Users file: accounts whose sessions couldn't be ended yet, for the next
    /// [`take_ended_by_file`](Self::take_ended_by_file).
    /// `true` when this starts a wait (see [`super::file::FileAccounts::end_later`]).
    pub fn end_later(&self, names: Vec<String>) -> bool {
        match &self.backend {
            Backend::File(f) => f.end_later(names),
            Backend::Sql(_) => false,
        }
    }

    /// [`get_cached`](Self::get_cached) when it needs no wait: the users file's
    /// account (or that there is none), or a database's cached, fresh one. `None`:
    /// only [`get_cached`](Self::get_cached) can say.
    pub fn cached_now(&self, name: &str) -> Option<Option<Arc<User>>> {
        match &self.backend {
            Backend::File(f) => Some(f.cached(name)),
            Backend::Sql(_) => {
                if !self.shared.fresh() {
                    return None;
                }
                self.shared.lock().get(name).map(|u| Some(u.clone()))
            }
        }
    }

    /// The signed-in path: the account from the cache (the users file: from memory),
    /// fetched once on a miss. Never a query for a cached, fresh account.
    pub async fn get_cached(&self, name: &str) -> Result<Option<Arc<User>>, AccountError> {
        match &self.backend {
            Backend::File(f) => Ok(f.cached(name)),
            Backend::Sql(_) => {
                if self.shared.fresh() {
                    if let Some(u) = self.shared.lock().get(name) {
                        return Ok(Some(u.clone()));
                    }
                }
                let n = name.to_string();
                let generation = self.generation();
                // Boxed: this future is part of every signed-in request's, and inline
                // its state would be copied with it.
                let u = Box::pin(self.run(|s| async move { s.get(&n).await })).await?;
                Ok(u.map(|u| self.remember(u, generation)))
            }
        }
    }

    fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }

    /// Caches `u`, read from the store when the feed was at `generation` — unless a
    /// change was heard of since (the record may predate it).
    fn remember(&self, u: User, generation: u64) -> Arc<User> {
        let u = Arc::new(u);
        if !self.is_file() {
            let mut cache = self.shared.lock();
            if self.generation() == generation {
                cache.put(u.name.clone(), u.clone());
            } else {
                cache.pop(&u.name);
            }
        }
        u
    }

    /// The account an identifier names, from the store (sign-in and account pages).
    pub async fn find(&self, id: &Identifier) -> Result<Option<Arc<User>>, AccountError> {
        if let Backend::File(f) = &self.backend {
            return Ok(f.cached_find(id));
        }
        let id = id.clone();
        let generation = self.generation();
        let u = self.run(|s| async move { s.find(&id).await }).await?;
        Ok(u.map(|u| self.remember(u, generation)))
    }

    /// The account called `name`, from the store.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<User>>, AccountError> {
        self.find(&Identifier::Name(name.to_ascii_lowercase()))
            .await
    }

    /// Changes one account (committed, or an error and nothing changed).
    pub async fn modify(
        &self,
        name: &str,
        change: impl FnOnce(&mut User) -> Result<(), super::ProfileError> + Send + 'static,
    ) -> Result<Arc<User>, AccountError> {
        let n = name.to_string();
        let change: Change = Box::new(change);
        let generation = self.generation();
        let u = self
            .run(|s| async move { s.modify(&n, change).await })
            .await?;
        Ok(self.remember(u, generation))
    }

    pub async fn create(&self, user: User) -> Result<(), AccountError> {
        self.run(|s| async move { s.create(user).await }).await
    }

    pub async fn delete(&self, name: &str) -> Result<bool, AccountError> {
        let n = name.to_ascii_lowercase();
        self.shared.lock().pop(&n);
        self.run(|s| async move { s.delete(&n).await }).await
    }

    pub async fn consume_backup_code(
        &self,
        name: &str,
        code_hash: &str,
    ) -> Result<Option<usize>, AccountError> {
        let (n, h) = (name.to_ascii_lowercase(), code_hash.to_string());
        let r = self
            .run(|s| async move { s.consume_backup_code(&n, &h).await })
            .await?;
        self.shared.lock().pop(&name.to_ascii_lowercase());
        Ok(r)
    }

    pub async fn import(&self, user: User) -> Result<Imported, AccountError> {
        self.run(|s| async move { s.import(user).await }).await
    }

    pub async fn import_many(
        &self,
        users: Vec<User>,
    ) -> Result<Vec<Result<Imported, AccountError>>, AccountError> {
        self.run(|s| async move { s.import_many(users).await })
            .await
    }

    pub async fn list(&self) -> Result<Vec<User>, AccountError> {
        self.run(|s| async move { s.list().await }).await
    }

    pub async fn events(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        let n = name.to_string();
        self.run(|s| async move { s.events(&n, limit).await }).await
    }

    /// Appends to an account's history off the request path (a failure is logged).
    pub fn record_later(&self, name: &str, kind: &str, client: &str, detail: &str) {
        let e = AccountEvent::now(&*self.shared.clock, name, kind, client, detail);
        if let Ok(h) = self.handle() {
            let s = self.store.clone();
            h.spawn(async move {
                if let Err(err) = s.record(e).await {
                    tracing::warn!(error = %err, "account event not recorded");
                }
            });
        }
    }

    /// Appends to an account's history and waits for it (the CLI).
    pub async fn record(
        &self,
        name: &str,
        kind: &str,
        client: &str,
        detail: &str,
    ) -> Result<(), AccountError> {
        let e = AccountEvent::now(&*self.shared.clock, name, kind, client, detail);
        self.run(|s| async move { s.record(e).await }).await
    }

    /// How many accounts the cache holds now (for tests and metrics).
    pub fn cached(&self) -> usize {
        self.shared.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use crate::config::{Config, UsersBackend};

    const SITE: &str = "[[site]]\nhost = \"app.example.com\"\nupstream = \"127.0.0.1:3000\"\n";

    fn users(section: &str) -> Result<crate::config::UsersConfig, Vec<String>> {
        Config::from_str(&format!("{SITE}[users]\n{section}"), Path::new("/etc/p"))
            .map(|c| c.users)
            .map_err(|e| e.problems)
    }

    #[test]
    fn cache_is_bounded_follows_the_feed_and_trusts_stale_entries_for_stale_for() {
        use super::{Feed, Shared, User};
        use crate::clock::FakeClock;
        use std::num::NonZeroUsize;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        let clock = FakeClock::at(1_000);
        let cap = NonZeroUsize::new(2).unwrap();
        let shared = Shared {
            cache: Mutex::new(lru::LruCache::new(cap)),
            lost_at: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            clock: Arc::new(clock.clone()),
            stale_for: Duration::from_secs(10),
        };
        let put = |n: &str| {
            shared.lock().put(
                n.to_string(),
                Arc::new(User {
                    name: n.into(),
                    ..Default::default()
                }),
            );
        };
        for n in ["a", "b", "c"] {
            put(n);
        }
        assert_eq!(
            shared.lock().len(),
            2,
            "bounded: the least recently used went"
        );
        assert!(shared.lock().get("a").is_none());
        shared.feed(Feed::Changed("b".into()));
        assert!(shared.lock().get("b").is_none());
        assert!(shared.lock().get("c").is_some());
        assert_eq!(shared.generation.load(Ordering::SeqCst), 1);
        shared.feed(Feed::Changed("*".into()));
        assert_eq!(shared.lock().len(), 0, "a bulk change forgets everything");
        // While the feed is lost, cached entries are trusted for `stale_for` only.
        assert!(shared.fresh());
        shared.feed(Feed::Lost);
        clock.advance(9);
        assert!(shared.fresh());
        shared.feed(Feed::Lost);
        clock.advance(2);
        assert!(!shared.fresh(), "a second Lost doesn't restart the clock");
        shared.feed(Feed::Healthy);
        assert!(shared.fresh());
    }

    #[test]
    fn users_section_backends_and_defaults() {
        // A config from before databases keeps meaning the users file.
        let u = users("file = \"people.toml\"\n").unwrap();
        assert_eq!(
            u.backend,
            UsersBackend::File(PathBuf::from("/etc/p/people.toml"))
        );
        assert_eq!(u.cache_size, 10_000);
        assert_eq!(u.stale_for, Duration::from_secs(300));
        // SQLite paths are relative to the config file.
        let u = users("backend = \"sqlite\"\nurl = \"sqlite:db/accounts.db\"\n").unwrap();
        assert_eq!(
            u.backend,
            UsersBackend::Sql("sqlite:/etc/p/db/accounts.db".into())
        );
        let u = users("backend = \"sqlite\"\n").unwrap();
        assert_eq!(
            u.backend,
            UsersBackend::Sql("sqlite:/etc/p/accounts.db".into())
        );
        let u = users(
            "backend = \"postgres\"\nurl = \"postgres://u:p@db:5432/x\"\nstale_for = \"30s\"\ncache_size = 50\n",
        )
        .unwrap();
        assert_eq!(
            u.backend,
            UsersBackend::Sql("postgres://u:p@db:5432/x".into())
        );
        assert_eq!((u.cache_size, u.stale_for), (50, Duration::from_secs(30)));
        for (bad, key) in [
            ("backend = \"mysql\"\n", "users.backend"),
            ("backend = \"postgres\"\n", "users.url"),
            ("backend = \"postgres\"\nurl = \"sqlite:x\"\n", "users.url"),
            ("backend = \"sqlite\"\nurl = \"mysql://x\"\n", "users.url"),
            ("cache_size = 0\n", "users.cache_size"),
            ("stale_for = \"soon\"\n", "users.stale_for"),
            ("bogus = 1\n", "users.bogus"),
        ] {
            let problems = users(bad).unwrap_err();
            assert!(
                problems.iter().any(|p| p.starts_with(key)),
                "{bad:?}: {problems:?}"
            );
        }
    }
}
