//! `[users]`: `backend` file (the default, so configs from before databases keep
//! their meaning) | sqlite | postgres; `url` (a SQLite path is relative to the
//! config file); `cache_size`; `stale_for`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{resolve, Problems};
use crate::config::defaults::users as d;
use crate::config::raw::RawUsers;
use crate::config::values::UsersKind;
use crate::config::{UsersBackend, UsersConfig};

/// The users file (always set: `user import`/`export` and the file backend use it) and `[users]`.
pub fn validate(raw: RawUsers, base: &Path, v: &mut Problems<'_>) -> (PathBuf, UsersConfig) {
    let users_file = resolve(base, raw.file.as_deref().unwrap_or(d::FILE));
    let url = raw.url.as_deref().unwrap_or("").trim();
    let backend = match raw.backend.unwrap_or_default() {
        UsersKind::File => UsersBackend::File(users_file.clone()),
        UsersKind::Sqlite => sqlite(url, base, v).unwrap_or(UsersBackend::File(users_file.clone())),
        UsersKind::Postgres => {
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                UsersBackend::Sql(url.to_string())
            } else {
                v.err(
                    "users.url",
                    "the postgres backend needs url = \"postgres://user:password@host:5432/db\"",
                );
                UsersBackend::File(users_file.clone())
            }
        }
    };
    let users = UsersConfig {
        backend,
        cache_size: v.int(
            "users.cache_size",
            raw.cache_size,
            d::CACHE_SIZE,
            1,
            10_000_000,
        ) as usize,
        stale_for: v.duration(
            "users.stale_for",
            raw.stale_for,
            d::STALE_FOR,
            Duration::from_secs(0),
        ),
    };
    (users_file, users)
}

/// `sqlite:PATH[?query]` (or `sqlite://`) with PATH made absolute; none = `accounts.db`.
fn sqlite(url: &str, base: &Path, v: &mut Problems<'_>) -> Option<UsersBackend> {
    if url.is_empty() {
        let path = resolve(base, d::SQLITE_FILE);
        return Some(UsersBackend::Sql(format!("sqlite:{}", path.display())));
    }
    match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(path) if !path.is_empty() => {
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            let mut u = format!("sqlite:{}", resolve(base, path).display());
            if !query.is_empty() {
                u = format!("{u}?{query}");
            }
            Some(UsersBackend::Sql(u))
        }
        _ => {
            v.err(
                "users.url",
                "a SQLite URL looks like \"sqlite:accounts.db\"",
            );
            None
        }
    }
}
