//! TLS material the gateway loads from files: the listener's certificate (which
//! SIGHUP swaps without touching open connections), the `[server.tls] hsts`
//! value, and the private CAs a site's upstream is verified against.
//!
//! Pingora's rustls listener accepts a [`ResolvesServerCert`]; rustls asks it
//! for a certificate once per handshake. [`ServerCert`] answers from an
//! [`ArcSwap`], so a reload changes what *new* handshakes get while sessions
//! already established keep the keys they negotiated. A certificate or key that
//! doesn't load, or that don't belong together, is refused and the running one
//! stays.
//!
//! Not here: the listener itself and the reload signal ([`crate::server`]), and
//! which peer gets which CA ([`crate::proxy`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::protocols::tls::CaType;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert};
use pingora::utils::tls::WrappedX509;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not PEM: {detail}", .path.display())]
    Pem { path: PathBuf, detail: String },
    #[error("{}: no certificate in it", .path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: no private key in it (PKCS#8, PKCS#1 or SEC1 PEM)", .path.display())]
    NoKey { path: PathBuf },
    #[error("{}: {detail}", .path.display())]
    BadCertificate { path: PathBuf, detail: String },
    #[error("certificate {} and key {} don't go together: {detail}", .cert.display(), .key.display())]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    #[error("no TLS crypto provider available")]
    NoProvider,
}

/// Every PEM item in a file.
fn pem_items(path: &Path) -> Result<Vec<rustls_pemfile::Item>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    rustls_pemfile::read_all(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

/// The certificates in a PEM file, in order (leaf first for a chain).
fn pem_certs(path: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    let certs: Vec<Vec<u8>> = pem_items(path)?
        .into_iter()
        .filter_map(|i| match i {
            rustls_pemfile::Item::X509Certificate(c) => Some(c.as_ref().to_vec()),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Loads a certificate chain and its private key, and checks that they match.
pub fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    use pingora::tls::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = pem_certs(cert)?
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let private = pem_items(key)?
        .into_iter()
        .find_map(|i| match i {
            rustls_pemfile::Item::Pkcs8Key(k) => Some(PrivateKeyDer::from(k)),
            rustls_pemfile::Item::Pkcs1Key(k) => Some(PrivateKeyDer::from(k)),
            rustls_pemfile::Item::Sec1Key(k) => Some(PrivateKeyDer::from(k)),
            _ => None,
        })
        .ok_or_else(|| TlsError::NoKey {
            path: key.to_path_buf(),
        })?;
    pingora::tls::install_default_crypto_provider();
    let provider = CryptoProvider::get_default().ok_or(TlsError::NoProvider)?;
    // Checks that the key parses and is the one the leaf certificate names.
    CertifiedKey::from_der(chain, private, provider).map_err(|e| TlsError::KeyMismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        detail: e.to_string(),
    })
}

/// The listener's certificate, swappable while the listener runs.
pub struct ServerCert {
    current: ArcSwap<CertifiedKey>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key; the chain length is enough to tell instances apart.
        f.debug_struct("ServerCert")
            .field("chain_len", &self.current.load().cert.len())
            .finish()
    }
}

impl ServerCert {
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerCert>, TlsError> {
        Ok(Arc::new(ServerCert {
            current: ArcSwap::from_pointee(certified_key(cert, key)?),
        }))
    }

    /// Re-reads both files; on any problem the running certificate stays.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let new = certified_key(cert, key)?;
        self.current.store(Arc::new(new));
        Ok(())
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The CA certificates a site's upstream must chain to (`upstream_ca`), in the
/// form Pingora's peers take. Parsed once when the config is loaded.
#[derive(Clone)]
pub struct UpstreamCa(pub Arc<CaType>, pub u64);

impl std::fmt::Debug for UpstreamCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UpstreamCa({} certificates)", self.0.len())
    }
}

impl UpstreamCa {
    /// Every certificate in a PEM file; each must parse as X.509 (checked here,
    /// because Pingora's own parser panics on a bad one).
    pub fn load(path: &Path) -> Result<UpstreamCa, TlsError> {
        use std::hash::{Hash, Hasher};
        let mut out = Vec::new();
        // What the certificates are, as a key (fixed SipHash keys: the same in every
        // process): part of the site's upstream pool key, so a connection checked
        // against an older CA is never reused after a reload that changed it.
        let mut fingerprint = crate::crypto::stable_hasher();
        for der in pem_certs(path)? {
            der.hash(&mut fingerprint);
            let w = WrappedX509::try_new(der, |raw| {
                x509_parser::parse_x509_certificate(raw).map(|(_, c)| c)
            })
            .map_err(|e| TlsError::BadCertificate {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
            out.push(w);
        }
        // The same check rustls makes when it builds the trust store per connection.
        let mut store = pingora::tls::RootCertStore::empty();
        for w in &out {
            store
                .add(pingora::tls::CertificateDer::from(w))
                .map_err(|e| TlsError::BadCertificate {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?;
        }
        Ok(UpstreamCa(Arc::from(out), fingerprint.finish()))
    }
}

/// What is wrong with a `[server.tls] hsts` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HstsError {
    #[error("{0:?}: max-age must be given once, in seconds (e.g. \"max-age=31536000\")")]
    MaxAge(String),
    #[error("{value:?}: unknown directive {directive:?} (max-age, includeSubDomains, preload)")]
    Unknown { value: String, directive: String },
    #[error("{0:?} has no max-age (e.g. \"max-age=31536000; includeSubDomains\")")]
    NoMaxAge(String),
}

/// Checks a `Strict-Transport-Security` value as written in `[server.tls] hsts`:
/// `max-age=SECONDS` once, optionally `includeSubDomains` and `preload`.
/// Returns the value as it will be sent.
pub fn check_hsts(v: &str) -> Result<String, HstsError> {
    let mut max_age = false;
    let mut parts = Vec::new();
    for d in v.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let lower = d.to_ascii_lowercase();
        if let Some(n) = lower.strip_prefix("max-age=") {
            let n = n.trim_matches('"');
            if max_age || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.len() > 10 {
                return Err(HstsError::MaxAge(v.to_string()));
            }
            max_age = true;
            parts.push(format!("max-age={n}"));
        } else if lower == "includesubdomains" {
            parts.push("includeSubDomains".into());
        } else if lower == "preload" {
            parts.push("preload".into());
        } else {
            return Err(HstsError::Unknown {
                value: v.to_string(),
                directive: d.to_string(),
            });
        }
    }
    if !max_age {
        return Err(HstsError::NoMaxAge(v.to_string()));
    }
    Ok(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_values_are_checked_and_normalised() {
        let ok = [
            ("max-age=31536000", "max-age=31536000"),
            (
                "max-age=31536000; includeSubDomains",
                "max-age=31536000; includeSubDomains",
            ),
            (
                " MAX-AGE=\"60\" ;includesubdomains; preload ",
                "max-age=60; includeSubDomains; preload",
            ),
            ("max-age=0", "max-age=0"),
        ];
        for (input, want) in ok {
            assert_eq!(check_hsts(input).as_deref(), Ok(want), "{input}");
        }
        for bad in [
            "",
            "includeSubDomains",
            "max-age=",
            "max-age=1y",
            "max-age=-1",
            "max-age=1; max-age=2",
            "max-age=1; always",
            "max-age=1\r\nX-Evil: 1",
        ] {
            assert!(check_hsts(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// A self-signed CA certificate and key made with the openssl CLI (which
    /// `scripts/test.sh` installs): `{name}.pem`, `{name}.key` in `dir`.
    fn self_signed(dir: &Path, name: &str) {
        let o = std::process::Command::new("timeout")
            .args(["30", "openssl", "req", "-x509", "-newkey", "ec"])
            .args([
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
            ])
            .args(["-subj", &format!("/CN={name}")])
            .args(["-addext", "subjectAltName=DNS:app.test"])
            .arg("-keyout")
            .arg(dir.join(format!("{name}.key")))
            .arg("-out")
            .arg(dir.join(format!("{name}.pem")))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    fn config(dir: &Path, server_tls: &str, site: &str) -> Result<crate::config::Config, String> {
        let text = format!(
            "{server_tls}\n[[site]]\nhost = \"app.test\"\nupstream = \"127.0.0.1:3000\"\n{site}\n"
        );
        crate::config::Config::from_str(&text, dir).map_err(|e| e.to_string())
    }

    #[test]
    fn config_loads_tls_files_relative_to_itself_and_names_each_problem() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        self_signed(d, "a");
        self_signed(d, "b");

        let c = config(
            d,
            "[server.tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nhsts = \"max-age=600\"",
            "upstream_tls = true\nupstream_ca = \"b.pem\"",
        )
        .unwrap();
        let tls = c.server.tls.unwrap();
        assert_eq!(tls.cert, d.join("a.pem"));
        assert_eq!(tls.hsts.as_deref(), Some("max-age=600"));
        assert_eq!(
            c.sites[0].upstream_ca.as_ref().map(|ca| ca.0.len()),
            Some(1)
        );
        // Empty hsts = none; no upstream_ca = system roots.
        let c = config(
            d,
            "[server.tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nhsts = \"\"",
            "upstream_tls = true",
        )
        .unwrap();
        assert_eq!(c.server.tls.unwrap().hsts, None);
        assert!(c.sites[0].upstream_ca.is_none());

        let table = [
            (
                "[server.tls]\ncert = \"a.pem\"\nkey = \"b.key\"",
                "",
                "server.tls: certificate",
                "don't go together",
            ),
            (
                "[server.tls]\ncert = \"nope.pem\"\nkey = \"a.key\"",
                "",
                "server.tls:",
                "nope.pem: cannot read",
            ),
            (
                "[server.tls]\ncert = \"a.pem\"\nkey = \"a.pem\"",
                "",
                "server.tls:",
                "no private key",
            ),
            (
                "[server.tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nhsts = \"1 year\"",
                "",
                "server.tls.hsts:",
                "unknown directive",
            ),
            (
                "",
                "upstream_ca = \"b.pem\"",
                "site[0].upstream_ca:",
                "upstream_tls = true",
            ),
            (
                "",
                "upstream_tls = true\nupstream_ca = \"none.pem\"",
                "site[0].upstream_ca:",
                "none.pem: cannot read",
            ),
            (
                "",
                "upstream_tls = true\nupstream_ca = \"a.key\"",
                "site[0].upstream_ca:",
                "no certificate",
            ),
        ];
        for (server_tls, site, key, what) in table {
            let err = config(d, server_tls, site).unwrap_err();
            let line = err
                .lines()
                .find(|l| l.starts_with(key))
                .unwrap_or_else(|| panic!("{server_tls} / {site}: no {key} in {err}"));
            assert!(line.contains(what), "{line}");
        }
    }

    #[test]
    fn a_reload_that_fails_keeps_the_running_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        self_signed(d, "a");
        self_signed(d, "b");
        let cert = ServerCert::load(&d.join("a.pem"), &d.join("a.key")).unwrap();
        let first = cert.current.load_full().cert[0].clone();
        assert!(cert.reload(&d.join("b.pem"), &d.join("a.key")).is_err());
        assert!(cert
            .reload(&d.join("missing.pem"), &d.join("b.key"))
            .is_err());
        assert_eq!(cert.current.load().cert[0], first);
        cert.reload(&d.join("b.pem"), &d.join("b.key")).unwrap();
        assert_ne!(cert.current.load().cert[0], first);
        // Debug never shows the key.
        assert_eq!(format!("{cert:?}"), "ServerCert { chain_len: 1 }");
    }

    #[test]
    fn missing_or_broken_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            certified_key(&missing, &missing),
            Err(TlsError::Read { .. })
        ));
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        assert!(matches!(
            certified_key(&junk, &junk),
            Err(TlsError::NoCertificate { .. })
        ));
        assert!(matches!(
            UpstreamCa::load(&junk),
            Err(TlsError::NoCertificate { .. })
        ));
        // Valid PEM framing around bytes that aren't X.509.
        let fake = dir.path().join("fake.pem");
        std::fs::write(
            &fake,
            "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(matches!(
            UpstreamCa::load(&fake),
            Err(TlsError::BadCertificate { .. })
        ));
    }
}
