//! The file format: serde structs that mirror the TOML exactly.
//!
//! Every field is optional so that one key can be checked on its own (see
//! [`super::parse`]), which is how every problem in a file is reported at once.
//! Durations and closed sets of words are read into their types here
//! ([`super::values`]), so a bad one is a problem of its key; everything else
//! (ranges, cross-key rules, files, names) is for [`super::validate`], which
//! turns these into the typed [`super::Config`]. Each field's doc states its
//! default, whose value lives in [`super::defaults`]. Paths are relative to the
//! config file's folder.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::values::{
    ChannelRoute, HumanDuration, LockScope, PolicySetting, StoreKind, TotpAlgorithmSetting,
    UsersKind,
};
use super::{NotifyBackend, Require, SameSite, SmtpSecurity};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// `[server]`: listeners, timeouts, trusted proxies. Default: every key's default.
    pub server: RawServer,
    /// `[secrets]`: where the keys are. Default: every key's default.
    pub secrets: RawSecrets,
    /// `[session]`: the cookie and timeouts. Default: every key's default.
    pub session: RawSession,
    /// `[store]`: memory or Redis. Default: every key's default (memory).
    pub store: RawStore,
    /// `[users]`: where accounts live. Default: every key's default (the users file).
    pub users: RawUsers,
    /// `[password]`: new-password rules, argon2id. Default: every key's default.
    pub password: RawPassword,
    /// `[defense]`: the lockout ladder. Default: every key's default.
    pub defense: RawDefense,
    /// `[otp]`: second factors. Default: every key's default.
    pub otp: RawOtp,
    /// `[notify]`: how messages go out. Default: every key's default (an outbox file).
    pub notify: RawNotify,
    /// `[ui]`: branding. Default: every key's default.
    pub ui: RawUi,
    /// `[[site]]`: one per application; at least one is required.
    pub site: Vec<RawSite>,
    /// `[[rule]]`: tried in order, the first match wins. Default: none.
    pub rule: Vec<RawRule>,
    /// `[access]`: the policy when no rule matches. Default: every key's default.
    pub access: RawAccess,
    /// `[assertion]`: the signed identity. Default: every key's default.
    pub assertion: RawAssertion,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// Address the gateway listens on. Default `"127.0.0.1:8080"`.
    pub listen: Option<String>,
    /// Address serving `/metrics` (Prometheus) and `/health`; must differ from
    /// `listen`. Default: none (or `""`).
    pub admin_listen: Option<String>,
    /// Path under which the portal's pages live on every site. Default `"/_auth"`.
    pub portal_prefix: Option<String>,
    /// Peers (CIDRs or addresses) whose `X-Forwarded-*` headers are believed.
    /// Default: none.
    pub trusted_proxies: Vec<String>,
    /// The portal's public http(s) URL, when it differs from the site asked.
    /// Default: none.
    pub public_url: Option<String>,
    /// Worker threads, 0 to 256; 0 = one per CPU core. Default 0.
    pub threads: Option<i64>,
    /// A request header must arrive completely within this time of its first byte
    /// (at least 1s). Default `"10s"`.
    pub header_timeout: Option<HumanDuration>,
    /// Longest wait for an upstream to accept, answer or take a write; 504 after
    /// (at least 1s). Default `"60s"`.
    pub upstream_timeout: Option<HumanDuration>,
    /// Open connections one client address (IPv6: its /64) may hold; 0 = no cap.
    /// Default 256.
    pub max_connections_per_client: Option<i64>,
    /// Idle upstream connections kept open for reuse: this many per worker thread
    /// (`threads` × it in all, one pool shared by the workers and all sites); 1 to
    /// 4096. Default 128.
    pub upstream_idle_connections: Option<i64>,
    /// `[server.tls]`: HTTPS on `listen`. Default: none (plain HTTP).
    pub tls: Option<RawTls>,
}

/// `[server.tls]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    /// PEM certificate chain. Required with `key`.
    pub cert: Option<String>,
    /// PEM private key. Required with `cert`.
    pub key: Option<String>,
    /// `Strict-Transport-Security` value sent on TLS answers, e.g.
    /// `"max-age=31536000; includeSubDomains"`; empty = none. Default: none.
    pub hsts: Option<String>,
}

/// `[secrets]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSecrets {
    /// Folder of the gateway's keys (created by `init`). Default `"secrets"`.
    pub dir: Option<String>,
}

/// `[session]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSession {
    /// Name of the session cookie (letters, digits, `-`, `_`, `.`). Default `"portcullis"`.
    pub cookie_name: Option<String>,
    /// Parent domain for single sign-on across subdomains, e.g. `"example.com"`.
    /// Default: none (the cookie stays on the site's host).
    pub domain: Option<String>,
    /// Cookie sent over HTTPS only. Default `true`.
    pub secure: Option<bool>,
    /// `lax`, `strict` or `none` (any case; `none` needs `secure`). Default `"lax"`.
    pub same_site: Option<SameSite>,
    /// A session unused this long ends (at least 1s). Default `"30m"`.
    pub idle_timeout: Option<HumanDuration>,
    /// A session ends this long after sign-in, used or not (at least 1s, not
    /// shorter than `idle_timeout`). Default `"12h"`.
    pub absolute_timeout: Option<HumanDuration>,
}

/// `[store]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    /// `memory` (one gateway) or `redis` (shared). Default `"memory"`.
    pub backend: Option<StoreKind>,
    /// `redis://`, `rediss://` or `unix://` URL (redis only).
    /// Default `"redis://127.0.0.1:6379/0"`.
    pub redis_url: Option<String>,
    /// Prefix of every key the gateway writes. Default `"portcullis:"`.
    pub key_prefix: Option<String>,
    /// Most keys the memory backend holds, 1000 to 10^9 (ignored by Redis).
    /// Default 1000000.
    pub max_entries: Option<i64>,
    /// How long a gateway may reuse a session record it read, 0s to 60s (0s: never).
    /// Default `"5s"`.
    pub session_cache: Option<HumanDuration>,
}

/// `[users]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUsers {
    /// `file`, `sqlite` or `postgres`. Default `"file"`.
    pub backend: Option<UsersKind>,
    /// The users file (backend `file`). Default `"users.toml"`.
    pub file: Option<String>,
    /// `sqlite:PATH` or `postgres://user:password@host:5432/db`.
    /// Default for sqlite: `"sqlite:accounts.db"`; postgres needs one.
    pub url: Option<String>,
    /// Most accounts a gateway keeps in memory (databases), 1 to 10^7. Default 10000.
    pub cache_size: Option<i64>,
    /// How long cached accounts keep serving while the database's change feed is
    /// unreachable. Default `"5m"`.
    pub stale_for: Option<HumanDuration>,
}

/// `[password]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPassword {
    /// Shortest new password for an account with a second factor (authenticator app
    /// or phone), 1 to 1024. Default 8 (NIST SP 800-63B).
    pub min_length: Option<i64>,
    /// Shortest new password for an account whose password is its only factor.
    /// Default 15 (never below `min_length`).
    pub min_length_single_factor: Option<i64>,
    /// How hard guessing must be: the lowest zxcvbn score (0-4) a new password may
    /// have. Default 3 ("safely unguessable").
    pub min_strength: Option<i64>,
    /// Password hashes computed at once, 1 to 256 (the rest wait). Default 2.
    pub max_concurrent_hashes: Option<i64>,
    /// argon2id memory in KiB for new hashes. Default 19456 (OWASP). A stored hash made
    /// with other parameters is re-made at the next sign-in.
    pub argon2_memory_kib: Option<i64>,
    /// argon2id passes, 1 to 100. Default 2.
    pub argon2_iterations: Option<i64>,
    /// argon2id lanes, 1 to 16. Default 1.
    pub argon2_parallelism: Option<i64>,
}

/// `[defense]`: the lockout ladder and rate limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDefense {
    /// Failures (per account, per client, within `window`) before a CAPTCHA is
    /// asked; 0 = always. Default 3.
    pub captcha_after: Option<i64>,
    /// Failed sign-ins before the account is locked (at least 1). Default 10.
    pub lock_after: Option<i64>,
    /// How long failures are counted. Default `"15m"`.
    pub window: Option<HumanDuration>,
    /// The first lock's length; each further lock doubles it. Default `"15m"`.
    pub lock_duration: Option<HumanDuration>,
    /// The longest lock (not shorter than `lock_duration`). Default `"24h"`.
    pub lock_max: Option<HumanDuration>,
    /// Sign-in attempts per minute from one client address. Default 30.
    pub ip_per_minute: Option<i64>,
    /// How long a browser stays a known device of an account, 0 to 3650 days.
    /// Default 90.
    pub known_device_days: Option<i64>,
    /// Failures a known device may make before it is locked out too, 1 to 1000.
    /// Default: `lock_after`.
    pub known_device_lock_after: Option<i64>,
    /// Failed sign-ins per minute across all accounts above which every unknown
    /// device must solve a CAPTCHA; 0 = off. Default 100.
    pub spray_per_minute: Option<i64>,
    /// How long a CAPTCHA may be answered (at least 10s). Default `"5m"`.
    pub captcha_ttl: Option<HumanDuration>,
    /// Always ask for a CAPTCHA before sending a password-reset code. Default `false`.
    pub captcha_on_reset: Option<bool>,
    /// Always ask for a CAPTCHA on the change-password form. Default `false`.
    pub captcha_on_password_change: Option<bool>,
    /// What a lock applies to: `account` or `account_network`. Default `"account"`.
    pub lock_scope: Option<LockScope>,
}

/// `[otp]`: second factors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOtp {
    /// How long a sent code is valid. Default `"10m"`.
    pub code_ttl: Option<HumanDuration>,
    /// Digits of a sent code, 6 to 10. Default 6.
    pub code_length: Option<i64>,
    /// Wrong codes before a sent code is spent, 1 to 100. Default 5.
    pub max_attempts: Option<i64>,
    /// Name shown in authenticator apps (no `:`). Default `"Portcullis"`.
    pub totp_issuer: Option<String>,
    /// `SHA1`, `SHA256` or `SHA512` (any case) for new enrolments. Default `"SHA1"`.
    pub totp_algorithm: Option<TotpAlgorithmSetting>,
    /// Digits of an authenticator code, 6 to 8. Default 6.
    pub totp_digits: Option<i64>,
    /// Time step of an authenticator code, 15s to 5m. Default `"30s"`.
    pub totp_period: Option<HumanDuration>,
    /// `optional` or `required` (every account needs a second factor).
    /// Default `"optional"`.
    pub require: Option<Require>,
    /// Members of these groups need a second factor even when `require` is optional.
    /// Default: none.
    pub require_groups: Option<Vec<String>>,
    /// "Remember this browser" lifetime, 0 to 400 days; 0 = not offered. Default 30.
    pub remember_days: Option<i64>,
    /// Changing second factors needs a password entered within this time.
    /// Default `"5m"`.
    pub reauth_after: Option<HumanDuration>,
    /// Codes sent per account (and per destination) within `send_window`, 1 to 1000.
    /// Default 5.
    pub send_limit: Option<i64>,
    /// Codes sent per client address within `send_window`, 1 to 100000. Default 20.
    pub send_limit_client: Option<i64>,
    /// The window of the send limits. Default `"15m"`.
    pub send_window: Option<HumanDuration>,
    /// Least time between two codes for one sign-in. Default `"30s"`.
    pub resend_after: Option<HumanDuration>,
}

/// `[notify]`: how codes and notices reach people.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawNotify {
    /// `file`, `log`, `smtp` or `webhook`. Default `"file"`.
    pub backend: Option<NotifyBackend>,
    /// The outbox of the `file` backend (JSON lines). Default `"outbox.jsonl"`.
    pub file: Option<String>,
    /// Per-channel backend, overriding `backend`: a backend name or `"none"`.
    /// Default: `backend`, or else another configured backend that can carry it.
    pub email: Option<ChannelRoute>,
    /// As `email`, for text messages (smtp can't carry them). Default: as `email`.
    pub sms: Option<ChannelRoute>,
    /// As `email`, for calls (smtp can't carry them). Default: as `email`.
    pub voice: Option<ChannelRoute>,
    /// `[notify.smtp]`. Default: none.
    pub smtp: Option<RawSmtp>,
    /// `[notify.webhook]`. Default: none.
    pub webhook: Option<RawWebhook>,
}

/// `[notify.smtp]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSmtp {
    /// The mail server's host name. Required.
    pub host: Option<String>,
    /// The server's port. Default 587, or 465 with `security = "tls"`.
    pub port: Option<i64>,
    /// `starttls`, `tls` or `none`. Default `"starttls"`.
    pub security: Option<SmtpSecurity>,
    /// Sign-in name; goes with a password. Default: none (no authentication).
    pub username: Option<String>,
    /// The password, in the config itself. Default: none. Prefer `password_file`.
    pub password: Option<String>,
    /// A file holding the password (trailing newline dropped). Default: none.
    pub password_file: Option<String>,
    /// The sender, e.g. `"Portcullis <auth@example.com>"`. Required.
    pub from: Option<String>,
    /// An extra trusted root certificate (PEM). Default: none.
    pub ca_file: Option<String>,
    /// Longest wait for the server. Default `"10s"`.
    pub timeout: Option<HumanDuration>,
}

/// `[notify.webhook]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebhook {
    /// Where messages are POSTed (http or https). Required.
    pub url: Option<String>,
    /// Extra request headers, e.g. `Authorization`; values are secrets. Default: none.
    pub headers: Option<BTreeMap<String, String>>,
    /// The body's `Content-Type`. Default `"application/json"`.
    pub content_type: Option<String>,
    /// A template of the request body (variables: channel, to, subject, text, kind,
    /// code). Default: every field as JSON.
    pub body: Option<String>,
    /// Longest wait for the webhook. Default `"10s"`.
    pub timeout: Option<HumanDuration>,
}

/// `[ui]`: branding. An extension of the contract.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUi {
    /// A folder whose `*.html` files replace the built-in templates of the same name.
    /// Default: none.
    pub templates: Option<String>,
    /// Title of the sign-in page. Default `"Sign in"`.
    pub title: Option<String>,
    /// A colour like `"#1f5fbf"` (the default).
    pub accent_color: Option<String>,
    /// An image shown on every portal page. Default: none.
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

/// `[[site]]`: one application.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSite {
    /// The application's host name (no scheme, port or path). Required.
    pub host: Option<String>,
    /// `host:port` of the application (a name is resolved at start-up). Required.
    pub upstream: Option<String>,
    /// HTTPS to the upstream. Default `false`.
    pub upstream_tls: Option<bool>,
    /// PEM file of the CA(s) the upstream's certificate must chain to (with
    /// `upstream_tls`). Default: none (the system roots).
    pub upstream_ca: Option<String>,
    /// Forward a body on `GET`, `HEAD`, `OPTIONS` or `TRACE` to this application (one
    /// that reads them, such as Elasticsearch's `_search`). Default `false`: such a
    /// request gets 400, since an application that never reads the body would take
    /// it for the next request on a pooled connection.
    pub allow_get_bodies: Option<bool>,
    /// Keep the upstream connection for further requests after one with a body (an
    /// application that reads every body it is sent, such as a busy JSON API).
    /// Default `false`: such a request goes with `Connection: close`, since an
    /// application that answers without reading the body would take it for the
    /// next request.
    pub keep_alive_after_bodies: Option<bool>,
    /// `[site.headers]`: the identity header names this application reads.
    /// Default: every key's default.
    pub headers: Option<RawSiteHeaders>,
}

/// `[site.headers]`: header names ("" = not sent) and the assertion header.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSiteHeaders {
    /// The account name's header. Default `Remote-User`.
    pub user: Option<String>,
    /// The email address's header. Default `Remote-Email`.
    pub email: Option<String>,
    /// The display name's header. Default `Remote-Name`.
    pub name: Option<String>,
    /// The groups' header. Default `Remote-Groups`.
    pub groups: Option<String>,
    /// Between groups in the groups header. Default `,`.
    pub group_separator: Option<String>,
    /// Header for the signed identity (JWT). Default `""` (off).
    pub assertion: Option<String>,
}

/// `[assertion]`: the signed identity's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAssertion {
    /// How long a token is valid (`exp - iat`, at least 1s). Default `"60s"`.
    pub ttl: Option<HumanDuration>,
}

/// `[[rule]]`: who may reach what.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRule {
    /// A `[[site]]` host. Default: every site.
    pub host: Option<String>,
    /// Path prefix. Default `"/"`.
    pub path: Option<String>,
    /// HTTP methods. Default: all.
    pub methods: Option<Vec<String>>,
    /// Applies only to members of these groups. Default: everyone.
    pub groups: Option<Vec<String>>,
    /// Client networks (CIDRs or addresses). Default: anywhere.
    pub networks: Option<Vec<String>>,
    /// `bypass`, `one_factor`, `two_factor` or `deny`. Required.
    pub policy: Option<PolicySetting>,
}

/// `[access]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAccess {
    /// The policy when no rule matches. Default `"one_factor"`.
    pub default_policy: Option<PolicySetting>,
}

#[cfg(test)]
mod tests {
    /// Every field of the file format says what it is and what it is when absent
    /// (its default, or that it is required).
    #[test]
    fn every_key_has_a_doc_with_its_default() {
        let src = include_str!("raw.rs");
        let src = &src[..src.find("#[cfg(test)]").unwrap()];
        let mut doc = String::new();
        let mut fields = 0;
        for line in src.lines().map(str::trim) {
            if let Some(d) = line.strip_prefix("///") {
                doc.push_str(d);
                doc.push(' ');
            } else if line.starts_with("pub ") && line.ends_with(',') && line.contains(": ") {
                let lower = doc.to_ascii_lowercase();
                assert!(
                    lower.contains("default") || lower.contains("required"),
                    "{line} needs a /// doc stating its default (has {doc:?})"
                );
                fields += 1;
                doc.clear();
            } else if !line.starts_with("#[") {
                doc.clear();
            }
        }
        assert!(fields > 100, "{fields} fields found");
    }
}
