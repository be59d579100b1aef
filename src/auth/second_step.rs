//! The second step as a state machine: a session still waiting for its second
//! factor, a method and a code in; a typed [`VerifyOutcome`] out. Sending a code
//! ([`prepare_code`]) and asking for the password again before a change
//! ([`reauthenticate`]) are steps of the same machine. The portal's `/2fa` pages
//! parse, call, and render; they decide nothing.
//!
//! ```text
//!  session(pending=SecondFactor)
//!    │  verify(method, code)
//!    ├─ reserve on the account's ladder (or this known device's)
//!    │     └─ locked / over the threshold ──────────> Refused { locked }   (nothing checked)
//!    ├─ totp:   code of step now±1, that step not used yet by the account (set_nx)
//!    │          ─ step already used (replay) ───────> Wrong
//!    ├─ email/sms/voice: the code sent for this pending sign-in
//!    │          ─ none (never sent, expired, used) ─> NoCode             (reservation given back)
//!    │          ─ over otp.max_attempts ────────────> CodeVoid { locked } (counted, code deleted)
//!    ├─ backup: one of the account's codes, removed atomically by the account store
//!    │          ─ already used ─────────────────────> Wrong
//!    ├─ wrong ─> failure on the ladder (from a known device: on the account's too)
//!    │          ─ reaches lock_after ───────────────> Wrong { locked }   (owner told)
//!    └─ right ─> counters reset, new session id proving 2 factors ─> Passed
//!
//!  prepare_code(method) ─ within otp.resend_after of the last ─> Paced { secs }
//!                       ─ over a send limit (account, destination, client) ─> Limited { secs }
//!                       └─ code stored hashed (otp.code_ttl) ─> Ready { code } ─> delivered | abandon
//!
//!  reauthenticate(password) ─ locked ─> Refused ─ wrong ─> Wrong { locked } ─ right ─> Right
//! ```
//! While a sign-in is pending, the session proves nothing: every protected
//! request goes to the pending step, bypass rules excepted.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::codes;
use super::flow::{AuthError, Browser, Deps, Locked};
use super::password::{PasswordError, MAX_PASSWORD_BYTES};
use super::totp::Enrolment;
use crate::defense::Attempt;
use crate::notify::Channel;
use crate::session::{Pending, SessionId, SessionRecord};
use crate::store::keys;
use crate::users::User;

/// A way to prove the second factor (the form's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    Email,
    Sms,
    Voice,
    Backup,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "totp" => Some(Method::Totp),
            "email" => Some(Method::Email),
            "sms" => Some(Method::Sms),
            "voice" => Some(Method::Voice),
            "backup" => Some(Method::Backup),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::Email => "email",
            Method::Sms => "sms",
            Method::Voice => "voice",
            Method::Backup => "backup",
        }
    }

    /// Email, SMS and voice: a code is sent first.
    pub fn sends_code(self) -> bool {
        matches!(self, Method::Email | Method::Sms | Method::Voice)
    }

    /// The notify channel a code for this method goes out on.
    pub fn channel(self) -> Channel {
        match self {
            Method::Voice => Channel::Voice,
            Method::Sms => Channel::Sms,
            _ => Channel::Email,
        }
    }
}

/// The methods `user` can use, in the order they are offered; `offers` says
/// which channels the notifier can deliver on.
pub fn methods(user: &User, offers: impl Fn(Channel) -> bool) -> Vec<Method> {
    let mut m = Vec::new();
    if user.has_totp() {
        m.push(Method::Totp);
    }
    if !user.email.is_empty() && offers(Channel::Email) {
        m.push(Method::Email);
    }
    if !user.phone.is_empty() && offers(Channel::Sms) {
        m.push(Method::Sms);
    }
    if !user.phone.is_empty() && offers(Channel::Voice) {
        m.push(Method::Voice);
    }
    if !user.backup_codes.is_empty() {
        m.push(Method::Backup);
    }
    m
}

/// Could a session of `user` signed in with one factor be asked for a second step
/// later: is there a `two_factor` path, and has the account a way to a second step
/// (an app, backup codes, a phone, an email)? While it could, proving the password
/// alone (a sign-in, a password change) doesn't start the account's ladder over:
/// the failures may be guesses at its codes by someone who has the password. (Read
/// from the account alone, not from which channels the notifier carries: it may keep
/// a count where no code could be sent — the stricter side — never the other way.)
pub fn step_up_possible(cfg: &crate::config::Config, user: &User) -> bool {
    use crate::policy::Policy;
    let two = cfg.default_policy == Policy::TwoFactor
        || cfg.rules.iter().any(|r| r.policy == Policy::TwoFactor);
    two && (user.has_totp()
        || !user.backup_codes.is_empty()
        || !user.phone.is_empty()
        || !user.email.is_empty())
}

/// The session a second step is made in.
#[derive(Debug, Clone)]
pub struct Signed {
    pub id: SessionId,
    pub record: SessionRecord,
    pub user: Arc<User>,
}

impl Signed {
    /// Both steps are done.
    pub fn is_done(&self) -> bool {
        self.record.factors >= 2 && self.record.pending == Pending::Done
    }
}

/// How a code at the challenge ended.
#[derive(Debug)]
pub enum VerifyOutcome {
    /// The code field is empty or longer than 64 characters (nothing counted).
    Missing,
    /// The ladder is locked (or this guess went over the threshold with others in
    /// flight): nothing was checked. `locked` when this refusal was counted and locked.
    Refused { locked: Option<Locked> },
    /// No sent code to check: never sent, expired, used, or voided. Not a guess.
    NoCode,
    /// Over `otp.max_attempts` on the sent code: it is void now (counted).
    CodeVoid { locked: Option<Locked> },
    /// Wrong code, a TOTP step already used, or a backup code already used.
    Wrong { locked: Option<Locked> },
    /// Right: the session was replaced by one proving two factors.
    Passed {
        session: SessionId,
        record: SessionRecord,
        /// A backup code was used: how many are left.
        backup_left: Option<usize>,
    },
}

/// A code sent for one pending sign-in (stored hashed under
/// [`keys::sign_in_code`]).
#[derive(Serialize, Deserialize)]
struct SentCode {
    method: String,
    hash: String,
}

/// The sealed authenticator enrolment of `user`, when it opens.
pub fn open_enrolment(deps: &Deps<'_>, user: &User) -> Option<Enrolment> {
    let plain = deps.sealer.open(&user.totp, &user.name)?;
    serde_json::from_slice(&plain).ok()
}

/// Reserves a second-step attempt on the account's ladder (or this browser's, when
/// it is a known device of the account), before the code is checked: concurrent
/// guesses can't race past the lock. See [`crate::defense::Defense::begin_attempt`].
async fn reserve(
    deps: &Deps<'_>,
    browser: &Browser<'_>,
    user: &User,
) -> Result<Attempt, AuthError> {
    let account = deps.ladder_key(&user.name, browser.client);
    let device = browser.known_device(&user.name);
    Ok(deps
        .defense
        .begin_attempt(
            &deps.config.defense,
            &account,
            device.as_deref(),
            browser.client,
        )
        .await?)
}

/// Counts a failed second step (reserved as `attempt`) on the account's ladder
/// (and the known device's). When it locked the account, someone has the
/// password: the owner is to be told ([`Locked::notify`]).
pub async fn count_failure(
    deps: &Deps<'_>,
    browser: &Browser<'_>,
    user: &Arc<User>,
    attempt: &Attempt,
    step: &str,
) -> Result<Option<Locked>, AuthError> {
    let locked = deps
        .defense
        .second_step_failed(&deps.config.defense, attempt, browser.client)
        .await?;
    Ok(locked.map(|dur| {
        deps.metrics.locks.inc();
        deps.audit(
            "account_locked",
            json!({ "user": user.name, "client": browser.client.to_string(), "seconds": dur.as_secs(), "step": step }),
        );
        Locked {
            duration: dur,
            notify: Some(user.clone()),
        }
    }))
}

/// Checks `code` by `method` for the pending sign-in `s` (the method is one of
/// [`methods`] of the account). `remember`: the person asked to skip the second
/// step in this browser from now on (only audited here; the cookie is the
/// portal's). See the module doc for the states.
pub async fn verify(
    deps: &Deps<'_>,
    browser: &Browser<'_>,
    s: &Signed,
    method: Method,
    code: &str,
    remember: bool,
) -> Result<VerifyOutcome, AuthError> {
    let code = code.trim();
    if code.is_empty() || code.len() > 64 {
        return Ok(VerifyOutcome::Missing);
    }
    let attempt = reserve(deps, browser, &s.user).await?;
    if attempt.standing.locked_for.is_some() {
        deps.audit(
            "2fa_refused_locked",
            json!({ "user": s.user.name, "method": method.as_str(), "client": browser.client.to_string() }),
        );
        let locked = if attempt.reserved() {
            count_failure(deps, browser, &s.user, &attempt, "2fa").await?
        } else {
            None
        };
        return Ok(VerifyOutcome::Refused { locked });
    }
    let handle = s.id.handle();
    let mut backup_left = None;
    let right = match method {
        Method::Totp => check_totp(deps, &s.user, code).await?,
        Method::Backup => {
            backup_left = check_backup(deps, &s.user, code).await?;
            if let Some(left) = backup_left {
                deps.audit(
                    "backup_code_used",
                    json!({ "user": s.user.name, "left": left, "client": browser.client.to_string() }),
                );
            }
            backup_left.is_some()
        }
        _ => match check_sent(deps, &handle, method, code).await? {
            Sent::Right => true,
            Sent::Wrong => false,
            Sent::Nothing => {
                // Not a guess: the reservation is given back.
                let _ = deps.defense.attempt_passed(&attempt, false).await;
                return Ok(VerifyOutcome::NoCode);
            }
            Sent::TooMany => {
                // Counted like any wrong code, so the ladder sees it too.
                let locked = count_failure(deps, browser, &s.user, &attempt, "2fa").await?;
                return Ok(VerifyOutcome::CodeVoid { locked });
            }
        },
    };
    if !right {
        let client = browser.client.to_string();
        deps.metrics
            .second_factor
            .with_label_values(&[method.as_str(), "failed"])
            .inc();
        deps.audit(
            "2fa_failed",
            json!({ "user": s.user.name, "method": method.as_str(), "client": client }),
        );
        deps.accounts
            .record_later(&s.user.name, "2fa_failed", &client, method.as_str());
        let locked = count_failure(deps, browser, &s.user, &attempt, "2fa").await?;
        return Ok(VerifyOutcome::Wrong { locked });
    }
    deps.metrics
        .second_factor
        .with_label_values(&[method.as_str(), "ok"])
        .inc();
    let (session, record) = passed(deps, browser, s, method, remember).await?;
    Ok(VerifyOutcome::Passed {
        session,
        record,
        backup_left,
    })
}

/// The challenge is passed: the account's counters start over, and a new session
/// id proves two factors.
async fn passed(
    deps: &Deps<'_>,
    browser: &Browser<'_>,
    s: &Signed,
    method: Method,
    remember: bool,
) -> Result<(SessionId, SessionRecord), AuthError> {
    let device = browser.known_device(&s.user.name);
    let account = deps.ladder_key(&s.user.name, browser.client);
    deps.defense
        .record_success(&account, device.as_deref())
        .await?;
    let record = SessionRecord {
        factors: 2,
        pending: Pending::Done,
        ..s.record.clone()
    };
    let (sid, record) = deps.sessions.rotate(&s.id, record).await?;
    let _ = deps.store.delete(&keys::sign_in_code(&s.id.handle())).await;
    let client = browser.client.to_string();
    deps.audit(
        "2fa_ok",
        json!({ "user": s.user.name, "method": method.as_str(), "client": client, "remember": remember && deps.config.otp.remember_days > 0 }),
    );
    // The sign-in is complete; the event also tells when this factor was last used.
    deps.accounts.record_later(
        &s.user.name,
        "signin_ok",
        &client,
        &format!("factors=2 method={}", method.as_str()),
    );
    Ok((sid, record))
}

/// A TOTP code: right for step now±1, and the step not used before by this account
/// (claimed atomically in the store, so two sessions or gateways can't both use it).
async fn check_totp(deps: &Deps<'_>, user: &User, code: &str) -> Result<bool, AuthError> {
    let Some(e) = open_enrolment(deps, user) else {
        tracing::error!(user = %user.name, "authenticator secret can't be opened (data.key changed?)");
        return Ok(false);
    };
    let Some(step) = e.matching_step(code, deps.clock.now()) else {
        return Ok(false);
    };
    claim_step(deps, &user.name, &e, step).await
}

/// Claims TOTP `step` of enrolment `e` for `user`: `false` when it was used
/// already (a replay), at the challenge or at enrolment.
pub async fn claim_step(
    deps: &Deps<'_>,
    user: &str,
    e: &Enrolment,
    step: u64,
) -> Result<bool, AuthError> {
    // Kept until the step can no longer match (±1 step), plus a margin. Keyed by the
    // account and a fingerprint of the secret: a step is used once per account and app,
    // so an app just replaced doesn't block the new one's first code.
    let ttl = Duration::from_secs(e.period.max(1) * 4);
    let fp = deps.sealer.code_hash("totp-secret", &e.secret);
    Ok(deps
        .store
        .set_nx(&keys::totp_step_used(user, &fp[..16], step), b"1", ttl)
        .await?)
}

/// A backup code: removed from the account by one atomic operation of the
/// account store, so of two concurrent uses (on any gateways) one wins.
/// `Some(codes left)` when it was right.
async fn check_backup(
    deps: &Deps<'_>,
    user: &User,
    code: &str,
) -> Result<Option<usize>, AuthError> {
    let given = codes::normalize_backup(code);
    if given.len() != 10 {
        return Ok(None);
    }
    let hash = deps.sealer.code_hash(&user.name, &given);
    Ok(deps.accounts.consume_backup_code(&user.name, &hash).await?)
}

enum Sent {
    Right,
    Wrong,
    /// No code (never sent, expired, used, or voided).
    Nothing,
    /// Over `otp.max_attempts`: the code is void.
    TooMany,
}

async fn check_sent(
    deps: &Deps<'_>,
    handle: &str,
    method: Method,
    code: &str,
) -> Result<Sent, AuthError> {
    let otp = &deps.config.otp;
    let key = keys::sign_in_code(handle);
    let Some(bytes) = deps.store.get(&key).await? else {
        return Ok(Sent::Nothing);
    };
    let Ok(sent) = serde_json::from_slice::<SentCode>(&bytes) else {
        // Written by another version, or damaged: no code to check (logged, not "store down").
        tracing::warn!("a stored sign-in code can't be decoded; asking for a new one");
        return Ok(Sent::Nothing);
    };
    if sent.method != method.as_str() {
        return Ok(Sent::Nothing);
    }
    // Tries are counted per pending sign-in and survive a resend.
    let tries = deps
        .store
        .incr(&keys::code_tries(&key), otp.code_ttl.max(otp.send_window))
        .await?;
    if tries > u64::from(otp.max_attempts) {
        deps.store.delete(&key).await?;
        return Ok(Sent::TooMany);
    }
    let given = codes::normalize_numeric(code);
    if !deps
        .sealer
        .code_matches(&format!("{handle}|{}", method.as_str()), &given, &sent.hash)
    {
        return Ok(Sent::Wrong);
    }
    // Consumed atomically: of two concurrent right answers, one wins.
    Ok(match deps.store.take(&key).await? {
        Some(b) if b == bytes => Sent::Right,
        _ => Sent::Nothing,
    })
}

/// Whether a code may be sent now, and the code when it may.
pub enum SendOutcome {
    /// One was sent within `otp.resend_after`: wait `secs`.
    Paced { secs: u64 },
    /// Over a send limit (account, destination or client) within `otp.send_window`.
    Limited { secs: u64 },
    /// Stored (hashed) for this pending sign-in, voiding any earlier one: deliver
    /// it, then call [`delivered`] or, when delivery failed, [`abandon`].
    Ready { code: String },
}

/// Without the code: a stray `{:?}` never prints it.
impl std::fmt::Debug for SendOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendOutcome::Paced { secs } => f.debug_struct("Paced").field("secs", secs).finish(),
            SendOutcome::Limited { secs } => f.debug_struct("Limited").field("secs", secs).finish(),
            SendOutcome::Ready { .. } => f.write_str("Ready { code: <hidden> }"),
        }
    }
}

/// Pacing (one code per `otp.resend_after` and method for a pending sign-in) and
/// the send limits per account, per destination and per client (no SMS pumping);
/// then a fresh code stored for the pending sign-in `s`. `dest` is where it goes.
pub async fn prepare_code(
    deps: &Deps<'_>,
    client: std::net::IpAddr,
    s: &Signed,
    method: Method,
    dest: &str,
) -> Result<SendOutcome, AuthError> {
    let otp = &deps.config.otp;
    let handle = s.id.handle();
    if !otp.resend_after.is_zero() {
        let cool = keys::send_cooldown(&handle, method.as_str());
        if !deps.store.set_nx(&cool, b"1", otp.resend_after).await? {
            let secs = seconds_left(deps, &cool, 1).await;
            return Ok(SendOutcome::Paced { secs });
        }
    }
    let dest_key = deps.sealer.code_hash("destination", dest);
    for (key, limit) in [
        (keys::sent_to_account(&s.user.name), otp.send_limit),
        (keys::sent_to_destination(&dest_key[..32]), otp.send_limit),
        (
            keys::sent_for_client(&crate::defense::client_key(client)),
            otp.send_limit_client,
        ),
    ] {
        if deps.store.incr(&key, otp.send_window).await? > u64::from(limit) {
            let secs = seconds_left(deps, &key, 60).await;
            deps.audit(
                "code_send_limited",
                json!({ "user": s.user.name, "method": method.as_str(), "client": client.to_string(), "limit": key.split(':').nth(1) }),
            );
            return Ok(SendOutcome::Limited { secs });
        }
    }
    let code = codes::numeric(otp.code_length);
    let sent = SentCode {
        method: method.as_str().into(),
        hash: deps
            .sealer
            .code_hash(&format!("{handle}|{}", method.as_str()), &code),
    };
    let bytes = serde_json::to_vec(&sent).map_err(|_| AuthError::Decode {
        what: "a sign-in code",
    })?;
    // Overwriting voids any earlier code; the try counter is kept.
    deps.store
        .set(&keys::sign_in_code(&handle), &bytes, otp.code_ttl)
        .await?;
    Ok(SendOutcome::Ready { code })
}

/// The code could not be delivered: it is void, and the person may ask again at once.
pub async fn abandon(deps: &Deps<'_>, s: &Signed, method: Method) {
    let handle = s.id.handle();
    let _ = deps.store.delete(&keys::sign_in_code(&handle)).await;
    let _ = deps
        .store
        .delete(&keys::send_cooldown(&handle, method.as_str()))
        .await;
}

/// The code went out (to `masked`, as shown to the person): measured and audited.
pub fn delivered(
    deps: &Deps<'_>,
    client: std::net::IpAddr,
    s: &Signed,
    method: Method,
    masked: &str,
) {
    deps.metrics
        .codes_sent
        .with_label_values(&[method.channel().as_str()])
        .inc();
    deps.audit(
        "code_sent",
        json!({ "user": s.user.name, "method": method.as_str(), "to": masked, "client": client.to_string() }),
    );
}

/// Seconds until `key` expires (at least 1; `default` when unknown).
async fn seconds_left(deps: &Deps<'_>, key: &str, default: u64) -> u64 {
    deps.store
        .ttl(key)
        .await
        .ok()
        .flatten()
        .map_or(default, |d| d.as_secs().max(1))
}

/// How asking for the password again ended.
#[derive(Debug)]
pub enum Reauth {
    /// Right: the session's password time is now (saved).
    Right,
    /// Wrong (or empty, or over 1 KiB): counted like a failed second step.
    Wrong { locked: Option<Locked> },
    /// The ladder is locked: nothing was checked.
    Refused { locked: Option<Locked> },
    /// The argon2 pool is full.
    Busy,
}

/// The password asked again before a change (account page, second-factor
/// settings): a guess like any other — reserved on the ladder, refused while
/// locked, counted when wrong. Right: the session `s` records the time.
pub async fn reauthenticate(
    deps: &Deps<'_>,
    browser: &Browser<'_>,
    s: &mut Signed,
    password: &str,
) -> Result<Reauth, AuthError> {
    let attempt = reserve(deps, browser, &s.user).await?;
    if attempt.standing.locked_for.is_some() {
        let locked = if attempt.reserved() {
            count_failure(deps, browser, &s.user, &attempt, "reauth").await?
        } else {
            None
        };
        return Ok(Reauth::Refused { locked });
    }
    let right = !password.is_empty()
        && password.len() <= MAX_PASSWORD_BYTES
        && match deps.hasher.verify(password, Some(&s.user.password)).await {
            Ok(ok) => ok,
            Err(e) => {
                let _ = deps.defense.attempt_passed(&attempt, false).await;
                return match e {
                    PasswordError::Busy => Ok(Reauth::Busy),
                    PasswordError::Unreadable => Err(AuthError::HashUnreadable {
                        user: s.user.name.clone(),
                    }),
                    PasswordError::Hash(e) => Err(AuthError::Hash(e)),
                };
            }
        };
    if !right {
        let locked = count_failure(deps, browser, &s.user, &attempt, "reauth").await?;
        deps.audit(
            "reauth_failed",
            json!({ "user": s.user.name, "client": browser.client.to_string() }),
        );
        return Ok(Reauth::Wrong { locked });
    }
    // The right password: this attempt is forgiven (it proves nothing of a second factor).
    let _ = deps.defense.attempt_passed(&attempt, false).await;
    s.record.auth_at = deps.clock.now();
    deps.sessions.update(&s.id, &s.record).await?;
    Ok(Reauth::Right)
}

/// The password was entered longer ago than `otp.reauth_after`: a change needs it again.
pub fn needs_password(deps: &Deps<'_>, r: &SessionRecord) -> bool {
    deps.clock.now().saturating_sub(r.password_at()) > deps.config.otp.reauth_after.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::flow::testing::{World, PASSWORD};
    use crate::auth::totp::Enrolment;
    use crate::clock::Clock;

    const LADDER: &str = "[defense]\ncaptcha_after = 100\nlock_after = 3\nip_per_minute = 100000\nspray_per_minute = 0\n[otp]\nmax_attempts = 2\nresend_after = \"30s\"\n";

    /// An account with an authenticator app, two backup codes and an email;
    /// its enrolment and backup codes in clear.
    async fn tina(w: &World) -> (Arc<User>, Enrolment, Vec<String>) {
        let e = Enrolment::generate(&w.config.otp);
        let totp = w
            .sealer
            .seal(&serde_json::to_vec(&e).unwrap(), "tina")
            .unwrap();
        let plain = vec!["abcde-fghij".to_string(), "klmno-pqrst".to_string()];
        let backup_codes = plain
            .iter()
            .map(|c| w.sealer.code_hash("tina", &codes::normalize_backup(c)))
            .collect();
        let u = w
            .add(User {
                name: "tina".into(),
                email: "tina@example.com".into(),
                totp,
                backup_codes,
                ..User::default()
            })
            .await;
        (u, e, plain)
    }

    /// A sign-in of `user` waiting for its second step.
    async fn pending(w: &World, user: &Arc<User>) -> Signed {
        let now = w.clock.now();
        let record = SessionRecord {
            user: user.name.clone(),
            factors: 1,
            created: now,
            last_seen: now,
            client: "192.0.2.7".into(),
            cred_version: user.credentials_version,
            pending: Pending::SecondFactor,
            auth_at: now,
        };
        let (id, record) = w.sessions.create_from(record).await.unwrap();
        Signed {
            id,
            record,
            user: user.clone(),
        }
    }

    fn code_now(w: &World, e: &Enrolment) -> String {
        e.code_at_step(e.step_at(w.clock.now())).unwrap()
    }

    #[tokio::test]
    async fn wrong_codes_lock_the_account_and_then_even_the_right_one_is_refused() {
        let w = World::new(LADDER);
        let (u, e, _) = tina(&w).await;
        let (d, b) = (w.deps(), w.browser(""));
        let s = pending(&w, &u).await;
        for i in 1..=3 {
            match verify(&d, &b, &s, Method::Totp, "000000", false)
                .await
                .unwrap()
            {
                VerifyOutcome::Wrong { locked } => {
                    assert_eq!(locked.is_some(), i == 3, "guess {i}");
                    if let Some(l) = locked {
                        assert_eq!(l.notify.unwrap().name, "tina", "someone has the password");
                    }
                }
                o => panic!("{o:?}"),
            }
        }
        let right = code_now(&w, &e);
        let o = verify(&d, &b, &s, Method::Totp, &right, false)
            .await
            .unwrap();
        assert!(
            matches!(o, VerifyOutcome::Refused { locked: None }),
            "{o:?}"
        );
        // A new sign-in (or another browser) buys no fresh tries.
        let s2 = pending(&w, &u).await;
        let o = verify(&d, &b, &s2, Method::Totp, &right, false)
            .await
            .unwrap();
        assert!(matches!(o, VerifyOutcome::Refused { .. }), "{o:?}");
        let o = verify(&d, &b, &s2, Method::Totp, " ", false).await.unwrap();
        assert!(matches!(o, VerifyOutcome::Missing), "{o:?}");
    }

    #[tokio::test]
    async fn a_totp_code_passes_once_and_its_replay_is_refused() {
        let w = World::new(LADDER);
        let (u, e, _) = tina(&w).await;
        let (d, b) = (w.deps(), w.browser(""));
        let code = code_now(&w, &e);
        let s = pending(&w, &u).await;
        match verify(&d, &b, &s, Method::Totp, &code, true).await.unwrap() {
            VerifyOutcome::Passed {
                session,
                record,
                backup_left,
            } => {
                assert_ne!(session.as_str(), s.id.as_str(), "a new session id");
                assert_eq!((record.factors, record.pending), (2, Pending::Done));
                assert_eq!(backup_left, None);
                assert!(matches!(
                    w.sessions.load(&s.id).await.unwrap(),
                    crate::session::Lookup::Ended
                ));
            }
            o => panic!("{o:?}"),
        }
        // The same code in another pending sign-in (a thief who watched it typed).
        let s2 = pending(&w, &u).await;
        let o = verify(&d, &b, &s2, Method::Totp, &code, false)
            .await
            .unwrap();
        assert!(matches!(o, VerifyOutcome::Wrong { .. }), "{o:?}");
        // The next step's code works.
        w.clock.advance(e.period);
        let next = code_now(&w, &e);
        let o = verify(&d, &b, &s2, Method::Totp, &next, false)
            .await
            .unwrap();
        assert!(matches!(o, VerifyOutcome::Passed { .. }), "{o:?}");
    }

    #[tokio::test]
    async fn a_backup_code_works_once() {
        let w = World::new(LADDER);
        let (u, _, plain) = tina(&w).await;
        let (d, b) = (w.deps(), w.browser(""));
        let s = pending(&w, &u).await;
        // Typed loosely: case and separators don't matter.
        let typed = plain[0].to_uppercase().replace('-', " ");
        match verify(&d, &b, &s, Method::Backup, &typed, false)
            .await
            .unwrap()
        {
            VerifyOutcome::Passed { backup_left, .. } => assert_eq!(backup_left, Some(1)),
            o => panic!("{o:?}"),
        }
        let s2 = pending(&w, &u).await;
        let o = verify(&d, &b, &s2, Method::Backup, &plain[0], false)
            .await
            .unwrap();
        assert!(matches!(o, VerifyOutcome::Wrong { .. }), "{o:?}");
        let left = w.accounts.get("tina").await.unwrap().unwrap();
        assert_eq!(left.backup_codes.len(), 1);
    }

    #[tokio::test]
    async fn a_sent_code_is_paced_bounded_and_single_use() {
        let w = World::new(&LADDER.replace("lock_after = 3", "lock_after = 10"));
        let (u, _, _) = tina(&w).await;
        let (d, b) = (w.deps(), w.browser(""));
        let s = pending(&w, &u).await;
        // Nothing sent yet: not a guess.
        let o = verify(&d, &b, &s, Method::Email, "123456", false)
            .await
            .unwrap();
        assert!(matches!(o, VerifyOutcome::NoCode), "{o:?}");
        let SendOutcome::Ready { code } = prepare_code(&d, b.client, &s, Method::Email, &u.email)
            .await
            .unwrap()
        else {
            panic!("first code")
        };
        let again = prepare_code(&d, b.client, &s, Method::Email, &u.email)
            .await
            .unwrap();
        assert!(matches!(again, SendOutcome::Paced { secs } if (1..=30).contains(&secs)));
        // otp.max_attempts = 2 tries, then the code is void even when right.
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..2 {
            let o = verify(&d, &b, &s, Method::Email, wrong, false)
                .await
                .unwrap();
            assert!(matches!(o, VerifyOutcome::Wrong { .. }), "{o:?}");
        }
        let o = verify(&d, &b, &s, Method::Email, &code, false)
            .await
            .unwrap();
        assert!(matches!(o, VerifyOutcome::CodeVoid { .. }), "{o:?}");
        let o = verify(&d, &b, &s, Method::Email, &code, false)
            .await
            .unwrap();
        assert!(matches!(o, VerifyOutcome::NoCode), "{o:?}");
        // A code that couldn't be delivered is void, and asking again is allowed at once.
        abandon(&d, &s, Method::Email).await;
        assert!(matches!(
            prepare_code(&d, b.client, &s, Method::Email, &u.email)
                .await
                .unwrap(),
            SendOutcome::Ready { .. }
        ));
    }

    #[tokio::test]
    async fn the_password_again_is_a_counted_guess() {
        let w = World::new(LADDER);
        let (u, _, _) = tina(&w).await;
        let (d, b) = (w.deps(), w.browser(""));
        let mut s = pending(&w, &u).await;
        w.clock.advance(w.config.otp.reauth_after.as_secs() + 1);
        assert!(needs_password(&d, &s.record));
        let o = reauthenticate(&d, &b, &mut s, "wrong").await.unwrap();
        assert!(matches!(o, Reauth::Wrong { locked: None }), "{o:?}");
        let o = reauthenticate(&d, &b, &mut s, PASSWORD).await.unwrap();
        assert!(matches!(o, Reauth::Right), "{o:?}");
        assert!(!needs_password(&d, &s.record));
        let saved = w.sessions.load(&s.id).await.unwrap();
        assert!(
            matches!(saved, crate::session::Lookup::Valid(r) if r.auth_at == w.clock.now()),
            "the time is saved with the session"
        );
    }

    #[test]
    fn methods_follow_what_the_account_has_and_the_notifier_offers() {
        let u = User {
            totp: "sealed".into(),
            email: "a@example.com".into(),
            phone: "+14155550100".into(),
            backup_codes: vec!["h".into()],
            ..User::default()
        };
        assert_eq!(
            methods(&u, |_| true),
            [
                Method::Totp,
                Method::Email,
                Method::Sms,
                Method::Voice,
                Method::Backup
            ]
        );
        assert_eq!(
            methods(&u, |c| c == Channel::Email),
            [Method::Totp, Method::Email, Method::Backup]
        );
        for m in ["totp", "email", "sms", "voice", "backup"] {
            assert_eq!(Method::parse(m).map(Method::as_str), Some(m));
        }
        assert_eq!(Method::parse("TOTP"), None);
    }
}
