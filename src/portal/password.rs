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
    let html = app.ui.load().render(
        "password.html",
        context! { user => user, csrf => app.cookies.csrf_token(sid), error => error, captcha_id => captcha_id, prefix => &cfg.server.portal_prefix },
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

pub async fn post(app: &Arc<App>, req: &Request<'_>) -> Response {
    let cfg = app.config.load();
    if let Err(wait) = app.defense.check_rate(&cfg.defense, req.client_ip) {
        return too_many(app, req, wait);
    }
    let (id, user) = match app.session_state(req.cookie_header).await {
        Ok(SessionState::Valid { record, user, .. }) if needs_second_step(&record, &user) => {
            return pending_step(app, &record)
        }
        Ok(SessionState::Valid { id, user, .. }) => (id, user),
        Ok(_) => return to_login(app),
        Err(_) => return unavailable(app, req),
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
    let Some(captcha) = needs_captcha(app, req, &user.name).await else {
        return unavailable(app, req);
    };
    if captcha {
        let pre = app
            .cookies
            .read(req.cookie_header, &app.cookies.pre_name)
            .unwrap_or_default();
        match super::captcha_passed(app, req, &pre, &f, Some(&account)).await {
            Ok(true) => {}
            Ok(false) => return again(super::CAPTCHA_WRONG.into(), 401, true).await,
            Err(r) => return r,
        }
    }
    if let Err(msg) = check_new_password(&cfg, get("password"), get("confirm")) {
        return again(msg, 400, captcha).await;
    }
    match app
        .hasher
        .verify(get("current"), Some(&user.password))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            if let Err(r) = super::count_failure(app, req, Some(&account), None).await {
                return r;
            }
            crate::audit::event(
                "password_change_failed",
                json!({ "user": user.name, "client": req.client_ip.to_string() }),
            );
            let captcha = needs_captcha(app, req, &user.name).await.unwrap_or(true);
            return again("Your current password is not right.".into(), 401, captcha).await;
        }
        Err(PasswordError::Busy) => return super::busy(app, true),
        Err(_) => {
            return super::status_page(app, true, 500, "Something went wrong", "Please try again.")
        }
    }
    if let Err(r) = store_new_password(app, &user.name, get("password")).await {
        return r;
    }
    // The current password was proven: like a sign-in, that resets the account's counters.
    // The password is saved, and older sessions are already refused (credentials version):
    // a store error from here on is logged, not shown as a failure.
    if let Err(e) = app.defense.record_success(&account, None).await {
        tracing::warn!(error = %e, "password changed; failure counters not reset");
    }
    if let Err(e) = app.sessions.revoke_user(&user.name).await {
        tracing::warn!(error = %e, "password changed; old session records not deleted");
    }
    let Some(fresh) = app.users.load().get(&user.name).cloned() else {
        return to_login(app);
    };
    let client = req.client_ip.to_string();
    let (sid, _) = match app
        .sessions
        .create(&fresh.name, 1, &client, fresh.credentials_version)
        .await
    {
        Ok(s) => s,
        Err(_) => return unavailable(app, req),
    };
    crate::audit::event(
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
