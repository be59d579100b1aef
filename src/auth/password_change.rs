//! Changing one's password while signed in, as a state machine; and what every
//! new password goes through ([`check_new`], [`save_new`]), shared with the
//! reset ([`super::reset`]).
//!
//! ```text
//!  (a whole sign-in: both steps done)
//!  change(current, new, confirm)
//!    ├─ new password refused by the policy ─────────────> BadNew(refusal)   (no guess: not counted)
//!    ├─ reserve on the account's ladder (or the known device's)
//!    │     └─ locked / over the threshold ─> dummy hash ─> Refused         (counted when reserved)
//!    ├─ CAPTCHA due (captcha_on_password_change, or the ladder) ─ wrong ─> NeedCaptcha (counted)
//!    ├─ current password ─ pool full ─────────────────────> Busy
//!    │                   ─ stored hash unreadable ───────> Err(HashUnreadable)
//!    │                   ─ wrong ─> counted like a failed second step ─> Wrong { locked }
//!    ├─ a concurrent failure locked the ladder meanwhile ─> Refused
//!    └─ right ─> new hash saved (credentials version +1: every session ends),
//!                counters reset, a fresh session for this browser ─> Changed
//! ```

use std::sync::Arc;

use serde_json::json;

use super::flow::{AuthError, Browser, Deps, Locked};
use super::password::PasswordError;
use super::password_policy::{self as policy, Refusal};
use super::second_step::count_failure;
use super::signin::CaptchaAnswer;
use crate::session::SessionId;
use crate::users::User;

/// Checks a new password for `user`'s account (`again`: the confirmation).
pub fn check_new(
    deps: &Deps<'_>,
    user: Option<&User>,
    password: &str,
    again: &str,
) -> Result<(), Refusal> {
    let cfg = deps.config;
    let service = [cfg.ui.title.as_str(), cfg.otp.totp_issuer.as_str()];
    let (second, words) = match user {
        Some(u) => (
            policy::has_second_factor(u),
            policy::personal_words(u, &service),
        ),
        None => (false, Vec::new()),
    };
    policy::check(&cfg.password, password, Some(again), second, &words)
}

/// Hashes and saves a new password, bumping the account's credentials version
/// (which ends its sessions). `Ok(None)`: the argon2 pool is full.
pub async fn save_new(
    deps: &Deps<'_>,
    user: &str,
    password: &str,
) -> Result<Option<Arc<User>>, AuthError> {
    let hash = match deps
        .hasher
        .hash(password, deps.config.password.argon2)
        .await
    {
        Ok(h) => h,
        Err(PasswordError::Busy) => return Ok(None),
        Err(e) => return Err(AuthError::Hash(e.to_string())),
    };
    let u = deps
        .accounts
        .modify(user, move |u| {
            u.password = hash;
            u.credentials_version += 1;
            Ok(())
        })
        .await
        .map_err(|why| AuthError::NotChanged {
            what: "password",
            why,
        })?;
    deps.accounts.record_later(user, "password_changed", "", "");
    Ok(Some(u))
}

/// Whether the password form shows a CAPTCHA for `account` now.
pub async fn needs_captcha(
    deps: &Deps<'_>,
    client: std::net::IpAddr,
    account: &str,
) -> Result<bool, AuthError> {
    let cfg = &deps.config.defense;
    if cfg.captcha_on_password_change {
        return Ok(true);
    }
    let key = deps.ladder_key(account, client);
    Ok(deps
        .defense
        .standing(cfg, Some(&key), None, client)
        .await?
        .captcha)
}

/// The form, as typed.
#[derive(Clone, Copy)]
pub struct ChangeInput<'a> {
    pub current: &'a str,
    pub new: &'a str,
    pub confirm: &'a str,
    pub captcha: CaptchaAnswer<'a>,
}

/// How a change ended. `captcha_next`: the form shows a CAPTCHA next time.
#[derive(Debug)]
pub enum ChangeOutcome {
    BadNew {
        refusal: Refusal,
        captcha_next: bool,
    },
    Busy,
    Refused {
        locked: Option<Locked>,
    },
    NeedCaptcha {
        locked: Option<Locked>,
        captcha_next: bool,
    },
    Wrong {
        locked: Option<Locked>,
        captcha_next: bool,
    },
    /// Saved; this browser's fresh session.
    Changed {
        session: SessionId,
    },
}

/// The change for `user`, made in a session proving `factors`. See the module doc.
pub async fn change(
    deps: &Deps<'_>,
    browser: &Browser<'_>,
    user: &Arc<User>,
    factors: u8,
    input: ChangeInput<'_>,
) -> Result<ChangeOutcome, AuthError> {
    let client = browser.client;
    // The new password first: a typo there is no guess at the current one.
    if let Err(refusal) = check_new(deps, Some(user), input.new, input.confirm) {
        let captcha_next = needs_captcha(deps, client, &user.name)
            .await
            .unwrap_or(true);
        return Ok(ChangeOutcome::BadNew {
            refusal,
            captcha_next,
        });
    }
    // A guess at the current password, by whoever holds this session: reserved on the
    // ladder before the hash (bursts can't race the thresholds), refused while locked,
    // and counted on the account's ladder like a second step.
    let account = deps.ladder_key(&user.name, client);
    let device = browser.known_device(&user.name);
    let cfg = &deps.config.defense;
    let attempt = deps
        .defense
        .begin_attempt(cfg, &account, device.as_deref(), client)
        .await?;
    let reserved = &attempt;
    let failed = |reason: &'static str| async move {
        let locked = if reserved.reserved() {
            count_failure(deps, browser, user, reserved, "password_change").await?
        } else {
            None
        };
        deps.audit(
            "password_change_failed",
            json!({ "user": user.name, "client": client.to_string(), "reason": reason }),
        );
        let captcha_next = needs_captcha(deps, client, &user.name)
            .await
            .unwrap_or(true);
        Ok::<_, AuthError>((locked, captcha_next))
    };
    if attempt.standing.locked_for.is_some() {
        if let Err(PasswordError::Busy) = deps.hasher.verify(input.current, None).await {
            return Ok(ChangeOutcome::Busy);
        }
        let (locked, _) = failed("locked").await?;
        return Ok(ChangeOutcome::Refused { locked });
    }
    if cfg.captcha_on_password_change || attempt.standing.captcha {
        let c = input.captcha;
        if !deps.captchas.solve(c.id, c.pre, c.answer).await? {
            let (locked, _) = failed("captcha").await?;
            return Ok(ChangeOutcome::NeedCaptcha {
                locked,
                captcha_next: true,
            });
        }
    }
    match deps
        .hasher
        .verify(input.current, Some(&user.password))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let (locked, captcha_next) = failed("password").await?;
            return Ok(ChangeOutcome::Wrong {
                locked,
                captcha_next,
            });
        }
        Err(e) => {
            let _ = deps.defense.attempt_passed(&attempt, false).await;
            return match e {
                PasswordError::Busy => Ok(ChangeOutcome::Busy),
                PasswordError::Unreadable => Err(AuthError::HashUnreadable {
                    user: user.name.clone(),
                }),
                PasswordError::Hash(e) => Err(AuthError::Hash(e)),
            };
        }
    }
    // A concurrent failure may have locked the account while the hash ran.
    if deps.defense.locked_now(&attempt).await?.is_some() {
        return Ok(ChangeOutcome::Refused { locked: None });
    }
    changed(
        deps,
        client,
        user,
        factors,
        &account,
        device.as_deref(),
        input.new,
    )
    .await
}

/// The current password was right: the new one is saved, the account's counters
/// reset, its sessions end, and this browser gets a fresh session proving
/// `factors` (what the old one did).
async fn changed(
    deps: &Deps<'_>,
    client: std::net::IpAddr,
    user: &User,
    factors: u8,
    account: &str,
    device: Option<&str>,
    new: &str,
) -> Result<ChangeOutcome, AuthError> {
    let Some(fresh) = save_new(deps, &user.name, new).await? else {
        return Ok(ChangeOutcome::Busy);
    };
    // The current password was proven: like a sign-in, that resets the account's
    // counters — and, like a sign-in, only when no second step could still be asked
    // of this session (re-attack pass: changing the password wiped the count of
    // wrong step-up codes). The password is saved, and older sessions are already
    // refused (credentials version): a store error from here on is logged, not shown
    // as a failure.
    if factors >= 2 || !super::second_step::step_up_possible(deps.config, user) {
        if let Err(e) = deps.defense.record_success(account, device).await {
            tracing::warn!(error = %e, "password changed; failure counters not reset");
        }
    }
    if let Err(e) = deps.sessions.revoke_user(&user.name).await {
        tracing::warn!(error = %e, "password changed; old session records not deleted");
    }
    // The fresh session proves what the old one did (a second factor included).
    let (session, _) = deps
        .sessions
        .create(
            &fresh.name,
            factors,
            &client.to_string(),
            fresh.credentials_version,
        )
        .await?;
    deps.audit(
        "password_changed",
        json!({ "user": user.name, "client": client.to_string() }),
    );
    Ok(ChangeOutcome::Changed { session })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::flow::testing::{World, PASSWORD};
    use crate::auth::password::verify_now;

    const CFG: &str = "[defense]\ncaptcha_after = 100\nlock_after = 3\nip_per_minute = 100000\nspray_per_minute = 0\n";
    const NEW: &str = "purple monkey dishwasher tango";

    fn input<'a>(current: &'a str, new: &'a str) -> ChangeInput<'a> {
        ChangeInput {
            current,
            new,
            confirm: new,
            captcha: CaptchaAnswer::default(),
        }
    }

    #[tokio::test]
    async fn the_current_password_is_needed_and_wrong_ones_lock() {
        let w = World::new(CFG);
        let u = w
            .add(User {
                name: "pat".into(),
                ..User::default()
            })
            .await;
        let (d, b) = (w.deps(), w.browser(""));
        let (old_session, _) = w
            .sessions
            .create("pat", 1, "x", u.credentials_version)
            .await
            .unwrap();
        let o = change(&d, &b, &u, 1, input("wrong", NEW)).await.unwrap();
        assert!(
            matches!(o, ChangeOutcome::Wrong { locked: None, .. }),
            "{o:?}"
        );
        // The policy first: a refused new password is no guess.
        let o = change(&d, &b, &u, 1, input("wrong", "ab")).await.unwrap();
        assert!(
            matches!(
                o,
                ChangeOutcome::BadNew {
                    refusal: Refusal::TooShort { .. },
                    ..
                }
            ),
            "{o:?}"
        );
        let ctl = "purple monkey\u{0}dishwasher tango";
        let o = change(&d, &b, &u, 1, input(PASSWORD, ctl)).await.unwrap();
        assert!(
            matches!(
                o,
                ChangeOutcome::BadNew {
                    refusal: Refusal::ControlCharacter,
                    ..
                }
            ),
            "{o:?}"
        );
        match change(&d, &b, &u, 1, input(PASSWORD, NEW)).await.unwrap() {
            ChangeOutcome::Changed { session } => {
                assert!(matches!(
                    w.sessions.load(&session).await.unwrap(),
                    crate::session::Lookup::Valid(r) if r.factors == 1
                ));
            }
            o => panic!("{o:?}"),
        }
        let pat = w.accounts.get("pat").await.unwrap().unwrap();
        assert!(verify_now(NEW, &pat.password) && !verify_now(PASSWORD, &pat.password));
        assert!(matches!(
            w.sessions.load(&old_session).await.unwrap(),
            crate::session::Lookup::Ended
        ));
        // Three wrong guesses lock; then even the right one is refused.
        for i in 1..=3 {
            match change(&d, &b, &pat, 1, input("wrong", NEW)).await.unwrap() {
                ChangeOutcome::Wrong { locked, .. } => assert_eq!(locked.is_some(), i == 3),
                o => panic!("{o:?}"),
            }
        }
        let o = change(&d, &b, &pat, 1, input(NEW, PASSWORD)).await.unwrap();
        assert!(matches!(o, ChangeOutcome::Refused { .. }), "{o:?}");
    }

    /// A password change proves the password only: where a `two_factor` path could
    /// still ask the account for a second step, the failures counted so far (guesses
    /// at its codes, maybe) stay; where none could, they go, as at sign-in.
    #[tokio::test]
    async fn a_change_on_the_password_alone_keeps_the_count_where_a_second_step_can_follow() {
        let two = format!("{CFG}[[rule]]\npath = \"/secure/\"\npolicy = \"two_factor\"\n");
        for (cfg, factors, kept) in [
            (CFG.to_string(), 1, false),
            (two.clone(), 1, true),
            (two, 2, false),
        ] {
            let w = World::new(&cfg);
            let u = w
                .add(User {
                    name: "pat".into(),
                    email: "pat@example.com".into(),
                    ..User::default()
                })
                .await;
            let (d, b) = (w.deps(), w.browser(""));
            // Two failures (of lock_after = 3), then the change.
            for _ in 0..2 {
                let o = change(&d, &b, &u, factors, input("wrong", NEW))
                    .await
                    .unwrap();
                assert!(
                    matches!(o, ChangeOutcome::Wrong { locked: None, .. }),
                    "{o:?}"
                );
            }
            let o = change(&d, &b, &u, factors, input(PASSWORD, NEW))
                .await
                .unwrap();
            assert!(matches!(o, ChangeOutcome::Changed { .. }), "{o:?}");
            let pat = w.accounts.get("pat").await.unwrap().unwrap();
            // One more failure locks only if the two were kept.
            match change(&d, &b, &pat, factors, input("wrong", PASSWORD))
                .await
                .unwrap()
            {
                ChangeOutcome::Wrong { locked, .. } => {
                    assert_eq!(locked.is_some(), kept, "{cfg} factors {factors}")
                }
                ChangeOutcome::Refused { locked } => {
                    assert!(locked.is_some() && kept, "{cfg} factors {factors}")
                }
                o => panic!("{o:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_unreadable_stored_hash_is_an_error() {
        let w = World::new(CFG);
        let u = w
            .add(User {
                name: "hal".into(),
                password: "not-a-phc-string".into(),
                ..User::default()
            })
            .await;
        let e = change(&w.deps(), &w.browser(""), &u, 1, input("x", NEW))
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::HashUnreadable { .. }), "{e}");
    }
}

debug_hiding!(ChangeInput<'a> {  } hides { current, new, confirm, captcha });
