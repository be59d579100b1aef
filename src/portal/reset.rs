//! The password-reset page (`/reset`): parse the form, call
//! [`crate::auth::reset`] (whose module doc has the flow), render the outcome.
//!
//! ```text
//!  GET  /reset ─> form (identifier) (+ CAPTCHA when the ladder or `captcha_on_reset` asks)
//!  POST /reset step=request ─ 429 / 403 / CAPTCHA wrong 401
//!        └─> Requested ─> the code emailed off the request path
//!            ─> "if an account matches, we sent a code" (the same page either way)
//!  POST /reset step=confirm ─ BadPassword 400 · WrongCode 401 · Restart 400 ·
//!                             Busy 503 · Done ─> "sign in"
//! ```

use std::sync::Arc;

use minijinja::context;
use serde_json::json;

use super::error::PortalError;
use super::forms::{self, ResetForm};
use super::{pre_session, Request, Response};
use crate::app::App;
use crate::auth::reset::{self, ResetOutcome};
use crate::notify::Notifier;

type Page = Result<Response, PortalError>;

struct View<'a> {
    step: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    status: u16,
    captcha: bool,
}

impl<'a> View<'a> {
    fn new(step: &'a str, error: Option<&'a str>, status: u16) -> View<'a> {
        View {
            step,
            error,
            notice: None,
            status,
            captcha: false,
        }
    }
}

async fn render(app: &App, req: &Request<'_>, v: View<'_>) -> Page {
    let (pre, set_cookie) = pre_session(app, req);
    let cfg = app.config.load();
    let captcha_id = super::new_captcha(app, req, &pre, v.captcha).await?;
    let html = app.ui.load().render(
        "reset.html",
        context! {
            csrf => app.cookies.csrf_token(&pre),
            step => v.step,
            policy_min => cfg.password.min_length,
            policy_single => cfg.password.min_length_single_factor,
            error => v.error,
            notice => v.notice,
            captcha_id => captcha_id,
            prefix => &cfg.server.portal_prefix,
        },
    );
    let mut r = Response::html(v.status, html);
    if let Some(c) = set_cookie {
        r.header("Set-Cookie", c);
    }
    Ok(r)
}

/// `GET /reset`
pub async fn page(app: &App, req: &Request<'_>) -> Page {
    let cfg = app.config.load();
    let captcha = reset::captcha_needed(&super::deps(app, &cfg), req.client_ip).await?;
    let v = View {
        captcha,
        ..View::new("request", None, 200)
    };
    render(app, req, v).await
}

const EXPIRED: &str =
    "That code has expired, was replaced by a newer one, or was used too often. Ask for a new one.";

/// `POST /reset`: `step` = request (the default) or confirm.
pub async fn post(app: &Arc<App>, req: &Request<'_>) -> Page {
    super::rate(app, req)?;
    let f: ResetForm = forms::parse_or_empty(&req.body);
    let pre = super::posted_pre(app, req, &f.csrf).ok_or(PortalError::FormExpired)?;
    let cfg = app.config.load();
    let deps = super::deps(app, &cfg);
    if f.step == "confirm" {
        let outcome =
            reset::confirm(&deps, req.client_ip, &pre, &f.code, &f.password, &f.confirm).await?;
        return match outcome {
            ResetOutcome::Restart => {
                render(app, req, View::new("request", Some(EXPIRED), 400)).await
            }
            ResetOutcome::BadPassword(r) => {
                let msg = r.message_in(&app.ui.load().texts, crate::i18n::current().lang);
                render(app, req, View::new("code", Some(&msg), 400)).await
            }
            ResetOutcome::WrongCode => {
                render(
                    app,
                    req,
                    View::new("code", Some("That code is not right."), 401),
                )
                .await
            }
            ResetOutcome::Busy => Err(PortalError::Busy),
            ResetOutcome::Done { .. } => {
                let prefix = cfg.server.portal_prefix.clone();
                let html = app.ui.load().message(
                    "Password changed",
                    "Your password was changed and you were signed out everywhere. Sign in with the new password.",
                    Some((&format!("{prefix}/login"), "Sign in")),
                );
                Ok(Response::html(200, html))
            }
        };
    }
    // step = request
    if reset::captcha_needed(&deps, req.client_ip).await? {
        let c = &f.captcha;
        if !app.captchas.solve(&c.captcha_id, &pre, &c.captcha).await? {
            app.defense
                .record_failure(&cfg.defense, None, None, req.client_ip)
                .await?;
            let wrong = View {
                captcha: true,
                ..View::new("request", Some(super::login::CAPTCHA_WRONG), 401)
            };
            return render(app, req, wrong).await;
        }
    }
    let requested = reset::request(&deps, req.client_ip, &pre, &f.identifier).await?;
    if let Some((user, code)) = requested.send {
        send_code(app, req, &user, code)?;
    }
    let minutes = cfg.otp.code_ttl.as_secs().div_ceil(60);
    let notice = format!("If an account matches, we sent a code to its email address. It expires in {minutes} minute(s).");
    let v = View {
        notice: Some(&notice),
        ..View::new("code", None, 200)
    };
    render(app, req, v).await
}

/// Emails a reset code, off the request path (so the answer takes as long for
/// every identifier).
fn send_code(
    app: &App,
    req: &Request<'_>,
    user: &crate::users::User,
    code: String,
) -> Result<(), PortalError> {
    let cfg = app.config.load();
    let minutes = cfg.otp.code_ttl.as_secs().div_ceil(60);
    let ctx = context! { code => &code, minutes => minutes };
    let mut msg = super::compose(
        app,
        "msg_reset_code.txt",
        ctx,
        crate::notify::Channel::Email,
        &user.email,
        "reset_code",
    )
    .map_err(|e| {
        tracing::error!(error = %e, "reset code template failed");
        PortalError::Unavailable
    })?;
    msg.code = Some(code);
    let notifier = app.notifier.load_full();
    let name = user.name.clone();
    let client = req.client_ip.to_string();
    let clock = app.clock.clone();
    app.send_later(async move {
        match notifier.send(&msg).await {
            Ok(()) => crate::audit::event(
                &*clock,
                "reset_code_sent",
                json!({ "user": name, "client": client }),
            ),
            Err(e) => tracing::error!(error = %e, "reset code not delivered"),
        }
    });
    Ok(())
}
