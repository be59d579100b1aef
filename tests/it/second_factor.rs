//! Two-step verification, driven through the real portal handlers in-process
//! (memory store and a real redis-server), and over HTTP with real gateways, a
//! real SMTP server (aiosmtpd) and a real HTTP receiver for the webhook.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis::session::Pending;

use crate::harness::*;

/// Relaxed ladder: these tests are about codes, not lockout (except where they set their own).
const CALM: &str = "[defense]\ncaptcha_after = 100\nlock_after = 100\nip_per_minute = 10000\nspray_per_minute = 0\n";

fn totp_at(secret: &str, step: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    )
    .generate(step * 30)
}

/// The first run of `len` digits in a text.
fn digits_in(text: &str, len: usize) -> String {
    let only: Vec<char> = text.chars().collect();
    for i in 0..only.len() {
        let run: String = only[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if run.len() == len && (i == 0 || !only[i - 1].is_ascii_digit()) {
            return run;
        }
    }
    panic!("no {len}-digit code in {text:?}")
}

/// Undoes minijinja's HTML escaping (it escapes `/` too).
fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
}

fn location(p: &Page) -> String {
    p.header("location").unwrap_or("").to_string()
}

async fn pending(b: &Browser) -> (Pending, u8) {
    match b.session().await {
        portcullis::app::SessionState::Valid { record, .. } => (record.pending, record.factors),
        _ => panic!("no session"),
    }
}

fn backup_codes(p: &Page) -> Vec<String> {
    let list = between(&p.body, "id=\"backup-codes\"", "</ul>");
    list.split("<li>")
        .skip(1)
        .map(|li| between(li, "<code>", "</code>").to_string())
        .collect()
}

/// Signs in with the password only; the browser then holds a (maybe pending) session.
async fn password_step(e: &Env, ip: &str, rd: &str) -> (Browser, Page) {
    let mut b = Browser::new(e, ip);
    let page = b
        .send("GET", &format!("/login?rd={}", urlenc(rd)), "")
        .await;
    let csrf = page.field("csrf").unwrap();
    let p = b
        .send(
            "POST",
            "/login",
            &form(&[
                ("csrf", &csrf),
                ("identifier", "alice"),
                ("password", PASSWORD),
                ("rd", rd),
            ]),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    (b, p)
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Passes the second step with a code by email (alice's address).
async fn pass_by_email(b: &mut Browser) {
    let sent = send_code(b, "email").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let msg = b.outbox().await.into_iter().last().unwrap();
    let code = digits_in(msg["text"].as_str().unwrap(), 6);
    let ok = answer(b, "email", &code, &[]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
}

/// Enrols an authenticator app for the signed-in browser; returns (secret, backup codes).
async fn enrol(b: &mut Browser) -> (String, Vec<String>) {
    let mut p = b.send("GET", "/2fa/setup", "").await;
    if p.status == 303 {
        // The account already has a second step (codes by email): adding an app
        // asks for it first, so a password alone can't add one.
        let to = p.header("location").unwrap_or_default().to_string();
        assert!(to.contains("/2fa?"), "{to}");
        pass_by_email(b).await;
        p = b.send("GET", "/2fa/setup", "").await;
    }
    assert_eq!(p.status, 200, "{}", p.body);
    let uri = between(&p.body, "id=\"otpauth\" href=\"", "\"").replace("&amp;", "&");
    let secret = between(&uri, "secret=", "&").to_string();
    let code = totp_at(&secret, b.now() / 30);
    let csrf = p.field("csrf").unwrap();
    let codes = confirm_enrolment(b, &csrf, &code).await;
    (secret, codes)
}

/// Confirms an enrolment with `code`; returns the backup codes shown.
async fn confirm_enrolment(b: &mut Browser, csrf: &str, code: &str) -> Vec<String> {
    let done = b
        .send(
            "POST",
            "/2fa/setup",
            // The password is ignored unless the last entry is older than otp.reauth_after.
            &form(&[
                ("csrf", csrf),
                ("action", "confirm"),
                ("code", code),
                ("password", PASSWORD),
            ]),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let codes = backup_codes(&done);
    assert_eq!(codes.len(), 10);
    codes
}

/// Posts a code on the challenge page.
async fn answer(b: &mut Browser, method: &str, code: &str, extra: &[(&str, &str)]) -> Page {
    let page = b.send("GET", &format!("/2fa?method={method}"), "").await;
    let csrf = page
        .field("csrf")
        .unwrap_or_else(|| panic!("no challenge form: {} {}", page.status, page.body));
    let mut fields = vec![("csrf", csrf.as_str()), ("method", method), ("code", code)];
    fields.extend_from_slice(extra);
    b.send("POST", "/2fa", &form(&fields)).await
}

async fn send_code(b: &mut Browser, method: &str) -> Page {
    let page = b.send("GET", &format!("/2fa?method={method}"), "").await;
    let csrf = page.field("csrf").unwrap();
    b.send(
        "POST",
        "/2fa/send",
        &form(&[("csrf", &csrf), ("method", method)]),
    )
    .await
}

async fn enrolment_and_challenge(be: Backend) {
    let e = env(be, CALM);
    let (mut b, p) = password_step(&e, "192.0.2.10", "/app").await;
    assert_eq!(
        location(&p),
        "/app",
        "no second factor yet: straight through"
    );
    assert_eq!(pending(&b).await, (Pending::Done, 1));
    // The password alone can't add an app: alice has codes by email, which come first.
    let page = b.send("GET", "/2fa/setup", "").await;
    assert_eq!(page.status, 303, "{}", page.body);
    pass_by_email(&mut b).await;
    assert_eq!(pending(&b).await, (Pending::Done, 2));
    // The setup page: QR code, key as text, otpauth URI with the issuer.
    let page = b.send("GET", "/2fa/setup", "").await;
    assert!(page.body.contains("data:image/svg+xml;base64,"), "QR code");
    let uri = between(&page.body, "id=\"otpauth\" href=\"", "\"").replace("&amp;", "&");
    assert!(
        uri.starts_with("otpauth://totp/Portcullis:alice?secret="),
        "{uri}"
    );
    let secret = between(&uri, "secret=", "&").to_string();
    let shown = between(&page.body, "id=\"secret\">", "<").replace(' ', "");
    assert_eq!(shown, secret);
    // The same secret across reloads until confirmed.
    assert!(b.send("GET", "/2fa/setup", "").await.body.contains(&secret));
    // A wrong code saves nothing.
    let csrf = page.field("csrf").unwrap();
    let bad = b
        .send(
            "POST",
            "/2fa/setup",
            &form(&[("csrf", &csrf), ("action", "confirm"), ("code", "000000")]),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(!e
        .app
        .accounts
        .get("alice")
        .await
        .unwrap()
        .unwrap()
        .has_totp());
    // A CSRF-less post is refused.
    let forged = b
        .send(
            "POST",
            "/2fa/setup",
            &form(&[("action", "confirm"), ("code", "1")]),
        )
        .await;
    assert_eq!(forged.status, 403);
    let code = totp_at(&secret, e.now() / 30);
    let codes = confirm_enrolment(&mut b, &csrf, &code).await;
    // Saved sealed; backup codes only as hashes.
    let file = std::fs::read_to_string(e.dir.path().join("users.toml")).unwrap();
    assert!(
        file.contains("totp = \"v1:") && !file.contains(&secret),
        "{file}"
    );
    for c in &codes {
        assert!(!file.contains(c.as_str()) && !file.contains(&c.replace('-', "")));
    }
    assert_eq!(
        e.app
            .accounts
            .get("alice")
            .await
            .unwrap()
            .unwrap()
            .backup_codes
            .len(),
        10
    );
    // The setup page now manages the enrolment instead of showing the secret again.
    let manage = b.send("GET", "/2fa/setup", "").await;
    assert!(manage.body.contains("10 unused backup codes") && !manage.body.contains(&secret));

    // From now on every sign-in asks for the second factor.
    let (mut b2, p) = password_step(&e, "192.0.2.11", "/app/x?y=1").await;
    assert_eq!(location(&p), "/_auth/2fa?rd=%2Fapp%2Fx%3Fy%3D1");
    assert_eq!(pending(&b2).await, (Pending::SecondFactor, 1));
    let first_cookie = b2.jar.get("portcullis").cloned().unwrap();
    // A password alone can't change the password (or anything else) before the challenge.
    let pw = b2.send("GET", "/password", "").await;
    assert_eq!(
        (pw.status, location(&pw).starts_with("/_auth/2fa?")),
        (303, true)
    );
    let challenge = b2.send("GET", "/2fa?rd=/app/x", "").await;
    assert!(
        challenge.body.contains("authenticator app")
            && challenge.body.contains("Use a backup method")
    );
    for m in ["email", "sms", "voice", "backup"] {
        assert!(
            challenge.body.contains(&format!("method={m}")),
            "offers {m}"
        );
    }
    // The enrolment code itself can't be replayed.
    assert_eq!(answer(&mut b2, "totp", &code, &[]).await.status, 401);
    let wrong = answer(&mut b2, "totp", "123456", &[]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.error().contains("not right"));
    // ±1 step: the previous step's code works (once)...
    let step = e.now() / 30;
    let prev = totp_at(&secret, step - 1);
    let ok = answer(&mut b2, "totp", &prev, &[("rd", "/app/x?y=1")]).await;
    assert_eq!(ok.status, 303, "{}", ok.error());
    assert_eq!(location(&ok), "/app/x?y=1");
    assert_eq!(pending(&b2).await, (Pending::Done, 2));
    assert_ne!(
        b2.jar.get("portcullis").unwrap(),
        &first_cookie,
        "new session id after the step up"
    );
    // ...and not again in another session, even on the same gateway a moment later.
    let (mut b3, _) = password_step(&e, "192.0.2.12", "/").await;
    assert_eq!(
        answer(&mut b3, "totp", &prev, &[]).await.status,
        401,
        "replayed step"
    );
    // Two steps back is too old; the next step is fine.
    assert_eq!(
        answer(&mut b3, "totp", &totp_at(&secret, step - 2), &[])
            .await
            .status,
        401
    );
    assert_eq!(
        answer(&mut b3, "totp", &totp_at(&secret, step + 1), &[])
            .await
            .status,
        303
    );
    let _ = codes;
}
both_async!(enrolment_and_challenge_flow, enrolment_and_challenge);

async fn backup_codes_once(be: Backend) {
    let e = env(be, CALM);
    let (mut b, _) = password_step(&e, "192.0.2.20", "/").await;
    let (_, codes) = enrol(&mut b).await;
    let (mut x, _) = password_step(&e, "192.0.2.21", "/").await;
    let (mut y, _) = password_step(&e, "192.0.2.22", "/").await;
    let code = codes[0].to_uppercase(); // case and dashes don't matter
    let (px, py) = (
        x.send("GET", "/2fa?method=backup", "").await,
        y.send("GET", "/2fa?method=backup", "").await,
    );
    let bx = form(&[
        ("csrf", &px.field("csrf").unwrap()),
        ("method", "backup"),
        ("code", &code),
    ]);
    let by = form(&[
        ("csrf", &py.field("csrf").unwrap()),
        ("method", "backup"),
        ("code", &code),
    ]);
    let (rx, ry) = tokio::join!(x.send("POST", "/2fa", &bx), y.send("POST", "/2fa", &by));
    let mut statuses = [rx.status, ry.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [303, 401],
        "exactly one of two concurrent uses wins"
    );
    assert_eq!(
        e.app
            .accounts
            .get("alice")
            .await
            .unwrap()
            .unwrap()
            .backup_codes
            .len(),
        9
    );
    // Used once means used: not in a fresh session either. Another code works.
    let (mut z, _) = password_step(&e, "192.0.2.23", "/").await;
    assert_eq!(answer(&mut z, "backup", &codes[0], &[]).await.status, 401);
    assert_eq!(answer(&mut z, "backup", &codes[1], &[]).await.status, 303);
    // The owner hears about it, with the count left.
    let mut notice = None;
    for _ in 0..50 {
        // One read per look: the second notice may land between two reads.
        let sent: Vec<_> = e
            .outbox_now()
            .into_iter()
            .filter(|m| m["kind"] == "backup_code_used")
            .collect();
        notice = sent.last().cloned();
        if sent.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notice = notice.expect("backup-code notice");
    assert_eq!(notice["to"], "alice@example.com");
    assert!(
        notice["text"]
            .as_str()
            .unwrap()
            .contains("8 unused backup codes"),
        "{notice}"
    );
    // Regenerating (needs the two-factor session) voids the old set.
    let page = z.send("GET", "/2fa/setup", "").await;
    let csrf = page.field("csrf").unwrap();
    let fresh = z
        .send(
            "POST",
            "/2fa/setup",
            &form(&[("csrf", &csrf), ("action", "regenerate")]),
        )
        .await;
    let new_codes = backup_codes(&fresh);
    assert_eq!(new_codes.len(), 10);
    let (mut w, _) = password_step(&e, "192.0.2.24", "/").await;
    assert_eq!(
        answer(&mut w, "backup", &codes[2], &[]).await.status,
        401,
        "old set void"
    );
    assert_eq!(
        answer(&mut w, "backup", &new_codes[0], &[]).await.status,
        303
    );
}
both_async!(backup_codes_work_once, backup_codes_once);

async fn sent_codes(be: Backend) {
    let e = env(
        be,
        &format!("{CALM}[otp]\nmax_attempts = 3\nresend_after = \"0s\"\nsend_limit = 50\n"),
    );
    // No enrolment: sign-in completes with one factor; the challenge offers the
    // account's own addresses (what a two_factor rule asks for).
    let (mut b, _) = password_step(&e, "192.0.2.30", "/").await;
    let page = b.send("GET", "/2fa?rd=/secure/", "").await;
    assert_eq!(page.status, 200);
    for (method, channel, to) in [
        ("sms", "sms", "+14155552671"),
        ("voice", "voice", "+14155552671"),
        ("email", "email", "alice@example.com"),
    ] {
        let (mut b, _) = password_step(&e, "192.0.2.31", "/").await;
        let sent = send_code(&mut b, method).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        assert!(sent.body.contains("We sent a code"), "{}", sent.body);
        let msg = e.outbox_now().into_iter().last().unwrap();
        assert_eq!(
            (msg["channel"].as_str(), msg["to"].as_str()),
            (Some(channel), Some(to))
        );
        assert_eq!(msg["kind"], "sign_in_code");
        let text = msg["text"].as_str().unwrap();
        assert!(text.contains("10 min"), "says when it expires: {text}");
        assert!(text.contains("sign-in code"), "says what it is for: {text}");
        let code = if method == "voice" {
            let spoken = between(text, "code is: ", ".");
            assert!(spoken.contains(", "), "digits read one by one: {spoken}");
            spoken.replace(", ", "")
        } else {
            digits_in(text, 6)
        };
        assert_eq!(answer(&mut b, method, "000000", &[]).await.status, 401);
        let ok = answer(&mut b, method, &code, &[]).await;
        assert_eq!(ok.status, 303, "{method}: {}", ok.error());
        assert_eq!(pending(&b).await, (Pending::Done, 2));
    }
    // A resend voids the previous code and keeps the try count.
    let (mut b, _) = password_step(&e, "192.0.2.32", "/").await;
    send_code(&mut b, "email").await;
    let first = digits_in(e.outbox_now().last().unwrap()["text"].as_str().unwrap(), 6);
    send_code(&mut b, "email").await;
    let second = digits_in(e.outbox_now().last().unwrap()["text"].as_str().unwrap(), 6);
    if first != second {
        assert_eq!(
            answer(&mut b, "email", &first, &[]).await.status,
            401,
            "voided by the resend"
        );
    } else {
        assert_eq!(answer(&mut b, "email", "999999", &[]).await.status, 401);
    }
    assert_eq!(answer(&mut b, "email", "000001", &[]).await.status, 401);
    send_code(&mut b, "email").await;
    let third = digits_in(e.outbox_now().last().unwrap()["text"].as_str().unwrap(), 6);
    assert_eq!(answer(&mut b, "email", "000002", &[]).await.status, 401); // third try
    let over = answer(&mut b, "email", &third, &[]).await;
    assert_eq!(
        over.status, 401,
        "fourth try: over max_attempts even with the right code"
    );
    assert!(
        over.error().contains("Too many wrong codes"),
        "{}",
        over.error()
    );
    // A code for one pending sign-in doesn't work for another.
    let (mut c, _) = password_step(&e, "192.0.2.33", "/").await;
    let (mut d, _) = password_step(&e, "192.0.2.34", "/").await;
    send_code(&mut c, "sms").await;
    let code = digits_in(e.outbox_now().last().unwrap()["text"].as_str().unwrap(), 6);
    assert_eq!(
        answer(&mut d, "sms", &code, &[]).await.status,
        400,
        "d has no code to check"
    );
    assert_eq!(answer(&mut c, "sms", &code, &[]).await.status, 303);
}
both_async!(email_sms_voice_codes, sent_codes);

async fn code_expiry_and_send_limits(be: Backend) {
    let e = env(
        be,
        &format!("{CALM}[otp]\ncode_ttl = \"1s\"\nsend_limit = 2\nresend_after = \"0s\"\n"),
    );
    let (mut b, _) = password_step(&e, "192.0.2.40", "/").await;
    send_code(&mut b, "sms").await;
    let code = digits_in(e.outbox_now().last().unwrap()["text"].as_str().unwrap(), 6);
    e.pass(Duration::from_millis(1600)).await;
    let late = answer(&mut b, "sms", &code, &[]).await;
    assert_eq!(late.status, 400, "expired");
    assert!(late.error().contains("expired"), "{}", late.error());
    send_code(&mut b, "sms").await;
    let limited = send_code(&mut b, "sms").await;
    assert_eq!(limited.status, 429, "third code within the window");
    assert!(limited.header("retry-after").is_some());
    assert_eq!(e.outbox_now().len(), 2, "nothing sent over the limit");
    // The limit is per account: a new sign-in doesn't reset it.
    let (mut c, _) = password_step(&e, "192.0.2.41", "/").await;
    assert_eq!(send_code(&mut c, "email").await.status, 429);
    // Pacing: one code per resend_after for a pending sign-in.
    let e = env(be, &format!("{CALM}[otp]\nresend_after = \"1m\"\n"));
    let (mut b, _) = password_step(&e, "192.0.2.42", "/").await;
    assert_eq!(send_code(&mut b, "email").await.status, 200);
    assert_eq!(send_code(&mut b, "email").await.status, 429);
}
both_async!(
    codes_expire_and_sending_is_limited,
    code_expiry_and_send_limits
);

async fn required_enrolment(be: Backend) {
    let e = env(be, &format!("{CALM}[otp]\nrequire = \"required\"\n"));
    let (mut b, p) = password_step(&e, "192.0.2.50", "/app/1").await;
    assert_eq!(location(&p), "/_auth/2fa/setup?rd=%2Fapp%2F1");
    assert_eq!(pending(&b).await, (Pending::Enrol, 1));
    // Nothing else until enrolled: the challenge sends to setup; the policy says Enrol.
    let c = b.send("GET", "/2fa", "").await;
    assert_eq!(c.status, 303);
    assert!(location(&c).starts_with("/_auth/2fa/setup"));
    let page = b.send("GET", "/2fa/setup?rd=/app/1", "").await;
    assert!(page.body.contains("requires two-step verification"));
    let uri = between(&page.body, "id=\"otpauth\" href=\"", "\"").replace("&amp;", "&");
    let secret = between(&uri, "secret=", "&").to_string();
    let csrf = page.field("csrf").unwrap();
    let done = b
        .send(
            "POST",
            "/2fa/setup",
            &form(&[
                ("csrf", &csrf),
                ("action", "confirm"),
                ("code", &totp_at(&secret, e.now() / 30)),
                ("rd", "/app/1"),
            ]),
        )
        .await;
    assert_eq!(backup_codes(&done).len(), 10);
    assert!(
        unescape(&done.body).contains("href=\"/app/1\""),
        "continue to where they were going"
    );
    assert_eq!(pending(&b).await, (Pending::Done, 2));
    // The last factor can't be removed while required.
    let page = b.send("GET", "/2fa/setup", "").await;
    assert!(!page.body.contains("value=\"remove\""));
    let csrf = page.field("csrf").unwrap();
    let refused = b
        .send(
            "POST",
            "/2fa/setup",
            &form(&[("csrf", &csrf), ("action", "remove")]),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(e
        .app
        .accounts
        .get("alice")
        .await
        .unwrap()
        .unwrap()
        .has_totp());

    // Per group: alice (admins) must enrol, bob needn't.
    let e = env(be, &format!("{CALM}[otp]\nrequire_groups = [\"admins\"]\n"));
    let (_, p) = password_step(&e, "192.0.2.51", "/").await;
    assert!(location(&p).starts_with("/_auth/2fa/setup"));
    let mut bob = Browser::new(&e, "192.0.2.52");
    let p = bob.sign_in("bob", PASSWORD, None).await;
    assert_eq!(location(&p), "/");
    // Optional: enrolled people may turn it off (with the second factor passed).
    let (mut a, _) = password_step(&e, "192.0.2.53", "/").await;
    let _ = a.send("GET", "/2fa/setup", "").await;
    let e2 = env(be, CALM);
    let (mut a, _) = password_step(&e2, "192.0.2.54", "/").await;
    enrol(&mut a).await;
    let page = a.send("GET", "/2fa/setup", "").await;
    let csrf = page.field("csrf").unwrap();
    let off = a
        .send(
            "POST",
            "/2fa/setup",
            &form(&[("csrf", &csrf), ("action", "remove")]),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert!(!e2
        .app
        .accounts
        .get("alice")
        .await
        .unwrap()
        .unwrap()
        .has_totp());
}
both_async!(required_enrolment_flow, required_enrolment);

async fn reauth_and_replace(be: Backend) {
    let e = env(be, &format!("{CALM}[otp]\nreauth_after = \"1s\"\n"));
    let (mut b, _) = password_step(&e, "192.0.2.70", "/").await;
    let (old_secret, _) = enrol(&mut b).await;
    // Only the gateway's clock matters here (no store TTL): no real wait with Redis either.
    e.clock.advance_by(Duration::from_millis(2100));
    // The password was entered too long ago: changes ask for it again.
    let page = b.send("GET", "/2fa/setup?replace=1", "").await;
    assert!(
        page.body.contains("name=\"password\""),
        "password asked again"
    );
    let uri = between(&page.body, "id=\"otpauth\" href=\"", "\"").replace("&amp;", "&");
    let secret = between(&uri, "secret=", "&").to_string();
    assert_ne!(secret, old_secret);
    let csrf = page.field("csrf").unwrap();
    let code = totp_at(&secret, e.now() / 30);
    let confirm = |pw: &str| {
        form(&[
            ("csrf", &csrf),
            ("action", "confirm"),
            ("code", &code),
            ("password", pw),
        ])
    };
    let no = b.send("POST", "/2fa/setup", &confirm("")).await;
    assert_eq!(no.status, 401);
    let wrong = b
        .send("POST", "/2fa/setup", &confirm("not my password"))
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.error().contains("current password"));
    let st = standing(&e, "alice").await;
    assert!(st.locked_for.is_none());
    let ok = b.send("POST", "/2fa/setup", &confirm(PASSWORD)).await;
    assert_eq!(backup_codes(&ok).len(), 10, "{}", ok.body);
    // The replaced app's codes no longer work; the new one's do.
    let (mut c, _) = password_step(&e, "192.0.2.71", "/").await;
    assert_eq!(
        answer(&mut c, "totp", &totp_at(&old_secret, e.now() / 30 + 1), &[])
            .await
            .status,
        401
    );
    assert_eq!(
        answer(&mut c, "totp", &totp_at(&secret, e.now() / 30 + 1), &[])
            .await
            .status,
        303
    );
    // A one-factor session of an enrolled account can't replace the app: challenge first.
    let (mut d, _) = password_step(&e, "192.0.2.72", "/").await;
    let r = d.send("GET", "/2fa/setup?replace=1", "").await;
    assert_eq!(r.status, 303);
    assert!(location(&r).starts_with("/_auth/2fa?rd="));
}
both_async!(reauth_and_replacing_the_app, reauth_and_replace);

async fn remember_and_ladder(be: Backend) {
    let e = env(
        be,
        "[defense]\ncaptcha_after = 100\nlock_after = 3\nwindow = \"1m\"\nlock_duration = \"1m\"\nip_per_minute = 10000\nspray_per_minute = 0\nknown_device_days = 0\n",
    );
    let (mut b, _) = password_step(&e, "192.0.2.60", "/").await;
    let (secret, _) = enrol(&mut b).await;
    // Remember this browser: the next sign-in from it skips the second factor.
    let (mut r, _) = password_step(&e, "192.0.2.61", "/").await;
    let ok = answer(
        &mut r,
        "totp",
        &totp_at(&secret, e.now() / 30 + 1),
        &[("remember", "1")],
    )
    .await;
    assert_eq!(ok.status, 303);
    let remember = r
        .jar
        .get("portcullis_2fa")
        .cloned()
        .expect("remember cookie");
    let mut again = Browser::new(&e, "192.0.2.61");
    again.jar.insert("portcullis_2fa".into(), remember.clone());
    let p = again.sign_in("alice", PASSWORD, None).await;
    assert_eq!(location(&p), "/");
    assert_eq!(pending(&again).await, (Pending::Done, 2));
    // The cookie alone is no sign-in, and it stops working when the factors change.
    let page = b.send("GET", "/2fa/setup", "").await;
    let csrf = page.field("csrf").unwrap();
    b.send(
        "POST",
        "/2fa/setup",
        &form(&[("csrf", &csrf), ("action", "regenerate")]),
    )
    .await;
    let mut later = Browser::new(&e, "192.0.2.61");
    later.jar.insert("portcullis_2fa".into(), remember);
    let p = later.sign_in("alice", PASSWORD, None).await;
    assert!(
        location(&p).starts_with("/_auth/2fa"),
        "factors changed: asked again"
    );

    // Wrong codes climb the ladder; signing in again with the password doesn't reset it.
    let (mut x, _) = password_step(&e, "192.0.2.62", "/").await;
    assert_eq!(answer(&mut x, "totp", "111111", &[]).await.status, 401);
    assert_eq!(answer(&mut x, "totp", "222222", &[]).await.status, 401);
    let (mut y, _) = password_step(&e, "192.0.2.63", "/").await;
    assert_eq!(answer(&mut y, "totp", "333333", &[]).await.status, 401);
    // Locked now: even the right code is refused, without extending anything.
    let locked = answer(&mut y, "totp", &totp_at(&secret, e.now() / 30), &[]).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    let st = standing(&e, "alice").await;
    assert!(st.locked_for.is_some());
}
both_async!(remember_browser_and_ladder, remember_and_ladder);

// ---------------------------------------------------------------------------
// Over HTTP: real gateways, a real SMTP server, a real webhook receiver.

impl Client<'_> {
    fn send_code(&mut self, method: &str) -> Resp {
        let page = self.get(&format!("/_auth/2fa?method={method}"));
        let csrf = page.csrf();
        self.post("/_auth/2fa/send", &[("csrf", &csrf), ("method", method)])
    }
    fn answer(&mut self, method: &str, code: &str, rd: &str) -> Resp {
        let page = self.get(&format!("/_auth/2fa?method={method}"));
        let csrf = page.csrf();
        self.post(
            "/_auth/2fa",
            &[
                ("csrf", &csrf),
                ("method", method),
                ("code", code),
                ("rd", rd),
            ],
        )
    }
}

fn two_factor_rule_over_http(be: Backend) {
    let g = Gateway::start(
        be,
        Options {
            extra: "#server\ntrusted_proxies = [\"127.0.0.1/32\"]\n#end\n".into(),
            ..Options::default()
        },
    );
    let mut c = Client::new(&g);
    let r = c.sign_in("/");
    assert_eq!((r.status, r.header("location")), (303, Some("/")));
    // One factor is enough for ordinary pages, not for the two_factor rule.
    assert_eq!(c.get("/page").status, 200);
    let r = c.get("/secure/report?q=1");
    assert_eq!(r.status, 302);
    let loc = r.header("location").unwrap().to_string();
    assert_eq!(loc, "/_auth/2fa?rd=%2Fsecure%2Freport%3Fq%3D1");
    // A non-browser client is told what is missing.
    let r = g.get("/secure/report", &[&c.cookie_line()]);
    assert_eq!(r.status, 401);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (v["error"].as_str(), v["login"].as_str()),
        (Some("second_factor_required"), Some("/_auth/2fa"))
    );
    // Also for forward-auth callers: the second step, then back to the original URL.
    let fwd = [
        "X-Forwarded-Method: GET",
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: app.test",
        "X-Forwarded-Uri: /secure/report?q=1",
    ];
    let cookie = c.cookie_line();
    let mut with = fwd.to_vec();
    with.push(&cookie);
    let r = g.get("/_auth/verify?redirect=1", &with);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://app.test/_auth/2fa?rd=https%3A%2F%2Fapp.test%2Fsecure%2Freport%3Fq%3D1")
    );
    assert_eq!(g.get("/_auth/verify", &with).status, 401);
    // The password alone can't add an app and pass as two factors: the account
    // already has a second step (codes by email), so setting one up asks for it first.
    let r = c.get("/_auth/2fa/setup?rd=/secure/");
    assert_eq!(r.status, 303, "{}", r.body);
    let to_challenge = r.header("location").unwrap_or("").to_string();
    assert!(to_challenge.starts_with("/_auth/2fa?rd="), "{to_challenge}");
    let csrf = c.get("/_auth/2fa?rd=/secure/").csrf();
    let r = c.post(
        "/_auth/2fa/setup",
        &[
            ("csrf", &csrf),
            ("action", "confirm"),
            ("code", "123456"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let again = r.header("location").unwrap_or("");
    assert!(again.starts_with("/_auth/2fa?rd="), "{again}");
    assert!(r.header("set-cookie").is_none(), "no new session");
    assert_eq!(c.get("/secure/report").status, 302, "still one factor");
    let r = c.send_code("email");
    assert_eq!(r.status, 200, "{}", r.body);
    let msg = g.outbox().pop().unwrap();
    let code = digits_in(msg["text"].as_str().unwrap(), 6);
    let r = c.answer("email", &code, "/secure/report?q=1");
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/secure/report?q=1")),
        "{}",
        r.body
    );
    let r = c.get("/secure/report?q=1");
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = c.cookie_line();
    let mut with = fwd.to_vec();
    with.push(&cookie);
    let v = g.get("/_auth/verify", &with);
    assert_eq!((v.status, v.header("remote-user")), (200, Some("alice")));
    assert!(
        r.body.contains("<th>remote-user</th><td>alice</td>"),
        "{}",
        r.body
    );
    assert!(g.log().contains("\"2fa_ok\""), "audit event");
    assert!(
        g.log().contains("\"code_sent\"") && !g.log().contains(&code),
        "no code in the log"
    );
}

mod two_factor_rule_and_return {
    use super::*;
    #[test]
    fn memory() {
        two_factor_rule_over_http(Backend::Memory)
    }
    #[test]
    fn redis() {
        two_factor_rule_over_http(Backend::Redis)
    }
}

/// Enrols alice through the gateway's pages; returns the secret and the step used.
fn http_enrol(c: &mut Client<'_>) -> (String, u64) {
    let mut page = c.get("/_auth/2fa/setup");
    if page.status == 303 {
        // Codes by email come first: a password alone can't add an app.
        let r = c.send_code("email");
        assert_eq!(r.status, 200, "{}", r.body);
        let msg = c.g.outbox().pop().unwrap();
        let code = digits_in(msg["text"].as_str().unwrap(), 6);
        let r = c.answer("email", &code, "/");
        assert_eq!(r.status, 303, "{}", r.body);
        page = c.get("/_auth/2fa/setup");
    }
    assert_eq!(page.status, 200, "{}", page.body);
    let uri = between(&page.body, "id=\"otpauth\" href=\"", "\"").replace("&amp;", "&");
    let secret = between(&uri, "secret=", "&").to_string();
    steady();
    let csrf = page.csrf();
    let step = now() / 30;
    let r = c.post(
        "/_auth/2fa/setup",
        &[
            ("csrf", &csrf),
            ("action", "confirm"),
            ("code", &totp_at(&secret, step)),
        ],
    );
    assert!(r.body.contains("id=\"backup-codes\""), "{}", r.body);
    (secret, step)
}

#[test]
fn reset_2fa_cli_clears_factors_and_ends_sessions() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let mut c = Client::new(&g);
    c.sign_in("/");
    http_enrol(&mut c);
    assert_eq!(c.get("/page").status, 200);
    let out = g.cli(&["user", "show", "alice"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("authenticator app: enrolled"));
    let out = g.cli(&["user", "reset-2fa", "alice"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Session ended; the next sign-in has no second factor to pass.
    let r = c.get("/page");
    assert_eq!(r.status, 302, "session ended");
    let mut fresh = Client::new(&g);
    let r = fresh.sign_in("/");
    assert_eq!(r.header("location"), Some("/"));
    let out = g.cli(&["user", "show", "alice"], None);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("authenticator app: none") && text.contains("backup codes left: 0"),
        "{text}"
    );
    assert!(!g
        .cli(&["user", "reset-2fa", "nobody"], None)
        .status
        .success());
}

/// A gateway with `extra` config where sending a code by `method` fails: the person is
/// told so (503), nothing is pretended.
fn send_fails(extra: String, method: &str) -> Gateway {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra,
            ..Options::default()
        },
    );
    let mut c = Client::new(&g);
    c.sign_in("/");
    let r = c.send_code(method);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("could not be sent"));
    g
}

/// aiosmtpd on a free port, optionally with STARTTLS and AUTH.
struct SmtpSink {
    _proc: Proc,
    // Held open: a sink whose stdout is closed fails on its next write.
    _out: BufReader<std::process::ChildStdout>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start(tls: bool, auth: Option<(&str, &str)>) -> SmtpSink {
        SmtpSink::start_with(tls, false, auth)
    }

    /// `implicit`: TLS from the first byte instead of STARTTLS.
    fn start_with(tls: bool, implicit: bool, auth: Option<(&str, &str)>) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args([
            script,
            "--port",
            &port.to_string(),
            "--outdir",
            dir.path().to_str().unwrap(),
        ]);
        if tls {
            let ok = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=localhost",
                ])
                .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
                // A server certificate, not a CA (webpki refuses a CA as end entity).
                .args(["-addext", "basicConstraints=critical,CA:FALSE"])
                .arg("-keyout")
                .arg(dir.path().join("key.pem"))
                .arg("-out")
                .arg(dir.path().join("cert.pem"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(ok.success());
            cmd.arg("--cert")
                .arg(dir.path().join("cert.pem"))
                .arg("--key")
                .arg(dir.path().join("key.pem"));
        }
        if implicit {
            cmd.arg("--implicit");
        }
        if let Some((u, p)) = auth {
            cmd.args(["--user", u, "--password", p]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd (scripts/test.sh installs it)");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "SMTP sink did not start");
        SmtpSink {
            _proc: Proc(child),
            _out: out,
            port,
            dir,
        }
    }

    fn messages(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

fn smtp_delivery(be: Backend, implicit: bool) {
    let sink = SmtpSink::start_with(true, implicit, Some(("portcullis", "s3cret pass")));
    let security = if implicit { "tls" } else { "starttls" };
    let ca = sink.dir.path().join("cert.pem");
    std::fs::write(sink.dir.path().join("smtp.pass"), "s3cret pass\n").unwrap();
    let extra = format!(
        "[notify]\nbackend = \"smtp\"\n[notify.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"{security}\"\n\
         username = \"portcullis\"\npassword_file = \"{}\"\nfrom = \"Portcullis <auth@example.com>\"\nca_file = \"{}\"\n",
        sink.port,
        sink.dir.path().join("smtp.pass").display(),
        ca.display()
    );
    let g = Gateway::start(
        be,
        Options {
            extra,
            ..Options::default()
        },
    );
    let mut c = Client::new(&g);
    c.sign_in("/");
    let page = c.get("/_auth/2fa?rd=/secure/");
    assert!(page.body.contains("method=email") || page.body.contains("value=\"email\""));
    assert!(
        !page.body.contains("method=sms"),
        "no backend for SMS: not offered"
    );
    let r = c.send_code("email");
    assert_eq!(r.status, 200, "{}\n{}", r.body, g.log());
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "{}", g.log());
    let mail = &mails[0];
    assert!(
        mail.contains("X-TLS: yes") && mail.contains("X-Auth: yes"),
        "{mail}"
    );
    assert!(mail.contains("X-Envelope-To: alice@example.com"));
    assert!(
        mail.contains("Subject: Your Portcullis sign-in code"),
        "{mail}"
    );
    let body = mail
        .split_once("\r\n\r\n")
        .map_or(mail.as_str(), |(_, b)| b);
    let code = digits_in(&body.replace("=\r\n", ""), 6);
    let r = c.answer("email", &code, "/secure/");
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/secure/")),
        "{}",
        r.body
    );
    assert_eq!(c.get("/secure/").status, 200);
}

mod smtp_codes_through_a_real_server {
    use super::*;
    #[test]
    fn memory() {
        smtp_delivery(Backend::Memory, false)
    }
    #[test]
    fn memory_tls_from_the_first_byte() {
        smtp_delivery(Backend::Memory, true)
    }
    #[test]
    fn redis() {
        smtp_delivery(Backend::Redis, false)
    }
}

#[test]
fn smtp_refuses_an_untrusted_certificate_and_wrong_credentials() {
    // Without the CA the STARTTLS certificate isn't trusted: nothing is sent in clear.
    let sink = SmtpSink::start(true, None);
    let extra = format!(
        "[notify]\nbackend = \"smtp\"\n[notify.smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"auth@example.com\"\n",
        sink.port
    );
    let g = send_fails(extra, "email");
    assert!(sink.messages().is_empty());
    drop(g);
    // Plain relay with wrong credentials.
    let sink = SmtpSink::start(false, Some(("u", "right")));
    let extra = format!(
        "[notify]\nbackend = \"smtp\"\n[notify.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nusername = \"u\"\npassword = \"wrong\"\nfrom = \"auth@example.com\"\n",
        sink.port
    );
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra,
            ..Options::default()
        },
    );
    let mut c = Client::new(&g);
    c.sign_in("/");
    assert_eq!(c.send_code("email").status, 503);
    assert!(sink.messages().is_empty());
    assert!(
        !g.log().contains("wrong\""),
        "the password never reaches the log"
    );
}

/// A real HTTP server on loopback recording each request (head and body).
struct Receiver {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        listener.set_nonblocking(false).unwrap();
        std::thread::spawn(move || {
            // Bounded: at most 50 requests, and the test process ends it anyway.
            for stream in listener.incoming().take(50) {
                let Ok(mut s) = stream else { continue };
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).unwrap();
                log.lock()
                    .unwrap()
                    .push((head, String::from_utf8_lossy(&body).to_string()));
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
                    .as_bytes(),
                );
            }
        });
        Receiver { port, seen }
    }
}

fn webhook_delivery(be: Backend) {
    let rx = Receiver::start(201);
    // A Twilio-like form body with basic auth, for SMS and voice; email stays in the file.
    let extra = format!(
        "[notify]\nbackend = \"file\"\nsms = \"webhook\"\nvoice = \"webhook\"\n[notify.webhook]\nurl = \"http://127.0.0.1:{}/messages\"\n\
         content_type = \"application/x-www-form-urlencoded\"\nbody = \"To={{{{ to|urlencode }}}}&Channel={{{{ channel }}}}&Body={{{{ text|urlencode }}}}\"\n\
         [notify.webhook.headers]\nAuthorization = \"Basic dXNlcjpwYXNz\"\n",
        rx.port
    );
    let g = Gateway::start(
        be,
        Options {
            extra,
            ..Options::default()
        },
    );
    let mut c = Client::new(&g);
    c.sign_in("/");
    for (i, method) in ["voice", "sms"].into_iter().enumerate() {
        let r = c.send_code(method);
        assert_eq!(r.status, 200, "{}\n{}", r.body, g.log());
        let seen = rx.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), i + 1);
        let (head, body) = &seen[i];
        assert!(head.starts_with("POST /messages HTTP/1.1"), "{head}");
        assert!(
            head.contains("Authorization: Basic dXNlcjpwYXNz")
                || head
                    .to_ascii_lowercase()
                    .contains("authorization: basic dxnlcjpwyxnz"),
            "{head}"
        );
        assert!(head
            .to_ascii_lowercase()
            .contains("content-type: application/x-www-form-urlencoded"));
        let fields: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(fields["To"], "+14155552671");
        assert_eq!(fields["Channel"], method);
        if method == "sms" {
            let code = digits_in(&fields["Body"], 6);
            let r = c.answer("sms", &code, "/secure/");
            assert_eq!(r.status, 303, "{}", r.body);
        }
    }
    assert!(
        g.outbox().is_empty(),
        "SMS and voice went to the webhook only"
    );
}

mod webhook_codes_through_a_real_receiver {
    use super::*;
    #[test]
    fn memory() {
        webhook_delivery(Backend::Memory)
    }
    #[test]
    fn redis() {
        webhook_delivery(Backend::Redis)
    }
}

#[test]
fn webhook_failure_is_a_clear_error_not_a_lost_code() {
    let rx = Receiver::start(500);
    let extra = format!(
        "[notify]\nbackend = \"webhook\"\n[notify.webhook]\nurl = \"http://127.0.0.1:{}/sms?token=hunter2\"\n",
        rx.port
    );
    let g = send_fails(extra, "sms");
    // The default body is JSON with every field.
    let (_, body) = rx.seen.lock().unwrap()[0].clone();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["channel"].as_str(), v["to"].as_str()),
        (Some("sms"), Some("+14155552671"))
    );
    let log = g.log();
    assert!(
        log.contains("answered 500") && !log.contains("hunter2"),
        "{log}"
    );
}

#[test]
fn notify_settings_apply_on_sighup() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let mut c = Client::new(&g);
    c.sign_in("/");
    assert!(c.get("/_auth/2fa").body.contains("method=sms"));
    // The operator turns text messages off and reloads: SMS is no longer offered.
    let mut cfg = std::fs::read_to_string(&g.config).unwrap();
    cfg.push_str("\n[notify]\nsms = \"none\"\n");
    std::fs::write(&g.config, cfg).unwrap();
    crate::operations::signal(g.pid(), "HUP");
    let mut offered = true;
    for _ in 0..50 {
        offered = c.get("/_auth/2fa").body.contains("method=sms");
        if !offered {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!offered, "SMS still offered after SIGHUP:\n{}", g.log());
    assert!(c.get("/_auth/2fa").body.contains("method=voice"));
}

#[test]
fn a_totp_code_works_once_across_two_gateways_on_one_redis() {
    let redis = Redis::start();
    let opts = || Options {
        redis_url: Some(redis.url()),
        ..Options::default()
    };
    let g1 = Gateway::start(Backend::Redis, opts());
    let mut g2 = Gateway::start(Backend::Redis, opts());
    let mut c = Client::new(&g1);
    c.sign_in("/");
    let (secret, enrolled) = http_enrol(&mut c);
    // The second instance shares keys and accounts with the first, as a deployment does.
    g2.proc = None;
    for f in ["secrets/cookie.key", "secrets/data.key", "users.toml"] {
        std::fs::copy(g1.dir.path().join(f), g2.dir.path().join(f)).unwrap();
    }
    g2.spawn();
    let mut a = Client::new(&g1);
    let mut b = Client::new(&g2);
    for x in [&mut a, &mut b] {
        let r = x.sign_in("/app");
        assert_eq!(
            r.header("location"),
            Some("/_auth/2fa?rd=%2Fapp"),
            "{}",
            r.body
        );
    }
    // Steps: `enrolled` is spent by the enrolment; `enrolled + 1` is used on g1 and
    // replayed on g2; another step still within one of now proves g2 accepts codes.
    let code = totp_at(&secret, enrolled + 1);
    assert_eq!(a.answer("totp", &code, "/app").status, 303);
    let replay = b.answer("totp", &code, "/app");
    assert_eq!(replay.status, 401, "the same step on the other gateway");
    let other = if now() / 30 == enrolled {
        enrolled - 1
    } else {
        enrolled + 2
    };
    assert_eq!(
        b.answer("totp", &totp_at(&secret, other), "/app").status,
        303
    );
}

/// Issue #8.3: guesses at the second step count on the account's ladder, whatever
/// the browser, the round of sign-ins or the method; the known-device cookie comes
/// only with a whole sign-in, so an attacker with the password can't earn one.
async fn second_step_guesses_lock(be: Backend) {
    let e = env(
        be,
        "[defense]\ncaptcha_after = 100\nlock_after = 6\nknown_device_lock_after = 6\nip_per_minute = 10000\nspray_per_minute = 0\n",
    );
    // The owner enrols an app; that whole sign-in makes the browser a known device.
    let (mut owner, _) = password_step(&e, "192.0.2.10", "/").await;
    let (secret, _) = enrol(&mut owner).await;
    assert!(owner.jar.contains_key("portcullis_dev"), "{:?}", owner.jar);
    // The attacker has the password: each round a fresh browser and a fresh sign-in.
    let wrong = [
        ("totp", "000000"),
        ("backup", "aaaaa-bbbbb"),
        ("email", "000000"),
        ("totp", "999999"),
        ("sms", "123456"),
        ("backup", "zzzzz-zzzzz"),
    ];
    for (round, pair) in wrong.chunks(2).enumerate() {
        let (mut b, p) = password_step(&e, &format!("198.51.100.{round}"), "/").await;
        assert!(location(&p).starts_with("/_auth/2fa"), "{}", location(&p));
        assert!(
            !p.headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("set-cookie")
                    && v.starts_with("portcullis_dev=")),
            "device cookie before the second step: {:?}",
            p.headers
        );
        for (method, code) in pair {
            if *method == "email" || *method == "sms" {
                assert_eq!(send_code(&mut b, method).await.status, 200);
            }
            let r = answer(&mut b, method, code, &[]).await;
            assert_eq!(r.status, 401, "{method}: {}", r.body);
        }
    }
    // Six wrong second steps: locked for every browser that isn't a known device,
    // even with the right password and a right code.
    let mut late = Browser::new(&e, "198.51.100.77");
    let p = late.sign_in("alice", PASSWORD, None).await;
    assert_eq!(p.status, 401, "locked: the right password is refused");
    let notices: Vec<_> = e
        .outbox_now()
        .into_iter()
        .filter(|m| m["kind"] == "lock_notice")
        .collect();
    assert_eq!(notices.len(), 1, "the owner is told: {notices:?}");
    // The owner's known device still signs in and passes the second step.
    let p = owner.sign_in("alice", PASSWORD, None).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let code = totp_at(&secret, e.now() / 30 + 1);
    let r = answer(&mut owner, "totp", &code, &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

both_async!(
    second_step_guesses_lock_the_account,
    second_step_guesses_lock
);

/// Issue #8.8: enrolling a second factor ends the sessions that proved only the
/// password, so none of them can change the password afterwards.
async fn enrolment_ends_password_only_sessions(be: Backend) {
    let e = env(be, CALM);
    let (mut old, _) = password_step(&e, "192.0.2.20", "/").await;
    let (mut other, _) = password_step(&e, "192.0.2.21", "/").await;
    assert_eq!(pending(&old).await, (Pending::Done, 1));
    let (mut b, _) = password_step(&e, "192.0.2.22", "/").await;
    enrol(&mut b).await;
    assert_eq!(pending(&b).await, (Pending::Done, 2));
    for s in [&mut old, &mut other] {
        assert!(
            matches!(s.session().await, portcullis::app::SessionState::Ended),
            "a password-only session outlived the enrolment"
        );
        let p = s.send("GET", "/password", "").await;
        assert_eq!(p.status, 302, "{}", p.body);
        assert!(p.header("location").unwrap().contains("/login"));
    }
    // The enrolling session itself goes on, and may change the password.
    let p = b.send("GET", "/password", "").await;
    assert_eq!(p.status, 200, "{}", p.body);
}

both_async!(
    enrolment_ends_older_sessions,
    enrolment_ends_password_only_sessions
);

/// Issue #8.5 at the second step: a burst of simultaneous guesses is reserved on
/// the account's ladder one by one, so no more than `lock_after` are judged.
async fn second_step_burst(be: Backend) {
    let e = env(
        be,
        "[defense]\ncaptcha_after = 100\nlock_after = 4\nip_per_minute = 100000\nspray_per_minute = 0\n",
    );
    let (mut owner, _) = password_step(&e, "192.0.2.10", "/").await;
    enrol(&mut owner).await;
    let (mut b, _) = password_step(&e, "198.51.100.9", "/").await;
    let page = b.send("GET", "/2fa?method=totp", "").await;
    let csrf = page.field("csrf").unwrap();
    let mut tabs: Vec<Browser> = (0..12)
        .map(|_| {
            let mut t = Browser::new(&e, "198.51.100.9");
            t.jar = b.jar.clone();
            t
        })
        .collect();
    let body = form(&[("csrf", &csrf), ("method", "totp"), ("code", "000000")]);
    let answers =
        futures::future::join_all(tabs.iter_mut().map(|t| t.send("POST", "/2fa", &body))).await;
    let judged = answers.iter().filter(|p| p.status == 401).count();
    assert!(judged <= 4, "{judged} guesses judged in the burst");
    assert!(answers.iter().all(|p| p.status == 401 || p.status == 429));
    assert!(standing(&e, "alice").await.locked_for.is_some());
}

both_async!(second_step_bursts_cannot_race_the_lock, second_step_burst);
