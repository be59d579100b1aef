//! The I/O half of loading, done once at start-up after the pure validators
//! ([`super::validate`]): resolves each upstream's name, reads the files the
//! config names (TLS key pair, upstream CAs, the SMTP password file, the
//! operator's Fluent catalogues), checks the folders and files it points at,
//! and counts the CPU cores for `threads = 0`. Its problems join the
//! validators' with the same key paths, so `check-config` reports an
//! unreadable file or a name that doesn't resolve with everything else.

use std::net::{SocketAddr, ToSocketAddrs};

use super::validate::{Pending, Problems, SiteDraft};
use super::{defaults, Config, Secret, Site};

/// Finishes `config` (its sites, `threads`, the SMTP password) from `pending`.
pub fn complete(mut config: Config, pending: Pending, problems: &mut Vec<String>) -> Config {
    let mut v = Problems::new(problems);
    if config.server.threads == 0 {
        config.server.threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(defaults::server::THREADS_FALLBACK);
    }
    if let Some(t) = &config.server.tls {
        // Loaded here only to report a bad pair now; the server loads its own copy.
        if let Err(e) = crate::tls::certified_key(&t.cert, &t.key) {
            v.err("server.tls", e);
        }
    }
    check_ui(&config, &mut v);
    if let Some(smtp) = &mut config.notify.smtp {
        if let Some((written, path)) = pending.smtp_password_file {
            match std::fs::read_to_string(&path) {
                Ok(p) => {
                    let p = p.trim_end_matches(['\r', '\n']).to_string();
                    smtp.password = Some(Secret(zeroize::Zeroizing::new(p)));
                }
                Err(e) => {
                    v.err(
                        "notify.smtp.password_file",
                        format!("cannot read {written}: {e}"),
                    );
                    if smtp.username.is_some() {
                        v.err(
                            "notify.smtp.username",
                            "username and a password go together",
                        );
                    }
                }
            }
        }
        if let Some(f) = smtp.ca_file.as_ref().filter(|f| !f.is_file()) {
            v.err(
                "notify.smtp.ca_file",
                format!("{} is not a readable file", f.display()),
            );
        }
    }
    let mut lost = Vec::new();
    for (i, draft) in pending.sites {
        match site(i, draft, &mut v) {
            Ok(s) => config.sites.push(s),
            Err(host) => lost.push(host),
        }
    }
    // A rule naming a site that couldn't be set up names no site.
    for (i, r) in config.rules.iter().enumerate() {
        if let Some(h) = r.host.as_ref().filter(|h| lost.contains(h)) {
            v.err(
                &format!("rule[{i}].host"),
                format!("{h:?} is not the host of any [[site]]"),
            );
        }
    }
    config
}

/// The folders and files `[ui]` names exist, and the catalogues read.
fn check_ui(config: &Config, v: &mut Problems<'_>) {
    let ui = &config.ui;
    if let Some(l) = &ui.locales {
        if !l.is_dir() {
            v.err("ui.locales", format!("{} is not a folder", l.display()));
        } else if let Err(e) = crate::i18n::Catalogues::load(Some(l)) {
            v.err("ui.locales", e.to_string());
        }
    }
    if let Some(t) = ui.templates.as_ref().filter(|t| !t.is_dir()) {
        v.err("ui.templates", format!("{} is not a folder", t.display()));
    }
    if let Some(l) = ui.logo.as_ref().filter(|l| !l.is_file()) {
        v.err("ui.logo", format!("{} is not a file", l.display()));
    }
}

/// `site[i]` with its upstream resolved and CA read; `Err(host)` when its
/// upstream doesn't resolve (the site is left out).
fn site(i: usize, d: SiteDraft, v: &mut Problems<'_>) -> Result<Site, String> {
    let key = format!("site[{i}]");
    let upstream_ca = match &d.upstream_ca {
        None => None,
        Some(path) => match crate::tls::UpstreamCa::load(path) {
            Ok(ca) => Some(ca),
            Err(e) => {
                v.err(&format!("{key}.upstream_ca"), e);
                None
            }
        },
    };
    let Some(upstream) = resolve_upstream(&d.upstream) else {
        v.err(
            &format!("{key}.upstream"),
            format!("{:?} is not a reachable host:port", d.upstream),
        );
        return Err(d.host);
    };
    if upstream.port() == 0 {
        v.err(
            &format!("{key}.upstream"),
            format!("{:?}: port 0 is no port to connect to", d.upstream),
        );
        return Err(d.host);
    }
    let Ok(host_value) = http::HeaderValue::from_str(&d.host) else {
        v.err(
            &format!("{key}.host"),
            format!("{:?} is not a host name", d.host),
        );
        return Err(d.host);
    };
    let identity = std::sync::Arc::new(d.identity);
    Ok(Site {
        head: std::sync::Arc::new(crate::identity::SiteHead::new(
            &host_value,
            identity.clone(),
        )),
        host_value,
        pool_key: Site::pool_key_of(&d.host, upstream_ca.as_ref().map(|c| c.1)),
        host: d.host.into(),
        upstream,
        upstream_tls: d.upstream_tls,
        upstream_ca,
        allow_get_bodies: d.allow_get_bodies,
        keep_alive_after_bodies: d.keep_alive_after_bodies,
        identity,
    })
}

/// The first address of `host:port` (a literal address needs no lookup).
fn resolve_upstream(hostport: &str) -> Option<SocketAddr> {
    hostport.to_socket_addrs().ok().and_then(|mut a| a.next())
}
