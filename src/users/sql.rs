//! Accounts in SQLite (one machine, embedded) or PostgreSQL (several gateways),
//! through sqlx with runtime-built queries (the build needs no database).
//!
//! Every change is one transaction: SQLite's `BEGIN IMMEDIATE` or PostgreSQL's
//! `SELECT ... FOR UPDATE` serialises read-modify-write on an account; unique
//! indexes on the normalised name, email and phone refuse duplicates; a backup
//! code is used by one `DELETE` (of two concurrent ones, one removes the row).
//! Each change also announces itself in the same transaction: `pg_notify` on
//! PostgreSQL (delivered on commit), a row in `account_changes` on SQLite (polled).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

use super::store::{
    carry_versions, fresh_versions, prepare, prepare_import, prepare_new, AccountError,
    AccountEvent, AccountStore, Change, Imported,
};
use super::{Identifier, User};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// The PostgreSQL channel changes are announced on (payload: the account name).
pub const CHANNEL: &str = "portcullis_accounts";

enum Pool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

pub struct SqlAccounts {
    pool: Pool,
    clock: crate::clock::DynClock,
}

/// What the change feed reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// This account changed somewhere.
    Changed(String),
    /// Changes may have been missed (reconnected, or too many at once): forget everything.
    Flush,
    /// The feed works (again).
    Healthy,
    /// The feed can't reach the database: cached accounts may be stale from now on.
    Lost,
}

fn db_err(e: sqlx::Error) -> AccountError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            let what = format!("{} {}", d.constraint().unwrap_or(""), d.message());
            let field = if what.contains("email") {
                "email"
            } else if what.contains("phone") {
                "phone"
            } else {
                "name"
            };
            AccountError::Conflict(format!("that {field} already belongs to another account"))
        }
        sqlx::Error::RowNotFound => AccountError::NotFound(String::new()),
        _ => AccountError::Unavailable(e.to_string()),
    }
}

const COLS: &str = "name, display_name, email, phone, groups, password, status, status_reason, \
                    credentials_version, totp, totp_enrolled_at, factors_version";

/// Dispatches one body over both pool kinds; `$pg` tells the body which it is.
macro_rules! on_pool {
    ($self:expr, |$p:ident, $pg:ident| $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($p) => {
                #[allow(unused_variables)]
                let $pg = false;
                $body
            }
            Pool::Pg($p) => {
                #[allow(unused_variables)]
                let $pg = true;
                $body
            }
        }
    };
}

macro_rules! user_from_row {
    ($row:expr) => {{
        let r = $row;
        let groups: String = r.try_get("groups")?;
        let status: String = r.try_get("status")?;
        let reason: String = r.try_get("status_reason")?;
        let mut u = User {
            name: r.try_get("name")?,
            display_name: r.try_get("display_name")?,
            email: r.try_get::<Option<String>, _>("email")?.unwrap_or_default(),
            phone: r.try_get::<Option<String>, _>("phone")?.unwrap_or_default(),
            // Bad groups are an error, not "no groups": a group-based deny rule must not
            // stop applying because of a hand-edited row.
            groups: serde_json::from_str(&groups).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            password: r.try_get("password")?,
            credentials_version: r.try_get::<i64, _>("credentials_version")?.max(0) as u64,
            totp: r.try_get("totp")?,
            totp_enrolled_at: r.try_get::<i64, _>("totp_enrolled_at")?.max(0) as u64,
            factors_version: r.try_get::<i64, _>("factors_version")?.max(0) as u64,
            ..Default::default()
        };
        set_stored_status(&mut u, &status, &reason);
        u
    }};
}

fn set_stored_status(u: &mut User, status: &str, reason: &str) {
    // Anything but the four statuses (a hand-edited row) fails closed: disabled.
    u.disabled = !matches!(status, "active" | "suspended" | "closed");
    u.closed = status == "closed";
    u.suspended = if status == "suspended" {
        if reason.is_empty() {
            "suspended".to_string()
        } else {
            reason.to_string()
        }
    } else {
        String::new()
    };
}

pub use crate::secrets::shown_url;

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes every column of `u` (insert when `insert`, else update by name), and its backup codes.
macro_rules! write_user {
    ($tx:expr, $u:expr, $insert:expr, $now:expr) => {{
        let u: &User = $u;
        let now = int($now);
        let sql = if $insert {
            "INSERT INTO accounts (display_name, email, phone, groups, password, status, status_reason, \
             credentials_version, totp, totp_enrolled_at, factors_version, updated_at, created_at, name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)"
        } else {
            "UPDATE accounts SET display_name = $1, email = $2, phone = $3, groups = $4, password = $5, \
             status = $6, status_reason = $7, credentials_version = $8, totp = $9, totp_enrolled_at = $10, \
             factors_version = $11, updated_at = $12, rev = rev + 1 WHERE name = $13"
        };
        let reason = match u.status() {
            super::Status::Suspended(r) => r.to_string(),
            _ => String::new(),
        };
        sqlx::query(sql)
            .bind(&u.display_name)
            .bind(non_empty(&u.email))
            .bind(non_empty(&u.phone))
            .bind(serde_json::to_string(&u.groups).unwrap_or_else(|_| "[]".into()))
            .bind(&u.password)
            .bind(u.status().word())
            .bind(reason)
            .bind(int(u.credentials_version))
            .bind(&u.totp)
            .bind(int(u.totp_enrolled_at))
            .bind(int(u.factors_version))
            .bind(now)
            .bind(&u.name)
            .execute(&mut *$tx)
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM backup_codes WHERE name = $1")
            .bind(&u.name)
            .execute(&mut *$tx)
            .await
            .map_err(db_err)?;
        for h in &u.backup_codes {
            sqlx::query("INSERT INTO backup_codes (name, code_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(&u.name)
                .bind(h)
                .execute(&mut *$tx)
                .await
                .map_err(db_err)?;
        }
    }};
}

/// Announces a change of `name` inside the transaction.
macro_rules! announce {
    ($tx:expr, $pg:expr, $name:expr, $now:expr) => {{
        let q = if $pg {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind($name)
        } else {
            sqlx::query("INSERT INTO account_changes (name, at) VALUES ($1, $2)")
                .bind($name)
                .bind(int($now))
        };
        q.execute(&mut *$tx).await.map_err(db_err)?;
    }};
}

macro_rules! begin {
    ($p:expr, $pg:expr) => {
        $p.begin_with(if $pg { "BEGIN" } else { "BEGIN IMMEDIATE" })
            .await
            .map_err(db_err)?
    };
}

macro_rules! codes_of {
    ($ex:expr, $name:expr) => {{
        let rows =
            sqlx::query("SELECT code_hash FROM backup_codes WHERE name = $1 ORDER BY code_hash")
                .bind($name)
                .fetch_all($ex)
                .await
                .map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?
    }};
}

/// One account by a column (`name`, `email` or `phone`), with its backup codes.
macro_rules! fetch_by {
    ($ex:expr, $col:expr, $value:expr, $lock:expr) => {{
        let sql = format!(
            "SELECT {COLS} FROM accounts WHERE {} = $1{}",
            $col,
            if $lock { " FOR UPDATE" } else { "" }
        );
        let row = sqlx::query(&sql)
            .bind($value)
            .fetch_optional(&mut *$ex)
            .await
            .map_err(db_err)?;
        match row {
            None => None,
            Some(row) => {
                let mut u = (|| -> Result<User, sqlx::Error> { Ok(user_from_row!(&row)) })()
                    .map_err(db_err)?;
                u.backup_codes = codes_of!(&mut *$ex, &u.name);
                Some(u)
            }
        }
    }};
}

/// The file a SQLite account database URL names, as SQLite reads it; none for a
/// URL that isn't SQLite's or names no file (in memory).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let opts = SqliteConnectOptions::from_str(url).ok()?;
    let file = opts.get_filename();
    (file.as_os_str() != ":memory:").then(|| file.to_path_buf())
}

/// Makes a new database and the files SQLite keeps beside it (`-wal`, `-shm`)
/// readable by their owner only.
fn private_files(db: &std::path::Path) {
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
    }
}

impl SqlAccounts {
    /// A pool that connects on first use (the gateway starts while the database is down).
    /// `url` is `sqlite:PATH` (absolute) or `postgres://...`.
    pub fn open(url: &str, clock: crate::clock::DynClock) -> Result<SqlAccounts, AccountError> {
        let bad = |e: sqlx::Error| AccountError::Invalid(format!("users.url: {e}"));
        let pool = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(bad)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL with NORMAL: a commit survives a process crash; only a power
                // loss can lose the last transactions.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            // The file as SQLite reads the URL (decoded). One that doesn't exist yet is
            // made by the first connection: then made readable by its owner only (it
            // will hold password hashes), with the files SQLite keeps beside it, and
            // said — a mistyped path must not pass for an empty set of accounts
            // without a word (attack pass). (An in-memory or read-only database makes
            // no file.)
            let file = opts.get_filename().to_path_buf();
            let fresh = sqlite_file(url).is_some_and(|f| !f.exists());
            let said = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .after_connect(move |_, _| {
                        let (file, said) = (file.clone(), said.clone());
                        Box::pin(async move {
                            if fresh && file.exists() {
                                private_files(&file);
                                if !said.swap(true, std::sync::atomic::Ordering::Relaxed) {
                                    tracing::warn!(
                                        path = %file.display(),
                                        "the account database didn't exist: created it, empty"
                                    );
                                }
                            }
                            Ok(())
                        })
                    })
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(3))
                    .connect_lazy_with(opts),
            )
        } else {
            let opts = PgConnectOptions::from_str(url).map_err(bad)?;
            Pool::Pg(
                PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(2))
                    .connect_lazy_with(opts),
            )
        };
        Ok(SqlAccounts { pool, clock })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.pool, Pool::Pg(_))
    }

    /// Applies the schema migrations this build carries.
    pub async fn migrate(&self) -> Result<(), AccountError> {
        let r = match &self.pool {
            Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await,
            Pool::Pg(p) => POSTGRES_MIGRATIONS.run(p).await,
        };
        r.map_err(|e| AccountError::Unavailable(format!("schema migration failed: {e}")))
    }

    /// The migrations this build has that the database hasn't applied (empty = up to date).
    pub async fn pending_migrations(&self) -> Result<Vec<String>, AccountError> {
        let migrator = match &self.pool {
            Pool::Sqlite(_) => &SQLITE_MIGRATIONS,
            Pool::Pg(_) => &POSTGRES_MIGRATIONS,
        };
        let applied: Vec<i64> = on_pool!(self, |p, pg| {
            let exists: i64 = if pg {
                sqlx::query("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '_sqlx_migrations'")
                    .fetch_one(p)
                    .await
                    .map_err(db_err)?
                    .try_get(0)
                    .map_err(db_err)?
            } else {
                sqlx::query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                    .fetch_one(p)
                    .await
                    .map_err(db_err)?
                    .try_get(0)
                    .map_err(db_err)?
            };
            if exists == 0 {
                Vec::new()
            } else {
                sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(p)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(|r| r.try_get::<i64, _>(0))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db_err)?
            }
        });
        Ok(migrator
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect())
    }

    /// Follows changes made by any gateway or the CLI until the process ends,
    /// reporting them to `on`. PostgreSQL: `LISTEN`, reconnecting (with a flush)
    /// when the connection drops; SQLite: the change table, polled every 250 ms.
    pub async fn watch(&self, on: impl Fn(Feed) + Send + Sync) {
        match &self.pool {
            Pool::Pg(p) => watch_pg(p, &on).await,
            Pool::Sqlite(p) => watch_sqlite(p, &*self.clock, &on).await,
        }
    }
}

async fn watch_pg(pool: &PgPool, on: &(impl Fn(Feed) + Send + Sync)) {
    let mut healthy = true;
    loop {
        let listener = async {
            let mut l = PgListener::connect_with(pool).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match tokio::time::timeout(Duration::from_secs(3), listener).await {
            Ok(Ok(mut l)) => {
                // Anything may have changed while we weren't listening.
                on(Feed::Flush);
                on(Feed::Healthy);
                // A half-open connection (a NAT or firewall idle timeout, a fail-over
                // that didn't reset it) never reports an error: when nothing came for
                // a second, ask the connection itself, and treat no answer as lost.
                loop {
                    match tokio::time::timeout(Duration::from_secs(1), l.try_recv()).await {
                        Ok(Ok(Some(n))) => on(Feed::Changed(n.payload().to_string())),
                        Ok(Ok(None) | Err(_)) => break,
                        Err(_) => {
                            let probe = sqlx::query("SELECT 1").execute(&mut l);
                            if !matches!(
                                tokio::time::timeout(Duration::from_secs(2), probe).await,
                                Ok(Ok(_))
                            ) {
                                break;
                            }
                        }
                    }
                }
                tracing::warn!("account change feed lost its PostgreSQL connection; reconnecting");
                // Cached accounts keep serving for `stale_for`; the cache is
                // flushed once the listener is back (changes may have been missed).
                on(Feed::Lost);
                healthy = false;
            }
            Ok(Err(e)) => {
                if healthy {
                    tracing::warn!(error = %e, "account change feed cannot reach PostgreSQL");
                    on(Feed::Lost);
                    healthy = false;
                }
            }
            Err(_) => {
                if healthy {
                    on(Feed::Lost);
                    healthy = false;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn watch_sqlite(
    pool: &SqlitePool,
    clock: &dyn crate::clock::Clock,
    on: &(impl Fn(Feed) + Send + Sync),
) {
    let mut cursor: Option<i64> = None;
    let mut healthy = true;
    let mut polls: u64 = 0;
    loop {
        let step = async {
            let c = match cursor {
                Some(c) => c,
                None => {
                    let max: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM account_changes")
                        .fetch_one(pool)
                        .await?
                        .try_get(0)?;
                    max
                }
            };
            let rows = sqlx::query(
                "SELECT seq, name FROM account_changes WHERE seq > $1 ORDER BY seq LIMIT 1000",
            )
            .bind(c)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            let mut last = c;
            for r in &rows {
                last = r.try_get::<i64, _>(0)?;
                out.push(r.try_get::<String, _>(1)?);
            }
            Ok::<_, sqlx::Error>((last, out))
        };
        match step.await {
            Ok((last, names)) => {
                if !healthy || cursor.is_none() {
                    on(Feed::Flush);
                    on(Feed::Healthy);
                    healthy = true;
                }
                if names.len() >= 1000 {
                    on(Feed::Flush);
                } else {
                    for n in names {
                        on(Feed::Changed(n));
                    }
                }
                cursor = Some(last);
            }
            Err(e) => {
                if healthy {
                    tracing::warn!(error = %e, "account change feed cannot read the database");
                    on(Feed::Lost);
                    healthy = false;
                }
            }
        }
        polls += 1;
        if polls.is_multiple_of(2400) {
            // Every ten minutes: changes older than an hour are of no use to anyone.
            let _ = sqlx::query("DELETE FROM account_changes WHERE at < $1")
                .bind(int(clock.now()) - 3600)
                .execute(pool)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

impl SqlAccounts {
    /// The owner of an identifier, for a conflict message.
    /// `new`: `u` is a new account (so its own name may be the one taken).
    async fn conflict_for(&self, u: &User, new: bool) -> AccountError {
        for id in super::file::identifiers(u) {
            if let Ok(Some(owner)) = self.find(&id).await {
                if new || owner.name != u.name {
                    return super::file::taken(&id, &owner.name);
                }
            }
        }
        AccountError::Conflict("an identifier of this account already belongs to another".into())
    }
}

#[async_trait]
impl AccountStore for SqlAccounts {
    async fn get(&self, name: &str) -> Result<Option<User>, AccountError> {
        let name = name.to_ascii_lowercase();
        Ok(on_pool!(self, |p, pg| {
            let mut c = p.acquire().await.map_err(db_err)?;
            fetch_by!(c, "name", &name, false)
        }))
    }

    async fn find(&self, id: &Identifier) -> Result<Option<User>, AccountError> {
        let (col, v) = match id {
            Identifier::Name(n) => ("name", n),
            Identifier::Email(e) => ("email", e),
            Identifier::Phone(p) => ("phone", p),
        };
        Ok(on_pool!(self, |p, pg| {
            let mut c = p.acquire().await.map_err(db_err)?;
            fetch_by!(c, col, v, false)
        }))
    }

    async fn list(&self) -> Result<Vec<User>, AccountError> {
        on_pool!(self, |p, pg| {
            let rows = sqlx::query(&format!("SELECT {COLS} FROM accounts ORDER BY name"))
                .fetch_all(p)
                .await
                .map_err(db_err)?;
            let mut users = Vec::with_capacity(rows.len());
            for row in &rows {
                users.push(
                    (|| -> Result<User, sqlx::Error> { Ok(user_from_row!(row)) })()
                        .map_err(db_err)?,
                );
            }
            let codes =
                sqlx::query("SELECT name, code_hash FROM backup_codes ORDER BY name, code_hash")
                    .fetch_all(p)
                    .await
                    .map_err(db_err)?;
            let mut by_name: std::collections::HashMap<String, Vec<String>> = Default::default();
            for r in &codes {
                let n: String = r.try_get(0).map_err(db_err)?;
                let h: String = r.try_get(1).map_err(db_err)?;
                by_name.entry(n).or_default().push(h);
            }
            for u in &mut users {
                u.backup_codes = by_name.remove(&u.name).unwrap_or_default();
            }
            Ok(users)
        })
    }

    async fn create(&self, user: User) -> Result<(), AccountError> {
        let user = prepare_new(user)?;
        let r: Result<(), AccountError> = async {
            on_pool!(self, |p, pg| {
                let mut tx = begin!(p, pg);
                write_user!(tx, &user, true, self.clock.now());
                announce!(tx, pg, &user.name, self.clock.now());
                tx.commit().await.map_err(db_err)?;
            });
            Ok(())
        }
        .await;
        match r {
            Err(AccountError::Conflict(_)) => Err(self.conflict_for(&user, true).await),
            other => other,
        }
    }

    async fn modify(&self, name: &str, change: Change) -> Result<User, AccountError> {
        let name = name.to_ascii_lowercase();
        let mut attempted: Option<User> = None;
        let r: Result<User, AccountError> = async {
            on_pool!(self, |p, pg| {
                let mut tx = begin!(p, pg);
                let Some(mut u) = fetch_by!(tx, "name", &name, pg) else {
                    return Err(AccountError::NotFound(name.clone()));
                };
                change(&mut u).map_err(|e| AccountError::Invalid(e.to_string()))?;
                u.name = name.clone();
                let u = prepare(u)?;
                attempted = Some(u.clone());
                write_user!(tx, &u, false, self.clock.now());
                announce!(tx, pg, &u.name, self.clock.now());
                tx.commit().await.map_err(db_err)?;
                Ok(u)
            })
        }
        .await;
        match (r, attempted) {
            (Err(AccountError::Conflict(_)), Some(u)) => Err(self.conflict_for(&u, false).await),
            (r, _) => r,
        }
    }

    async fn delete(&self, name: &str) -> Result<bool, AccountError> {
        let name = name.to_ascii_lowercase();
        on_pool!(self, |p, pg| {
            let mut tx = begin!(p, pg);
            sqlx::query("DELETE FROM backup_codes WHERE name = $1")
                .bind(&name)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let n = sqlx::query("DELETE FROM accounts WHERE name = $1")
                .bind(&name)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            announce!(tx, pg, &name, self.clock.now());
            tx.commit().await.map_err(db_err)?;
            Ok(n > 0)
        })
    }

    async fn consume_backup_code(
        &self,
        name: &str,
        code_hash: &str,
    ) -> Result<Option<usize>, AccountError> {
        let name = name.to_ascii_lowercase();
        on_pool!(self, |p, pg| {
            let mut tx = begin!(p, pg);
            if pg {
                // The same row lock `modify` takes: a change rewriting the account's
                // codes can't put back a code consumed meanwhile.
                sqlx::query("SELECT 1 FROM accounts WHERE name = $1 FOR UPDATE")
                    .bind(&name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            let n = sqlx::query("DELETE FROM backup_codes WHERE name = $1 AND code_hash = $2")
                .bind(&name)
                .bind(code_hash)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            if n != 1 {
                tx.rollback().await.map_err(db_err)?;
                return Ok(None);
            }
            let left: i64 = sqlx::query("SELECT COUNT(*) FROM backup_codes WHERE name = $1")
                .bind(&name)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?
                .try_get(0)
                .map_err(db_err)?;
            announce!(tx, pg, &name, self.clock.now());
            tx.commit().await.map_err(db_err)?;
            Ok(Some(usize::try_from(left).unwrap_or(0)))
        })
    }

    async fn import_many(
        &self,
        users: Vec<User>,
    ) -> Result<Vec<Result<Imported, AccountError>>, AccountError> {
        let mut out = Vec::with_capacity(users.len());
        for chunk in users.chunks(500) {
            on_pool!(self, |p, pg| {
                let mut tx = begin!(p, pg);
                let mut changed: Vec<String> = Vec::new();
                for u in chunk {
                    let mut user = match prepare_import(u.clone()) {
                        Ok(u) => u,
                        Err(e) => {
                            out.push(Err(e));
                            continue;
                        }
                    };
                    sqlx::query("SAVEPOINT one")
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let r: Result<Imported, AccountError> = async {
                        let existing = fetch_by!(tx, "name", &user.name, pg);
                        if let Some(e) = &existing {
                            carry_versions(e, &mut user);
                        }
                        Ok(match existing {
                            Some(e) if e == user => Imported::Unchanged,
                            Some(_) => {
                                write_user!(tx, &user, false, self.clock.now());
                                Imported::Updated
                            }
                            None => {
                                fresh_versions(&mut user);
                                write_user!(tx, &user, true, self.clock.now());
                                Imported::Created
                            }
                        })
                    }
                    .await;
                    match r {
                        Ok(x) => {
                            sqlx::query("RELEASE SAVEPOINT one")
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                            if x != Imported::Unchanged {
                                changed.push(user.name.clone());
                            }
                            out.push(Ok(x));
                        }
                        Err(AccountError::Conflict(_)) => {
                            sqlx::query("ROLLBACK TO SAVEPOINT one")
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                            out.push(Err(self.conflict_for(&user, false).await));
                        }
                        Err(e) => return Err(e),
                    }
                }
                // One account: its name; many at once: every gateway forgets its cache.
                match changed.as_slice() {
                    [] => {}
                    [one] => announce!(tx, pg, one, self.clock.now()),
                    _ => announce!(tx, pg, "*", self.clock.now()),
                }
                tx.commit().await.map_err(db_err)?;
            });
        }
        Ok(out)
    }

    async fn import(&self, user: User) -> Result<Imported, AccountError> {
        self.import_many(vec![user])
            .await?
            .pop()
            .unwrap_or(Err(AccountError::Invalid("nothing imported".into())))
    }

    async fn record(&self, e: AccountEvent) -> Result<(), AccountError> {
        on_pool!(self, |p, pg| {
            sqlx::query(
                "INSERT INTO account_events (name, at, kind, client, detail) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&e.name)
            .bind(int(e.at))
            .bind(&e.kind)
            .bind(&e.client)
            .bind(&e.detail)
            .execute(p)
            .await
            .map_err(db_err)?;
        });
        Ok(())
    }

    async fn events(&self, name: &str, limit: usize) -> Result<Vec<AccountEvent>, AccountError> {
        let name = name.to_ascii_lowercase();
        on_pool!(self, |p, pg| {
            let rows = sqlx::query(
                "SELECT name, at, kind, client, detail FROM account_events WHERE name = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(&name)
            .bind(i64::try_from(limit).unwrap_or(100))
            .fetch_all(p)
            .await
            .map_err(db_err)?;
            rows.iter()
                .map(|r| {
                    Ok(AccountEvent {
                        name: r.try_get("name")?,
                        at: r.try_get::<i64, _>("at")?.max(0) as u64,
                        kind: r.try_get("kind")?,
                        client: r.try_get("client")?,
                        detail: r.try_get("detail")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(db_err)
        })
    }
}

#[cfg(test)]
mod tests {
    /// A new SQLite account database is its owner's alone (password hashes), and so
    /// are the files SQLite keeps beside it.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_sqlite_database_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("accounts.db");
        let clock: crate::clock::DynClock = std::sync::Arc::new(crate::clock::SystemClock);
        let a = super::SqlAccounts::open(&format!("sqlite:{}", db.display()), clock).unwrap();
        a.migrate().await.unwrap();
        for f in ["accounts.db", "accounts.db-wal", "accounts.db-shm"] {
            let p = dir.path().join(f);
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        // As SQLite reads the URL: a percent-encoded name is the decoded file's.
        let spaced = dir.path().join("a b.db");
        let url = format!("sqlite:{}", dir.path().join("a%20b.db").display());
        let clock: crate::clock::DynClock = std::sync::Arc::new(crate::clock::SystemClock);
        super::SqlAccounts::open(&url, clock)
            .unwrap()
            .migrate()
            .await
            .unwrap();
        let mode = std::fs::metadata(&spaced).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.path().join("a%20b.db").exists());
    }

    #[test]
    fn shown_url_hides_the_password() {
        assert_eq!(
            super::shown_url("postgres://app:s3cret@db.example:5432/accounts"),
            "postgres://app:***@db.example:5432/accounts"
        );
        assert_eq!(super::shown_url("sqlite:accounts.db"), "sqlite:accounts.db");
    }

    #[test]
    fn an_unknown_status_fails_closed() {
        let mut u = crate::users::User::default();
        super::set_stored_status(&mut u, "DISABLED", "");
        assert!(u.disabled);
        let mut u = crate::users::User::default();
        super::set_stored_status(&mut u, "active", "");
        assert!(!u.disabled && !u.closed && u.suspended.is_empty());
        super::set_stored_status(&mut u, "suspended", "audit");
        assert!(!u.disabled && u.suspended == "audit");
    }
}
