//! Header hygiene: which incoming headers are stripped, and the gateway's own
//! cookies kept from applications. (The client address and scheme behind
//! trusted proxies, and host parsing, are [`crate::request`]'s.)

use pingora::http::RequestHeader;

pub use crate::spoofable::{is_spoofable, is_spoofable_with};

pub fn strip_spoofable(headers: &mut http::HeaderMap) {
    strip_spoofable_with(headers, &[]);
}

/// Removes every spoofable header and every spelling of the `extra` names
/// (folded, see [`is_spoofable_with`]). Allocates only when something is found.
/// On a plain map (see [`Plain`]): a removal is one hash lookup, with no record of
/// the names' spelling to keep in step.
///
/// The same pass notes the request's hop-by-hop fields ([`HopByHop`]).
pub fn strip_spoofable_with(headers: &mut http::HeaderMap, extra: &[String]) -> HopByHop {
    let pass = spoofable_names(headers, extra);
    let (strip, hop) = (pass.strip, pass.hop);
    for n in strip.into_iter().flatten() {
        // (`remove` takes every value of the name.)
        headers.remove(&n);
    }
    hop
}

/// What one look at every header of a head found (see [`spoofable_names`]).
#[derive(Debug)]
pub struct NamePass<'a> {
    /// What [`strip_spoofable_with`] would remove (`None`: nothing, the usual request).
    pub strip: Option<Vec<http::HeaderName>>,
    /// The head's hop-by-hop fields.
    pub hop: HopByHop,
    /// A `Content-Length` or `Transfer-Encoding` is present (else the framing check
    /// has no lengths to read: see [`super::framing::check_h1`]).
    pub framing: bool,
    /// The first `Host` value (what `headers.get(HOST)` gives), seen on the way.
    pub host: Option<&'a http::HeaderValue>,
    /// The `Cookie` value, when there is exactly one (a copy is a reference count:
    /// it outlives changes to the head). Neither `Host` nor `Cookie` is ever stripped.
    pub cookie: Option<http::HeaderValue>,
}

/// One pass over a head's headers, changing nothing: see [`NamePass`].
pub fn spoofable_names<'a>(headers: &'a http::HeaderMap, extra: &[String]) -> NamePass<'a> {
    // Names in a HeaderMap are already lower-case; only `_` spellings need folding.
    let mut found: Option<Vec<http::HeaderName>> = None;
    let mut hop = HopByHop::None;
    let mut framing = false;
    let mut host = None;
    let mut cookies: (Option<&http::HeaderValue>, usize) = (None, 0);
    // Every value, each name's in a row: a name is judged at its first value.
    let mut last: Option<&http::HeaderName> = None;
    for (k, v) in headers.iter() {
        // Neither is spoofable, hop-by-hop, framing, nor allowed as an identity name
        // (`crate::identity::name_problem`): nothing more to look at (issue #11).
        if k == http::header::HOST {
            host = host.or(Some(v));
            continue;
        } else if k == http::header::COOKIE {
            cookies = (cookies.0.or(Some(v)), cookies.1 + 1);
            continue;
        }
        if last.is_some_and(|l| std::ptr::eq(l, k)) {
            continue;
        }
        last = Some(k);
        framing |= k == http::header::CONTENT_LENGTH || k == http::header::TRANSFER_ENCODING;
        if is_spoofable_with(k.as_str(), extra) {
            found.get_or_insert_with(Vec::new).push(k.clone());
        } else if let Some(only_connection) = hop_by_hop(k) {
            hop = if only_connection && hop == HopByHop::None && plain_connection(headers) {
                HopByHop::Connection
            } else {
                HopByHop::Other
            };
        }
    }
    // An `Upgrade` that `Connection` doesn't name is ignored (RFC 9110 §7.8), so it is
    // removed: Pingora would otherwise make a WebSocket handshake of it, and after a
    // 101 the connection is a tunnel whose later requests no rule sees (attack pass).
    if hop == HopByHop::Other
        && headers.contains_key(http::header::UPGRADE)
        && !names_upgrade(headers)
    {
        found
            .get_or_insert_with(Vec::new)
            .push(http::header::UPGRADE);
    }
    NamePass {
        strip: found,
        hop,
        framing,
        host,
        // (Marked sensitive: a `Debug` print of the pass shows no cookie.)
        cookie: cookies.0.filter(|_| cookies.1 == 1).map(|c| {
            let mut c = c.clone();
            c.set_sensitive(true);
            c
        }),
    }
}

/// Does a `Connection` value name `upgrade`?
fn names_upgrade(headers: &http::HeaderMap) -> bool {
    headers.get_all(http::header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    })
}

/// Did an application's `101 Switching Protocols` complete the WebSocket handshake
/// the request asked for? Only then does the gateway turn the connection into a
/// tunnel, whose later bytes no rule judges: the request asked for `websocket` (as
/// its first `Upgrade`, the one upgrade Pingora passes on) with `Connection:
/// upgrade`, and the answer switches to `websocket` with the
/// `Sec-WebSocket-Accept` the key `sent` calls for (RFC 6455 §4.2.2: proof that a
/// WebSocket server read this handshake). `sent` is the key the application got: the
/// gateway's own ([`websocket_key`]), not the client's, whose accept value the
/// client can compute and an application that reflects headers could echo. A `101`
/// from anything else — an endpoint whose status the caller picks, say — would
/// otherwise open a raw pipe past the rules (attack pass). No other upgrade is ever
/// asked of an application.
pub fn upgrade_completed(req: &http::HeaderMap, resp: &http::HeaderMap, sent: &[u8]) -> bool {
    use http::header::{SEC_WEBSOCKET_ACCEPT, UPGRADE};
    if !names_upgrade(req) {
        return false;
    }
    let tokens = |h: &http::HeaderMap| -> Vec<String> {
        h.get_all(UPGRADE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    };
    if tokens(req).first().map(String::as_str) != Some("websocket") || tokens(resp) != ["websocket"]
    {
        return false;
    }
    resp.get(SEC_WEBSOCKET_ACCEPT)
        .is_some_and(|a| websocket_accept(sent).as_bytes() == a.as_bytes().trim_ascii())
}

/// A fresh `Sec-WebSocket-Key` (16 random bytes, base64) for the application's copy
/// of a WebSocket handshake: only a server that reads it can answer with its accept
/// value (see [`upgrade_completed`]).
pub fn websocket_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

/// RFC 6455 §4.2.2: base64(SHA-1(key + the protocol's GUID)).
pub fn websocket_accept(key: &[u8]) -> String {
    use base64::Engine;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(ctx.finish())
}

/// The hop-by-hop fields of a request (RFC 9110 §7.6.1), as
/// [`strip_spoofable_with`] finds them. They never reach an application: Pingora
/// removes them from the upstream's copy of the head (its standard upstream request
/// policy), at the price of a dozen lookups and a parse of `Connection` on every
/// request. Most requests carry none, or only `Connection: keep-alive`; for those
/// the gateway, having seen every name already, removes `Connection` itself and
/// tells Pingora there is nothing left to do (issue #11). Anything else is left to
/// Pingora as before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HopByHop {
    /// No hop-by-hop field at all.
    None,
    /// Only `Connection`, naming nothing but `keep-alive` or `close`: nothing to
    /// remove but `Connection` itself.
    Connection,
    /// Anything else (an upgrade, `TE`, `Transfer-Encoding`, a `Connection` that
    /// names other fields): Pingora's standard policy applies. (The default: a request
    /// whose head wasn't looked at gets Pingora's pass.)
    #[default]
    Other,
}

/// Is `name` a hop-by-hop field Pingora's standard policy removes? `Some(true)` for
/// `Connection`, `Some(false)` for the others (names in a map are lower-case;
/// `_` spellings are stripped as spoofable).
fn hop_by_hop(name: &http::HeaderName) -> Option<bool> {
    match name.as_str() {
        "connection" => Some(true),
        "keep-alive"
        | "proxy-connection"
        | "proxy-authenticate"
        | "proxy-authorization"
        | "te"
        | "trailer"
        | "transfer-encoding"
        | "upgrade"
        | "http2-settings" => Some(false),
        // A field named by `Connection: close`: Pingora removes every field `Connection`
        // names, so also one called `Close` (review).
        "close" => Some(false),
        _ => None,
    }
}

/// Do the `Connection` values name nothing but `keep-alive` and `close` (in any
/// case, with blanks and empty list elements), fewer than ten times? (Pingora
/// refuses ten or more; such a request is left to it.)
fn plain_connection(headers: &http::HeaderMap) -> bool {
    let mut n = 0;
    for v in headers.get_all(http::header::CONNECTION) {
        for token in v.as_bytes().split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token.is_empty() {
                continue;
            }
            n += 1;
            if n >= 10
                || !(token.eq_ignore_ascii_case(b"keep-alive")
                    || token.eq_ignore_ascii_case(b"close"))
            {
                return false;
            }
        }
    }
    true
}

/// A request's head as plain `http` parts, for the gateway's changes.
///
/// Pingora keeps, beside a request's header map, the spelling each name arrived in,
/// and pays for it on every header set or removed (two copies of each name, and a
/// second map to grow), and again when it copies the head for the upstream. The
/// gateway takes the received head apart once when it strips spoofable headers
/// ([`Plain::take`]), and puts it back ([`Plain::put`]) without that record, so the
/// upstream's copy carries none either; it sets up to eight headers on that copy
/// the same way. Without the record, standard names go out title-cased
/// (`Content-Type`), others lower-case (`x-custom`), as HTTP/2, HAProxy and Envoy
/// send them. Header names are case-insensitive (RFC 9110 §5.1).
pub struct Plain {
    pub parts: http::request::Parts,
    /// The request target as received, when the URI doesn't give it back byte for
    /// byte (absolute-form, non-UTF-8): sent as it came, as Pingora would.
    target: Option<Vec<u8>>,
}

impl Plain {
    /// Takes `up` apart; `up` is left empty until [`put`](Self::put).
    pub fn take(up: &mut RequestHeader) -> Plain {
        let from_uri = up
            .uri
            .path_and_query()
            .map(|p| p.as_str().as_bytes())
            .or_else(|| up.uri.authority().map(|a| a.as_str().as_bytes()))
            .unwrap_or_default();
        let target =
            (up.raw_path() != from_uri || !up.raw_path_is_utf8()).then(|| up.raw_path().to_vec());
        // An empty head allocates nothing.
        let empty = RequestHeader::from(http::Request::new(()).into_parts().0);
        let parts = http::request::Parts::from(std::mem::replace(up, empty));
        Plain { parts, target }
    }

    /// Forwards `uri` instead of the target as received.
    pub fn set_uri(&mut self, uri: http::Uri) {
        self.parts.uri = uri;
        self.target = None;
    }

    /// Puts the head back into `up`.
    pub fn put(self, up: &mut RequestHeader) -> pingora::Result<()> {
        *up = RequestHeader::from(self.parts);
        match self.target {
            Some(t) => up.set_raw_path(&t),
            None => Ok(()),
        }
    }
}

/// Which of the client's headers [`forward`] leaves out besides `Cookie`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dropped {
    /// `Connection`: a plain `keep-alive`/`close` one (see [`HopByHop::Connection`]),
    /// or any when the gateway sends its own.
    pub connection: bool,
    /// `Sec-WebSocket-Key`: the gateway sends its own (see [`websocket_key`]), or the
    /// request is no upgrade.
    pub websocket_key: bool,
    /// `Upgrade`: the request goes with `Connection: close`, so it is no upgrade (a
    /// request with a body is no WebSocket handshake).
    pub upgrade: bool,
}

/// The head to forward: `ours` (a copied [`crate::identity::SiteHead`], slots set)
/// with the client's headers after it, in their order. Left out: `Cookie` (the
/// caller adds what goes on of it), what `dropped` names, and every name `ours`
/// sets (the gateway's value wins) but `Host`, whose value takes its slot; a
/// client's head with no `Host` forwards none. The client's entries are moved, not
/// copied.
pub fn forward(
    mut ours: http::HeaderMap,
    client: http::HeaderMap,
    dropped: Dropped,
) -> pingora::Result<http::HeaderMap> {
    use http::header::{Entry, CONNECTION, COOKIE, HOST, SEC_WEBSOCKET_KEY, UPGRADE};
    use pingora::{ErrorType, OrErr};
    let mut host = false;
    // `Host`'s slot is the head's first (see `SiteHead`): set there, with no look-up.
    let host_first = ours.keys().next() == Some(&HOST);
    // A name's first value comes with the name, its other values after it without.
    let mut values = client.into_iter().peekable();
    while let Some((name, value)) = values.next() {
        let Some(name) = name else { continue };
        let more = matches!(values.peek(), Some((None, _)));
        if host_first && !host && !more && name == HOST {
            if let Some(slot) = ours.values_mut().next() {
                *slot = value;
                host = true;
                continue;
            }
        }
        let skip = name == COOKIE
            || (dropped.connection && name == CONNECTION)
            || (dropped.websocket_key && name == SEC_WEBSOCKET_KEY)
            || (dropped.upgrade && name == UPGRADE);
        let again = (more && !skip).then(|| name.clone());
        let kept = !skip
            && match ours
                .try_entry(name)
                .or_err(ErrorType::InvalidHTTPHeader, "too many headers")?
            {
                Entry::Vacant(slot) => {
                    slot.try_insert(value)
                        .or_err(ErrorType::InvalidHTTPHeader, "too many headers")?;
                    true
                }
                Entry::Occupied(mut slot) if !host && slot.key() == HOST => {
                    slot.insert(value);
                    host = true;
                    true
                }
                Entry::Occupied(_) => false,
            };
        while matches!(values.peek(), Some((None, _))) {
            if let (Some((_, v)), Some(n), true) = (values.next(), &again, kept) {
                ours.try_append(n, v)
                    .or_err(ErrorType::InvalidHTTPHeader, "too many headers")?;
            }
        }
    }
    if !host {
        ours.remove(HOST);
    }
    Ok(ours)
}

/// All `Cookie` headers as one string (borrowed when there is just one, in UTF-8).
///
/// Read as UTF-8, with any other byte replaced: an application's cookie that isn't
/// ASCII (a UTF-8 value, or Latin-1) doesn't hide the gateway's own cookies in the
/// same header. (`to_str` would drop such a header whole, and checks each byte on
/// every request, where `from_utf8` checks ASCII a word at a time.)
pub fn cookie_header(req: &RequestHeader) -> std::borrow::Cow<'_, str> {
    let mut it = req.headers.get_all(http::header::COOKIE).iter().map(|v| {
        match std::str::from_utf8(v.as_bytes()) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            // (`from_utf8_lossy` alone reads byte by byte, also when all is well.)
            Err(_) => String::from_utf8_lossy(v.as_bytes()),
        }
    });
    match (it.next(), it.next()) {
        (None, _) => std::borrow::Cow::Borrowed(""),
        (Some(one), None) => one,
        (Some(a), Some(b)) => {
            let mut s = format!("{a}; {b}");
            for rest in it {
                s.push_str("; ");
                s.push_str(&rest);
            }
            std::borrow::Cow::Owned(s)
        }
    }
}

/// A non-empty `name=value` pair whose name is none of `names` (compared without
/// regard to case, quotes or surrounding blanks): kept for the application.
fn other_pair<S: AsRef<str>>(pair: &[u8], names: &[S]) -> bool {
    let pair = pair.trim_ascii();
    if pair.is_empty() {
        return false;
    }
    let name = match memchr::memchr(b'=', pair) {
        Some(i) => &pair[..i],
        None => pair,
    };
    // The spelling the gateway sets (every signed-in request): no folding needed.
    if names.iter().any(|n| n.as_ref().as_bytes() == name) {
        return false;
    }
    let name = name.trim_ascii();
    if !name.is_ascii() {
        // A name padded with Unicode blanks (U+00A0, U+2003, ...): the cookie crate's
        // reader trims those (`str::trim`), so such a name may read as one of ours.
        // Blanks and quotes in any order are trimmed here, so it never goes on.
        let text = String::from_utf8_lossy(name);
        let bare = text.trim_matches(|c: char| c.is_whitespace() || c == '"');
        return !names.iter().any(|n| n.as_ref().eq_ignore_ascii_case(bare));
    }
    let start = name.iter().position(|&b| b != b'"').unwrap_or(name.len());
    let end = name
        .iter()
        .rposition(|&b| b != b'"')
        .map_or(start, |e| e + 1);
    let name = name.get(start..end).unwrap_or_default().trim_ascii();
    !names
        .iter()
        .any(|n| n.as_ref().as_bytes().eq_ignore_ascii_case(name))
}

/// Does this `Set-Cookie` value (from an application) set or clear one of `names`
/// (compared as in [`without_cookies`])? Such a header never reaches the browser: an
/// application, a header injection in it, or another site under the cookie domain
/// could otherwise plant a session of its choosing (signing the person in as
/// someone else) or end theirs.
pub fn sets_own_cookie<S: AsRef<str>>(set_cookie: &http::HeaderValue, names: &[S]) -> bool {
    let v = set_cookie.as_bytes();
    let mut pair = match memchr::memchr(b';', v) {
        Some(i) => &v[..i],
        None => v,
    }
    .trim_ascii();
    // A cookie without a name (`=portcullis=x`) is sent back as its value alone
    // (`Cookie: portcullis=x`, RFC 6265bis §5.7): judged by that value.
    while let Some(rest) = memchr::memchr(b'=', pair)
        .filter(|&i| pair[..i].trim_ascii().is_empty())
        .map(|i| pair[i + 1..].trim_ascii())
    {
        pair = rest;
    }
    !pair.is_empty() && !other_pair(pair, names)
}

/// The `Cookie` header(s) minus the named cookies (names compared without regard
/// to case or surrounding blanks, so no spelling of them gets through), joined with
/// `; `. On bytes: an application's cookie that isn't ASCII text (a UTF-8 value,
/// say) still reaches it, and doesn't take the others with it.
pub fn without_cookies<S: AsRef<str>>(headers: &http::HeaderMap, names: &[S]) -> Vec<u8> {
    kept_cookies(headers.get_all(http::header::COOKIE).iter(), names)
}

/// What follows `NAME=` at the start of a `Cookie` header, unscanned (`None` when
/// it doesn't start so): the whole value when the header is that cookie alone, else
/// more (see [`lone_cookie`]).
pub fn after_cookie_name<'a>(header: &'a http::HeaderValue, name: &str) -> Option<&'a [u8]> {
    header
        .as_bytes()
        .strip_prefix(name.as_bytes())?
        .strip_prefix(b"=")
}

/// The value of the cookie `name` when `header`, the request's only `Cookie` (see
/// [`NamePass::cookie`]), is that cookie alone (`name=value`, no other pair): the
/// usual signed-in request. Then [`kept_cookies`] keeps nothing of it (the caller
/// can drop it unread), and the value is the one [`crate::cookies::values_named`]
/// reads (blanks trimmed), taken as raw bytes without a UTF-8 check.
pub fn lone_cookie<'a>(header: &'a http::HeaderValue, name: &str) -> Option<&'a [u8]> {
    let value = after_cookie_name(header, name)?;
    // (A fold the compiler turns into vector code: cheaper than a `memchr` call for
    // a cookie's length.)
    if value.iter().fold(false, |semi, &b| semi | (b == b';')) {
        return None;
    }
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !blank(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    Some(&value[start..end])
}

/// [`without_cookies`] over the `Cookie` values themselves (as an occupied entry
/// of the map gives them). Allocates only for a cookie that is kept: the usual
/// signed-in request, with the gateway's cookie alone, builds nothing.
pub fn kept_cookies<'a, S: AsRef<str>>(
    values: impl Iterator<Item = &'a http::HeaderValue>,
    names: &[S],
) -> Vec<u8> {
    let mut kept = Vec::new();
    for v in values {
        let mut rest = v.as_bytes();
        loop {
            let (pair, next) = match memchr::memchr(b';', rest) {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if other_pair(pair, names) {
                if !kept.is_empty() {
                    kept.extend_from_slice(b"; ");
                }
                kept.extend_from_slice(pair.trim_ascii());
            }
            match next {
                Some(n) => rest = n,
                None => break,
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(lines: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in lines {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    /// The forwarded head: the gateway's head first (`Host` in its slot, first), the
    /// client's headers after it in order with every value of a repeated name, and
    /// the client's values of the gateway's own names never forwarded; `Cookie` and
    /// what `dropped` names left out.
    #[test]
    fn the_forwarded_head_is_the_gateways_then_the_clients() {
        let ours = map(&[
            ("host", ""),
            ("x-forwarded-for", "10.0.0.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.test"),
            ("remote-user", "alice"),
        ]);
        let client = map(&[
            ("accept", "text/html"),
            ("host", "App.Test:443"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "7.7.7.7"),
            ("cookie", "portcullis=secret"),
            ("via", "1.1 a"),
            ("via", "1.1 b"),
            ("connection", "keep-alive"),
            ("sec-websocket-key", "theirs"),
            ("cookie", "other=1"),
            ("x-app", "1"),
        ]);
        let keep_all = Dropped::default();
        let out = forward(ours.clone(), client.clone(), keep_all).unwrap();
        let lines: Vec<(&str, &str)> = out
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            lines,
            [
                ("host", "App.Test:443"),
                ("x-forwarded-for", "10.0.0.9"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "app.test"),
                ("remote-user", "alice"),
                ("accept", "text/html"),
                ("via", "1.1 a"),
                ("via", "1.1 b"),
                ("connection", "keep-alive"),
                ("sec-websocket-key", "theirs"),
                ("x-app", "1"),
            ]
        );
        let dropped = Dropped {
            connection: true,
            websocket_key: true,
            upgrade: true,
        };
        let mut upgrade = client.clone();
        upgrade.append("upgrade", http::HeaderValue::from_static("websocket"));
        let out = forward(ours.clone(), upgrade, dropped).unwrap();
        assert!(!out.contains_key("connection") && !out.contains_key("sec-websocket-key"));
        assert!(!out.contains_key("upgrade"));
        assert_eq!(out.get_all("via").iter().count(), 2);
        // No `Host` from the client (HTTP/1.0, HTTP/2): none forwarded, not an empty one.
        let out = forward(ours, map(&[("accept", "*/*")]), keep_all).unwrap();
        assert!(!out.contains_key("host"));
        assert_eq!(out.len(), 5);
    }

    /// A tunnel opens only on an answer that completes the upgrade asked for: the
    /// protocol named, and for WebSocket the accept value of the request's key
    /// (RFC 6455's own example).
    #[test]
    fn only_a_completed_upgrade_opens_a_tunnel() {
        // The key the application got (RFC 6455's example).
        const KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";
        let req = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        let ok = [
            ("upgrade", "WebSocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ];
        assert!(upgrade_completed(&req, &map(&ok), KEY));
        // A 101 from anything that didn't read the handshake.
        assert!(!upgrade_completed(&req, &map(&[]), KEY));
        assert!(!upgrade_completed(&req, &map(&ok[..2]), KEY));
        let wrong = [
            ok[0],
            ok[1],
            ("sec-websocket-accept", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ];
        assert!(!upgrade_completed(&req, &map(&wrong), KEY));
        // Another protocol than the one asked for, or two at once.
        let other = [("upgrade", "h2c"), ok[1], ok[2]];
        assert!(!upgrade_completed(&req, &map(&other), KEY));
        let two = [("upgrade", "websocket, h2c"), ok[1], ok[2]];
        assert!(!upgrade_completed(&req, &map(&two), KEY));
        // A request that asked for no upgrade gets none.
        let plain = map(&[
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert!(!upgrade_completed(&plain, &map(&ok), KEY));
        // No other protocol: none is ever asked of an application (Pingora passes
        // on a WebSocket upgrade only), so such a 101 is forged.
        let req = map(&[("connection", "upgrade"), ("upgrade", "foo/2, bar")]);
        assert!(!upgrade_completed(&req, &map(&[("upgrade", "bar")]), KEY));
        let later = map(&[
            ("connection", "upgrade"),
            ("upgrade", "h2c, websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert!(!upgrade_completed(&later, &map(&ok), KEY));
        // The accept value of the client's key, when the application got another
        // (the gateway's own): an echo, not a handshake.
        assert!(!upgrade_completed(
            &req,
            &map(&ok),
            websocket_key().as_bytes()
        ));
        let (a, b) = (websocket_key(), websocket_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
    }

    /// What the header pass says of a head's hop-by-hop fields: only a `Connection`
    /// naming `keep-alive`/`close` (fewer than ten times) is the gateway's to remove;
    /// anything else is left to Pingora's standard pass.
    #[test]
    fn hop_by_hop_fields_are_classified() {
        let hop = |lines: &[(&str, &str)]| {
            strip_spoofable_with(&mut crate::test_support::header_map(lines), &[])
        };
        assert_eq!(hop(&[("accept", "*/*"), ("cookie", "a=b")]), HopByHop::None);
        for v in [
            "keep-alive",
            "close",
            "Keep-Alive, CLOSE",
            " , keep-alive ,",
            "",
        ] {
            assert_eq!(hop(&[("connection", v)]), HopByHop::Connection, "{v:?}");
        }
        assert_eq!(
            hop(&[("connection", "close"), ("connection", "keep-alive")]),
            HopByHop::Connection
        );
        let ten = ["close"; 10].join(",");
        for lines in [
            &[("connection", "upgrade")][..],
            &[("connection", "close, x-secret")],
            &[("connection", "\"keep-alive\"")],
            &[("connection", ten.as_str())],
            &[("connection", "close"), ("keep-alive", "5")],
            &[("connection", "close"), ("close", "x")],
            &[("close", "x")],
            &[("keep-alive", "5"), ("connection", "close")],
            &[("keep-alive", "5")],
            &[("proxy-connection", "keep-alive")],
            &[("proxy-authenticate", "Basic")],
            &[("proxy-authorization", "Basic eA==")],
            &[("te", "trailers")],
            &[("trailer", "x-sum")],
            &[("transfer-encoding", "chunked")],
            &[("upgrade", "websocket")],
            &[("http2-settings", "AAMA")],
        ] {
            assert_eq!(hop(lines), HopByHop::Other, "{lines:?}");
        }
        // An `Upgrade` that `Connection` doesn't name goes; a named one stays.
        let strip = |lines: &[(&str, &str)]| {
            let mut h = crate::test_support::header_map(lines);
            strip_spoofable_with(&mut h, &[]);
            h.contains_key(http::header::UPGRADE)
        };
        assert!(!strip(&[("upgrade", "websocket")]));
        assert!(!strip(&[("upgrade", "websocket"), ("connection", "close")]));
        assert!(!strip(&[
            ("upgrade", "websocket"),
            ("connection", "upgraded")
        ]));
        assert!(strip(&[
            ("upgrade", "websocket"),
            ("connection", "Upgrade")
        ]));
        assert!(strip(&[
            ("upgrade", "websocket"),
            ("connection", "keep-alive"),
            ("connection", "x, UPGRADE ")
        ]));
        // A `_` spelling is stripped as spoofable; it isn't hop-by-hop to anyone.
        let mut h = http::HeaderMap::new();
        h.insert(
            "transfer_encoding",
            http::HeaderValue::from_static("chunked"),
        );
        assert_eq!(strip_spoofable_with(&mut h, &[]), HopByHop::None);
        assert!(h.is_empty());
    }

    #[test]
    fn spoofable_in_any_spelling() {
        for n in [
            "Remote-User",
            "remote_user",
            "REMOTE_USER",
            "X-Forwarded-For",
            "x_forwarded_host",
            "X-Original-URL",
            "x-rewrite-url",
            "X-Forwarded-User",
            "x_forwarded_email",
            "X-Forwarded-Groups",
            "X-Forwarded-Preferred-Username",
            "X-Remote-User",
            "X-Auth-Request-User",
            "x_auth_request_email",
            "X-WEBAUTH-USER",
            "X-Real-IP",
            "True-Client-IP",
            "X-HTTP-Method-Override",
            "x_http_method",
            "X-Method-Override",
            "X-Portcullis-Assertion",
            "Content_Length",
            "transfer_encoding",
            "X-Auth-Username",
            "X-Ms-Client-Principal-Name",
            "X-Goog-Authenticated-User-Email",
            "X-Amzn-Oidc-Identity",
            "OIDC_CLAIM_email",
            "Proxy-Remote-User",
            // Client-address spellings of other proxies and frameworks.
            "X-Forwarded",
            "x_forwarded",
            "Forwarded-For",
            "Client-IP",
            "X-Host",
            "X-Url-Scheme",
            "Front-End-Https",
            "X-ProxyUser-Ip",
            // Found by the attack pass of session 7.
            "x_user_email",
            "X-Credential-Username",
            "X-Consumer-Username",
            "X-Originating-IP",
            "X-Envoy-External-Address",
            "X-Azure-ClientIP",
            "X-AppEngine-User-IP",
            "X-Real-Port",
            "X-Http-Host-Override",
            "X-Scheme",
        ] {
            assert!(is_spoofable(n), "{n}");
        }
        for n in [
            "cookie",
            "user-agent",
            "x-forwardedx",
            "remote",
            "x-requested-with",
        ] {
            assert!(!is_spoofable(n), "{n}");
        }
    }

    #[test]
    fn configured_names_are_stripped_in_any_spelling() {
        let extra = vec!["x-team".to_string(), "x-display-name".to_string()];
        for n in ["X-Team", "x_team", "X_TEAM", "x-display_name"] {
            assert!(!is_spoofable(n), "{n} is not in the static list");
            assert!(is_spoofable_with(n, &extra), "{n}");
        }
        assert!(!is_spoofable_with("x-teamx", &extra));
        assert!(is_spoofable_with("remote_user", &extra));
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("x_team", "admins").unwrap();
        req.append_header("X-Team", "admins").unwrap();
        req.append_header("x-webauth-user", "root").unwrap();
        req.append_header("x-webauth-user", "root2").unwrap();
        req.append_header("accept", "*/*").unwrap();
        let mut plain = Plain::take(&mut req);
        strip_spoofable_with(&mut plain.parts.headers, &extra);
        plain.put(&mut req).unwrap();
        let left: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["accept"]);
    }

    #[test]
    fn own_cookies_are_removed() {
        let mut h = http::HeaderMap::new();
        h.append("cookie", "a=1; portcullis=secret; b=2".parse().unwrap());
        h.append(
            "cookie",
            "portcullis_pre=x; Portcullis_Dev=y;portcullis_2fa=z"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            without_cookies(
                &h,
                &[
                    "portcullis",
                    "portcullis_pre",
                    "portcullis_dev",
                    "portcullis_2fa"
                ]
            ),
            b"a=1; b=2"
        );
    }

    #[test]
    fn an_application_cannot_set_our_cookies() {
        let own = [
            "portcullis",
            "portcullis_pre",
            "portcullis_dev",
            "portcullis_2fa",
        ];
        let sets = |v: &[u8]| sets_own_cookie(&http::HeaderValue::from_bytes(v).unwrap(), &own);
        for (v, ours) in [
            (&b"portcullis=planted; Path=/; HttpOnly"[..], true),
            (b"Portcullis_DEV=x", true),
            (b" portcullis_2fa = y ; Max-Age=0", true),
            (b"\"portcullis_pre\"=z", true),
            (b"portcullis", true),
            ("\u{a0}portcullis=x".as_bytes(), true),
            // Without a name, the value is what the browser sends back (review).
            (b"=portcullis=x; Path=/app", true),
            (b" = portcullis=x", true),
            (b"=Portcullis_2fa=x", true),
            (b"==portcullis=x", true),
            (b"theme=dark; Path=/", false),
            (b"portcullis_x=1", false),
            (b"sid=portcullis", false),
            (b"app=1; Domain=portcullis", false),
            (b"\xffx=1", false),
            (b"=theme=dark", false),
            (b"=", false),
        ] {
            assert_eq!(sets(v), ours, "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn the_cookie_header_is_read_past_bytes_that_arent_ascii() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        let v = http::HeaderValue::from_bytes("name=Zoë; portcullis=abc".as_bytes()).unwrap();
        req.append_header("cookie", v).unwrap();
        assert_eq!(cookie_header(&req), "name=Zoë; portcullis=abc");
        let latin1 = http::HeaderValue::from_bytes(b"x=\xff").unwrap();
        req.append_header("cookie", latin1).unwrap();
        assert_eq!(cookie_header(&req), "name=Zoë; portcullis=abc; x=\u{fffd}");
    }

    #[test]
    fn only_own_cookies_are_told_apart_from_others() {
        let own = [
            "portcullis",
            "portcullis_pre",
            "portcullis_dev",
            "portcullis_2fa",
        ];
        let mut h = http::HeaderMap::new();
        h.append(
            "cookie",
            "portcullis=secret; Portcullis_Dev=y".parse().unwrap(),
        );
        h.append("cookie", " portcullis_2fa=z ;".parse().unwrap());
        assert_eq!(without_cookies(&h, &own), b"");
        h.append("cookie", "portcullis=1; theme=dark".parse().unwrap());
        assert_eq!(without_cookies(&h, &own), b"theme=dark");
        let mut odd = http::HeaderMap::new();
        odd.append(
            "cookie",
            http::HeaderValue::from_bytes(b"portcullis=\xff").unwrap(),
        );
        // Not text, and only our own name: nothing goes to the application.
        assert_eq!(without_cookies(&odd, &own), b"");
        // An application's cookie that isn't ASCII goes on as it came, and the
        // cookies beside it with it; ours never.
        odd.append(
            "cookie",
            http::HeaderValue::from_bytes("lang=fr; name=Zoë; Portcullis=x".as_bytes()).unwrap(),
        );
        odd.append("cookie", http::HeaderValue::from_bytes(b"\xffx=1").unwrap());
        assert_eq!(
            without_cookies(&odd, &own),
            b"lang=fr; name=Zo\xc3\xab; \xffx=1"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// What goes on to the application holds none of the gateway's cookies, in any
        /// spelling either of its readers accepts, and exactly the other pairs a plain
        /// split on `;` finds.
        #[test]
        fn the_cookie_filter_keeps_all_but_ours(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "portcullis", "Portcullis_2FA", "portcullis_pre", "theme", "=", ";", " ", "\t",
                "\"", "v", "\u{b}", "\u{a0}", "\u{2003}", "\u{85}", "\u{3000}", "é",
                // Raw Latin-1 (not UTF-8) bytes, written as code points 0x80..=0xff:
                "\u{10ff}", "\u{10a0}",
            ]), 0..10),
        ) {
            let own = ["portcullis", "portcullis_pre", "portcullis_dev", "portcullis_2fa"];
            // `\u{10xx}` stands for the single byte 0xXX; anything else is UTF-8.
            let mut raw = Vec::new();
            for c in parts.concat().chars() {
                match u32::from(c) {
                    n @ 0x1080..=0x10ff => raw.push((n - 0x1000) as u8),
                    _ => raw.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            let Ok(v) = http::HeaderValue::from_bytes(&raw) else { return Ok(()) };
            let mut h = http::HeaderMap::new();
            h.append("cookie", v);
            // Neither of the gateway's cookie readers finds one of its cookies in what
            // goes on to the application: the cookie crate (which trims names with
            // `str::trim`) nor the plain split of the session lookup.
            let kept = without_cookies(&h, &own);
            let kept = String::from_utf8_lossy(&kept);
            for c in cookie::Cookie::split_parse(kept.as_ref()).flatten() {
                proptest::prop_assert!(!own.iter().any(|n| n.eq_ignore_ascii_case(c.name())), "{:?} -> {:?}", raw, kept);
            }
            for n in own {
                proptest::prop_assert_eq!(crate::cookies::values_named(&kept, n).count(), 0, "{:?}", raw);
            }
            // The `memchr` walk keeps what a plain split keeps, in order.
            let plain: Vec<&[u8]> = raw.split(|&b| b == b';').filter(|p| other_pair(p, &own)).map(|p| p.trim_ascii()).collect();
            proptest::prop_assert_eq!(without_cookies(&h, &own), plain.join(&b"; "[..]), "{:?}", raw);
            // What is kept is a header value again.
            proptest::prop_assert!(http::HeaderValue::from_bytes(&without_cookies(&h, &own)).is_ok());
            // The shortcut for the session cookie alone drops only what the filter
            // drops, and reads the value the session lookup reads.
            let pass = spoofable_names(&h, &[]);
            if let Some(v) = pass.cookie.as_ref().and_then(|c| lone_cookie(c, "portcullis")) {
                proptest::prop_assert!(without_cookies(&h, &own).is_empty(), "{:?}", raw);
                if let Ok(text) = std::str::from_utf8(&raw) {
                    let first = crate::cookies::values_named(text, "portcullis").next();
                    proptest::prop_assert_eq!(first.map(str::as_bytes), Some(v), "{:?}", raw);
                }
            }
        }
    }

    #[test]
    fn the_session_cookie_alone_is_recognised() {
        let lone = |values: &[&str]| {
            let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("cookie", *v)).collect();
            let h = crate::test_support::header_map(&pairs);
            let pass = spoofable_names(&h, &[]);
            pass.cookie
                .as_ref()
                .and_then(|c| lone_cookie(c, "portcullis"))
                .map(<[u8]>::to_vec)
        };
        for (h, want) in [
            ("portcullis=abc", Some("abc")),
            ("portcullis= abc\t", Some("abc")),
            ("portcullis=", Some("")),
            // (Read the long way, as before.)
            (" portcullis=abc", None),
            ("portcullis =abc", None),
            ("portcullis=a; theme=dark", None),
            ("portcullis=a;", None),
            ("theme=dark; portcullis=a", None),
            ("portcullisx=a", None),
            ("Portcullis=a", None),
            ("theme=portcullis", None),
            ("portcullis", None),
            ("", None),
        ] {
            assert_eq!(lone(&[h]), want.map(|w| w.as_bytes().to_vec()), "{h:?}");
        }
        let h = crate::test_support::header_map(&[("cookie", "portcullis=s3cret-value")]);
        let shown = format!("{:?}", spoofable_names(&h, &[]));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(lone(&[]), None);
        assert_eq!(lone(&["portcullis=a", "portcullis=b"]), None, "two headers");
        assert_eq!(lone(&["portcullis=a", "theme=dark"]), None, "two headers");
    }

    proptest::proptest! {
        /// The one pass over every value judges each name as a pass over the names
        /// did, and finds `Host` and the lone `Cookie` as look-ups would.
        #[test]
        fn the_header_pass_is_a_pass_over_names_and_lookups(
            pairs in proptest::collection::vec((
                proptest::sample::select(vec![
                    "host", "cookie", "connection", "upgrade", "te", "keep-alive",
                    "x-forwarded-for", "x_forwarded_for", "x-remote-user", "accept",
                    "content-length", "transfer-encoding",
                ]),
                proptest::sample::select(vec!["a", "keep-alive", "close", "upgrade", "x=1", "te"]),
            ), 0..8),
        ) {
            let h = crate::test_support::header_map(&pairs);
            let extra = ["x-remote-user".to_string()];
            let pass = spoofable_names(&h, &extra);
            // The names pass, as it was (each name once, by `keys`).
            let mut found: Option<Vec<http::HeaderName>> = None;
            let mut hop = HopByHop::None;
            let mut framing = false;
            for k in h.keys() {
                framing |= k == http::header::CONTENT_LENGTH || k == http::header::TRANSFER_ENCODING;
                if is_spoofable_with(k.as_str(), &extra) {
                    found.get_or_insert_with(Vec::new).push(k.clone());
                } else if let Some(only_connection) = hop_by_hop(k) {
                    hop = if only_connection && hop == HopByHop::None && plain_connection(&h) {
                        HopByHop::Connection
                    } else {
                        HopByHop::Other
                    };
                }
            }
            if hop == HopByHop::Other && h.contains_key(http::header::UPGRADE) && !names_upgrade(&h) {
                found.get_or_insert_with(Vec::new).push(http::header::UPGRADE);
            }
            proptest::prop_assert_eq!(&pass.strip, &found, "{:?}", pairs);
            proptest::prop_assert_eq!(pass.hop, hop, "{:?}", pairs);
            proptest::prop_assert_eq!(pass.framing, framing, "{:?}", pairs);
            proptest::prop_assert_eq!(pass.host, h.get(http::header::HOST), "{:?}", pairs);
            let cookies: Vec<_> = h.get_all(http::header::COOKIE).iter().collect();
            let lone = (cookies.len() == 1).then(|| cookies[0]);
            proptest::prop_assert_eq!(pass.cookie.as_ref(), lone, "{:?}", pairs);
        }
    }

    /// The header pass says whether there are lengths for the framing check to read.
    #[test]
    fn the_name_pass_notes_lengths() {
        let pass = |names: &[&str]| {
            let pairs: Vec<(&str, &str)> = names.iter().map(|n| (*n, "1")).collect();
            spoofable_names(&crate::test_support::header_map(&pairs), &[]).framing
        };
        assert!(!pass(&["host", "cookie", "accept"]));
        assert!(pass(&["host", "content-length"]));
        assert!(pass(&["transfer-encoding", "host"]));
        assert!(!pass(&["content-lengthx", "x-transfer-encoding"]));
    }
}
