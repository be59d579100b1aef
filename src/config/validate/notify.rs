//! `[notify]`, `[notify.smtp]`, `[notify.webhook]`: which backend carries each
//! channel, and the backends' settings. A `password_file` is read, and a
//! `ca_file` checked, by [`crate::config::load`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{resolve, Problems};
use crate::config::defaults::notify as d;
use crate::config::raw::{RawNotify, RawSmtp, RawWebhook};
use crate::config::values::ChannelRoute;
use crate::config::webhook_body;
use crate::config::{NotifyBackend, NotifyConfig, Secret, SmtpConfig, SmtpSecurity, WebhookConfig};

/// `[notify]`, and the SMTP password file to read (as written, and resolved).
pub fn validate(
    n: &RawNotify,
    base: &Path,
    v: &mut Problems<'_>,
) -> (NotifyConfig, Option<(String, PathBuf)>) {
    let backend = n.backend.unwrap_or(d::BACKEND);
    let (smtp, password_file) = match &n.smtp {
        Some(r) => {
            let (s, f) = validate_smtp(r, base, v);
            (Some(s), f)
        }
        None => (None, None),
    };
    let webhook = n.webhook.as_ref().and_then(|r| validate_webhook(r, v));
    let route = |v: &mut Problems<'_>, key, explicit, voice_like| {
        route(backend, n, webhook.is_some(), v, key, explicit, voice_like)
    };
    let email = route(v, "notify.email", n.email, false);
    let sms = route(v, "notify.sms", n.sms, true);
    let voice = route(v, "notify.voice", n.voice, true);
    let used = [Some(backend), email, sms, voice];
    if used.contains(&Some(NotifyBackend::Smtp)) && n.smtp.is_none() {
        v.err(
            "notify.smtp",
            "missing: a channel uses smtp, so [notify.smtp] needs host and from",
        );
    }
    if used.contains(&Some(NotifyBackend::Webhook)) && n.webhook.is_none() {
        v.err(
            "notify.webhook",
            "missing: a channel uses webhook, so [notify.webhook] needs url",
        );
    }
    let notify = NotifyConfig {
        backend,
        file: resolve(base, n.file.as_deref().unwrap_or(d::FILE)),
        email,
        sms,
        voice,
        smtp,
        webhook,
    };
    (notify, password_file)
}

/// One channel's backend: the explicit setting, else the default backend when it
/// can carry the channel, else the other configured backend that can. `None` =
/// not offered. (`voice_like`: text messages and calls, which smtp can't carry.)
fn route(
    backend: NotifyBackend,
    n: &RawNotify,
    webhook_ok: bool,
    v: &mut Problems<'_>,
    key: &str,
    explicit: Option<ChannelRoute>,
    voice_like: bool,
) -> Option<NotifyBackend> {
    let pick = match explicit {
        Some(ChannelRoute::Off) => return None,
        Some(ChannelRoute::By(b)) => b,
        None => match (backend, voice_like) {
            (NotifyBackend::Smtp, true) if webhook_ok => NotifyBackend::Webhook,
            (NotifyBackend::Smtp, true) => return None,
            (NotifyBackend::Webhook, false) if n.smtp.is_some() => NotifyBackend::Smtp,
            (b, _) => b,
        },
    };
    if pick == NotifyBackend::Smtp && voice_like {
        v.err(
            key,
            "smtp sends email only; use webhook for text messages and calls",
        );
    }
    Some(pick)
}

fn validate_smtp(
    r: &RawSmtp,
    base: &Path,
    v: &mut Problems<'_>,
) -> (SmtpConfig, Option<(String, PathBuf)>) {
    let security = r.security.unwrap_or(d::SMTP_SECURITY);
    let host = r.host.clone().unwrap_or_default();
    if host.trim().is_empty() {
        v.err("notify.smtp.host", "missing: the mail server's host name");
    }
    let default_port = match security {
        SmtpSecurity::Tls => d::SMTP_TLS_PORT,
        _ => d::SMTP_PORT,
    };
    let port = v.int("notify.smtp.port", r.port, default_port, 1, 65535) as u16;
    let from = r.from.clone().unwrap_or_default();
    if from.parse::<lettre::message::Mailbox>().is_err() {
        v.err(
            "notify.smtp.from",
            format!("{from:?} is not a mailbox like \"Portcullis <auth@example.com>\""),
        );
    }
    let (password, file) = match (&r.password, &r.password_file) {
        (Some(_), Some(_)) => {
            v.err(
                "notify.smtp.password",
                "set password or password_file, not both",
            );
            (None, None)
        }
        (Some(p), None) => (Some(Secret(zeroize::Zeroizing::new(p.clone()))), None),
        (None, Some(f)) => (None, Some((f.clone(), resolve(base, f)))),
        (None, None) => (None, None),
    };
    if (password.is_some() || file.is_some()) != r.username.is_some() {
        v.err(
            "notify.smtp.username",
            "username and a password go together",
        );
    }
    let smtp = SmtpConfig {
        host,
        port,
        security,
        username: r.username.clone(),
        password,
        from,
        ca_file: r.ca_file.as_deref().map(|f| resolve(base, f)),
        timeout: v.duration(
            "notify.smtp.timeout",
            r.timeout,
            d::SMTP_TIMEOUT,
            Duration::from_secs(1),
        ),
    };
    (smtp, file)
}

fn validate_webhook(r: &RawWebhook, v: &mut Problems<'_>) -> Option<WebhookConfig> {
    let url = match r.url.as_deref().map(url::Url::parse) {
        Some(Ok(u)) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
        Some(_) => {
            v.err("notify.webhook.url", "must be an http(s) URL");
            None
        }
        None => {
            v.err("notify.webhook.url", "missing: where to POST messages");
            None
        }
    };
    let mut headers = Vec::new();
    for (k, val) in r.headers.iter().flatten() {
        if http::HeaderName::from_bytes(k.as_bytes()).is_err()
            || http::HeaderValue::from_str(val).is_err()
        {
            v.err(
                &format!("notify.webhook.headers.{k}"),
                "is not a valid header name and value",
            );
        } else {
            headers.push((k.clone(), Secret(zeroize::Zeroizing::new(val.clone()))));
        }
    }
    let body = r
        .body
        .clone()
        .unwrap_or_else(|| d::WEBHOOK_BODY.to_string());
    if let Err(e) = webhook_body::check(&body) {
        v.err("notify.webhook.body", e);
    }
    let content_type = r
        .content_type
        .clone()
        .unwrap_or_else(|| d::WEBHOOK_CONTENT_TYPE.into());
    if http::HeaderValue::from_str(&content_type).is_err() {
        v.err("notify.webhook.content_type", "is not a valid header value");
    }
    let timeout = v.duration(
        "notify.webhook.timeout",
        r.timeout,
        d::WEBHOOK_TIMEOUT,
        Duration::from_secs(1),
    );
    Some(WebhookConfig {
        url: url?,
        headers,
        content_type,
        body,
        timeout,
    })
}
