//! The sign-in flow as a state machine: identifier and password in, a typed
//! [`SignInOutcome`] out. The portal's `POST /login` parses the form, calls
//! [`attempt`], and renders what comes back; it never decides anything itself.
//!
//! ```text
//!  Input ─ empty field / password > 1 KiB ─────────────────────────────> Invalid
//!    │
//!    ├─ account lookup (as typed, else a national phone number) ── down ─> Err(Accounts)
//!    ├─ reserve the attempt on the ladder (account, or this known device's;
//!    │  unknown identifiers have a ladder of their own, named by a keyed digest)
//!    │     └─ locked / over the threshold ─> dummy hash ─> Refused    (same work and answer
//!    │                                                     as Wrong; not extended)
//!    ├─ CAPTCHA due? ─ missing / wrong / reused ───────────────────────> NeedCaptcha (counted)
//!    ├─ password (argon2, bounded) ─ pool full ───────────────────────> Busy (given back)
//!    │                             ─ wrong, no such account, or the stored
//!    │                               hash unreadable (logged) ────────> Wrong (counted; may lock)
//!    ├─ right, account suspended ──────────────────────────────────────> Suspended { reason }
//!    ├─ right, account closed ─────────────────────────────────────────> Closed
//!    ├─ right, but a concurrent failure locked the ladder meanwhile ──> Refused
//!    └─ right ─> new session (no fixation) ─> SignedIn { pending }
//!                  pending = Enrol        (two-step required, no app yet)
//!                          | SecondFactor (an app is enrolled; browser not remembered)
//!                          | Done         (ladder starts over)
//! ```
//!
//! A failure that reaches `defense.lock_after` locks the ladder ([`Locked`]); the
//! owner is told (unlock link) unless the failure came from one of their known
//! devices. Disabled accounts answer exactly like a wrong password, so the page
//! never reveals whether an identifier exists; suspended and closed accounts are
//! told so only after the right password.

use std::sync::Arc;

use serde_json::json;

use super::flow::{AuthError, Browser, Deps, Locked};
use super::password::{PasswordError, MAX_PASSWORD_BYTES};
use crate::defense::{Attempt, Standing};
use crate::session::{Pending, SessionId, SessionRecord};
use crate::users::{Identifier, User};

/// A posted CAPTCHA answer, for the pre-session (browser) it was shown to.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaptchaAnswer<'a> {
    pub pre: &'a str,
    pub id: &'a str,
    pub answer: &'a str,
}

/// What the person typed.
#[derive(Clone, Copy)]
pub struct SignInInput<'a> {
    /// As typed (trimmed).
    pub identifier: &'a str,
    pub password: &'a str,
    pub captcha: CaptchaAnswer<'a>,
}

/// Why the form can't be tried at all (400, nothing counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Identifier or password empty.
    Incomplete,
    /// Password over [`MAX_PASSWORD_BYTES`].
    TooLong,
}

/// A failed attempt, as the page needs it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// This failure locked the ladder.
    pub locked: Option<Locked>,
    /// The next form shows a CAPTCHA.
    pub captcha_next: bool,
}

/// How one sign-in attempt ended.
#[derive(Debug)]
pub enum SignInOutcome {
    Invalid(Invalid),
    /// The argon2 pool is full: try again in a few seconds (nothing counted).
    Busy,
    /// The ladder is locked (or this attempt went over its threshold): answered
    /// like [`SignInOutcome::Wrong`], never revealed.
    Refused(Failure),
    /// The CAPTCHA was due and missing or wrong (counted as a failure).
    NeedCaptcha(Failure),
    /// Wrong password, no such account, or a disabled account (counted).
    Wrong(Failure),
    /// The right password for a suspended account.
    Suspended {
        reason: String,
    },
    /// The right password for a closed account.
    Closed,
    SignedIn(SignedIn),
}

/// A right password: the new session, and what is still to do.
#[derive(Debug)]
pub struct SignedIn {
    pub session: SessionId,
    pub user: Arc<User>,
    pub factors: u8,
    pub pending: Pending,
}

/// After a right password: how many factors the new session proves and what is
/// still to do (enrol, the second step, or nothing).
pub fn after_password(deps: &Deps<'_>, user: &User, browser: &Browser<'_>) -> (u8, Pending) {
    let otp = &deps.config.otp;
    if otp.required_for(&user.groups) && !user.has_totp() {
        return (1, Pending::Enrol);
    }
    if otp.remember_days > 0 && browser.remembered(user, deps.clock.now()) {
        return (2, Pending::Done);
    }
    if user.has_totp() {
        return (1, Pending::SecondFactor);
    }
    (1, Pending::Done)
}

/// The account `typed` names: as typed, else (with `[ui] default_region`) as a
/// national phone number of that region, so a user name made of digits still wins.
pub async fn find_account(
    deps: &Deps<'_>,
    typed: &str,
) -> Result<(Option<Identifier>, Option<Arc<User>>), AuthError> {
    let id = Identifier::parse(typed);
    if let Some(i) = &id {
        if let Some(u) = deps.accounts.find(i).await? {
            return Ok((id, Some(u)));
        }
    }
    let region = deps.config.ui.default_region.as_deref();
    match region.and_then(|r| crate::ui::help::national_phone(typed, r)) {
        Some(p) => {
            let pid = Identifier::Phone(p);
            let u = deps.accounts.find(&pid).await?;
            Ok((Some(pid), u))
        }
        None => Ok((id, None)),
    }
}

/// The name an attempt is counted under. Unknown identifiers have a ladder too, so
/// CAPTCHA and lock behave alike for accounts that exist and ones that don't: the
/// ladder doesn't tell which is which. Theirs is named by the keyed digest the audit
/// log uses (`unknown:...`, [`Deps::audited_name`]), never by the text typed (it may
/// be a password in the wrong box): that name is stored with the counters, listed by
/// `portcullis lock list` and audited when cleared. (No account name holds a `:`.)
fn ladder_name(
    deps: &Deps<'_>,
    user: Option<&User>,
    id: Option<&Identifier>,
    typed: &str,
) -> String {
    match (user, id) {
        (Some(u), _) => u.name.clone(),
        (None, Some(i)) => deps.audited_name(&format!("?{}", i.key())),
        (None, None) => deps.audited_name(&format!(
            "?raw:{}",
            typed.to_lowercase().chars().take(64).collect::<String>()
        )),
    }
}

/// One attempt through the machine. See the module doc for the states.
pub async fn attempt(
    deps: &Deps<'_>,
    browser: &Browser<'_>,
    input: SignInInput<'_>,
) -> Result<SignInOutcome, AuthError> {
    if input.password.len() > MAX_PASSWORD_BYTES {
        return Ok(SignInOutcome::Invalid(Invalid::TooLong));
    }
    if input.identifier.is_empty() || input.password.is_empty() {
        return Ok(SignInOutcome::Invalid(Invalid::Incomplete));
    }
    let (id, user) = find_account(deps, input.identifier).await?;
    let device = user.as_ref().and_then(|u| browser.known_device(&u.name));
    let name = ladder_name(deps, user.as_deref(), id.as_ref(), input.identifier);
    let account = deps.ladder_key(&name, browser.client);
    // Reserved before anything slow, so concurrent attempts can't race past the thresholds.
    let reserved = deps
        .defense
        .begin_attempt(
            &deps.config.defense,
            &account,
            device.as_deref(),
            browser.client,
        )
        .await?;
    let a = Try {
        deps,
        browser,
        // (Text that is no identifier at all: its ladder's name, the same digest.)
        id_key: Some(match &id {
            Some(id) => audited_identifier(deps, id, user.is_some()),
            None => name,
        }),
        user,
        device,
        account,
        reserved,
    };
    a.run(input).await
}

/// An identifier as the audit log shows it: an account's key (`email:...`) as it
/// is; one that names no account as a keyed digest ([`Deps::audited_name`]).
fn audited_identifier(deps: &Deps<'_>, id: &Identifier, known: bool) -> String {
    let key = id.key();
    if known {
        return key;
    }
    deps.audited_name(&format!("?{key}"))
}

/// One attempt, reserved on its ladder.
struct Try<'d, 'a> {
    deps: &'d Deps<'a>,
    browser: &'d Browser<'a>,
    /// The identifier as the audit log shows it ([`audited_identifier`]; for text
    /// that isn't an identifier, its ladder's `unknown:` name). Always set.
    id_key: Option<String>,
    user: Option<Arc<User>>,
    /// This browser's known-device id for the account.
    device: Option<String>,
    /// The ladder key (account, or `?identifier` for no account).
    account: String,
    reserved: Attempt,
}

impl Try<'_, '_> {
    async fn run(&self, input: SignInInput<'_>) -> Result<SignInOutcome, AuthError> {
        let deps = self.deps;
        let standing = self.reserved.standing;
        if standing.locked_for.is_some() {
            // Locked (or too many attempts at once): the same answer, after the same work,
            // as a wrong password; the lock is neither revealed nor extended.
            if let Err(PasswordError::Busy) = deps.hasher.verify(input.password, None).await {
                deps.metrics.signins.with_label_values(&["busy"]).inc();
                return Ok(SignInOutcome::Busy);
            }
            return self.refused(self.reserved.reserved()).await;
        }
        if standing.captcha {
            let c = input.captcha;
            if deps.captchas.solve(c.id, c.pre, c.answer).await? {
                deps.metrics.captcha.with_label_values(&["solved"]).inc();
            } else {
                deps.metrics.captcha.with_label_values(&["failed"]).inc();
                deps.audit(
                    "captcha_failed",
                    json!({ "client": self.browser.client.to_string(), "missing": c.answer.is_empty() }),
                );
                return Ok(SignInOutcome::NeedCaptcha(
                    self.failed("captcha", true, true).await?,
                ));
            }
        }
        let phc = self.user.as_ref().map(|u| u.password.as_str());
        let ok = match deps.hasher.verify(input.password, phc).await {
            Ok(ok) => ok,
            // Told apart only in the log: answered, timed and counted exactly like a
            // wrong password, so a broken account can't be told from a real one (or
            // a disabled one) by its answer.
            Err(PasswordError::Unreadable) => {
                let user = self.user.as_ref().map(|u| u.name.as_str()).unwrap_or("");
                tracing::error!(
                    user,
                    "stored password hash can't be read: sign-in refused as a wrong password \
                     (set a new one with `portcullis user set-password`)"
                );
                let _ = deps.hasher.verify(input.password, None).await;
                false
            }
            Err(e) => {
                // Not an answer about the password: the reservation is given back.
                let _ = deps.defense.attempt_passed(&self.reserved, false).await;
                return match e {
                    PasswordError::Busy => {
                        deps.metrics.signins.with_label_values(&["busy"]).inc();
                        Ok(SignInOutcome::Busy)
                    }
                    PasswordError::Unreadable | PasswordError::Hash(_) => {
                        Err(AuthError::Hash(e.to_string()))
                    }
                };
            }
        };
        let user = match &self.user {
            Some(u) if ok && u.is_active() => u.clone(),
            // The password was right: a suspended or closed account is told so (and
            // only then, so the page never reveals whether an identifier exists).
            Some(u) if ok && !u.closed && !u.suspended.is_empty() => {
                self.not_active(u, "suspended").await;
                let reason = u.suspended.trim_end_matches('.').to_string();
                return Ok(SignInOutcome::Suspended { reason });
            }
            Some(u) if ok && u.closed => {
                self.not_active(u, "closed").await;
                return Ok(SignInOutcome::Closed);
            }
            _ => {
                return Ok(SignInOutcome::Wrong(
                    self.failed("password", true, false).await?,
                ))
            }
        };
        // A concurrent failure may have locked the account while the hash ran.
        if deps.defense.locked_now(&self.reserved).await?.is_some() {
            return self.refused(false).await;
        }
        self.signed_in(user).await.map(SignInOutcome::SignedIn)
    }

    /// Locked or over the threshold: audited, counted when `count`, answered like a
    /// wrong password.
    async fn refused(&self, count: bool) -> Result<SignInOutcome, AuthError> {
        self.deps.audit(
            "signin_refused_locked",
            json!({ "identifier": self.id_key, "client": self.browser.client.to_string() }),
        );
        Ok(SignInOutcome::Refused(
            self.failed("locked", count, true).await?,
        ))
    }

    /// A right password for a suspended or closed account: not counted as a failure
    /// (the password was right), recorded.
    async fn not_active(&self, user: &User, what: &'static str) {
        let deps = self.deps;
        let _ = deps.defense.attempt_passed(&self.reserved, false).await;
        let client = self.browser.client.to_string();
        deps.metrics.signins.with_label_values(&["failure"]).inc();
        deps.accounts
            .record_later(&user.name, "signin_refused", &client, what);
        deps.audit(
            "signin_refused",
            json!({ "user": user.name, "client": client, "status": what }),
        );
    }

    /// A failed attempt: counted (when `count`) on the ladder, audited, recorded.
    async fn failed(
        &self,
        reason: &'static str,
        count: bool,
        captcha_next: bool,
    ) -> Result<Failure, AuthError> {
        let deps = self.deps;
        let cfg = &deps.config.defense;
        let client = self.browser.client;
        let known = self.user.is_some();
        deps.metrics.signins.with_label_values(&["failure"]).inc();
        let locked = if count {
            deps.defense
                .attempt_failed(cfg, &self.reserved, client)
                .await?
        } else {
            None
        };
        deps.audit(
            "signin_failed",
            json!({ "identifier": self.id_key, "known": known, "client": client.to_string(), "reason": reason }),
        );
        if let Some(u) = &self.user {
            deps.accounts
                .record_later(&u.name, "signin_failed", &client.to_string(), reason);
        }
        let locked = locked.map(|duration| {
            deps.metrics.locks.inc();
            deps.audit(
                "account_locked",
                json!({ "user": if known { Some(&self.account) } else { self.id_key.as_ref() }, "client": client.to_string(), "seconds": duration.as_secs(), "known_device": self.device.is_some(), "known": known }),
            );
            Locked {
                duration,
                // A lock from one of the owner's own browsers isn't news to them.
                notify: self.user.clone().filter(|_| self.device.is_none()),
            }
        });
        let standing = deps
            .defense
            .standing(cfg, Some(&self.account), self.device.as_deref(), client)
            .await
            .unwrap_or(Standing {
                locked_for: None,
                captcha: true,
            });
        Ok(Failure {
            locked,
            captcha_next: captcha_next || standing.captcha,
        })
    }

    /// The right password: a new session (no fixation), and what is still to do.
    /// The ladder starts over only for a complete sign-in.
    async fn signed_in(&self, user: Arc<User>) -> Result<SignedIn, AuthError> {
        let deps = self.deps;
        let client = self.browser.client.to_string();
        let (factors, pending) = after_password(deps, &user, self.browser);
        // A right password must not wipe the failures of someone guessing the second
        // factor: neither while the second step is still to come, nor when one may
        // still be asked for (a `two_factor` path, and a way to it: an app, backup
        // codes, a phone, an email), or every fresh sign-in would buy whoever has the
        // password fresh guesses at the codes (attack pass).
        let complete = pending == Pending::Done
            && (factors >= 2 || !super::second_step::step_up_possible(deps.config, &user));
        deps.defense
            .attempt_passed(&self.reserved, complete)
            .await?;
        let now = deps.clock.now();
        let record = SessionRecord {
            user: user.name.clone(),
            factors,
            created: now,
            last_seen: now,
            client: client.clone(),
            cred_version: user.credentials_version,
            pending,
            auth_at: now,
        };
        let (session, _) = deps.sessions.create_from(record).await?;
        deps.metrics.signins.with_label_values(&["success"]).inc();
        deps.accounts.record_later(
            &user.name,
            if pending == Pending::SecondFactor {
                "password_ok"
            } else {
                "signin_ok"
            },
            &client,
            &format!("factors={factors}"),
        );
        deps.audit(
            "signin",
            json!({ "user": user.name, "client": client, "factors": factors, "pending": pending, "known_device": self.device.is_some() }),
        );
        Ok(SignedIn {
            session,
            user,
            factors,
            pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::flow::testing::{World, PASSWORD};
    use crate::auth::totp::Enrolment;

    const LADDER: &str = "[defense]\ncaptcha_after = 2\nlock_after = 4\nip_per_minute = 100000\nspray_per_minute = 0\n";

    fn typed<'a>(identifier: &'a str, password: &'a str) -> SignInInput<'a> {
        SignInInput {
            identifier,
            password,
            captcha: CaptchaAnswer::default(),
        }
    }

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            email: format!("{name}@example.com"),
            ..User::default()
        }
    }

    /// An attempt with the CAPTCHA of a fresh challenge answered right.
    async fn with_captcha(
        w: &World,
        b: &Browser<'_>,
        id: &str,
        pw: &str,
    ) -> Result<SignInOutcome, AuthError> {
        let cid = w.captchas.create("pre1").await.unwrap();
        let answer = w.captcha_answer(&cid).await;
        let input = SignInInput {
            captcha: CaptchaAnswer {
                pre: "pre1",
                id: &cid,
                answer: &answer,
            },
            ..typed(id, pw)
        };
        attempt(&w.deps(), b, input).await
    }

    /// Where a `two_factor` path can ask an account for a second step, a right
    /// password alone doesn't start its ladder over (the failures may be guesses at
    /// its codes by someone who has the password); where none can, it does.
    #[tokio::test]
    async fn a_password_alone_starts_the_ladder_over_only_where_no_second_step_can_follow() {
        const NO_CAPTCHA: &str = "[defense]\ncaptcha_after = 100\nlock_after = 4\nip_per_minute = 100000\nspray_per_minute = 0\n";
        let two = format!("{NO_CAPTCHA}[[rule]]\npath = \"/secure/\"\npolicy = \"two_factor\"\n");
        for (cfg, kept) in [(NO_CAPTCHA.to_string(), false), (two, true)] {
            let w = World::new(&cfg);
            w.add(user("alice")).await;
            let d = w.deps();
            let b = w.browser("");
            assert!(matches!(
                attempt(&d, &b, typed("alice", "nope")).await.unwrap(),
                SignInOutcome::Wrong(_)
            ));
            let ok = attempt(&d, &b, typed("alice", PASSWORD)).await.unwrap();
            assert!(matches!(ok, SignInOutcome::SignedIn(_)), "{ok:?}");
            // Three more failures: the fourth since the start locks only if the first
            // was kept.
            let mut locked = false;
            for _ in 0..3 {
                match attempt(&d, &b, typed("alice", "nope")).await.unwrap() {
                    SignInOutcome::Wrong(f) => locked |= f.locked.is_some(),
                    SignInOutcome::Refused(_) => locked = true,
                    o => panic!("{o:?}"),
                }
            }
            assert_eq!(locked, kept, "{cfg}");
        }
    }

    #[tokio::test]
    async fn the_ladder_asks_a_captcha_then_locks_and_a_known_device_still_gets_in() {
        let w = World::new(LADDER);
        let alice = w.add(user("alice")).await;
        let d = w.deps();
        let b = w.browser("");
        // Two wrong passwords: the second makes the next form show a CAPTCHA.
        match attempt(&d, &b, typed("alice", "nope")).await.unwrap() {
            SignInOutcome::Wrong(f) => assert!(!f.captcha_next && f.locked.is_none()),
            o => panic!("{o:?}"),
        }
        match attempt(&d, &b, typed("alice", "nope")).await.unwrap() {
            SignInOutcome::Wrong(f) => assert!(f.captcha_next && f.locked.is_none()),
            o => panic!("{o:?}"),
        }
        // Without the CAPTCHA even the right password doesn't get in (counted: 3rd failure).
        let o = attempt(&d, &b, typed("alice", PASSWORD)).await.unwrap();
        assert!(matches!(o, SignInOutcome::NeedCaptcha(_)), "{o:?}");
        // The 4th failure locks; the owner is to be told (not from a known device).
        match with_captcha(&w, &b, "alice", "nope").await.unwrap() {
            SignInOutcome::Wrong(f) => {
                let l = f.locked.expect("locked");
                assert_eq!(l.duration, w.config.defense.lock_duration);
                assert_eq!(l.notify.map(|u| u.name.clone()), Some("alice".into()));
            }
            o => panic!("{o:?}"),
        }
        // Locked: the right password is refused, like a wrong one, from unknown browsers.
        let o = with_captcha(&w, &b, "alice", PASSWORD).await.unwrap();
        assert!(matches!(o, SignInOutcome::Refused(_)), "{o:?}");
        // The owner's known device isn't locked out by someone else's guesses.
        let dev = w.cookies.device_cookie("alice", &"d".repeat(32), 90);
        let jar = dev.split(';').next().unwrap().to_string();
        let known = Browser {
            client: "198.51.100.9".parse().unwrap(),
            ..w.browser(&jar)
        };
        match attempt(&d, &known, typed("alice", PASSWORD)).await.unwrap() {
            SignInOutcome::SignedIn(s) => {
                assert_eq!((s.user.name.as_str(), s.pending), ("alice", Pending::Done));
                assert_eq!(s.factors, 1);
                assert!(w.sessions.load(&s.session).await.is_ok());
            }
            o => panic!("{o:?}"),
        }
        // The lock ends on its own (fake clock): the right password works again.
        w.clock
            .advance(w.config.defense.lock_duration.as_secs() + 1);
        let o = with_captcha(&w, &b, "alice", PASSWORD).await.unwrap();
        assert!(matches!(o, SignInOutcome::SignedIn(_)), "{o:?}");
        assert_eq!(alice.name, "alice");
    }

    #[tokio::test]
    async fn unknown_identifiers_climb_a_ladder_of_their_own() {
        let w = World::new(LADDER);
        let d = w.deps();
        let b = w.browser("");
        for _ in 0..2 {
            let o = attempt(&d, &b, typed("nobody@example.com", "x"))
                .await
                .unwrap();
            assert!(matches!(o, SignInOutcome::Wrong(_)), "{o:?}");
        }
        let o = attempt(&d, &b, typed("nobody@example.com", "x"))
            .await
            .unwrap();
        assert!(matches!(o, SignInOutcome::NeedCaptcha(_)), "{o:?}");
        match with_captcha(&w, &b, "nobody@example.com", "x")
            .await
            .unwrap()
        {
            // Locked like an account, but there is nobody to tell.
            SignInOutcome::Wrong(f) => assert!(f.locked.is_some_and(|l| l.notify.is_none())),
            o => panic!("{o:?}"),
        }
    }

    #[tokio::test]
    async fn statuses_are_told_only_after_the_right_password() {
        let w = World::new(LADDER);
        w.add(User {
            suspended: "Unpaid invoice.".into(),
            ..user("sam")
        })
        .await;
        w.add(User {
            closed: true,
            ..user("cleo")
        })
        .await;
        w.add(User {
            disabled: true,
            ..user("dora")
        })
        .await;
        let d = w.deps();
        let b = w.browser("");
        let o = attempt(&d, &b, typed("sam", "wrong")).await.unwrap();
        assert!(matches!(o, SignInOutcome::Wrong(_)), "{o:?}");
        match attempt(&d, &b, typed("sam", PASSWORD)).await.unwrap() {
            SignInOutcome::Suspended { reason } => assert_eq!(reason, "Unpaid invoice"),
            o => panic!("{o:?}"),
        }
        let o = attempt(&d, &b, typed("cleo", PASSWORD)).await.unwrap();
        assert!(matches!(o, SignInOutcome::Closed), "{o:?}");
        // Disabled reads exactly like a wrong password.
        let o = attempt(&d, &b, typed("dora", PASSWORD)).await.unwrap();
        assert!(matches!(o, SignInOutcome::Wrong(_)), "{o:?}");
    }

    #[tokio::test]
    async fn forms_that_cant_be_tried_and_hashes_that_cant_be_read() {
        let w = World::new(LADDER);
        w.add(User {
            password: "$argon2id$v=19$m=19456,t=2,p=1$broken".into(),
            ..user("hal")
        })
        .await;
        let d = w.deps();
        let b = w.browser("");
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        for (id, pw, want) in [
            ("hal", long.as_str(), Invalid::TooLong),
            ("", "pw", Invalid::Incomplete),
            ("hal", "", Invalid::Incomplete),
        ] {
            match attempt(&d, &b, typed(id, pw)).await.unwrap() {
                SignInOutcome::Invalid(i) => assert_eq!(i, want),
                o => panic!("{o:?}"),
            }
        }
        // A corrupt stored hash reads exactly like a wrong password (answer and count),
        // so the answer never tells a broken account from a wrong guess; only the log says.
        w.add(user("ivy")).await;
        for who in ["hal", "ivy"] {
            for _ in 0..3 {
                let o = with_captcha(&w, &b, who, "anything").await.unwrap();
                assert!(matches!(o, SignInOutcome::Wrong(_)), "{who}: {o:?}");
            }
        }
        let mut standings = Vec::new();
        for who in ["hal", "ivy"] {
            let s = w
                .defense
                .standing(&w.config.defense, Some(who), None, b.client);
            standings.push(s.await.unwrap());
        }
        let (hal, ivy) = (standings[0], standings[1]);
        assert_eq!(hal, ivy, "counted like a wrong password");
        assert!(hal.captcha, "three failures are past captcha_after = 2");
    }

    #[tokio::test]
    async fn the_second_step_is_pending_after_the_password_unless_remembered() {
        let w = World::new(&format!("{LADDER}[otp]\nrequire_groups = [\"admins\"]\n"));
        let e = Enrolment::generate(&w.config.otp);
        let totp = w
            .sealer
            .seal(&serde_json::to_vec(&e).unwrap(), "tina")
            .unwrap();
        let tina = w
            .add(User {
                totp,
                ..user("tina")
            })
            .await;
        w.add(User {
            groups: vec!["admins".into()],
            ..user("adam")
        })
        .await;
        let d = w.deps();
        let b = w.browser("");
        for (who, factors, pending) in [
            ("tina", 1, Pending::SecondFactor),
            ("adam", 1, Pending::Enrol),
        ] {
            match attempt(&d, &b, typed(who, PASSWORD)).await.unwrap() {
                SignInOutcome::SignedIn(s) => {
                    assert_eq!((s.factors, s.pending), (factors, pending), "{who}")
                }
                o => panic!("{o:?}"),
            }
        }
        // A remembered browser skips the second step.
        let until = crate::clock::Clock::now(&w.clock) + 86_400;
        let c = w
            .cookies
            .remember_cookie("tina", tina.factors_version, until, 30);
        let jar = c.split(';').next().unwrap().to_string();
        match attempt(&d, &w.browser(&jar), typed("tina", PASSWORD))
            .await
            .unwrap()
        {
            SignInOutcome::SignedIn(s) => assert_eq!((s.factors, s.pending), (2, Pending::Done)),
            o => panic!("{o:?}"),
        }
    }
}

debug_hiding!(SignInInput<'a> { identifier } hides { password, captcha });
