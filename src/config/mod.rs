//! Configuration: the TOML file ([`raw`]) validated into the typed [`Config`]
//! that the rest of the gateway sees.
//!
//! Loading never stops at the first problem: every key is checked on its own
//! (an unknown or mistyped key is reported with a hint and left out), then the
//! rest is validated, and all problems come back together, sorted and each
//! with its key path (`session.idle_timeout: ...`). Paths in the file are
//! relative to the file's own folder.

pub mod raw;
pub mod webhook_body;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::de::DeserializeOwned;

use crate::policy::{Policy, Rule};
use raw::*;

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

impl NotifyBackend {
    fn parse(s: &str) -> Option<NotifyBackend> {
        match s {
            "file" => Some(NotifyBackend::File),
            "log" => Some(NotifyBackend::Log),
            "smtp" => Some(NotifyBackend::Smtp),
            "webhook" => Some(NotifyBackend::Webhook),
            _ => None,
        }
    }
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
pub const DEFAULT_WEBHOOK_BODY: &str = "{\"channel\": {{ channel|tojson }}, \"to\": {{ to|tojson }}, \"subject\": {{ subject|tojson }}, \"text\": {{ text|tojson }}, \"kind\": {{ kind|tojson }}}";

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
    pub host: String,
    pub upstream: SocketAddr,
    pub upstream_tls: bool,
    /// Private CA the upstream's certificate is verified against (else the system roots).
    pub upstream_ca: Option<crate::tls::UpstreamCa>,
    /// `[site.headers]`: how identity reaches this application.
    pub identity: std::sync::Arc<crate::identity::IdentityHeaders>,
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
        let raw = parse_raw(text, &mut problems);
        let config = raw.and_then(|raw| validate(raw, base, &mut problems));
        sort_problems(&mut problems);
        match config {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(ConfigError { problems }),
        }
    }

    pub fn site(&self, host: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.host == host)
    }

    /// Settings that are valid but probably not what was meant, one line each
    /// with its key path. `check-config` prints them; `serve` logs them.
    pub fn warnings(&self) -> Vec<String> {
        rule_warnings(&self.rules, self.default_policy)
    }
}

/// A `[[rule]]` with `groups` applies only to members of those groups; everyone
/// else falls through to the rules after it and then `access.default_policy`.
/// Unless something later denies the same requests, such a rule takes nothing
/// away from anyone outside the groups: it only changes what members need.
/// Warns for each groups-rule (policy other than `deny`) that no later rule
/// denies for everyone with the same or a covering host, path, methods and
/// networks, when `default_policy` isn't `deny` either.
pub fn rule_warnings(rules: &[Rule], default_policy: Policy) -> Vec<String> {
    if default_policy == Policy::Deny {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        if r.groups.is_empty() || r.policy == Policy::Deny {
            continue;
        }
        if rules[i + 1..].iter().any(|d| denies_all_of(d, r)) {
            continue;
        }
        out.push(format!(
            "rule[{i}]: groups = {:?} with policy = \"{}\" restricts nothing for anyone else: \
             they fall through to the next rule or access.default_policy (\"{}\"); \
             add a later rule with the same host and path and policy = \"deny\"",
            r.groups,
            r.policy.as_str(),
            default_policy.as_str(),
        ));
    }
    out
}

/// Does `d` deny, for everyone, every request that `r` matches?
fn denies_all_of(d: &Rule, r: &Rule) -> bool {
    let host = d.host.is_none() || d.host == r.host;
    // Prefixes are compared on whole segments (as `/admin` covers `/admin/x` but
    // not `/administrator`), and without case: a deny rule matches any case.
    let (dp, rp) = (d.path.to_ascii_lowercase(), r.path.to_ascii_lowercase());
    let path =
        rp == dp || (rp.starts_with(&dp) && (dp.ends_with('/') || rp[dp.len()..].starts_with('/')));
    let methods = d.methods.is_empty()
        || (!r.methods.is_empty() && r.methods.iter().all(|m| d.methods.contains(m)));
    let networks = d.networks.is_empty()
        || (!r.networks.is_empty()
            && r.networks
                .iter()
                .all(|n| d.networks.iter().any(|dn| dn.contains(n))));
    d.policy == Policy::Deny && d.groups.is_empty() && host && path && methods && networks
}

/// The top-level sections of the file, each with the check for its keys.
type SectionCheck = fn(&str, &mut toml::Value, &mut Vec<String>) -> bool;
const SECTIONS: [(&str, SectionCheck); 14] = [
    ("server", check_section::<RawServer>),
    ("secrets", check_section::<RawSecrets>),
    ("session", check_section::<RawSession>),
    ("store", check_section::<RawStore>),
    ("users", check_section::<RawUsers>),
    ("password", check_section::<RawPassword>),
    ("defense", check_section::<RawDefense>),
    ("otp", check_section::<RawOtp>),
    ("notify", check_section::<RawNotify>),
    ("ui", check_section::<RawUi>),
    ("site", check_array::<RawSite>),
    ("rule", check_array::<RawRule>),
    ("access", check_section::<RawAccess>),
    ("assertion", check_section::<RawAssertion>),
];

/// Checks every key on its own, so that all problems are found: a key that is
/// unknown or doesn't read as its type is reported (with a hint) and left out,
/// and the rest of the file is still read — so [`validate`] reports the bad
/// values in the same run.
fn parse_raw(text: &str, problems: &mut Vec<String>) -> Option<RawConfig> {
    let mut root: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("syntax: {}", e.to_string().trim()));
            return None;
        }
    };
    let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
    let keys: Vec<String> = root.keys().cloned().collect();
    for key in keys {
        let keep = match (SECTIONS.iter().find(|(n, _)| *n == key), root.get_mut(&key)) {
            (Some((_, check)), Some(value)) => check(&key, value, problems),
            _ => {
                problems.push(format!(
                    "{key}: unknown section{}",
                    hint(&key, names.iter().copied())
                ));
                false
            }
        };
        if !keep {
            root.remove(&key);
        }
    }
    match toml::Value::Table(root).try_into::<RawConfig>() {
        Ok(raw) => Some(raw),
        Err(e) => {
            problems.push(clean_serde_error(&e.to_string()));
            None
        }
    }
}

/// serde's message on one line, without the trailing "in `key`" (the key path
/// says it) and with TOML's names for the expected types.
fn clean_serde_error(msg: &str) -> String {
    let mut m = msg.trim().replace('\n', " ");
    if let Some(i) = m.rfind(" in `").filter(|_| m.ends_with('`')) {
        m.truncate(i);
    }
    for (rust, toml) in [
        ("expected i64", "expected an integer"),
        ("expected u64", "expected an integer"),
        ("expected u32", "expected an integer"),
        ("expected usize", "expected an integer"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ] {
        m = m.replace(rust, toml);
    }
    if let Some(i) = m.find("expected struct ") {
        m.replace_range(i.., "expected a table");
    }
    m
}

/// `; did you mean `x`? (valid keys: a, b, c)` for a name that isn't one of `known`.
fn hint<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    if known.is_empty() {
        return " (this table takes no keys)".into();
    }
    let lower = name.to_ascii_lowercase();
    let nearest = known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .min()
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(2))
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    format!("{nearest} (valid keys: {})", known.join(", "))
}

/// Levenshtein distance over chars (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// From serde's `unknown field `x`, expected one of `a`, `b`` (any of its
/// spellings): the unknown name and the expected ones.
fn unknown_field(msg: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.split_once("unknown field `")?.1;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split_once("expected")
        .map(|(_, e)| {
            e.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some((name.to_string(), expected))
}

/// The dotted path, inside `v`, of a table that has a key `name`.
fn find_key(v: &toml::Value, name: &str) -> Option<Vec<String>> {
    let t = v.as_table()?;
    if t.contains_key(name) {
        return Some(Vec::new());
    }
    t.iter().find_map(|(k, sub)| {
        find_key(sub, name).map(|mut p| {
            p.insert(0, k.clone());
            p
        })
    })
}

fn remove_at(v: &mut toml::Value, path: &[String], name: &str) -> bool {
    let Some(t) = v.as_table_mut() else {
        return false;
    };
    match path.split_first() {
        None => t.remove(name).is_some(),
        Some((first, rest)) => t.get_mut(first).is_some_and(|s| remove_at(s, rest, name)),
    }
}

/// Checks each key of the table `[path]` on its own; reports and removes the
/// keys (also of nested tables) that are unknown or don't read as their type.
/// Returns false when `value` isn't a table at all (the caller drops it).
fn check_section<T: DeserializeOwned>(
    path: &str,
    value: &mut toml::Value,
    problems: &mut Vec<String>,
) -> bool {
    let Some(table) = value.as_table_mut() else {
        problems.push(format!("{path}: expected a table ([{path}])"));
        return false;
    };
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        // Each round takes one problem out of this key (a nested table may hold several).
        while let Some(v) = table.get(&key) {
            let mut one = toml::Table::new();
            one.insert(key.clone(), v.clone());
            let Err(e) = toml::Value::Table(one).try_into::<T>() else {
                break;
            };
            let msg = clean_serde_error(&e.to_string());
            match unknown_field(&msg) {
                Some((name, expected)) if name == key => {
                    problems.push(format!(
                        "{path}.{key}: unknown key{}",
                        hint(&key, expected.iter().map(String::as_str))
                    ));
                    table.remove(&key);
                    break;
                }
                Some((name, expected)) => {
                    let removed = table.get_mut(&key).and_then(|v| {
                        let p = find_key(v, &name)?;
                        remove_at(v, &p, &name).then_some(p)
                    });
                    match removed {
                        Some(p) => {
                            let mut full = vec![path.to_string(), key.clone()];
                            full.extend(p);
                            full.push(name.clone());
                            problems.push(format!(
                                "{}: unknown key{}",
                                full.join("."),
                                hint(&name, expected.iter().map(String::as_str))
                            ));
                        }
                        _ => {
                            problems.push(format!("{path}.{key}: {msg}"));
                            table.remove(&key);
                            break;
                        }
                    }
                }
                None => {
                    problems.push(format!("{path}.{key}: {msg}"));
                    table.remove(&key);
                    break;
                }
            }
        }
    }
    true
}

/// Checks each `[[path]]` table; one that isn't a table is reported and
/// emptied (not removed, so the indices of the others stay as in the file).
fn check_array<T: DeserializeOwned>(
    path: &str,
    value: &mut toml::Value,
    problems: &mut Vec<String>,
) -> bool {
    let Some(items) = value.as_array_mut() else {
        problems.push(format!("{path}: expected an array of tables ([[{path}]])"));
        return false;
    };
    for (i, item) in items.iter_mut().enumerate() {
        if !check_section::<T>(&format!("{path}[{i}]"), item, problems) {
            *item = toml::Value::Table(toml::Table::new());
        }
    }
    true
}

/// Sorts problems by their key path (numbers in `rule[10]` as numbers) and
/// drops repeats.
fn sort_problems(problems: &mut Vec<String>) {
    fn chunks(s: &str) -> Vec<(String, u64)> {
        let path = s.split_once(": ").map_or(s, |(p, _)| p);
        let mut out = Vec::new();
        let mut text = String::new();
        let mut num: Option<u64> = None;
        for c in path.chars() {
            if let Some(d) = c.to_digit(10) {
                num = Some(
                    num.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(u64::from(d)),
                );
            } else {
                if let Some(n) = num.take() {
                    out.push((std::mem::take(&mut text), n));
                }
                text.push(c);
            }
        }
        out.push((text, num.unwrap_or(0)));
        out
    }
    problems.sort_by(|a, b| chunks(a).cmp(&chunks(b)).then_with(|| a.cmp(b)));
    problems.dedup();
}

/// Parses `"90s"`, `"15m"`, `"12h"`, `"30d"` (and anything humantime accepts).
pub fn parse_duration(s: &str) -> Result<Duration, NotADuration> {
    humantime::parse_duration(s.trim()).map_err(|_| NotADuration(s.to_string()))
}

/// A config value that [`parse_duration`] doesn't read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration (use e.g. \"90s\", \"15m\", \"12h\", \"30d\")")]
pub struct NotADuration(pub String);

struct V<'a> {
    problems: &'a mut Vec<String>,
}

impl V<'_> {
    fn err(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{key}: {msg}"));
    }

    fn duration(
        &mut self,
        key: &str,
        v: Option<&String>,
        default: &str,
        min: Duration,
    ) -> Duration {
        let fallback = parse_duration(default).unwrap_or(min);
        match v {
            None => fallback,
            Some(s) => match parse_duration(s) {
                Ok(d) if d >= min => d,
                Ok(_) => {
                    self.err(
                        key,
                        format!("must be at least {}", humantime::format_duration(min)),
                    );
                    fallback
                }
                Err(e) => {
                    self.err(key, e);
                    fallback
                }
            },
        }
    }

    fn int(&mut self, key: &str, v: Option<i64>, default: i64, min: i64, max: i64) -> i64 {
        match v {
            None => default,
            Some(n) if (min..=max).contains(&n) => n,
            Some(n) => {
                self.err(key, format!("{n} is out of range ({min} to {max})"));
                default
            }
        }
    }

    fn addr(&mut self, key: &str, v: &str) -> Option<SocketAddr> {
        match v.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    key,
                    format!("{v:?} is not an address like \"127.0.0.1:8080\""),
                );
                None
            }
        }
    }

    fn cidrs(&mut self, key: &str, v: &[String]) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, s) in v.iter().enumerate() {
            match parse_cidr(s) {
                Some(n) => out.push(n),
                None => self.err(
                    &format!("{key}[{i}]"),
                    format!("{s:?} is not a CIDR like \"10.0.0.0/8\""),
                ),
            }
        }
        out
    }
}

/// Accepts a CIDR or a bare address (taken as a single host).
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
        .map(|n| n.trunc())
}

/// `[users]`: `backend` file (the default, so configs from before databases keep
/// their meaning) | sqlite | postgres; `url` (a SQLite path is relative to the
/// config file); `cache_size`; `stale_for`.
fn validate_users(raw: raw::RawUsers, base: &Path, v: &mut V<'_>) -> (PathBuf, UsersConfig) {
    let users_file = resolve(base, raw.file.as_deref().unwrap_or("users.toml"));
    let url = raw.url.as_deref().unwrap_or("").trim().to_string();
    let backend = match raw.backend.as_deref().unwrap_or("file") {
        "file" => UsersBackend::File(users_file.clone()),
        "sqlite" => {
            let rest = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"));
            match rest {
                _ if url.is_empty() => {
                    UsersBackend::Sql(format!("sqlite:{}", resolve(base, "accounts.db").display()))
                }
                Some(path) if !path.is_empty() => {
                    let (path, query) = path.split_once('?').unwrap_or((path, ""));
                    let mut u = format!("sqlite:{}", resolve(base, path).display());
                    if !query.is_empty() {
                        u = format!("{u}?{query}");
                    }
                    UsersBackend::Sql(u)
                }
                _ => {
                    v.err(
                        "users.url",
                        "a SQLite URL looks like \"sqlite:accounts.db\"",
                    );
                    UsersBackend::File(users_file.clone())
                }
            }
        }
        "postgres" => {
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                UsersBackend::Sql(url.clone())
            } else {
                v.err(
                    "users.url",
                    "the postgres backend needs url = \"postgres://user:password@host:5432/db\"",
                );
                UsersBackend::File(users_file.clone())
            }
        }
        other => {
            v.err(
                "users.backend",
                format!("{other:?} is not supported (file, sqlite or postgres)"),
            );
            UsersBackend::File(users_file.clone())
        }
    };
    let cache_size = v.int("users.cache_size", raw.cache_size, 10_000, 1, 10_000_000) as usize;
    let stale_for = v.duration(
        "users.stale_for",
        raw.stale_for.as_ref(),
        "5m",
        Duration::from_secs(0),
    );
    (
        users_file,
        UsersConfig {
            backend,
            cache_size,
            stale_for,
        },
    )
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A host name as written in `[[site]].host` or `session.domain`: lower-case, no port.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn validate(raw: RawConfig, base: &Path, problems: &mut Vec<String>) -> Option<Config> {
    let mut v = V { problems };

    let server = validate_server(raw.server, base, &mut v);

    // [secrets]
    let secrets_dir = resolve(base, raw.secrets.dir.as_deref().unwrap_or("secrets"));

    let session = validate_session(raw.session, &mut v);

    let store = validate_store(raw.store, &mut v);

    // [users]
    let (users_file, users) = validate_users(raw.users, base, &mut v);

    let password = validate_password(&raw.password, &mut v);

    let defense = validate_defense(&raw.defense, &mut v);

    let otp = validate_otp(&raw.otp, &mut v);

    let notify = validate_notify(&raw.notify, base, &mut v);

    let ui = validate_ui(raw.ui, base, &mut v);

    let sites = validate_sites(&raw.site, base, &mut v);
    let identity_strip = identity_strip_names(&sites);
    let assertion = AssertionConfig {
        ttl: v.duration(
            "assertion.ttl",
            raw.assertion.ttl.as_ref(),
            "60s",
            Duration::from_secs(1),
        ),
    };

    let rules = validate_rules(&raw.rule, &sites, &mut v);
    let default_policy = match raw.access.default_policy.as_deref().map(Policy::parse) {
        None => Policy::OneFactor,
        Some(Some(p)) => p,
        Some(None) => {
            v.err(
                "access.default_policy",
                "must be one of bypass, one_factor, two_factor, deny",
            );
            Policy::OneFactor
        }
    };

    Some(Config {
        base_dir: base.to_path_buf(),
        server,
        secrets_dir,
        session,
        store,
        users_file,
        users,
        password,
        defense,
        otp,
        notify,
        ui,
        sites,
        rule_index: crate::policy::RuleIndex::new(&rules),
        rules,
        default_policy,
        assertion,
        identity_strip,
    })
}

/// `[password]`.
fn validate_password(p: &raw::RawPassword, v: &mut V<'_>) -> PasswordConfig {
    let min_length = v.int("password.min_length", p.min_length, 8, 1, 1024) as usize;
    PasswordConfig {
        min_length,
        min_length_single_factor: (v.int(
            "password.min_length_single_factor",
            p.min_length_single_factor,
            15,
            1,
            1024,
        ) as usize)
            .max(min_length),
        min_strength: v.int("password.min_strength", p.min_strength, 3, 0, 4) as u8,
        argon2: crate::auth::password::HashParams {
            memory_kib: v.int(
                "password.argon2_memory_kib",
                p.argon2_memory_kib,
                19_456,
                8,
                4 * 1024 * 1024,
            ) as u32,
            iterations: v.int("password.argon2_iterations", p.argon2_iterations, 2, 1, 100) as u32,
            parallelism: v.int(
                "password.argon2_parallelism",
                p.argon2_parallelism,
                1,
                1,
                16,
            ) as u32,
        },
        max_concurrent_hashes: v.int(
            "password.max_concurrent_hashes",
            p.max_concurrent_hashes,
            2,
            1,
            256,
        ) as usize,
    }
}

/// `[ui]`: the folders and files it names must exist; the contact and region must parse.
fn validate_ui(u: raw::RawUi, base: &Path, v: &mut V<'_>) -> UiConfig {
    let accent_color = u.accent_color.unwrap_or_else(|| "#1f5fbf".into());
    let hex_ok = accent_color.len() == 7
        && accent_color.starts_with('#')
        && accent_color[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if !hex_ok {
        v.err(
            "ui.accent_color",
            format!("{accent_color:?} must be a colour like \"#1f5fbf\""),
        );
    }
    let ui = UiConfig {
        templates: u.templates.as_deref().map(|p| resolve(base, p)),
        title: u.title.unwrap_or_else(|| "Sign in".into()),
        accent_color,
        logo: u.logo.as_deref().map(|p| resolve(base, p)),
        default_region: u
            .default_region
            .filter(|r| !r.is_empty())
            .map(|r| r.to_ascii_uppercase()),
        support_contact: u.support_contact.filter(|c| !c.trim().is_empty()),
        locales: u.locales.as_deref().map(|p| resolve(base, p)),
    };
    if let Some(l) = &ui.locales {
        if !l.is_dir() {
            v.err("ui.locales", format!("{} is not a folder", l.display()));
        } else if let Err(e) = crate::i18n::Catalogues::load(Some(l)) {
            v.err("ui.locales", e.to_string());
        }
    }
    if let Some(r) = &ui.default_region {
        if crate::portal::help::calling_region(r).is_none() {
            v.err(
                "ui.default_region",
                format!("{r:?} is not a two-letter region with phone numbers (e.g. \"US\")"),
            );
        }
    }
    if let Some(c) = &ui.support_contact {
        if crate::portal::help::Contact::parse(c).is_none() {
            v.err(
                "ui.support_contact",
                format!("{c:?} must be an email address or an http(s) URL"),
            );
        }
    }
    if let Some(t) = &ui.templates {
        if !t.is_dir() {
            v.err("ui.templates", format!("{} is not a folder", t.display()));
        }
    }
    if let Some(l) = &ui.logo {
        if !l.is_file() {
            v.err("ui.logo", format!("{} is not a file", l.display()));
        }
    }
    ui
}

/// `[session]`.
fn validate_session(ses: RawSession, v: &mut V<'_>) -> SessionConfig {
    let cookie_name = ses.cookie_name.unwrap_or_else(|| "portcullis".into());
    if cookie_name.is_empty()
        || !cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        v.err(
            "session.cookie_name",
            format!("{cookie_name:?} may use only letters, digits, '-', '_' and '.'"),
        );
    }
    let domain = match ses
        .domain
        .as_deref()
        .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase())
    {
        None => None,
        Some(d) if d.is_empty() => None,
        Some(d) => {
            if !valid_host(&d) || !d.contains('.') {
                v.err(
                    "session.domain",
                    format!("{d:?} is not a parent domain like \"example.com\""),
                );
            }
            Some(d)
        }
    };
    let secure = ses.secure.unwrap_or(true);
    let same_site = match ses
        .same_site
        .as_deref()
        .unwrap_or("lax")
        .to_ascii_lowercase()
        .as_str()
    {
        "lax" => SameSite::Lax,
        "strict" => SameSite::Strict,
        "none" => {
            if !secure {
                v.err(
                    "session.same_site",
                    "\"none\" requires session.secure = true (browsers refuse it otherwise)",
                );
            }
            SameSite::None
        }
        other => {
            v.err(
                "session.same_site",
                format!("{other:?} is not one of lax, strict, none"),
            );
            SameSite::Lax
        }
    };
    let idle_timeout = v.duration(
        "session.idle_timeout",
        ses.idle_timeout.as_ref(),
        "30m",
        Duration::from_secs(1),
    );
    let absolute_timeout = v.duration(
        "session.absolute_timeout",
        ses.absolute_timeout.as_ref(),
        "12h",
        Duration::from_secs(1),
    );
    if absolute_timeout < idle_timeout {
        v.err(
            "session.absolute_timeout",
            "must not be shorter than session.idle_timeout",
        );
    }
    SessionConfig {
        cookie_name,
        domain,
        secure,
        same_site,
        idle_timeout,
        absolute_timeout,
    }
}

/// `[store]`.
fn validate_store(st: RawStore, v: &mut V<'_>) -> StoreConfig {
    let backend = match st.backend.as_deref().unwrap_or("memory") {
        "memory" => StoreBackend::Memory,
        "redis" => {
            let url = st
                .redis_url
                .clone()
                .unwrap_or_else(|| "redis://127.0.0.1:6379/0".into());
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
            {
                v.err(
                    "store.redis_url",
                    format!("{url:?} must start with redis://, rediss:// or unix://"),
                );
            } else if redis::Client::open(url.as_str()).is_err() {
                v.err(
                    "store.redis_url",
                    format!("{url:?} is not a valid Redis URL"),
                );
            }
            StoreBackend::Redis { url }
        }
        other => {
            v.err(
                "store.backend",
                format!("{other:?} is not one of memory, redis"),
            );
            StoreBackend::Memory
        }
    };
    let key_prefix = st.key_prefix.unwrap_or_else(|| "portcullis:".into());
    let max_entries = v.int(
        "store.max_entries",
        st.max_entries,
        1_000_000,
        1000,
        1_000_000_000,
    ) as usize;
    let session_cache = v.duration(
        "store.session_cache",
        st.session_cache.as_ref(),
        "5s",
        Duration::ZERO,
    );
    if session_cache > Duration::from_secs(60) {
        v.err("store.session_cache", "must be at most 60s");
    }
    StoreConfig {
        backend,
        key_prefix,
        max_entries,
        session_cache: session_cache.min(Duration::from_secs(60)),
    }
}

/// `[defense]`.
fn validate_defense(d: &RawDefense, v: &mut V<'_>) -> DefenseConfig {
    let defense = DefenseConfig {
        captcha_after: v.int("defense.captcha_after", d.captcha_after, 3, 0, 1_000_000) as u32,
        lock_after: v.int("defense.lock_after", d.lock_after, 10, 1, 1_000_000) as u32,
        window: v.duration(
            "defense.window",
            d.window.as_ref(),
            "15m",
            Duration::from_secs(1),
        ),
        lock_duration: v.duration(
            "defense.lock_duration",
            d.lock_duration.as_ref(),
            "15m",
            Duration::from_secs(1),
        ),
        lock_max: v.duration(
            "defense.lock_max",
            d.lock_max.as_ref(),
            "24h",
            Duration::from_secs(1),
        ),
        ip_per_minute: v.int("defense.ip_per_minute", d.ip_per_minute, 30, 1, 1_000_000) as u32,
        known_device_days: v.int(
            "defense.known_device_days",
            d.known_device_days,
            90,
            0,
            3650,
        ) as u32,
        known_device_lock_after: 0,
        spray_per_minute: v.int(
            "defense.spray_per_minute",
            d.spray_per_minute,
            100,
            0,
            10_000_000,
        ) as u32,
        captcha_on_reset: d.captcha_on_reset.unwrap_or(false),
        captcha_on_password_change: d.captcha_on_password_change.unwrap_or(false),
        lock_per_network: match d.lock_scope.as_deref().unwrap_or("account") {
            "account" => false,
            "account_network" => true,
            other => {
                v.err(
                    "defense.lock_scope",
                    format!("{other:?} is not one of account, account_network"),
                );
                false
            }
        },
        captcha_ttl: v.duration(
            "defense.captcha_ttl",
            d.captcha_ttl.as_ref(),
            "5m",
            Duration::from_secs(10),
        ),
    };
    let mut defense = defense;
    defense.known_device_lock_after = v.int(
        "defense.known_device_lock_after",
        d.known_device_lock_after,
        i64::from(defense.lock_after),
        1,
        1000,
    ) as u32;
    if defense.lock_max < defense.lock_duration {
        v.err(
            "defense.lock_max",
            "must not be shorter than defense.lock_duration",
        );
    }
    defense
}

/// `[otp]`.
fn validate_otp(o: &RawOtp, v: &mut V<'_>) -> OtpConfig {
    let totp_algorithm = match o
        .totp_algorithm
        .as_deref()
        .unwrap_or("SHA1")
        .to_ascii_uppercase()
        .as_str()
    {
        "SHA1" => TotpAlgorithm::Sha1,
        "SHA256" => TotpAlgorithm::Sha256,
        "SHA512" => TotpAlgorithm::Sha512,
        other => {
            v.err(
                "otp.totp_algorithm",
                format!("{other:?} is not one of SHA1, SHA256, SHA512"),
            );
            TotpAlgorithm::Sha1
        }
    };
    let totp_period = v.duration(
        "otp.totp_period",
        o.totp_period.as_ref(),
        "30s",
        Duration::from_secs(15),
    );
    if totp_period > Duration::from_secs(300) {
        v.err("otp.totp_period", "must be at most 5m");
    }
    let require = match o.require.as_deref().unwrap_or("optional") {
        "optional" => Require::Optional,
        "required" => Require::Required,
        other => {
            v.err(
                "otp.require",
                format!("{other:?} is not one of optional, required"),
            );
            Require::Optional
        }
    };
    let otp = OtpConfig {
        code_ttl: v.duration(
            "otp.code_ttl",
            o.code_ttl.as_ref(),
            "10m",
            Duration::from_secs(1),
        ),
        code_length: v.int("otp.code_length", o.code_length, 6, 6, 10) as u32,
        max_attempts: v.int("otp.max_attempts", o.max_attempts, 5, 1, 100) as u32,
        totp_issuer: match o.totp_issuer.clone() {
            Some(i)
                if i.trim().is_empty() || i.contains(':') || i.chars().any(char::is_control) =>
            {
                v.err("otp.totp_issuer", "must be a non-empty name without ':'");
                "Portcullis".into()
            }
            Some(i) => i,
            None => "Portcullis".into(),
        },
        totp_algorithm,
        totp_digits: v.int("otp.totp_digits", o.totp_digits, 6, 6, 8) as u32,
        totp_period: totp_period.as_secs(),
        require,
        require_groups: o.require_groups.clone().unwrap_or_default(),
        remember_days: v.int("otp.remember_days", o.remember_days, 30, 0, 400) as u32,
        reauth_after: v.duration(
            "otp.reauth_after",
            o.reauth_after.as_ref(),
            "5m",
            Duration::from_secs(1),
        ),
        send_limit: v.int("otp.send_limit", o.send_limit, 5, 1, 1000) as u32,
        send_limit_client: v.int("otp.send_limit_client", o.send_limit_client, 20, 1, 100_000)
            as u32,
        send_window: v.duration(
            "otp.send_window",
            o.send_window.as_ref(),
            "15m",
            Duration::from_secs(1),
        ),
        resend_after: v.duration(
            "otp.resend_after",
            o.resend_after.as_ref(),
            "30s",
            Duration::ZERO,
        ),
    };
    otp
}

/// `[notify]`.
fn validate_notify(n: &RawNotify, base: &Path, v: &mut V<'_>) -> NotifyConfig {
    let notify_backend = match NotifyBackend::parse(n.backend.as_deref().unwrap_or("file")) {
        Some(b) => b,
        None => {
            v.err(
                "notify.backend",
                format!(
                    "{:?} is not one of file, log, smtp, webhook",
                    n.backend.as_deref().unwrap_or("")
                ),
            );
            NotifyBackend::File
        }
    };
    let smtp = n.smtp.as_ref().map(|r| validate_smtp(r, base, v));
    let webhook = n.webhook.as_ref().and_then(|r| validate_webhook(r, v));
    // Each channel: the explicit setting, else the default backend when it can carry
    // the channel, else the other configured backend that can.
    let route = |v: &mut V<'_>,
                 key: &str,
                 explicit: Option<&String>,
                 voice_like: bool|
     -> Option<NotifyBackend> {
        let pick = match explicit.map(String::as_str) {
            Some("none") => return None,
            Some(s) => match NotifyBackend::parse(s) {
                Some(b) => b,
                None => {
                    v.err(
                        key,
                        format!("{s:?} is not one of file, log, smtp, webhook, none"),
                    );
                    return None;
                }
            },
            None => match (notify_backend, voice_like) {
                (NotifyBackend::Smtp, true) => {
                    if webhook.is_some() {
                        NotifyBackend::Webhook
                    } else {
                        return None;
                    }
                }
                (NotifyBackend::Webhook, false) if n.smtp.is_some() => NotifyBackend::Smtp,
                (b, _) => b,
            },
        };
        if pick == NotifyBackend::Smtp && voice_like {
            v.err(
                key,
                "smtp sends email only; use webhook for text messages and calls",
            );
        }
        Some(pick)
    };
    let email = route(v, "notify.email", n.email.as_ref(), false);
    let sms = route(v, "notify.sms", n.sms.as_ref(), true);
    let voice = route(v, "notify.voice", n.voice.as_ref(), true);
    for b in [Some(notify_backend), email, sms, voice]
        .into_iter()
        .flatten()
    {
        if b == NotifyBackend::Smtp && n.smtp.is_none() {
            v.err(
                "notify.smtp",
                "missing: a channel uses smtp, so [notify.smtp] needs host and from",
            );
            break;
        }
    }
    for b in [Some(notify_backend), email, sms, voice]
        .into_iter()
        .flatten()
    {
        if b == NotifyBackend::Webhook && n.webhook.is_none() {
            v.err(
                "notify.webhook",
                "missing: a channel uses webhook, so [notify.webhook] needs url",
            );
            break;
        }
    }
    let notify = NotifyConfig {
        backend: notify_backend,
        file: resolve(base, n.file.as_deref().unwrap_or("outbox.jsonl")),
        email,
        sms,
        voice,
        smtp,
        webhook,
    };
    notify
}

/// `[server]`.
fn validate_server(srv: RawServer, base: &Path, v: &mut V<'_>) -> ServerConfig {
    let listen = v
        .addr(
            "server.listen",
            srv.listen.as_deref().unwrap_or("127.0.0.1:8080"),
        )
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let admin_listen = srv
        .admin_listen
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| v.addr("server.admin_listen", s));
    if admin_listen == Some(listen) {
        v.err("server.admin_listen", "must differ from server.listen");
    }
    let prefix = srv
        .portal_prefix
        .as_deref()
        .unwrap_or("/_auth")
        .trim_end_matches('/')
        .to_string();
    if !prefix.starts_with('/')
        || prefix.len() < 2
        || !prefix[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        || prefix.contains("//")
        || prefix.contains("/.")
    {
        v.err(
            "server.portal_prefix",
            format!("{prefix:?} must be a path like \"/_auth\""),
        );
    }
    let trusted_proxies = v.cidrs("server.trusted_proxies", &srv.trusted_proxies);
    let public_url = match srv.public_url.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match url::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
            _ => {
                v.err("server.public_url", format!("{s:?} is not an http(s) URL"));
                None
            }
        },
    };
    let threads = v.int("server.threads", srv.threads, 0, 0, 256) as usize;
    let threads = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        threads
    };
    let header_timeout = v.duration(
        "server.header_timeout",
        srv.header_timeout.as_ref(),
        "10s",
        Duration::from_secs(1),
    );
    let upstream_timeout = v.duration(
        "server.upstream_timeout",
        srv.upstream_timeout.as_ref(),
        "60s",
        Duration::from_secs(1),
    );
    let max_connections_per_client = v.int(
        "server.max_connections_per_client",
        srv.max_connections_per_client,
        256,
        0,
        1_000_000,
    ) as usize;
    let tls = match srv.tls {
        None => None,
        Some(t) => match (t.cert, t.key) {
            (Some(c), Some(k)) => {
                let (cert, key) = (resolve(base, &c), resolve(base, &k));
                // Loaded here only to report a bad pair now; the server loads its own copy.
                if let Err(e) = crate::tls::certified_key(&cert, &key) {
                    v.err("server.tls", e);
                }
                let hsts = match t.hsts.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(h) => match crate::tls::check_hsts(h) {
                        Ok(h) => Some(h),
                        Err(e) => {
                            v.err("server.tls.hsts", e);
                            None
                        }
                    },
                };
                Some(TlsConfig { cert, key, hsts })
            }
            _ => {
                v.err("server.tls", "needs both cert and key");
                None
            }
        },
    };
    ServerConfig {
        listen,
        admin_listen,
        portal_prefix: prefix,
        trusted_proxies,
        public_url,
        threads,
        header_timeout,
        upstream_timeout,
        max_connections_per_client,
        tls,
    }
}

/// `[[site]]`: one per application; at least one.
fn validate_sites(raw_sites: &[RawSite], base: &Path, v: &mut V<'_>) -> Vec<Site> {
    let mut sites: Vec<Site> = Vec::new();
    for (i, s) in raw_sites.iter().enumerate() {
        let key = format!("site[{i}]");
        let host = s.host.as_deref().unwrap_or("").trim().to_ascii_lowercase();
        if host.is_empty() {
            v.err(&format!("{key}.host"), "is required");
        } else if !valid_host(&host) {
            v.err(
                &format!("{key}.host"),
                format!("{host:?} is not a host name (no scheme, port or path)"),
            );
        } else if sites.iter().any(|x| x.host == host) {
            v.err(&format!("{key}.host"), format!("{host:?} is listed twice"));
        }
        let upstream = match s.upstream.as_deref() {
            None | Some("") => {
                v.err(
                    &format!("{key}.upstream"),
                    "is required (e.g. \"127.0.0.1:3000\")",
                );
                None
            }
            Some(u) => match u.to_socket_addrs().ok().and_then(|mut a| a.next()) {
                Some(a) => Some(a),
                None => {
                    v.err(
                        &format!("{key}.upstream"),
                        format!("{u:?} is not a reachable host:port"),
                    );
                    None
                }
            },
        };
        let upstream_tls = s.upstream_tls.unwrap_or(false);
        let upstream_ca = match s.upstream_ca.as_deref().filter(|p| !p.is_empty()) {
            None => None,
            Some(_) if !upstream_tls => {
                v.err(&format!("{key}.upstream_ca"), "needs upstream_tls = true");
                None
            }
            Some(p) => match crate::tls::UpstreamCa::load(&resolve(base, p)) {
                Ok(ca) => Some(ca),
                Err(e) => {
                    v.err(&format!("{key}.upstream_ca"), e);
                    None
                }
            },
        };
        let identity = validate_site_headers(s.headers.as_ref(), &format!("{key}.headers"), v);
        if let Some(upstream) = upstream {
            sites.push(Site {
                host,
                upstream,
                upstream_tls,
                upstream_ca,
                identity: std::sync::Arc::new(identity),
            });
        }
    }
    if raw_sites.is_empty() {
        v.err("site", "at least one [[site]] is required");
    }
    sites
}

/// `[[rule]]`: first match wins; hosts must be sites.
fn validate_rules(raw_rules: &[RawRule], sites: &[Site], v: &mut V<'_>) -> Vec<Rule> {
    let mut rules = Vec::new();
    for (i, r) in raw_rules.iter().enumerate() {
        let key = format!("rule[{i}]");
        let policy = match r.policy.as_deref().map(Policy::parse) {
            Some(Some(p)) => p,
            Some(None) => {
                v.err(
                    &format!("{key}.policy"),
                    "must be one of bypass, one_factor, two_factor, deny",
                );
                Policy::Deny
            }
            None => {
                v.err(&format!("{key}.policy"), "is required");
                Policy::Deny
            }
        };
        let host = r.host.as_deref().map(|h| h.trim().to_ascii_lowercase());
        if let Some(h) = &host {
            if !sites.iter().any(|s| &s.host == h) {
                v.err(
                    &format!("{key}.host"),
                    format!("{h:?} is not the host of any [[site]]"),
                );
            }
        }
        let path = r.path.clone().unwrap_or_else(|| "/".into());
        let path = match crate::pathnorm::normalize(&path) {
            Ok(p) => p,
            Err(e) => {
                v.err(&format!("{key}.path"), format!("{path:?}: {e}"));
                "/".into()
            }
        };
        let mut methods = Vec::new();
        for (j, m) in r.methods.iter().flatten().enumerate() {
            match http::Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()) {
                Ok(m) => methods.push(m),
                Err(_) => v.err(
                    &format!("{key}.methods[{j}]"),
                    format!("{m:?} is not an HTTP method"),
                ),
            }
        }
        let groups = r.groups.clone().unwrap_or_default();
        let networks = v.cidrs(
            &format!("{key}.networks"),
            r.networks.as_deref().unwrap_or(&[]),
        );
        rules.push(Rule {
            host,
            path,
            methods,
            groups,
            networks,
            policy,
        });
    }
    rules
}

/// `[site.headers]` → the site's identity header names. Each name must be a
/// header name that can carry identity ([`crate::identity::name_problem`]), and
/// no two of one site may fold to the same name.
fn validate_site_headers(
    raw: Option<&RawSiteHeaders>,
    key: &str,
    v: &mut V<'_>,
) -> crate::identity::IdentityHeaders {
    let mut out = crate::identity::IdentityHeaders::default();
    let Some(raw) = raw else {
        return out;
    };
    let name = |field: &'static str,
                value: Option<&String>,
                default: Option<http::HeaderName>,
                v: &mut V<'_>| {
        match value.map(|s| s.trim()) {
            None => default,
            Some("") => None,
            Some(value) => crate::identity::parse_name(value)
                .map_err(|e| v.err(&format!("{key}.{field}"), e))
                .ok(),
        }
    };
    out.user = name("user", raw.user.as_ref(), out.user.take(), v);
    out.email = name("email", raw.email.as_ref(), out.email.take(), v);
    out.name = name("name", raw.name.as_ref(), out.name.take(), v);
    out.groups = name("groups", raw.groups.as_ref(), out.groups.take(), v);
    out.assertion = name("assertion", raw.assertion.as_ref(), None, v);
    // Two fields on one header would send one value and drop the other.
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (field, n) in [
        ("user", &mut out.user),
        ("email", &mut out.email),
        ("name", &mut out.name),
        ("groups", &mut out.groups),
        ("assertion", &mut out.assertion),
    ] {
        let Some(h) = n.as_ref() else { continue };
        let folded = crate::identity::fold(h.as_str());
        if let Some((_, other)) = seen.iter().find(|(f, _)| *f == folded) {
            v.err(
                &format!("{key}.{field}"),
                format!("{:?} is already used by {key}.{other}", h.as_str()),
            );
            *n = None;
        } else {
            seen.push((folded, field));
        }
    }
    if let Some(sep) = &raw.group_separator {
        if sep.is_empty()
            || sep.len() > 8
            || !sep
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && !b.is_ascii_alphanumeric())
        {
            v.err(
                &format!("{key}.group_separator"),
                format!(
                    "{sep:?} must be 1 to 8 punctuation characters or blanks, like \",\" or \";\""
                ),
            );
        } else {
            out.group_separator = sep.clone();
        }
    }
    out
}

/// The folded identity header names of all sites that the static strip list
/// doesn't already cover, each once.
fn identity_strip_names(sites: &[Site]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in sites {
        for n in s.identity.names() {
            let folded = crate::identity::fold(n.as_str());
            if !crate::proxy::headers::is_spoofable(&folded) && !out.contains(&folded) {
                out.push(folded);
            }
        }
    }
    out
}

fn validate_smtp(r: &RawSmtp, base: &Path, v: &mut V<'_>) -> SmtpConfig {
    let security = match r.security.as_deref().unwrap_or("starttls") {
        "starttls" => SmtpSecurity::StartTls,
        "tls" => SmtpSecurity::Tls,
        "none" => SmtpSecurity::None,
        other => {
            v.err(
                "notify.smtp.security",
                format!("{other:?} is not one of starttls, tls, none"),
            );
            SmtpSecurity::StartTls
        }
    };
    let host = r.host.clone().unwrap_or_default();
    if host.trim().is_empty() {
        v.err("notify.smtp.host", "missing: the mail server's host name");
    }
    let default_port = match security {
        SmtpSecurity::Tls => 465,
        _ => 587,
    };
    let port = v.int("notify.smtp.port", r.port, default_port, 1, 65535) as u16;
    let from = r.from.clone().unwrap_or_default();
    if from.parse::<lettre::message::Mailbox>().is_err() {
        v.err(
            "notify.smtp.from",
            format!("{from:?} is not a mailbox like \"Portcullis <auth@example.com>\""),
        );
    }
    let password = match (&r.password, &r.password_file) {
        (Some(_), Some(_)) => {
            v.err(
                "notify.smtp.password",
                "set password or password_file, not both",
            );
            None
        }
        (Some(p), None) => Some(Secret(zeroize::Zeroizing::new(p.clone()))),
        (None, Some(f)) => match std::fs::read_to_string(resolve(base, f)) {
            Ok(p) => Some(Secret(zeroize::Zeroizing::new(
                p.trim_end_matches(['\r', '\n']).to_string(),
            ))),
            Err(e) => {
                v.err("notify.smtp.password_file", format!("cannot read {f}: {e}"));
                None
            }
        },
        (None, None) => None,
    };
    if password.is_some() != r.username.is_some() {
        v.err(
            "notify.smtp.username",
            "username and a password go together",
        );
    }
    let ca_file = r.ca_file.as_deref().map(|f| resolve(base, f));
    if let Some(f) = &ca_file {
        if !f.is_file() {
            v.err(
                "notify.smtp.ca_file",
                format!("{} is not a readable file", f.display()),
            );
        }
    }
    SmtpConfig {
        host,
        port,
        security,
        username: r.username.clone(),
        password,
        from,
        ca_file,
        timeout: v.duration(
            "notify.smtp.timeout",
            r.timeout.as_ref(),
            "10s",
            Duration::from_secs(1),
        ),
    }
}

fn validate_webhook(r: &RawWebhook, v: &mut V<'_>) -> Option<WebhookConfig> {
    let url = match r.url.as_deref().map(url::Url::parse) {
        Some(Ok(u)) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
        Some(_) => {
            v.err("notify.webhook.url", "must be an http(s) URL");
            None
        }
        None => {
            v.err("notify.webhook.url", "missing: where to POST messages");
            None
        }
    };
    let mut headers = Vec::new();
    for (k, val) in r.headers.iter().flatten() {
        if http::HeaderName::from_bytes(k.as_bytes()).is_err()
            || http::HeaderValue::from_str(val).is_err()
        {
            v.err(
                &format!("notify.webhook.headers.{k}"),
                "is not a valid header name and value",
            );
        } else {
            headers.push((k.clone(), Secret(zeroize::Zeroizing::new(val.clone()))));
        }
    }
    let body = r
        .body
        .clone()
        .unwrap_or_else(|| DEFAULT_WEBHOOK_BODY.to_string());
    if let Err(e) = webhook_body::check(&body) {
        v.err("notify.webhook.body", e);
    }
    let content_type = r
        .content_type
        .clone()
        .unwrap_or_else(|| "application/json".into());
    if http::HeaderValue::from_str(&content_type).is_err() {
        v.err("notify.webhook.content_type", "is not a valid header value");
    }
    let timeout = v.duration(
        "notify.webhook.timeout",
        r.timeout.as_ref(),
        "10s",
        Duration::from_secs(1),
    );
    Some(WebhookConfig {
        url: url?,
        headers,
        content_type,
        body,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[[site]]\nhost = \"app.example.com\"\nupstream = \"127.0.0.1:3000\"\n";

    #[test]
    fn groups_rules_without_a_later_deny_are_warned_about() {
        let rules = |body: &str| format!("{MINIMAL}{body}");
        let warn = |text: &str| {
            Config::from_str(text, Path::new("/etc/p"))
                .unwrap()
                .warnings()
        };
        let admins =
            "[[rule]]\npath = \"/admin\"\ngroups = [\"admins\"]\npolicy = \"one_factor\"\n";
        let deny = |path: &str| format!("[[rule]]\npath = \"{path}\"\npolicy = \"deny\"\n");
        let table: &[(String, usize, &str)] = &[
            (rules(admins), 1, "nothing denies the others"),
            (rules(&format!("{admins}{}", deny("/admin"))), 0, "a later deny on the same path"),
            (rules(&format!("{admins}{}", deny("/"))), 0, "a later deny on a covering path"),
            (rules(&format!("{admins}{}", deny("/ADMIN"))), 0, "deny matches any case"),
            (rules(&format!("{}{admins}", deny("/admin"))), 1, "a deny before it doesn't count"),
            (rules(&format!("{admins}{}", deny("/admin/x"))), 1, "a narrower deny"),
            (rules(&format!("{admins}{}", deny("/adm"))), 1, "not a whole segment"),
            (
                rules(&format!("{admins}[[rule]]\npath = \"/admin\"\ngroups = [\"staff\"]\npolicy = \"deny\"\n")),
                1,
                "a deny for a group only",
            ),
            (
                rules(&format!("{admins}[[rule]]\npath = \"/admin\"\nmethods = [\"POST\"]\npolicy = \"deny\"\n")),
                1,
                "a deny for some methods only",
            ),
            (
                rules(&format!("{admins}[[rule]]\npath = \"/admin\"\nnetworks = [\"10.0.0.0/8\"]\npolicy = \"deny\"\n")),
                1,
                "a deny for some networks only",
            ),
            (
                rules(&format!("{admins}[[rule]]\nhost = \"app.example.com\"\npath = \"/admin\"\npolicy = \"deny\"\n")),
                1,
                "a deny on one host doesn't cover every host",
            ),
            (rules(&format!("{admins}[access]\ndefault_policy = \"deny\"\n")), 0, "default deny"),
            (
                rules("[[rule]]\npath = \"/x\"\ngroups = [\"a\"]\npolicy = \"deny\"\n"),
                0,
                "a groups deny restricts by itself",
            ),
            (rules("[[rule]]\npath = \"/x\"\npolicy = \"bypass\"\n"), 0, "no groups"),
        ];
        for (text, n, what) in table {
            let w = warn(text);
            assert_eq!(w.len(), *n, "{what}: {w:?}");
        }
        let w = warn(&rules(&format!("{}{admins}", deny("/other"))));
        assert!(w[0].starts_with("rule[1]: "), "{w:?}");
        assert!(w[0].contains("one_factor"), "{w:?}");
    }

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let c = Config::from_str(MINIMAL, Path::new("/etc/p")).unwrap();
        assert!(c.session.secure);
        assert_eq!(c.session.idle_timeout, Duration::from_secs(1800));
        assert_eq!(c.default_policy, Policy::OneFactor);
        assert_eq!(c.users_file, PathBuf::from("/etc/p/users.toml"));
        assert_eq!(c.server.portal_prefix, "/_auth");
    }

    #[test]
    fn reports_every_problem_with_its_key_path() {
        let text = format!(
            "{MINIMAL}[session]\nidle_timeout = \"soon\"\nbogus = 1\n[store]\nbackend = \"mongo\"\n\
             [defense]\nlock_after = \"ten\"\n[[rule]]\npath = \"/x\"\npolicy = \"maybe\"\nextra = true\n[nope]\n"
        );
        let err = Config::from_str(&text, Path::new(".")).unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "session.bogus",
            "defense.lock_after",
            "rule[0].extra",
            "nope: unknown section",
        ] {
            assert!(all.contains(needle), "missing {needle} in:\n{all}");
        }
        // Key-level problems are reported first; value validation adds the rest when keys parse.
        let text2 = format!("{MINIMAL}[session]\nidle_timeout = \"soon\"\n[store]\nbackend = \"mongo\"\n[[rule]]\npolicy = \"maybe\"\n");
        let err = Config::from_str(&text2, Path::new(".")).unwrap_err();
        let all = err.problems.join("\n");
        for needle in ["session.idle_timeout", "store.backend", "rule[0].policy"] {
            assert!(all.contains(needle), "missing {needle} in:\n{all}");
        }
    }

    /// Issue #12.5: unknown keys don't hide bad values; every problem is in one
    /// report, with its key path and a hint, sorted and without repeats.
    #[test]
    fn unknown_keys_and_bad_values_are_reported_together() {
        let cases: &[(&str, &[&str])] = &[
            // Unknown key + bad duration + bad CIDR + no site, in one file.
            (
                "[session]\nidle_timout = \"30m\"\nabsolute_timeout = \"soon\"\n\
                 [server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
                &[
                    "server.trusted_proxies[0]: \"10.0.0.0/33\" is not a CIDR",
                    "session.absolute_timeout: \"soon\" is not a duration",
                    "session.idle_timout: unknown key; did you mean `idle_timeout`? (valid keys: cookie_name, domain,",
                    "site: at least one [[site]] is required",
                ],
            ),
            // A mistyped value is left out too, so the others are still validated.
            (
                "[defense]\nlock_after = \"ten\"\nwindow = \"later\"\n[[site]]\nhost = \"a.test\"\n\
                 upstream = \"127.0.0.1:1\"\nupstreem = \"x\"\n[[rule]]\npath = \"/x\"\npolicy = \"maybe\"\n\
                 networks = [\"nope\"]\n",
                &[
                    "defense.lock_after: invalid type: string \"ten\", expected an integer\n",
                    "defense.window: \"later\" is not a duration",
                    "rule[0].networks[0]: \"nope\" is not a CIDR",
                    "rule[0].policy",
                    "site[0].upstreem: unknown key; did you mean `upstream`?",
                ],
            ),
            // Unknown sections, and unknown keys in a nested table.
            (
                "[sesion]\nsecure = false\n[server.tls]\ncert = \"c.pem\"\nkye = \"k.pem\"\nbogus = 1\n\
                 [[site]]\nhost = \"a.test\"\nupstream = \"127.0.0.1:1\"\n[session]\nidle_timeout = \"1x\"\n",
                &[
                    "server.tls.bogus: unknown key (valid keys: cert, key, hsts)\n",
                    "server.tls.kye: unknown key; did you mean `key`? (valid keys: cert, key, hsts)\n",
                    "sesion: unknown section; did you mean `session`?",
                    "session.idle_timeout: \"1x\" is not a duration",
                ],
            ),
        ];
        for (text, expected) in cases {
            let err = Config::from_str(text, Path::new(".")).unwrap_err();
            let all = err.problems.join("\n");
            for needle in *expected {
                assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
            }
            let mut sorted = err.problems.clone();
            sort_problems(&mut sorted);
            assert_eq!(sorted, err.problems, "sorted, no repeats");
        }
        // The order is by key path, numbers as numbers.
        let mut p = vec![
            "rule[10].path: x".to_string(),
            "rule[2].path: x".into(),
            "rule[2].path: x".into(),
            "access.default_policy: x".into(),
        ];
        sort_problems(&mut p);
        assert_eq!(
            p,
            [
                "access.default_policy: x",
                "rule[2].path: x",
                "rule[10].path: x"
            ]
        );
        assert_eq!(edit_distance("idle_timout", "idle_timeout"), 1);
        // No "did you mean" for a name like nothing known.
        assert!(!hint("zzzzzzzz", ["cookie_name", "domain"].into_iter()).contains("did you mean"));
    }

    #[test]
    fn notify_channels_route_to_backends_that_can_carry_them() {
        let smtp = "[notify.smtp]\nhost = \"mail.example.com\"\nfrom = \"Portcullis <auth@example.com>\"\n";
        let hook = "[notify.webhook]\nurl = \"https://sms.example.com/send\"\n";
        let c = |t: &str| Config::from_str(&format!("{MINIMAL}{t}"), Path::new("/etc/p"));
        // Defaults: everything to the file.
        let d = c("").unwrap().notify;
        assert_eq!(
            (d.email, d.sms, d.voice),
            (
                Some(NotifyBackend::File),
                Some(NotifyBackend::File),
                Some(NotifyBackend::File)
            )
        );
        // smtp alone: email only; SMS and voice not offered.
        let n = c(&format!("[notify]\nbackend = \"smtp\"\n{smtp}"))
            .unwrap()
            .notify;
        assert_eq!(
            (n.email, n.sms, n.voice),
            (Some(NotifyBackend::Smtp), None, None)
        );
        let s = n.smtp.unwrap();
        assert_eq!((s.port, s.security), (587, SmtpSecurity::StartTls));
        // smtp + webhook: SMS and voice by the webhook.
        let n = c(&format!("[notify]\nbackend = \"smtp\"\n{smtp}{hook}"))
            .unwrap()
            .notify;
        assert_eq!(
            (n.email, n.sms),
            (Some(NotifyBackend::Smtp), Some(NotifyBackend::Webhook))
        );
        assert!(n.webhook.unwrap().body.contains("tojson"));
        // webhook + smtp: email by smtp.
        let n = c(&format!("[notify]\nbackend = \"webhook\"\n{smtp}{hook}"))
            .unwrap()
            .notify;
        assert_eq!(
            (n.email, n.voice),
            (Some(NotifyBackend::Smtp), Some(NotifyBackend::Webhook))
        );
        // Explicit per channel, including none.
        let n = c("[notify]\nbackend = \"log\"\nvoice = \"none\"\n")
            .unwrap()
            .notify;
        assert_eq!((n.email, n.voice), (Some(NotifyBackend::Log), None));
        // Problems, each with its key.
        for (text, key) in [
            ("[notify]\nbackend = \"smtp\"\n".to_string(), "notify.smtp"),
            ("[notify]\nbackend = \"pigeon\"\n".to_string(), "notify.backend"),
            (format!("[notify]\nsms = \"smtp\"\n{smtp}"), "notify.sms"),
            ("[notify]\nbackend = \"webhook\"\n[notify.webhook]\nurl = \"ftp://x\"\n".to_string(), "notify.webhook.url"),
            (format!("[notify]\nbackend = \"webhook\"\n{hook}body = \"{{% if %}}\"\n"), "notify.webhook.body"),
            ("[notify]\nbackend = \"smtp\"\n[notify.smtp]\nhost = \"m\"\nfrom = \"not a mailbox\"\nsecurity = \"ssl\"\nusername = \"u\"\n".to_string(), "notify.smtp.from"),
            ("[notify]\nbackend = \"smtp\"\n[notify.smtp]\nhost = \"m\"\nfrom = \"a@b.example\"\nsecurity = \"ssl\"\n".to_string(), "notify.smtp.security"),
            ("[notify]\nbackend = \"smtp\"\n[notify.smtp]\nhost = \"m\"\nfrom = \"a@b.example\"\nusername = \"u\"\n".to_string(), "notify.smtp.username"),
            ("[notify.smtp]\nbogus = 1\n".to_string(), "notify.smtp"),
        ] {
            let err = c(&text).unwrap_err().problems.join("\n");
            assert!(err.contains(key), "{key} missing for {text:?}: {err}");
        }
        // A password in the config never shows in Debug output.
        let n = c(&format!(
            "[notify]\nbackend = \"smtp\"\n{smtp}username = \"u\"\npassword = \"hunter2\"\n"
        ))
        .unwrap();
        assert!(!format!("{n:?}").contains("hunter2"));
    }

    #[test]
    fn otp_settings_are_validated() {
        let c = |t: &str| Config::from_str(&format!("{MINIMAL}[otp]\n{t}"), Path::new("."));
        let o = c("").unwrap().otp;
        assert_eq!(
            (o.totp_digits, o.totp_period, o.remember_days, o.require),
            (6, 30, 30, Require::Optional)
        );
        let o = c(
            "require = \"required\"\ntotp_algorithm = \"sha256\"\nrequire_groups = [\"admins\"]\n",
        )
        .unwrap()
        .otp;
        assert_eq!(
            (o.require, o.totp_algorithm),
            (Require::Required, TotpAlgorithm::Sha256)
        );
        assert!(o.required_for(&[]));
        let o = c("require_groups = [\"admins\"]\n").unwrap().otp;
        assert!(o.required_for(&["admins".into()]) && !o.required_for(&["staff".into()]));
        for (text, key) in [
            ("require = \"always\"", "otp.require"),
            ("totp_algorithm = \"MD5\"", "otp.totp_algorithm"),
            ("totp_digits = 9", "otp.totp_digits"),
            ("totp_period = \"1h\"", "otp.totp_period"),
            ("totp_issuer = \"a:b\"", "otp.totp_issuer"),
            ("code_length = 4", "otp.code_length"),
            ("remember_days = -1", "otp.remember_days"),
        ] {
            let err = c(text).unwrap_err().problems.join("\n");
            assert!(err.contains(key), "{key} missing for {text:?}: {err}");
        }
    }

    #[test]
    fn site_headers_default_and_custom() {
        use crate::identity::IdentityHeaders;
        let c = Config::from_str(MINIMAL, Path::new(".")).unwrap();
        assert_eq!(*c.sites[0].identity, IdentityHeaders::default());
        assert!(
            c.identity_strip.is_empty(),
            "Remote-* is in the static list"
        );
        assert_eq!(c.assertion.ttl, Duration::from_secs(60));
        let text = format!(
            "{MINIMAL}[site.headers]\nuser = \"X-WEBAUTH-USER\"\nemail = \"\"\ngroups = \" X-Groups \"\n\
             group_separator = \";\"\nassertion = \"X-App-Assertion\"\n\
             [[site]]\nhost = \"b.example.com\"\nupstream = \"127.0.0.1:3001\"\n\
             [site.headers]\nuser = \"X_App_User\"\ngroups = \"x-groups\"\n\
             [assertion]\nttl = \"2m\"\n"
        );
        let c = Config::from_str(&text, Path::new(".")).unwrap();
        let a = &c.sites[0].identity;
        assert_eq!(a.user.as_ref().map(|n| n.as_str()), Some("x-webauth-user"));
        assert_eq!(a.email, None);
        assert_eq!(a.name.as_ref().map(|n| n.as_str()), Some("remote-name"));
        assert_eq!(a.groups.as_ref().map(|n| n.as_str()), Some("x-groups"));
        assert_eq!(a.group_separator, ";");
        assert_eq!(
            a.assertion.as_ref().map(|n| n.as_str()),
            Some("x-app-assertion")
        );
        assert_eq!(c.sites[1].identity.group_separator, ",");
        assert_eq!(c.sites[1].identity.assertion, None);
        assert_eq!(c.assertion.ttl, Duration::from_secs(120));
        // Names of every site, folded, once; the static list's own are left to it.
        assert_eq!(
            c.identity_strip,
            vec!["x-groups", "x-app-assertion", "x-app-user"]
        );
    }

    #[test]
    fn site_header_errors_carry_key_paths() {
        let problems = |headers: &str| {
            Config::from_str(
                &format!("{MINIMAL}[site.headers]\n{headers}"),
                Path::new("."),
            )
            .unwrap_err()
            .problems
        };
        let table: &[(&str, &str)] = &[
            ("user = \"Host\"\n", "site[0].headers.user: \"Host\" can't carry identity (routing)"),
            ("email = \"X Mail\"\n", "site[0].headers.email: \"X Mail\" is not a header name"),
            ("name = \"X-Forwarded-For\"\n", "site[0].headers.name: \"X-Forwarded-For\" can't carry identity (set by the gateway itself)"),
            ("groups = \"x_forwarded_proto\"\n", "site[0].headers.groups: \"x_forwarded_proto\" can't carry identity"),
            ("assertion = \"Content-Length\"\n", "site[0].headers.assertion: \"Content-Length\" can't carry identity (framing)"),
            ("user = \"Transfer-Encoding\"\n", "site[0].headers.user: \"Transfer-Encoding\" can't carry identity (framing)"),
            ("user = \"Cookie\"\n", "site[0].headers.user: \"Cookie\" can't carry identity"),
            ("user = \"connection\"\n", "site[0].headers.user: \"connection\" can't carry identity (hop-by-hop)"),
            ("user = \"X-Who\"\ngroups = \"x_who\"\n", "site[0].headers.groups: \"x_who\" is already used by site[0].headers.user"),
            ("assertion = \"Remote-User\"\n", "site[0].headers.assertion: \"remote-user\" is already used by site[0].headers.user"),
            ("group_separator = \"\"\n", "site[0].headers.group_separator: \"\" must be"),
            ("group_separator = \"a\"\n", "site[0].headers.group_separator: \"a\" must be"),
            ("group_separator = \"\\n\"\n", "site[0].headers.group_separator:"),
            ("colour = \"x\"\n", "site[0].headers.colour: unknown key (valid keys: user, email, name, groups, group_separator, assertion)"),
            ("user = 5\n", "site[0].headers: invalid type"),
        ];
        for (headers, want) in table {
            let p = problems(headers);
            assert!(p.iter().any(|l| l.starts_with(want)), "{headers:?}: {p:?}");
        }
        // Every problem at once, the [assertion] section's too.
        let p = Config::from_str(
            &format!("{MINIMAL}[site.headers]\nuser = \"Host\"\nemail = \"a b\"\n[assertion]\nttl = \"soon\"\n"),
            Path::new("."),
        )
        .unwrap_err()
        .problems;
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p.iter()
                .any(|l| l.starts_with("assertion.ttl: \"soon\" is not a duration")),
            "{p:?}"
        );
        let p = Config::from_str(
            &format!("{MINIMAL}[assertion]\nttl = \"0s\"\nkey = 1\n"),
            Path::new("."),
        )
        .unwrap_err()
        .problems;
        assert!(
            p.iter()
                .any(|l| l.starts_with("assertion.key: unknown key")),
            "{p:?}"
        );
    }

    #[test]
    fn rejects_bad_sites_and_durations() {
        let err =
            Config::from_str("[[site]]\nhost = \"https://x.com/\"\n", Path::new(".")).unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("site[0].host"), "{all}");
        assert!(all.contains("site[0].upstream"), "{all}");
        assert!(Config::from_str("", Path::new(".")).is_err());
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert!(parse_duration("-1s").is_err());
    }
}
