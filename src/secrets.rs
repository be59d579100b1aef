//! Key material kept in `secrets.dir`: `cookie.key` (64 random bytes: cookie
//! encryption and signing), `data.key` (32 random bytes: second-factor
//! secrets at rest) and `assertion.key` (P-256, PKCS#8 PEM: signs identity
//! assertions, read by [`crate::assertion`]). Created 0600 by `portcullis init`;
//! never logged.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {path} is missing; run `portcullis init` to create it")]
    Missing { path: PathBuf },
    #[error("secret {path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error("cannot write secret {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The keys, zeroised on drop; `Debug` shows nothing.
pub struct Secrets {
    pub cookie_key: Zeroizing<Vec<u8>>,
    pub data_key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

const COOKIE_KEY: (&str, usize) = ("cookie.key", 64);
const DATA_KEY: (&str, usize) = ("data.key", 32);

impl Secrets {
    pub fn load(dir: &Path) -> Result<Secrets, SecretsError> {
        Ok(Secrets {
            cookie_key: read_key(dir, COOKIE_KEY)?,
            data_key: read_key(dir, DATA_KEY)?,
        })
    }

    /// Every problem [`load`](Self::load) would stop at, for each key file
    /// (`check-config` reports them all at once).
    pub fn problems(dir: &Path) -> Vec<SecretsError> {
        [COOKIE_KEY, DATA_KEY]
            .into_iter()
            .filter_map(|k| read_key(dir, k).err())
            .collect()
    }

    /// Creates any missing key file (0600) in `dir` (0700); returns the files created.
    pub fn create_missing(dir: &Path) -> Result<Vec<PathBuf>, SecretsError> {
        let werr = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SecretsError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(werr(dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(werr(dir))?;
        }
        let mut created = Vec::new();
        for (name, len) in [COOKIE_KEY, DATA_KEY] {
            let path = dir.join(name);
            if path.exists() {
                continue;
            }
            let mut bytes = Zeroizing::new(vec![0u8; len]);
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            create_private_file(dir, &path, &bytes)?;
            created.push(path);
        }
        let path = dir.join(crate::assertion::KEY_FILE);
        if !path.exists() {
            let pem = crate::assertion::generate_pem().map_err(|msg| SecretsError::Invalid {
                path: path.clone(),
                msg,
            })?;
            create_private_file(dir, &path, pem.as_bytes())?;
            created.push(path);
        }
        Ok(created)
    }
}

/// Writes `bytes` to a file readable by its owner only (0600) in `dir`; callers
/// make sure they aren't replacing a key that exists.
pub(crate) fn create_private_file(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
) -> Result<(), SecretsError> {
    let werr = |source| SecretsError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|source| SecretsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut f = crate::users::file::create_private(path).map_err(werr)?;
    f.write_all(bytes).map_err(werr)?;
    f.sync_all().map_err(werr)
}

fn read_key(dir: &Path, (name, len): (&str, usize)) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let path = dir.join(name);
    let bytes = read_private(&path)?;
    if bytes.len() < len {
        return Err(SecretsError::Invalid {
            path,
            msg: format!("must hold at least {len} bytes"),
        });
    }
    Ok(bytes)
}

/// A secret file's bytes; refuses files readable by others.
pub(crate) fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let path = path.to_path_buf();
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SecretsError::Missing { path })
        }
        Err(e) => {
            return Err(SecretsError::Invalid {
                path,
                msg: e.to_string(),
            })
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = f.metadata() {
            if m.mode() & 0o077 != 0 {
                return Err(SecretsError::Invalid {
                    path,
                    msg: format!(
                        "is readable by others (mode {:o}); run chmod 600 on it",
                        m.mode() & 0o777
                    ),
                });
            }
        }
    }
    let mut bytes = Zeroizing::new(Vec::new());
    f.read_to_end(&mut bytes)
        .map_err(|e| SecretsError::Invalid {
            path: path.clone(),
            msg: e.to_string(),
        })?;
    Ok(bytes)
}

/// A database or Redis URL fit for messages and logs: the password replaced by `***`.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL we can take apart: say only what kind of database it is.
        Err(_) => url.split(':').next().unwrap_or("").to_string() + ":…",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_load_and_refuse_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("secrets");
        assert!(matches!(
            Secrets::load(&s),
            Err(SecretsError::Missing { .. })
        ));
        assert_eq!(Secrets::create_missing(&s).unwrap().len(), 3);
        let (keys, created) = crate::assertion::Keys::load(&s, true).unwrap();
        assert!(
            keys.can_sign() && created.is_none(),
            "assertion.key made by init"
        );
        assert!(
            Secrets::create_missing(&s).unwrap().is_empty(),
            "never overwrites"
        );
        let k = Secrets::load(&s).unwrap();
        assert_eq!(k.cookie_key.len(), 64);
        assert_eq!(format!("{k:?}"), "Secrets(<redacted>)");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(s.join("cookie.key"), std::fs::Permissions::from_mode(0o644))
                .unwrap();
            assert!(matches!(
                Secrets::load(&s),
                Err(SecretsError::Invalid { .. })
            ));
        }
    }
}
