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

use super::{Directory, User};

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
    Directory::new(users).map_err(|msg| UsersFileError::Parse {
        path: path.to_path_buf(),
        msg,
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
    let lock_path = lock_path(path);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(werr)?;
    lock.lock().map_err(werr)?;
    let mut users = read_users(path)?;
    let out = match f(&mut users) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    // Validate before writing: a change must never leave an unreadable file.
    Directory::new(users.clone()).map_err(|msg| UsersFileError::Parse {
        path: path.to_path_buf(),
        msg,
    })?;
    write_atomic(path, &users).map_err(werr)?;
    drop(lock);
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
        let mut f = create_private(&tmp)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
