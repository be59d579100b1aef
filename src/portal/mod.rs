//! The gateway's own pages under `server.portal_prefix`: plain request in,
//! [`Response`] out. No Pingora here; [`crate::proxy`] does the I/O.
//!
//! Sign-in flow (this issue: the password step; CAPTCHA and second factor plug in
//! between the password check and the session):
//!
//! ```text
//!  GET  /login ─> pre-session cookie + CSRF token ─> form
//!  POST /login ─ CSRF bad ──────────────────────────> 403
//!              ─ password > 1 KiB ──────────────────> 400 form
//!              ─ hash pool full ────────────────────> 503 + Retry-After
//!              ─ unknown id / wrong pw / disabled ──> 401 form, one message for all
//!              ─ ok ─> new session id (no fixation) ─> 303 rd (validated) or /
//! ```

pub mod account;
pub mod help;
pub mod password;
pub mod reset;
pub mod twofactor;
/// The templates moved to [`crate::ui`] (the proxy's pages and messages use them too).
pub use crate::ui;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use minijinja::context;
use serde_json::json;

use crate::app::{App, SessionState};
use crate::auth::password::{PasswordError, MAX_PASSWORD_BYTES};
use crate::cookies::new_pre_id;
use crate::defense::Standing;
use crate::notify::Notifier;
use crate::policy;
use crate::users::Identifier;

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

pub(crate) fn form(body: &[u8]) -> Option<HashMap<String, String>> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()
        .map(|v| v.into_iter().collect())
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
        ("GET" | "HEAD", "/login") => login_page(app, &req, FormState::default()).await,
        ("GET" | "HEAD", "/help") => help::page(app, &req).await,
        ("GET" | "HEAD", "/account") => account::page(app, &req).await,
        ("POST", "/account") => account::post(app, &req).await,
        ("POST", "/login") => login_post(app, &req).await,
        ("GET" | "HEAD", "/logout") => logout_page(app, &req).await,
        ("POST", "/logout") => logout_post(app, &req).await,
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
        ("GET" | "HEAD", p) if p.starts_with("/captcha/") => return captcha_media(app, &req).await,
        ("GET" | "HEAD", "/unlock") => unlock_page(app, &req).await,
        ("GET" | "HEAD", "/reset") => reset::page(app, &req).await,
        ("GET" | "HEAD", "/password") => password::page(app, &req).await,
        ("POST", "/password") => password::post(app, &req).await,
        ("POST", "/reset") => reset::post(app, &req).await,
        ("POST", "/unlock") => unlock_post(app, &req).await,
        ("GET" | "HEAD", "/2fa") => twofactor::page(app, &req).await,
        ("POST", "/2fa") => twofactor::post(app, &req).await,
        ("POST", "/2fa/send") => twofactor::send(app, &req).await,
        ("GET" | "HEAD", "/2fa/setup") => twofactor::setup_page(app, &req).await,
        ("POST", "/2fa/setup") => twofactor::setup_post(app, &req).await,
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

/// What the sign-in form should show besides the fields.
#[derive(Default)]
struct FormState<'a> {
    error: Option<&'a str>,
    status: u16,
    rd: Option<&'a str>,
    identifier: &'a str,
    /// Show a CAPTCHA: bound to the pre-session, created here.
    captcha: bool,
}

async fn login_page(app: &App, req: &Request<'_>, st: FormState<'_>) -> Response {
    let (pre, set_cookie) = pre_session(app, req);
    let rd = st
        .rd
        .map(str::to_string)
        .or_else(|| query_param(req.query, "rd"))
        .and_then(|rd| app.redirects.load().validate(&rd))
        .unwrap_or_default();
    let notice = (st.error.is_none() && query_param(req.query, "expired").is_some()).then_some(
        "Your session has ended: you were away for a while, or signed out elsewhere. \
             Sign in again to continue where you were.",
    );
    let cfg = app.config.load();
    // A client that has already failed enough gets the CAPTCHA on the first view too.
    let captcha = st.captcha
        || match app
            .defense
            .standing(&cfg.defense, None, None, req.client_ip)
            .await
        {
            Ok(s) => s.captcha,
            Err(_) => return unavailable(app, req),
        };
    let captcha_id = match new_captcha(app, req, &pre, captcha).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let html = app.ui.load().render(
        "login.html",
        context! {
            csrf => app.cookies.csrf_token(&pre),
            rd => rd,
            error => st.error,
            // Once the CAPTCHA is asked for, the account may be locked (never said): the way out.
            locked_hint => st.error.is_some() && (st.error == Some(WRONG_LOCKED_HINT) || captcha_id.is_some()),
            notice => notice,
            identifier => st.identifier,
            captcha_id => captcha_id,
            prefix => &cfg.server.portal_prefix,
        },
    );
    let mut r = Response::html(if st.status == 0 { 200 } else { st.status }, html);
    if let Some(c) = set_cookie {
        r.header("Set-Cookie", c);
    }
    r
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

/// The pre-session of a form posted before sign-in, when its CSRF token and `Origin`
/// are right; `None` means answer with [`forbidden_form`].
pub(crate) fn posted_pre(
    app: &App,
    req: &Request<'_>,
    f: &HashMap<String, String>,
) -> Option<String> {
    let pre = app.cookies.read(req.cookie_header, &app.cookies.pre_name)?;
    let token = f.get("csrf").map(String::as_str).unwrap_or("");
    (app.cookies.csrf_ok(&pre, token) && origin_ok(req)).then_some(pre)
}

pub(crate) fn forbidden_form(app: &App, req: &Request<'_>) -> Response {
    status_page(
        app,
        req.accept_html,
        403,
        "This form has expired",
        "For your security the form could not be accepted. Go back, reload the page and try again.",
    )
}

const WRONG: &str = "The identifier or password is not right, or this account can't sign in here.";
const WRONG_LOCKED_HINT: &str = "The identifier or password is not right, or this account can't sign in here \
     right now. After many failed attempts an account is locked for a while: wait and try again later, \
     reset your password, or look for an email from us.";
pub(crate) const CAPTCHA_WRONG: &str =
    "Please type the characters shown in the picture, or the digits you hear.";

/// 429 for one client over its sign-in rate.
pub(crate) fn too_many(app: &App, req: &Request<'_>, wait: std::time::Duration) -> Response {
    app.metrics.rate_limited.inc();
    let secs = wait.as_secs().max(1);
    let mut r = status_page(
        app,
        req.accept_html,
        429,
        "Too many attempts",
        &app.ui.load().texts.text(
            crate::i18n::current().lang,
            "status-too-many-text",
            &[("secs", fluent_bundle::FluentValue::from(secs))],
        ),
    );
    r.header("Retry-After", secs.to_string());
    r
}

async fn login_post(app: &Arc<App>, req: &Request<'_>) -> Response {
    let cfg = app.config.load();
    // Floods stop here, before any store or argon2 work.
    if let Err(wait) = app.defense.check_rate(&cfg.defense, req.client_ip) {
        return too_many(app, req, wait);
    }
    let Some(f) = form(&req.body) else {
        return status_page(
            app,
            req.accept_html,
            400,
            "Bad request",
            "The form could not be read.",
        );
    };
    let Some(pre) = posted_pre(app, req, &f) else {
        return forbidden_form(app, req);
    };
    let rd = f.get("rd").cloned().unwrap_or_default();
    let identifier = f.get("identifier").map(|s| s.trim()).unwrap_or("");
    let password = f.get("password").map(String::as_str).unwrap_or("");
    let again = |error, status, captcha| FormState {
        error: Some(error),
        status,
        rd: Some(&rd),
        identifier,
        captcha,
    };
    let problem = if password.len() > MAX_PASSWORD_BYTES {
        Some("That password is too long (1024 bytes at most).")
    } else if identifier.is_empty() || password.is_empty() {
        Some("Enter your identifier and your password.")
    } else {
        None
    };
    if let Some(p) = problem {
        return login_page(app, req, again(p, 400, false)).await;
    }
    let (id, user) = match find_account(app, cfg.ui.default_region.as_deref(), identifier).await {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in: accounts unavailable");
            return accounts_unavailable(app, req);
        }
    };
    let device = user
        .as_ref()
        .and_then(|u| app.cookies.known_device(req.cookie_header, &u.name));
    let ladder_name = ladder_name(user.as_deref(), id.as_ref(), identifier);
    let account_key = crate::defense::account_key(&cfg.defense, &ladder_name, req.client_ip);
    let account = account_key.as_str();
    // Reserved before anything slow, so concurrent attempts can't race past the thresholds.
    let attempt = match app
        .defense
        .begin_attempt(&cfg.defense, account, device.as_deref(), req.client_ip)
        .await
    {
        Ok(a) => a,
        Err(_) => return unavailable(app, req),
    };
    let standing = attempt.standing;
    let a = SignInAttempt {
        id_key: id.as_ref().map(Identifier::key),
        identifier,
        rd: &rd,
        user,
        device,
        account,
        attempt,
    };
    if standing.locked_for.is_some() {
        // Locked (or too many attempts at once): the same answer, after the same work,
        // as a wrong password; the lock is neither revealed nor extended.
        if let Err(PasswordError::Busy) = app.hasher.verify(password, None).await {
            return busy(app, req.accept_html);
        }
        return a.refused_locked(app, req, a.attempt.reserved()).await;
    }
    if standing.captcha {
        if let Err(r) = a.solve_captcha(app, req, &pre, &f).await {
            return r;
        }
    }
    let ok = match a.password_right(app, req, password).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let user = match &a.user {
        Some(u) if ok && u.is_active() => u.clone(),
        // The password was right: a suspended or closed account is told so (and
        // only then, so the page never reveals whether an identifier exists).
        Some(u) if ok && !u.closed && !u.suspended.is_empty() => {
            return a.not_active(app, req, u, "suspended").await
        }
        Some(u) if ok && u.closed => return a.not_active(app, req, u, "closed").await,
        _ => return a.failed(app, req, "password", true, false).await,
    };
    password::rehash_if_needed(app, &user, password);
    // A concurrent failure may have locked the account while the hash ran.
    match app.defense.locked_now(&a.attempt).await {
        Ok(None) => {}
        Ok(Some(_)) => return a.refused_locked(app, req, false).await,
        Err(_) => return unavailable(app, req),
    }
    a.signed_in(app, req, &user).await
}

/// The account `typed` names: as typed, else (with `[ui] default_region`) as a
/// national phone number of that region, so a user name made of digits still wins.
pub(crate) async fn find_account(
    app: &App,
    region: Option<&str>,
    typed: &str,
) -> Result<(Option<Identifier>, Option<Arc<crate::users::User>>), crate::users::store::AccountError>
{
    let id = Identifier::parse(typed);
    if let Some(i) = &id {
        if let Some(u) = app.accounts.find(i).await? {
            return Ok((id, Some(u)));
        }
    }
    match region.and_then(|r| help::national_phone(typed, r)) {
        Some(p) => {
            let pid = Identifier::Phone(p);
            let u = app.accounts.find(&pid).await?;
            Ok((Some(pid), u))
        }
        None => Ok((id, None)),
    }
}

/// The name an attempt is counted under. Unknown identifiers have a ladder too
/// (`?email:...`, `?name:...`), so CAPTCHA and lock behave alike for accounts that
/// exist and ones that don't: the ladder doesn't tell which is which.
fn ladder_name(user: Option<&crate::users::User>, id: Option<&Identifier>, typed: &str) -> String {
    match (user, id) {
        (Some(u), _) => u.name.clone(),
        (None, Some(i)) => format!("?{}", i.key()),
        (None, None) => format!(
            "?raw:{}",
            typed.to_lowercase().chars().take(64).collect::<String>()
        ),
    }
}

/// One sign-in attempt, reserved on its ladder: who it is for and how it ends.
struct SignInAttempt<'a> {
    /// The identifier's key (`email:...`), for the audit log; `None` if unparsable.
    id_key: Option<String>,
    /// As typed, to show again on the form.
    identifier: &'a str,
    rd: &'a str,
    /// The account, when the identifier names one.
    user: Option<Arc<crate::users::User>>,
    /// This browser's known-device id for the account.
    device: Option<String>,
    /// The ladder key (account, or `?identifier` for no account).
    account: &'a str,
    attempt: crate::defense::Attempt,
}

impl SignInAttempt<'_> {
    /// The password against the account's hash (a dummy hash for no account, so
    /// both take the same time). `Err`: not an answer about the password (the
    /// reservation is given back).
    async fn password_right(
        &self,
        app: &App,
        req: &Request<'_>,
        password: &str,
    ) -> Result<bool, Response> {
        let verified = app
            .hasher
            .verify(password, self.user.as_ref().map(|u| u.password.as_str()))
            .await;
        match verified {
            Ok(ok) => Ok(ok),
            Err(e) => {
                let _ = app.defense.attempt_passed(&self.attempt, false).await;
                if let PasswordError::Busy = e {
                    app.metrics.signins.with_label_values(&["busy"]).inc();
                    return Err(busy(app, req.accept_html));
                }
                tracing::error!(error = %e, "password verification failed");
                Err(status_page(
                    app,
                    req.accept_html,
                    500,
                    "Something went wrong",
                    "Please try again.",
                ))
            }
        }
    }

    /// The posted CAPTCHA answer for pre-session `pre`; a missing or wrong one is a
    /// failure (`Err`: the form again).
    async fn solve_captcha(
        &self,
        app: &Arc<App>,
        req: &Request<'_>,
        pre: &str,
        f: &HashMap<String, String>,
    ) -> Result<(), Response> {
        let cid = f.get("captcha_id").map(String::as_str).unwrap_or("");
        let answer = f.get("captcha").map(String::as_str).unwrap_or("");
        match app.captchas.solve(cid, pre, answer).await {
            Ok(true) => {
                app.metrics.captcha.with_label_values(&["solved"]).inc();
                Ok(())
            }
            Ok(false) => {
                app.metrics.captcha.with_label_values(&["failed"]).inc();
                app.audit(
                    "captcha_failed",
                    json!({ "client": req.client_ip.to_string(), "missing": answer.is_empty() }),
                );
                Err(self.failed(app, req, "captcha", true, true).await)
            }
            Err(_) => Err(unavailable(app, req)),
        }
    }

    /// A right password for a suspended or closed account: not counted as a failure
    /// (the password was right), recorded, and explained.
    async fn not_active(
        &self,
        app: &Arc<App>,
        req: &Request<'_>,
        user: &crate::users::User,
        what: &'static str,
    ) -> Response {
        let _ = app.defense.attempt_passed(&self.attempt, false).await;
        let client = req.client_ip.to_string();
        app.metrics.signins.with_label_values(&["failure"]).inc();
        app.accounts
            .record_later(&user.name, "signin_refused", &client, what);
        app.audit(
            "signin_refused",
            json!({ "user": user.name, "client": client, "status": what }),
        );
        let (title, text) = if what == "closed" {
            (
                "Account closed",
                "This account is closed and can no longer sign in. If you think this is a mistake, contact your administrator.".to_string(),
            )
        } else {
            (
                "Account suspended",
                format!(
                    "This account is suspended: {}. Contact your administrator to have it enabled again.",
                    user.suspended.trim_end_matches('.')
                ),
            )
        };
        status_page(app, req.accept_html, 403, title, &text)
    }

    /// Locked or over the threshold: audited, counted when `count`, answered like a
    /// wrong password.
    async fn refused_locked(&self, app: &Arc<App>, req: &Request<'_>, count: bool) -> Response {
        app.audit(
            "signin_refused_locked",
            json!({ "identifier": self.id_key, "client": req.client_ip.to_string() }),
        );
        self.failed(app, req, "locked", count, true).await
    }

    /// A failed attempt: counted (when `count`) on the ladder, audited; the owner is
    /// told (off the request path) when it locked the account; the form again.
    async fn failed(
        &self,
        app: &Arc<App>,
        req: &Request<'_>,
        reason: &'static str,
        count: bool,
        captcha_next: bool,
    ) -> Response {
        app.metrics.signins.with_label_values(&["failure"]).inc();
        let cfg = app.config.load();
        let client = req.client_ip.to_string();
        let known = self.user.is_some();
        let mut locked = None;
        if count {
            match app
                .defense
                .attempt_failed(&cfg.defense, &self.attempt, req.client_ip)
                .await
            {
                Ok(l) => locked = l,
                Err(_) => return unavailable(app, req),
            }
        }
        app.audit(
            "signin_failed",
            json!({ "identifier": self.id_key, "known": known, "client": client, "reason": reason }),
        );
        if let Some(u) = &self.user {
            app.accounts
                .record_later(&u.name, "signin_failed", &client, reason);
        }
        if let Some(dur) = locked {
            app.metrics.locks.inc();
            if let (Some(u), None) = (&self.user, &self.device) {
                // Off the request path: the answer takes as long whether or not the
                // identifier is an account with an email address.
                let (app2, u) = (app.clone(), u.clone());
                let link_base = base_url(app, req);
                let client_ip = req.client_ip;
                // In the language of the page, though sent after the answer.
                let lang = crate::i18n::current();
                app.send_later(async move {
                    crate::i18n::scope(
                        lang,
                        send_lock_notice_to(&app2, &link_base, client_ip, &u, dur),
                    )
                    .await;
                });
            }
            app.audit(
                "account_locked",
                json!({ "user": self.account, "client": client, "seconds": dur.as_secs(), "known_device": self.device.is_some(), "known": known }),
            );
        }
        let standing = app
            .defense
            .standing(
                &cfg.defense,
                Some(self.account),
                self.device.as_deref(),
                req.client_ip,
            )
            .await
            .unwrap_or(Standing {
                locked_for: None,
                captcha: true,
            });
        let captcha = captcha_next || standing.captcha;
        let msg = match (reason, captcha) {
            ("captcha", _) => CAPTCHA_WRONG,
            (_, true) => WRONG_LOCKED_HINT,
            (_, false) => WRONG,
        };
        login_page(
            app,
            req,
            FormState {
                error: Some(msg),
                status: 401,
                rd: Some(self.rd),
                identifier: self.identifier,
                captcha,
            },
        )
        .await
    }

    /// The right password: a new session (no fixation), then the second step when
    /// one is due, else `rd`. The ladder starts over only for a complete sign-in.
    async fn signed_in(
        &self,
        app: &Arc<App>,
        req: &Request<'_>,
        user: &Arc<crate::users::User>,
    ) -> Response {
        use crate::session::Pending;
        let cfg = app.config.load();
        let client = req.client_ip.to_string();
        let (factors, pending) = twofactor::after_password(app, user, req.cookie_header);
        // A right password must not wipe the failures of someone guessing the second factor.
        if app
            .defense
            .attempt_passed(&self.attempt, pending == Pending::Done)
            .await
            .is_err()
        {
            return unavailable(app, req);
        }
        let now = app.clock.now();
        let record = crate::session::SessionRecord {
            user: user.name.clone(),
            factors,
            created: now,
            last_seen: now,
            client: client.clone(),
            cred_version: user.credentials_version,
            pending,
            auth_at: now,
        };
        let (sid, _) = match app.sessions.create_from(record).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot create session");
                return unavailable(app, req);
            }
        };
        account::note_agent(app, &sid, req).await;
        app.metrics.signins.with_label_values(&["success"]).inc();
        app.accounts.record_later(
            &user.name,
            if pending == Pending::SecondFactor {
                "password_ok"
            } else {
                "signin_ok"
            },
            &client,
            &format!("factors={factors}"),
        );
        app.audit(
            "signin",
            json!({ "user": user.name, "client": client, "factors": factors, "pending": pending, "known_device": self.device.is_some() }),
        );
        let target = app
            .redirects
            .load()
            .validate(self.rd)
            .unwrap_or_else(|| "/".into());
        let prefix = &cfg.server.portal_prefix;
        let target = match pending {
            Pending::Done => target,
            Pending::SecondFactor => format!("{prefix}/2fa?rd={}", urlencode(&target)),
            Pending::Enrol => format!("{prefix}/2fa/setup?rd={}", urlencode(&target)),
        };
        let mut r = Response::redirect(303, &target);
        r.header(
            "Set-Cookie",
            app.cookies.session_cookie(sid.as_str(), req.host),
        );
        // Only a whole sign-in makes this browser a known device: with a second step
        // still to come, its failures must count against the account (see `twofactor`).
        if pending == Pending::Done {
            if let Some(c) = device_cookie(app, req, &user.name) {
                r.header("Set-Cookie", c);
            }
        }
        r
    }
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
/// (signed, stored for as long as the lock lasts, consumed atomically).
pub(crate) async fn send_lock_notice(
    app: &App,
    req: &Request<'_>,
    user: &crate::users::User,
    dur: std::time::Duration,
) {
    send_lock_notice_to(app, &base_url(app, req), req.client_ip, user, dur).await
}

/// [`send_lock_notice`] without the request: `link_base` is where the unlock link points.
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
async fn unlock_page(app: &App, req: &Request<'_>) -> Response {
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

async fn unlock_post(app: &App, req: &Request<'_>) -> Response {
    let f = form(&req.body).unwrap_or_default();
    if posted_pre(app, req, &f).is_none() {
        return forbidden_form(app, req);
    }
    let token = f.get("token").map(String::as_str).unwrap_or("");
    let Some(id) = token_parts(app, token) else {
        return status_page(
            app,
            true,
            400,
            "Link not valid",
            "This unlock link is not valid.",
        );
    };
    let user = match app.store.take(&crate::store::keys::unlock(id)).await {
        Ok(Some(u)) => String::from_utf8_lossy(&u).to_string(),
        Ok(None) => {
            return status_page(
                app,
                true,
                400,
                "Link expired",
                "This unlock link has expired or was already used.",
            )
        }
        Err(_) => return unavailable(app, req),
    };
    if app.defense.clear(&user).await.is_err() {
        return unavailable(app, req);
    }
    app.audit(
        "unlocked",
        json!({ "target": user, "by": "owner_link", "client": req.client_ip.to_string() }),
    );
    status_page(
        app,
        true,
        200,
        "Account unlocked",
        "Your account is unlocked. If you didn't try to sign in recently, change your password.",
    )
}

/// `/captcha/{id}.png` and `.wav`, only for the pre-session the challenge belongs to.
async fn captcha_media(app: &App, req: &Request<'_>) -> Response {
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
    match media {
        Ok(Some((bytes, ct))) => {
            let mut r = Response::new(200, ct, bytes);
            r.header("Cache-Control", "no-store");
            r.header("X-Content-Type-Options", "nosniff");
            r
        }
        Ok(None) => status_page(
            app,
            false,
            404,
            "Not found",
            "This challenge has expired; reload the sign-in page.",
        ),
        Err(_) => unavailable(app, req),
    }
}

/// The argon2 pool is full: 503 + Retry-After instead of an unbounded queue.
pub(crate) fn busy(app: &App, accept_html: bool) -> Response {
    let mut r = status_page(
        app,
        accept_html,
        503,
        "Busy",
        "Too many sign-ins at this moment. Try again in a few seconds.",
    );
    r.header("Retry-After", "5");
    r
}

/// Counts a failure on the defence ladder (the account's key from
/// [`crate::defense::account_key`], when known). `Some` when it locked the account.
/// A failure that can't be counted fails closed: `Err` is the 503 page.
pub(crate) async fn count_failure(
    app: &App,
    req: &Request<'_>,
    account: Option<&str>,
    device: Option<&str>,
) -> Result<Option<std::time::Duration>, Response> {
    let cfg = app.config.load();
    app.defense
        .record_failure(&cfg.defense, account, device, req.client_ip)
        .await
        .map_err(|_| unavailable(app, req))
}

/// The password asked again (re-authentication before a change), for an attempt
/// already reserved on the ladder: `Ok(true)` right; `Ok(false)` wrong, counted as
/// a failed second step and audited; `Err` the page to answer with (hashing busy,
/// store down).
pub(crate) async fn password_again(
    app: &App,
    req: &Request<'_>,
    user: &crate::users::User,
    attempt: &crate::defense::Attempt,
    password: &str,
) -> Result<bool, Response> {
    let ok = !password.is_empty()
        && password.len() <= crate::auth::password::MAX_PASSWORD_BYTES
        && match app.hasher.verify(password, Some(&user.password)).await {
            Ok(ok) => ok,
            Err(crate::auth::password::PasswordError::Busy) => {
                let _ = app.defense.attempt_passed(attempt, false).await;
                return Err(busy(app, req.accept_html));
            }
            Err(e) => {
                tracing::error!(error = %e, "password verification failed");
                false
            }
        };
    if !ok {
        count_second_step_failure(app, req, user, attempt, "reauth").await?;
        app.audit(
            "reauth_failed",
            json!({ "user": user.name, "client": req.client_ip.to_string() }),
        );
    }
    Ok(ok)
}

/// Counts a failed second step (reserved as `attempt`) on the account's ladder
/// (and the known device's); tells the owner when it locked the account: someone
/// has their password.
pub(crate) async fn count_second_step_failure(
    app: &App,
    req: &Request<'_>,
    user: &crate::users::User,
    attempt: &crate::defense::Attempt,
    step: &str,
) -> Result<(), Response> {
    let cfg = app.config.load();
    let locked = app
        .defense
        .second_step_failed(&cfg.defense, attempt, req.client_ip)
        .await
        .map_err(|_| unavailable(app, req))?;
    if let Some(dur) = locked {
        app.metrics.locks.inc();
        app.audit(
            "account_locked",
            json!({ "user": user.name, "client": req.client_ip.to_string(), "seconds": dur.as_secs(), "step": step }),
        );
        send_lock_notice(app, req, user, dur).await;
    }
    Ok(())
}

/// Checks the posted CAPTCHA (`captcha_id`, `captcha`) of pre-session `pre`; a wrong
/// or missing answer counts as a failure. `Ok(false)`: wrong, ask again.
pub(crate) async fn captcha_passed(
    app: &App,
    req: &Request<'_>,
    pre: &str,
    f: &HashMap<String, String>,
    account: Option<&str>,
) -> Result<bool, Response> {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    match app
        .captchas
        .solve(get("captcha_id"), pre, get("captcha"))
        .await
    {
        Ok(true) => Ok(true),
        Ok(false) => count_failure(app, req, account, None).await.map(|_| false),
        Err(_) => Err(unavailable(app, req)),
    }
}

/// A fresh challenge for this pre-session when `wanted` (counted as shown). The
/// error is the page to answer with: 429 when this client made too many
/// challenges lately (each is a store entry), 503 when the store is unavailable.
pub(crate) async fn new_captcha(
    app: &App,
    req: &Request<'_>,
    pre: &str,
    wanted: bool,
) -> Result<Option<String>, Response> {
    if !wanted {
        return Ok(None);
    }
    let cfg = app.config.load();
    if let Err(wait) = app
        .defense
        .check_challenge_rate(&cfg.defense, req.client_ip)
    {
        return Err(too_many(app, req, wait));
    }
    let id = app
        .captchas
        .create(pre)
        .await
        .map_err(|_| unavailable(app, req))?;
    app.metrics.captcha.with_label_values(&["shown"]).inc();
    Ok(Some(id))
}

/// Changes one account in the account store (committed whole or not at all;
/// the database announces it to every gateway). The error is the page to answer
/// with; `what` names the change for the log and the person ("Your password was
/// not changed."). Returns the account as stored.
pub(crate) async fn update_user(
    app: &App,
    user: &str,
    what: &'static str,
    change: impl FnOnce(&mut crate::users::User) + Send + 'static,
) -> Result<Arc<crate::users::User>, Response> {
    use crate::users::store::AccountError;
    let res = app
        .accounts
        .modify(user, move |u| {
            change(u);
            Ok(())
        })
        .await;
    match res {
        Ok(u) => Ok(u),
        Err(AccountError::NotFound(_)) => Err(status_page(
            app,
            true,
            400,
            "Account not found",
            "This account no longer exists.",
        )),
        Err(AccountError::Unavailable(e)) => {
            tracing::error!(error = %e, change = what, "account not updated");
            let mut r = status_page(
                app,
                true,
                503,
                "Temporarily unavailable",
                &format!("Your {what} was not changed: accounts can't be reached right now. Please try again in a few minutes."),
            );
            r.header("Retry-After", "60");
            Err(r)
        }
        Err(e) => {
            tracing::error!(error = %e, change = what, "account not updated");
            Err(status_page(
                app,
                true,
                409,
                "Not changed",
                &format!("Your {what} was not changed: {e}"),
            ))
        }
    }
}

/// The account database can't be reached: a clear 503, never a 500.
pub fn accounts_unavailable(app: &App, req: &Request<'_>) -> Response {
    let mut r = status_page(
        app,
        req.accept_html,
        503,
        "Temporarily unavailable",
        "Accounts can't be reached right now. Nothing was changed. Please try again in a few minutes.",
    );
    r.header("Retry-After", "60");
    r
}

pub fn unavailable(app: &App, req: &Request<'_>) -> Response {
    let mut r = status_page(
        app,
        req.accept_html,
        503,
        "Temporarily unavailable",
        "Sign-in is unavailable for a moment. Please try again shortly.",
    );
    r.header("Retry-After", "5");
    r
}

async fn logout_page(app: &App, req: &Request<'_>) -> Response {
    let cfg = app.config.load();
    let state = match app.session_state(req.cookie_header).await {
        Ok(s) => s,
        Err(_) => return unavailable(app, req),
    };
    let (signed_in, user, csrf) = match &state {
        SessionState::Valid { id, user, .. } => {
            (true, user.name.clone(), app.cookies.csrf_token(id.as_str()))
        }
        _ => (false, String::new(), String::new()),
    };
    Response::html(
        200,
        app.ui.load().render(
            "logout.html",
            context! { signed_in => signed_in, user => user, csrf => csrf, prefix => &cfg.server.portal_prefix },
        ),
    )
}

async fn logout_post(app: &App, req: &Request<'_>) -> Response {
    let f = form(&req.body).unwrap_or_default();
    let state = match app.session_state(req.cookie_header).await {
        Ok(s) => s,
        Err(_) => return unavailable(app, req),
    };
    if let SessionState::Valid { id, record, .. } = &state {
        if !app
            .cookies
            .csrf_ok(id.as_str(), f.get("csrf").map(String::as_str).unwrap_or(""))
            || !origin_ok(req)
        {
            return forbidden_form(app, req);
        }
        if app
            .sessions
            .remove(&id.handle(), &record.user)
            .await
            .is_err()
        {
            return unavailable(app, req);
        }
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
    r
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
    let preq = policy::Request {
        host: &orig.host,
        path: &orig.path,
        method: &orig.method,
        client: req.client_ip,
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
                        if let Some(t) = crate::assertion::token(app, &cfg, &orig.host, u, factors)
                        {
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
