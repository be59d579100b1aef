//! The gateway's own pages under `server.portal_prefix`: plain request in,
//! [`Response`] out. No Pingora here; [`crate::proxy`] does the I/O.
//!
//! Every page that acts does the same three things: parse its form into a
//! typed struct ([`forms`]), call the flow's state machine in [`crate::auth`]
//! (sign-in, second step, enrolment, reset, password change), and render the
//! typed outcome. Handlers return `Result<Response, PortalError>`; the one
//! mapping from an error to a response is [`error::PortalError::respond`].
//! Redirects to a step of the sign-in come from [`crate::respond`].
//!
//! Pages: [`login`] (`/login`), [`twofactor`] (`/2fa`, `/2fa/send`,
//! `/2fa/setup`), [`reset`], [`password`], [`account`], [`help`]; here the
//! dispatch, sign-out, the unlock link, CAPTCHA media, forward-auth (`/verify`)
//! and the helpers they share (pre-session, CSRF/Origin, lock notices).

pub mod account;
pub mod error;
pub mod forms;
pub mod help;
pub mod login;
pub mod password;
pub mod reset;
pub mod twofactor;
/// The templates moved to [`crate::ui`] (the proxy's pages and messages use them too).
pub use crate::ui;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use minijinja::context;
use serde_json::json;

use crate::app::{App, SessionState};
use crate::cookies::new_pre_id;
use crate::notify::Notifier;
use crate::policy;
use error::PortalError;

/// Largest portal request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// The original request as told by a trusted forward-auth caller.
pub type Forwarded = crate::forwardauth::Facts;

pub struct Request<'a> {
    pub method: &'a Method,
    /// The path below the portal prefix, e.g. `/login`.
    pub sub_path: &'a str,
    pub query: &'a str,
    pub host: &'a str,
    /// `http` or `https`, as the client sees the gateway.
    pub scheme: &'a str,
    pub cookie_header: &'a str,
    pub accept_html: bool,
    /// The `Accept-Language` header ("" when absent).
    pub accept_language: &'a str,
    /// The `User-Agent` header ("" when absent), for the account page's sessions.
    pub user_agent: &'a str,
    pub client_ip: IpAddr,
    pub origin: Option<&'a str>,
    pub body: Bytes,
    /// Present only when the peer is a trusted proxy.
    pub forwarded: Option<Forwarded>,
}

/// Every answer the gateway writes itself; see [`crate::respond`].
pub use crate::respond::{urlencode, Response};

/// Headers on every page the gateway renders itself.
pub fn security_headers(r: &mut Response, allow_http: bool) {
    let form = if allow_http {
        "'self' https: http:"
    } else {
        "'self' https:"
    };
    r.header(
        "Content-Security-Policy",
        format!(
            "default-src 'none'; script-src {script}; style-src 'self'; img-src 'self' data:; \
             media-src 'self'; form-action {form}; frame-ancestors 'none'; base-uri 'none'",
            script = help::script_src()
        ),
    );
    r.header("X-Frame-Options", "DENY");
    r.header("Referrer-Policy", "no-referrer");
    r.header("X-Content-Type-Options", "nosniff");
    r.header("Cache-Control", "no-store");
}

pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A page or a JSON body, depending on who asks.
pub fn status_page(
    app: &App,
    accept_html: bool,
    status: u16,
    heading: &str,
    text: &str,
) -> Response {
    if accept_html {
        let prefix = app.config.load().server.portal_prefix.clone();
        let link = format!("{prefix}/login");
        let link =
            (status == 403 || status == 401).then_some((link.as_str(), "Sign in as someone else"));
        let home = (status == 404 || status >= 500).then_some("/");
        Response::html(
            status,
            app.ui.load().render(
                "message.html",
                context! {
                    heading => heading, text => text, status => status,
                    next => help::next_steps(status),
                    link => link.map(|l| l.0), link_text => link.map(|l| l.1),
                    home => home,
                },
            ),
        )
    } else {
        Response::json(status, json!({ "error": heading, "message": text }))
    }
}

/// Answers a portal request in the person's language (see [`crate::i18n`]): the
/// switcher's `?lang=` (remembered in a cookie), the cookie, or `Accept-Language`.
pub async fn handle(app: &Arc<App>, req: Request<'_>) -> Response {
    let cookie_name = lang_cookie(app);
    let asked = query_param(req.query, "lang");
    let texts = app.ui.load().texts.clone();
    let lang = language(
        app,
        asked.as_deref(),
        req.cookie_header,
        req.accept_language,
    );
    let query = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query)
        .map(|v| {
            let rest: Vec<_> = v.into_iter().filter(|(k, _)| k != "lang").collect();
            serde_urlencoded::to_string(rest).unwrap_or_default()
        })
        .unwrap_or_default();
    let current = crate::i18n::Current {
        lang,
        path: req.sub_path.to_string(),
        query,
    };
    let remember = asked.is_some().then(|| {
        format!(
            "{cookie_name}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly{}",
            texts.tag(lang),
            if app.config.load().session.secure {
                "; Secure"
            } else {
                ""
            }
        )
    });
    let mut resp = crate::i18n::scope(current, handle_in_language(app, req)).await;
    if let Some(c) = remember {
        resp.header("Set-Cookie", c);
    }
    resp
}

fn lang_cookie(app: &App) -> String {
    format!("{}_lang", app.cookies.pre_name)
}

/// The language for a page: `asked` (`?lang=`), else the switcher's cookie, else
/// `Accept-Language`.
pub fn language(
    app: &App,
    asked: Option<&str>,
    cookie_header: &str,
    accept_language: &str,
) -> usize {
    let kept = crate::i18n::cookie_tag(cookie_header, &lang_cookie(app));
    app.ui
        .load()
        .texts
        .negotiate(asked.or(kept.as_deref()), accept_language)
}

async fn handle_in_language(app: &Arc<App>, req: Request<'_>) -> Response {
    let cfg = app.config.load();
    let mut resp = match (req.method.as_str(), req.sub_path) {
        ("GET" | "HEAD", "/login") => {
            or_page(app, &req, login::page(app, &req, Default::default()).await)
        }
        ("GET" | "HEAD", "/help") => help::page(app, &req).await,
        ("GET" | "HEAD", "/account") => or_page(app, &req, account::page(app, &req).await),
        ("POST", "/account") => or_page(app, &req, account::post(app, &req).await),
        ("POST", "/login") => or_page(app, &req, login::post(app, &req).await),
        ("GET" | "HEAD", "/logout") => or_page(app, &req, logout_page(app, &req).await),
        ("POST", "/logout") => or_page(app, &req, logout_post(app, &req).await),
        ("GET" | "HEAD", "/verify") => return verify(app, &req).await,
        ("GET" | "HEAD", "/health") => return Response::json(200, json!({ "status": "ok" })),
        ("GET" | "HEAD", "/jwks.json") => return jwks(app),
        ("GET" | "HEAD", "/static/style.css") => {
            let mut r = Response::new(200, "text/css; charset=utf-8", app.ui.load().css.clone());
            r.header("Cache-Control", "public, max-age=300");
            return r;
        }
        ("GET" | "HEAD", "/static/logo") => match &app.ui.load().logo {
            Some((bytes, ct)) => {
                let mut r = Response::new(200, ct, bytes.clone());
                r.header("Cache-Control", "public, max-age=300");
                r.header("X-Content-Type-Options", "nosniff");
                return r;
            }
            None => status_page(
                app,
                req.accept_html,
                404,
                "Not found",
                "There is no page at this address.",
            ),
        },
        ("GET" | "HEAD", p) if p.starts_with("/captcha/") => {
            return or_page(app, &req, captcha_media(app, &req).await)
        }
        ("GET" | "HEAD", "/unlock") => unlock_page(app, &req),
        ("GET" | "HEAD", "/reset") => or_page(app, &req, reset::page(app, &req).await),
        ("GET" | "HEAD", "/password") => or_page(app, &req, password::page(app, &req).await),
        ("POST", "/password") => or_page(app, &req, password::post(app, &req).await),
        ("POST", "/reset") => or_page(app, &req, reset::post(app, &req).await),
        ("POST", "/unlock") => or_page(app, &req, unlock_post(app, &req).await),
        ("GET" | "HEAD", "/2fa") => or_page(app, &req, twofactor::page(app, &req).await),
        ("POST", "/2fa") => or_page(app, &req, twofactor::post(app, &req).await),
        ("POST", "/2fa/send") => or_page(app, &req, twofactor::send(app, &req).await),
        ("GET" | "HEAD", "/2fa/setup") => {
            or_page(app, &req, twofactor::setup_page(app, &req).await)
        }
        ("POST", "/2fa/setup") => or_page(app, &req, twofactor::setup_post(app, &req).await),
        (
            _,
            "/login" | "/logout" | "/verify" | "/health" | "/jwks.json" | "/2fa" | "/2fa/send"
            | "/2fa/setup" | "/unlock" | "/reset" | "/password" | "/help" | "/account",
        ) => {
            let mut r = status_page(
                app,
                req.accept_html,
                405,
                "Method not allowed",
                "This address does not accept that method.",
            );
            r.header(
                "Allow",
                match req.sub_path {
                    "/verify" | "/health" | "/jwks.json" | "/help" => "GET, HEAD",
                    "/2fa/send" => "POST",
                    _ => "GET, HEAD, POST",
                },
            );
            r
        }
        _ => status_page(
            app,
            req.accept_html,
            404,
            "Not found",
            "There is no page at this address.",
        ),
    };
    security_headers(&mut resp, !cfg.session.secure);
    resp
}

/// The pre-session id from the cookie, or a new one with its `Set-Cookie`.
pub(crate) fn pre_session(app: &App, req: &Request<'_>) -> (String, Option<String>) {
    match app
        .cookies
        .read(req.cookie_header, &app.cookies.pre_name)
        .filter(|v| v.len() == 32)
    {
        Some(id) => (id, None),
        None => {
            let id = new_pre_id();
            let set = app.cookies.pre_cookie(&id);
            (id, Some(set))
        }
    }
}

pub(crate) fn origin_ok(req: &Request<'_>) -> bool {
    // Browsers send Origin on POST; when it names a site, it must be this host. Our
    // pages set `Referrer-Policy: no-referrer`, under which browsers send the opaque
    // `Origin: null` for their own form posts (found by the browser test), so "null"
    // can't be refused; the CSRF token (bound to the cookie) is the real check.
    match req.origin {
        None | Some("null") => true,
        Some(o) => {
            url::Url::parse(o)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                .as_deref()
                == Some(req.host)
        }
    }
}

/// The pre-session of a form posted before sign-in, when its CSRF `token` and
/// `Origin` are right; `None` means [`PortalError::FormExpired`].
pub(crate) fn posted_pre(app: &App, req: &Request<'_>, token: &str) -> Option<String> {
    let pre = app.cookies.read(req.cookie_header, &app.cookies.pre_name)?;
    (app.cookies.csrf_ok(&pre, token) && origin_ok(req)).then_some(pre)
}

/// The known-device cookie for `user` after a complete sign-in (keeping this
/// browser's device id when it has one), unless known devices are off.
pub(crate) fn device_cookie(app: &App, req: &Request<'_>, user: &str) -> Option<String> {
    let days = app.config.load().defense.known_device_days;
    (days > 0).then(|| {
        let dev = app
            .cookies
            .known_device(req.cookie_header, user)
            .unwrap_or_else(new_pre_id);
        app.cookies.device_cookie(user, &dev, days)
    })
}

/// Tells the owner their account was locked, with a single-use unlock link
/// (signed, stored for as long as the lock lasts, consumed atomically);
/// `link_base` is where the unlock link points.
pub(crate) async fn send_lock_notice_to(
    app: &App,
    link_base: &str,
    client_ip: IpAddr,
    user: &crate::users::User,
    dur: std::time::Duration,
) {
    if user.email.is_empty() {
        return;
    }
    let cfg = app.config.load();
    let id = new_pre_id();
    let token = format!("{id}.{}", app.cookies.csrf_token(&format!("unlock|{id}")));
    let ttl = dur.max(std::time::Duration::from_secs(600));
    if let Err(e) = app
        .store
        .set(&crate::store::keys::unlock(&id), user.name.as_bytes(), ttl)
        .await
    {
        tracing::error!(error = %e, "lock notice not sent: store unavailable");
        return;
    }
    let link = format!(
        "{link_base}{}/unlock?token={token}",
        cfg.server.portal_prefix
    );
    let minutes = dur.as_secs().div_ceil(60);
    let now = app.clock.now();
    let time = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(now),
    )
    .to_string()
    .replace('T', " ")
    .replace('Z', " UTC");
    let ctx = context! { name => user.shown_name(), client => client_ip.to_string(), time => time, minutes => minutes, link => link };
    let msg = match compose(
        app,
        "msg_lock_notice.txt",
        ctx,
        crate::notify::Channel::Email,
        &user.email,
        "lock_notice",
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "lock notice template failed");
            return;
        }
    };
    match app.notifier.load().send(&msg).await {
        Ok(()) => app.audit("lock_notice_sent", json!({ "user": user.name })),
        Err(e) => tracing::error!(error = %e, user = %user.name, "lock notice not delivered"),
    }
}

/// Where links in messages point: `server.public_url`, else the host asked.
pub(crate) fn base_url(app: &App, req: &Request<'_>) -> String {
    match &app.config.load().server.public_url {
        Some(u) => u.as_str().trim_end_matches('/').to_string(),
        None => format!("{}://{}", req.scheme, req.host),
    }
}

/// A message from text template `template` (its first line `Subject: ...`), with
/// `service` (`otp.totp_issuer`) added to `ctx`.
pub(crate) fn compose(
    app: &App,
    template: &str,
    ctx: minijinja::Value,
    channel: crate::notify::Channel,
    to: &str,
    kind: &str,
) -> Result<crate::notify::Message, ui::TemplateError> {
    let cfg = app.config.load();
    let ctx = context! { service => &cfg.otp.totp_issuer, ..ctx };
    let default_subject = format!("A message from {}", cfg.otp.totp_issuer);
    let (subject, text) = app
        .ui
        .load()
        .message_text(template, ctx, &default_subject)?;
    Ok(crate::notify::Message {
        channel,
        to: to.into(),
        subject,
        text,
        kind: kind.into(),
        ts: app.clock.now(),
        code: None,
    })
}

fn token_parts<'a>(app: &App, token: &'a str) -> Option<&'a str> {
    let (id, sig) = token.split_once('.')?;
    (id.len() == 32
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && app.cookies.csrf_ok(&format!("unlock|{id}"), sig))
    .then_some(id)
}

/// `GET /unlock?token=`: a confirmation form (mail scanners follow GET links, so
/// nothing happens until the person presses the button).
fn unlock_page(app: &App, req: &Request<'_>) -> Response {
    let token = query_param(req.query, "token").unwrap_or_default();
    if token_parts(app, &token).is_none() {
        return status_page(
            app,
            true,
            400,
            "Link not valid",
            "This unlock link is not valid. Use the link from your most recent email.",
        );
    }
    let (pre, set_cookie) = pre_session(app, req);
    let prefix = app.config.load().server.portal_prefix.clone();
    let body = format!(
        "<form method=\"post\" action=\"{prefix}/unlock\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\"><button type=\"submit\">Unlock my account</button></form>",
        app.cookies.csrf_token(&pre),
        token
    );
    let html = app.ui.load().render(
        "message.html",
        context! { heading => "Unlock your account", text => "Press the button to unlock your account now.", form => body },
    );
    let mut r = Response::html(200, html);
    if let Some(c) = set_cookie {
        r.header("Set-Cookie", c);
    }
    r
}

async fn unlock_post(app: &App, req: &Request<'_>) -> Result<Response, PortalError> {
    let f: forms::UnlockForm = forms::parse_or_empty(&req.body);
    posted_pre(app, req, &f.csrf).ok_or(PortalError::FormExpired)?;
    let Some(id) = token_parts(app, &f.token) else {
        return Ok(status_page(
            app,
            true,
            400,
            "Link not valid",
            "This unlock link is not valid.",
        ));
    };
    let user = match app.store.take(&crate::store::keys::unlock(id)).await? {
        Some(u) => String::from_utf8_lossy(&u).to_string(),
        None => {
            return Ok(status_page(
                app,
                true,
                400,
                "Link expired",
                "This unlock link has expired or was already used.",
            ))
        }
    };
    app.defense.clear(&user).await?;
    app.audit(
        "unlocked",
        json!({ "target": user, "by": "owner_link", "client": req.client_ip.to_string() }),
    );
    Ok(status_page(
        app,
        true,
        200,
        "Account unlocked",
        "Your account is unlocked. If you didn't try to sign in recently, change your password.",
    ))
}

/// `/captcha/{id}.png` and `.wav`, only for the pre-session the challenge belongs to.
async fn captcha_media(app: &App, req: &Request<'_>) -> Result<Response, PortalError> {
    // Each answer is a rendering (a WAV takes ~50 ms of CPU): counted per client on
    // the CAPTCHA limit (the one new challenges are made under, not the sign-in
    // attempts' `ip_per_minute`), and bounded per challenge (see `Captchas::png`).
    let cfg = app.config.load();
    app.defense
        .check_challenge_rate(&cfg.defense, req.client_ip)
        .map_err(PortalError::TooMany)?;
    let name = req.sub_path.trim_start_matches("/captcha/");
    let pre = app
        .cookies
        .read(req.cookie_header, &app.cookies.pre_name)
        .unwrap_or_default();
    let (id, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let media = match ext {
        "png" => app
            .captchas
            .png(id, &pre)
            .await
            .map(|b| b.map(|b| (b, "image/png"))),
        "wav" => app
            .captchas
            .wav(id, &pre)
            .await
            .map(|b| b.map(|b| (b, "audio/wav"))),
        _ => Ok(None),
    };
    Ok(match media? {
        Some((bytes, ct)) => {
            let mut r = Response::new(200, ct, bytes);
            r.header("Cache-Control", "no-store");
            r.header("X-Content-Type-Options", "nosniff");
            r
        }
        None => status_page(
            app,
            false,
            404,
            "Not found",
            "This challenge has expired; reload the sign-in page.",
        ),
    })
}

/// The flow machines' dependencies, from the gateway's state and `cfg` (one
/// snapshot of the config for the whole request).
pub(crate) fn deps<'a>(
    app: &'a App,
    cfg: &'a crate::config::Config,
) -> crate::auth::flow::Deps<'a> {
    crate::auth::flow::Deps {
        config: cfg,
        store: &*app.store,
        accounts: &app.accounts,
        sessions: &app.sessions,
        hasher: &app.hasher,
        defense: &app.defense,
        captchas: &app.captchas,
        sealer: &app.sealer,
        clock: &*app.clock,
        metrics: &app.metrics,
    }
}

/// What the flows may know of the request: its cookies and its client.
pub(crate) fn browser<'a>(app: &'a App, req: &Request<'a>) -> crate::auth::flow::Browser<'a> {
    crate::auth::flow::Browser {
        cookies: &app.cookies,
        cookie_header: req.cookie_header,
        client: req.client_ip,
    }
}

/// The per-address limit on forms that guess (sign-in, codes, passwords): runs
/// before any store or argon2 work.
pub(crate) fn rate(app: &App, req: &Request<'_>) -> Result<(), PortalError> {
    let cfg = app.config.load();
    app.defense
        .check_rate(&cfg.defense, req.client_ip)
        .map_err(PortalError::TooMany)
}

/// Answers a handler's result: its page, or its error's one mapping.
fn or_page(app: &App, req: &Request<'_>, r: Result<Response, PortalError>) -> Response {
    r.unwrap_or_else(|e| e.respond(app, req))
}

/// Tells the owner of an account a failure just locked (awaited: the second
/// step's lock tells someone has the password). See [`send_lock_notice_to`].
pub(crate) async fn send_lock_notice(
    app: &App,
    req: &Request<'_>,
    locked: Option<&crate::auth::flow::Locked>,
) {
    if let Some(l) = locked {
        if let Some(u) = &l.notify {
            send_lock_notice_to(app, &base_url(app, req), req.client_ip, u, l.duration).await
        }
    }
}

/// A fresh challenge for this pre-session when `wanted` (counted as shown):
/// 429 when this client made too many challenges lately (each is a store
/// entry), 503 when the store is unavailable.
pub(crate) async fn new_captcha(
    app: &App,
    req: &Request<'_>,
    pre: &str,
    wanted: bool,
) -> Result<Option<String>, PortalError> {
    if !wanted {
        return Ok(None);
    }
    let cfg = app.config.load();
    app.defense
        .check_challenge_rate(&cfg.defense, req.client_ip)
        .map_err(PortalError::TooMany)?;
    let id = app.captchas.create(pre).await?;
    app.metrics.captcha.with_label_values(&["shown"]).inc();
    Ok(Some(id))
}

/// Changes one account in the account store (committed whole or not at all;
/// the database announces it to every gateway). `what` names the change for the
/// log and the person ("Your password was not changed."). Returns the account
/// as stored.
pub(crate) async fn update_user(
    app: &App,
    user: &str,
    what: &'static str,
    change: impl FnOnce(&mut crate::users::User) + Send + 'static,
) -> Result<Arc<crate::users::User>, PortalError> {
    app.accounts
        .modify(user, move |u| {
            change(u);
            Ok(())
        })
        .await
        .map_err(|why| PortalError::NotChanged { what, why })
}

async fn logout_page(app: &App, req: &Request<'_>) -> Result<Response, PortalError> {
    let cfg = app.config.load();
    let state = app.session_state(req.cookie_header).await?;
    let (signed_in, user, csrf) = match &state {
        SessionState::Valid { id, user, .. } => {
            (true, user.name.clone(), app.cookies.csrf_token(id.as_str()))
        }
        _ => (false, String::new(), String::new()),
    };
    Ok(Response::html(
        200,
        app.ui.load().render(
            "logout.html",
            context! { signed_in => signed_in, user => user, csrf => csrf, prefix => &cfg.server.portal_prefix },
        ),
    ))
}

async fn logout_post(app: &App, req: &Request<'_>) -> Result<Response, PortalError> {
    let f: forms::CsrfOnly = forms::parse_or_empty(&req.body);
    let state = app.session_state(req.cookie_header).await?;
    if let SessionState::Valid { id, record, .. } = &state {
        if !app.cookies.csrf_ok(id.as_str(), &f.csrf) || !origin_ok(req) {
            return Err(PortalError::FormExpired);
        }
        app.sessions.remove(&id.handle(), &record.user).await?;
        app.audit(
            "signout",
            json!({ "user": record.user, "client": req.client_ip.to_string() }),
        );
    }
    let cfg = app.config.load();
    let mut r = Response::html(
        200,
        app.ui.load().render(
            "logout.html",
            context! { signed_in => false, prefix => &cfg.server.portal_prefix },
        ),
    );
    for c in app.cookies.clear(&app.cookies.name, req.host) {
        r.header("Set-Cookie", c);
    }
    Ok(r)
}

/// `GET /jwks.json`: the public keys of the identity assertion. Public, cacheable.
fn jwks(app: &App) -> Response {
    let mut r = Response::new(200, "application/json", app.assertion.load().jwks());
    r.header("Cache-Control", "public, max-age=300");
    r.header("X-Content-Type-Options", "nosniff");
    r
}

/// Forward-auth: decides for the original request described by a trusted proxy
/// (see [`crate::forwardauth`]). Untrusted callers and missing, malformed or
/// conflicting facts never get a 200: they get 403 / 400 with the reason, and a
/// warning in the log, so a misconfigured proxy fails closed and visibly.
async fn verify(app: &Arc<App>, req: &Request<'_>) -> Response {
    let cfg = app.config.load();
    let refused = |status: u16, error: &str, message: String| {
        tracing::warn!(client = %req.client_ip, status, error, reason = %message, "forward-auth request refused");
        Response::json(status, json!({ "error": error, "message": message }))
    };
    let Some(facts) = &req.forwarded else {
        return refused(
            403,
            "untrusted_proxy",
            "forward-auth answers only proxies listed in server.trusted_proxies".into(),
        );
    };
    let orig = match crate::forwardauth::resolve(facts) {
        Ok(o) => o,
        Err(e) => return refused(400, "bad_forward_auth_request", e.to_string()),
    };
    let Some(site) = cfg.site(&orig.host) else {
        return refused(
            403,
            "unknown_site",
            format!("{:?} is not a [[site]] of this gateway", orig.host),
        );
    };
    let scheme = orig.scheme.unwrap_or(req.scheme);
    // As for proxied requests: a store that can't be read counts as no session,
    // and fails closed unless the rule needs none (see `crate::respond`).
    let (state, store_down) = match app.session_state(req.cookie_header).await {
        Ok(s) => (s, false),
        Err(e) => {
            tracing::warn!(error = %e, "store unavailable; failing closed");
            (SessionState::None, true)
        }
    };
    let overridden = policy::method_override(&orig.method, orig.query.as_deref());
    let preq = policy::Request {
        host: &orig.host,
        path: &orig.path,
        method: &orig.method,
        client: req.client_ip,
        overridden: &overridden,
    };
    let decision = crate::app::decide(&cfg, &state, &preq);
    let redirect = query_param(req.query, "redirect").is_some_and(|v| v == "1" || v == "true");
    let original = format!("{scheme}://{}{}", orig.authority, orig.path_and_query());
    let portal = match &cfg.server.public_url {
        Some(u) => format!(
            "{}{}",
            u.as_str().trim_end_matches('/'),
            cfg.server.portal_prefix
        ),
        None => format!("{scheme}://{}{}", orig.authority, cfg.server.portal_prefix),
    };
    let back = crate::respond::Back {
        portal: &portal,
        here: &original,
        query: None,
    };
    let client = crate::respond::Client::ForwardAuth { redirect };
    match crate::respond::decision(client, decision, store_down, None, back) {
        crate::respond::Answer::Allow => {
            let mut r = Response::new(200, "text/plain; charset=utf-8", "ok");
            // Identity only for complete sign-ins (not one still waiting for its second step).
            // Anyone else gets the same names, empty: a proxy that copies them on a 2xx
            // (Caddy 2.6's `copy_headers` writes its placeholder text for a missing one)
            // then hands the application nothing rather than something.
            // The names are the original request's site's.
            match state.complete() {
                Some((u, factors)) => {
                    for (k, v) in site.identity.values(u) {
                        r.header(k.as_str(), v);
                    }
                    if let Some(h) = &site.identity.assertion {
                        if let Some(t) = app.assertion_token(&cfg, &orig.host, u, factors) {
                            r.header(h.as_str(), t);
                        }
                    }
                }
                None => {
                    for k in site.identity.names() {
                        r.header(k.as_str(), String::new());
                    }
                }
            }
            r
        }
        crate::respond::Answer::Reply(r) => r,
        // (Forward-auth answers are all built by `respond`; a page would be a bug.)
        crate::respond::Answer::Page(m) => {
            Response::json(m.status, json!({ "error": m.heading, "message": m.text }))
        }
    }
}
