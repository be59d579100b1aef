//! The users file: a TOML list of `[[user]]` tables.
//!
//! Writes are atomic (temp file in the same folder, fsync, rename) and
//! serialised between processes with an advisory lock on `FILE.lock`, so the CLI
//! and a running gateway never lose each other's changes. The gateway re-reads
//! the file when its modification time or size changes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::store::{
    carry_versions, fresh_versions, prepare, prepare_import, prepare_new, AccountError,
    AccountEvent, AccountStore, Change, Imported,
};
use super::{Directory, Identifier, User};

#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    #[error("cannot read users file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("users file {path} is not valid: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("cannot write users file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersDoc {
    #[serde(default)]
    user: Vec<User>,
}

/// A fingerprint of the file to notice changes without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

pub fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path).ok().map(|m| Stamp {
        modified: m.modified().ok(),
        len: m.len(),
    })
}

/// Reads the file; a missing file is an empty directory.
pub fn load(path: &Path) -> Result<Directory, UsersFileError> {
    let users = read_users(path)?;
    Directory::new(users).map_err(|e| UsersFileError::Parse {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// The accounts of a users file's text (not yet checked for duplicates).
pub fn parse_users(text: &str) -> Result<Vec<User>, String> {
    toml::from_str::<UsersDoc>(text)
        .map(|d| d.user)
        .map_err(|e| e.to_string().trim().replace('\n', " "))
}

/// Writes `users` as a users file (atomically, owner-only), replacing it.
pub fn write_all(path: &Path, users: &[User]) -> Result<(), UsersFileError> {
    write_atomic(path, users).map_err(|source| UsersFileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn read_users(path: &Path) -> Result<Vec<User>, UsersFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(UsersFileError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let doc: UsersDoc = toml::from_str(&text).map_err(|e| UsersFileError::Parse {
        path: path.to_path_buf(),
        msg: e.to_string().trim().replace('\n', " "),
    })?;
    Ok(doc.user)
}

/// Runs `f` on the current users under the file lock and writes the result
/// atomically when `f` succeeds. `f`'s error leaves the file untouched.
pub fn update<T, E>(
    path: &Path,
    f: impl FnOnce(&mut Vec<User>) -> Result<T, E>,
) -> Result<Result<T, E>, UsersFileError> {
    let werr = |source| UsersFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let held = locked_file(path, true).map_err(werr)?;
    let mut users = read_users(path)?;
    let out = match f(&mut users) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    // Validate before writing: a change must never leave an unreadable file.
    Directory::new(users.clone()).map_err(|e| UsersFileError::Parse {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    write_atomic(path, &users).map_err(werr)?;
    drop(held);
    Ok(Ok(out))
}

fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

fn write_atomic(path: &Path, users: &[User]) -> std::io::Result<()> {
    let doc = UsersDoc {
        user: users.to_vec(),
    };
    let text = toml::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("users"),
        std::process::id()
    ));
    {
        // A new file (never one left at that name: it could be a link planted there).
        let _ = std::fs::remove_file(&tmp);
        let mut f = create_new_private(&tmp)?;
        // The file keeps its owner: the CLI run as root (as the README's commands
        // are) must not hand the gateway's own user a file it can't read (attack
        // pass: the gateway then kept its old accounts, and a disabled user signed in).
        owned_like(&f, &tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot give the rewritten file the owner of {} ({e}): run this as that user, or as root",
                    path.display()
                ),
            )
        })?;
        f.write_all(b"# Portcullis accounts. Manage with `portcullis user ...`; edits by hand are re-read.\n")?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Whether this process runs as root (effective uid 0; read from `/proc`, Linux):
/// only root can give a file away, and only root needs to.
fn running_as_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .map(|ids| ids.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false)
    })
}

/// As root, gives `f` (opened at `path`) the owner and group of `like` (the users
/// file) when they differ, so that files the CLI writes as root stay the gateway's
/// user's. Only a plain file that is `path` itself — not reached through a symbolic
/// link, with no other name — is written to or given away as root, anything else is
/// an error: the gateway's user owns the folder and could have planted `path` as a
/// link to a file of root's (review). Nothing to do for any other user (the file is
/// its own, as before), or when `like` doesn't exist yet.
#[cfg(unix)]
fn owned_like(f: &File, path: &Path, like: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !running_as_root() {
        return Ok(());
    }
    let have = f.metadata()?;
    let named = std::fs::symlink_metadata(path)?;
    if !have.is_file()
        || have.nlink() != 1
        || (named.dev(), named.ino()) != (have.dev(), have.ino())
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a plain file of its own (a link?): not written as root",
                path.display()
            ),
        ));
    }
    let Ok(want) = std::fs::metadata(like) else {
        return Ok(());
    };
    if (have.uid(), have.gid()) == (want.uid(), want.gid()) {
        return Ok(());
    }
    std::os::unix::fs::fchown(f, Some(want.uid()), Some(want.gid()))
}

#[cfg(not(unix))]
fn owned_like(_f: &File, _path: &Path, _like: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Creates a new file readable by its owner only; fails if anything (a file, a
/// link) is at `path` already.
fn create_new_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create_new(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Creates (truncating) a file readable by its owner only.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// How large the file backend's event log grows before it becomes the previous
/// generation (`FILE.events.jsonl.1`, replacing the one before): with both kept, an
/// account's history reaches back at least this many bytes of events, and the two
/// files never hold much more than twice that.
pub const EVENTS_FILE_BYTES: u64 = 8 << 20;

/// The lock file of the users file `users`, held (exclusively or shared) until the
/// `File` is dropped. It belongs to the users file's owner (see [`owned_like`]), so
/// that a CLI run as root doesn't leave one the gateway can't open.
fn locked_file(users: &Path, exclusive: bool) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(users))?;
    // (Best effort: a lock file holds nothing; flocking whatever it names is harmless.)
    let _ = owned_like(&f, &lock_path(users), users);
    if exclusive {
        f.lock()?;
    } else {
        f.lock_shared()?;
    }
    Ok(f)
}

fn previous_events(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// The users file as an [`AccountStore`]: the whole file is held in memory
/// (re-read when it changes), every change is one locked, atomic rewrite. The
/// event log is a JSON-lines file beside it (`FILE.events.jsonl`), bounded (see
/// [`EVENTS_FILE_BYTES`]).
pub struct FileAccounts {
    path: PathBuf,
    dir: arc_swap::ArcSwap<Directory>,
    stamp: std::sync::Mutex<Option<Stamp>>,
    /// Accounts whose sessions a re-read found ended ([`ended_by`]), until the
    /// gateway ends them ([`take_ended`](Self::take_ended)).
    ended: std::sync::Mutex<Vec<String>>,
    /// Some of them waited for the store at the last try ([`end_later`](Self::end_later)).
    deferred: std::sync::atomic::AtomicBool,
    /// The number of the accounts as last read: new with every read
    /// ([`crate::unique_number`]; see [`cached`](Self::cached)).
    generation: std::sync::atomic::AtomicU64,
}

/// The accounts of `old` whose sessions `new` ends: gone from the file, or with
/// another password or status under the same `credentials_version`. The CLI and
/// the pages raise the version with every such change, which ends the sessions by
/// itself; a change made by hand doesn't. Without this, an account removed by hand
/// and written back (or given another password by hand) would keep its sessions,
/// since they carry the same version (attack pass). (A hash that can't be read is
/// damage, not another password: nobody signs in with it, and the page that
/// changes the password says so; the sessions go on.)
fn ended_by(old: &Directory, new: &Directory) -> Vec<String> {
    old.users()
        .iter()
        .filter(|u| match new.get(&u.name) {
            None => true,
            Some(n) => {
                n.credentials_version == u.credentials_version
                    && ((n.password != u.password && crate::auth::password::readable(&n.password))
                        || n.status() != u.status())
            }
        })
        .map(|u| u.name.clone())
        .collect()
}

fn unavailable(e: impl std::fmt::Display) -> AccountError {
    AccountError::Unavailable(e.to_string())
}

impl FileAccounts {
    pub fn open(path: &Path) -> Result<FileAccounts, UsersFileError> {
        let stamp = stamp(path);
        let dir = load(path)?;
        Ok(FileAccounts {
            path: path.to_path_buf(),
            dir: arc_swap::ArcSwap::from_pointee(dir),
            stamp: std::sync::Mutex::new(stamp),
            ended: std::sync::Mutex::new(Vec::new()),
            deferred: std::sync::atomic::AtomicBool::new(false),
            generation: std::sync::atomic::AtomicU64::new(crate::unique_number()),
        })
    }

    /// The accounts as last read.
    pub fn directory(&self) -> Arc<Directory> {
        self.dir.load_full()
    }

    /// One account as last read (the signed-in path: no copy, no reference count on the set).
    ///
    /// Each thread remembers the last account it looked up, with the number of the
    /// set it came from: the next look-up of that name, while the set is the same,
    /// is a comparison (issue #11: a request's account check was a hash look-up in
    /// the set). The number is read before the set, and a new set is stored before its
    /// number: a look-up that raced a re-read remembers under the old number, which is
    /// no longer current, so the next look-up reads the new set.
    pub fn cached(&self, name: &str) -> Option<Arc<User>> {
        thread_local! {
            static LAST: std::cell::RefCell<Option<(u64, Arc<User>)>> =
                const { std::cell::RefCell::new(None) };
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            if let Some((g, u)) = &*last {
                if *g == generation && u.name == name {
                    return Some(u.clone());
                }
            }
            let found = self.dir.load().get(name).cloned();
            if let Some(u) = &found {
                *last = Some((generation, u.clone()));
            }
            found
        })
    }

    /// The account an identifier names, as last read.
    pub fn cached_find(&self, id: &Identifier) -> Option<Arc<User>> {
        self.dir.load().find(id).cloned()
    }

    /// Re-reads the file if it changed (or always, with `force`): `true` when the
    /// accounts were replaced. Errors keep the old set.
    pub fn reload(&self, force: bool) -> bool {
        self.reload_as(force, true)
    }

    /// [`reload`](Self::reload); `diff`: note the accounts whose sessions the new
    /// contents end (not after this process's own change: see `locked`).
    fn reload_as(&self, force: bool, diff: bool) -> bool {
        let now = stamp(&self.path);
        let mut last = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if !force && *last == now {
            return false;
        }
        match load(&self.path) {
            Ok(d) => {
                tracing::info!(users = d.users().len(), "users file reloaded");
                if diff {
                    self.note_ended(ended_by(&self.dir.load(), &d));
                }
                self.dir.store(Arc::new(d));
                self.generation
                    .store(crate::unique_number(), std::sync::atomic::Ordering::Release);
                *last = now;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "users file not reloaded; keeping the previous accounts");
                false
            }
        }
    }

    fn note_ended(&self, ended: Vec<String>) {
        if !ended.is_empty() {
            let mut pending = self.ended.lock().unwrap_or_else(|e| e.into_inner());
            pending.extend(ended);
            // An account noted twice (edited again while the store was down) is ended
            // once. (Only a gateway takes them; the CLI's own reads stay small.)
            pending.sort_unstable();
            pending.dedup();
        }
    }

    /// Puts back accounts whose sessions couldn't be ended (the store was down), for
    /// the next [`take_ended`](Self::take_ended); `true` when this starts a wait
    /// (the try before ended everything it had), for a log line once, not each try.
    pub fn end_later(&self, names: Vec<String>) -> bool {
        let waiting = !names.is_empty();
        self.note_ended(names);
        let was_waiting = self
            .deferred
            .swap(waiting, std::sync::atomic::Ordering::Relaxed);
        waiting && !was_waiting
    }

    /// The accounts whose sessions re-reads found ended since the last call.
    pub fn take_ended(&self) -> Vec<String> {
        std::mem::take(&mut *self.ended.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn events_path(&self) -> PathBuf {
        let mut p = self.path.as_os_str().to_owned();
        p.push(".events.jsonl");
        PathBuf::from(p)
    }

    /// `f` under the file lock, off the async workers; then the file is re-read.
    async fn locked<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<User>) -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, AccountError> {
        let path = self.path.clone();
        // What the file says before this change, against what was last read: edits by
        // hand since then end sessions ([`ended_by`]); this change itself doesn't (the
        // store raises the version where a change ends sessions, and a rehash of the
        // same password ends nothing).
        let last = self.dir.load_full();
        let res = tokio::task::spawn_blocking(move || {
            let mut by_hand = Vec::new();
            let r = update(&path, |users| {
                if let Ok(now) = Directory::new(users.clone()) {
                    by_hand = ended_by(&last, &now);
                }
                f(users)
            });
            (r, by_hand)
        })
        .await
        .map_err(unavailable)?;
        let (res, by_hand) = res;
        let out = match res {
            Ok(r) => r,
            // Validation of the whole set failed: a duplicate identifier.
            Err(UsersFileError::Parse { msg, .. }) => Err(AccountError::Conflict(msg)),
            Err(e) => Err(unavailable(e)),
        };
        self.note_ended(by_hand);
        self.reload_as(true, false);
        out
    }
}

#[async_trait::async_trait]
impl AccountStore for FileAccounts {
    async fn get(&self, name: &str) -> Result<Option<User>, AccountError> {
        Ok(self.dir.load().get(name).map(|u| User::clone(u)))
    }

    async fn find(&self, id: &Identifier) -> Result<Option<User>, AccountError> {
        Ok(self.dir.load().find(id).map(|u| User::clone(u)))
    }

    async fn list(&self) -> Result<Vec<User>, AccountError> {
        let mut v: Vec<User> = self
            .dir
            .load()
            .users()
            .iter()
            .map(|u| User::clone(u))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    async fn create(&self, user: User) -> Result<(), AccountError> {
        let user = prepare_new(user)?;
        self.locked(move |users| {
            let d =
                Directory::new(users.clone()).map_err(|e| AccountError::Conflict(e.to_string()))?;
            for id in identifiers(&user) {
                if let Some(owner) = d.owner_of(&id) {
                    return Err(taken(&id, owner));
                }
            }
            users.push(user);
            Ok(())
        })
        .await
    }

    async fn modify(&self, name: &str, change: Change) -> Result<User, AccountError> {
        let name = name.to_ascii_lowercase();
        self.locked(move |users| {
            let u = users
                .iter_mut()
                .find(|u| u.name.eq_ignore_ascii_case(&name))
                .ok_or_else(|| AccountError::NotFound(name.clone()))?;
            let mut next = u.clone();
            change(&mut next).map_err(|e| AccountError::Invalid(e.to_string()))?;
            next.name = u.name.clone();
            let next = prepare(next)?;
            *u = next.clone();
            Ok(next)
        })
        .await
    }

    async fn delete(&self, name: &str) -> Result<bool, AccountError> {
        let name = name.to_ascii_lowercase();
        self.locked(move |users| {
            let before = users.len();
            users.retain(|u| !u.name.eq_ignore_ascii_case(&name));
            Ok(users.len() != before)
        })
        .await
    }

    async fn consume_backup_code(
        &self,
        name: &str,
        code_hash: &str,
    ) -> Result<Option<usize>, AccountError> {
        let name = name.to_ascii_lowercase();
        let hash = code_hash.to_string();
        self.locked(move |users| {
            let Some(u) = users
                .iter_mut()
                .find(|u| u.name.eq_ignore_ascii_case(&name))
            else {
                return Ok(None);
            };
            let Some(pos) = u.backup_codes.iter().position(|h| *h == hash) else {
                return Ok(None);
            };
            u.backup_codes.remove(pos);
            Ok(Some(u.backup_codes.len()))
        })
        .await
    }

    async fn import(&self, user: User) -> Result<Imported, AccountError> {
        let mut user = prepare_import(user)?;
        self.locked(move |users| {
            let others: Vec<User> = users
                .iter()
                .filter(|u| !u.name.eq_ignore_ascii_case(&user.name))
                .cloned()
                .collect();
            let d = Directory::new(others).map_err(|e| AccountError::Conflict(e.to_string()))?;
            for id in identifiers(&user) {
                if let Some(owner) = d.owner_of(&id) {
                    return Err(taken(&id, owner));
                }
            }
            match users
                .iter_mut()
                .find(|u| u.name.eq_ignore_ascii_case(&user.name))
            {
                Some(u) => {
                    carry_versions(u, &mut user);
                    if *u == user {
                        return Ok(Imported::Unchanged);
                    }
                    *u = user;
                    Ok(Imported::Updated)
                }
                None => {
                    fresh_versions(&mut user);
                    users.push(user);
                    Ok(Imported::Created)
                }
            }
        })
        .await
    }

    async fn record(&self, event: AccountEvent) -> Result<(), AccountError> {
        let path = self.events_path();
        let previous = previous_events(&path);
        let users = self.path.clone();
        let line = serde_json::json!({
            "name": event.name, "at": event.at, "kind": event.kind,
            "client": event.client, "detail": event.detail,
        })
        .to_string();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut o = OpenOptions::new();
            o.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            // Under the users file's lock, so that of two writers (tasks, or the CLI
            // and a gateway) only one turns a full log into the previous generation.
            let _held = locked_file(&users, true)?;
            // Bounded: past EVENTS_FILE_BYTES the log becomes the previous generation
            // (replacing the one before), and a new one starts.
            if std::fs::metadata(&path).is_ok_and(|m| m.len() >= EVENTS_FILE_BYTES) {
                std::fs::rename(&path, &previous)?;
            }
            let mut f = o.open(&path)?;
            // As root, only the log itself (never a file a planted link names) is
            // appended to, and it stays the users file's owner's.
            owned_like(&f, &path, &users)?;
            f.write_all(format!("{line}\n").as_bytes())
        })
        .await
        .map_err(unavailable)?
        .map_err(unavailable)
    }

    async fn events(&self, name: &str, limit: usize) -> Result<Vec<AccountEvent>, AccountError> {
        let path = self.events_path();
        let users = self.path.clone();
        // Both generations, oldest first, read off the async workers, under the lock
        // (shared): no turn of generations between the two reads.
        let text = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            let _held = locked_file(&users, false)?;
            let mut text = String::new();
            for p in [previous_events(&path), path] {
                match std::fs::read_to_string(&p) {
                    Ok(t) => text.push_str(&t),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(text)
        })
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
        let name = name.to_ascii_lowercase();
        let mut out: Vec<AccountEvent> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["name"].as_str() == Some(name.as_str()))
            .map(|v| AccountEvent {
                name: name.clone(),
                at: v["at"].as_u64().unwrap_or(0),
                kind: v["kind"].as_str().unwrap_or("").to_string(),
                client: v["client"].as_str().unwrap_or("").to_string(),
                detail: v["detail"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        out.reverse();
        out.truncate(limit);
        Ok(out)
    }
}

/// The identifiers an account claims.
pub fn identifiers(u: &User) -> Vec<Identifier> {
    let mut v = vec![Identifier::Name(u.name.clone())];
    if !u.email.is_empty() {
        v.push(Identifier::Email(u.email.clone()));
    }
    if !u.phone.is_empty() {
        v.push(Identifier::Phone(u.phone.clone()));
    }
    v
}

/// The conflict error for an identifier that belongs to `owner`.
pub fn taken(id: &Identifier, owner: &str) -> AccountError {
    let key = id.key();
    let (kind, value) = key.split_once(':').unwrap_or(("identifier", &key));
    AccountError::Conflict(format!(
        "{kind} {value:?} already belongs to user {owner:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accounts waiting for the store to end their sessions: each ended once however
    /// often noted, and the wait told once (a log line), not on every try.
    #[test]
    fn a_wait_for_the_store_is_told_once_and_each_account_ended_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, "").unwrap();
        let f = FileAccounts::open(&path).unwrap();
        assert!(f.end_later(vec!["bob".into(), "ann".into()]));
        assert!(!f.end_later(vec!["bob".into()]), "the same wait");
        assert_eq!(f.take_ended(), ["ann", "bob"]);
        assert!(!f.end_later(vec![]), "the store answered");
        assert!(f.end_later(vec!["cy".into()]), "a new wait");
    }

    /// A re-read ends the sessions of accounts removed, or given another password or
    /// status without a new version (by hand); a change that raised the version, or
    /// one of anything else, ends nothing here.
    /// The account a thread remembers is the one of the accounts as last read: a
    /// re-read that disables it, or removes it, is seen by the next look-up.
    #[test]
    fn a_remembered_account_is_the_one_last_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let ann = User {
            name: "ann".into(),
            ..Default::default()
        };
        write_all(&path, std::slice::from_ref(&ann)).unwrap();
        let accounts = FileAccounts::open(&path).unwrap();
        assert!(!accounts.cached("ann").unwrap().disabled);
        // (Twice: the second from the thread's memory.)
        assert!(!accounts.cached("ann").unwrap().disabled);
        assert!(accounts.cached("bob").is_none());
        let mut disabled = ann.clone();
        disabled.disabled = true;
        write_all(&path, &[disabled]).unwrap();
        assert!(accounts.reload(true));
        assert!(accounts.cached("ann").unwrap().disabled);
        write_all(&path, &[]).unwrap();
        assert!(accounts.reload(true));
        assert!(accounts.cached("ann").is_none());
        // Another set of accounts in the same thread never answers for this one.
        write_all(&path, std::slice::from_ref(&ann)).unwrap();
        let other = FileAccounts::open(&path).unwrap();
        assert!(other.cached("ann").is_some());
        assert!(accounts.cached("ann").is_none());
    }

    #[test]
    fn a_re_read_ends_what_hand_edits_would_keep() {
        // Hashes as stored (PHC strings); "broken" one that can't be read.
        const SALT: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$";
        const PAD: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let user = |name: &str, password: &str, version: u64| User {
            name: name.into(),
            password: match password {
                "broken" => "$argon2id$v=19$m=19456".into(),
                p => format!("{SALT}{p}{PAD}"),
            },
            credentials_version: version,
            ..Default::default()
        };
        let dir = |users: Vec<User>| Directory::new(users).unwrap();
        let old = dir(vec![
            user("ann", "h1", 0),
            user("ben", "h1", 0),
            user("cy", "h1", 0),
            user("dee", "h1", 3),
            user("eve", "h1", 0),
            user("fay", "h1", 0),
        ]);
        let mut disabled = user("eve", "h1", 0);
        disabled.disabled = true;
        let mut renamed = user("cy", "h1", 0);
        renamed.display_name = "Cy".into();
        let new = dir(vec![
            user("ben", "h2", 0),
            renamed,
            user("dee", "h2", 4),
            disabled,
            user("fay", "broken", 0),
        ]);
        assert_eq!(ended_by(&old, &new), ["ann", "ben", "eve"]);
        assert!(ended_by(&old, &old).is_empty());
    }

    /// The users file, its lock file and its event log keep the users file's owner
    /// when rewritten or created by root (the CLI as the README runs it), so the
    /// gateway's own user can still read and write them. (As any other user, the
    /// files are that user's already: only root can write another's file.)
    #[cfg(unix)]
    #[tokio::test]
    async fn files_written_as_root_keep_the_users_files_owner() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let add = |name: &str| {
            let (name, email) = (name.to_string(), format!("{name}@example.com"));
            update(&path, move |u| {
                u.push(User {
                    name,
                    email,
                    ..Default::default()
                });
                Ok::<_, ()>(())
            })
            .unwrap()
            .unwrap();
        };
        add("alice");
        let root = std::fs::metadata(&path).unwrap().uid() == 0;
        let (uid, gid) = if root {
            // Another owner (`nobody`), as a service user would be; the lock file
            // already exists as root's, as a first CLI run leaves it.
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
            (65534, 65534)
        } else {
            let m = std::fs::metadata(&path).unwrap();
            (m.uid(), m.gid())
        };
        add("bob");
        let accounts = FileAccounts::open(&path).unwrap();
        accounts
            .record(AccountEvent {
                name: "bob".into(),
                at: 1,
                kind: "signin".into(),
                client: String::new(),
                detail: String::new(),
            })
            .await
            .unwrap();
        for f in [path.clone(), lock_path(&path), accounts.events_path()] {
            let m = std::fs::metadata(&f).unwrap();
            assert_eq!((m.uid(), m.gid()), (uid, gid), "{}", f.display());
        }
        assert_eq!(
            std::fs::metadata(&path).unwrap().mode() & 0o777,
            0o600,
            "still private"
        );
        assert_eq!(load(&path).unwrap().users().len(), 2);
    }

    /// As root (the CLI as the README runs it), a link planted at the lock file's,
    /// the event log's or the temporary file's name (the gateway's user owns the
    /// folder) never gets the file it names written to or given away (review: the
    /// lock file's link would have handed `/etc/shadow` to the gateway's user). As
    /// any other user there is nothing to give away, and the test has nothing to show.
    #[cfg(unix)]
    #[tokio::test]
    async fn as_root_a_planted_link_names_nothing_that_is_written_or_given_away() {
        use std::os::unix::fs::MetadataExt;
        if !running_as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        update(&path, |_| Ok::<_, ()>(())).unwrap().unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let victims: Vec<PathBuf> = (0..3)
            .map(|i| {
                let v = dir.path().join(format!("victim{i}"));
                std::fs::write(&v, "root's\n").unwrap();
                v
            })
            .collect();
        let accounts = FileAccounts::open(&path).unwrap();
        let tmp = dir
            .path()
            .join(format!(".users.toml.tmp{}", std::process::id()));
        let _ = std::fs::remove_file(lock_path(&path));
        for (at, victim) in [&lock_path(&path), &accounts.events_path(), &tmp]
            .into_iter()
            .zip(&victims)
        {
            std::os::unix::fs::symlink(victim, at).unwrap();
        }
        update(&path, |u| {
            u.push(User {
                name: "bob".into(),
                email: "bob@example.com".into(),
                ..Default::default()
            });
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        let event = AccountEvent {
            name: "bob".into(),
            at: 1,
            kind: "signin".into(),
            client: String::new(),
            detail: String::new(),
        };
        assert!(
            accounts.record(event).await.is_err(),
            "appended through a link"
        );
        for v in &victims {
            let m = std::fs::metadata(v).unwrap();
            assert_eq!((m.uid(), m.gid()), (0, 0), "{} given away", v.display());
            assert_eq!(std::fs::read_to_string(v).unwrap(), "root's\n");
        }
        assert_eq!(load(&path).unwrap().users().len(), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), 65534);
    }

    #[test]
    fn update_is_atomic_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        assert!(load(&path).unwrap().users().is_empty());
        update(&path, |u| {
            u.push(User {
                name: "alice".into(),
                email: "a@example.com".into(),
                ..Default::default()
            });
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(load(&path).unwrap().users().len(), 1);
        // A change that would create a duplicate identifier is refused and nothing is written.
        let r = update(&path, |u| {
            u.push(User {
                name: "bob".into(),
                email: "A@example.com".into(),
                ..Default::default()
            });
            Ok::<_, ()>(())
        });
        assert!(r.is_err());
        assert_eq!(load(&path).unwrap().users().len(), 1);
        // The callback's own error leaves the file untouched.
        let r = update(&path, |u| {
            u.clear();
            Err::<(), _>("no")
        })
        .unwrap();
        assert_eq!(r, Err("no"));
        assert_eq!(load(&path).unwrap().users().len(), 1);
    }

    /// The event log is bounded: a full one becomes the previous generation, the one
    /// before that goes, and an account's history is read across both.
    #[tokio::test]
    async fn event_log_is_bounded_and_read_across_generations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let accounts = FileAccounts::open(&path).unwrap();
        let clock = crate::clock::SystemClock;
        let event = |kind: &str| AccountEvent::now(&clock, "alice", kind, "192.0.2.1", "");
        accounts.record(event("first")).await.unwrap();
        // Fill the log to its bound with other accounts' events.
        let events = accounts.events_path();
        let filler =
            "{\"name\":\"bob\",\"at\":1,\"kind\":\"signin_ok\",\"client\":\"\",\"detail\":\"\"}\n";
        let mut text = std::fs::read_to_string(&events).unwrap();
        while (text.len() as u64) < EVENTS_FILE_BYTES {
            text.push_str(filler);
        }
        std::fs::write(&events, &text).unwrap();
        accounts.record(event("second")).await.unwrap();
        let previous = previous_events(&events);
        assert!(std::fs::metadata(&previous).unwrap().len() >= EVENTS_FILE_BYTES);
        assert!(std::fs::metadata(&events).unwrap().len() < 200);
        let kinds = |v: Vec<AccountEvent>| v.into_iter().map(|e| e.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds(accounts.events("alice", 10).await.unwrap()),
            ["second", "first"]
        );
        // Full again: the oldest generation (with "first") goes, nothing else.
        let mut text = std::fs::read_to_string(&events).unwrap();
        while (text.len() as u64) < EVENTS_FILE_BYTES {
            text.push_str(filler);
        }
        std::fs::write(&events, &text).unwrap();
        accounts.record(event("third")).await.unwrap();
        assert_eq!(
            kinds(accounts.events("alice", 10).await.unwrap()),
            ["third", "second"]
        );
        assert!(std::fs::metadata(&previous).unwrap().len() < 2 * EVENTS_FILE_BYTES);
    }
}
