//! Identity headers per site: which header names carry the signed-in person to
//! an application (`[site.headers]`), the rules a configured name must follow,
//! and the header values themselves. Owns no I/O: the proxy and forward-auth
//! call [`IdentityHeaders::values`]; the signed form lives in [`crate::assertion`].
//!
//! Why names are refused at load time: every configured name is also stripped
//! from client requests, and the gateway sets it on forwarded ones. A name that
//! is framing (`Content-Length`), routing (`Host`), hop-by-hop (`Connection`),
//! a credential (`Cookie`, `Authorization`) or one the gateway sets itself
//! (`X-Forwarded-For`/`-Proto`/`-Host`) would break requests or let identity
//! overwrite the client address, so such names never get that far.

use std::sync::{Arc, Mutex};

use http::header::HOST;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The identity header names of one `[[site]]` (`None` = not sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub user: Option<HeaderName>,
    pub email: Option<HeaderName>,
    pub name: Option<HeaderName>,
    pub groups: Option<HeaderName>,
    /// Between groups in the `groups` header.
    pub group_separator: String,
    /// The header carrying a signed JWT with the identity (`None` = off).
    pub assertion: Option<HeaderName>,
}

impl Default for IdentityHeaders {
    /// Today's names: `Remote-User`, `Remote-Email`, `Remote-Name`, `Remote-Groups`; no assertion.
    fn default() -> Self {
        IdentityHeaders {
            user: Some(HeaderName::from_static("remote-user")),
            email: Some(HeaderName::from_static("remote-email")),
            name: Some(HeaderName::from_static("remote-name")),
            groups: Some(HeaderName::from_static("remote-groups")),
            group_separator: ",".into(),
            assertion: None,
        }
    }
}

impl IdentityHeaders {
    /// The plain identity headers for `user` (without the assertion). A group that
    /// holds the separator is left out, so a list can never be read as more groups
    /// than the account has.
    pub fn values<'a>(
        &'a self,
        user: &crate::users::User,
    ) -> impl Iterator<Item = (&'a HeaderName, String)> + 'a {
        let groups = self
            .groups
            .as_ref()
            .map(|n| (n, group_list(user, &self.group_separator)));
        [
            self.user.as_ref().map(|n| (n, user.name.clone())),
            self.email.as_ref().map(|n| (n, user.email.clone())),
            self.name
                .as_ref()
                .map(|n| (n, user.shown_name().to_string())),
            groups,
        ]
        .into_iter()
        .flatten()
    }

    /// [`values`](Self::values) as header values, from the account's
    /// [`ValueCache`]: made once per account (and group separator), then shared by
    /// every request (a copy is a pointer while the value is kept in
    /// [`crate::lasting::ACCOUNTS`], a reference count past its budget). A value that
    /// can't be a header value (control characters) is left out, as before.
    pub fn header_values<'a>(
        &'a self,
        user: &'a crate::users::User,
    ) -> impl Iterator<Item = (&'a HeaderName, HeaderValue)> + 'a {
        let v = user
            .header_values
            .values
            .get_or_init(|| Values::of(user, &self.group_separator));
        let groups = self.groups.as_ref().and_then(|n| {
            let value = if v.separator == self.group_separator {
                v.groups.clone()
            } else {
                header_value(group_list(user, &self.group_separator))
            };
            Some((n, value?))
        });
        [
            self.user.as_ref().zip(v.name.clone()),
            self.email.as_ref().zip(v.email.clone()),
            self.name.as_ref().zip(v.shown_name.clone()),
            groups,
        ]
        .into_iter()
        .flatten()
    }

    /// Every name this site sends (identity and assertion).
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        [
            &self.user,
            &self.email,
            &self.name,
            &self.groups,
            &self.assertion,
        ]
        .into_iter()
        .flatten()
    }
}

/// The account's groups joined by `sep`, leaving out any group that holds `sep`.
fn group_list(user: &crate::users::User, sep: &str) -> String {
    let mut out = String::new();
    for g in user.groups.iter().filter(|g| !g.contains(sep)) {
        if !out.is_empty() {
            out.push_str(sep);
        }
        out.push_str(g);
    }
    out
}

fn header_value(s: String) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(s)).ok()
}

/// [`header_value`], kept for good when it fits (an account's values go into every
/// head forwarded for it; see [`crate::lasting`]).
fn lasting_value(s: String) -> Option<HeaderValue> {
    header_value(s).map(|v| crate::lasting::ACCOUNTS.value(v))
}

/// An account's identity header values (see [`IdentityHeaders::header_values`]).
struct Values {
    name: Option<HeaderValue>,
    email: Option<HeaderValue>,
    shown_name: Option<HeaderValue>,
    /// Joined by the separator of the first site that asked.
    separator: String,
    groups: Option<HeaderValue>,
}

impl Values {
    fn of(user: &crate::users::User, separator: &str) -> Values {
        Values {
            name: lasting_value(user.name.clone()),
            email: lasting_value(user.email.clone()),
            shown_name: lasting_value(user.shown_name().to_string()),
            separator: separator.to_string(),
            groups: lasting_value(group_list(user, separator)),
        }
    }
}

/// The slot in [`crate::users::User`] for its header values and the heads of its
/// forwarded requests ([`SiteHead::copy`]): empty in every copy, equal to any other
/// (it is derived data, not part of the account).
#[derive(Default)]
pub struct ValueCache {
    /// The plain values ([`IdentityHeaders::header_values`]).
    values: std::sync::OnceLock<Values>,
    /// The account's head for each site it was forwarded to lately ([`SiteHead::copy`]).
    heads: Mutex<Vec<(Arc<SiteHead>, HeaderMap)>>,
}

impl Clone for ValueCache {
    fn clone(&self) -> Self {
        ValueCache::default()
    }
}

impl PartialEq for ValueCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ValueCache {}

impl std::fmt::Debug for ValueCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueCache")
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The sites whose heads an account keeps at most (a person on more sites at once
/// has the oldest made again when needed).
const HEADS_PER_ACCOUNT: usize = 8;

/// The head every request forwarded to one site starts from (issue #11): the
/// headers the gateway sets, in a map made once, so that a request copies it (a
/// copy of a value is a pointer, see [`crate::lasting`]) and adds the client's few headers to it,
/// instead of adding the gateway's seven to the client's (an insertion into a header
/// map costs several times a copied entry).
///
/// In order: `Host` (the client's value goes here, so it stays first),
/// `X-Forwarded-For` and `X-Forwarded-Proto` (set per request by [`fill`]),
/// `X-Forwarded-Host`, then a signed-in account's identity headers
/// ([`SiteHead::copy`], made once per account and site). Made by the config's
/// loader, one per site and load: its address is the site's key in each account's
/// cache (which holds it, so the address is never reused while cached).
#[derive(Debug)]
pub struct SiteHead {
    /// The site's identity header names, for an account's head.
    identity: Arc<IdentityHeaders>,
    /// The first four headers, with no identity.
    anonymous: HeaderMap,
}

/// Room for the client's headers in a copied head: a request with up to this many
/// more needs no new index (the index is copied at this size; only the list of
/// entries grows).
const ROOM: usize = 24;

impl SiteHead {
    /// The head of `host_value`'s site, whose identity header names are `identity`.
    pub fn new(host_value: &HeaderValue, identity: Arc<IdentityHeaders>) -> SiteHead {
        let mut anonymous = HeaderMap::with_capacity(ROOM);
        let empty = HeaderValue::from_static("");
        anonymous.insert(HOST, empty.clone());
        anonymous.insert(X_FORWARDED_FOR, empty.clone());
        anonymous.insert(X_FORWARDED_PROTO, empty);
        anonymous.insert(
            X_FORWARDED_HOST,
            crate::lasting::CONFIG.value(host_value.clone()),
        );
        SiteHead {
            identity,
            anonymous,
        }
    }

    /// A copy of the head for one request: with `user`'s identity headers (made once
    /// per account and site, kept in the account) or with none. Its per-request
    /// slots are still to be set ([`fill`]).
    pub fn copy(self: &Arc<Self>, user: Option<&crate::users::User>) -> HeaderMap {
        let Some(user) = user else {
            return self.anonymous.clone();
        };
        let mut heads = user
            .header_values
            .heads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((_, h)) = heads.iter().find(|(site, _)| Arc::ptr_eq(site, self)) {
            return h.clone();
        }
        let mut h = self.anonymous.clone();
        for (k, v) in self.identity.header_values(user) {
            h.insert(k.clone(), v);
        }
        if heads.len() >= HEADS_PER_ACCOUNT {
            heads.remove(0);
        }
        heads.push((self.clone(), h.clone()));
        h
    }
}

/// Sets a copied head's per-request slots (see [`SiteHead`]): `X-Forwarded-For`
/// and `X-Forwarded-Proto`. (`Host` is set from the client's head.)
pub fn fill(head: &mut HeaderMap, xff: HeaderValue, proto: &'static str) {
    let mut slots = head.values_mut().skip(1);
    if let Some(v) = slots.next() {
        *v = xff;
    }
    if let Some(v) = slots.next() {
        *v = HeaderValue::from_static(proto);
    }
}

/// `name` lower-cased with `_` as `-`: the form in which header names are compared
/// when stripping (see [`crate::proxy::headers`]).
pub fn fold(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b == b'_' {
                '-'
            } else {
                char::from(b.to_ascii_lowercase())
            }
        })
        .collect()
}

/// Names that can't carry identity, folded: framing, routing, hop-by-hop,
/// credentials, and the forwarding headers the gateway sets itself.
const RESERVED: &[(&str, &str)] = &[
    ("host", "routing"),
    ("content-length", "framing"),
    ("transfer-encoding", "framing"),
    ("content-type", "framing"),
    ("content-encoding", "framing"),
    ("expect", "framing"),
    ("connection", "hop-by-hop"),
    ("keep-alive", "hop-by-hop"),
    ("proxy-connection", "hop-by-hop"),
    ("te", "hop-by-hop"),
    ("trailer", "hop-by-hop"),
    ("upgrade", "hop-by-hop"),
    ("proxy-authenticate", "hop-by-hop"),
    ("proxy-authorization", "hop-by-hop"),
    ("cookie", "the client's cookies"),
    ("set-cookie", "a response header"),
    ("authorization", "the client's credentials"),
    ("x-forwarded-for", "set by the gateway itself"),
    ("x-forwarded-proto", "set by the gateway itself"),
    ("x-forwarded-host", "set by the gateway itself"),
    ("forwarded", "set by proxies"),
    ("x-forwarded-uri", "a forward-auth fact the gateway reads"),
    (
        "x-forwarded-method",
        "a forward-auth fact the gateway reads",
    ),
    ("x-forwarded-port", "a forward-auth fact the gateway reads"),
    ("x-forwarded-prefix", "a forwarding header"),
    ("x-original-uri", "a forward-auth fact the gateway reads"),
    ("x-original-url", "a forward-auth fact the gateway reads"),
    ("x-original-method", "a forward-auth fact the gateway reads"),
    ("x-real-ip", "a client-address header"),
    ("x-http-method-override", "a method override"),
    ("x-http-method", "a method override"),
    ("x-method-override", "a method override"),
    ("origin", "a standard request header"),
    ("referer", "a standard request header"),
    ("user-agent", "a standard request header"),
    ("accept", "a standard request header"),
    ("accept-encoding", "a standard request header"),
    ("accept-language", "a standard request header"),
    ("range", "a standard request header"),
    ("if-match", "a standard request header"),
    ("if-none-match", "a standard request header"),
    ("if-modified-since", "a standard request header"),
    ("if-unmodified-since", "a standard request header"),
    ("if-range", "a standard request header"),
    ("cache-control", "a standard header"),
    ("pragma", "a standard header"),
    ("via", "a standard header"),
    ("max-forwards", "a standard request header"),
    ("date", "a standard header"),
    ("location", "a response header"),
    ("www-authenticate", "a response header"),
    ("retry-after", "a response header"),
    ("http2-settings", "a protocol header"),
    ("cookie2", "the client's cookies"),
];

/// Name prefixes that can't carry identity: protocol headers the browser or
/// the protocol owns (`Sec-WebSocket-Key`, `Sec-Fetch-*`, ...), and framing.
const RESERVED_PREFIXES: &[(&str, &str)] = &[
    ("sec-", "a header the browser or protocol owns"),
    ("content-", "framing"),
    ("proxy-", "hop-by-hop"),
    ("access-control-", "a CORS header"),
];

/// Why `name` can't be an identity header name, or `None` if it can.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > 128 {
        return Some("is longer than 128 characters".into());
    }
    // RFC 9110 token characters.
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c)))
    {
        return Some(format!(
            "{name:?} is not a header name ({c:?} is not allowed; use letters, digits and '-')"
        ));
    }
    let folded = fold(name);
    if let Some((_, why)) = RESERVED.iter().find(|(n, _)| *n == folded) {
        return Some(format!("{name:?} can't carry identity ({why})"));
    }
    if let Some((_, why)) = RESERVED_PREFIXES
        .iter()
        .find(|(p, _)| folded.starts_with(p))
    {
        return Some(format!("{name:?} can't carry identity ({why})"));
    }
    None
}

/// `name` as a header name, or the problem with it.
pub fn parse_name(name: &str) -> Result<HeaderName, BadHeaderName> {
    if let Some(p) = name_problem(name) {
        return Err(BadHeaderName(p));
    }
    HeaderName::from_bytes(name.as_bytes())
        .map(|n| crate::lasting::CONFIG.name(n))
        .map_err(|_| BadHeaderName(format!("{name:?} is not a header name")))
}

/// A name that can't be an identity header; says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadHeaderName(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    /// The values a head copies are the pools' (see `crate::lasting`): one text
    /// however often it is made.
    #[test]
    fn forwarded_values_are_the_pools_copies() {
        // Two sites on one host, loaded apart: one `X-Forwarded-Host` text.
        let head = |host: &str| {
            let h = SiteHead::new(
                &HeaderValue::from_str(host).unwrap(),
                Arc::new(IdentityHeaders::default()),
            );
            h.anonymous[&X_FORWARDED_HOST].as_bytes().as_ptr()
        };
        assert_eq!(head("pooled.test"), head("pooled.test"));
        // Two reads of one account: one copy of each identity value.
        let values = || {
            let u = crate::users::User {
                name: "pooled-user".into(),
                email: "pooled@example.com".into(),
                ..Default::default()
            };
            IdentityHeaders::default()
                .header_values(&u)
                .map(|(_, v)| v.as_bytes().as_ptr())
                .collect::<Vec<_>>()
        };
        assert_eq!(values(), values());
        // A configured name, parsed twice: one text.
        let n = parse_name("X-Pooled-User").unwrap();
        let m = parse_name("x-pooled-user").unwrap();
        assert_eq!(n.as_str().as_ptr(), m.as_str().as_ptr());
    }

    /// A site's head: the forwarding headers, then (signed in) the account's
    /// identity under the site's own names, made once per account and site and
    /// made again for a changed account (a new copy of it).
    #[test]
    fn heads_are_per_site_and_per_account() {
        let alice = Arc::new(crate::users::User {
            name: "alice".into(),
            email: "alice@example.com".into(),
            groups: vec!["ops".into(), "dev".into()],
            ..Default::default()
        });
        let grafana = IdentityHeaders {
            user: Some(HeaderName::from_static("x-webauth-user")),
            email: None,
            name: None,
            groups: Some(HeaderName::from_static("x-webauth-groups")),
            group_separator: ";".into(),
            assertion: None,
        };
        let a = Arc::new(SiteHead::new(
            &HeaderValue::from_static("a.test"),
            Arc::new(IdentityHeaders::default()),
        ));
        let g = Arc::new(SiteHead::new(
            &HeaderValue::from_static("g.test"),
            Arc::new(grafana),
        ));
        let lines = |h: &HeaderMap| -> Vec<(String, String)> {
            h.iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
                .collect()
        };
        let mut h = a.copy(Some(&alice));
        fill(&mut h, HeaderValue::from_static("10.0.0.1"), "https");
        let want = [
            ("host", ""),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "a.test"),
            ("remote-user", "alice"),
            ("remote-email", "alice@example.com"),
            ("remote-name", "alice"),
            ("remote-groups", "ops,dev"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(lines(&h), want);
        // The other site: its names and separator, its host.
        let h = g.copy(Some(&alice));
        assert_eq!(h.get("x-webauth-groups").unwrap(), "ops;dev");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "g.test");
        assert!(!h.contains_key("remote-user"));
        // Again, from the account's cache (one head per site): the same head.
        assert_eq!(lines(&a.copy(Some(&alice)))[3..], want[3..]);
        assert_eq!(alice.header_values.heads.lock().unwrap().len(), 2);
        // A changed account is a new copy, with an empty cache.
        let mut renamed = crate::users::User::clone(&alice);
        renamed.email = "a@example.com".into();
        assert_eq!(
            a.copy(Some(&renamed)).get("remote-email").unwrap(),
            "a@example.com"
        );
        // Anonymous: the forwarding headers only.
        assert_eq!(a.copy(None).len(), 4);
    }

    #[test]
    fn header_name_table() {
        for ok in [
            "Remote-User",
            "X-WEBAUTH-USER",
            "X-Forwarded-User",
            "X-Forwarded-Email",
            "X-Remote-User",
            "X_Remote_User",
            "X-Portcullis-Assertion",
            "x.user",
            "User!",
        ] {
            assert_eq!(name_problem(ok), None, "{ok}");
            assert!(parse_name(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("X User", "not a header name"),
            ("X-User:", "not a header name"),
            ("Rémote-User", "not a header name"),
            ("X-User\r\nHost", "not a header name"),
            ("(user)", "not a header name"),
            ("Host", "routing"),
            ("content_length", "framing"),
            ("Content-Length", "framing"),
            ("Transfer-Encoding", "framing"),
            ("Connection", "hop-by-hop"),
            ("TE", "hop-by-hop"),
            ("Upgrade", "hop-by-hop"),
            ("Cookie", "cookies"),
            ("Set-Cookie", "response"),
            ("Authorization", "credentials"),
            ("X-Forwarded-For", "gateway"),
            ("x_forwarded_proto", "gateway"),
            ("X-FORWARDED-HOST", "gateway"),
            ("Forwarded", "proxies"),
            ("X-Original-URI", "forward-auth"),
            ("x_forwarded_uri", "forward-auth"),
            ("X-Forwarded-Method", "forward-auth"),
            ("X-Real-IP", "client-address"),
            ("X-HTTP-Method-Override", "method override"),
            ("Origin", "standard"),
            ("Sec-WebSocket-Key", "browser or protocol"),
            ("Sec-Fetch-Site", "browser or protocol"),
            ("Accept", "standard"),
            ("Range", "standard"),
            ("Location", "response"),
            ("Cache-Control", "standard"),
            ("HTTP2-Settings", "protocol"),
            ("Content-MD5", "framing"),
        ] {
            let p = name_problem(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(p.contains(why), "{bad:?}: {p}");
            assert!(parse_name(bad).is_err());
        }
        assert!(name_problem(&"x".repeat(129)).is_some());
    }

    #[test]
    fn values_follow_the_names() {
        let user = crate::users::User {
            name: "alice".into(),
            email: "alice@example.com".into(),
            display_name: "Alice".into(),
            groups: vec!["admins".into(), "a;b".into(), "staff".into()],
            ..Default::default()
        };
        let h = IdentityHeaders {
            user: Some(HeaderName::from_static("x-webauth-user")),
            email: None,
            name: None,
            groups: Some(HeaderName::from_static("x-groups")),
            group_separator: ";".into(),
            assertion: Some(HeaderName::from_static("x-portcullis-assertion")),
        };
        let got: Vec<(String, String)> = h.values(&user).map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(
            got,
            vec![
                ("x-webauth-user".into(), "alice".into()),
                ("x-groups".into(), "admins;staff".into()),
            ]
        );
        assert_eq!(h.names().count(), 3);
        let d: Vec<(String, String)> = IdentityHeaders::default()
            .values(&user)
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(d[0], ("remote-user".into(), "alice".into()));
        assert_eq!(d[3], ("remote-groups".into(), "admins,a;b,staff".into()));
        assert_eq!(fold("X_WebAuth-USER"), "x-webauth-user");
    }

    /// The proxy's made-once values are the same as the plain ones, for every
    /// separator asked for (the first is remembered, others made fresh), and a
    /// changed copy of the account gets its own.
    #[test]
    fn header_values_are_the_values_made_once() {
        let user = crate::users::User {
            name: "alice".into(),
            email: "alice@example.com".into(),
            groups: vec!["admins".into(), "a;b".into(), "x,y".into()],
            ..Default::default()
        };
        let same = |h: &IdentityHeaders, u: &crate::users::User| {
            let plain: Vec<(String, String)> =
                h.values(u).map(|(k, v)| (k.to_string(), v)).collect();
            let made: Vec<(String, String)> = h
                .header_values(u)
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
                .collect();
            assert_eq!(plain, made);
            made
        };
        let comma = IdentityHeaders::default();
        let semi = IdentityHeaders {
            group_separator: ";".into(),
            ..IdentityHeaders::default()
        };
        for _ in 0..2 {
            let d = same(&comma, &user);
            assert_eq!(d[2], ("remote-name".into(), "alice".into()));
            assert_eq!(d[3], ("remote-groups".into(), "admins,a;b".into()));
            assert_eq!(same(&semi, &user)[3].1, "admins;x,y");
        }
        // A control character can't be sent: that header is left out.
        let mut changed = user.clone();
        changed.display_name = "Al\nice".into();
        let made: Vec<String> = comma
            .header_values(&changed)
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(made, ["remote-user", "remote-email", "remote-groups"]);
        // The copy's values were made from the copy; the original's cache is untouched.
        assert_eq!(same(&comma, &user)[2].1, "alice");
    }
}
