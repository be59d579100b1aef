//! Configuration: the TOML file validated into the typed [`Config`] that the
//! rest of the gateway sees. Loading is a pipeline of four steps, each in its
//! own file:
//!
//! 1. [`parse`]: the text into the [`raw`] structs (the file format, with a
//!    `///` doc and the default of every key). Every key is checked on its own,
//!    so an unknown or mistyped key, a word that isn't one of its key's
//!    ([`values`]: serde enums) or a string that isn't a duration is reported
//!    with a hint and left out, and the rest is still read.
//! 2. [`validate`]: one pure validator per section (ranges, cross-key rules,
//!    names, URLs); defaults come from [`defaults`]. No files, network or clock.
//! 3. [`load`]: the I/O done at start-up — resolving upstreams, reading the
//!    files the config names, checking folders — with the same key paths.
//! 4. Every problem of the three steps comes back together, sorted, each with
//!    its key path (`session.idle_timeout: ...`).
//!
//! Paths in the file are relative to the file's own folder. [`warnings`] names
//! valid settings that are probably not what was meant.

pub mod defaults;
pub mod load;
pub mod parse;
pub mod raw;
pub mod validate;
pub mod values;
pub mod warnings;
pub mod webhook_body;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::policy::{Policy, Rule};
pub use values::{parse_duration, NotADuration};
pub use warnings::rule_warnings;

/// Every problem found in a config file, one line each with its key path.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Folder of the config file; relative paths were resolved against it.
    pub base_dir: PathBuf,
    pub server: ServerConfig,
    pub secrets_dir: PathBuf,
    pub session: SessionConfig,
    pub store: StoreConfig,
    pub users_file: PathBuf,
    /// `[users]`: where accounts live and how long cached ones are trusted.
    pub users: UsersConfig,
    pub password: PasswordConfig,
    pub defense: DefenseConfig,
    pub otp: OtpConfig,
    pub notify: NotifyConfig,
    pub ui: UiConfig,
    pub sites: Vec<Site>,
    pub rules: Vec<Rule>,
    /// `rules` indexed by host and path prefix (built from them, never changed apart).
    pub rule_index: crate::policy::RuleIndex,
    pub default_policy: Policy,
    /// `[assertion]`: settings of the signed identity.
    pub assertion: AssertionConfig,
    /// Every identity header name configured on any site (and not already in the
    /// static list of [`crate::proxy::headers`]), folded (lower-case, `_` as `-`):
    /// stripped from every client request.
    pub identity_strip: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AssertionConfig {
    /// `exp - iat` of each token.
    pub ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    /// Always starts with `/` and never ends with one, e.g. `/_auth`.
    pub portal_prefix: String,
    pub trusted_proxies: Vec<IpNet>,
    pub public_url: Option<url::Url>,
    pub threads: usize,
    /// A request header must arrive completely within this time of its first byte.
    pub header_timeout: Duration,
    /// Longest wait for an upstream to accept, answer, or take a write (504 after).
    pub upstream_timeout: Duration,
    /// Connections one client (address, IPv6 /64) may hold open; 0 = no cap.
    /// Peers in `trusted_proxies` are exempt.
    pub max_connections_per_client: usize,
    /// Idle upstream connections kept for reuse, per worker thread: Pingora keeps
    /// `threads` × this in one pool shared by the workers and all sites (its
    /// `upstream_keepalive_pool_size`); read at start only.
    pub upstream_idle_connections: usize,
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// `Strict-Transport-Security` value for answers on the TLS listener.
    pub hsts: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub cookie_name: String,
    /// Lower-case parent domain without a leading dot, when SSO across subdomains is on.
    pub domain: Option<String>,
    pub secure: bool,
    pub same_site: SameSite,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    Memory,
    Redis { url: String },
}

/// Where accounts live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersBackend {
    /// The TOML users file.
    File(PathBuf),
    /// `sqlite:/absolute/path` or `postgres://...`.
    Sql(String),
}

#[derive(Debug, Clone)]
pub struct UsersConfig {
    pub backend: UsersBackend,
    /// Most accounts a gateway keeps in memory (databases only).
    pub cache_size: usize,
    /// How long cached accounts keep serving signed-in requests while the
    /// database's change feed is unreachable.
    pub stale_for: Duration,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    pub key_prefix: String,
    /// Most keys the memory backend holds; new keys are refused beyond it.
    pub max_entries: usize,
    /// `store.session_cache`: how long a gateway reuses a session record it read
    /// before asking the store again (zero: never). Revocations reach every gateway
    /// at once by Redis pub/sub; this is the backstop.
    pub session_cache: Duration,
}

#[derive(Debug, Clone)]
pub struct PasswordConfig {
    /// Shortest new password when the account has a second factor.
    pub min_length: usize,
    /// Shortest new password when the password is the only factor (>= `min_length`).
    pub min_length_single_factor: usize,
    /// Lowest zxcvbn score (0-4) a new password may have.
    pub min_strength: u8,
    pub max_concurrent_hashes: usize,
    /// argon2id parameters for new hashes; other stored parameters are rehashed at sign-in.
    pub argon2: crate::auth::password::HashParams,
}

#[derive(Debug, Clone)]
pub struct DefenseConfig {
    pub captcha_after: u32,
    pub lock_after: u32,
    pub window: Duration,
    pub lock_duration: Duration,
    pub lock_max: Duration,
    pub ip_per_minute: u32,
    /// How long a browser stays a known device of an account after a sign-in.
    pub known_device_days: u32,
    /// Failures a known device may make before it is locked out too.
    pub known_device_lock_after: u32,
    /// Failed sign-ins per minute across all accounts above which every unknown
    /// device must solve a CAPTCHA (credential-stuffing breaker). 0 = off.
    pub spray_per_minute: u32,
    pub captcha_ttl: Duration,
    /// Always ask for a CAPTCHA before sending a password-reset code.
    pub captcha_on_reset: bool,
    /// Always ask for a CAPTCHA on the change-password form.
    pub captcha_on_password_change: bool,
    /// What a lock applies to: the whole account (default) or the account as seen
    /// from one client network (an attacker's network locks only itself out).
    pub lock_per_network: bool,
}

/// The TOTP hash: `otp.totp_algorithm`, and what each enrolment keeps (as
/// `"SHA1"`, `"SHA256"`, `"SHA512"`, the spelling of `otpauth://` URIs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TotpAlgorithm {
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
    #[serde(rename = "SHA512")]
    Sha512,
}

impl From<TotpAlgorithm> for totp_rs::Algorithm {
    fn from(a: TotpAlgorithm) -> totp_rs::Algorithm {
        match a {
            TotpAlgorithm::Sha1 => totp_rs::Algorithm::SHA1,
            TotpAlgorithm::Sha256 => totp_rs::Algorithm::SHA256,
            TotpAlgorithm::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

/// Whether accounts must use two-step verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Require {
    Optional,
    Required,
}

#[derive(Debug, Clone)]
pub struct OtpConfig {
    pub code_ttl: Duration,
    pub code_length: u32,
    pub max_attempts: u32,
    pub totp_issuer: String,
    /// For new enrolments; each enrolment keeps the parameters it was made with.
    pub totp_algorithm: TotpAlgorithm,
    pub totp_digits: u32,
    pub totp_period: u64,
    pub require: Require,
    /// Members of these groups must use two-step verification even when `require` is optional.
    pub require_groups: Vec<String>,
    /// "Remember this browser" lifetime; 0 = the option is not offered.
    pub remember_days: u32,
    /// Changing second factors needs a password entered within this time.
    pub reauth_after: Duration,
    /// Codes sent per account (and per destination) within `send_window`.
    pub send_limit: u32,
    /// Codes sent per client address within `send_window`.
    pub send_limit_client: u32,
    pub send_window: Duration,
    /// Least time between two codes for one sign-in.
    pub resend_after: Duration,
}

impl OtpConfig {
    /// Whether this account must have a second factor.
    pub fn required_for(&self, groups: &[String]) -> bool {
        self.require == Require::Required || groups.iter().any(|g| self.require_groups.contains(g))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyBackend {
    File,
    Log,
    Smtp,
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required, never skipped).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same machine.
    None,
}

/// A secret from the config file; `Debug` never shows it.
#[derive(Clone, Default)]
pub struct Secret(pub zeroize::Zeroizing<String>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The sender, e.g. `Portcullis <auth@example.com>`.
    pub from: String,
    /// An extra trusted root certificate (PEM) for an in-house relay.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: url::Url,
    /// Extra request headers, e.g. `Authorization`; values are secrets.
    pub headers: Vec<(String, Secret)>,
    pub content_type: String,
    /// A template of the request body (variables: channel, to, subject, text, kind, code).
    pub body: String,
    pub timeout: Duration,
}

/// The default webhook body: every field of the message as JSON.
pub const DEFAULT_WEBHOOK_BODY: &str = defaults::notify::WEBHOOK_BODY;

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub backend: NotifyBackend,
    pub file: PathBuf,
    /// Which backend carries each channel; `None` = the channel is not offered.
    pub email: Option<NotifyBackend>,
    pub sms: Option<NotifyBackend>,
    pub voice: Option<NotifyBackend>,
    pub smtp: Option<SmtpConfig>,
    pub webhook: Option<WebhookConfig>,
}

#[derive(Debug, Clone)]
pub struct UiConfig {
    /// A folder whose `*.html` files replace the built-in templates of the same name.
    pub templates: Option<PathBuf>,
    pub title: String,
    pub accent_color: String,
    /// An image shown on every portal page, served at `{prefix}/static/logo`.
    pub logo: Option<PathBuf>,
    /// National phone numbers on input are read as this region's (e.g. `"US"`).
    pub default_region: Option<String>,
    /// An email address or an http(s) URL people can ask for help.
    pub support_contact: Option<String>,
    /// A folder of `TAG.ftl` Fluent catalogues overriding or adding languages.
    pub locales: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Site {
    /// Lower-case host name, no port.
    pub host: std::sync::Arc<str>,
    /// `host` as a header value, made once: the `X-Forwarded-Host` of every
    /// forwarded request (a copy is a reference count).
    pub host_value: http::HeaderValue,
    /// The site's own upstream connection pool (Pingora's `group_key`), from its host
    /// and upstream CA: two sites on one upstream address never share a connection,
    /// and a site keeps its pool across config reloads that change neither (see
    /// [`Site::pool_key_of`]).
    pub pool_key: u64,
    pub upstream: SocketAddr,
    pub upstream_tls: bool,
    /// Private CA the upstream's certificate is verified against (else the system roots).
    pub upstream_ca: Option<crate::tls::UpstreamCa>,
    /// `allow_get_bodies`: a body on `GET`, `HEAD`, `OPTIONS` or `TRACE` is forwarded
    /// (else refused: see `crate::proxy`).
    pub allow_get_bodies: bool,
    /// `keep_alive_after_bodies`: a request with a body leaves its upstream
    /// connection open for the next (else it goes with `Connection: close`).
    pub keep_alive_after_bodies: bool,
    /// `[site.headers]`: how identity reaches this application.
    pub identity: std::sync::Arc<crate::identity::IdentityHeaders>,
    /// The headers every forwarded request starts from (see [`crate::identity::SiteHead`]).
    pub head: std::sync::Arc<crate::identity::SiteHead>,
}

impl Site {
    /// A stable 64-bit key for `host` and its upstream CA's certificates (SipHash
    /// with fixed keys: the same in every process and after every reload that keeps
    /// them; another CA makes another pool).
    pub fn pool_key_of(host: &str, ca: Option<u64>) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = crate::crypto::stable_hasher();
        host.hash(&mut h);
        ca.hash(&mut h);
        h.finish()
    }
}

impl Config {
    /// Reads, checks and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![format!("{}: cannot read: {e}", path.display())],
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        Self::from_str(&text, &base)
    }

    /// Parses config text; `base` is the folder relative paths start from.
    pub fn from_str(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let config = parse::parse_raw(text, &mut problems).map(|raw| {
            let (config, pending) = validate::validate(raw, base, &mut problems);
            load::complete(config, pending, &mut problems)
        });
        parse::sort_problems(&mut problems);
        match config {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(ConfigError { problems }),
        }
    }

    pub fn site(&self, host: &str) -> Option<&Site> {
        self.sites.iter().find(|s| *s.host == *host)
    }

    /// Settings that are valid but probably not what was meant, one line each
    /// with its key path. `check-config` prints them; `serve` logs them.
    pub fn warnings(&self) -> Vec<String> {
        rule_warnings(&self.rules, self.default_policy)
    }
}

/// Accepts a CIDR or a bare address (taken as a single host).
///
/// An IPv4-mapped network (`::ffff:10.0.0.0/104`) is the IPv4 network it maps
/// (`10.0.0.0/8`): peers and `X-Forwarded-For` entries are read as IPv4, so a
/// mapped network would otherwise match nobody.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    let net = s
        .parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))?
        .trunc();
    match net {
        IpNet::V6(n) if n.prefix_len() >= 96 => match n.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, n.prefix_len() - 96)
                .ok()
                .map(IpNet::V4),
            None => Some(net),
        },
        _ => Some(net),
    }
}

#[cfg(test)]
mod tests;
