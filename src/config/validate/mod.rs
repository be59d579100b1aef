//! The pure half of loading: raw sections ([`super::raw`]) into typed config,
//! one validator per section, each in its own file. No file, network or
//! clock here — what needs the outside world (resolving an upstream, reading a
//! CA, a key pair, a password file, checking a folder) is left to
//! [`super::load`], which the validators hand it to as [`Pending`].
//!
//! Every validator reports each problem with its key path into one
//! [`Problems`] list and carries on with the default, so a file's problems
//! come back all at once.

mod access;
mod defense;
mod notify;
mod otp;
mod password;
mod server;
mod session;
mod sites;
mod store;
mod ui;
mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use super::raw::RawConfig;
use super::values::HumanDuration;
use super::{defaults, parse_cidr, AssertionConfig, Config};

pub use sites::SiteDraft;

/// What the validators leave for [`super::load`]: the config is complete but
/// for these.
#[derive(Debug, Default)]
pub struct Pending {
    /// `[[site]]`s with an upstream to resolve (and a CA to read), with their
    /// index in the file, in file order.
    pub sites: Vec<(usize, SiteDraft)>,
    /// `notify.smtp.password_file` as written, and resolved.
    pub smtp_password_file: Option<(String, PathBuf)>,
}

/// The problems found so far, each `key.path: message`.
pub struct Problems<'a> {
    problems: &'a mut Vec<String>,
}

impl<'a> Problems<'a> {
    pub fn new(problems: &'a mut Vec<String>) -> Self {
        Problems { problems }
    }

    pub fn err(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{key}: {msg}"));
    }

    /// Whether `key` already has a problem (e.g. a value that didn't read, so
    /// the key is absent now but was not missing).
    pub fn has(&self, key: &str) -> bool {
        self.problems
            .iter()
            .any(|p| p.strip_prefix(key).is_some_and(|r| r.starts_with(": ")))
    }

    /// A duration of at least `min`; `default` when absent or too short.
    pub fn duration(
        &mut self,
        key: &str,
        v: Option<HumanDuration>,
        default: Duration,
        min: Duration,
    ) -> Duration {
        match v {
            None => default,
            Some(HumanDuration(d)) if d >= min => d,
            Some(_) => {
                self.err(
                    key,
                    format!("must be at least {}", humantime::format_duration(min)),
                );
                default
            }
        }
    }

    /// An integer in `min..=max`; `default` when absent or out of range.
    pub fn int(&mut self, key: &str, v: Option<i64>, default: i64, min: i64, max: i64) -> i64 {
        match v {
            None => default,
            Some(n) if (min..=max).contains(&n) => n,
            Some(n) => {
                self.err(key, format!("{n} is out of range ({min} to {max})"));
                default
            }
        }
    }

    pub fn addr(&mut self, key: &str, v: &str) -> Option<SocketAddr> {
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

    pub fn cidrs(&mut self, key: &str, v: &[String]) -> Vec<IpNet> {
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

/// A path of the file, relative to the config's folder unless absolute.
pub fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A host name as written in `[[site]].host` or `session.domain`: lower-case, no port.
pub fn valid_host(h: &str) -> bool {
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

/// Every section, validated; `base` is the folder relative paths start from.
/// The config's `sites` are empty and `server.threads` may be 0 until
/// [`super::load`] has done the [`Pending`] work.
pub fn validate(raw: RawConfig, base: &Path, problems: &mut Vec<String>) -> (Config, Pending) {
    let mut v = Problems::new(problems);
    let server = server::validate(raw.server, base, &mut v);
    let secrets_dir = resolve(
        base,
        raw.secrets.dir.as_deref().unwrap_or(defaults::secrets::DIR),
    );
    let session = session::validate(raw.session, &mut v);
    let store = store::validate(raw.store, &mut v);
    let (users_file, users) = users::validate(raw.users, base, &mut v);
    let password = password::validate(&raw.password, &mut v);
    let defense = defense::validate(&raw.defense, &mut v);
    let otp = otp::validate(&raw.otp, &mut v);
    let (notify, smtp_password_file) = notify::validate(&raw.notify, base, &mut v);
    let ui = ui::validate(raw.ui, base, &mut v);
    let drafts = sites::validate(&raw.site, base, &mut v);
    let identity_strip = sites::identity_strip_names(drafts.iter().map(|(_, d)| &d.identity));
    let assertion = AssertionConfig {
        ttl: v.duration(
            "assertion.ttl",
            raw.assertion.ttl,
            defaults::assertion::TTL,
            Duration::from_secs(1),
        ),
    };
    let hosts: Vec<&str> = drafts.iter().map(|(_, d)| d.host.as_str()).collect();
    let rules = access::validate_rules(&raw.rule, &hosts, &mut v);
    let default_policy = access::default_policy(&raw.access);
    let config = Config {
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
        sites: Vec::new(),
        rule_index: crate::policy::RuleIndex::new(&rules),
        rules,
        default_policy,
        assertion,
        identity_strip,
    };
    let pending = Pending {
        sites: drafts,
        smtp_password_file,
    };
    (config, pending)
}

#[cfg(test)]
pub(super) mod tests;
