//! The brute-force ladder. The sign-in flow is driven in-process (the
//! harness's `Env` and `Browser`) through `portal::handle` (no HTTP backdoor: CAPTCHAs are solved by reading the
//! challenge through the library's own API), against the memory store and a
//! real Redis; rate limits and shared counters also over HTTP with real gateways.

use std::time::Duration;

use crate::harness::*;

const LADDER: &str = "[defense]\ncaptcha_after = 2\nlock_after = 4\nwindow = \"1m\"\nlock_duration = \"2s\"\nlock_max = \"8s\"\nip_per_minute = 1000\nspray_per_minute = 0\n";

async fn ladder(b: Backend) {
    // Missing and wrong CAPTCHAs count as failures too, so leave room before the lock.
    let e = env(b, &LADDER.replace("lock_after = 4", "lock_after = 6"));
    let mut attacker = Browser::new(&e, "203.0.113.7");
    // Below the threshold: no CAPTCHA.
    assert!(attacker
        .send("GET", "/login", "")
        .await
        .field("captcha_id")
        .is_none());
    assert_eq!(attacker.sign_in("alice", "wrong", None).await.status, 401);
    let p = attacker.sign_in("ALICE@example.com", "wrong", None).await;
    assert_eq!(p.status, 401);
    // At the threshold the re-rendered form demands a CAPTCHA, with image and audio.
    let cid = p
        .field("captcha_id")
        .expect("CAPTCHA demanded after 2 failures");
    assert!(
        p.body.contains(&format!("/captcha/{cid}.png"))
            && p.body.contains(&format!("/captcha/{cid}.wav"))
    );
    assert!(p.body.contains("<audio"));
    let png = attacker
        .send("GET", &format!("/captcha/{cid}.png"), "")
        .await;
    assert_eq!(
        (png.status, png.header("content-type")),
        (200, Some("image/png"))
    );
    let wav = attacker
        .send("GET", &format!("/captcha/{cid}.wav"), "")
        .await;
    assert_eq!(
        (wav.status, wav.header("content-type")),
        (200, Some("audio/wav"))
    );
    // Another browser can't fetch this browser's challenge.
    let mut other = Browser::new(&e, "198.51.100.1");
    assert_eq!(
        other
            .send("GET", &format!("/captcha/{cid}.png"), "")
            .await
            .status,
        404
    );
    // Right password, but missing, wrong, or reused CAPTCHA: refused.
    let p = attacker.submit(&p, "alice", PASSWORD, None).await;
    assert_eq!(p.status, 401, "missing CAPTCHA");
    let p = attacker.submit(&p, "alice", PASSWORD, Some(false)).await;
    assert_eq!(p.status, 401, "wrong CAPTCHA");
    let used = p.field("captcha_id").unwrap();
    let answer = e
        .app
        .captchas
        .answers_for_tests(&used)
        .await
        .unwrap()
        .unwrap()
        .1; // the audio digits
    let csrf = p.field("csrf").unwrap();
    let ok_body = form(&[
        ("csrf", &csrf),
        ("identifier", "alice"),
        ("password", PASSWORD),
        ("captcha_id", &used),
        ("captcha", &answer),
    ]);
    let first = attacker.send("POST", "/login", &ok_body).await;
    assert_eq!(
        first.status,
        303,
        "the audio digits solve it: {}",
        first.error()
    );
    let again = attacker.send("POST", "/login", &ok_body).await;
    assert_eq!(again.status, 401, "a challenge works once");

    // Lock: 6 failures on alice (each with a solved CAPTCHA) from one attacker.
    let mut attacker = Browser::new(&e, "203.0.113.8");
    let last = attacker.fail_times("alice", "wrong", 6).await;
    let s = standing(&e, "alice").await;
    let left = s.locked_for.expect("locked after 6 failures");
    assert!(left <= 2);
    // While locked the right password (and a right CAPTCHA) gets the same answer as a wrong one.
    let wrong_answer = attacker.submit(&last, "alice", "wrong", Some(true)).await;
    let right_answer = attacker
        .submit(&wrong_answer, "alice", PASSWORD, Some(true))
        .await;
    assert_eq!(right_answer.status, 401);
    assert_eq!(right_answer.error(), wrong_answer.error());
    assert!(
        right_answer.error().contains("reset your password"),
        "tells what to do: {}",
        right_answer.error()
    );
    // An unknown identifier gets the very same page at this point: nothing reveals the account.
    let ghost = attacker
        .submit(&right_answer, "ghost@example.com", "wrong", Some(true))
        .await;
    assert_eq!(ghost.error(), right_answer.error());
    // Attempts during the lock did not extend it.
    let s2 = standing(&e, "alice").await;
    assert!(s2.locked_for.unwrap_or(0) <= left);
    // The lock expires by itself.
    e.pass(Duration::from_millis(2300)).await;
    let mut later = Browser::new(&e, "192.0.2.50");
    assert_eq!(
        later.sign_in("alice", PASSWORD, Some(true)).await.status,
        303
    );
    // The next lock lasts twice as long (4 s; a first lock of 2 s could show at most 1 s left here).
    let mut attacker = Browser::new(&e, "203.0.113.9");
    let _ = attacker.fail_times("alice", "wrong", 6).await;
    let s = standing(&e, "alice").await;
    assert!(s.locked_for.is_some_and(|t| (2..=4).contains(&t)), "{s:?}");
    // The operator can clear it.
    assert!(e
        .app
        .defense
        .list()
        .await
        .unwrap()
        .iter()
        .any(|r| r.name == "alice" && r.locked_for.is_some()));
    assert!(e.app.defense.clear("alice").await.unwrap());
    let mut owner = Browser::new(&e, "192.0.2.51");
    assert_eq!(
        owner.sign_in("alice", PASSWORD, Some(true)).await.status,
        303
    );
}
both_async!(ladder_captcha_lock_expiry_and_growth, ladder);

async fn known_device(b: Backend) {
    let e = env(b, LADDER);
    // The owner signs in once: this browser becomes a known device of alice.
    let mut owner = Browser::new(&e, "192.0.2.10");
    assert_eq!(owner.sign_in("alice", PASSWORD, None).await.status, 303);
    assert!(owner.jar.contains_key("portcullis_dev"));
    // An attacker locks the account.
    let mut attacker = Browser::new(&e, "203.0.113.20");
    let _ = attacker.fail_times("alice", "guess", 6).await;
    assert_eq!(
        attacker.sign_in("alice", PASSWORD, Some(true)).await.status,
        401,
        "locked for the attacker"
    );
    // The owner's known device still gets in with the right password, and no CAPTCHA.
    let form_page = owner.send("GET", "/login", "").await;
    let p = owner.submit(&form_page, "alice", PASSWORD, None).await;
    assert_eq!(
        p.status,
        303,
        "known device bypasses the lock: {}",
        p.error()
    );
    // The device cookie is bound to its account: it doesn't help against bob's lock.
    let mut attacker2 = Browser::new(&e, "203.0.113.21");
    let _ = attacker2.fail_times("bob", "guess", 6).await;
    assert_eq!(owner.sign_in("bob", PASSWORD, Some(true)).await.status, 401);
    // A known device's own failures count separately and lock it too.
    for _ in 0..4 {
        owner.sign_in("alice", "typo", Some(true)).await;
    }
    assert_eq!(
        owner.sign_in("alice", PASSWORD, Some(true)).await.status,
        401,
        "device locked by its own failures"
    );
}
both_async!(known_device_is_not_locked_out_by_an_attacker, known_device);

async fn unknown_ids_and_spray(b: Backend) {
    let e = env(
        b,
        &LADDER.replace("spray_per_minute = 0", "spray_per_minute = 3"),
    );
    // Unknown identifiers count toward the client.
    let mut probe = Browser::new(&e, "203.0.113.30");
    probe.sign_in("nobody1@example.com", "x", None).await;
    let p = probe.sign_in("nobody2@example.com", "x", None).await;
    assert!(
        p.field("captcha_id").is_some(),
        "client CAPTCHA after unknown identifiers"
    );
    // Failures across accounts from many addresses trip the breaker: a fresh browser
    // must solve a CAPTCHA even for an account with no failures.
    for i in 0..3 {
        let mut b = Browser::new(&e, &format!("198.18.0.{i}"));
        b.sign_in(&format!("user{i}@example.com"), "x", None).await;
    }
    let mut fresh = Browser::new(&e, "192.0.2.77");
    let p = fresh.sign_in("bob", PASSWORD, None).await;
    assert_eq!(p.status, 401, "spray breaker demands a CAPTCHA");
    assert!(p.field("captcha_id").is_some());
    let p = fresh.submit(&p, "bob", PASSWORD, Some(true)).await;
    assert_eq!(p.status, 303);
}
both_async!(unknown_identifiers_and_spray_breaker, unknown_ids_and_spray);

#[test]
fn per_address_rate_limit_answers_429_over_http() {
    let admin = free_port();
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: format!(
                "#server\nadmin_listen = \"127.0.0.1:{admin}\"\n#end\n[defense]\nip_per_minute = 3\ncaptcha_after = 100\nlock_after = 100\n"
            ),
            ..Default::default()
        },
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(g.post_login("alice", "wrong", "/").status);
    }
    assert_eq!(statuses, vec![401, 401, 401, 429]);
    let r = g.post_login("alice", PASSWORD, "/");
    assert_eq!(r.status, 429, "even the right password waits");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    assert!(r.body.contains("Too many"));
    // API clients get JSON.
    let (pre, csrf) = g.login_form();
    let r = g.submit_login(
        &pre,
        &[
            ("csrf", &csrf),
            ("identifier", "alice"),
            ("password", PASSWORD),
        ],
        &["Accept: application/json"],
    );
    assert_eq!(r.status, 429);
    assert!(r.body.starts_with('{'));
    // Proxied traffic and the sign-in page itself are not limited.
    assert_eq!(g.get("/_auth/login", &["Accept: text/html"]).status, 200);
    assert_eq!(g.get("/public/x", &[]).status, 200);
    // Prometheus counters on the admin listener.
    let m = try_request(
        admin,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(
        m.body
            .contains("portcullis_rate_limited_total{limit=\"ip_per_minute\"} 3"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("portcullis_signins_total{result=\"failure\"} 3"),
        "{}",
        m.body
    );
    // CAPTCHA pictures and sounds cost a rendering each (attack pass: ~130 WAV
    // renderings a second from one address): limited per client, on the budget new
    // challenges are made under (2 × ip_per_minute + 10 a minute), not on the sign-in
    // attempts' — those are used up here, and the sound is still served.
    let media = || {
        g.get(
            "/_auth/captcha/0123456789abcdef0123456789abcdef.wav",
            &["Accept: text/html"],
        )
        .status
    };
    let statuses: Vec<u16> = (0..17).map(|_| media()).collect();
    assert_eq!(statuses[..16], [404; 16], "{statuses:?}");
    assert_eq!(statuses[16], 429, "{statuses:?}");
}

#[test]
fn two_gateways_on_one_redis_share_the_ladder() {
    let redis = Redis::start();
    let opts = || {
        Options {
        redis_url: Some(redis.url()),
        extra: "[defense]\ncaptcha_after = 2\nlock_after = 3\nlock_duration = \"1m\"\nip_per_minute = 1000\nspray_per_minute = 0\n".into(),
        ..Default::default()
    }
    };
    let g1 = Gateway::start(Backend::Redis, opts());
    let g2 = Gateway::start(Backend::Redis, opts());
    assert_eq!(g1.post_login("alice", "wrong", "/").status, 401);
    assert_eq!(g2.post_login("alice", "wrong", "/").status, 401);
    // Two failures spread over both instances: the CAPTCHA is demanded on either.
    let r = g1.post_login("alice", PASSWORD, "/");
    assert_eq!(
        r.status, 401,
        "CAPTCHA required after failures on both instances"
    );
    assert!(r.body.contains("captcha_id"));
    // The third failure locks alice for both; lock list on either config shows it.
    g2.post_login("alice", "wrong", "/");
    let list = String::from_utf8(g1.cli(&["lock", "list"], None).stdout).unwrap();
    assert!(list.contains("account\talice\tlocked for"), "{list}");
    let o = g2.cli(&["lock", "clear", "alice"], None);
    assert!(String::from_utf8_lossy(&o.stdout).contains("cleared alice"));
    let list = String::from_utf8(g1.cli(&["lock", "list"], None).stdout).unwrap();
    assert!(!list.contains("account\talice"), "{list}");
}

async fn lock_notice(b: Backend) {
    let e = env(b, LADDER);
    let mut attacker = Browser::new(&e, "203.0.113.40");
    let _ = attacker.fail_times("alice", "guess", 4).await;
    assert!(standing(&e, "alice").await.locked_for.is_some());
    // The owner got one message through the notifier, with the time, the address and a link.
    e.app.outgoing_settled().await;
    let outbox = std::fs::read_to_string(e.app.config.load().notify.file.clone()).unwrap();
    let msgs: Vec<serde_json::Value> = outbox
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(msgs.len(), 1, "{outbox}");
    assert_eq!(msgs[0]["to"], "alice@example.com");
    assert_eq!(msgs[0]["kind"], "lock_notice");
    let text = msgs[0]["text"].as_str().unwrap();
    assert!(
        text.contains("203.0.113.40") && text.contains(" UTC)"),
        "{text}"
    );
    let link = text
        .lines()
        .find(|l| l.contains("/_auth/unlock?token="))
        .unwrap()
        .trim();
    let token = link.split("token=").nth(1).unwrap();
    // A tampered token is refused; the real one shows a form and acts only on POST.
    let mut owner = Browser::new(&e, "192.0.2.5");
    let bad = format!("{}x", token);
    assert_eq!(
        owner
            .send("GET", &format!("/unlock?token={bad}"), "")
            .await
            .status,
        400
    );
    let page = owner
        .send("GET", &format!("/unlock?token={token}"), "")
        .await;
    assert_eq!(page.status, 200);
    assert!(
        standing(&e, "alice").await.locked_for.is_some(),
        "GET changes nothing"
    );
    let csrf = page.field("csrf").unwrap();
    let r = owner
        .send(
            "POST",
            "/unlock",
            &form(&[("csrf", &csrf), ("token", token)]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Account unlocked"));
    assert_eq!(standing(&e, "alice").await.locked_for, None);
    // Single use.
    let r = owner
        .send(
            "POST",
            "/unlock",
            &form(&[("csrf", &csrf), ("token", token)]),
        )
        .await;
    assert_eq!(r.status, 400);
    // Without the form's CSRF token: refused.
    let r = owner
        .send("POST", "/unlock", &form(&[("token", token)]))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        owner.sign_in("alice", PASSWORD, Some(true)).await.status,
        303
    );
}
both_async!(lock_notice_with_single_use_unlock_link, lock_notice);

async fn reset_while_locked(b: Backend) {
    let e = env(b, LADDER);
    // alice has a session somewhere, and an attacker locks her account.
    let mut laptop = Browser::new(&e, "192.0.2.60");
    assert_eq!(laptop.sign_in("alice", PASSWORD, None).await.status, 303);
    let mut attacker = Browser::new(&e, "203.0.113.60");
    let _ = attacker.fail_times("alice", "guess", 4).await;
    let lock_notices = e.outbox().await.len();
    // Reset from a new browser: the same answer whether or not the account exists.
    let mut phone = Browser::new(&e, "192.0.2.61");
    let form_page = phone.send("GET", "/reset", "").await;
    let csrf = form_page.field("csrf").unwrap();
    let ghost = phone
        .send(
            "POST",
            "/reset",
            &form(&[
                ("csrf", &csrf),
                ("step", "request"),
                ("identifier", "ghost@example.com"),
            ]),
        )
        .await;
    let real = phone
        .send(
            "POST",
            "/reset",
            &form(&[
                ("csrf", &csrf),
                ("step", "request"),
                ("identifier", "Alice@Example.com"),
            ]),
        )
        .await;
    assert_eq!((ghost.status, real.status), (200, 200));
    assert_eq!(
        ghost.body.replace(&ghost.field("csrf").unwrap(), ""),
        real.body.replace(&real.field("csrf").unwrap(), "")
    );
    let msgs = e.outbox().await;
    assert_eq!(
        msgs.len(),
        lock_notices + 1,
        "one code, for the real account only"
    );
    let m = &msgs[msgs.len() - 1];
    assert_eq!(
        (m["to"].as_str(), m["kind"].as_str()),
        (Some("alice@example.com"), Some("reset_code"))
    );
    let text = m["text"].as_str().unwrap();
    assert!(text.contains("expires in 10 minute"), "{text}");
    let code: String = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .chars()
        .collect();
    assert_eq!(code.len(), 6);
    // The code is bound to the browser that asked for it.
    let mut elsewhere = Browser::new(&e, "192.0.2.62");
    let p = elsewhere.send("GET", "/reset", "").await;
    let r = elsewhere
        .send(
            "POST",
            "/reset",
            &form(&[
                ("csrf", &p.field("csrf").unwrap()),
                ("step", "confirm"),
                ("code", &code),
                ("password", "new password 1"),
                ("confirm", "new password 1"),
            ]),
        )
        .await;
    assert_eq!(r.status, 400);
    // Mismatched new passwords: 400, code not spent. Wrong code: 401.
    let confirm = |code: &str, a: &str, b: &str| {
        form(&[
            ("csrf", &csrf),
            ("step", "confirm"),
            ("code", code),
            ("password", a),
            ("confirm", b),
        ])
    };
    assert_eq!(
        phone
            .send(
                "POST",
                "/reset",
                &confirm(&code, "new password 1", "new password 2")
            )
            .await
            .status,
        400
    );
    assert_eq!(
        phone
            .send(
                "POST",
                "/reset",
                &confirm("000000", "new password 1", "new password 1")
            )
            .await
            .status,
        401
    );
    let r = phone
        .send(
            "POST",
            "/reset",
            &confirm(&code, "new password 1", "new password 1"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Password changed"));
    // Used once; the lock is gone, old sessions and the old password are dead.
    assert_eq!(
        phone
            .send(
                "POST",
                "/reset",
                &confirm(&code, "new password 1", "new password 1")
            )
            .await
            .status,
        400
    );
    assert_eq!(standing(&e, "alice").await.locked_for, None);
    assert!(matches!(
        laptop.session().await,
        portcullis::app::SessionState::Ended
    ));
    assert_eq!(
        phone.sign_in("alice", PASSWORD, Some(true)).await.status,
        401
    );
    assert_eq!(
        phone
            .sign_in("alice", "new password 1", Some(true))
            .await
            .status,
        303
    );
}
both_async!(password_reset_works_while_locked, reset_while_locked);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_code_attempts_are_limited_and_captcha_can_be_required() {
    let e = env(
        Backend::Memory,
        &format!("{LADDER}captcha_on_reset = true\n[otp]\nmax_attempts = 2\n"),
    );
    let mut b = Browser::new(&e, "192.0.2.70");
    let p = b.send("GET", "/reset", "").await;
    let cid = p
        .field("captcha_id")
        .expect("CAPTCHA on reset when configured");
    let csrf = p.field("csrf").unwrap();
    // Without solving it: refused, no code sent.
    let r = b
        .send(
            "POST",
            "/reset",
            &form(&[
                ("csrf", &csrf),
                ("step", "request"),
                ("identifier", "bob"),
                ("captcha_id", &cid),
                ("captcha", "nope"),
            ]),
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(e.outbox().await.is_empty());
    let cid = r.field("captcha_id").unwrap();
    let answer = e
        .app
        .captchas
        .answers_for_tests(&cid)
        .await
        .unwrap()
        .unwrap()
        .0;
    let r = b
        .send(
            "POST",
            "/reset",
            &form(&[
                ("csrf", &csrf),
                ("step", "request"),
                ("identifier", "bob"),
                ("captcha_id", &cid),
                ("captcha", &answer),
            ]),
        )
        .await;
    assert_eq!(r.status, 200);
    let text = e.outbox().await[0]["text"].as_str().unwrap().to_string();
    let code: String = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .chars()
        .collect();
    let confirm = |code: &str| {
        form(&[
            ("csrf", &csrf),
            ("step", "confirm"),
            ("code", code),
            ("password", "another password"),
            ("confirm", "another password"),
        ])
    };
    assert_eq!(
        b.send("POST", "/reset", &confirm("111111")).await.status,
        401
    );
    assert_eq!(
        b.send("POST", "/reset", &confirm("222222")).await.status,
        401
    );
    // Two tries used: even the right code is void now.
    assert_eq!(b.send("POST", "/reset", &confirm(&code)).await.status, 400);
}

async fn per_network_locks(b: Backend) {
    let e = env(b, &format!("{LADDER}lock_scope = \"account_network\"\n"));
    let mut attacker = Browser::new(&e, "203.0.113.80");
    let _ = attacker.fail_times("alice", "guess", 5).await;
    assert_eq!(
        attacker.sign_in("alice", PASSWORD, Some(true)).await.status,
        401,
        "locked from the attacker's network"
    );
    // A browser never seen before, on another network, is not locked out.
    let mut traveller = Browser::new(&e, "198.51.100.80");
    assert_eq!(
        traveller
            .sign_in("alice", PASSWORD, Some(true))
            .await
            .status,
        303
    );
    let rows = e.app.defense.list().await.unwrap();
    assert!(
        rows.iter()
            .any(|r| r.name == "alice@203.0.113.80" && r.locked_for.is_some()),
        "{rows:?}"
    );
    assert!(
        e.app.defense.clear("alice").await.unwrap(),
        "clearing the account clears its per-network locks"
    );
    assert_eq!(
        attacker.sign_in("alice", PASSWORD, Some(true)).await.status,
        303
    );
}
both_async!(lock_scope_account_network, per_network_locks);

#[test]
fn defense_settings_apply_on_sighup() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: "[defense]\nip_per_minute = 2\ncaptcha_after = 100\nlock_after = 100\n".into(),
            ..Default::default()
        },
    );
    assert_eq!(g.post_login("bob", "wrong", "/").status, 401);
    assert_eq!(g.post_login("bob", "wrong", "/").status, 401);
    assert_eq!(g.post_login("bob", "wrong", "/").status, 429);
    let text = std::fs::read_to_string(&g.config)
        .unwrap()
        .replace("ip_per_minute = 2", "ip_per_minute = 50");
    std::fs::write(&g.config, text).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &g.pid().to_string()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        g.post_login("bob", PASSWORD, "/").status,
        303,
        "the new limit applies without a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_with_captcha_when_configured() {
    let e = env(
        Backend::Memory,
        &format!("{LADDER}captcha_on_password_change = true\n"),
    );
    let mut other = Browser::new(&e, "192.0.2.90");
    assert_eq!(other.sign_in("bob", PASSWORD, None).await.status, 303);
    let mut me = Browser::new(&e, "192.0.2.91");
    // Not signed in: sent to sign in first, and back.
    let r = me.send("GET", "/password", "").await;
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("/_auth/login?rd=%2F_auth%2Fpassword"))
    );
    assert_eq!(me.sign_in("bob", PASSWORD, None).await.status, 303);
    let p = me.send("GET", "/password", "").await;
    assert_eq!(p.status, 200);
    let cid = p
        .field("captcha_id")
        .expect("CAPTCHA on password change when configured");
    let csrf = p.field("csrf").unwrap();
    let change = |cid: &str, answer: &str, current: &str, new: &str, again: &str| {
        form(&[
            ("csrf", &csrf),
            ("captcha_id", cid),
            ("captcha", answer),
            ("current", current),
            ("password", new),
            ("confirm", again),
        ])
    };
    // Wrong CAPTCHA, then a wrong current password: refused.
    let r = me
        .send(
            "POST",
            "/password",
            &change(
                &cid,
                "nope",
                PASSWORD,
                "fresh quartz meadow",
                "fresh quartz meadow",
            ),
        )
        .await;
    assert_eq!(r.status, 401);
    let cid = r.field("captcha_id").unwrap();
    let ans = e
        .app
        .captchas
        .answers_for_tests(&cid)
        .await
        .unwrap()
        .unwrap()
        .0;
    let r = me
        .send(
            "POST",
            "/password",
            &change(
                &cid,
                &ans,
                "not it",
                "fresh quartz meadow",
                "fresh quartz meadow",
            ),
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.error().contains("current password"));
    // Without the session's CSRF token: 403.
    assert_eq!(me.send("POST", "/password", "current=x").await.status, 403);
    let cid = r.field("captcha_id").unwrap();
    let ans = e
        .app
        .captchas
        .answers_for_tests(&cid)
        .await
        .unwrap()
        .unwrap()
        .1;
    let r = me
        .send(
            "POST",
            "/password",
            &change(
                &cid,
                &ans,
                PASSWORD,
                "fresh quartz meadow",
                "fresh quartz meadow",
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.error());
    // This browser got a fresh session; the other one was signed out; the new password works.
    assert!(matches!(
        me.session().await,
        portcullis::app::SessionState::Valid { .. }
    ));
    assert!(matches!(
        other.session().await,
        portcullis::app::SessionState::Ended
    ));
    assert_eq!(
        Browser::new(&e, "192.0.2.92")
            .sign_in("bob", "fresh quartz meadow", Some(true))
            .await
            .status,
        303
    );
}
