//! `[[site]]` and `[site.headers]`: one per application; at least one. The
//! upstream's name is resolved, and its CA read, by [`crate::config::load`].

use std::path::{Path, PathBuf};

use super::{resolve, valid_host, Problems};
use crate::config::raw::{RawSite, RawSiteHeaders};
use crate::identity::IdentityHeaders;

/// A site as far as it can be checked without the network and files.
#[derive(Debug)]
pub struct SiteDraft {
    /// Lower-case host name, no port.
    pub host: String,
    /// `host:port` as written, to resolve.
    pub upstream: String,
    pub upstream_tls: bool,
    /// The CA file to read (only with `upstream_tls`).
    pub upstream_ca: Option<PathBuf>,
    pub allow_get_bodies: bool,
    pub keep_alive_after_bodies: bool,
    pub identity: IdentityHeaders,
}

/// The sites that have an upstream, with their index in the file.
pub fn validate(
    raw_sites: &[RawSite],
    base: &Path,
    v: &mut Problems<'_>,
) -> Vec<(usize, SiteDraft)> {
    let mut sites: Vec<(usize, SiteDraft)> = Vec::new();
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
        } else if sites.iter().any(|(_, x)| x.host == host) {
            v.err(&format!("{key}.host"), format!("{host:?} is listed twice"));
        }
        let upstream = s.upstream.as_deref().filter(|u| !u.is_empty());
        if upstream.is_none() {
            v.err(
                &format!("{key}.upstream"),
                "is required (e.g. \"127.0.0.1:3000\")",
            );
        }
        let upstream_tls = s.upstream_tls.unwrap_or(false);
        let upstream_ca = match s.upstream_ca.as_deref().filter(|p| !p.is_empty()) {
            None => None,
            Some(_) if !upstream_tls => {
                v.err(&format!("{key}.upstream_ca"), "needs upstream_tls = true");
                None
            }
            Some(p) => Some(resolve(base, p)),
        };
        let identity = validate_headers(s.headers.as_ref(), &format!("{key}.headers"), v);
        if let Some(upstream) = upstream {
            let upstream = upstream.to_string();
            let draft = SiteDraft {
                host,
                upstream,
                upstream_tls,
                upstream_ca,
                allow_get_bodies: s.allow_get_bodies.unwrap_or(false),
                keep_alive_after_bodies: s.keep_alive_after_bodies.unwrap_or(false),
                identity,
            };
            sites.push((i, draft));
        }
    }
    if raw_sites.is_empty() {
        v.err("site", "at least one [[site]] is required");
    }
    sites
}

/// `[site.headers]` → the site's identity header names. Each name must be a
/// header name that can carry identity ([`crate::identity::name_problem`]), and
/// no two of one site may fold to the same name.
fn validate_headers(
    raw: Option<&RawSiteHeaders>,
    key: &str,
    v: &mut Problems<'_>,
) -> IdentityHeaders {
    let mut out = IdentityHeaders::default();
    let Some(raw) = raw else {
        return out;
    };
    let name = |field: &'static str,
                value: Option<&String>,
                default: Option<http::HeaderName>,
                v: &mut Problems<'_>| {
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
pub fn identity_strip_names<'a>(sites: impl Iterator<Item = &'a IdentityHeaders>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in sites {
        for n in s.names() {
            let folded = crate::identity::fold(n.as_str());
            if !crate::spoofable::is_spoofable(&folded) && !out.contains(&folded) {
                out.push(folded);
            }
        }
    }
    out
}
