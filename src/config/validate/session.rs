//! `[session]`: the cookie and how long a session lasts.

use std::time::Duration;

use super::{valid_host, Problems};
use crate::config::defaults::session as d;
use crate::config::raw::RawSession;
use crate::config::{SameSite, SessionConfig};

pub fn validate(ses: RawSession, v: &mut Problems<'_>) -> SessionConfig {
    let cookie_name = ses.cookie_name.unwrap_or_else(|| d::COOKIE_NAME.into());
    if cookie_name.is_empty()
        || !cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        v.err(
            "session.cookie_name",
            format!("{cookie_name:?} may use only letters, digits, '-', '_' and '.'"),
        );
    }
    let domain = ses
        .domain
        .as_deref()
        .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty());
    if let Some(d) = &domain {
        if !valid_host(d) || !d.contains('.') {
            v.err(
                "session.domain",
                format!("{d:?} is not a parent domain like \"example.com\""),
            );
        }
    }
    let secure = ses.secure.unwrap_or(d::SECURE);
    let same_site = ses.same_site.unwrap_or(d::SAME_SITE);
    if same_site == SameSite::None && !secure {
        v.err(
            "session.same_site",
            "\"none\" requires session.secure = true (browsers refuse it otherwise)",
        );
    }
    let idle_timeout = v.duration(
        "session.idle_timeout",
        ses.idle_timeout,
        d::IDLE_TIMEOUT,
        Duration::from_secs(1),
    );
    let absolute_timeout = v.duration(
        "session.absolute_timeout",
        ses.absolute_timeout,
        d::ABSOLUTE_TIMEOUT,
        Duration::from_secs(1),
    );
    if absolute_timeout < idle_timeout {
        v.err(
            "session.absolute_timeout",
            "must not be shorter than session.idle_timeout",
        );
    }
    SessionConfig {
        cookie_name,
        domain,
        secure,
        same_site,
        idle_timeout,
        absolute_timeout,
    }
}
