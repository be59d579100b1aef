//! Which request header names an application might take as identity, client
//! address or framing: the gateway strips them from every request
//! ([`crate::proxy::headers`]), and `[[site]]` identity header names must be
//! among them (checked by [`crate::config`]). Pure and dependency-free, so both
//! can use it without depending on each other.

/// Headers the gateway sets, believes, or that an application behind it might
/// take as identity or as the client's address, compared after lower-casing and
/// turning `_` into `-` (so `remote_user` and `REMOTE-USER` are both caught).
/// They are removed from every request (the gateway re-adds its own), whoever sent it.
const SPOOFABLE: &[&str] = &[
    "forwarded",
    "forwarded-for",
    "x-forwarded",
    "client-ip",
    "x-host",
    "x-url-scheme",
    "front-end-https",
    "x-proxyuser-ip",
    "x-real-ip",
    "x-real-port",
    "x-scheme",
    "x-originating-ip",
    "x-envoy-external-address",
    "x-azure-clientip",
    "x-appengine-user-ip",
    "x-http-host-override",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "x-cluster-client-ip",
    "x-rewrite-url",
    "x-authenticated-user",
    "x-authenticated-email",
    "x-authenticated-groups",
    "x-user",
    "x-user-email",
    // (Not `X-User-Id` or `X-Id-Token`: applications such as Rocket.Chat take them
    // from API clients together with a token they check themselves.)
    // Kong's identity of an authenticated consumer.
    "x-consumer-username",
    "x-consumer-id",
    "x-consumer-custom-id",
    "x-credential-username",
    "x-credential-identifier",
    "x-email",
    "x-preferred-username",
    "x-auth-user",
    "x-username",
    "x-auth-username",
    "x-auth-email",
    "x-authenticated-userid",
    "auth-user",
    "proxy-remote-user",
    "x-proxy-remote-user",
    "x-userinfo",
    "x-client-cert",
    "x-user-name",
    "x-groups",
    "proxy-user",
    "x-proxy-user",
    "cf-access-authenticated-user-email",
    "cf-access-jwt-assertion",
    "fastly-client-ip",
    // httpoxy (CVE-2016-5385): CGI-style applications read `Proxy` as `HTTP_PROXY`,
    // the proxy for their own outgoing calls.
    "proxy",
    // Method overrides: a rule on GET must not be turned into a DELETE by the app.
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Whole families: `X-Forwarded-*` (For, Proto, Host, User, Email, Groups, ...),
/// `X-Original-*`, identity header styles of other gateways (`X-Auth-Request-*`
/// of oauth2-proxy, Grafana's `X-WEBAUTH-*`, `X-Remote-*`, Apache's `Remote-*`)
/// and the gateway's own `X-Portcullis-*`.
const SPOOFABLE_PREFIXES: &[&str] = &[
    "x-forwarded-",
    "x-original-",
    "x-auth-request-",
    "x-webauth-",
    "x-remote-",
    "remote-",
    "x-portcullis-",
    // Identity headers of cloud front doors (Azure App Service, IAP, ALB OIDC, mod_auth_openidc).
    "x-ms-client-principal",
    "x-goog-authenticated-user-",
    "x-amzn-oidc-",
    "oidc-claim-",
    // A client certificate's identity as TLS terminators pass it on (`X-SSL-Client-S-DN`,
    // `-I-DN`, `-Cert`, `-Verify`, Apache's `SSL_CLIENT_*` as headers).
    "x-ssl-client-",
    "ssl-client-",
];

/// Framing, routing and hop-by-hop headers: their `_` spellings are removed, since
/// an application that folds `_` into `-` (CGI, WSGI) would read a different length
/// or host than the gateway did, or a hop-by-hop field (a proxy's credentials, say)
/// that never crosses a hop (attack pass: `Proxy_Authorization` reached the
/// application as `HTTP_PROXY_AUTHORIZATION`).
const UNDERSCORE_FRAMING: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "content-type",
    "content-encoding",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "http2-settings",
];

/// `name` lower-cased with `_` as `-`, compared against `want` (already in that form).
fn folded_eq(name: &[u8], want: &[u8]) -> bool {
    want.len() == name.len()
        && want.iter().zip(name).all(|(w, n)| {
            let n = if *n == b'_' {
                b'-'
            } else {
                n.to_ascii_lowercase()
            };
            *w == n
        })
}

/// The lengths of the [`UNDERSCORE_FRAMING`] names, as bits: most names (`cookie`,
/// `user-agent`, `accept`) have none of them, and skip the scan for `_` (this
/// runs for every header of every request).
const UNDERSCORE_FRAMING_LENGTHS: u64 = {
    let mut bits = 0u64;
    let mut i = 0;
    while i < UNDERSCORE_FRAMING.len() {
        bits |= 1 << UNDERSCORE_FRAMING[i].len();
        i += 1;
    }
    bits
};

pub fn is_spoofable(name: &str) -> bool {
    let b = name.as_bytes();
    (may_be_listed(b)
        && (SPOOFABLE.iter().any(|w| folded_eq(b, w.as_bytes()))
            || SPOOFABLE_PREFIXES
                .iter()
                .any(|p| b.len() >= p.len() && folded_eq(&b[..p.len()], p.as_bytes()))))
        || (b.len() < 64
            && UNDERSCORE_FRAMING_LENGTHS & (1 << b.len()) != 0
            && b.contains(&b'_')
            && UNDERSCORE_FRAMING
                .iter()
                .any(|w| folded_eq(b, w.as_bytes())))
}

/// Could `name` be in [`SPOOFABLE`] or start with one of [`SPOOFABLE_PREFIXES`]?
/// Every entry starts (folded) with one of these two-byte beginnings; most of a
/// browser's headers don't (`host`, `cookie`, `accept…`, `user-agent`, `sec-…`),
/// so they skip the lists. (A test keeps this in step with the lists.)
fn may_be_listed(name: &[u8]) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    match name {
        [a, b, ..] => matches!(
            (fold(*a), fold(*b)),
            (b'f', b'o' | b'r')
                | (b'c', b'l')
                | (b'x', b'-')
                | (b't', b'r')
                | (b'c', b'f')
                | (b'a', b'u')
                | (b'p', b'r')
                | (b's', b's')
                | (b'r', b'e')
                | (b'o', b'i')
                | (b'f', b'a')
        ),
        _ => false,
    }
}

/// Is `name` spoofable, or, folded, one of `extra` (already folded: lower-case,
/// `_` as `-`; the identity header names configured for sites)?
pub fn is_spoofable_with(name: &str, extra: &[String]) -> bool {
    is_spoofable(name)
        || extra
            .iter()
            .any(|w| folded_eq(name.as_bytes(), w.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two-byte filter lets through every listed name and prefix, in any case
    /// and with `_` for `-`: it only skips work, never a header.
    #[test]
    fn the_quick_filter_admits_every_entry() {
        for w in SPOOFABLE.iter().chain(SPOOFABLE_PREFIXES) {
            for spelling in [
                w.to_string(),
                w.to_ascii_uppercase(),
                w.replace('-', "_"),
                format!("{w}x"),
            ] {
                assert!(may_be_listed(spelling.as_bytes()), "{spelling}");
            }
            assert!(is_spoofable(w) || SPOOFABLE_PREFIXES.contains(w), "{w}");
        }
        for w in SPOOFABLE_PREFIXES {
            assert!(is_spoofable(&format!("{w}anything")), "{w}");
            assert!(
                is_spoofable(&format!(
                    "{}ANY_thing",
                    w.to_ascii_uppercase().replace('-', "_")
                )),
                "{w}"
            );
        }
        for w in UNDERSCORE_FRAMING.iter().filter(|w| w.contains('-')) {
            assert!(is_spoofable(&w.replace('-', "_")), "{w}");
            assert!(
                is_spoofable(&w.to_ascii_uppercase().replace('-', "_")),
                "{w}"
            );
        }
        for plain in [
            "host",
            "cookie",
            "accept",
            "accept-language",
            "user-agent",
            "sec-fetch-mode",
            "content-length",
            "te",
        ] {
            assert!(!is_spoofable(plain), "{plain}");
        }
    }
}
