//! Header hygiene: which incoming headers are stripped, and how the client
//! address and scheme are worked out from trusted proxies.

use std::net::IpAddr;

use ipnet::IpNet;
use pingora::http::RequestHeader;

use crate::portal::Forwarded;

/// Headers the gateway sets or believes, compared after lower-casing and
/// turning `_` into `-` (so `remote_user` and `REMOTE-USER` are both caught).
const SPOOFABLE: &[&str] = &[
    "remote-user",
    "remote-email",
    "remote-name",
    "remote-groups",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-method",
    "x-forwarded-uri",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-original-url",
    "x-original-uri",
    "x-original-method",
    "x-rewrite-url",
    "x-real-ip",
    "forwarded",
];

pub fn is_spoofable(name: &str) -> bool {
    let same = |want: &str| {
        want.len() == name.len()
            && want.bytes().zip(name.bytes()).all(|(w, n)| {
                let n = if n == b'_' {
                    b'-'
                } else {
                    n.to_ascii_lowercase()
                };
                w == n
            })
    };
    SPOOFABLE.iter().any(|w| same(w))
}

pub fn strip_spoofable(req: &mut RequestHeader) {
    // Names in a HeaderMap are already lower-case; only `_` spellings need folding.
    let mut found: Option<Vec<http::HeaderName>> = None;
    for k in req.headers.keys() {
        if is_spoofable(k.as_str()) {
            found.get_or_insert_with(Vec::new).push(k.clone());
        }
    }
    for n in found.into_iter().flatten() {
        while req.remove_header(&n).is_some() {}
    }
}

/// All `Cookie` headers as one string (borrowed when there is just one).
pub fn cookie_header(req: &RequestHeader) -> std::borrow::Cow<'_, str> {
    let mut it = req
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    match (it.next(), it.next()) {
        (None, _) => std::borrow::Cow::Borrowed(""),
        (Some(one), None) => std::borrow::Cow::Borrowed(one),
        (Some(a), Some(b)) => {
            let mut s = format!("{a}; {b}");
            for rest in it {
                s.push_str("; ");
                s.push_str(rest);
            }
            std::borrow::Cow::Owned(s)
        }
    }
}

/// The `Cookie` header(s) minus the named cookies, joined with `; `.
pub fn without_cookies(headers: &http::HeaderMap, names: &[&str]) -> String {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !names.iter().any(|n| c.split('=').next() == Some(*n)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `host[:port]` → lower-case host; IPv6 brackets kept.
pub fn host_only(h: &str) -> String {
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

pub struct ClientInfo {
    pub client: IpAddr,
    pub xff: String,
    pub proto: &'static str,
}

/// The client is the peer, unless the peer is a trusted proxy: then the
/// right-most address in `X-Forwarded-For` that isn't a trusted proxy.
pub fn forwarded_for(
    req: &RequestHeader,
    peer: IpAddr,
    trusted: bool,
    proxies: &[IpNet],
    tls: bool,
) -> ClientInfo {
    let own_proto = if tls { "https" } else { "http" };
    if !trusted {
        return ClientInfo {
            client: peer,
            xff: peer.to_string(),
            proto: own_proto,
        };
    }
    let chain: Vec<String> = req
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let mut client = peer;
    for a in chain.iter().rev() {
        match a.parse::<IpAddr>() {
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
    let proto = match req
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ => own_proto,
    };
    ClientInfo { client, xff, proto }
}

/// What a trusted forward-auth caller says about the original request.
pub fn forwarded_original(req: &RequestHeader) -> Forwarded {
    let get = |n: &str| {
        req.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Forwarded {
        method: get("x-forwarded-method").or_else(|| get("x-original-method")),
        proto: get("x-forwarded-proto"),
        host: get("x-forwarded-host"),
        uri: get("x-original-url").or_else(|| get("x-forwarded-uri")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert!(is_spoofable(n), "{n}");
        }
        for n in ["cookie", "remote-addr-x", "user-agent"] {
            assert!(!is_spoofable(n), "{n}");
        }
    }

    #[test]
    fn own_cookies_are_removed() {
        let mut h = http::HeaderMap::new();
        h.append("cookie", "a=1; portcullis=secret; b=2".parse().unwrap());
        h.append("cookie", "portcullis_pre=x".parse().unwrap());
        assert_eq!(
            without_cookies(&h, &["portcullis", "portcullis_pre"]),
            "a=1; b=2"
        );
    }

    #[test]
    fn host_only_table() {
        assert_eq!(host_only("App.Example.com:8080"), "app.example.com");
        assert_eq!(host_only("app.example.com."), "app.example.com");
        assert_eq!(host_only("[::1]:8080"), "[::1]");
        assert_eq!(host_only("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn client_from_trusted_chain() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.0.0.2")
            .unwrap();
        let proxies = vec!["10.0.0.0/8".parse().unwrap()];
        let info = forwarded_for(&req, "10.0.0.1".parse().unwrap(), true, &proxies, false);
        assert_eq!(info.client.to_string(), "1.2.3.4");
        assert_eq!(info.xff, "6.6.6.6, 1.2.3.4, 10.0.0.2, 10.0.0.1");
        let info = forwarded_for(&req, "9.9.9.9".parse().unwrap(), false, &proxies, false);
        assert_eq!(info.client.to_string(), "9.9.9.9");
        assert_eq!(info.xff, "9.9.9.9");
    }
}
