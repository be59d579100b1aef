//! The second-step pages: the challenge (`/2fa`), sending codes (`/2fa/send`)
//! and the second-factor settings (`/2fa/setup`). Each handler parses its form,
//! calls the machine — [`crate::auth::second_step`] (verify, send, password
//! again) or [`crate::auth::enrolment`] (new app, backup codes, removal) — and
//! renders the outcome; the diagrams are in those modules.
//!
//! ```text
//!  password right ─┬─ required, no app ──────────> session(pending=Enrol) ──> /2fa/setup
//!                  ├─ remembered browser ────────> session(2 factors) ──────> rd
//!                  ├─ app enrolled ──────────────> session(pending=Second) ─> /2fa
//!                  └─ otherwise ─────────────────> session(1 factor) ───────> rd
//!                                                   └─ two_factor rule ─────> /2fa ─> rd
//!  POST /2fa        ─ 429 / 400 / 403 ─> Missing 400 · Refused 429 · NoCode 400 ·
//!                     CodeVoid 401 · Wrong 401 · Passed ─> 303 rd + session cookie
//!                     (+ known-device, + remember cookie when asked)
//!  POST /2fa/send   ─ Paced / Limited 429 + Retry-After · Ready ─> delivered (notice) |
//!                     not delivered (503, code void)
//!  /2fa/setup       ─ password older than otp.reauth_after: asked again first
//!         GET  ─> pending secret ─> QR + key + URI
//!         POST confirm + code ─> Enrolled: backup codes shown once
//! ```
//! While a sign-in is pending, the session proves nothing: every protected
//! request goes to the pending step, bypass rules excepted.

use std::sync::Arc;

use minijinja::context;

use super::error::PortalError;
use super::forms::{self, ChallengeForm, SetupForm};
use super::{origin_ok, query_param, Request, Response};
use crate::app::{App, SessionState};
use crate::auth::enrolment::{self, Confirm, Remove};
use crate::auth::second_step::{self, Reauth, SendOutcome, Signed, VerifyOutcome};
use crate::auth::totp;
use crate::notify::{Channel, Notifier};
use crate::respond::{back_to as to_rd, go_to, sign_in_first, Back, Client, Step};
use crate::session::{Pending, SessionId};
use crate::users::User;

pub use crate::auth::second_step::Method;

type Page = Result<Response, PortalError>;

/// The methods this account can use, in the order they are offered.
pub fn methods(app: &App, user: &User) -> Vec<Method> {
    let notifier = app.notifier.load();
    second_step::methods(user, |c| notifier.offers(c))
}

/// The form's `method`, when the account has it.
fn chosen_method(app: &App, user: &User, method: &str) -> Option<Method> {
    Method::parse(method).filter(|m| methods(app, user).contains(m))
}

fn label(m: Method) -> &'static str {
    match m {
        Method::Totp => "Use your authenticator app",
        Method::Email => "Get a code by email",
        Method::Sms => "Get a code by text message",
        Method::Voice => "Get a code by phone call",
        Method::Backup => "Use a backup code",
    }
}

/// `a•••@example.com`, `•••• 2671`: enough to recognise, not to harvest.
fn mask(method: Method, user: &User) -> String {
    match method {
        Method::Email => match user.email.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}•••@{domain}")
            }
            None => "your email address".into(),
        },
        Method::Sms | Method::Voice => {
            let digits: String = user.phone.chars().filter(char::is_ascii_digit).collect();
            let tail = &digits[digits.len().saturating_sub(4)..];
            format!("your phone ending in {tail}")
        }
        _ => String::new(),
    }
}

fn destination(method: Method, user: &User) -> &str {
    match method {
        Method::Email => &user.email,
        _ => &user.phone,
    }
}

/// `here` under the portal: where a step sends the person back to.
fn back<'a>(prefix: &'a str, here: &'a str) -> Back<'a> {
    Back {
        portal: prefix,
        here,
        query: None,
    }
}

/// The session, or where to go first ([`PortalError::GoFirst`]): sign in,
/// coming back to `here`.
async fn signed_in(app: &App, req: &Request<'_>, here: &str) -> Result<Signed, PortalError> {
    match app.session_state(req.cookie_header).await? {
        SessionState::Valid { id, record, user } => Ok(Signed {
            id,
            record: Arc::unwrap_or_clone(record),
            user,
        }),
        _ => {
            let prefix = &app.config.load().server.portal_prefix;
            let client = Client::of(req.accept_html);
            let go = sign_in_first(client, Step::Login, back(prefix, here), None);
            Err(PortalError::GoFirst(Box::new(go)))
        }
    }
}

fn rd_of(app: &App, req: &Request<'_>, posted: Option<&str>) -> String {
    posted
        .map(str::to_string)
        .or_else(|| query_param(req.query, "rd"))
        .and_then(|rd| app.redirects.load().validate(&rd))
        .unwrap_or_default()
}

fn to_setup(app: &App, rd: &str) -> Response {
    let prefix = &app.config.load().server.portal_prefix;
    go_to(303, Step::Enrol, back(prefix, rd))
}

/// Enrolment is pending and no app was enrolled meanwhile (in another session):
/// setting one up is the way on.
fn enrol_first(s: &Signed) -> bool {
    s.record.pending == Pending::Enrol && !s.user.has_totp()
}

#[derive(Default)]
struct View<'a> {
    method: Option<Method>,
    error: Option<&'a str>,
    notice: Option<String>,
    status: u16,
    sent: bool,
}

impl<'a> View<'a> {
    fn error(method: Option<Method>, error: &'a str, status: u16) -> View<'a> {
        View {
            method,
            error: Some(error),
            status,
            ..View::default()
        }
    }
}

fn challenge_page(app: &App, req: &Request<'_>, s: &Signed, rd: &str, v: View<'_>) -> Response {
    let cfg = app.config.load();
    let all = methods(app, &s.user);
    let Some(&first) = all.first() else {
        let prefix = &cfg.server.portal_prefix;
        return Response::html(
            403,
            app.ui.load().message(
                "Two-step verification needed",
                "This page needs two-step verification, and your account has no way to do it yet: \
                 no authenticator app, email address or phone number. Set up an authenticator app, \
                 or ask your administrator.",
                Some((
                    &format!("{prefix}/2fa/setup?rd={}", super::urlencode(rd)),
                    "Set up an authenticator app",
                )),
            ),
        );
    };
    let method = v
        .method
        .or_else(|| query_param(req.query, "method").and_then(|m| Method::parse(&m)))
        .filter(|m| all.contains(m))
        .unwrap_or(first);
    let others: Vec<_> = all
        .iter()
        .filter(|m| **m != method)
        .map(|m| context! { name => m.as_str(), label => label(*m), left => (*m == Method::Backup).then_some(s.user.backup_codes.len()) })
        .collect();
    let digits = s
        .user
        .has_totp()
        .then(|| second_step::open_enrolment(&super::deps(app, &cfg), &s.user).map(|e| e.digits))
        .flatten()
        .unwrap_or(cfg.otp.totp_digits);
    let html = app.ui.load().render(
        "2fa.html",
        context! {
            csrf => app.cookies.csrf_token(s.id.as_str()),
            rd => rd,
            method => method.as_str(),
            others => others,
            destination => mask(method, &s.user),
            account => &s.user.name,
            digits => digits,
            code_length => cfg.otp.code_length,
            minutes => cfg.otp.code_ttl.as_secs().div_ceil(60),
            remember_days => cfg.otp.remember_days,
            error => v.error,
            notice => v.notice,
            sent => v.sent,
            has_voice => all.contains(&Method::Voice),
            service => &cfg.otp.totp_issuer,
        },
    );
    Response::html(if v.status == 0 { 200 } else { v.status }, html)
}

/// `GET /2fa`
pub async fn page(app: &App, req: &Request<'_>) -> Page {
    let rd = rd_of(app, req, None);
    let here = format!(
        "{}/2fa?rd={}",
        app.config.load().server.portal_prefix,
        super::urlencode(&rd)
    );
    let s = signed_in(app, req, &here).await?;
    if enrol_first(&s) {
        return Ok(to_setup(app, &rd));
    }
    if s.is_done() {
        return Ok(to_rd(&rd));
    }
    Ok(challenge_page(app, req, &s, &rd, View::default()))
}

/// The checks every POST here shares once the form is read: session, CSRF.
async fn posted_session(
    app: &App,
    req: &Request<'_>,
    csrf: &str,
    rd: &str,
) -> Result<Signed, PortalError> {
    let cfg = app.config.load();
    let here = format!(
        "{}/2fa?rd={}",
        cfg.server.portal_prefix,
        super::urlencode(rd)
    );
    let s = signed_in(app, req, &here).await?;
    if !app.cookies.csrf_ok(s.id.as_str(), csrf) || !origin_ok(req) {
        return Err(PortalError::FormExpired);
    }
    Ok(s)
}

const WRONG_CODE: &str = "That code is not right. Check it and try again, or use another method.";
const LOCKED: &str =
    "Too many failed attempts. For your security, wait a while and try again later.";

/// `POST /2fa`: parse → [`second_step::verify`] → render.
pub async fn post(app: &Arc<App>, req: &Request<'_>) -> Page {
    super::rate(app, req)?;
    let f: ChallengeForm = forms::parse(&req.body)?;
    let rd = rd_of(app, req, Some(&f.rd));
    let s = posted_session(app, req, &f.csrf, &rd).await?;
    if s.is_done() {
        return Ok(to_rd(&rd));
    }
    if enrol_first(&s) {
        return Ok(to_setup(app, &rd));
    }
    let Some(method) = chosen_method(app, &s.user, &f.method) else {
        let v = View::error(None, "Choose a way to verify.", 400);
        return Ok(challenge_page(app, req, &s, &rd, v));
    };
    let remember = f.remember == "1" || f.remember == "on";
    let cfg = app.config.load();
    let deps = super::deps(app, &cfg);
    let browser = super::browser(app, req);
    let outcome = second_step::verify(&deps, &browser, &s, method, &f.code, remember).await?;
    let (msg, status, locked) = match outcome {
        VerifyOutcome::Passed {
            session,
            backup_left,
            ..
        } => {
            if let Some(left) = backup_left {
                backup_used(app, req, &s.user, left);
            }
            return Ok(complete(app, req, &s, &session, remember, &rd).await);
        }
        VerifyOutcome::Missing => ("Enter the code.", 400, None),
        VerifyOutcome::NoCode => ("Ask for a code first, or ask for a new one: the last one has expired or was used.", 400, None),
        VerifyOutcome::Refused { locked } => (LOCKED, 429, locked),
        VerifyOutcome::CodeVoid { locked } => ("Too many wrong codes: that code no longer works. Ask for a new code, or use another method.", 401, locked),
        VerifyOutcome::Wrong { locked } => (WRONG_CODE, 401, locked),
    };
    super::send_lock_notice(app, req, locked.as_ref()).await;
    Ok(challenge_page(
        app,
        req,
        &s,
        &rd,
        View::error(Some(method), msg, status),
    ))
}

/// The challenge is passed: the new session's cookie (+ known device, + remember).
async fn complete(
    app: &App,
    req: &Request<'_>,
    s: &Signed,
    sid: &SessionId,
    remember: bool,
    rd: &str,
) -> Response {
    let cfg = app.config.load();
    super::account::note_agent(app, sid, req).await;
    let mut r = to_rd(rd);
    r.header(
        "Set-Cookie",
        app.cookies.session_cookie(sid.as_str(), req.host),
    );
    // Only a whole sign-in makes this browser a known device.
    if let Some(c) = super::device_cookie(app, req, &s.user.name) {
        r.header("Set-Cookie", c);
    }
    if remember && cfg.otp.remember_days > 0 {
        let expires = app.clock.now() + u64::from(cfg.otp.remember_days) * 86_400;
        r.header(
            "Set-Cookie",
            app.cookies.remember_cookie(
                &s.user.name,
                s.user.factors_version,
                expires,
                cfg.otp.remember_days,
            ),
        );
    }
    r
}

/// Tells the owner a backup code was used, and how many remain.
fn backup_used(app: &App, req: &Request<'_>, user: &User, left: usize) {
    if user.email.is_empty() || !app.notifier.load().offers(Channel::Email) {
        return;
    }
    let cfg = app.config.load();
    let setup_url = format!(
        "{}{}/2fa/setup",
        super::base_url(app, req),
        cfg.server.portal_prefix
    );
    let ctx = context! { name => user.shown_name(), left => left, client => req.client_ip.to_string(), setup_url => setup_url };
    let Ok(msg) = super::compose(
        app,
        "msg_backup_used.txt",
        ctx,
        Channel::Email,
        &user.email,
        "backup_code_used",
    ) else {
        return;
    };
    let notifier = app.notifier.load_full();
    let name = user.name.clone();
    // The sign-in doesn't wait for the mail server.
    tokio::spawn(async move {
        if let Err(e) = notifier.send(&msg).await {
            tracing::error!(error = %e, user = %name, "backup-code notice not delivered");
        }
    });
}

/// The message carrying a sign-in code: by email or SMS (`msg_code.txt`), or read
/// out digit by digit by a voice call (`msg_code_voice.txt`).
fn code_message(
    app: &App,
    method: Method,
    user: &User,
    dest: &str,
    code: &str,
) -> Result<crate::notify::Message, super::ui::TemplateError> {
    let cfg = app.config.load();
    let minutes = cfg.otp.code_ttl.as_secs().div_ceil(60);
    let spoken = code
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ");
    let channel = method.channel();
    let template = if method == Method::Voice {
        "msg_code_voice.txt"
    } else {
        "msg_code.txt"
    };
    let ctx = context! { code => code, spoken => spoken, minutes => minutes, channel => channel.as_str(), name => user.shown_name() };
    super::compose(app, template, ctx, channel, dest, "sign_in_code")
}

/// `POST /2fa/send`: parse → [`second_step::prepare_code`] → deliver → render.
pub async fn send(app: &Arc<App>, req: &Request<'_>) -> Page {
    super::rate(app, req)?;
    let f: ChallengeForm = forms::parse(&req.body)?;
    let rd = rd_of(app, req, Some(&f.rd));
    let s = posted_session(app, req, &f.csrf, &rd).await?;
    if s.is_done() {
        return Ok(to_rd(&rd));
    }
    let Some(method) = chosen_method(app, &s.user, &f.method).filter(|m| m.sends_code()) else {
        let v = View::error(None, "Codes can't be sent that way for this account.", 400);
        return Ok(challenge_page(app, req, &s, &rd, v));
    };
    let cfg = app.config.load();
    let deps = super::deps(app, &cfg);
    let dest = destination(method, &s.user).to_string();
    let waiting = |msg: String, secs: u64| {
        let v = View {
            method: Some(method),
            error: None,
            notice: Some(msg),
            status: 429,
            sent: true,
        };
        let mut r = challenge_page(app, req, &s, &rd, v);
        r.header("Retry-After", secs.to_string());
        r
    };
    let code = match second_step::prepare_code(&deps, req.client_ip, &s, method, &dest).await? {
        SendOutcome::Paced { secs } => {
            return Ok(waiting(
                format!("A code was sent a moment ago. You can ask for another in {secs} seconds."),
                secs,
            ))
        }
        SendOutcome::Limited { secs } => {
            return Ok(waiting(
                format!(
                    "Too many codes were sent. Wait {} minute(s) or use another method.",
                    secs.div_ceil(60)
                ),
                secs,
            ))
        }
        SendOutcome::Ready { code } => code,
    };
    let mut msg = match code_message(app, method, &s.user, &dest, &code) {
        Ok(m) => m,
        Err(e) => {
            // Templates are checked at start and reload, so this is unexpected.
            tracing::error!(error = %e, "message template failed");
            second_step::abandon(&deps, &s, method).await;
            // Answered like a delivery failure (503 on the same page): the person can
            // choose another method right there.
            let v = View::error(
                Some(method),
                "The code could not be sent. Try another method.",
                503,
            );
            return Ok(challenge_page(app, req, &s, &rd, v));
        }
    };
    msg.code = Some(code);
    if let Err(e) = app.notifier.load().send(&msg).await {
        tracing::error!(error = %e, user = %s.user.name, channel = %method.channel(), "sign-in code not delivered");
        second_step::abandon(&deps, &s, method).await;
        let v = View::error(
            Some(method),
            "The code could not be sent just now. Try again in a moment, or use another method.",
            503,
        );
        return Ok(challenge_page(app, req, &s, &rd, v));
    }
    let to = mask(method, &s.user);
    second_step::delivered(&deps, req.client_ip, &s, method, &to);
    let minutes = cfg.otp.code_ttl.as_secs().div_ceil(60);
    let notice = format!(
        "We sent a code to {to}. It expires in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    );
    let v = View {
        method: Some(method),
        notice: Some(notice),
        sent: true,
        ..View::default()
    };
    Ok(challenge_page(app, req, &s, &rd, v))
}

// ---------------------------------------------------------------------------
// Second-factor settings (`/2fa/setup`)

#[derive(Default)]
struct SetupView<'a> {
    error: Option<&'a str>,
    notice: Option<&'a str>,
    status: u16,
    codes: Option<Vec<String>>,
    next: Option<String>,
    replace: bool,
}

impl<'a> SetupView<'a> {
    fn error(error: &'a str, status: u16, replace: bool) -> SetupView<'a> {
        SetupView {
            error: Some(error),
            status,
            replace,
            ..SetupView::default()
        }
    }
}

async fn setup_page_for(app: &App, s: &Signed, rd: &str, v: SetupView<'_>) -> Page {
    let cfg = app.config.load();
    let deps = super::deps(app, &cfg);
    let status = if v.status == 0 { 200 } else { v.status };
    let required = cfg.otp.required_for(&s.user.groups);
    let base = context! {
        csrf => app.cookies.csrf_token(s.id.as_str()),
        rd => rd,
        error => v.error,
        notice => v.notice,
        account => &s.user.name,
        required => required,
        needs_password => second_step::needs_password(&deps, &s.record),
    };
    if let Some(codes) = v.codes {
        let next = v.next.unwrap_or_else(|| "/".into());
        return Ok(Response::html(
            status,
            app.ui.load().render(
                "2fa_setup.html",
                context! { codes => codes, next => next, ..base },
            ),
        ));
    }
    if s.user.has_totp() && !v.replace {
        return Ok(Response::html(
            status,
            app.ui.load().render(
                "2fa_setup.html",
                context! { enrolled => true, backup_left => s.user.backup_codes.len(), can_remove => !required, ..base },
            ),
        ));
    }
    let e = enrolment::pending(&deps, s).await?;
    let uri = e.uri(&cfg.otp.totp_issuer, &s.user.name);
    let qr = totp::qr_svg(&uri)
        .map(|svg| {
            use base64::Engine;
            format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(svg)
            )
        })
        .unwrap_or_default();
    let spaced = e
        .secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Response::html(
        status,
        app.ui.load().render(
            "2fa_setup.html",
            context! {
                secret => &e.secret,
                secret_spaced => spaced,
                // Built here from URL-encoded parts and base64 (no quotes or angle
                // brackets possible); only `&` needs escaping. Kept readable rather
                // than entity-encoded, so people and scripts see the URI as it is.
                uri => minijinja::Value::from_safe_string(uri.replace('&', "&amp;")),
                qr => minijinja::Value::from_safe_string(qr),
                digits => e.digits,
                replace => v.replace,
                ..base
            },
        ),
    ))
}

fn challenge_first(app: &App, here: &str) -> Response {
    let prefix = &app.config.load().server.portal_prefix;
    go_to(303, Step::SecondFactor, back(prefix, here))
}

/// `GET /2fa/setup`
pub async fn setup_page(app: &App, req: &Request<'_>) -> Page {
    let cfg = app.config.load();
    let rd = rd_of(app, req, None);
    let replace = query_param(req.query, "replace").is_some_and(|v| v == "1");
    let here = format!(
        "{}/2fa/setup?rd={}{}",
        cfg.server.portal_prefix,
        super::urlencode(&rd),
        if replace { "&replace=1" } else { "" }
    );
    let s = signed_in(app, req, &here).await?;
    if enrolment::needs_second_first(&s, &methods(app, &s.user)) {
        return Ok(challenge_first(app, &here));
    }
    let v = SetupView {
        replace,
        ..SetupView::default()
    };
    setup_page_for(app, &s, &rd, v).await
}

/// `POST /2fa/setup`: `action` = confirm (with `code`), regenerate, remove.
pub async fn setup_post(app: &Arc<App>, req: &Request<'_>) -> Page {
    super::rate(app, req)?;
    let f: SetupForm = forms::parse(&req.body)?;
    let rd = rd_of(app, req, Some(&f.rd));
    let mut s = posted_session(app, req, &f.csrf, &rd).await?;
    let cfg = app.config.load();
    let deps = super::deps(app, &cfg);
    let action = f.action.as_deref().unwrap_or("confirm");
    let here = format!(
        "{}/2fa/setup?rd={}",
        cfg.server.portal_prefix,
        super::urlencode(&rd)
    );
    if enrolment::needs_second_first(&s, &methods(app, &s.user)) {
        return Ok(challenge_first(app, &here));
    }
    let replace = action == "confirm";
    // Changing second factors needs a recent password.
    if second_step::needs_password(&deps, &s.record) {
        let browser = super::browser(app, req);
        let (msg, status, locked) =
            match second_step::reauthenticate(&deps, &browser, &mut s, &f.password).await? {
                Reauth::Right => ("", 0, None),
                Reauth::Busy => return Err(PortalError::Busy),
                Reauth::Refused { locked } => (LOCKED, 429, locked),
                Reauth::Wrong { locked } => (
                    "Enter your current password to confirm it's you.",
                    401,
                    locked,
                ),
            };
        if status != 0 {
            super::send_lock_notice(app, req, locked.as_ref()).await;
            return setup_page_for(app, &s, &rd, SetupView::error(msg, status, replace)).await;
        }
    }
    let client = req.client_ip;
    match action {
        "confirm" => match enrolment::confirm(&deps, client, &s, &f.code).await? {
            Confirm::Expired => {
                let v = SetupView::error(
                    "That setup expired. Scan the new QR code and try again.",
                    400,
                    true,
                );
                setup_page_for(app, &s, &rd, v).await
            }
            Confirm::Wrong => {
                let v = SetupView::error("That code is not right. Check that your phone's clock is set automatically, and enter the code the app shows now.", 400, true);
                setup_page_for(app, &s, &rd, v).await
            }
            Confirm::Replayed => {
                let v = SetupView::error(
                    "That code was already used. Wait for the next one.",
                    400,
                    true,
                );
                setup_page_for(app, &s, &rd, v).await
            }
            Confirm::Enrolled(e) => enrolled(app, req, &rd, e).await,
        },
        "regenerate" | "remove" if !s.user.has_totp() => {
            setup_page_for(app, &s, &rd, SetupView::default()).await
        }
        "regenerate" => {
            let codes = enrolment::regenerate(&deps, client, &s).await?;
            let v = SetupView {
                codes: Some(codes),
                next: Some(here_or(&rd, &cfg.server.portal_prefix)),
                notice: Some("Your old backup codes no longer work."),
                ..SetupView::default()
            };
            setup_page_for(app, &s, &rd, v).await
        }
        "remove" => match enrolment::remove(&deps, client, &s).await? {
            Remove::Required => {
                let v = SetupView::error("Your organisation requires two-step verification, so your last second factor can't be removed.", 403, false);
                setup_page_for(app, &s, &rd, v).await
            }
            Remove::Removed => Ok(Response::html(
                200,
                app.ui.load().message(
                    "Two-step verification is off",
                    "Your authenticator app and backup codes were removed from your account.",
                    Some((
                        &format!("{}/2fa/setup", cfg.server.portal_prefix),
                        "Set it up again",
                    )),
                ),
            )),
        },
        _ => {
            setup_page_for(
                app,
                &s,
                &rd,
                SetupView::error("Unknown action.", 400, false),
            )
            .await
        }
    }
}

fn here_or(rd: &str, prefix: &str) -> String {
    if rd.is_empty() {
        format!("{prefix}/2fa/setup")
    } else {
        rd.to_string()
    }
}

/// The app is enrolled: the backup codes shown once, the new session's cookie;
/// this browser becomes a known device.
async fn enrolled(app: &App, req: &Request<'_>, rd: &str, e: enrolment::Enrolled) -> Page {
    super::account::note_agent(app, &e.session, req).await;
    let fresh = Signed {
        id: e.session.clone(),
        record: e.record,
        user: e.user,
    };
    let v = SetupView {
        codes: Some(e.codes),
        next: Some(if rd.is_empty() {
            "/".into()
        } else {
            rd.to_string()
        }),
        ..SetupView::default()
    };
    let mut r = setup_page_for(app, &fresh, rd, v).await?;
    r.header(
        "Set-Cookie",
        app.cookies.session_cookie(e.session.as_str(), req.host),
    );
    if let Some(c) = super::device_cookie(app, req, &fresh.user.name) {
        r.header("Set-Cookie", c);
    }
    Ok(r)
}
