//! `/account`: the signed-in person's own account. Profile, the browsers signed
//! in (sign out one, all others, or everywhere), this browser's "don't ask
//! again" (forget it, or forget every browser), the second factors (links to
//! their pages), the password, and the recent account events.
//!
//! ```text
//!  GET  /account ─ no complete sign-in ─> sign-in (or the second step) first
//!                ─ ok ─> the page
//!  POST /account ─ CSRF/Origin bad ─────> 403
//!                ─ password older than otp.reauth_after and not (rightly) given
//!                                       ─> the page again, asking for it (counted)
//!                ─ action ─> done, notice to the owner's email, the page again
//! ```
//!
//! Which browser and system a session runs in is recorded beside the session
//! (`agent:{handle}`, a short description like "Firefox on Windows", never the
//! whole User-Agent) when it is created.

use std::sync::Arc;

use minijinja::context;
use serde_json::json;

use super::error::PortalError;
use super::forms::{self, AccountForm};
use super::{origin_ok, status_page, Request, Response};
use crate::app::{App, SessionState};
use crate::auth::second_step::{self, Reauth, Signed};
use crate::respond::{go_to, Back, Step};
use crate::session::SessionId;
use crate::users::User;

/// "Firefox on Windows": a browser family and a system, from a User-Agent.
pub fn describe_agent(ua: &str) -> String {
    let has = |s: &str| ua.contains(s);
    let browser = if has("Edg/") {
        "Edge"
    } else if has("OPR/") || has("Opera") {
        "Opera"
    } else if has("Firefox/") {
        "Firefox"
    } else if has("Chromium/") {
        "Chromium"
    } else if has("Chrome/") || has("CriOS/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else if has("curl/") {
        "curl"
    } else {
        ""
    };
    let system = if has("iPhone") {
        "iPhone"
    } else if has("iPad") {
        "iPad"
    } else if has("Android") {
        "Android"
    } else if has("Windows") {
        "Windows"
    } else if has("Mac OS X") || has("Macintosh") {
        "macOS"
    } else if has("CrOS") {
        "ChromeOS"
    } else if has("Linux") {
        "Linux"
    } else {
        ""
    };
    match (browser, system) {
        ("", "") => String::new(),
        (b, "") => b.to_string(),
        ("", s) => s.to_string(),
        (b, s) => format!("{b} on {s}"),
    }
}

/// Records which browser session `sid` is (when the request says).
pub(crate) async fn note_agent(app: &App, sid: &SessionId, req: &Request<'_>) {
    let what = describe_agent(req.user_agent);
    if what.is_empty() {
        return;
    }
    let ttl = app.config.load().session.absolute_timeout;
    let key = crate::store::keys::session_agent(&sid.handle());
    if let Err(e) = app.store.set(&key, what.as_bytes(), ttl).await {
        tracing::debug!(error = %e, "session agent not recorded");
    }
}

type Page = Result<Response, PortalError>;

/// The complete session of this request, or where to go first ([`PortalError::GoFirst`]).
async fn me(app: &App, req: &Request<'_>) -> Result<Signed, PortalError> {
    let prefix = app.config.load().server.portal_prefix.clone();
    let here = format!("{prefix}/account");
    let back = Back {
        portal: &prefix,
        here: &here,
        query: None,
    };
    let step = match app.session_state(req.cookie_header).await? {
        // A sign-in on the password alone, of an account with a second factor, proves
        // that factor first: the page shows where and from what the account is used,
        // and signs browsers out, neither of which a password alone should reach.
        SessionState::Valid { id, record, user }
            if !super::password::needs_second_step(app, &record, &user) =>
        {
            return Ok(Signed {
                id,
                record: std::sync::Arc::unwrap_or_clone(record),
                user,
            })
        }
        SessionState::Valid { .. } => Step::SecondFactor,
        _ => Step::Login,
    };
    Err(PortalError::GoFirst(Box::new(go_to(302, step, back))))
}

fn when(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// `GET /account`
pub async fn page(app: &App, req: &Request<'_>) -> Page {
    render(app, req, &me(app, req).await?, None, None, 200).await
}

async fn render(
    app: &App,
    req: &Request<'_>,
    m: &Signed,
    error: Option<&str>,
    notice: Option<&str>,
    status: u16,
) -> Page {
    let cfg = app.config.load();
    let now = app.clock.now();
    // Sessions made before the account's credentials last changed (or by an
    // account of this name deleted before) are refused on their next use: not listed.
    let mut sessions = app.sessions.list(&m.user.name).await?;
    sessions.retain(|(_, r)| r.cred_version == m.user.credentials_version);
    let here = m.id.handle();
    let mut rows = Vec::new();
    for (handle, r) in &sessions {
        let agent = app
            .store
            .get(&crate::store::keys::session_agent(handle))
            .await
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).to_string())
            .unwrap_or_default();
        rows.push((
            *handle == here,
            r.last_seen,
            context! {
                handle => handle,
                current => *handle == here,
                agent => agent,
                client => &r.client,
                created => when(r.created),
                last_seen => when(r.last_seen),
                two_step => r.factors >= 2,
            },
        ));
    }
    // This browser first, then the most recently seen.
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let rows: Vec<_> = rows.into_iter().map(|r| r.2).collect();
    let remembered =
        app.cookies
            .remembered(req.cookie_header, &m.user.name, m.user.factors_version, now);
    // The account's recent history, newest first, in words.
    let ui = app.ui.load();
    let lang = crate::i18n::current().lang;
    let events: Vec<minijinja::Value> = match app.accounts.events(&m.user.name, 20).await {
        Ok(list) => list
            .into_iter()
            .map(|e| {
                let key = format!("event-{}", e.kind);
                let what = ui.texts.text(lang, &key, &[]);
                let what = if what == key { e.kind.clone() } else { what };
                context! { at => when(e.at), what => what, client => e.client }
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "account events unavailable");
            Vec::new()
        }
    };
    let u = &m.user;
    let html = ui.render(
        "account.html",
        context! {
            csrf => app.cookies.csrf_token(m.id.as_str()),
            error => error,
            notice => notice,
            user => &u.name,
            display_name => &u.display_name,
            email => &u.email,
            phone => &u.phone,
            groups => &u.groups,
            sessions => rows,
            remembered => remembered,
            remember_days => cfg.otp.remember_days,
            has_totp => u.has_totp(),
            backup_left => u.backup_codes.len(),
            needs_password => second_step::needs_password(&super::deps(app, &cfg), &m.record),
            events => events,
        },
    );
    Ok(Response::html(status, html))
}

/// `POST /account`: `action` = `signout` (+ `handle`), `signout_others`,
/// `signout_all`, `forget_browser`, `forget_all_browsers`.
pub async fn post(app: &Arc<App>, req: &Request<'_>) -> Page {
    super::rate(app, req)?;
    let mut m = me(app, req).await?;
    let f: AccountForm = forms::parse_or_empty(&req.body);
    if !app.cookies.csrf_ok(m.id.as_str(), &f.csrf) || !origin_ok(req) {
        return Err(PortalError::FormExpired);
    }
    if let Some(r) = confirmed(app, req, &mut m, &f.password).await? {
        return Ok(r);
    }
    let cfg = app.config.load();
    let user = m.user.name.clone();
    let here = m.id.handle();
    let (what, notice): (&str, &str) = match f.action.as_str() {
        "signout" => {
            if f.handle == here {
                // Signing this browser out is the sign-out page's job.
                return Ok(Response::redirect(
                    303,
                    &format!("{}/logout", cfg.server.portal_prefix),
                ));
            }
            // The page lists whole handles: a prefix (which `revoke_one` would take,
            // for the CLI) could name this browser behind the check above.
            if f.handle.len() != here.len() {
                return render(app, req, &m, Some("Unknown action."), None, 400).await;
            }
            // Nothing ended (already signed out, or not one of this account's
            // sessions): no notice, no audit line, no email.
            if app.sessions.revoke_one(&user, &f.handle).await? == 0 {
                return render(app, req, &m, None, Some("That browser is signed out."), 200).await;
            }
            ("signed_out_one", "That browser is signed out.")
        }
        "signout_others" => {
            app.sessions.revoke_others(&user, &here).await?;
            ("signed_out_others", "Every other browser is signed out.")
        }
        "signout_all" => {
            app.sessions.revoke_user(&user).await?;
            changed(app, req, &m.user, "signed_out_everywhere");
            let mut r = Response::redirect(303, &format!("{}/login", cfg.server.portal_prefix));
            for c in app.cookies.clear(&app.cookies.name, req.host) {
                r.header("Set-Cookie", c);
            }
            return Ok(r);
        }
        "forget_browser" => {
            let notice = "This browser will ask for the second step again.";
            let mut r = render(app, req, &m, None, Some(notice), 200).await?;
            for c in app.cookies.clear(&app.cookies.remember_name(), req.host) {
                r.header("Set-Cookie", c);
            }
            changed(app, req, &m.user, "browser_forgotten");
            return Ok(r);
        }
        "forget_all_browsers" => {
            m.user = super::update_user(app, &user, "remembered browsers", |u| {
                u.factors_version += 1;
            })
            .await?;
            (
                "browsers_forgotten",
                "No browser skips the second step any more.",
            )
        }
        _ => return render(app, req, &m, Some("Unknown action."), None, 400).await,
    };
    changed(app, req, &m.user, what);
    // Re-read: a change (factors version) shows at once.
    if let Ok(Some(u)) = app.accounts.get(&user).await {
        m.user = u;
    }
    render(app, req, &m, None, Some(notice), 200).await
}

/// Audits a change and tells the owner by email (off the request path).
fn changed(app: &Arc<App>, req: &Request<'_>, user: &User, what: &str) {
    app.accounts.record_later(
        &user.name,
        "account_changed",
        &req.client_ip.to_string(),
        what,
    );
    app.audit(
        "account_changed",
        json!({ "user": user.name, "change": what, "client": req.client_ip.to_string() }),
    );
    if user.email.is_empty() {
        return;
    }
    let ctx = context! {
        name => user.shown_name(),
        change => what,
        client => req.client_ip.to_string(),
        time => when(app.clock.now()),
    };
    let msg = match super::compose(
        app,
        "msg_account_change.txt",
        ctx,
        crate::notify::Channel::Email,
        &user.email,
        "account_change",
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "account notice template failed");
            return;
        }
    };
    let app2 = app.clone();
    let lang = crate::i18n::current();
    app.send_later(crate::i18n::scope(lang, async move {
        use crate::notify::Notifier;
        if let Err(e) = app2.notifier.load().send(&msg).await {
            tracing::error!(error = %e, "account notice not delivered");
        }
    }));
}

/// A change may go ahead (`None`): the password isn't needed (recent enough),
/// or it was given right. `Some` is the page to answer with instead.
async fn confirmed(
    app: &App,
    req: &Request<'_>,
    m: &mut Signed,
    password: &str,
) -> Result<Option<Response>, PortalError> {
    let cfg = app.config.load();
    let deps = super::deps(app, &cfg);
    if !second_step::needs_password(&deps, &m.record) {
        return Ok(None);
    }
    let browser = super::browser(app, req);
    match second_step::reauthenticate(&deps, &browser, m, password).await? {
        Reauth::Right => Ok(None),
        Reauth::Busy => Err(PortalError::Busy),
        Reauth::Refused { locked } => {
            super::send_lock_notice(app, req, locked.as_ref()).await;
            Ok(Some(status_page(
                app,
                req.accept_html,
                429,
                "Too many attempts",
                "Too many failed attempts. For your security, wait a while and try again later.",
            )))
        }
        Reauth::Wrong { locked } => {
            super::send_lock_notice(app, req, locked.as_ref()).await;
            let msg = "Enter your current password to confirm it's you.";
            render(app, req, m, Some(msg), None, 401).await.map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::describe_agent;

    #[test]
    fn browsers_and_systems_from_user_agents() {
        for (ua, want) in [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1", "Chrome on iPhone"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36", "Chrome on Android"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0", "Edge on Windows"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0 Safari/537.36", "Chrome on Linux"),
            ("curl/8.5.0", "curl"),
            ("", ""),
        ] {
            assert_eq!(describe_agent(ua), want, "{ua}");
        }
    }
}
