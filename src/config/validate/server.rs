//! `[server]` and `[server.tls]`. The key pair is read by [`crate::config::load`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::{resolve, Problems};
use crate::config::defaults::server as d;
use crate::config::raw::{RawServer, RawTls};
use crate::config::{ServerConfig, TlsConfig};

/// `threads` stays 0 ("one per core") here; the load step counts the cores.
pub fn validate(srv: RawServer, base: &Path, v: &mut Problems<'_>) -> ServerConfig {
    let listen = v
        .addr("server.listen", srv.listen.as_deref().unwrap_or(d::LISTEN))
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let admin_listen = srv
        .admin_listen
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| v.addr("server.admin_listen", s));
    if admin_listen == Some(listen) {
        v.err("server.admin_listen", "must differ from server.listen");
    }
    let public_url = match srv.public_url.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match url::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
            _ => {
                v.err("server.public_url", format!("{s:?} is not an http(s) URL"));
                None
            }
        },
    };
    ServerConfig {
        listen,
        admin_listen,
        portal_prefix: portal_prefix(srv.portal_prefix.as_deref(), v),
        trusted_proxies: v.cidrs("server.trusted_proxies", &srv.trusted_proxies),
        public_url,
        threads: v.int("server.threads", srv.threads, d::THREADS, 0, 256) as usize,
        header_timeout: v.duration(
            "server.header_timeout",
            srv.header_timeout,
            d::HEADER_TIMEOUT,
            Duration::from_secs(1),
        ),
        upstream_timeout: v.duration(
            "server.upstream_timeout",
            srv.upstream_timeout,
            d::UPSTREAM_TIMEOUT,
            Duration::from_secs(1),
        ),
        max_connections_per_client: v.int(
            "server.max_connections_per_client",
            srv.max_connections_per_client,
            d::MAX_CONNECTIONS_PER_CLIENT,
            0,
            1_000_000,
        ) as usize,
        upstream_idle_connections: v.int(
            "server.upstream_idle_connections",
            srv.upstream_idle_connections,
            d::UPSTREAM_IDLE_CONNECTIONS,
            1,
            // (Pingora sizes its pools' tables for `threads` × this at start.)
            4_096,
        ) as usize,
        tls: srv.tls.and_then(|t| tls(t, base, v)),
    }
}

/// Always starts with `/` and never ends with one.
fn portal_prefix(raw: Option<&str>, v: &mut Problems<'_>) -> String {
    let prefix = raw
        .unwrap_or(d::PORTAL_PREFIX)
        .trim_end_matches('/')
        .to_string();
    if !prefix.starts_with('/')
        || prefix.len() < 2
        || !prefix[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        || prefix.contains("//")
        || prefix.contains("/.")
    {
        v.err(
            "server.portal_prefix",
            format!("{prefix:?} must be a path like \"/_auth\""),
        );
    }
    prefix
}

fn tls(t: RawTls, base: &Path, v: &mut Problems<'_>) -> Option<TlsConfig> {
    let (Some(c), Some(k)) = (t.cert, t.key) else {
        v.err("server.tls", "needs both cert and key");
        return None;
    };
    let hsts = match t.hsts.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(h) => match crate::tls::check_hsts(h) {
            Ok(h) => Some(h),
            Err(e) => {
                v.err("server.tls.hsts", e);
                None
            }
        },
    };
    Some(TlsConfig {
        cert: resolve(base, &c),
        key: resolve(base, &k),
        hsts,
    })
}
