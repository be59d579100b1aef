//! Two-step verification: the challenge (`/2fa`), sending codes (`/2fa/send`)
//! and enrolment of an authenticator app (`/2fa/setup`).
//!
//! ```text
//!  password right ─┬─ required, no app ──────────> session(pending=Enrol) ──> /2fa/setup
//!                  ├─ remembered browser ────────> session(2 factors) ──────> rd
//!                  ├─ app enrolled ──────────────> session(pending=Second) ─> /2fa
//!                  └─ otherwise ─────────────────> session(1 factor) ───────> rd
//!                                                   └─ two_factor rule ─────> /2fa ─> rd
//!  /2fa  POST method ─ locked / over rate ─> refused (nothing checked, nothing extended)
//!         ├─ totp:   code of step now±1, and that step not used yet by the account (set_nx)
//!         ├─ email/sms/voice: the code sent for this pending sign-in (hashed, ttl,
//!         │          `otp.max_attempts`, consumed with take)
//!         ├─ backup: one of the account's codes, removed under the users-file lock
//!         ├─ wrong ─> failure on the defense ladder ─> 401 form
//!         └─ right ─> new session id, 2 factors (+ remember cookie) ─> 303 rd
//!  /2fa/setup  (password within `otp.reauth_after`, else asked again)
//!         GET  ─> new secret kept sealed in the store for this session ─> QR + key + URI
//!         POST confirm + code ─> saved sealed in the users file, 10 backup codes shown once
//! ```
//! While a sign-in is pending, the session proves nothing: every protected
//! request goes to the pending step, bypass rules excepted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    forbidden_form, form, origin_ok, query_param, status_page, too_many, unavailable, Request,
    Response,
};
use crate::app::{App, SessionState};
use crate::auth::codes;
use crate::auth::totp::{self, Enrolment};
use crate::notify::{Channel, Notifier};
use crate::session::{Pending, SessionId, SessionRecord};
use crate::store::keys::{self, enrolment as enrol_key, sign_in_code as code_key};
use crate::users::User;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    Email,
    Sms,
    Voice,
    Backup,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "totp" => Some(Method::Totp),
            "email" => Some(Method::Email),
            "sms" => Some(Method::Sms),
            "voice" => Some(Method::Voice),
            "backup" => Some(Method::Backup),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::Email => "email",
            Method::Sms => "sms",
            Method::Voice => "voice",
            Method::Backup => "backup",
        }
    }

    fn sends_code(self) -> bool {
        matches!(self, Method::Email | Method::Sms | Method::Voice)
    }

    /// The notify channel a code for this method goes out on.
    fn channel(self) -> Channel {
        match self {
            Method::Voice => Channel::Voice,
            Method::Sms => Channel::Sms,
            _ => Channel::Email,
        }
    }
}

/// The methods this account can use, in the order they are offered.
pub fn methods(app: &App, user: &User) -> Vec<Method> {
    let mut m = Vec::new();
    if user.has_totp() {
        m.push(Method::Totp);
    }
    if !user.email.is_empty() && app.notifier.load().offers(Channel::Email) {
        m.push(Method::Email);
    }
    if !user.phone.is_empty() && app.notifier.load().offers(Channel::Sms) {
        m.push(Method::Sms);
    }
    if !user.phone.is_empty() && app.notifier.load().offers(Channel::Voice) {
        m.push(Method::Voice);
    }
    if !user.backup_codes.is_empty() {
        m.push(Method::Backup);
    }
    m
}

/// The form's `method`, when the account has it.
fn chosen_method(app: &App, user: &User, f: &HashMap<String, String>) -> Option<Method> {
    f.get("method")
        .and_then(|m| Method::parse(m))
        .filter(|m| methods(app, user).contains(m))
}

/// After a right password: how many factors the new session has and what is still to do.
pub fn after_password(app: &App, user: &User, cookie_header: &str) -> (u8, Pending) {
    let cfg = app.config.load();
    if cfg.otp.required_for(&user.groups) && !user.has_totp() {
        return (1, Pending::Enrol);
    }
    if cfg.otp.remember_days > 0
        && app.cookies.remembered(
            cookie_header,
            &user.name,
            user.factors_version,
            app.clock.now(),
        )
    {
        return (2, Pending::Done);
    }
    if user.has_totp() {
        return (1, Pending::SecondFactor);
    }
    (1, Pending::Done)
}

/// A code sent for one pending sign-in.
#[derive(Serialize, Deserialize)]
struct SentCode {
    method: String,
    hash: String,
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

struct Signed {
    id: SessionId,
    record: SessionRecord,
    user: Arc<User>,
}

/// The session, or the page to answer with (sign in first).
async fn signed_in(app: &App, req: &Request<'_>, here: &str) -> Result<Signed, Response> {
    match app.session_state(req.cookie_header).await {
        Ok(SessionState::Valid { id, record, user }) => Ok(Signed { id, record, user }),
        Ok(_) => {
            let prefix = &app.config.load().server.portal_prefix;
            Err(if req.accept_html {
                Response::redirect(
                    302,
                    &format!("{prefix}/login?rd={}", super::urlencode(here)),
                )
            } else {
                Response::json(
                    401,
                    json!({ "error": "unauthenticated", "login": format!("{prefix}/login") }),
                )
            })
        }
        Err(_) => Err(unavailable(app, req)),
    }
}

fn rd_of(app: &App, req: &Request<'_>, f: Option<&HashMap<String, String>>) -> String {
    f.and_then(|f| f.get("rd").cloned())
        .or_else(|| query_param(req.query, "rd"))
        .and_then(|rd| app.redirects.load().validate(&rd))
        .unwrap_or_default()
}

/// Reserves a second-step attempt on the account's ladder (or this browser's, when
/// it is a known device of the account), before the code is checked: concurrent
/// guesses can't race past the lock. See [`crate::defense::Defense::begin_attempt`].
async fn reserve(
    app: &App,
    req: &Request<'_>,
    user: &User,
) -> Result<crate::defense::Attempt, crate::store::StoreError> {
    let cfg = app.config.load();
    let account = crate::defense::account_key(&cfg.defense, &user.name, req.client_ip);
    let device = app.cookies.known_device(req.cookie_header, &user.name);
    app.defense
        .begin_attempt(&cfg.defense, &account, device.as_deref(), req.client_ip)
        .await
}

fn is_done(r: &SessionRecord) -> bool {
    r.factors >= 2 && r.pending == Pending::Done
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

async fn challenge_page(
    app: &App,
    req: &Request<'_>,
    s: &Signed,
    rd: &str,
    v: View<'_>,
) -> Response {
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
        .then(|| open_enrolment(app, &s.user).map(|e| e.digits))
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

fn open_enrolment(app: &App, user: &User) -> Option<Enrolment> {
    let plain = app.sealer.open(&user.totp, &user.name)?;
    serde_json::from_slice(&plain).ok()
}

/// `GET /2fa`
pub async fn page(app: &App, req: &Request<'_>) -> Response {
    let rd = rd_of(app, req, None);
    let s = match signed_in(
        app,
        req,
        &format!(
            "{}/2fa?rd={}",
            app.config.load().server.portal_prefix,
            super::urlencode(&rd)
        ),
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    // (Enrolled meanwhile in another session? Then the challenge is the way on.)
    if s.record.pending == Pending::Enrol && !s.user.has_totp() {
        let prefix = &app.config.load().server.portal_prefix;
        return Response::redirect(
            303,
            &format!("{prefix}/2fa/setup?rd={}", super::urlencode(&rd)),
        );
    }
    if is_done(&s.record) {
        return Response::redirect(303, if rd.is_empty() { "/" } else { &rd });
    }
    challenge_page(app, req, &s, &rd, View::default()).await
}

/// The checks every POST here shares: rate, form, session, CSRF.
async fn post_common(
    app: &App,
    req: &Request<'_>,
) -> Result<(Signed, HashMap<String, String>, String), Response> {
    let cfg = app.config.load();
    if let Err(wait) = app.defense.check_rate(&cfg.defense, req.client_ip) {
        return Err(too_many(app, req, wait));
    }
    let Some(f) = form(&req.body) else {
        return Err(status_page(
            app,
            req.accept_html,
            400,
            "Bad request",
            "The form could not be read.",
        ));
    };
    let rd = rd_of(app, req, Some(&f));
    let s = signed_in(
        app,
        req,
        &format!(
            "{}/2fa?rd={}",
            cfg.server.portal_prefix,
            super::urlencode(&rd)
        ),
    )
    .await?;
    let csrf = f.get("csrf").map(String::as_str).unwrap_or("");
    if !app.cookies.csrf_ok(s.id.as_str(), csrf) || !origin_ok(req) {
        return Err(forbidden_form(app, req));
    }
    Ok((s, f, rd))
}

const WRONG_CODE: &str = "That code is not right. Check it and try again, or use another method.";
const LOCKED: &str =
    "Too many failed attempts. For your security, wait a while and try again later.";

/// `POST /2fa`: check a code.
pub async fn post(app: &Arc<App>, req: &Request<'_>) -> Response {
    let (s, f, rd) = match post_common(app, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if is_done(&s.record) {
        return Response::redirect(303, if rd.is_empty() { "/" } else { &rd });
    }
    // (Enrolled meanwhile in another session? Then the challenge is the way on.)
    if s.record.pending == Pending::Enrol && !s.user.has_totp() {
        let prefix = &app.config.load().server.portal_prefix;
        return Response::redirect(
            303,
            &format!("{prefix}/2fa/setup?rd={}", super::urlencode(&rd)),
        );
    }
    let Some(method) = chosen_method(app, &s.user, &f) else {
        return challenge_page(
            app,
            req,
            &s,
            &rd,
            View::error(None, "Choose a way to verify.", 400),
        )
        .await;
    };
    let code = f.get("code").map(|c| c.trim()).unwrap_or("");
    if code.is_empty() || code.len() > 64 {
        return challenge_page(
            app,
            req,
            &s,
            &rd,
            View::error(Some(method), "Enter the code.", 400),
        )
        .await;
    }
    let attempt = match reserve(app, req, &s.user).await {
        Ok(a) if a.standing.locked_for.is_none() => a,
        Ok(a) => return refused_locked(app, req, &s, &rd, method, &a).await,
        Err(_) => return unavailable(app, req),
    };
    let handle = s.id.handle();
    let verdict = match method {
        Method::Totp => check_totp(app, &s.user, code).await,
        Method::Backup => check_backup(app, &s.user, code).await.map(|left| {
            if let Some(left) = left {
                backup_used(app, req, &s.user, left);
                true
            } else {
                false
            }
        }),
        _ => match check_sent(app, &handle, method, code).await {
            Ok(Sent::Right) => Ok(true),
            Ok(Sent::Wrong) => Ok(false),
            Ok(Sent::Nothing) => {
                // Not a guess: the reservation is given back.
                let _ = app.defense.attempt_passed(&attempt, false).await;
                return challenge_page(app, req, &s, &rd, View::error(Some(method), "Ask for a code first, or ask for a new one: the last one has expired or was used.", 400)).await;
            }
            Ok(Sent::TooMany) => {
                // Counted like any wrong code, so the ladder sees it too.
                if let Err(r) =
                    super::count_second_step_failure(app, req, &s.user, &attempt, "2fa").await
                {
                    return r;
                }
                return challenge_page(app, req, &s, &rd, View::error(Some(method), "Too many wrong codes: that code no longer works. Ask for a new code, or use another method.", 401)).await;
            }
            Err(e) => Err(e),
        },
    };
    let ok = match verdict {
        Ok(ok) => ok,
        Err(_) => return unavailable(app, req),
    };
    if !ok {
        return wrong_code(app, req, &s, &rd, method, &attempt).await;
    }
    app.metrics
        .second_factor
        .with_label_values(&[method.as_str(), "ok"])
        .inc();
    let remember = f.get("remember").is_some_and(|v| v == "1" || v == "on");
    complete(app, req, s, method, remember, &rd).await
}

/// The account is locked (or this guess would go over the limit with others in
/// flight): refused, and counted only in the latter case.
async fn refused_locked(
    app: &Arc<App>,
    req: &Request<'_>,
    s: &Signed,
    rd: &str,
    method: Method,
    a: &crate::defense::Attempt,
) -> Response {
    app.audit(
        "2fa_refused_locked",
        json!({ "user": s.user.name, "method": method.as_str(), "client": req.client_ip.to_string() }),
    );
    if a.reserved() {
        if let Err(r) = super::count_second_step_failure(app, req, &s.user, a, "2fa").await {
            return r;
        }
    }
    challenge_page(app, req, s, rd, View::error(Some(method), LOCKED, 429)).await
}

/// A wrong code: measured, audited, recorded in the account's history and counted
/// on the ladder.
async fn wrong_code(
    app: &Arc<App>,
    req: &Request<'_>,
    s: &Signed,
    rd: &str,
    method: Method,
    attempt: &crate::defense::Attempt,
) -> Response {
    let client = req.client_ip.to_string();
    app.metrics
        .second_factor
        .with_label_values(&[method.as_str(), "failed"])
        .inc();
    app.audit(
        "2fa_failed",
        json!({ "user": s.user.name, "method": method.as_str(), "client": client }),
    );
    app.accounts
        .record_later(&s.user.name, "2fa_failed", &client, method.as_str());
    if let Err(r) = super::count_second_step_failure(app, req, &s.user, attempt, "2fa").await {
        return r;
    }
    challenge_page(app, req, s, rd, View::error(Some(method), WRONG_CODE, 401)).await
}

/// The challenge is passed: a new session id proving two factors.
async fn complete(
    app: &App,
    req: &Request<'_>,
    s: Signed,
    method: Method,
    remember: bool,
    rd: &str,
) -> Response {
    let cfg = app.config.load();
    let device = app.cookies.known_device(req.cookie_header, &s.user.name);
    let account = crate::defense::account_key(&cfg.defense, &s.user.name, req.client_ip);
    if app
        .defense
        .record_success(&account, device.as_deref())
        .await
        .is_err()
    {
        return unavailable(app, req);
    }
    let record = SessionRecord {
        factors: 2,
        pending: Pending::Done,
        ..s.record.clone()
    };
    let (sid, _) = match app.sessions.rotate(&s.id, record).await {
        Ok(x) => x,
        Err(_) => return unavailable(app, req),
    };
    super::account::note_agent(app, &sid, req).await;
    let _ = app.store.delete(&code_key(&s.id.handle())).await;
    app.audit(
        "2fa_ok",
        json!({ "user": s.user.name, "method": method.as_str(), "client": req.client_ip.to_string(), "remember": remember && cfg.otp.remember_days > 0 }),
    );
    // The sign-in is complete; the event also tells when this factor was last used.
    app.accounts.record_later(
        &s.user.name,
        "signin_ok",
        &req.client_ip.to_string(),
        &format!("factors=2 method={}", method.as_str()),
    );
    let mut r = Response::redirect(303, if rd.is_empty() { "/" } else { rd });
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

/// A TOTP code: right for step now±1, and the step not used before by this account
/// (claimed atomically in the store, so two sessions or gateways can't both use it).
async fn check_totp(app: &App, user: &User, code: &str) -> Result<bool, crate::store::StoreError> {
    let Some(e) = open_enrolment(app, user) else {
        tracing::error!(user = %user.name, "authenticator secret can't be opened (data.key changed?)");
        return Ok(false);
    };
    let Some(step) = e.matching_step(code, app.clock.now()) else {
        return Ok(false);
    };
    claim_step(app, &user.name, &e, step).await
}

async fn claim_step(
    app: &App,
    user: &str,
    e: &Enrolment,
    step: u64,
) -> Result<bool, crate::store::StoreError> {
    // Kept until the step can no longer match (±1 step), plus a margin. Keyed by the
    // account and a fingerprint of the secret: a step is used once per account and app,
    // so an app just replaced doesn't block the new one's first code.
    let ttl = Duration::from_secs(e.period.max(1) * 4);
    let fp = app.sealer.code_hash("totp-secret", &e.secret);
    app.store
        .set_nx(&keys::totp_step_used(user, &fp[..16], step), b"1", ttl)
        .await
}

/// A backup code: removed from the account by one atomic operation of the
/// account store, so of two concurrent uses (on any gateways) one wins.
/// `Some(codes left)` when it was right.
async fn check_backup(
    app: &App,
    user: &User,
    code: &str,
) -> Result<Option<usize>, crate::store::StoreError> {
    let given = codes::normalize_backup(code);
    if given.len() != 10 {
        return Ok(None);
    }
    let hash = app.sealer.code_hash(&user.name, &given);
    match app.accounts.consume_backup_code(&user.name, &hash).await {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::error!(error = %e, "backup code not consumed: accounts unavailable");
            Err(crate::store::StoreError::Unavailable("accounts".into()))
        }
    }
}

/// Tells the owner a backup code was used, and how many remain.
fn backup_used(app: &App, req: &Request<'_>, user: &User, left: usize) {
    app.audit(
        "backup_code_used",
        json!({ "user": user.name, "left": left, "client": req.client_ip.to_string() }),
    );
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

enum Sent {
    Right,
    Wrong,
    /// No code (never sent, expired, used, or voided).
    Nothing,
    /// Over `otp.max_attempts`: the code is void.
    TooMany,
}

async fn check_sent(
    app: &App,
    handle: &str,
    method: Method,
    code: &str,
) -> Result<Sent, crate::store::StoreError> {
    let cfg = app.config.load();
    let key = code_key(handle);
    let Some(bytes) = app.store.get(&key).await? else {
        return Ok(Sent::Nothing);
    };
    let Ok(sent) = serde_json::from_slice::<SentCode>(&bytes) else {
        return Ok(Sent::Nothing);
    };
    if sent.method != method.as_str() {
        return Ok(Sent::Nothing);
    }
    // Tries are counted per pending sign-in and survive a resend.
    let tries = app
        .store
        .incr(
            &keys::code_tries(&key),
            cfg.otp.code_ttl.max(cfg.otp.send_window),
        )
        .await?;
    if tries > u64::from(cfg.otp.max_attempts) {
        app.store.delete(&key).await?;
        return Ok(Sent::TooMany);
    }
    let given = codes::normalize_numeric(code);
    if !app
        .sealer
        .code_matches(&format!("{handle}|{}", method.as_str()), &given, &sent.hash)
    {
        return Ok(Sent::Wrong);
    }
    // Consumed atomically: of two concurrent right answers, one wins.
    Ok(match app.store.take(&key).await? {
        Some(b) if b == bytes => Sent::Right,
        _ => Sent::Nothing,
    })
}

/// Pacing (one code per `otp.resend_after` and method for a pending sign-in) and
/// the send limits per account, per destination and per client (no SMS pumping).
/// `Ok(Err((what to tell the person, seconds to wait)))` when over.
async fn may_send(
    app: &App,
    req: &Request<'_>,
    s: &Signed,
    method: Method,
    handle: &str,
    dest: &str,
) -> Result<Result<(), (String, u64)>, crate::store::StoreError> {
    let cfg = app.config.load();
    if !cfg.otp.resend_after.is_zero() {
        let cool = keys::send_cooldown(handle, method.as_str());
        if !app.store.set_nx(&cool, b"1", cfg.otp.resend_after).await? {
            let secs = seconds_left(app, &cool, 1).await;
            return Ok(Err((
                format!("A code was sent a moment ago. You can ask for another in {secs} seconds."),
                secs,
            )));
        }
    }
    let dest_key = app.sealer.code_hash("destination", dest);
    for (key, limit) in [
        (keys::sent_to_account(&s.user.name), cfg.otp.send_limit),
        (
            keys::sent_to_destination(&dest_key[..32]),
            cfg.otp.send_limit,
        ),
        (
            keys::sent_for_client(&crate::defense::client_key(req.client_ip)),
            cfg.otp.send_limit_client,
        ),
    ] {
        if app.store.incr(&key, cfg.otp.send_window).await? > u64::from(limit) {
            let secs = seconds_left(app, &key, 60).await;
            app.audit(
                "code_send_limited",
                json!({ "user": s.user.name, "method": method.as_str(), "client": req.client_ip.to_string(), "limit": key.split(':').nth(1) }),
            );
            return Ok(Err((
                format!(
                    "Too many codes were sent. Wait {} minute(s) or use another method.",
                    secs.div_ceil(60)
                ),
                secs,
            )));
        }
    }
    Ok(Ok(()))
}

/// Seconds until `key` expires (at least 1; `default` when unknown).
async fn seconds_left(app: &App, key: &str, default: u64) -> u64 {
    app.store
        .ttl(key)
        .await
        .ok()
        .flatten()
        .map_or(default, |d| d.as_secs().max(1))
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

/// `POST /2fa/send`: sends a one-time code by email, SMS or voice.
pub async fn send(app: &Arc<App>, req: &Request<'_>) -> Response {
    let (s, f, rd) = match post_common(app, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if is_done(&s.record) {
        return Response::redirect(303, if rd.is_empty() { "/" } else { &rd });
    }
    let cfg = app.config.load();
    let Some(method) = chosen_method(app, &s.user, &f).filter(|m| m.sends_code()) else {
        return challenge_page(
            app,
            req,
            &s,
            &rd,
            View::error(None, "Codes can't be sent that way for this account.", 400),
        )
        .await;
    };
    let handle = s.id.handle();
    let view_err = |msg: String, status: u16| View {
        method: Some(method),
        error: None,
        notice: Some(msg),
        status,
        sent: true,
    };
    let dest = destination(method, &s.user).to_string();
    match may_send(app, req, &s, method, &handle, &dest).await {
        Ok(Ok(())) => {}
        Ok(Err((msg, secs))) => {
            let mut r = challenge_page(app, req, &s, &rd, view_err(msg, 429)).await;
            r.header("Retry-After", secs.to_string());
            return r;
        }
        Err(_) => return unavailable(app, req),
    }
    let code = codes::numeric(cfg.otp.code_length);
    let sent = SentCode {
        method: method.as_str().into(),
        hash: app
            .sealer
            .code_hash(&format!("{handle}|{}", method.as_str()), &code),
    };
    // Overwriting voids any earlier code; the try counter is kept.
    let stored = match serde_json::to_vec(&sent) {
        Ok(b) => {
            app.store
                .set(&code_key(&handle), &b, cfg.otp.code_ttl)
                .await
        }
        Err(e) => Err(crate::store::StoreError::Unavailable(e.to_string())),
    };
    if stored.is_err() {
        return unavailable(app, req);
    }
    let minutes = cfg.otp.code_ttl.as_secs().div_ceil(60);
    let channel = method.channel();
    let mut msg = match code_message(app, method, &s.user, &dest, &code) {
        Ok(m) => m,
        Err(e) => {
            // Templates are checked at start and reload, so this is unexpected.
            tracing::error!(error = %e, "message template failed");
            return status_page(
                app,
                true,
                500,
                "Something went wrong",
                "The code could not be sent. Try another method.",
            );
        }
    };
    msg.code = Some(code);
    if let Err(e) = app.notifier.load().send(&msg).await {
        tracing::error!(error = %e, user = %s.user.name, channel = %channel, "sign-in code not delivered");
        let _ = app.store.delete(&code_key(&handle)).await;
        let _ = app
            .store
            .delete(&keys::send_cooldown(&handle, method.as_str()))
            .await;
        return challenge_page(app, req, &s, &rd, View::error(Some(method), "The code could not be sent just now. Try again in a moment, or use another method.", 503)).await;
    }
    app.metrics
        .codes_sent
        .with_label_values(&[channel.as_str()])
        .inc();
    app.audit(
        "code_sent",
        json!({ "user": s.user.name, "method": method.as_str(), "to": mask(method, &s.user), "client": req.client_ip.to_string() }),
    );
    let notice = format!(
        "We sent a code to {}. It expires in {minutes} minute{}.",
        mask(method, &s.user),
        if minutes == 1 { "" } else { "s" }
    );
    challenge_page(
        app,
        req,
        &s,
        &rd,
        View {
            method: Some(method),
            notice: Some(notice),
            sent: true,
            ..View::default()
        },
    )
    .await
}

// ---------------------------------------------------------------------------
// Enrolment

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

fn needs_password(app: &App, r: &SessionRecord) -> bool {
    let cfg = app.config.load();
    app.clock.now().saturating_sub(r.password_at()) > cfg.otp.reauth_after.as_secs()
}

/// The secret being set up for this session: the same across reloads of the page.
async fn pending_enrolment(app: &App, s: &Signed) -> Result<Enrolment, crate::store::StoreError> {
    let key = enrol_key(&s.id.handle());
    if let Some(b) = app.store.get(&key).await? {
        if let Some(plain) = std::str::from_utf8(&b)
            .ok()
            .and_then(|t| app.sealer.open(t, &s.user.name))
        {
            if let Ok(e) = serde_json::from_slice::<Enrolment>(&plain) {
                return Ok(e);
            }
        }
    }
    let e = Enrolment::generate(&app.config.load().otp);
    let json =
        serde_json::to_vec(&e).map_err(|e| crate::store::StoreError::Unavailable(e.to_string()))?;
    let sealed = app
        .sealer
        .seal(&json, &s.user.name)
        .map_err(|e| crate::store::StoreError::Unavailable(e.to_string()))?;
    app.store
        .set(&key, sealed.as_bytes(), Duration::from_secs(15 * 60))
        .await?;
    Ok(e)
}

async fn setup_page_for(
    app: &App,
    req: &Request<'_>,
    s: &Signed,
    rd: &str,
    v: SetupView<'_>,
) -> Response {
    let cfg = app.config.load();
    let status = if v.status == 0 { 200 } else { v.status };
    let required = cfg.otp.required_for(&s.user.groups);
    let base = context! {
        csrf => app.cookies.csrf_token(s.id.as_str()),
        rd => rd,
        error => v.error,
        notice => v.notice,
        account => &s.user.name,
        required => required,
        needs_password => needs_password(app, &s.record),
    };
    if let Some(codes) = v.codes {
        let next = v.next.unwrap_or_else(|| "/".into());
        return Response::html(
            status,
            app.ui.load().render(
                "2fa_setup.html",
                context! { codes => codes, next => next, ..base },
            ),
        );
    }
    if s.user.has_totp() && !v.replace {
        return Response::html(
            status,
            app.ui.load().render(
                "2fa_setup.html",
                context! { enrolled => true, backup_left => s.user.backup_codes.len(), can_remove => !required, ..base },
            ),
        );
    }
    let e = match pending_enrolment(app, s).await {
        Ok(e) => e,
        Err(_) => return unavailable(app, req),
    };
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
    Response::html(
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
    )
}

/// Replacing an app (or touching the codes of one) needs a session that passed
/// the second factor: a password alone must not be able to swap the phone.
fn needs_second_first(s: &Signed) -> bool {
    s.user.has_totp() && !is_done(&s.record)
}

fn challenge_first(app: &App, here: &str) -> Response {
    let prefix = &app.config.load().server.portal_prefix;
    Response::redirect(303, &format!("{prefix}/2fa?rd={}", super::urlencode(here)))
}

/// `GET /2fa/setup`
pub async fn setup_page(app: &App, req: &Request<'_>) -> Response {
    let cfg = app.config.load();
    let rd = rd_of(app, req, None);
    let replace = query_param(req.query, "replace").is_some_and(|v| v == "1");
    let here = format!(
        "{}/2fa/setup?rd={}{}",
        cfg.server.portal_prefix,
        super::urlencode(&rd),
        if replace { "&replace=1" } else { "" }
    );
    let s = match signed_in(app, req, &here).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if needs_second_first(&s) {
        return challenge_first(app, &here);
    }
    setup_page_for(
        app,
        req,
        &s,
        &rd,
        SetupView {
            replace,
            ..SetupView::default()
        },
    )
    .await
}

/// `POST /2fa/setup`: `action` = confirm (with `code`), regenerate, remove.
pub async fn setup_post(app: &Arc<App>, req: &Request<'_>) -> Response {
    let (mut s, f, rd) = match post_common(app, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let cfg = app.config.load();
    let action = f.get("action").map(String::as_str).unwrap_or("confirm");
    let here = format!(
        "{}/2fa/setup?rd={}",
        cfg.server.portal_prefix,
        super::urlencode(&rd)
    );
    if needs_second_first(&s) {
        return challenge_first(app, &here);
    }
    let replace = action == "confirm";
    // Changing second factors needs a recent password.
    if needs_password(app, &s.record) {
        if let Err(r) = reauthenticate(app, req, &mut s, &f, &rd, replace).await {
            return r;
        }
    }
    match action {
        "confirm" => confirm(app, req, s, &f, &rd).await,
        "regenerate" | "remove" if !s.user.has_totp() => {
            setup_page_for(app, req, &s, &rd, SetupView::default()).await
        }
        "regenerate" => regenerate_codes(app, req, &s, &rd).await,
        "remove" => remove_factors(app, req, &s, &rd).await,
        _ => {
            setup_page_for(
                app,
                req,
                &s,
                &rd,
                SetupView::error("Unknown action.", 400, false),
            )
            .await
        }
    }
}

/// The password again, before a change of second factors (`otp.reauth_after`): a
/// guess like any other — reserved on the ladder, refused while locked, counted.
/// `Err` is the page to answer with.
async fn reauthenticate(
    app: &App,
    req: &Request<'_>,
    s: &mut Signed,
    f: &HashMap<String, String>,
    rd: &str,
    replace: bool,
) -> Result<(), Response> {
    let pw = f.get("password").map(String::as_str).unwrap_or("");
    let attempt = match reserve(app, req, &s.user).await {
        Ok(a) if a.standing.locked_for.is_none() => a,
        Ok(a) => {
            if a.reserved() {
                super::count_second_step_failure(app, req, &s.user, &a, "reauth").await?;
            }
            return Err(
                setup_page_for(app, req, s, rd, SetupView::error(LOCKED, 429, replace)).await,
            );
        }
        Err(_) => return Err(unavailable(app, req)),
    };
    if !super::password_again(app, req, &s.user, &attempt, pw).await? {
        let view = SetupView::error(
            "Enter your current password to confirm it's you.",
            401,
            replace,
        );
        return Err(setup_page_for(app, req, s, rd, view).await);
    }
    // The right password: this attempt is forgiven (it proves nothing of a second factor).
    let _ = app.defense.attempt_passed(&attempt, false).await;
    s.record.auth_at = app.clock.now();
    if app.sessions.update(&s.id, &s.record).await.is_err() {
        return Err(unavailable(app, req));
    }
    Ok(())
}

/// `action=regenerate`: a new set of backup codes, shown once; the old set is void.
async fn regenerate_codes(app: &App, req: &Request<'_>, s: &Signed, rd: &str) -> Response {
    let cfg = app.config.load();
    let (plain, hashes) = new_backup_codes(app, &s.user.name);
    let saved = save_factors(app, &s.user.name, move |u| {
        u.backup_codes = hashes;
        u.factors_version += 1;
    })
    .await;
    if let Err(r) = saved {
        return r;
    }
    app.audit(
        "backup_codes_regenerated",
        json!({ "user": s.user.name, "client": req.client_ip.to_string() }),
    );
    setup_page_for(
        app,
        req,
        s,
        rd,
        SetupView {
            codes: Some(plain),
            next: Some(here_or(rd, &cfg.server.portal_prefix)),
            notice: Some("Your old backup codes no longer work."),
            ..SetupView::default()
        },
    )
    .await
}

/// `action=remove`: the authenticator app and backup codes off the account.
async fn remove_factors(app: &App, req: &Request<'_>, s: &Signed, rd: &str) -> Response {
    let cfg = app.config.load();
    if cfg.otp.required_for(&s.user.groups) {
        return setup_page_for(app, req, s, rd, SetupView::error("Your organisation requires two-step verification, so your last second factor can't be removed.", 403, false)).await;
    }
    if let Err(r) = save_factors(app, &s.user.name, |u| {
        u.totp.clear();
        u.backup_codes.clear();
        u.factors_version += 1;
    })
    .await
    {
        return r;
    }
    app.audit(
        "2fa_removed",
        json!({ "user": s.user.name, "client": req.client_ip.to_string() }),
    );
    Response::html(
        200,
        app.ui.load().message(
            "Two-step verification is off",
            "Your authenticator app and backup codes were removed from your account.",
            Some((
                &format!("{}/2fa/setup", cfg.server.portal_prefix),
                "Set it up again",
            )),
        ),
    )
}

fn here_or(rd: &str, prefix: &str) -> String {
    if rd.is_empty() {
        format!("{prefix}/2fa/setup")
    } else {
        rd.to_string()
    }
}

fn new_backup_codes(app: &App, user: &str) -> (Vec<String>, Vec<String>) {
    let plain = codes::backup_set();
    let hashes = plain
        .iter()
        .map(|c| app.sealer.code_hash(user, &codes::normalize_backup(c)))
        .collect();
    (plain, hashes)
}

/// Changes an account's second factors in the account store (and records it).
async fn save_factors(
    app: &App,
    user: &str,
    change: impl FnOnce(&mut User) + Send + 'static,
) -> Result<(), Response> {
    super::update_user(app, user, "two-step verification", change).await?;
    app.accounts
        .record_later(user, "factors_changed", "", "two-step verification");
    Ok(())
}

/// The app is enrolled: the session now proves two factors (under a new id), the
/// sessions from before — which proved only the password — end, and the backup
/// codes are shown once. This browser becomes a known device.
async fn enrolled(
    app: &App,
    req: &Request<'_>,
    s: Signed,
    rd: &str,
    plain: Vec<String>,
) -> Response {
    // The session has just proven the new factor.
    let record = SessionRecord {
        factors: 2,
        pending: Pending::Done,
        ..s.record.clone()
    };
    let (sid, _) = match app.sessions.rotate(&s.id, record.clone()).await {
        Ok(x) => x,
        Err(_) => return unavailable(app, req),
    };
    super::account::note_agent(app, &sid, req).await;
    // Sessions from before the enrolment proved only the password: they end now.
    match app
        .sessions
        .revoke_others(&s.user.name, &sid.handle())
        .await
    {
        Ok(n) if n > 0 => app.audit(
            "sessions_revoked",
            json!({ "user": s.user.name, "count": n, "why": "2fa_enrolled" }),
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "enrolled; older sessions not all ended"),
    }
    let user = app
        .accounts
        .get(&s.user.name)
        .await
        .ok()
        .flatten()
        .unwrap_or(s.user.clone());
    let fresh = Signed {
        id: sid.clone(),
        record,
        user,
    };
    let mut r = setup_page_for(
        app,
        req,
        &fresh,
        rd,
        SetupView {
            codes: Some(plain),
            next: Some(if rd.is_empty() {
                "/".into()
            } else {
                rd.to_string()
            }),
            ..SetupView::default()
        },
    )
    .await;
    r.header(
        "Set-Cookie",
        app.cookies.session_cookie(sid.as_str(), req.host),
    );
    if let Some(c) = super::device_cookie(app, req, &s.user.name) {
        r.header("Set-Cookie", c);
    }
    r
}

async fn confirm(
    app: &App,
    req: &Request<'_>,
    s: Signed,
    f: &HashMap<String, String>,
    rd: &str,
) -> Response {
    let code = f.get("code").map(|c| c.trim()).unwrap_or("");
    let key = enrol_key(&s.id.handle());
    let pending = match app.store.get(&key).await {
        Ok(Some(b)) => std::str::from_utf8(&b)
            .ok()
            .and_then(|t| app.sealer.open(t, &s.user.name))
            .and_then(|p| serde_json::from_slice::<Enrolment>(&p).ok()),
        Ok(None) => None,
        Err(_) => return unavailable(app, req),
    };
    let Some(e) = pending else {
        return setup_page_for(
            app,
            req,
            &s,
            rd,
            SetupView::error(
                "That setup expired. Scan the new QR code and try again.",
                400,
                true,
            ),
        )
        .await;
    };
    let Some(step) = e.matching_step(code, app.clock.now()) else {
        return setup_page_for(app, req, &s, rd, SetupView::error("That code is not right. Check that your phone's clock is set automatically, and enter the code the app shows now.", 400, true)).await;
    };
    // The enrolment code can't be used again at the challenge.
    match claim_step(app, &s.user.name, &e, step).await {
        Ok(true) => {}
        Ok(false) => {
            return setup_page_for(
                app,
                req,
                &s,
                rd,
                SetupView::error(
                    "That code was already used. Wait for the next one.",
                    400,
                    true,
                ),
            )
            .await;
        }
        Err(_) => return unavailable(app, req),
    }
    let json = match serde_json::to_vec(&e) {
        Ok(j) => j,
        Err(_) => return unavailable(app, req),
    };
    let Ok(sealed) = app.sealer.seal(&json, &s.user.name) else {
        return unavailable(app, req);
    };
    let (plain, hashes) = new_backup_codes(app, &s.user.name);
    let enrolled_at = app.clock.now();
    if let Err(r) = save_factors(app, &s.user.name, move |u| {
        u.totp = sealed;
        u.backup_codes = hashes;
        u.factors_version += 1;
        u.totp_enrolled_at = enrolled_at;
    })
    .await
    {
        return r;
    }
    let _ = app.store.delete(&key).await;
    app.audit(
        "2fa_enrolled",
        json!({ "user": s.user.name, "method": "totp", "client": req.client_ip.to_string() }),
    );
    enrolled(app, req, s, rd, plain).await
}
