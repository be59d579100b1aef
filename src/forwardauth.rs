//! Forward-auth facts: what a trusted proxy (nginx `auth_request`, Traefik,
//! Caddy `forward_auth`) tells `/_auth/verify` about the request it holds, and
//! the strict reading of them.
//!
//! The answer of `/verify` opens or keeps shut a door the gateway doesn't
//! guard itself, so nothing here is guessed:
//!
//! ```text
//!  facts ─ method  X-Original-Method | X-Forwarded-Method ── missing ─────────> refused
//!        ─ host    X-Forwarded-Host  | X-Original-URL's    ── missing ─────────> refused
//!        ─ path    X-Original-URI    | X-Forwarded-Uri | X-Original-URL's ─ missing ─> refused
//!        ─ proto   X-Forwarded-Proto | X-Original-URL's    (optional: links only)
//!   each ─ given twice with different values ───────────────────────────────> refused
//!        ─ host not a plain host[:port] (userinfo, `\`, empty or odd port) ──> refused
//!        ─ path with a fragment, `\`, blanks, or ambiguous encodings ───────> refused
//!        └─ ok ─> the path normalised exactly as for proxied requests
//! ```
//!
//! Pure: header map in, [`Original`] or [`FactError`] out. The caller decides
//! whether the peer may speak at all (`server.trusted_proxies`).

use std::net::Ipv6Addr;

use http::{HeaderMap, Method};

/// Every value of each forward-auth header, as sent (all instances kept, so
/// a second, different copy is seen as the conflict it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub uri: Vec<(&'static str, String)>,
    pub url: Vec<String>,
    pub method: Vec<(&'static str, String)>,
    pub host: Vec<String>,
    pub proto: Vec<String>,
    /// `X-Forwarded-Port`: completes a host told without port (nginx `$host`).
    pub port: Vec<String>,
    /// A header whose value isn't visible ASCII.
    pub unreadable: Option<&'static str>,
}

/// The original request, as far as access decisions need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub method: Method,
    /// `None` when the proxy didn't say (only links back to the site use it).
    pub scheme: Option<&'static str>,
    /// Lower-case host without port (IPv6 in brackets): what rules and sites match.
    pub host: String,
    /// `host[:port]` for links back to the original site.
    pub authority: String,
    /// Normalised path, exactly as [`crate::pathnorm::normalize`] gives it.
    pub path: String,
    pub query: Option<String>,
}

impl Original {
    /// The path with its query, as the original request had it after normalisation.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactError {
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} was given more than once, with different values")]
    Conflict(&'static str),
    #[error("{0} is not acceptable: {1}")]
    Bad(&'static str, &'static str),
}

const URI_HEADERS: [&str; 2] = ["x-original-uri", "x-forwarded-uri"];
const METHOD_HEADERS: [&str; 2] = ["x-original-method", "x-forwarded-method"];

impl Facts {
    pub fn from_headers(h: &HeaderMap) -> Facts {
        let mut f = Facts::default();
        let mut all = |name: &'static str| -> Vec<String> {
            let mut out = Vec::new();
            for v in h.get_all(name) {
                match v.to_str() {
                    Ok(s) => out.push(s.trim().to_string()),
                    Err(_) => f.unreadable = Some(name),
                }
            }
            out
        };
        let mut uri = Vec::new();
        for n in URI_HEADERS {
            uri.extend(all(n).into_iter().map(|v| (n, v)));
        }
        let mut method = Vec::new();
        for n in METHOD_HEADERS {
            method.extend(all(n).into_iter().map(|v| (n, v)));
        }
        let url = all("x-original-url");
        let host = all("x-forwarded-host");
        let proto = all("x-forwarded-proto");
        let port = all("x-forwarded-port");
        Facts {
            uri,
            url,
            method,
            host,
            proto,
            port,
            ..f
        }
    }
}

/// One value of a kind, or the conflict / absence.
fn one<T: PartialEq>(values: Vec<T>, what: &'static str) -> Result<Option<T>, FactError> {
    let mut it = values.into_iter();
    let first = it.next();
    if let Some(f) = &first {
        if it.any(|v| v != *f) {
            return Err(FactError::Conflict(what));
        }
    }
    Ok(first)
}

/// A plain `host[:port]`: a DNS name or IPv4 address, or an IPv6 address in
/// brackets, and a decimal port 1-65535. Returns (host, authority), lower-case.
pub fn plain_authority(s: &str) -> Result<(String, String), &'static str> {
    if s.is_empty() {
        return Err("empty host");
    }
    if s.len() > 261 {
        return Err("too long");
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("unclosed '['")?;
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err("not an IPv6 address in brackets");
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after ']'")?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        let (h, p) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let h = h.strip_suffix('.').unwrap_or(h);
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
            && !h.starts_with(['.', '-'])
            && !h.contains("..");
        if !ok {
            return Err("not a plain host name");
        }
        (h.to_ascii_lowercase(), p)
    };
    let authority = match port {
        None => host.clone(),
        Some(p) => {
            let n = (!p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u32>().ok())
                .flatten()
                .filter(|n| (1..=65535).contains(n))
                .ok_or("port is not a number from 1 to 65535")?;
            format!("{host}:{n}")
        }
    };
    Ok((host, authority))
}

/// An origin-form request target: `/path[?query]`, visible ASCII, no fragment,
/// no backslash. Returns the normalised path and the query.
fn origin_form(u: &str, what: &'static str) -> Result<(String, Option<String>), FactError> {
    if !u.starts_with('/') {
        return Err(FactError::Bad(what, "not a path starting with '/'"));
    }
    if !u.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FactError::Bad(
            what,
            "blank, control or non-ASCII character",
        ));
    }
    if u.contains('#') {
        return Err(FactError::Bad(what, "fragment ('#')"));
    }
    if u.contains('\\') {
        return Err(FactError::Bad(what, "backslash"));
    }
    let (raw, query) = match u.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (u, None),
    };
    let path = crate::pathnorm::normalize(raw).map_err(|_| {
        FactError::Bad(
            what,
            "ambiguous path (encoded separator, dot parameter, ...)",
        )
    })?;
    Ok((path, query))
}

/// `http(s)://host[:port]/path?query` read strictly (no userinfo, no `\`, no fragment).
fn split_url(u: &str) -> Result<(&'static str, &str, &str), FactError> {
    const WHAT: &str = "X-Original-URL";
    let lower = u.get(..8).unwrap_or(u).to_ascii_lowercase();
    let (scheme, rest) = if lower.starts_with("https://") {
        ("https", &u[8..])
    } else if lower.starts_with("http://") {
        ("http", &u[7..])
    } else {
        return Err(FactError::Bad(WHAT, "not an http(s) URL"));
    };
    let end = rest
        .find(['/', '?', '#', '\\'])
        .ok_or(FactError::Bad(WHAT, "no path"))?;
    if rest.as_bytes()[end] != b'/' {
        return Err(FactError::Bad(WHAT, "no path after the host"));
    }
    Ok((scheme, &rest[..end], &rest[end..]))
}

/// Reads the facts strictly; see the module doc.
pub fn resolve(f: &Facts) -> Result<Original, FactError> {
    if let Some(h) = f.unreadable {
        return Err(FactError::Bad(h, "not visible ASCII"));
    }
    let mut schemes = Vec::new();
    let mut hosts = Vec::new();
    let mut targets = Vec::new();
    for u in &f.url {
        let (scheme, authority, target) = split_url(u)?;
        let (host, authority) =
            plain_authority(authority).map_err(|e| FactError::Bad("X-Original-URL", e))?;
        schemes.push(scheme);
        hosts.push((host, authority));
        targets.push(origin_form(target, "X-Original-URL")?);
    }
    for (name, u) in &f.uri {
        let what = if *name == URI_HEADERS[0] {
            "X-Original-URI"
        } else {
            "X-Forwarded-Uri"
        };
        targets.push(origin_form(u, what)?);
    }
    for h in &f.host {
        hosts.push(plain_authority(h).map_err(|e| FactError::Bad("X-Forwarded-Host", e))?);
    }
    for p in &f.proto {
        schemes.push(if p.eq_ignore_ascii_case("https") {
            "https"
        } else if p.eq_ignore_ascii_case("http") {
            "http"
        } else {
            return Err(FactError::Bad(
                "X-Forwarded-Proto",
                "neither http nor https",
            ));
        });
    }
    let mut methods = Vec::new();
    for (_, m) in &f.method {
        let ok = !m.is_empty() && m.len() <= 32 && m.bytes().all(|b| b.is_ascii_uppercase());
        let m = ok
            .then(|| Method::from_bytes(m.as_bytes()).ok())
            .flatten()
            .ok_or(FactError::Bad("X-Original-Method", "not an HTTP method"))?;
        methods.push(m);
    }
    let (path, query) = one(
        targets,
        "the original path (X-Original-URI / X-Forwarded-Uri)",
    )?
    .ok_or(FactError::Missing("X-Original-URI (or X-Forwarded-Uri)"))?;
    let method = one(
        methods,
        "the original method (X-Original-Method / X-Forwarded-Method)",
    )?
    .ok_or(FactError::Missing(
        "X-Original-Method (or X-Forwarded-Method)",
    ))?;
    // The host must agree; a port may be told by one source and not the other.
    let host = one(
        hosts.iter().map(|(h, _)| h.clone()).collect(),
        "the original host (X-Forwarded-Host / X-Original-URL)",
    )?
    .ok_or(FactError::Missing("X-Forwarded-Host"))?;
    let authority = hosts
        .iter()
        .map(|(_, a)| a)
        .max_by_key(|a| a.len())
        .cloned()
        .unwrap_or_else(|| host.clone());
    let scheme = one(
        schemes,
        "the original scheme (X-Forwarded-Proto / X-Original-URL)",
    )?;
    let port = one(f.port.clone(), "X-Forwarded-Port")?;
    let authority = match port {
        Some(p) => {
            let (_, with_port) = plain_authority(&format!("localhost:{p}"))
                .map_err(|e| FactError::Bad("X-Forwarded-Port", e))?;
            let p = with_port.trim_start_matches("localhost:");
            let default = matches!((scheme, p), (Some("http"), "80") | (Some("https"), "443"));
            if authority.contains("]:")
                || (!authority.starts_with('[') && authority.contains(':'))
                || default
            {
                authority
            } else {
                format!("{authority}:{p}")
            }
        }
        None => authority,
    };
    Ok(Original {
        method,
        scheme,
        host,
        authority,
        path,
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pairs: &[(&str, &str)]) -> Facts {
        Facts::from_headers(&crate::test_support::header_map(pairs))
    }

    fn nginx(uri: &str, host: &str) -> Facts {
        facts(&[
            ("X-Original-URI", uri),
            ("X-Original-Method", "GET"),
            ("X-Forwarded-Host", host),
            ("X-Forwarded-Proto", "https"),
        ])
    }

    #[test]
    fn plain_facts_are_read_and_normalised() {
        let o = resolve(&nginx("/a/../admin//x?y=1", "App.Test:8443")).unwrap();
        assert_eq!(o.path, "/admin/x");
        assert_eq!(o.query.as_deref(), Some("y=1"));
        assert_eq!(o.host, "app.test");
        assert_eq!(o.authority, "app.test:8443");
        assert_eq!(o.method, Method::GET);
        assert_eq!(o.scheme, Some("https"));
        // nginx's `$host` has no port: X-Forwarded-Port completes links (unless it's the default).
        let mut f = nginx("/", "app.test");
        f.port = vec!["8080".into()];
        assert_eq!(resolve(&f).unwrap().authority, "app.test:8080");
        f.port = vec!["443".into()];
        assert_eq!(resolve(&f).unwrap().authority, "app.test");
        f.port = vec!["80x".into()];
        assert!(matches!(
            resolve(&f),
            Err(FactError::Bad("X-Forwarded-Port", _))
        ));
        // Traefik / Caddy spelling.
        let o = resolve(&facts(&[
            ("X-Forwarded-Uri", "/p"),
            ("X-Forwarded-Method", "DELETE"),
            ("X-Forwarded-Host", "[::1]:8080"),
        ]))
        .unwrap();
        assert_eq!(
            (o.host.as_str(), o.authority.as_str()),
            ("[::1]", "[::1]:8080")
        );
        assert_eq!(o.method, Method::DELETE);
        assert_eq!(o.scheme, None);
    }

    #[test]
    fn hosts_that_are_not_plain_are_refused() {
        for h in [
            "app.test:\\public?",
            "other.test:@app.test",
            "user@app.test",
            "app.test:",
            "app.test:abc",
            "app.test:0",
            "app.test:65536",
            "app.test:+80",
            "app.test:80:80",
            "app.test/x",
            "app.test#x",
            "app.test?x",
            "app test",
            "app.test, evil.test",
            "",
            ".app.test",
            "[::1",
            "[zz::1]",
            "[::1]x",
            "a..b",
        ] {
            let got = resolve(&nginx("/", h));
            assert!(
                matches!(got, Err(FactError::Bad("X-Forwarded-Host", _))),
                "{h:?}: {got:?}"
            );
        }
    }

    #[test]
    fn paths_that_are_not_plain_are_refused() {
        for u in [
            "public",
            "http://app.test/admin",
            "/public#x",
            "/public\\..\\admin",
            "/a%2f..%2fadmin",
            "/a%5cadmin",
            "/x/..;/admin",
            "/a b",
            "/a\tb",
            "/caf\u{e9}",
            "",
        ] {
            let got = resolve(&nginx(u, "app.test"));
            assert!(matches!(got, Err(FactError::Bad(..))), "{u:?}: {got:?}");
        }
    }

    #[test]
    fn missing_facts_are_refused() {
        let no_method = facts(&[("X-Original-URI", "/"), ("X-Forwarded-Host", "app.test")]);
        assert!(matches!(resolve(&no_method), Err(FactError::Missing(_))));
        let no_host = facts(&[("X-Original-URI", "/"), ("X-Original-Method", "GET")]);
        assert!(matches!(resolve(&no_host), Err(FactError::Missing(_))));
        let no_uri = facts(&[("X-Original-Method", "GET"), ("X-Forwarded-Host", "a.test")]);
        assert!(matches!(resolve(&no_uri), Err(FactError::Missing(_))));
        assert!(matches!(
            resolve(&Facts::default()),
            Err(FactError::Missing(_))
        ));
    }

    #[test]
    fn conflicting_facts_are_refused() {
        let two = |a: (&str, &str), b: (&str, &str)| {
            let mut f = vec![
                ("X-Original-URI", "/p"),
                ("X-Original-Method", "GET"),
                ("X-Forwarded-Host", "app.test"),
            ];
            f.retain(|(k, _)| !k.eq_ignore_ascii_case(a.0) && !k.eq_ignore_ascii_case(b.0));
            f.push(a);
            f.push(b);
            resolve(&facts(&f))
        };
        for (a, b) in [
            (
                ("X-Original-URI", "/public/"),
                ("X-Forwarded-Uri", "/admin"),
            ),
            (("X-Original-URI", "/public/"), ("X-Original-URI", "/admin")),
            (("X-Original-Method", "GET"), ("X-Forwarded-Method", "POST")),
            (
                ("X-Forwarded-Host", "a.test"),
                ("X-Forwarded-Host", "b.test"),
            ),
            (
                ("X-Forwarded-Host", "a.test"),
                ("X-Original-URL", "https://b.test/p"),
            ),
            (
                ("X-Original-URI", "/p"),
                ("X-Original-URL", "https://app.test/q"),
            ),
            (
                ("X-Forwarded-Proto", "http"),
                ("X-Original-URL", "https://app.test/p"),
            ),
        ] {
            assert!(
                matches!(two(a, b), Err(FactError::Conflict(_))),
                "{a:?} {b:?}: {:?}",
                two(a, b)
            );
        }
        // The same fact twice in agreement is fine; a port on one side only too.
        let o = two(
            ("X-Forwarded-Host", "app.test"),
            ("X-Original-URL", "https://APP.test:8443/p"),
        )
        .unwrap();
        assert_eq!(o.authority, "app.test:8443");
    }

    #[test]
    fn original_url_is_read_strictly() {
        let url = |u: &str| {
            resolve(&facts(&[
                ("X-Original-URL", u),
                ("X-Original-Method", "GET"),
            ]))
        };
        let o = url("https://app.test:8443/a/./b?c=d").unwrap();
        assert_eq!(
            (o.host.as_str(), o.path.as_str(), o.query.as_deref()),
            ("app.test", "/a/b", Some("c=d"))
        );
        for bad in [
            "https://app.test:\\public?/admin",
            "https://other.test:@app.test/admin",
            "https://user:pw@app.test/admin",
            "https://app.test\\@evil.test/",
            "https://app.test:/x",
            "https://app.test",
            "https://app.test?x",
            "https://app.test#/public",
            "https://app.test/public#x",
            "ftp://app.test/",
            "//app.test/",
        ] {
            assert!(
                matches!(url(bad), Err(FactError::Bad(..))),
                "{bad}: {:?}",
                url(bad)
            );
        }
    }

    #[test]
    fn methods_are_plain_tokens() {
        for m in ["get", "G ET", "GET, POST", "", "G\u{e9}T"] {
            let f = facts(&[
                ("X-Original-URI", "/"),
                ("X-Forwarded-Host", "a.test"),
                ("X-Original-Method", m),
            ]);
            assert!(resolve(&f).is_err(), "{m:?}");
        }
    }
}
