//! The password-change page (`/password`): parse the form, call
//! [`crate::auth::password_change`] (whose module doc has the flow), render the
//! outcome. Also the background re-hash of a password whose stored hash was
//! made with other argon2 costs (`rehash_if_needed`).
//!
//! ```text
//!  GET  /password ─ no whole sign-in ─> sign in (or the pending step) first ─ ok ─> form
//!  POST /password ─ 429 / 403 ─> BadNew 400 · Refused 429 · NeedCaptcha 401 · Wrong 401 ·
//!                                Busy 503 · Changed ─> "changed" + a fresh session cookie
//! ```

use std::sync::Arc;

use minijinja::context;
use serde_json::json;

use super::error::PortalError;
use super::forms::{self, PasswordForm};
use super::{origin_ok, pre_session, Request, Response};
use crate::app::{App, SessionState};
use crate::auth::password_change::{self, ChangeInput, ChangeOutcome};
use crate::auth::signin::CaptchaAnswer;
use crate::respond::{go_to, Back, Step};

type Page = Result<Response, PortalError>;

async fn render(
    app: &App,
    req: &Request<'_>,
    user: &str,
    sid: &str,
    error: Option<&str>,
    status: u16,
    captcha: bool,
) -> Page {
    let cfg = app.config.load();
    let (pre, set_cookie) = pre_session(app, req);
    let captcha_id = super::new_captcha(app, req, &pre, captcha).await?;
    let second = app
        .accounts
        .get(user)
        .await
        .ok()
        .flatten()
        .map(|u| crate::auth::password_policy::has_second_factor(&u));
    let html = app.ui.load().render(
        "password.html",
        context! {
            user => user,
            csrf => app.cookies.csrf_token(sid),
            error => error,
            captcha_id => captcha_id,
            prefix => &cfg.server.portal_prefix,
            policy_min => cfg.password.min_length,
            policy_single => cfg.password.min_length_single_factor,
            policy_second => second,
        },
    );
    let mut r = Response::html(status, html);
    if let Some(c) = set_cookie {
        r.header("Set-Cookie", c);
    }
    Ok(r)
}

/// A sign-in still waiting for its second factor (or enrolment) can't change the
/// password, and neither can a password-only session of an account that has a
/// second factor: an authenticator app (or its backup codes), or a phone the
/// gateway can send codes to (email is not an authenticator: the password policy's
/// definition). A password alone must not be able to lock the owner out. (Such a
/// session is a sign-in that needed no more, e.g. a phone-only account on a
/// `one_factor` path; the page sends it to the second step first, then back.)
pub(super) fn needs_second_step(
    app: &App,
    record: &crate::session::SessionRecord,
    user: &crate::users::User,
) -> bool {
    use super::twofactor::Method;
    !record.pending.is_done()
        || (record.factors < 2
            && super::twofactor::methods(app, user).iter().any(|m| {
                matches!(
                    m,
                    Method::Totp | Method::Backup | Method::Sms | Method::Voice
                )
            }))
}

/// A redirect to `step`, coming back to this page after.
fn go(app: &App, status: u16, step: Step) -> Response {
    let prefix = &app.config.load().server.portal_prefix;
    let here = format!("{prefix}/password");
    let back = Back {
        portal: prefix,
        here: &here,
        query: None,
    };
    go_to(status, step, back)
}

fn pending_step(app: &App, record: &crate::session::SessionRecord) -> Response {
    let step = match record.pending {
        crate::session::Pending::Enrol => Step::Enrol,
        _ => Step::SecondFactor,
    };
    go(app, 303, step)
}

const LOCKED: &str = "Too many failed attempts. For your security, wait a while and try again later, or reset your password.";

fn to_login(app: &App) -> Response {
    go(app, 302, Step::Login)
}

/// The whole session a password change is made in, or (as `Err`) where to go first.
async fn signed_in(
    app: &App,
    req: &Request<'_>,
) -> Result<(crate::session::SessionId, Arc<crate::users::User>, u8), PortalError> {
    let go = match app.session_state(req.cookie_header).await? {
        SessionState::Valid { record, user, .. } if needs_second_step(app, &record, &user) => {
            pending_step(app, &record)
        }
        SessionState::Valid { id, user, record } => return Ok((id, user, record.factors)),
        _ => to_login(app),
    };
    Err(PortalError::GoFirst(Box::new(go)))
}

/// `GET /password`
pub async fn page(app: &App, req: &Request<'_>) -> Page {
    let (id, user, _) = signed_in(app, req).await?;
    let cfg = app.config.load();
    let captcha =
        password_change::needs_captcha(&super::deps(app, &cfg), req.client_ip, &user.name).await?;
    render(app, req, &user.name, id.as_str(), None, 200, captcha).await
}

/// `POST /password`: parse → [`password_change::change`] → render.
pub async fn post(app: &Arc<App>, req: &Request<'_>) -> Page {
    super::rate(app, req)?;
    let (id, user, factors) = signed_in(app, req).await?;
    let f: PasswordForm = forms::parse_or_empty(&req.body);
    if !app.cookies.csrf_ok(id.as_str(), &f.csrf) || !origin_ok(req) {
        return Err(PortalError::FormExpired);
    }
    let pre = app
        .cookies
        .read(req.cookie_header, &app.cookies.pre_name)
        .unwrap_or_default();
    let input = ChangeInput {
        current: &f.current,
        new: &f.password,
        confirm: &f.confirm,
        captcha: CaptchaAnswer {
            pre: &pre,
            id: &f.captcha.captcha_id,
            answer: &f.captcha.captcha,
        },
    };
    let cfg = app.config.load();
    let deps = super::deps(app, &cfg);
    let browser = super::browser(app, req);
    let outcome = password_change::change(&deps, &browser, &user, factors, input).await?;
    let (msg, status, captcha, locked) = match outcome {
        ChangeOutcome::Changed { session } => return Ok(changed(app, req, &session)),
        ChangeOutcome::Busy => return Err(PortalError::Busy),
        ChangeOutcome::BadNew {
            refusal,
            captcha_next,
        } => (
            refusal.message_in(&app.ui.load().texts, crate::i18n::current().lang),
            400,
            captcha_next,
            None,
        ),
        ChangeOutcome::Refused { locked } => (LOCKED.to_string(), 429, true, locked),
        ChangeOutcome::NeedCaptcha {
            locked,
            captcha_next,
        } => (
            super::login::CAPTCHA_WRONG.to_string(),
            401,
            captcha_next,
            locked,
        ),
        ChangeOutcome::Wrong {
            locked,
            captcha_next,
        } => (
            "Your current password is not right.".to_string(),
            401,
            captcha_next,
            locked,
        ),
    };
    super::send_lock_notice(app, req, locked.as_ref()).await;
    render(
        app,
        req,
        &user.name,
        id.as_str(),
        Some(&msg),
        status,
        captcha,
    )
    .await
}

/// The new password is saved: say so, with this browser's fresh session.
fn changed(app: &App, req: &Request<'_>, sid: &crate::session::SessionId) -> Response {
    let html = app.ui.load().message(
        "Password changed",
        "Your password was changed. Other browsers signed in to your account were signed out.",
        None,
    );
    let mut r = Response::html(200, html);
    r.header(
        "Set-Cookie",
        app.cookies.session_cookie(sid.as_str(), req.host),
    );
    r
}

/// After a sign-in with the right `password`: when the stored hash was made with
/// other argon2 parameters than `[password] argon2_*` now say, it is re-made from
/// the password, off the request path. Nothing else about the account changes (the
/// credentials version stays: sessions go on), and a password changed meanwhile is
/// left alone.
pub(crate) fn rehash_if_needed(app: &Arc<App>, user: &crate::users::User, password: &str) {
    let params = app.config.load().password.argon2;
    if !params.needs_rehash(&user.password) {
        return;
    }
    let (app2, name, old) = (app.clone(), user.name.clone(), user.password.clone());
    let pw = zeroize::Zeroizing::new(password.to_string());
    app.send_later(async move {
        let hash = match app2.hasher.hash(&pw, params).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "rehash skipped");
                return;
            }
        };
        let res = super::update_user(&app2, &name, "password", move |u| {
            if u.password == old {
                u.password = hash;
            }
        })
        .await;
        match res {
            Ok(_) => {
                crate::audit::event(&*app2.clock, "password_rehashed", json!({ "user": name }))
            }
            Err(PortalError::NotChanged { why, .. }) => {
                tracing::warn!(error = %why, "rehash not saved")
            }
            Err(_) => {}
        }
    });
}
