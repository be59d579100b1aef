//! Password reset: identifier → a code by email → new password.
//!
//! ```text
//!  GET  /reset ─> form (identifier)
//!  POST /reset step=request ─ 429 / CSRF / CAPTCHA (when the ladder or `captcha_on_reset` asks)
//!        └─> if the account exists and has an email, and fewer than `otp.send_limit` codes
//!            went to it within `otp.send_window`: a code (CSPRNG, `otp.code_length` digits,
//!            stored hashed, bound to the account *and* this browser's pre-session, valid
//!            `otp.code_ttl`). One live code per account: a new one voids the old one.
//!            The message is sent off the request path.
//!        └─> the same "if an account matches, we sent a code" page either way, after the
//!            same work
//!  POST /reset step=confirm ─ new password invalid ──────────────> 400 (code not spent)
//!        ├─ more than `otp.max_attempts` tries on the account's code, voided, or expired
//!        │                                     ───> ask for a new code
//!        ├─ wrong code ─> failure on the account's ladder ───> 401
//!        └─ right ─> code taken (atomically), password set, sessions ended,
//!                    account lock cleared ─> "sign in"
//! ```
//! Reset works while the account is locked: proving control of the email is the way out.
//! Store keys: `reset:pre:{pre}` (which account this browser asked for), `reset:acct:{user}`
//! (the account's one live code), `reset:tries:{user}`, `reset:sent:{user}`.

use std::sync::Arc;

use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    forbidden_form, form, pre_session, status_page, too_many, unavailable, Request, Response,
};
use crate::app::App;
use crate::auth::password::PasswordError;
use crate::notify::Notifier;
use crate::store::keys::{reset_code as code_key, reset_for as pre_key, reset_tries as tries_key};

/// The account's one live reset code.
#[derive(Serialize, Deserialize)]
struct Pending {
    /// The pre-session (browser) that asked for it.
    pre: String,
    code_hash: String,
}

/// What a reset code is bound to: the account and the browser that asked.
fn code_context(user: &str, pre: &str) -> String {
    format!("reset|{user}|{pre}")
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
    let captcha_id = match super::new_captcha(app, req, &pre, v.captcha).await {
        Ok(id) => id,
        Err(r) => return r,
    };
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
    if let Err(r) = issue_code(app, req, &pre, get("identifier")).await {
        return r;
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

/// A code for the account `identifier` names (when it has an email address and is
/// under its send limit), sent off the request path — after the same store work
/// for an identifier that names no account. `Err` is the page to answer with.
async fn issue_code(
    app: &App,
    req: &Request<'_>,
    pre: &str,
    identifier: &str,
) -> Result<(), Response> {
    let cfg = app.config.load();
    let (id, user) = super::find_account(app, cfg.ui.default_region.as_deref(), identifier)
        .await
        .map_err(|_| super::accounts_unavailable(app, req))?;
    let user = user.filter(|u| !u.email.is_empty() && u.is_active());
    // Unknown identifiers take the same steps under a name no account can have.
    let name = match (&user, &id) {
        (Some(u), _) => u.name.clone(),
        (None, Some(i)) => format!("?{}", i.key()),
        (None, None) => "?".to_string(),
    };
    let sent = match app
        .store
        .incr(&crate::store::keys::resets_sent(&name), cfg.otp.send_window)
        .await
    {
        Ok(n) => n,
        Err(_) => return Err(unavailable(app, req)),
    };
    let code = crate::auth::codes::numeric(cfg.otp.code_length);
    let pending = Pending {
        pre: pre.to_string(),
        // Keyed (data.key): a copy of the store can't be brute-forced offline.
        code_hash: app.sealer.code_hash(&code_context(&name, pre), &code),
    };
    let within_limit = sent <= u64::from(cfg.otp.send_limit);
    let stored = async {
        // This browser now waits for a code of this account (or of nobody).
        app.store
            .set(&pre_key(pre), name.as_bytes(), cfg.otp.code_ttl)
            .await?;
        if within_limit {
            let b = serde_json::to_vec(&pending)
                .map_err(|e| crate::store::StoreError::Unavailable(e.to_string()))?;
            // One live code per account: this one replaces (voids) any earlier one.
            app.store
                .set(&code_key(&name), &b, cfg.otp.code_ttl)
                .await?;
            app.store.delete(&tries_key(&name)).await?;
        }
        Ok::<(), crate::store::StoreError>(())
    }
    .await;
    if stored.is_err() {
        return Err(unavailable(app, req));
    }
    match (&user, within_limit) {
        (Some(u), true) => {
            let minutes = cfg.otp.code_ttl.as_secs().div_ceil(60);
            let ctx = context! { code => &code, minutes => minutes };
            let mut msg = match super::compose(
                app,
                "msg_reset_code.txt",
                ctx,
                crate::notify::Channel::Email,
                &u.email,
                "reset_code",
            ) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "reset code template failed");
                    return Err(unavailable(app, req));
                }
            };
            msg.code = Some(code);
            // Off the request path, so the answer takes as long for every identifier.
            let notifier = app.notifier.load_full();
            let user = u.name.clone();
            let client = req.client_ip.to_string();
            let clock = app.clock.clone();
            app.send_later(async move {
                match notifier.send(&msg).await {
                    Ok(()) => crate::audit::event(
                        &*clock,
                        "reset_code_sent",
                        json!({ "user": user, "client": client }),
                    ),
                    Err(e) => tracing::error!(error = %e, "reset code not delivered"),
                }
            });
        }
        (Some(u), false) => app.audit(
            "reset_code_limited",
            json!({ "user": u.name, "client": req.client_ip.to_string(), "sent": sent }),
        ),
        (None, _) => {}
    }
    Ok(())
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
    let expired = "That code has expired, was replaced by a newer one, or was used too often. Ask for a new one.";
    let restart = || View {
        step: "request",
        error: Some(expired),
        notice: None,
        status: 400,
        captcha: false,
    };
    let user = match app.store.get(&pre_key(pre)).await {
        Ok(Some(b)) => String::from_utf8_lossy(&b).to_string(),
        Ok(None) => return render(app, req, restart()).await,
        Err(_) => return unavailable(app, req),
    };
    // The new password is checked before the code, so a typo there doesn't spend it.
    // (Only the browser that asked for the code gets here: it names the account.)
    let account = match app.accounts.get(&user).await {
        Ok(a) => a,
        Err(_) => return super::accounts_unavailable(app, req),
    };
    if let Err(msg) = check_new_password(
        &app.ui.load().texts,
        &cfg,
        account.as_deref(),
        password,
        again,
    ) {
        return render(app, req, code_view(&msg, 400)).await;
    }
    let pending = match app.store.get(&code_key(&user)).await {
        Ok(Some(b)) => serde_json::from_slice::<Pending>(&b).ok(),
        Ok(None) => None,
        Err(_) => return unavailable(app, req),
    };
    // A code asked for by another browser (or replaced since) isn't this browser's.
    let Some(pending) = pending.filter(|p| p.pre == pre) else {
        return render(app, req, restart()).await;
    };
    // Every guess at the account's live code counts (atomically, so concurrent
    // guesses can't exceed the cap); then the code is void.
    let tries = match app.store.incr(&tries_key(&user), cfg.otp.code_ttl).await {
        Ok(n) => n,
        Err(_) => return unavailable(app, req),
    };
    if tries > u64::from(cfg.otp.max_attempts) {
        let _ = app.store.delete(&code_key(&user)).await;
        return render(app, req, restart()).await;
    }
    let given = crate::auth::codes::normalize_numeric(code);
    let context = code_context(&user, pre);
    if !app
        .sealer
        .code_matches(&context, &given, &pending.code_hash)
    {
        // On the same ladder key as sign-in (per account, or per account and network).
        let account = crate::defense::account_key(&cfg.defense, &user, req.client_ip);
        if let Err(r) = super::count_failure(app, req, Some(&account), None).await {
            return r;
        }
        app.audit(
            "reset_code_failed",
            json!({ "user": user, "client": req.client_ip.to_string() }),
        );
        return render(app, req, code_view("That code is not right.", 401)).await;
    }
    // Consume atomically: of two concurrent right answers, one wins; and the code
    // taken must still be this one (not a newer code that replaced it meanwhile).
    match app.store.take(&code_key(&user)).await {
        Ok(Some(b))
            if serde_json::from_slice::<Pending>(&b).is_ok_and(|p| {
                p.pre == pre && app.sealer.code_matches(&context, &given, &p.code_hash)
            }) => {}
        Ok(_) => return render(app, req, restart()).await,
        Err(_) => return unavailable(app, req),
    }
    let _ = app.store.delete(&pre_key(pre)).await;
    let _ = app.store.delete(&tries_key(&user)).await;
    if user.starts_with('?') {
        // Never reached (no code is sent for a name that isn't an account), but a
        // pointer to nobody must never set anybody's password.
        return render(app, req, restart()).await;
    }
    if let Err(r) = store_new_password(app, &user, password).await {
        return r;
    }
    finished(app, req, &user).await
}

/// The new password is saved: end the account's sessions and lock, audit, say so.
async fn finished(app: &App, req: &Request<'_>, user: &str) -> Response {
    let cfg = app.config.load();
    app.force_reload_users();
    // The password is saved, and older sessions are already refused (credentials version):
    // a store error from here on is logged, not shown as a failure.
    if let Err(e) = app.sessions.revoke_user(user).await {
        tracing::warn!(error = %e, "password reset; old session records not deleted");
    }
    if let Err(e) = app.defense.clear(user).await {
        tracing::warn!(error = %e, user = %user, "password reset; account lock not cleared");
    }
    app.audit(
        "password_reset",
        json!({ "user": user, "client": req.client_ip.to_string() }),
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
) -> Result<std::sync::Arc<crate::users::User>, Response> {
    let params = app.config.load().password.argon2;
    let hash = match app.hasher.hash(password, params).await {
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
    let u = super::update_user(app, user, "password", move |u| {
        u.password = hash;
        u.credentials_version += 1;
    })
    .await?;
    app.accounts.record_later(user, "password_changed", "", "");
    Ok(u)
}

/// The checks every new password gets ([`crate::auth::password_policy`]) for
/// `user`'s account; the error is what to tell the person.
pub(crate) fn check_new_password(
    texts: &crate::i18n::Catalogues,
    cfg: &crate::config::Config,
    user: Option<&crate::users::User>,
    password: &str,
    again: &str,
) -> Result<(), String> {
    use crate::auth::password_policy as policy;
    let service = [cfg.ui.title.as_str(), cfg.otp.totp_issuer.as_str()];
    let (second, words) = match user {
        Some(u) => (
            policy::has_second_factor(u),
            policy::personal_words(u, &service),
        ),
        None => (false, Vec::new()),
    };
    policy::check(&cfg.password, password, Some(again), second, &words)
        .map_err(|r| r.message_in(texts, crate::i18n::current().lang))
}
