//! Enrolment of an authenticator app and the account's backup codes, as a state
//! machine. The portal's `/2fa/setup` parses, asks for the password again when
//! it is older than `otp.reauth_after` ([`super::second_step::reauthenticate`]),
//! calls, and renders.
//!
//! ```text
//!  (session; an account with an app must have passed its second step first)
//!  pending(): a secret for this session, sealed in the store for 15 min ─> QR + key + URI
//!  confirm(code) ─ no pending secret (expired) ─────────────────> Expired
//!                ─ not the code of step now±1 ──────────────────> Wrong
//!                ─ step already used (claimed at the challenge) ─> Replayed
//!                └─ saved sealed on the account, 10 new backup codes,
//!                   session rotated to 2 factors, the account's other sessions end
//!                                                              ─> Enrolled { codes shown once }
//!  regenerate() ─> a new set of backup codes (the old set is void)
//!  remove()     ─ two-step required for the account's groups ──> Required
//!               └─ app and backup codes off the account ───────> Removed
//! ```
//! Every change bumps the account's `factors_version`, which voids "remember
//! this browser" cookies.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::codes;
use super::flow::{AuthError, Deps};
use super::second_step::{claim_step, Signed};
use super::totp::Enrolment;
use crate::session::{Pending, SessionId, SessionRecord};
use crate::store::keys;
use crate::users::User;

/// How long a secret being set up waits for its first code.
const PENDING_TTL: Duration = Duration::from_secs(15 * 60);

/// Adding or replacing an app (or touching the codes of one) needs a session
/// that passed the second step whenever the account already has one — an app,
/// or codes by email, SMS or voice (`methods`, see
/// [`second_step::methods`](super::second_step::methods)): a password alone must
/// not be able to add its own phone and pass as two factors. The one exception is
/// the enrolment two-step requires of an account without an app at sign-in
/// (`Pending::Enrol`): its first app is set up on the password, as designed.
pub fn needs_second_first(s: &Signed, methods: &[super::second_step::Method]) -> bool {
    if s.is_done() {
        return false;
    }
    s.user.has_totp() || (s.record.pending != Pending::Enrol && !methods.is_empty())
}

fn open_pending(deps: &Deps<'_>, s: &Signed, sealed: &[u8]) -> Option<Enrolment> {
    let text = std::str::from_utf8(sealed).ok()?;
    let plain = deps.sealer.open(text, &s.user.name)?;
    serde_json::from_slice::<Enrolment>(&plain).ok()
}

/// The secret being set up for this session: the same across reloads of the page.
pub async fn pending(deps: &Deps<'_>, s: &Signed) -> Result<Enrolment, AuthError> {
    let key = keys::enrolment(&s.id.handle());
    if let Some(b) = deps.store.get(&key).await? {
        if let Some(e) = open_pending(deps, s, &b) {
            return Ok(e);
        }
    }
    let e = Enrolment::generate(&deps.config.otp);
    let sealed = seal(deps, &e, &s.user.name)?;
    deps.store.set(&key, sealed.as_bytes(), PENDING_TTL).await?;
    Ok(e)
}

fn seal(deps: &Deps<'_>, e: &Enrolment, owner: &str) -> Result<String, AuthError> {
    let json = serde_json::to_vec(e).map_err(|_| AuthError::Decode {
        what: "an authenticator enrolment",
    })?;
    deps.sealer
        .seal(&json, owner)
        .map_err(|_| AuthError::Decode {
            what: "an authenticator enrolment",
        })
}

/// How confirming a new app ended.
#[derive(Debug)]
pub enum Confirm {
    /// No secret pending for this session (it expired): scan the new one.
    Expired,
    /// Not the code the app shows now.
    Wrong,
    /// That code was already used.
    Replayed,
    /// Saved: the session now proves two factors under a new id.
    Enrolled(Enrolled),
}

/// A new app (or a new set of backup codes) saved.
#[derive()]
pub struct Enrolled {
    pub session: SessionId,
    pub record: SessionRecord,
    /// The account as stored now.
    pub user: Arc<User>,
    /// The backup codes, in clear: shown once, never stored so.
    pub codes: Vec<String>,
}

/// Confirms the pending secret with `code`. See the module doc.
pub async fn confirm(
    deps: &Deps<'_>,
    client: std::net::IpAddr,
    s: &Signed,
    code: &str,
) -> Result<Confirm, AuthError> {
    let key = keys::enrolment(&s.id.handle());
    let pending = match deps.store.get(&key).await? {
        Some(b) => open_pending(deps, s, &b),
        None => None,
    };
    let Some(e) = pending else {
        return Ok(Confirm::Expired);
    };
    let Some(step) = e.matching_step(code.trim(), deps.clock.now()) else {
        return Ok(Confirm::Wrong);
    };
    // The enrolment code can't be used again at the challenge.
    if !claim_step(deps, &s.user.name, &e, step).await? {
        return Ok(Confirm::Replayed);
    }
    let sealed = seal(deps, &e, &s.user.name)?;
    let (plain, hashes) = new_backup_codes(deps, &s.user.name);
    let enrolled_at = deps.clock.now();
    save_factors(deps, &s.user.name, move |u| {
        u.totp = sealed;
        u.backup_codes = hashes;
        u.factors_version += 1;
        u.totp_enrolled_at = enrolled_at;
    })
    .await?;
    let _ = deps.store.delete(&key).await;
    deps.audit(
        "2fa_enrolled",
        json!({ "user": s.user.name, "method": "totp", "client": client.to_string() }),
    );
    enrolled(deps, s, plain).await.map(Confirm::Enrolled)
}

/// The app is enrolled: the session now proves two factors (under a new id), and
/// the sessions from before — which proved only the password — end.
async fn enrolled(deps: &Deps<'_>, s: &Signed, codes: Vec<String>) -> Result<Enrolled, AuthError> {
    // The session has just proven the new factor.
    let record = SessionRecord {
        factors: 2,
        pending: Pending::Done,
        ..s.record.clone()
    };
    let (sid, record) = deps.sessions.rotate(&s.id, record).await?;
    // Sessions from before the enrolment proved only the password: they end now.
    match deps
        .sessions
        .revoke_others(&s.user.name, &sid.handle())
        .await
    {
        Ok(n) if n > 0 => deps.audit(
            "sessions_revoked",
            json!({ "user": s.user.name, "count": n, "why": "2fa_enrolled" }),
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "enrolled; older sessions not all ended"),
    }
    let user = deps
        .accounts
        .get(&s.user.name)
        .await
        .ok()
        .flatten()
        .unwrap_or(s.user.clone());
    Ok(Enrolled {
        session: sid,
        record,
        user,
        codes,
    })
}

/// A new set of backup codes, shown once; the old set is void.
pub async fn regenerate(
    deps: &Deps<'_>,
    client: std::net::IpAddr,
    s: &Signed,
) -> Result<Vec<String>, AuthError> {
    let (plain, hashes) = new_backup_codes(deps, &s.user.name);
    save_factors(deps, &s.user.name, move |u| {
        u.backup_codes = hashes;
        u.factors_version += 1;
    })
    .await?;
    deps.audit(
        "backup_codes_regenerated",
        json!({ "user": s.user.name, "client": client.to_string() }),
    );
    Ok(plain)
}

/// How removing the second factors ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Remove {
    /// The account's groups require two-step verification.
    Required,
    Removed,
}

/// The authenticator app and backup codes off the account (when not required).
pub async fn remove(
    deps: &Deps<'_>,
    client: std::net::IpAddr,
    s: &Signed,
) -> Result<Remove, AuthError> {
    if deps.config.otp.required_for(&s.user.groups) {
        return Ok(Remove::Required);
    }
    save_factors(deps, &s.user.name, |u| {
        u.totp.clear();
        u.backup_codes.clear();
        u.factors_version += 1;
    })
    .await?;
    deps.audit(
        "2fa_removed",
        json!({ "user": s.user.name, "client": client.to_string() }),
    );
    Ok(Remove::Removed)
}

/// Ten backup codes: in clear (to show once) and hashed with the data key (to keep).
fn new_backup_codes(deps: &Deps<'_>, user: &str) -> (Vec<String>, Vec<String>) {
    let plain = codes::backup_set();
    let hashes = plain
        .iter()
        .map(|c| deps.sealer.code_hash(user, &codes::normalize_backup(c)))
        .collect();
    (plain, hashes)
}

/// Changes an account's second factors in the account store (and records it).
async fn save_factors(
    deps: &Deps<'_>,
    user: &str,
    change: impl FnOnce(&mut User) + Send + 'static,
) -> Result<(), AuthError> {
    deps.accounts
        .modify(user, move |u| {
            change(u);
            Ok(())
        })
        .await
        .map_err(|why| AuthError::NotChanged {
            what: "two-step verification",
            why,
        })?;
    deps.accounts
        .record_later(user, "factors_changed", "", "two-step verification");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::flow::testing::World;
    use crate::auth::second_step::{verify, Method, VerifyOutcome};
    use crate::clock::Clock;

    #[tokio::test]
    async fn a_new_app_is_confirmed_once_its_code_cant_be_replayed_and_codes_are_shown_once() {
        let w =
            World::new("[defense]\nip_per_minute = 100000\n[otp]\nrequire_groups = [\"admins\"]\n");
        let u = w
            .add(User {
                name: "ed".into(),
                groups: vec!["admins".into()],
                ..User::default()
            })
            .await;
        let d = w.deps();
        let client = "192.0.2.7".parse().unwrap();
        let (id, record) = w
            .sessions
            .create("ed", 1, "x", u.credentials_version)
            .await
            .unwrap();
        let other = w
            .sessions
            .create("ed", 1, "y", u.credentials_version)
            .await
            .unwrap();
        let s = Signed {
            id,
            record,
            user: u,
        };
        let e = pending(&d, &s).await.unwrap();
        assert_eq!(
            pending(&d, &s).await.unwrap().secret,
            e.secret,
            "same across reloads"
        );
        let o = confirm(&d, client, &s, "000000x").await.unwrap();
        assert!(matches!(o, Confirm::Wrong), "{o:?}");
        let code = e.code_at_step(e.step_at(w.clock.now())).unwrap();
        let Confirm::Enrolled(done) = confirm(&d, client, &s, &code).await.unwrap() else {
            panic!("enrolled")
        };
        assert_eq!(done.codes.len(), 10);
        assert_eq!(
            (done.record.factors, done.record.pending),
            (2, Pending::Done)
        );
        assert!(done.user.has_totp() && done.user.backup_codes.len() == 10);
        assert!(
            matches!(
                w.sessions.load(&other.0).await.unwrap(),
                crate::session::Lookup::Ended
            ),
            "sessions from before the enrolment end"
        );
        // The pending secret is gone, and the enrolment code can't pass the challenge.
        let o = confirm(&d, client, &s, &code).await.unwrap();
        assert!(matches!(o, Confirm::Expired), "{o:?}");
        let signed = Signed {
            id: done.session.clone(),
            record: SessionRecord {
                pending: Pending::SecondFactor,
                factors: 1,
                ..done.record.clone()
            },
            user: done.user.clone(),
        };
        let o = verify(&d, &w.browser(""), &signed, Method::Totp, &code, false)
            .await
            .unwrap();
        assert!(matches!(o, VerifyOutcome::Wrong { .. }), "replayed: {o:?}");
        // Required for the account's group: it can't be removed; codes can be renewed.
        let s = Signed {
            user: done.user.clone(),
            ..signed
        };
        assert_eq!(remove(&d, client, &s).await.unwrap(), Remove::Required);
        let fresh = regenerate(&d, client, &s).await.unwrap();
        assert!(fresh.iter().all(|c| !done.codes.contains(c)));
    }
}

debug_hiding!(Enrolled { session, record, user } hides { codes });
