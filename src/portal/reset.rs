//! Password reset: identifier → a code by email → new password.
//!
//! ```text
//!  GET  /reset ─> form (identifier)
//!  POST /reset step=request ─ 429 / CSRF / CAPTCHA (when the ladder or `captcha_on_reset` asks)
//!        └─> if the account exists and has an email: code (CSPRNG, `otp.code_length` digits,
//!            stored hashed, bound to this browser's pre-session, valid `otp.code_ttl`)
//!        └─> the same "if an account matches, we sent a code" page either way
//!  POST /reset step=confirm ─ new password invalid ──────────────> 400 (code not spent)
//!        ├─ more than `otp.max_attempts` tries, or expired ───> ask for a new code
//!        ├─ wrong code ─> failure on the account's ladder ───> 401
//!        └─ right ─> password set, sessions ended, account lock cleared ─> "sign in"
//! ```
//! Reset works while the account is locked: proving control of the email is the way out.

use std::sync::Arc;

use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    forbidden_form, form, pre_session, status_page, too_many, unavailable, Request, Response,
};
use crate::app::App;
use crate::auth::password::{PasswordError, MAX_PASSWORD_BYTES};
use crate::notify::Notifier;
use crate::users::Identifier;

#[derive(Serialize, Deserialize)]
struct Pending {
    user: String,
    code_hash: String,
}

/// What a reset code is bound to: this browser's pre-session.
fn code_context(pre: &str) -> String {
    format!("reset|{pre}")
}

struct View<'a> {
    step: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    status: u16,
    captcha: bool,
}

async fn render(app: &App, req: &Request<'_>, v: View<'_>) -> Response {
    let (pre, set_cookie) = pre_session(app, req);
    let cfg = app.config.load();
    let Ok(captcha_id) = super::new_captcha(app, &pre, v.captcha).await else {
        return unavailable(app, req);
    };
    let html = app.ui.load().render(
        "reset.html",
        context! {
            csrf => app.cookies.csrf_token(&pre),
            step => v.step,
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
    r
}

async fn captcha_needed(app: &App, req: &Request<'_>) -> Option<bool> {
    let cfg = app.config.load();
    if cfg.defense.captcha_on_reset {
        return Some(true);
    }
    app.defense
        .standing(&cfg.defense, None, None, req.client_ip)
        .await
        .ok()
        .map(|s| s.captcha)
}

pub async fn page(app: &App, req: &Request<'_>) -> Response {
    let Some(captcha) = captcha_needed(app, req).await else {
        return unavailable(app, req);
    };
    render(
        app,
        req,
        View {
            step: "request",
            error: None,
            notice: None,
            status: 200,
            captcha,
        },
    )
    .await
}

pub async fn post(app: &Arc<App>, req: &Request<'_>) -> Response {
    let cfg = app.config.load();
    if let Err(wait) = app.defense.check_rate(&cfg.defense, req.client_ip) {
        return too_many(app, req, wait);
    }
    let f = form(&req.body).unwrap_or_default();
    let Some(pre) = super::posted_pre(app, req, &f) else {
        return forbidden_form(app, req);
    };
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if get("step") == "confirm" {
        return confirm(
            app,
            req,
            &pre,
            get("code").trim(),
            get("password"),
            get("confirm"),
        )
        .await;
    }
    // step = request
    let Some(captcha) = captcha_needed(app, req).await else {
        return unavailable(app, req);
    };
    if captcha {
        match super::captcha_passed(app, req, &pre, &f, None).await {
            Ok(true) => {}
            Ok(false) => {
                let wrong = View {
                    step: "request",
                    error: Some(super::CAPTCHA_WRONG),
                    notice: None,
                    status: 401,
                    captcha: true,
                };
                return render(app, req, wrong).await;
            }
            Err(r) => return r,
        }
    }
    let users = app.users.load();
    let user = Identifier::parse(get("identifier")).and_then(|i| users.find(&i).cloned());
    if let Some(u) = user.filter(|u| !u.email.is_empty() && !u.disabled) {
        let code = crate::auth::codes::numeric(cfg.otp.code_length);
        let pending = Pending {
            user: u.name.clone(),
            // Keyed (data.key): a copy of the store can't be brute-forced offline.
            code_hash: app.sealer.code_hash(&code_context(&pre), &code),
        };
        let stored = match serde_json::to_vec(&pending) {
            Ok(b) => {
                app.store
                    .set(&format!("reset:{pre}"), &b, cfg.otp.code_ttl)
                    .await
            }
            Err(e) => Err(crate::store::StoreError::Unavailable(e.to_string())),
        };
        if stored.is_err() || app.store.delete(&format!("reset:{pre}:n")).await.is_err() {
            return unavailable(app, req);
        }
        let minutes = cfg.otp.code_ttl.as_secs().div_ceil(60);
        let ctx = context! { code => &code, minutes => minutes };
        let mut msg = match super::compose(
            app,
            "msg_reset_code.txt",
            ctx,
            "email",
            &u.email,
            "reset_code",
        ) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "reset code template failed");
                return unavailable(app, req);
            }
        };
        msg.code = Some(code);
        match app.notifier.load().send(&msg).await {
            Ok(()) => crate::audit::event(
                "reset_code_sent",
                json!({ "user": u.name, "client": req.client_ip.to_string() }),
            ),
            Err(e) => tracing::error!(error = %e, "reset code not delivered"),
        }
    }
    let minutes = cfg.otp.code_ttl.as_secs().div_ceil(60);
    let notice = format!("If an account matches, we sent a code to its email address. It expires in {minutes} minute(s).");
    render(
        app,
        req,
        View {
            step: "code",
            error: None,
            notice: Some(&notice),
            status: 200,
            captcha: false,
        },
    )
    .await
}

async fn confirm(
    app: &Arc<App>,
    req: &Request<'_>,
    pre: &str,
    code: &str,
    password: &str,
    again: &str,
) -> Response {
    let cfg = app.config.load();
    let code_view = |error, status| View {
        step: "code",
        error: Some(error),
        notice: None,
        status,
        captcha: false,
    };
    // The new password is checked first, so a typo there doesn't spend the code.
    if let Err(msg) = check_new_password(&cfg, password, again) {
        return render(app, req, code_view(&msg, 400)).await;
    }
    let key = format!("reset:{pre}");
    let expired = "That code has expired or was used too often. Ask for a new one.";
    let restart = || View {
        step: "request",
        error: Some(expired),
        notice: None,
        status: 400,
        captcha: false,
    };
    let pending = match app.store.get(&key).await {
        Ok(Some(b)) => match serde_json::from_slice::<Pending>(&b) {
            Ok(p) => p,
            Err(_) => return render(app, req, restart()).await,
        },
        Ok(None) => return render(app, req, restart()).await,
        Err(_) => return unavailable(app, req),
    };
    let tries = match app.store.incr(&format!("{key}:n"), cfg.otp.code_ttl).await {
        Ok(n) => n,
        Err(_) => return unavailable(app, req),
    };
    if tries > u64::from(cfg.otp.max_attempts) {
        let _ = app.store.delete(&key).await;
        return render(app, req, restart()).await;
    }
    let given = crate::auth::codes::normalize_numeric(code);
    if !app
        .sealer
        .code_matches(&code_context(pre), &given, &pending.code_hash)
    {
        // On the same ladder key as sign-in (per account, or per account and network).
        let account = crate::defense::account_key(&cfg.defense, &pending.user, req.client_ip);
        if let Err(r) = super::count_failure(app, req, Some(&account), None).await {
            return r;
        }
        crate::audit::event(
            "reset_code_failed",
            json!({ "user": pending.user, "client": req.client_ip.to_string() }),
        );
        return render(app, req, code_view("That code is not right.", 401)).await;
    }
    // Consume atomically: of two concurrent right answers, one wins.
    match app.store.take(&key).await {
        Ok(Some(_)) => {}
        Ok(None) => return render(app, req, restart()).await,
        Err(_) => return unavailable(app, req),
    }
    if let Err(r) = store_new_password(app, &pending.user, password).await {
        return r;
    }
    app.force_reload_users();
    // The password is saved, and older sessions are already refused (credentials version):
    // a store error from here on is logged, not shown as a failure.
    if let Err(e) = app.sessions.revoke_user(&pending.user).await {
        tracing::warn!(error = %e, "password reset; old session records not deleted");
    }
    if let Err(e) = app.defense.clear(&pending.user).await {
        tracing::warn!(error = %e, user = %pending.user, "password reset; account lock not cleared");
    }
    crate::audit::event(
        "password_reset",
        json!({ "user": pending.user, "client": req.client_ip.to_string() }),
    );
    let prefix = cfg.server.portal_prefix.clone();
    let html = app.ui.load().message(
        "Password changed",
        "Your password was changed and you were signed out everywhere. Sign in with the new password.",
        Some((&format!("{prefix}/login"), "Sign in")),
    );
    Response::html(200, html)
}

/// Hashes and saves a new password, bumping the account's credentials version
/// (which ends its sessions). The error is the page to answer with.
pub(crate) async fn store_new_password(
    app: &App,
    user: &str,
    password: &str,
) -> Result<(), Response> {
    let hash = match app.hasher.hash(password).await {
        Ok(h) => h,
        Err(PasswordError::Busy) => return Err(super::busy(app, true)),
        Err(e) => {
            tracing::error!(error = %e, "hashing failed");
            return Err(status_page(
                app,
                true,
                500,
                "Something went wrong",
                "Please try again.",
            ));
        }
    };
    super::update_user(app, user, "password", move |u| {
        u.password = hash;
        u.credentials_version += 1;
    })
    .await
}

/// The checks every new password gets; the error is what to tell the person.
pub(crate) fn check_new_password(
    cfg: &crate::config::Config,
    password: &str,
    again: &str,
) -> Result<(), String> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err("That password is too long (1024 bytes at most).".into());
    }
    if password.chars().count() < cfg.password.min_length {
        return Err(format!(
            "Choose a password of at least {} characters.",
            cfg.password.min_length
        ));
    }
    if password != again {
        return Err("The two passwords are not the same.".into());
    }
    Ok(())
}
