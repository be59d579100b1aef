//! What an inbound request is, before anything is decided: its site (by
//! `Host`), its normalised path and query, who sent it (the client address and
//! scheme, believing forwarded headers only from `server.trusted_proxies`), and
//! what kind of client it is. The neutral facts every decision starts from.
//!
//! Pure and neutral: `http` types in, [`Inbound`] or a refusal ([`Message`]) out.
//! No Pingora (the edge, [`crate::proxy`], reads the socket and the raw bytes and
//! fills a [`Head`]), no portal. Host parsing and the forwarded facts live here so
//! that the edge and the pages share them without depending on each other.
//!
//! ```text
//!  Head ─ > 100 headers or > 32 KiB ─────────────────────────────> 431
//!       ─ framing ambiguous (checked by the edge on raw bytes) ───> 400
//!       ─ no Host ────────────────────────────────────────────────> 400
//!       ─ Host not a [[site]] ───────────────────────────────────> 421
//!       ─ path ambiguous (see crate::pathnorm) ──────────────────> 400
//!       └─ Inbound { site, host, path, query, rewrite, client, trusted, html, forward_auth }
//! ```

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use http::header::ACCEPT;
use http::{HeaderMap, HeaderValue, Uri};
use ipnet::IpNet;

use crate::config::Config;
use crate::respond::Message;

/// Most request headers accepted, and their total size in bytes (431 beyond).
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The request as the edge read it.
pub struct Head<'a> {
    pub headers: &'a HeaderMap,
    /// The first `Host` value (`headers.get(HOST)`; the edge's header pass found it).
    pub host: Option<&'a http::HeaderValue>,
    pub uri: &'a Uri,
    /// The request target as received (before any parsing into `uri`).
    pub raw_target: &'a [u8],
    /// The address of the connection's other end.
    pub peer: IpAddr,
    /// The connection is this gateway's own TLS.
    pub tls: bool,
    /// The edge found the request's length given in ways an upstream might read
    /// differently (see [`crate::proxy::framing`]).
    pub ambiguous_framing: bool,
    /// The header's size as received (HTTP/1: request line to blank line), if known.
    /// Every parsed header line took at least its name, value and two bytes there
    /// (`:` and a bare LF), so with two more a line this bounds the size checked
    /// against [`MAX_HEADER_BYTES`] from above.
    pub raw_len: Option<usize>,
}

/// An inbound request, classified.
#[derive(Debug)]
pub struct Inbound {
    /// The site's position in the config's `sites` (of the snapshot it was classified with).
    pub site: usize,
    /// Lower-case host without port.
    pub host: std::sync::Arc<str>,
    /// Normalised path, and the raw query.
    pub path: std::sync::Arc<str>,
    pub query: Option<String>,
    /// Path and query to forward, when normalising changed the path.
    pub rewrite: Option<String>,
    pub client: ClientInfo,
    /// The peer is in `server.trusted_proxies`.
    pub trusted: bool,
    /// What a trusted proxy says about the request it holds: read only for the
    /// portal's `/verify` from a trusted peer, before spoofable headers are stripped.
    /// (Boxed: an `Inbound` moves a few times per request, and is half the size so.)
    pub forward_auth: Option<Box<crate::forwardauth::Facts>>,
}

impl Inbound {
    /// The path below `portal_prefix` (`/login` for the prefix itself), for the
    /// gateway's own pages.
    pub fn portal_path<'a>(&'a self, prefix: &str) -> Option<&'a str> {
        portal_path(&self.path, prefix)
    }
}

fn portal_path<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)
        .filter(|s| s.is_empty() || s.starts_with('/'))
        .map(|s| if s.is_empty() { "/login" } else { s })
}

/// Who is asking, and over what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address: the peer, or behind trusted proxies the right-most
    /// untrusted address of `X-Forwarded-For`.
    pub client: IpAddr,
    /// The `X-Forwarded-For` to send on: the trusted chain plus the peer.
    pub xff: HeaderValue,
    /// `http` or `https`, as the client sees the gateway.
    pub proto: &'static str,
}

/// Classifies `head` against the config snapshot `cfg`; `Err` is the refusal
/// to answer with.
pub fn classify(cfg: &Config, head: &Head<'_>) -> Result<Inbound, Message> {
    // (Summed only when the size as received doesn't already settle it.)
    let too_large = || {
        head.raw_len
            .is_none_or(|n| n + 2 * head.headers.len() > MAX_HEADER_BYTES)
            && head
                .headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum::<usize>()
                > MAX_HEADER_BYTES
    };
    if head.headers.len() > MAX_HEADERS || too_large() {
        return Err(Message::refusal(
            431,
            "Request headers too large",
            "The request carried too many or too large headers.",
        ));
    }
    if head.ambiguous_framing {
        return Err(Message::refusal(
            400,
            "Bad request",
            "The request's length or its line endings were written in a way servers read differently.",
        ));
    }
    // Site by Host; never a default upstream.
    let site = match head.host.and_then(|v| site_seen(cfg, v)) {
        Some(site) => site,
        None => {
            let host = head
                .host
                .and_then(|v| v.to_str().ok())
                .or_else(|| head.uri.host())
                .map(host_key)
                .filter(|h| !h.is_empty())
                .ok_or_else(|| Message::refusal(400, "Bad request", "The request has no Host."))?;
            let site = cfg
                .sites
                .iter()
                .position(|s| *s.host == *host)
                .ok_or_else(|| {
                    Message::refusal(
                        421,
                        "Unknown site",
                        "This gateway does not serve this host name.",
                    )
                })?;
            if let Some(v) = head.host {
                site_seen_now(cfg, v, site);
            }
            site
        }
    };
    let (path, query, rewrite) = target(head)?;
    let trusted = cfg
        .server
        .trusted_proxies
        .iter()
        .any(|n| n.contains(&head.peer));
    let client = forwarded_for(
        head.headers,
        head.peer,
        trusted,
        &cfg.server.trusted_proxies,
        head.tls,
    );
    // Forward-auth facts are read only for `/verify`, and only from a trusted proxy.
    let forward_auth = (trusted
        && portal_path(&path, &cfg.server.portal_prefix) == Some("/verify"))
    .then(|| Box::new(crate::forwardauth::Facts::from_headers(head.headers)));
    Ok(Inbound {
        site,
        // The site's own spelling (equal to the request's): one exact-size copy.
        host: cfg.sites[site].host.clone(),
        path,
        query,
        rewrite,
        client,
        trusted,
        forward_auth,
    })
}

/// The request target, normalised once: (path, query, the path and query to
/// forward when normalising changed the path).
#[allow(clippy::type_complexity)] // three plain parts, named in the doc
fn target(head: &Head<'_>) -> Result<(Arc<str>, Option<String>, Option<String>), Message> {
    // Origin-form (`/path`), or absolute-form (`http://host/path`, judged and
    // forwarded by its path). Anything else (`secret`, `x/../admin`, `*`, an
    // authority) has no path to judge, and an application could still resolve it
    // to one a rule covers: refused.
    // The usual target: the URI's path and query byte for byte, already split and
    // known to be UTF-8 (no second look at its bytes).
    if let Some(pq) = head
        .uri
        .path_and_query()
        .filter(|pq| pq.as_str().as_bytes() == head.raw_target && pq.as_str().starts_with('/'))
    {
        return normalised(pq.path(), pq.query(), false);
    }
    let target = match std::str::from_utf8(head.raw_target) {
        Ok(r) if r.starts_with('/') => Some((Cow::Borrowed(r), false)),
        Ok(r) => absolute_path(r).map(|p| (p, true)),
        // Not UTF-8 (a target is ASCII, RFC 9112 §3.2): the parser's lossy reading
        // isn't what the application would get, so there is nothing to judge.
        Err(_) => None,
    };
    let Some((raw, absolute)) = target else {
        return Err(Message::refusal(
            400,
            "Bad request",
            "The request target is not a path.",
        ));
    };
    let raw = raw.as_ref();
    let (raw_path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    normalised(raw_path, query, absolute)
}

/// [`target`]'s result for a target's path and query as received.
#[allow(clippy::type_complexity)] // as `target`
fn normalised(
    raw_path: &str,
    query: Option<&str>,
    absolute: bool,
) -> Result<(Arc<str>, Option<String>, Option<String>), Message> {
    let query = query.map(str::to_string);
    let path = match path_seen(raw_path) {
        Some(p) => p,
        None => {
            let p: Arc<str> = crate::pathnorm::normalize(raw_path)
                .map_err(|e| {
                    Message::refusal(
                        400,
                        "Bad request",
                        format!("The address is ambiguous: {e}."),
                    )
                })?
                .into();
            path_seen_now(raw_path, &p);
            p
        }
    };
    // An absolute-form target always goes on in origin-form.
    let rewrite = (*path != *raw_path || absolute).then(|| match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    });
    Ok((path, query, rewrite))
}

thread_local! {
    /// The path this thread last normalised, as received and normalised (one
    /// allocation when they are the same, the usual case: a miss costs no more than
    /// before this memo).
    static LAST_PATH: std::cell::RefCell<Option<(Arc<str>, Arc<str>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The normal form of `raw`, when this thread normalised it last (issue #11: a
/// connection asks for the same paths again and again; normalising is a pure
/// function of the path, so its last result is as good as a new one).
fn path_seen(raw: &str) -> Option<Arc<str>> {
    LAST_PATH.with(|last| match &*last.borrow() {
        Some((r, p)) if **r == *raw => Some(p.clone()),
        _ => None,
    })
}

fn path_seen_now(raw: &str, normal: &Arc<str>) {
    let raw = if **normal == *raw {
        normal.clone()
    } else {
        Arc::from(raw)
    };
    LAST_PATH.with(|last| *last.borrow_mut() = Some((raw, normal.clone())));
}

/// The path (and query) of an absolute-form target (`http://host/path?q`), or
/// `None` when `target` isn't one.
fn absolute_path(target: &str) -> Option<Cow<'_, str>> {
    let uri: Uri = target.parse().ok()?;
    // (Only HTTP's own schemes: `ftp://host/x` is no request for this gateway.)
    if !matches!(uri.scheme_str(), Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
    {
        return None;
    }
    uri.authority()?;
    let rest = &target[target.find("://")? + 3..];
    match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => Some(Cow::Borrowed(&rest[i..])),
        Some(i) => Some(Cow::Owned(format!("/{}", &rest[i..]))),
        None => Some(Cow::Borrowed("/")),
    }
}

/// `GET`, `HEAD`, `OPTIONS` or `TRACE`, in any letter case (some applications read
/// `get` as `GET`): methods whose body means nothing (RFC 9110 §9.3), and whose
/// body many applications never read. The body of such a request to a path the rules
/// let through would then be read as the next request on the pooled upstream
/// connection, judged by no rule and finished by the next person's request,
/// identity headers and all (a CL.0 desync): the edge refuses it, unless the site's
/// application reads them (`allow_get_bodies`).
pub fn bodiless(method: &http::Method) -> bool {
    let m = method.as_str();
    ["GET", "HEAD", "OPTIONS", "TRACE"]
        .iter()
        .any(|n| m.eq_ignore_ascii_case(n))
}

/// Does the request carry a body? HTTP/1 (`h1`): a `Transfer-Encoding`, or a
/// `Content-Length` other than 0 (`lengths`: the edge's header pass saw one of the
/// two, else there is nothing to look up); HTTP/2: `h2_body`, a stream its headers
/// didn't end (without `Content-Length: 0`).
pub fn has_body(headers: &HeaderMap, h1: bool, lengths: bool, h2_body: bool) -> bool {
    if !h1 {
        return h2_body;
    }
    lengths
        && (headers.contains_key(http::header::TRANSFER_ENCODING)
            || headers
                .get_all(http::header::CONTENT_LENGTH)
                .iter()
                .any(|v| v.as_bytes() != b"0"))
}

/// Does the parsed URI stand for the target of an HTTP/1 request line (`raw`: the
/// header as received)? Pingora's URI drops a fragment and reads a target that
/// isn't a path at all (`#/x`, `#`) as `/`, and gives an absolute-form target's path
/// whatever its scheme: such targets are refused, not judged as the path made of
/// them. Origin-form starts with `/`, absolute-form with `http://` or `https://`;
/// [`classify`] checks the rest. `method` and `parsed` (the URI's path and query)
/// settle the usual request at once: its target is `parsed`, byte for byte.
pub fn plain_target(raw: &[u8], method: &str, parsed: &[u8]) -> bool {
    // `METHOD SP target SP version` (httparse takes one space between them, and
    // skips empty lines before the request line).
    let line = raw.trim_ascii_start();
    if let Some(t) = line.get(method.len() + 1..) {
        if parsed.first() == Some(&b'/')
            && t.starts_with(parsed)
            && t.get(parsed.len()) == Some(&b' ')
        {
            return true;
        }
    }
    let Some(target) = memchr::memchr(b' ', line).map(|i| &line[i + 1..]) else {
        return true;
    };
    if let Some(i) = memchr::memchr3(b' ', b'#', b'\n', target) {
        if target[i] == b'#' {
            return false;
        }
    }
    let scheme = |s: &[u8]| target.len() >= s.len() && target[..s.len()].eq_ignore_ascii_case(s);
    target.first() == Some(&b'/')
        || target.starts_with(b"* ")
        || scheme(b"http://")
        || scheme(b"https://")
}

/// `Accept` includes `text/html`: a browser.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// A `Host` value as received, its site's place and its site's host.
type HostSeen = (Box<[u8]>, usize, Arc<str>);

thread_local! {
    /// The `Host` value this thread last found a site for (a copy: the request's own
    /// value would hold its read buffer), the site's place in the config and its host
    /// (held: the same address is never another config's).
    static LAST_HOST: std::cell::RefCell<Option<HostSeen>> =
        const { std::cell::RefCell::new(None) };
}

/// The site of a `Host` value this thread found one for last (issue #11: a
/// signed-in request's `Host` is nearly always its connection's last one), when
/// `cfg` still has that site at that place (a re-read config has new sites, so a
/// value found under the old one is read again). `None`: read it ([`host_key`]).
fn site_seen(cfg: &Config, host: &http::HeaderValue) -> Option<usize> {
    LAST_HOST.with(|last| match &*last.borrow() {
        Some((v, i, h))
            if **v == *host.as_bytes()
                && cfg.sites.get(*i).is_some_and(|s| Arc::ptr_eq(&s.host, h)) =>
        {
            Some(*i)
        }
        _ => None,
    })
}

/// Notes that `host` is `cfg`'s site at `site` (see [`site_seen`]).
fn site_seen_now(cfg: &Config, host: &http::HeaderValue, site: usize) {
    if let Some(s) = cfg.sites.get(site) {
        LAST_HOST
            .with(|last| *last.borrow_mut() = Some((host.as_bytes().into(), site, s.host.clone())));
    }
}

/// `host[:port]` → lower-case host; IPv6 brackets kept. Borrowed when the header
/// already is that (the usual case: no allocation per request).
pub fn host_key(h: &str) -> Cow<'_, str> {
    if let Some(host) = plain_host(h) {
        return Cow::Borrowed(host);
    }
    let h = h.trim();
    let host: Cow<'_, str> = if h.starts_with('[') {
        match h.find(']') {
            Some(i) => Cow::Borrowed(&h[..=i]),
            None => Cow::Owned(format!("{h}]")),
        }
    } else {
        Cow::Borrowed(
            h.rsplit_once(':')
                .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                .map(|(h, _)| h)
                .unwrap_or(h),
        )
    };
    let lower = |s: &str| {
        s.trim_end_matches('.')
            .bytes()
            .any(|b| b.is_ascii_uppercase())
    };
    match host {
        Cow::Borrowed(b) if !lower(b) => Cow::Borrowed(b.trim_end_matches('.')),
        other => Cow::Owned(other.trim_end_matches('.').to_ascii_lowercase()),
    }
}

/// The usual `Host` (a lower-case name or IPv4 address, perhaps a port of digits)
/// without its port, in one pass and no copy; `None` for anything else (upper case,
/// blanks, a trailing dot, brackets), which [`host_key`] reads the long way.
fn plain_host(h: &str) -> Option<&str> {
    let b = h.as_bytes();
    let mut end = b.len();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' => {}
            b':' => {
                end = i;
                break;
            }
            _ => return None,
        }
    }
    let port = b.get(end + 1..).unwrap_or_default();
    let host = &h[..end];
    (port.iter().all(u8::is_ascii_digit) && !host.ends_with('.')).then_some(host)
}

#[cfg(test)]
fn host_only_reference(h: &str) -> String {
    let h = h.trim();
    let host = if h.starts_with('[') {
        h.split(']')
            .next()
            .map(|s| format!("{s}]"))
            .unwrap_or_default()
    } else {
        h.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map(|(h, _)| h)
            .unwrap_or(h)
            .to_string()
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The client is the peer, unless the peer is a trusted proxy: then the
/// right-most address in `X-Forwarded-For` that isn't a trusted proxy.
pub fn forwarded_for(
    headers: &HeaderMap,
    peer: IpAddr,
    trusted: bool,
    proxies: &[IpNet],
    tls: bool,
) -> ClientInfo {
    let own_proto = if tls { "https" } else { "http" };
    if !trusted {
        return ClientInfo {
            client: peer,
            xff: peer_value(peer),
            proto: own_proto,
        };
    }
    let chain: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut client = peer;
    for a in chain.iter().rev() {
        // `::ffff:a.b.c.d` (a dual-stack proxy's way of writing an IPv4 client) is
        // that IPv4 address, for `trusted_proxies` here and rules' networks later.
        // Some proxies write the client's port too (`1.2.3.4:5678`, `[::1]:80`).
        let ip = a
            .parse::<IpAddr>()
            .or_else(|_| a.parse::<std::net::SocketAddr>().map(|s| s.ip()));
        match ip.map(|ip| ip.to_canonical()) {
            Ok(ip) if proxies.iter().any(|n| n.contains(&ip)) => client = ip,
            Ok(ip) => {
                client = ip;
                break;
            }
            Err(_) => break,
        }
    }
    let mut xff = chain.join(", ");
    if !xff.is_empty() {
        xff.push_str(", ");
    }
    xff.push_str(&peer.to_string());
    // The chain's entries were header text and an address is, so this can't fail;
    // were it to, the peer alone would go on (never a chain we couldn't check).
    debug_assert!(HeaderValue::from_str(&xff).is_ok(), "{xff:?}");
    let xff = HeaderValue::from_maybe_shared(bytes::Bytes::from(xff))
        .unwrap_or_else(|_| peer_value(peer));
    let proto = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ => own_proto,
    };
    ClientInfo { client, xff, proto }
}

/// A peer's address as a header value, the `X-Forwarded-For` of a request it sends
/// directly. Made once for a run of requests from one address on each worker thread
/// (a busy keep-alive connection's requests often are such a run): then a copy is a
/// pointer (kept in [`crate::lasting::PEERS`]) or a reference count, not a formatted
/// string and two allocations. A miss costs what
/// making the value always cost; the value depends on the address alone.
fn peer_value(peer: IpAddr) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((ip, v)) if *ip == peer => v.clone(),
            _ => {
                // An address's text is always a header value.
                // Kept for good when it fits: a copy is then no reference count.
                let made = HeaderValue::from_maybe_shared(bytes::Bytes::from(peer.to_string()))
                    .map(|v| crate::lasting::PEERS.value(v))
                    .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
                *last = Some((peer, made.clone()));
                made
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_targets_the_uri_stands_for() {
        let line = |t: &str| format!("GET {t} HTTP/1.1\r\nHost: a\r\n\r\n");
        // As Pingora's URI reads them: a fragment dropped, `#...` as `/`, the path of
        // an absolute-form target.
        let parsed = |t: &str| -> String {
            let t = t.split('#').next().unwrap_or("");
            match t.split_once("://") {
                Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
                None if t.starts_with('/') => t.to_string(),
                None => "/".to_string(),
            }
        };
        let plain = |raw: &str, t: &str| plain_target(raw.as_bytes(), "GET", parsed(t).as_bytes());
        for ok in ["/", "/x?y=1", "/a%23b", "http://a/x", "HTTPS://a/x", "*"] {
            assert!(plain(&line(ok), ok), "{ok}");
            // Whatever the URI says, the request line decides.
            assert!(plain_target(line(ok).as_bytes(), "GET", b""), "{ok}");
        }
        for bad in ["#", "#/x", "/x#y", "/x?a#b", "ftp://a/x", "x", "a:443"] {
            assert!(!plain(&line(bad), bad), "{bad}");
            assert!(!plain_target(line(bad).as_bytes(), "GET", b""), "{bad}");
        }
        // Empty lines before the request line are skipped, as httparse does.
        assert!(!plain(&format!("\r\n\n{}", line("#/x")), "#/x"));
        assert!(plain(&format!("\r\n{}", line("/x")), "/x"));
        // A `#` in a header is no part of the target.
        assert!(plain("GET /x HTTP/1.1\r\nX-A: #1\r\n\r\n", "/x"));
        // The URI's path must be the whole target, not its start.
        assert!(!plain_target(line("/x#y").as_bytes(), "GET", b"/x"));
    }

    #[test]
    fn bodies_and_the_methods_they_mean_nothing_on() {
        for m in ["GET", "get", "HEAD", "Options", "TRACE"] {
            assert!(
                bodiless(&http::Method::from_bytes(m.as_bytes()).unwrap()),
                "{m}"
            );
        }
        for m in ["POST", "PUT", "DELETE", "PATCH", "GETX"] {
            assert!(
                !bodiless(&http::Method::from_bytes(m.as_bytes()).unwrap()),
                "{m}"
            );
        }
        let h = |lines: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in lines {
                h.append(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(has_body(&h(&[("content-length", "5")]), true, true, false));
        assert!(has_body(
            &h(&[("transfer-encoding", "chunked")]),
            true,
            true,
            false
        ));
        assert!(!has_body(&h(&[("content-length", "0")]), true, true, false));
        assert!(
            !has_body(&h(&[]), true, false, true),
            "HTTP/1 reads its headers"
        );
        // HTTP/2: the stream says.
        assert!(has_body(&h(&[]), false, false, true));
        assert!(!has_body(
            &h(&[("content-length", "5")]),
            false,
            true,
            false
        ));
    }
    use crate::respond::Client;
    use http::header::HOST;

    proptest::proptest! {
        /// The borrowing host key is the old copying one.
        #[test]
        fn host_key_is_the_old_host_only(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "B", ".", ":", "8", "[", "]", " ", "::1", "x.Test", "\u{e9}",
            ]), 0..8),
        ) {
            let h = parts.concat();
            let (new, old) = (host_key(&h).into_owned(), host_only_reference(&h));
            proptest::prop_assert_eq!(new, old);
        }
    }

    /// Only a path, or a whole URL (absolute-form), is a target: anything else has
    /// no path to judge, and an application might still resolve it to one.
    #[test]
    fn a_target_is_a_path_or_a_url() {
        let cfg = config();
        let host = [("host", "app.test")];
        for bad in [
            "secret",
            "x/../secret",
            "sec%72et",
            "*",
            "app.test:443",
            "./admin",
        ] {
            assert_eq!(status(&cfg, &req(bad, &host)), 400, "{bad}");
        }
        // Absolute-form: judged by its path, forwarded in origin-form. (Pingora's URI
        // for it holds the path only; the target as received is what counts.)
        let mut r = req("http://app.test/x?q=1", &host);
        r.uri = Uri::from_static("/x?q=1");
        let i = run(&cfg, &r).unwrap();
        assert_eq!(&*i.path, "/x");
        let i = run(&cfg, &req("http://app.test?q", &host)).unwrap();
        assert_eq!((&*i.path, i.rewrite.as_deref()), ("/", Some("/?q")));
        let i = run(&cfg, &req("http://app.test/x?q=1", &host)).unwrap();
        assert_eq!((&*i.path, i.query.as_deref()), ("/x", Some("q=1")));
        assert_eq!(i.rewrite.as_deref(), Some("/x?q=1"));
        let i = run(&cfg, &req("http://app.test/a/../admin", &host)).unwrap();
        assert_eq!((&*i.path, i.rewrite.as_deref()), ("/admin", Some("/admin")));
        // Origin-form as before: forwarded as received unless normalising changed it.
        let i = run(&cfg, &req("/x?q=1", &host)).unwrap();
        assert_eq!(i.rewrite, None);
    }

    fn config() -> Config {
        let toml = r#"
[server]
trusted_proxies = ["10.0.0.0/8"]
[[site]]
host = "app.test"
upstream = "127.0.0.1:9"
[[site]]
host = "127.0.0.1"
upstream = "127.0.0.1:9"
[[site]]
host = "other.test"
upstream = "127.0.0.1:9"
"#;
        Config::from_str(toml, std::path::Path::new("/etc/p")).unwrap()
    }

    struct Req {
        headers: HeaderMap,
        uri: Uri,
        target: String,
        peer: IpAddr,
        tls: bool,
        framing: bool,
    }

    fn req(target: &str, headers: &[(&str, &str)]) -> Req {
        Req {
            headers: crate::test_support::header_map(headers),
            uri: target.parse().unwrap_or_else(|_| Uri::from_static("/")),
            target: target.into(),
            peer: "192.0.2.7".parse().unwrap(),
            tls: false,
            framing: false,
        }
    }

    fn run(cfg: &Config, r: &Req) -> Result<Inbound, Message> {
        // As HTTP/1 received it: `GET target HTTP/1.1`, `name: value` lines.
        let raw_len = r.target.len()
            + 15
            + r.headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum::<usize>()
            + 2;
        classify(cfg, &head(r, Some(raw_len)))
    }

    /// `r` as the edge would see it, its header's size as received `raw_len`.
    fn head(r: &Req, raw_len: Option<usize>) -> Head<'_> {
        Head {
            headers: &r.headers,
            host: r.headers.get(HOST),
            uri: &r.uri,
            raw_target: r.target.as_bytes(),
            peer: r.peer,
            tls: r.tls,
            ambiguous_framing: r.framing,
            raw_len,
        }
    }

    fn status(cfg: &Config, r: &Req) -> u16 {
        match run(cfg, r) {
            Ok(_) => 200,
            Err(m) => m.status,
        }
    }

    #[test]
    fn site_by_host_with_ports_ipv6_and_odd_case() {
        let cfg = config();
        for (host, site) in [
            ("app.test", 0),
            ("APP.Test:8443", 0),
            ("app.test.", 0),
            (" app.test ", 0),
            ("other.test:80", 2),
            ("127.0.0.1:8080", 1),
        ] {
            let i = run(&cfg, &req("/", &[("host", host)])).unwrap();
            assert_eq!(i.site, site, "{host}");
            assert_eq!(cfg.sites[i.site].host, i.host, "{host}");
        }
        assert_eq!(host_key("[::1]:8080"), "[::1]");
        assert_eq!(host_key("[::1]"), "[::1]");
        assert_eq!(host_key("[FE80::1]:80"), "[fe80::1]");
        assert_eq!(host_key("App.Example.com:8080"), "app.example.com");
        assert_eq!(host_key("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_key("app.test:x"), "app.test:x");
        // Unknown hosts, look-alikes of known ones and IPv6 literals (sites are names
        // or IPv4 addresses) are never served.
        for host in [
            "evil.test",
            "app.test.evil.test",
            "app.test:x",
            "[::2]",
            "xapp.test",
        ] {
            assert_eq!(status(&cfg, &req("/", &[("host", host)])), 421, "{host}");
        }
        // No Host at all, or an empty one.
        assert_eq!(status(&cfg, &req("/", &[])), 400);
        assert_eq!(status(&cfg, &req("/", &[("host", "")])), 400);
        // An absolute-form target names the host when no header does.
        let i = run(&cfg, &req("http://app.test/x", &[])).unwrap();
        assert_eq!((&*i.host, &*i.path), ("app.test", "/x"));
    }

    /// The site a thread remembers for a `Host` is the config's own: another config
    /// (re-read), or the same sites in another order, finds it again; a site removed
    /// is not found; the remembered path is normalised the same.
    #[test]
    fn remembered_sites_and_paths_follow_the_config() {
        let cfg = config();
        let other = req("/", &[("host", "other.test")]);
        assert_eq!(run(&cfg, &other).unwrap().site, 2);
        assert_eq!(run(&cfg, &other).unwrap().site, 2);
        let mut reordered = cfg.clone();
        reordered.sites.reverse();
        assert_eq!(run(&reordered, &other).unwrap().site, 0);
        assert_eq!(run(&cfg, &other).unwrap().site, 2);
        let reread = Config::from_str(
            "[[site]]\nhost = \"app.test\"\nupstream = \"127.0.0.1:9\"\n",
            std::path::Path::new("/etc/p"),
        )
        .unwrap();
        assert_eq!(status(&reread, &other), 421);
        let twice = req("/a/../b", &[("host", "app.test")]);
        for _ in 0..2 {
            let i = run(&cfg, &twice).unwrap();
            assert_eq!((&*i.path, i.rewrite.as_deref()), ("/b", Some("/b")));
        }
    }

    #[test]
    fn the_path_is_normalised_once_and_ambiguity_refused() {
        let cfg = config();
        let i = run(&cfg, &req("/a/../admin//x?y=1&z", &[("host", "app.test")])).unwrap();
        assert_eq!(&*i.path, "/admin/x");
        assert_eq!(i.query.as_deref(), Some("y=1&z"));
        assert_eq!(i.rewrite.as_deref(), Some("/admin/x?y=1&z"));
        let i = run(&cfg, &req("/plain?q", &[("host", "app.test")])).unwrap();
        assert_eq!((&*i.path, i.rewrite), ("/plain", None));
        for bad in ["/a%2fb", "/a\\b", "/x/..;/admin", "/%zz"] {
            let r = run(&cfg, &req(bad, &[("host", "app.test")]));
            let m = r.err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(m.status, 400, "{bad}");
            assert!(m.text.starts_with("The address is ambiguous"), "{bad}");
        }
    }

    #[test]
    fn limits_and_framing_are_refusals() {
        let cfg = config();
        let mut r = req("/", &[("host", "app.test")]);
        for i in 0..MAX_HEADERS {
            r.headers.append(
                http::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(),
                "1".parse().unwrap(),
            );
        }
        assert_eq!(status(&cfg, &r), 431);
        let mut r = req(
            "/",
            &[
                ("host", "app.test"),
                ("x-big", &"a".repeat(MAX_HEADER_BYTES)),
            ],
        );
        assert_eq!(status(&cfg, &r), 431);
        // The limit is exact whether or not the size as received is known: names,
        // values and four bytes a line (`host: app.test` counts 16).
        // Many short lines, where a bound too loose per line would add up.
        let names: Vec<String> = (0..90).map(|i| format!("x-h{i:02}")).collect();
        let mut lines: Vec<(&str, &str)> = vec![("host", "app.test")];
        lines.extend(names.iter().map(|n| (n.as_str(), "1")));
        let base: usize = lines.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        for (n, want) in [
            (MAX_HEADER_BYTES - base - 9, false),
            (MAX_HEADER_BYTES - base - 8, true),
        ] {
            let big = "a".repeat(n);
            let mut all = lines.clone();
            all.push(("x-big", &big));
            let r = req("/", &all);
            assert_eq!(status(&cfg, &r) == 431, want, "{n}");
            // Not known, or received with bare LFs and no blanks (`name:value\n`, the
            // fewest bytes a line can take).
            let bare_lf: usize = r
                .headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 2)
                .sum();
            for raw_len in [None, Some(r.target.len() + 14 + bare_lf + 1)] {
                let got = classify(&cfg, &head(&r, raw_len)).err().map(|m| m.status);
                assert_eq!(got == Some(431), want, "{n} {raw_len:?}");
            }
        }
        r.headers.remove("x-big");
        r.framing = true;
        let m = run(&cfg, &r).unwrap_err();
        assert_eq!(m.status, 400);
        assert!(m.close);
    }

    #[test]
    fn forwarded_headers_are_believed_only_from_trusted_proxies() {
        let cfg = config();
        let fwd = [
            ("host", "app.test"),
            ("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2"),
            ("x-forwarded-proto", "HTTPS"),
        ];
        // From anyone else: the peer is the client, over this connection's scheme.
        let r = req("/", &fwd);
        let i = run(&cfg, &r).unwrap();
        assert!(!i.trusted);
        assert_eq!(
            i.client,
            ClientInfo {
                client: r.peer,
                xff: HeaderValue::from_static("192.0.2.7"),
                proto: "http"
            }
        );
        // From a trusted proxy: the right-most untrusted address, and its scheme.
        let mut r = req("/", &fwd);
        r.peer = "10.0.0.1".parse().unwrap();
        let i = run(&cfg, &r).unwrap();
        assert!(i.trusted);
        assert_eq!(i.client.client.to_string(), "1.2.3.4");
        assert_eq!(i.client.xff, "6.6.6.6, 1.2.3.4, 10.0.0.2, 10.0.0.1");
        assert_eq!(i.client.proto, "https");
        // A garbage entry stops the walk: the last good hop is the client.
        let mut r = req(
            "/",
            &[
                ("host", "app.test"),
                ("x-forwarded-for", "1.2.3.4, junk, 10.0.0.3"),
            ],
        );
        r.peer = "10.0.0.1".parse().unwrap();
        assert_eq!(run(&cfg, &r).unwrap().client.client.to_string(), "10.0.0.3");
        // Our own TLS, no proxy word: https.
        let mut r = req("/", &[("host", "app.test"), ("x-forwarded-proto", "http")]);
        r.tls = true;
        assert_eq!(run(&cfg, &r).unwrap().client.proto, "https");
    }

    #[test]
    fn forward_auth_facts_only_for_verify_from_a_trusted_proxy() {
        let cfg = config();
        let h = [
            ("host", "app.test"),
            ("x-original-uri", "/admin"),
            ("x-original-method", "GET"),
            ("x-forwarded-host", "app.test"),
        ];
        let mut r = req("/_auth/verify", &h);
        assert!(
            run(&cfg, &r).unwrap().forward_auth.is_none(),
            "untrusted peer"
        );
        r.peer = "10.0.0.9".parse().unwrap();
        let i = run(&cfg, &r).unwrap();
        let facts = i.forward_auth.as_ref().unwrap();
        assert!(crate::forwardauth::resolve(facts).is_ok());
        assert_eq!(i.portal_path(&cfg.server.portal_prefix), Some("/verify"));
        let mut r = req("/admin", &h);
        r.peer = "10.0.0.9".parse().unwrap();
        assert!(run(&cfg, &r).unwrap().forward_auth.is_none(), "not /verify");
    }

    #[test]
    fn host_only_table() {
        assert_eq!(host_key("App.Example.com:8080"), "app.example.com");
        assert_eq!(host_key("app.example.com."), "app.example.com");
        assert_eq!(host_key("[::1]:8080"), "[::1]");
        assert_eq!(host_key("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn client_from_trusted_chain() {
        let mut h = HeaderMap::new();
        h.insert(
            "X-Forwarded-For",
            "6.6.6.6, 1.2.3.4, 10.0.0.2".parse().unwrap(),
        );
        let proxies = vec!["10.0.0.0/8".parse().unwrap()];
        let info = forwarded_for(&h, "10.0.0.1".parse().unwrap(), true, &proxies, false);
        assert_eq!(info.client.to_string(), "1.2.3.4");
        assert_eq!(info.xff, "6.6.6.6, 1.2.3.4, 10.0.0.2, 10.0.0.1");
        let info = forwarded_for(&h, "9.9.9.9".parse().unwrap(), false, &proxies, false);
        assert_eq!(info.client.to_string(), "9.9.9.9");
        assert_eq!(info.xff, "9.9.9.9");
        // Behind the trusted 10.0.0.1: the client each chain names.
        let client_of = |xff: &str| {
            let mut h = HeaderMap::new();
            h.insert("X-Forwarded-For", xff.parse().unwrap());
            let peer = "10.0.0.1".parse().unwrap();
            forwarded_for(&h, peer, true, &proxies, false).client
        };
        for (xff, client) in [
            // An entry with a port (Azure Application Gateway writes them) is its address.
            ("[2001:db8::7]:443, 1.2.3.4:5678", "1.2.3.4"),
            ("[2001:db8::7]:443, 10.0.0.8:99", "2001:db8::7"),
            // A dual-stack proxy's IPv4-mapped entries are IPv4 addresses.
            ("1.2.3.4, ::ffff:10.0.0.7", "1.2.3.4"),
            ("::ffff:127.0.0.9", "127.0.0.9"),
        ] {
            assert_eq!(client_of(xff), client.parse::<IpAddr>().unwrap(), "{xff}");
        }
        // The value made for one peer is never another's.
        for peer in [
            "9.9.9.9",
            "9.9.9.8",
            "::1",
            "::ffff:9.9.9.9",
            "9.9.9.9",
            "9.9.9.9",
            "::ffff:9.9.9.9",
        ] {
            let info = forwarded_for(&h, peer.parse().unwrap(), false, &proxies, false);
            assert_eq!(info.xff, peer);
        }
    }

    #[test]
    fn portal_paths_and_client_kinds() {
        let cfg = config();
        let p = &cfg.server.portal_prefix;
        for (path, sub) in [
            ("/_auth", Some("/login")),
            ("/_auth/", Some("/")),
            ("/_auth/2fa/setup", Some("/2fa/setup")),
            ("/_authx", None),
            ("/x/_auth", None),
        ] {
            let i = run(&cfg, &req(path, &[("host", "app.test")])).unwrap();
            assert_eq!(i.portal_path(p), sub, "{path}");
        }
        let html = |accept: &str| {
            let h = crate::test_support::header_map(&[("host", "app.test"), ("accept", accept)]);
            Client::of(accepts_html(&h))
        };
        assert_eq!(html("text/html,*/*"), Client::Browser);
        assert_eq!(html("application/json"), Client::Api);
    }
}
