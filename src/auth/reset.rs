//! Password reset as a state machine: identifier → a code by email → new password.
//!
//! ```text
//!  request(identifier)         (after the portal's rate limit, CSRF and CAPTCHA)
//!    └─> if the account exists, is active and has an email, and fewer than
//!        `otp.send_limit` codes went to it within `otp.send_window`: a code (CSPRNG,
//!        `otp.code_length` digits, stored hashed, bound to the account *and* this
//!        browser's pre-session, valid `otp.code_ttl`). One live code per account:
//!        a new one voids the old one. ─> Requested { send: Some(code) }
//!    └─> otherwise the same store work under a name no account can have
//!                                   ─> Requested { send: None }
//!  confirm(code, password, again)
//!    ├─ this browser asked for no code (or it expired) ──────────> Restart
//!    ├─ no live code of this browser (replaced by a newer one) ──> Restart
//!    ├─ more than `otp.max_attempts` tries on the account's code ─> Restart (code void)
//!    ├─ wrong code ─> failure on the account's ladder ───────────> WrongCode
//!    ├─ right, new password refused by the policy (judged only
//!    │  now: it reads the account) ─> tries start again ─────────> BadPassword (code not spent)
//!    └─ right ─> code taken (atomically), password set (sessions end), account
//!               lock cleared ─────────────────────────────────────> Done
//! ```
//! Reset works while the account is locked: proving control of the email is the
//! way out. Store keys: [`keys::reset_for`], [`keys::reset_code`],
//! [`keys::reset_tries`], [`keys::resets_sent`].

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::flow::{AuthError, Deps};
use super::password_change::{check_new, save_new};
use super::password_policy::Refusal;
use super::signin::find_account;
use crate::store::keys;
use crate::users::User;

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

/// Whether the reset form shows a CAPTCHA for this client now.
pub async fn captcha_needed(deps: &Deps<'_>, client: IpAddr) -> Result<bool, AuthError> {
    let cfg = &deps.config.defense;
    if cfg.captcha_on_reset {
        return Ok(true);
    }
    Ok(deps
        .defense
        .standing(cfg, None, None, client)
        .await?
        .captcha)
}

/// A code was asked for. `send`: the account and the code to email it (off the
/// request path, so the answer takes as long for every identifier).
pub struct Requested {
    pub send: Option<(Arc<User>, String)>,
}

/// Without the code: a stray `{:?}` never prints it.
impl std::fmt::Debug for Requested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to = self.send.as_ref().map(|(u, _)| u.name.as_str());
        f.debug_struct("Requested").field("send_to", &to).finish()
    }
}

/// A code for the account `identifier` names, for the browser of pre-session `pre`.
pub async fn request(
    deps: &Deps<'_>,
    client: IpAddr,
    pre: &str,
    identifier: &str,
) -> Result<Requested, AuthError> {
    let otp = &deps.config.otp;
    let (id, user) = find_account(deps, identifier).await?;
    let user = user.filter(|u| !u.email.is_empty() && u.is_active());
    // Unknown identifiers take the same steps under a name no account can have: the
    // keyed digest the audit log and the sign-in ladder use (`unknown:...`), never
    // the text typed, which would sit in the store.
    let name = match (&user, &id) {
        (Some(u), _) => u.name.clone(),
        (None, Some(i)) => deps.audited_name(&format!("?{}", i.key())),
        (None, None) => deps.audited_name("?"),
    };
    let sent = deps
        .store
        .incr(&keys::resets_sent(&name), otp.send_window)
        .await?;
    let code = super::codes::numeric(otp.code_length);
    let pending = Pending {
        pre: pre.to_string(),
        // Keyed (data.key): a copy of the store can't be brute-forced offline.
        code_hash: deps.sealer.code_hash(&code_context(&name, pre), &code),
    };
    let within_limit = sent <= u64::from(otp.send_limit);
    // This browser now waits for a code of this account (or of nobody).
    deps.store
        .set(&keys::reset_for(pre), name.as_bytes(), otp.code_ttl)
        .await?;
    if within_limit {
        let b = serde_json::to_vec(&pending).map_err(|_| AuthError::Decode {
            what: "a reset code",
        })?;
        // One live code per account: this one replaces (voids) any earlier one.
        deps.store
            .set(&keys::reset_code(&name), &b, otp.code_ttl)
            .await?;
        deps.store.delete(&keys::reset_tries(&name)).await?;
    }
    Ok(Requested {
        send: match (user, within_limit) {
            (Some(u), true) => Some((u, code)),
            (Some(u), false) => {
                deps.audit(
                    "reset_code_limited",
                    json!({ "user": u.name, "client": client.to_string(), "sent": sent }),
                );
                None
            }
            (None, _) => None,
        },
    })
}

/// How confirming a code ended.
#[derive(Debug)]
pub enum ResetOutcome {
    /// No code for this browser any more (expired, replaced, used, voided): ask again.
    Restart,
    /// The new password is refused (the code is not spent).
    BadPassword(Refusal),
    /// Wrong code (counted on the account's ladder).
    WrongCode,
    /// The argon2 pool is full (the code is spent; ask for a new one).
    Busy,
    /// The new password is set for this account.
    Done { user: String },
}

fn decode(b: &[u8]) -> Option<Pending> {
    let p = serde_json::from_slice::<Pending>(b);
    if p.is_err() {
        tracing::warn!("a stored reset code can't be decoded; asking for a new one");
    }
    p.ok()
}

/// The code and new password for the browser of pre-session `pre`. See the module doc.
pub async fn confirm(
    deps: &Deps<'_>,
    client: IpAddr,
    pre: &str,
    code: &str,
    password: &str,
    again: &str,
) -> Result<ResetOutcome, AuthError> {
    let otp = &deps.config.otp;
    let Some(user) = deps.store.get(&keys::reset_for(pre)).await? else {
        return Ok(ResetOutcome::Restart);
    };
    let user = String::from_utf8_lossy(&user).to_string();
    let code_key = keys::reset_code(&user);
    let pending = deps.store.get(&code_key).await?.and_then(|b| decode(&b));
    // A code asked for by another browser (or replaced since) isn't this browser's.
    let Some(pending) = pending.filter(|p| p.pre == pre) else {
        return Ok(ResetOutcome::Restart);
    };
    // Every guess at the account's live code counts (atomically, so concurrent
    // guesses can't exceed the cap); then the code is void.
    let tries = deps
        .store
        .incr(&keys::reset_tries(&user), otp.code_ttl)
        .await?;
    if tries > u64::from(otp.max_attempts) {
        let _ = deps.store.delete(&code_key).await;
        return Ok(ResetOutcome::Restart);
    }
    let given = super::codes::normalize_numeric(code.trim());
    let context = code_context(&user, pre);
    if !deps
        .sealer
        .code_matches(&context, &given, &pending.code_hash)
    {
        // On the same ladder key as sign-in (per account, or per account and network).
        let account = deps.ladder_key(&user, client);
        deps.defense
            .record_failure(&deps.config.defense, Some(&account), None, client)
            .await?;
        deps.audit(
            "reset_code_failed",
            json!({ "user": deps.audited_name(&user), "client": client.to_string() }),
        );
        return Ok(ResetOutcome::WrongCode);
    }
    // The new password is judged only now, with the code proven: judged against the
    // account (its name, email, phone; the shorter minimum with a second factor),
    // its answer would otherwise tell anyone which identifiers are accounts, and
    // parts of their details (attack pass). A refusal doesn't spend the code, and a
    // right code isn't a failed guess: the tries start again.
    let account = deps.accounts.get(&user).await?;
    if let Err(r) = check_new(deps, account.as_deref(), password, again) {
        let _ = deps.store.delete(&keys::reset_tries(&user)).await;
        return Ok(ResetOutcome::BadPassword(r));
    }
    // Consume atomically: of two concurrent right answers, one wins; and the code
    // taken must still be this one (not a newer code that replaced it meanwhile).
    let taken = deps.store.take(&code_key).await?.and_then(|b| decode(&b));
    if !taken
        .is_some_and(|p| p.pre == pre && deps.sealer.code_matches(&context, &given, &p.code_hash))
    {
        return Ok(ResetOutcome::Restart);
    }
    let _ = deps.store.delete(&keys::reset_for(pre)).await;
    let _ = deps.store.delete(&keys::reset_tries(&user)).await;
    if user.starts_with('?') || user.starts_with("unknown:") {
        // Never reached (no code is sent for a name that isn't an account), but a
        // pointer to nobody must never set anybody's password.
        return Ok(ResetOutcome::Restart);
    }
    if save_new(deps, &user, password).await?.is_none() {
        return Ok(ResetOutcome::Busy);
    }
    finished(deps, client, &user).await;
    Ok(ResetOutcome::Done { user })
}

/// The new password is saved: the account's sessions and lock end.
async fn finished(deps: &Deps<'_>, client: IpAddr, user: &str) {
    deps.accounts.reload_file(true);
    // The password is saved, and older sessions are already refused (credentials version):
    // a store error from here on is logged, not shown as a failure.
    if let Err(e) = deps.sessions.revoke_user(user).await {
        tracing::warn!(error = %e, "password reset; old session records not deleted");
    }
    if let Err(e) = deps.defense.clear(user).await {
        tracing::warn!(error = %e, user = %user, "password reset; account lock not cleared");
    }
    deps.audit(
        "password_reset",
        json!({ "user": user, "client": client.to_string() }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::flow::testing::{World, PASSWORD};
    use crate::auth::password::verify_now;

    const CFG: &str = "[defense]\ncaptcha_after = 100\nlock_after = 100\nip_per_minute = 100000\nspray_per_minute = 0\n[otp]\nmax_attempts = 3\ncode_ttl = \"10m\"\n";
    const NEW: &str = "purple monkey dishwasher tango";

    async fn world() -> World {
        let w = World::new(CFG);
        w.add(User {
            name: "rita".into(),
            email: "rita@example.com".into(),
            ..User::default()
        })
        .await;
        w
    }

    fn client() -> IpAddr {
        "192.0.2.7".parse().unwrap()
    }

    async fn code_for(w: &World, pre: &str) -> String {
        let r = request(&w.deps(), client(), pre, "rita@example.com")
            .await
            .unwrap();
        let (u, code) = r.send.expect("a code for rita");
        assert_eq!(u.name, "rita");
        code
    }

    fn wrong(code: &str) -> &'static str {
        if code == "000000" {
            "111111"
        } else {
            "000000"
        }
    }

    #[tokio::test]
    async fn a_code_allows_a_few_guesses_then_is_void() {
        let w = world().await;
        let d = w.deps();
        let code = code_for(&w, "pre1").await;
        for _ in 0..3 {
            let o = confirm(&d, client(), "pre1", wrong(&code), NEW, NEW)
                .await
                .unwrap();
            assert!(matches!(o, ResetOutcome::WrongCode), "{o:?}");
        }
        let o = confirm(&d, client(), "pre1", &code, NEW, NEW)
            .await
            .unwrap();
        assert!(
            matches!(o, ResetOutcome::Restart),
            "void after max_attempts: {o:?}"
        );
        let rita = w.accounts.get("rita").await.unwrap().unwrap();
        assert!(verify_now(PASSWORD, &rita.password), "unchanged");
    }

    #[tokio::test]
    async fn a_code_expires_belongs_to_one_browser_and_works_once() {
        let w = world().await;
        let d = w.deps();
        let old = code_for(&w, "pre1").await;
        w.clock.advance(w.config.otp.code_ttl.as_secs() + 1);
        let o = confirm(&d, client(), "pre1", &old, NEW, NEW).await.unwrap();
        assert!(matches!(o, ResetOutcome::Restart), "expired: {o:?}");
        let code = code_for(&w, "pre1").await;
        // Another browser can't use it.
        let o = confirm(&d, client(), "pre2", &code, NEW, NEW)
            .await
            .unwrap();
        assert!(matches!(o, ResetOutcome::Restart), "{o:?}");
        // A refused new password doesn't spend the code.
        let o = confirm(&d, client(), "pre1", &code, "short", "short")
            .await
            .unwrap();
        assert!(
            matches!(o, ResetOutcome::BadPassword(Refusal::TooShort { .. })),
            "{o:?}"
        );
        let tab = "purple monkey\tdishwasher tango";
        let o = confirm(&d, client(), "pre1", &code, tab, tab)
            .await
            .unwrap();
        assert!(
            matches!(o, ResetOutcome::BadPassword(Refusal::ControlCharacter)),
            "{o:?}"
        );
        let o = confirm(&d, client(), "pre1", &code, NEW, NEW)
            .await
            .unwrap();
        assert!(
            matches!(&o, ResetOutcome::Done { user } if user == "rita"),
            "{o:?}"
        );
        let rita = w.accounts.get("rita").await.unwrap().unwrap();
        assert!(verify_now(NEW, &rita.password));
        let o = confirm(&d, client(), "pre1", &code, NEW, NEW)
            .await
            .unwrap();
        assert!(matches!(o, ResetOutcome::Restart), "used: {o:?}");
    }

    /// Without the code, the new password says nothing about the account: a password
    /// an account's details would refuse (its name in it, the single-factor minimum
    /// missed, the two copies different) gets "wrong code", for a real identifier
    /// as for an unknown one (attack pass: the policy's answer told them apart). With
    /// the right code it is judged, the code stays, and the right guess isn't counted.
    #[tokio::test]
    async fn without_the_code_the_new_password_tells_nothing() {
        let w = world().await;
        let d = w.deps();
        let code = code_for(&w, "real").await;
        request(&d, client(), "nobody", "nobody@example.com")
            .await
            .unwrap();
        for (pw, again) in [
            ("Zq8!rita#vX", "Zq8!rita#vX"),
            ("short", "short"),
            ("harbor quilt rita 1931", "something else"),
        ] {
            for pre in ["real", "nobody"] {
                let o = confirm(&d, client(), pre, wrong(&code), pw, again)
                    .await
                    .unwrap();
                assert!(matches!(o, ResetOutcome::WrongCode), "{pre} {pw}: {o:?}");
            }
        }
        // The right code (3 wrong guesses of 3 spent: a void code answers Restart).
        let code = code_for(&w, "real").await;
        for _ in 0..4 {
            let o = confirm(&d, client(), "real", &code, "Zq8!rita#vX", "Zq8!rita#vX")
                .await
                .unwrap();
            assert!(matches!(o, ResetOutcome::BadPassword(_)), "{o:?}");
        }
        let o = confirm(&d, client(), "real", &code, NEW, NEW)
            .await
            .unwrap();
        assert!(
            matches!(&o, ResetOutcome::Done { user } if user == "rita"),
            "{o:?}"
        );
    }

    #[tokio::test]
    async fn unknown_identifiers_get_the_same_answer_and_no_code() {
        let w = world().await;
        let r = request(&w.deps(), client(), "pre1", "nobody@example.com")
            .await
            .unwrap();
        assert!(r.send.is_none());
        // The browser waits for a code like any other: a guess reads as a wrong code.
        let o = confirm(&w.deps(), client(), "pre1", "123456", NEW, NEW)
            .await
            .unwrap();
        assert!(matches!(o, ResetOutcome::WrongCode), "{o:?}");
    }
}
