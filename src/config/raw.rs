//! The file format: serde structs that mirror the TOML exactly.
//!
//! Every field has a default so that one key can be checked on its own (see
//! [`super::load`]), which is how every problem in a file is reported at once.
//! Nothing here is validated; [`super::validate`] turns these into typed config.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: RawServer,
    pub secrets: RawSecrets,
    pub session: RawSession,
    pub store: RawStore,
    pub users: RawUsers,
    pub password: RawPassword,
    pub defense: RawDefense,
    pub otp: RawOtp,
    pub notify: RawNotify,
    pub ui: RawUi,
    pub site: Vec<RawSite>,
    pub rule: Vec<RawRule>,
    pub access: RawAccess,
    pub assertion: RawAssertion,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub portal_prefix: Option<String>,
    pub trusted_proxies: Vec<String>,
    pub public_url: Option<String>,
    pub threads: Option<i64>,
    pub header_timeout: Option<String>,
    pub upstream_timeout: Option<String>,
    /// Open connections one client address (IPv6: its /64) may hold; 0 = no cap.
    pub max_connections_per_client: Option<i64>,
    pub tls: Option<RawTls>,
}

/// `[server.tls]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    pub cert: Option<String>,
    pub key: Option<String>,
    /// `Strict-Transport-Security` value sent on TLS answers, e.g.
    /// `"max-age=31536000; includeSubDomains"`; unset or empty = none.
    pub hsts: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSecrets {
    pub dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSession {
    pub cookie_name: Option<String>,
    pub domain: Option<String>,
    pub secure: Option<bool>,
    pub same_site: Option<String>,
    pub idle_timeout: Option<String>,
    pub absolute_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    pub backend: Option<String>,
    pub redis_url: Option<String>,
    pub key_prefix: Option<String>,
    /// Most keys the memory backend holds (ignored by Redis).
    pub max_entries: Option<i64>,
    /// How long a gateway may reuse a session record it read (0s: never).
    pub session_cache: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUsers {
    pub backend: Option<String>,
    pub file: Option<String>,
    pub url: Option<String>,
    pub cache_size: Option<i64>,
    pub stale_for: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPassword {
    /// Shortest new password for an account with a second factor (authenticator app
    /// or phone). Default 8 (NIST SP 800-63B).
    pub min_length: Option<i64>,
    /// Shortest new password for an account whose password is its only factor.
    /// Default 15 (never below `min_length`).
    pub min_length_single_factor: Option<i64>,
    /// How hard guessing must be: the lowest zxcvbn score (0-4) a new password may
    /// have. Default 3 ("safely unguessable").
    pub min_strength: Option<i64>,
    pub max_concurrent_hashes: Option<i64>,
    /// argon2id memory in KiB for new hashes. Default 19456 (OWASP). A stored hash made
    /// with other parameters is re-made at the next sign-in.
    pub argon2_memory_kib: Option<i64>,
    /// argon2id passes. Default 2.
    pub argon2_iterations: Option<i64>,
    /// argon2id lanes. Default 1.
    pub argon2_parallelism: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDefense {
    pub captcha_after: Option<i64>,
    pub lock_after: Option<i64>,
    pub window: Option<String>,
    pub lock_duration: Option<String>,
    pub lock_max: Option<String>,
    pub ip_per_minute: Option<i64>,
    pub known_device_days: Option<i64>,
    pub known_device_lock_after: Option<i64>,
    pub spray_per_minute: Option<i64>,
    pub captcha_ttl: Option<String>,
    pub captcha_on_reset: Option<bool>,
    pub captcha_on_password_change: Option<bool>,
    pub lock_scope: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOtp {
    pub code_ttl: Option<String>,
    pub code_length: Option<i64>,
    pub max_attempts: Option<i64>,
    pub totp_issuer: Option<String>,
    pub totp_algorithm: Option<String>,
    pub totp_digits: Option<i64>,
    pub totp_period: Option<String>,
    pub require: Option<String>,
    pub require_groups: Option<Vec<String>>,
    pub remember_days: Option<i64>,
    pub reauth_after: Option<String>,
    pub send_limit: Option<i64>,
    pub send_limit_client: Option<i64>,
    pub send_window: Option<String>,
    pub resend_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawNotify {
    pub backend: Option<String>,
    pub file: Option<String>,
    /// Per-channel backend, overriding `backend`: a backend name or "none".
    pub email: Option<String>,
    pub sms: Option<String>,
    pub voice: Option<String>,
    pub smtp: Option<RawSmtp>,
    pub webhook: Option<RawWebhook>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSmtp {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub from: Option<String>,
    pub ca_file: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebhook {
    pub url: Option<String>,
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    pub content_type: Option<String>,
    pub body: Option<String>,
    pub timeout: Option<String>,
}

/// `[ui]`: branding. An extension of the contract.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUi {
    pub templates: Option<String>,
    pub title: Option<String>,
    pub accent_color: Option<String>,
    pub logo: Option<String>,
    /// Two-letter region (ISO 3166, e.g. "US", "DE"): phone numbers typed without a
    /// country code are read as numbers of this region. Default: none (country code needed).
    pub default_region: Option<String>,
    /// Who people ask for help: an email address or an http(s) URL, shown on the help,
    /// lock, two-step and error pages. Default: none ("your administrator").
    pub support_contact: Option<String>,
    /// A folder of Fluent catalogues named by language tag (`de.ftl`, `nl.ftl`): they
    /// replace built-in messages of that language or add a language. Default: none.
    pub locales: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSite {
    pub host: Option<String>,
    pub upstream: Option<String>,
    pub upstream_tls: Option<bool>,
    /// PEM file of the CA(s) the upstream's certificate must chain to; unset = system roots.
    pub upstream_ca: Option<String>,
    /// `[site.headers]`: the identity header names this application reads.
    pub headers: Option<RawSiteHeaders>,
}

/// `[site.headers]`: header names ("" = not sent) and the assertion header.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSiteHeaders {
    /// Default `Remote-User`.
    pub user: Option<String>,
    /// Default `Remote-Email`.
    pub email: Option<String>,
    /// Default `Remote-Name`.
    pub name: Option<String>,
    /// Default `Remote-Groups`.
    pub groups: Option<String>,
    /// Between groups; default `,`.
    pub group_separator: Option<String>,
    /// Header for the signed identity (JWT); default "" (off).
    pub assertion: Option<String>,
}

/// `[assertion]`: the signed identity's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAssertion {
    /// How long a token is valid (`exp - iat`); default 60s.
    pub ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRule {
    pub host: Option<String>,
    pub path: Option<String>,
    pub methods: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub networks: Option<Vec<String>>,
    pub policy: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAccess {
    pub default_policy: Option<String>,
}
