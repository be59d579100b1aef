//! The sign-in page (`/login`): parse the form, call [`crate::auth::signin`],
//! render its outcome. The flow itself (ladder, CAPTCHA, password, account
//! status, session) is the machine's; this file only turns outcomes into pages.
//!
//! ```text
//!  GET  /login ─> pre-session cookie + CSRF token ─> form (+ CAPTCHA when the client is on the ladder)
//!  POST /login ─ over ip_per_minute ─> 429      ─ CSRF/Origin bad ─> 403
//!              ─ Invalid ─> 400 form            ─ Busy ─> 503 + Retry-After
//!              ─ Refused / Wrong / NeedCaptcha ─> 401 form, one message for all
//!              ─ Suspended / Closed ─> 403 page saying so
//!              ─ SignedIn ─> session cookie ─> 303 rd (validated), /2fa or /2fa/setup
//! ```

use std::sync::Arc;

use minijinja::context;

use super::error::PortalError;
use super::forms::{self, LoginForm};
use super::{pre_session, query_param, status_page, Request, Response};
use crate::app::App;
use crate::auth::signin::{self, CaptchaAnswer, Failure, Invalid, SignInInput, SignInOutcome};
use crate::session::Pending;

pub(crate) const WRONG: &str =
    "The identifier or password is not right, or this account can't sign in here.";
pub(crate) const WRONG_LOCKED_HINT: &str = "The identifier or password is not right, or this account can't sign in here \
     right now. After many failed attempts an account is locked for a while: wait and try again later, \
     reset your password, or look for an email from us.";
pub(crate) const CAPTCHA_WRONG: &str =
    "Please type the characters shown in the picture, or the digits you hear.";

/// What the sign-in form should show besides the fields.
#[derive(Default)]
pub(crate) struct FormState<'a> {
    error: Option<&'a str>,
    status: u16,
    rd: Option<&'a str>,
    identifier: &'a str,
    /// Show a CAPTCHA: bound to the pre-session, created here.
    captcha: bool,
}

/// `GET /login`, and the form again after a failure.
pub(crate) async fn page(
    app: &App,
    req: &Request<'_>,
    st: FormState<'_>,
) -> Result<Response, PortalError> {
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
        || app
            .defense
            .standing(&cfg.defense, None, None, req.client_ip)
            .await?
            .captcha;
    let captcha_id = super::new_captcha(app, req, &pre, captcha).await?;
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
    Ok(r)
}

/// `POST /login`: parse → [`signin::attempt`] → render.
pub(crate) async fn post(app: &Arc<App>, req: &Request<'_>) -> Result<Response, PortalError> {
    // Floods stop here, before any store or argon2 work.
    super::rate(app, req)?;
    let f: LoginForm = forms::parse(&req.body)?;
    let pre = super::posted_pre(app, req, &f.csrf).ok_or(PortalError::FormExpired)?;
    let identifier = f.identifier.trim();
    let input = SignInInput {
        identifier,
        password: &f.password,
        captcha: CaptchaAnswer {
            pre: &pre,
            id: &f.captcha.captcha_id,
            answer: &f.captcha.captcha,
        },
    };
    let cfg = app.config.load();
    let outcome =
        signin::attempt(&super::deps(app, &cfg), &super::browser(app, req), input).await?;
    let again = |error, status, captcha| FormState {
        error: Some(error),
        status,
        rd: Some(&f.rd),
        identifier,
        captcha,
    };
    match outcome {
        SignInOutcome::Invalid(Invalid::TooLong) => {
            page(app, req, again("That password is too long (1024 bytes at most).", 400, false)).await
        }
        SignInOutcome::Invalid(Invalid::Incomplete) => {
            page(app, req, again("Enter your identifier and your password.", 400, false)).await
        }
        SignInOutcome::Busy => Err(PortalError::Busy),
        SignInOutcome::NeedCaptcha(fail) => {
            lock_notice(app, req, &fail);
            page(app, req, again(CAPTCHA_WRONG, 401, fail.captcha_next)).await
        }
        SignInOutcome::Refused(fail) | SignInOutcome::Wrong(fail) => {
            lock_notice(app, req, &fail);
            let msg = if fail.captcha_next {
                WRONG_LOCKED_HINT
            } else {
                WRONG
            };
            page(app, req, again(msg, 401, fail.captcha_next)).await
        }
        SignInOutcome::Suspended { reason } => Ok(status_page(
            app,
            req.accept_html,
            403,
            "Account suspended",
            &format!(
                "This account is suspended: {reason}. Contact your administrator to have it enabled again."
            ),
        )),
        SignInOutcome::Closed => Ok(status_page(
            app,
            req.accept_html,
            403,
            "Account closed",
            "This account is closed and can no longer sign in. If you think this is a mistake, contact your administrator.",
        )),
        SignInOutcome::SignedIn(s) => {
            super::password::rehash_if_needed(app, &s.user, &f.password);
            Ok(signed_in(app, req, &f.rd, s).await)
        }
    }
}

/// Tells the owner (off the request path: the answer takes as long whether or
/// not the identifier is an account with an email address) that a failure
/// locked their account.
fn lock_notice(app: &Arc<App>, req: &Request<'_>, fail: &Failure) {
    let Some(locked) = &fail.locked else {
        return;
    };
    let Some(u) = locked.notify.clone() else {
        return;
    };
    let app2 = app.clone();
    let link_base = super::base_url(app, req);
    let client_ip = req.client_ip;
    let dur = locked.duration;
    // In the language of the page, though sent after the answer.
    let lang = crate::i18n::current();
    app.send_later(async move {
        crate::i18n::scope(
            lang,
            super::send_lock_notice_to(&app2, &link_base, client_ip, &u, dur),
        )
        .await;
    });
}

/// The right password: the session cookie, then the second step when one is due, else `rd`.
async fn signed_in(app: &App, req: &Request<'_>, rd: &str, s: signin::SignedIn) -> Response {
    let cfg = app.config.load();
    super::account::note_agent(app, &s.session, req).await;
    let target = crate::respond::after_sign_in(
        &app.redirects.load(),
        rd,
        s.pending,
        &cfg.server.portal_prefix,
    );
    let mut r = Response::redirect(303, &target);
    r.header(
        "Set-Cookie",
        app.cookies.session_cookie(s.session.as_str(), req.host),
    );
    // Only a whole sign-in makes this browser a known device: with a second step
    // still to come, its failures must count against the account (see `twofactor`).
    if s.pending == Pending::Done {
        if let Some(c) = super::device_cookie(app, req, &s.user.name) {
            r.header("Set-Cookie", c);
        }
    }
    r
}
