//! Changing one's password while signed in: current + new twice (+ CAPTCHA when
//! `defense.captcha_on_password_change` is set or the ladder asks). A wrong current
//! password counts on the account's ladder. Success ends every other session of
//! the account and gives this browser a fresh one.

use std::sync::Arc;

use minijinja::context;
use serde_json::json;

use super::reset::{check_new_password, store_new_password};
use super::{
    forbidden_form, form, origin_ok, pre_session, too_many, unavailable, urlencode, Request,
    Response,
};
use crate::app::{App, SessionState};
use crate::auth::password::PasswordError;

async fn render(
    app: &App,
    req: &Request<'_>,
    user: &str,
    sid: &str,
    error: Option<&str>,
    status: u16,
    captcha: bool,
) -> Response {
    let cfg = app.config.load();
    let (pre, set_cookie) = pre_session(app, req);
    let captcha_id = match super::new_captcha(app, req, &pre, captcha).await {
        Ok(id) => id,
        Err(r) => return r,
    };
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
    r
}

async fn needs_captcha(app: &App, req: &Request<'_>, account: &str) -> Option<bool> {
    let cfg = app.config.load();
    if cfg.defense.captcha_on_password_change {
        return Some(true);
    }
    let key = crate::defense::account_key(&cfg.defense, account, req.client_ip);
    app.defense
        .standing(&cfg.defense, Some(&key), None, req.client_ip)
        .await
        .ok()
        .map(|s| s.captcha)
}

/// A sign-in still waiting for its second factor (or enrolment) can't change the
/// password, and neither can a password-only session of an account that has a
/// second factor now (one from before its enrolment): a password alone must not
/// be able to lock the owner out.
fn needs_second_step(record: &crate::session::SessionRecord, user: &crate::users::User) -> bool {
    !record.pending.is_done() || (user.has_totp() && record.factors < 2)
}

fn pending_step(app: &App, record: &crate::session::SessionRecord) -> Response {
    let prefix = &app.config.load().server.portal_prefix;
    let step = match record.pending {
        crate::session::Pending::Enrol => "2fa/setup",
        _ => "2fa",
    };
    Response::redirect(
        303,
        &format!(
            "{prefix}/{step}?rd={}",
            super::urlencode(&format!("{prefix}/password"))
        ),
    )
}

const LOCKED: &str = "Too many failed attempts. For your security, wait a while and try again later, or reset your password.";

fn to_login(app: &App) -> Response {
    let prefix = app.config.load().server.portal_prefix.clone();
    Response::redirect(
        302,
        &format!(
            "{prefix}/login?rd={}",
            urlencode(&format!("{prefix}/password"))
        ),
    )
}

pub async fn page(app: &App, req: &Request<'_>) -> Response {
    match app.session_state(req.cookie_header).await {
        Ok(SessionState::Valid { record, user, .. }) if needs_second_step(&record, &user) => {
            pending_step(app, &record)
        }
        Ok(SessionState::Valid { id, user, .. }) => {
            let Some(captcha) = needs_captcha(app, req, &user.name).await else {
                return unavailable(app, req);
            };
            render(app, req, &user.name, id.as_str(), None, 200, captcha).await
        }
        Ok(_) => to_login(app),
        Err(_) => unavailable(app, req),
    }
}

/// The session a password change is made in: whole (both steps done), else the
/// page to answer with.
async fn signed_in(
    app: &Arc<App>,
    req: &Request<'_>,
) -> Result<(crate::session::SessionId, Arc<crate::users::User>, u8), Response> {
    match app.session_state(req.cookie_header).await {
        Ok(SessionState::Valid { record, user, .. }) if needs_second_step(&record, &user) => {
            Err(pending_step(app, &record))
        }
        Ok(SessionState::Valid { id, user, record }) => Ok((id, user, record.factors)),
        Ok(_) => Err(to_login(app)),
        Err(_) => Err(unavailable(app, req)),
    }
}

/// The CAPTCHA answer on the form, for this browser's pre-session.
async fn captcha_right(
    app: &App,
    req: &Request<'_>,
    id: &str,
    answer: &str,
) -> Result<bool, crate::store::StoreError> {
    let pre = app
        .cookies
        .read(req.cookie_header, &app.cookies.pre_name)
        .unwrap_or_default();
    app.captchas.solve(id, &pre, answer).await
}

pub async fn post(app: &Arc<App>, req: &Request<'_>) -> Response {
    let cfg = app.config.load();
    if let Err(wait) = app.defense.check_rate(&cfg.defense, req.client_ip) {
        return too_many(app, req, wait);
    }
    let (id, user, factors) = match signed_in(app, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let f = form(&req.body).unwrap_or_default();
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if !app.cookies.csrf_ok(id.as_str(), get("csrf")) || !origin_ok(req) {
        return forbidden_form(app, req);
    }
    let account = crate::defense::account_key(&cfg.defense, &user.name, req.client_ip);
    let again = |error: String, status: u16, captcha: bool| {
        let user = user.clone();
        let id = id.clone();
        async move {
            render(
                app,
                req,
                &user.name,
                id.as_str(),
                Some(&error),
                status,
                captcha,
            )
            .await
        }
    };
    // The new password first: a typo there is no guess at the current one.
    if let Err(msg) = check_new_password(
        &app.ui.load().texts,
        &cfg,
        Some(user.as_ref()),
        get("password"),
        get("confirm"),
    ) {
        let captcha = needs_captcha(app, req, &user.name).await.unwrap_or(true);
        return again(msg, 400, captcha).await;
    }
    // A guess at the current password, by whoever holds this session: reserved on the
    // ladder before the hash (bursts can't race the thresholds), refused while locked,
    // and counted on the account's ladder like a second step.
    let device = app.cookies.known_device(req.cookie_header, &user.name);
    let attempt = match app
        .defense
        .begin_attempt(&cfg.defense, &account, device.as_deref(), req.client_ip)
        .await
    {
        Ok(a) => a,
        Err(_) => return unavailable(app, req),
    };
    let fail = |reason| guess_failed(app, req, &user, &attempt, reason);
    if attempt.standing.locked_for.is_some() {
        if let Err(PasswordError::Busy) = app.hasher.verify(get("current"), None).await {
            return super::busy(app, true);
        }
        return match fail("locked").await {
            Ok(_) => again(LOCKED.into(), 429, true).await,
            Err(r) => r,
        };
    }
    let captcha = cfg.defense.captcha_on_password_change || attempt.standing.captcha;
    if captcha {
        match captcha_right(app, req, get("captcha_id"), get("captcha")).await {
            Ok(true) => {}
            Ok(false) => {
                return match fail("captcha").await {
                    Ok(_) => again(super::CAPTCHA_WRONG.into(), 401, true).await,
                    Err(r) => r,
                }
            }
            Err(_) => return unavailable(app, req),
        }
    }
    match app
        .hasher
        .verify(get("current"), Some(&user.password))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return match fail("password").await {
                Ok(captcha) => {
                    again("Your current password is not right.".into(), 401, captcha).await
                }
                Err(r) => r,
            };
        }
        Err(PasswordError::Busy) => {
            let _ = app.defense.attempt_passed(&attempt, false).await;
            return super::busy(app, true);
        }
        Err(_) => {
            let _ = app.defense.attempt_passed(&attempt, false).await;
            return super::status_page(app, true, 500, "Something went wrong", "Please try again.");
        }
    }
    // A concurrent failure may have locked the account while the hash ran.
    match app.defense.locked_now(&attempt).await {
        Ok(None) => {}
        Ok(Some(_)) => return again(LOCKED.into(), 429, true).await,
        Err(_) => return unavailable(app, req),
    }
    changed(
        app,
        req,
        &user,
        get("password"),
        factors,
        &account,
        device.as_deref(),
    )
    .await
}

/// The current password was right: the new one is saved, every session of the
/// account ends, and this browser gets a fresh session proving what the old one did.
async fn changed(
    app: &Arc<App>,
    req: &Request<'_>,
    user: &crate::users::User,
    password: &str,
    factors: u8,
    account: &str,
    device: Option<&str>,
) -> Response {
    let fresh = match store_new_password(app, &user.name, password).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    // The current password was proven: like a sign-in, that resets the account's counters.
    // The password is saved, and older sessions are already refused (credentials version):
    // a store error from here on is logged, not shown as a failure.
    if let Err(e) = app.defense.record_success(account, device).await {
        tracing::warn!(error = %e, "password changed; failure counters not reset");
    }
    if let Err(e) = app.sessions.revoke_user(&user.name).await {
        tracing::warn!(error = %e, "password changed; old session records not deleted");
    }
    let client = req.client_ip.to_string();
    let (sid, _) = match app
        .sessions
        // The fresh session proves what the old one did (a second factor included).
        .create(&fresh.name, factors, &client, fresh.credentials_version)
        .await
    {
        Ok(s) => s,
        Err(_) => return unavailable(app, req),
    };
    app.audit(
        "password_changed",
        json!({ "user": user.name, "client": client }),
    );
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

/// A wrong guess at the current password (or a missing CAPTCHA, or one while
/// locked): counted when reserved, audited. `Ok` says whether the form should
/// show a CAPTCHA next; `Err` is the page to answer with.
async fn guess_failed(
    app: &App,
    req: &Request<'_>,
    user: &crate::users::User,
    attempt: &crate::defense::Attempt,
    reason: &'static str,
) -> Result<bool, Response> {
    if attempt.reserved() {
        super::count_second_step_failure(app, req, user, attempt, "password_change").await?;
    }
    app.audit(
        "password_change_failed",
        json!({ "user": user.name, "client": req.client_ip.to_string(), "reason": reason }),
    );
    Ok(needs_captcha(app, req, &user.name).await.unwrap_or(true))
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
        if res.is_ok() {
            crate::audit::event(&*app2.clock, "password_rehashed", json!({ "user": name }));
        }
    });
}
