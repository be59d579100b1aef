//! Request-path scenarios, each run against the memory store and a real Redis,
//! with accounts in the users file; and once more with accounts in SQLite.

use std::time::Duration;

use crate::harness::*;

macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn memory() {
                ($body)(Backend::Memory)
            }
            #[test]
            fn redis() {
                ($body)(Backend::Redis)
            }
            /// The same scenario with the accounts in SQLite.
            #[test]
            fn sqlite() {
                let _users = UsersDefault::set(Users::Sqlite);
                ($body)(Backend::Memory)
            }
        }
    };
}
pub(crate) use both;

both!(sign_in_by_every_identifier_form, |b| {
    let g = Gateway::start(b, Options::default());
    for id in [
        "alice",
        "ALICE",
        "Alice@Example.COM",
        "+1 (415) 555-2671",
        "+1-415-555-2671",
    ] {
        let cookie = g.login(id);
        let r = g.get("/app/page?x=1", &[&format!("Cookie: {cookie}")]);
        assert_eq!(r.status, 200, "{id}: {}", r.body);
        let echo = r.echo();
        assert_eq!(echo["headers"]["remote-user"], "alice");
        assert_eq!(echo["headers"]["remote-email"], "alice@example.com");
        assert_eq!(
            echo["headers"]["remote-name"], "Alice Exämple",
            "UTF-8 names reach the app"
        );
        assert_eq!(echo["headers"]["remote-groups"], "admins,staff");
        assert_eq!(echo["path"], "/app/page?x=1");
        // The application never sees the gateway's cookies.
        assert!(echo["headers"].get("cookie").is_none(), "{echo}");
    }
});

both!(wrong_password_and_unknown_user_look_the_same, |b| {
    let g = Gateway::start(b, Options::default());
    let wrong = g.post_login("alice", "not the password", "/");
    let unknown = g.post_login("nobody@example.com", "not the password", "/");
    let disabled = g.post_login("carol", PASSWORD, "/");
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(disabled.status, 401);
    let msg = |r: &Resp| {
        r.body
            .split("id=\"error\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(msg(&wrong), msg(&unknown));
    assert_eq!(msg(&wrong), msg(&disabled));
    assert!(wrong.cookie("portcullis").is_none());
    // Case-sensitive password, never truncated.
    assert_eq!(
        g.post_login("alice", &PASSWORD.to_uppercase(), "/").status,
        401
    );
    assert_eq!(
        g.post_login("alice", &format!("{PASSWORD}x"), "/").status,
        401
    );
    // Over-long password: a clear 400, not a hash of 1 MiB.
    assert_eq!(g.post_login("alice", &"x".repeat(1100), "/").status, 400);
});

both!(csrf_and_fixation, |b| {
    let g = Gateway::start(b, Options::default());
    // No token, wrong token, token of another pre-session: 403.
    let (pre, csrf) = g.login_form();
    let (_, other_csrf) = g.login_form();
    for token in ["", "forged", other_csrf.as_str()] {
        let r = g.submit_login(
            &pre,
            &[
                ("csrf", token),
                ("identifier", "alice"),
                ("password", PASSWORD),
            ],
            &[],
        );
        assert_eq!(r.status, 403, "token {token:?}");
    }
    // Cross-origin POST with a valid token: 403.
    let r = g.submit_login(
        &pre,
        &[
            ("csrf", &csrf),
            ("identifier", "alice"),
            ("password", PASSWORD),
        ],
        &["Origin: https://evil.example"],
    );
    assert_eq!(r.status, 403);
    // Same form with the opaque `Origin: null` that browsers send under our
    // `Referrer-Policy: no-referrer`: the token decides, and it is right.
    let r = g.submit_login(
        &pre,
        &[
            ("csrf", &csrf),
            ("identifier", "alice"),
            ("password", PASSWORD),
        ],
        &["Origin: null"],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    // A planted session cookie is ignored and replaced by a fresh id at sign-in.
    let planted = "portcullis=attacker-chosen-value";
    let r = g.get("/app", &[&format!("Cookie: {planted}")]);
    assert_eq!(r.status, 401);
    let a = g.login("alice");
    let b2 = g.login("alice");
    assert_ne!(a, b2, "every sign-in gets a new session id");
    assert_ne!(a, planted);
});

both!(logout_then_replayed_cookie_is_refused, |b| {
    let g = Gateway::start(b, Options::default());
    let cookie = g.login("bob");
    assert_eq!(g.get("/x", &[&format!("Cookie: {cookie}")]).status, 200);
    // GET shows a confirmation form; it does not sign out.
    let page = g.get(
        "/_auth/logout",
        &[&format!("Cookie: {cookie}"), "Accept: text/html"],
    );
    assert_eq!(page.status, 200);
    assert_eq!(g.get("/x", &[&format!("Cookie: {cookie}")]).status, 200);
    // POST without the token: 403, still signed in.
    let r = g.req(
        "POST",
        HOST,
        "/_auth/logout",
        &[&format!("Cookie: {cookie}")],
        Some("csrf=nope"),
    );
    assert_eq!(r.status, 403);
    let r = g.req(
        "POST",
        HOST,
        "/_auth/logout",
        &[&format!("Cookie: {cookie}")],
        Some(&form(&[("csrf", &page.csrf())])),
    );
    assert_eq!(r.status, 200);
    assert!(r
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("portcullis=;")));
    let replay = g.get("/x", &[&format!("Cookie: {cookie}"), "Accept: text/html"]);
    assert_eq!(replay.status, 302);
    assert!(replay.header("location").unwrap().contains("expired=1"));
});

both!(idle_and_absolute_timeouts, |b| {
    let g = Gateway::start(
        b,
        Options {
            extra: "#session\nidle_timeout = \"2s\"\nabsolute_timeout = \"4s\"\n#end\n".into(),
            ..Default::default()
        },
    );
    // Idle: no activity for longer than 2 s ends the session.
    let idle = g.login("alice");
    std::thread::sleep(Duration::from_millis(2600));
    let r = g.get(
        "/page?a=1",
        &[&format!("Cookie: {idle}"), "Accept: text/html"],
    );
    assert_eq!(r.status, 302);
    let loc = r.header("location").unwrap();
    assert!(
        loc.contains("expired=1") && loc.contains("rd=%2Fpage%3Fa%3D1"),
        "{loc}"
    );
    // The sign-in page says so, and returns the person to where they were.
    let page = g.get(loc, &["Accept: text/html"]);
    assert!(
        page.body.contains("Your session has ended"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .replace("&#x2f;", "/")
            .contains("value=\"/page?a=1\""),
        "{}",
        page.body
    );
    // Absolute: activity every second does not extend past 4 s.
    let busy = g.login("alice");
    let mut last = 0;
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(900));
        last = g.get("/x", &[&format!("Cookie: {busy}")]).status;
    }
    assert_eq!(last, 401, "absolute timeout enforced despite activity");
});

both!(every_rule_kind, |b| {
    let g = Gateway::start(b, Options::default());
    let alice = format!("Cookie: {}", g.login("alice")); // admins
    let bob = format!("Cookie: {}", g.login("bob"));
    let html = "Accept: text/html";
    // bypass
    assert_eq!(g.get("/public/x", &[]).status, 200);
    // methods
    assert_eq!(g.get("/readonly/x", &[]).status, 200);
    assert_eq!(
        g.req("POST", HOST, "/readonly/x", &[], Some("a=1")).status,
        401
    );
    // networks: the client is 127.0.0.1, not in 10/8
    assert_eq!(g.get("/lan/x", &[]).status, 401);
    // default one_factor: browser → 302 with rd, API → 401 JSON
    let r = g.get("/private?q=1", &[html]);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("/_auth/login?rd=%2Fprivate%3Fq%3D1")
    );
    let r = g.get("/private", &["Accept: application/json"]);
    assert_eq!(r.status, 401);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["error"],
        "unauthenticated"
    );
    assert_eq!(g.get("/private", &[&bob]).status, 200);
    // groups: admins reach /admin, others fall through to deny
    assert_eq!(g.get("/admin/panel", &[&alice]).status, 200);
    let r = g.get("/admin/panel", &[&bob, html]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("Access denied"));
    assert_eq!(g.get("/admin/panel", &[]).status, 403);
    // two_factor: a one-factor session is sent to the second-factor step and back
    let r = g.get("/secure/x", &[&bob, html]);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/_auth/2fa?rd=%2Fsecure%2Fx"));
    assert_eq!(g.get("/secure/x", &[&bob]).status, 401);
});

both!(spoofed_headers_are_stripped, |b| {
    let g = Gateway::start(b, Options::default());
    let bob = format!("Cookie: {}", g.login("bob"));
    let spoof = [
        "Remote-User: admin",
        "remote_user: admin",
        "REMOTE-GROUPS: admins",
        "Remote_Email: admin@example.com",
        "X-Forwarded-For: 6.6.6.6",
        "X-Forwarded-Host: evil.test",
        "X-Forwarded-Proto: https",
        "X-Original-URL: /admin",
        "X-Rewrite-URL: /admin",
        "x_forwarded_for: 6.6.6.6",
    ];
    // On a bypass path without a session: no identity at all reaches the app.
    let mut hs: Vec<&str> = spoof.to_vec();
    let echo = g.get("/public/x", &hs).echo();
    let headers = echo["headers"].as_object().unwrap();
    for k in headers.keys() {
        assert!(
            !k.starts_with("remote") && !k.contains("original") && !k.contains("rewrite"),
            "leaked {k}"
        );
    }
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], HOST);
    // With a session: the real identity, once.
    hs.push(&bob);
    let echo = g.get("/x", &hs).echo();
    assert_eq!(echo["headers"]["remote-user"], "bob");
    assert_eq!(echo["headers"]["remote-groups"], "");
    assert!(echo["headers"].get("remote_user").is_none());
});

both!(path_normalisation_bypass_attempts, |b| {
    let g = Gateway::start(b, Options::default());
    let bob = format!("Cookie: {}", g.login("bob"));
    for p in [
        "/admin",
        "/ADMIN",
        "//admin",
        "/./admin",
        "/pub/../admin",
        "/pub/%2e%2e/admin",
        "/admin;x",
        "/%61dmin",
        "/Admin/",
    ] {
        assert_eq!(g.get(p, &[&bob]).status, 403, "{p} must hit the deny rule");
    }
    for p in [
        "/pub%2f..%2fadmin",
        "/pub/..;/admin",
        "/pub%5c..%5cadmin",
        "/a%00b",
        "/pub/%2e%2e;/admin",
    ] {
        assert_eq!(g.get(p, &[&bob]).status, 400, "{p} is ambiguous");
    }
    // The upstream receives exactly the normalised path the rule saw.
    let echo = g.get("/public/./a//b/../c?x=%2F", &[]).echo();
    assert_eq!(echo["path"], "/public/a/c?x=%2F");
    // A bypass rule doesn't stretch to other spellings.
    assert_eq!(g.get("/PUBLIC/x", &[]).status, 401);
});

both!(redirect_targets_are_validated, |b| {
    let g = Gateway::start(b, Options::default());
    for (rd, want) in [
        ("/app?x=1", "/app?x=1"),
        ("http://other.test/x", "http://other.test/x"),
        ("//evil.com/x", "/"),
        ("https://evil.com/", "/"),
        ("/\\evil.com", "/"),
        ("javascript:alert(1)", "/"),
    ] {
        let r = g.post_login("alice", PASSWORD, rd);
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location"), Some(want), "rd {rd}");
    }
    // The shared corpus through the real sign-in: every payload falls back to "/".
    // A copy of shared/testdata/openredirects.txt (kept equal by the unit test).
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/openredirects.txt"
    ))
    .unwrap();
    let (pre, csrf) = g.login_form();
    for line in text.lines().filter(|l| !l.is_empty()).step_by(7) {
        let rd = percent_encoding::percent_decode_str(&line.replace('+', " "))
            .decode_utf8_lossy()
            .to_string();
        let r = g.submit_login(
            &pre,
            &[
                ("csrf", &csrf),
                ("identifier", "alice"),
                ("password", PASSWORD),
                ("rd", &rd),
            ],
            &[],
        );
        assert_eq!(r.header("location"), Some("/"), "payload {line}");
    }
});

both!(forward_auth_verify, |b| {
    let g = Gateway::start(
        b,
        Options {
            extra: "#server\ntrusted_proxies = [\"127.0.0.1/32\"]\n#end\n".into(),
            ..Default::default()
        },
    );
    let alice = format!("Cookie: {}", g.login("alice"));
    let fwd = [
        "X-Forwarded-Method: GET",
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: app.test",
        "X-Forwarded-Uri: /private?x=1",
    ];
    // No session: 401, or 302 to the sign-in page when asked.
    let r = g.get("/_auth/verify", &fwd);
    assert_eq!(r.status, 401);
    let r = g.get("/_auth/verify?redirect=1", &fwd);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://app.test/_auth/login?rd=https%3A%2F%2Fapp.test%2Fprivate%3Fx%3D1")
    );
    // Session: 200 with identity headers.
    let mut with = fwd.to_vec();
    with.push(&alice);
    let r = g.get("/_auth/verify", &with);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("remote-user"), Some("alice"));
    assert_eq!(r.header("remote-groups"), Some("admins,staff"));
    // nginx style: X-Original-URL; bob is denied /admin.
    let bob = format!("Cookie: {}", g.login("bob"));
    let r = g.get(
        "/_auth/verify",
        &[
            "X-Original-URL: https://app.test/admin/x",
            "X-Original-Method: GET",
            &bob,
        ],
    );
    assert_eq!(r.status, 403);
    let r = g.get(
        "/_auth/verify",
        &[
            "X-Original-URL: https://app.test/public/x",
            "X-Original-Method: GET",
        ],
    );
    assert_eq!(r.status, 200);
    // Without the method, no decision (a GET-only bypass must not admit a POST).
    let r = g.get(
        "/_auth/verify",
        &["X-Original-URL: https://app.test/public/x"],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("X-Original-Method"), "{}", r.body);
});

both!(forward_headers_ignored_from_untrusted_peers, |b| {
    let g = Gateway::start(b, Options::default());
    // Without trusted_proxies forward-auth answers nobody: never a decision (not even
    // for `/`), so a proxy that isn't listed fails closed instead of allowing everything.
    for facts in [
        vec![
            "X-Original-URL: https://app.test/public/x",
            "X-Original-Method: GET",
        ],
        vec![
            "X-Forwarded-Uri: /public/x",
            "X-Forwarded-Host: app.test",
            "X-Forwarded-Method: GET",
        ],
        vec![],
    ] {
        let r = g.get("/_auth/verify", &facts);
        assert_eq!(r.status, 403, "{facts:?}: {}", r.body);
        assert!(r.body.contains("untrusted_proxy"), "{}", r.body);
        // Signed in, too: an untrusted caller gets no identity.
        let alice = format!("Cookie: {}", g.login("alice"));
        let mut with = facts.clone();
        with.push(&alice);
        let r = g.get("/_auth/verify", &with);
        assert_eq!(r.status, 403);
        assert_eq!(r.header("remote-user"), None);
    }
    assert!(
        g.log().contains("forward-auth request refused"),
        "{}",
        g.log()
    );
});

both!(unknown_host_and_protocol_limits, |b| {
    let g = Gateway::start(b, Options::default());
    let r = g.req("GET", "evil.test", "/", &["Accept: text/html"], None);
    assert_eq!(r.status, 421);
    assert!(r.body.contains("Unknown site"));
    // Both Content-Length and Transfer-Encoding; duplicate Content-Length.
    let r = g.raw(&format!("POST /public/x HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"));
    assert_eq!(r.status, 400);
    let r = g.raw(&format!("POST /public/x HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 1\r\nContent-Length: 1\r\nConnection: close\r\n\r\na"));
    assert_eq!(r.status, 400);
    // A portal form with broken chunk framing is the client's error, not ours.
    for path in ["/_auth/login", "/_auth/reset"] {
        let r = g.raw(&format!("POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"));
        assert_eq!(r.status, 400, "{path}: {}", r.body);
    }
    // Too many headers.
    let many: Vec<String> = (0..120).map(|i| format!("X-H{i}: v")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(g.get("/public/x", &refs).status, 431);
    // A portal body over 16 KiB.
    let big = format!("identifier={}", "a".repeat(17 * 1024));
    assert_eq!(
        g.req("POST", HOST, "/_auth/login", &[], Some(&big)).status,
        413
    );
    // Portal pages carry the security headers.
    let r = g.get("/_auth/login", &["Accept: text/html"]);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
});

both!(upstream_down_gets_a_friendly_502, |b| {
    let dead = free_port();
    let g = Gateway::start(
        b,
        Options {
            upstream_port: Some(dead),
            ..Default::default()
        },
    );
    let r = g.get("/public/x", &["Accept: text/html"]);
    assert_eq!(r.status, 502);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.body.contains("not responding"), "{}", r.body);
    // The gateway keeps serving.
    assert_eq!(g.get("/_auth/health", &[]).status, 200);
});

#[test]
fn redis_stopped_mid_run_fails_closed_then_recovers() {
    let mut redis = Redis::start();
    let g = Gateway::start(
        Backend::Redis,
        Options {
            redis_url: Some(redis.url()),
            ..Default::default()
        },
    );
    let cookie = format!("Cookie: {}", g.login("alice"));
    assert_eq!(g.get("/x", &[&cookie]).status, 200);
    let (pre, csrf) = g.login_form();
    redis.stop();
    // The session cache serves a record only while its pub/sub subscription answers
    // its 300 ms ping: within a second of Redis going away, requests fail closed.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let r = loop {
        let r = g.get("/x", &[&cookie, "Accept: text/html"]);
        if r.status != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(r.status, 503, "fail closed: {}", r.body);
    assert!(r.header("retry-after").is_some());
    assert!(!r.body.contains("remote-user"));
    // Bypass paths need no session and keep working.
    assert_eq!(g.get("/public/x", &[]).status, 200);
    // Sign-in answers 503 too (page and form post), never 500.
    let page = g.get("/_auth/login", &["Accept: text/html"]);
    assert_eq!(page.status, 503);
    assert!(page.header("retry-after").is_some());
    let r = g.submit_login(
        &pre,
        &[
            ("csrf", &csrf),
            ("identifier", "alice"),
            ("password", PASSWORD),
        ],
        &[],
    );
    assert_eq!(r.status, 503);
    redis.restart();
    // Data was not persisted (no save), so the old session is gone; sign-in works again.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut status = 0;
    while std::time::Instant::now() < deadline {
        status = g.get("/x", &[&cookie]).status;
        if status != 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status, 401, "recovered by itself");
    let fresh = format!("Cookie: {}", g.login("alice"));
    assert_eq!(g.get("/x", &[&fresh]).status, 200);
}

/// Forward-auth reads a store outage as the proxy does (see `respond.rs`): a rule
/// that needs a session fails closed with 503, `bypass` still answers 200 and
/// `deny` 403, and no identity is ever handed out.
#[test]
fn verify_with_redis_stopped_reads_like_the_proxy() {
    let mut redis = Redis::start();
    let g = Gateway::start(
        Backend::Redis,
        Options {
            redis_url: Some(redis.url()),
            extra: "#server\ntrusted_proxies = [\"127.0.0.1/32\"]\n#end\n".into(),
            ..Default::default()
        },
    );
    let cookie = format!("Cookie: {}", g.login("alice"));
    let verify = |path: &str| {
        let uri = format!("X-Original-URI: {path}");
        g.get(
            "/_auth/verify",
            &[
                &cookie,
                &uri,
                "X-Original-Method: GET",
                "X-Forwarded-Host: app.test",
            ],
        )
    };
    let r = verify("/x");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("remote-user"), Some("alice"));
    redis.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let r = loop {
        let r = verify("/x");
        if r.status != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(r.status, 503, "fail closed: {}", r.body);
    assert!(r.body.contains("\"unavailable\""), "{}", r.body);
    assert_eq!(r.header("remote-user"), None);
    let r = verify("/public/x");
    assert_eq!(r.status, 200, "bypass needs no session: {}", r.body);
    assert_eq!(r.header("remote-user").unwrap_or(""), "", "anonymous");
    // Without a readable session nobody is in `admins`: the deny rule answers.
    let r = verify("/admin");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("\"forbidden\""), "{}", r.body);
}

#[test]
fn redis_store_conformance() {
    let redis = Redis::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = portcullis::store::redis::RedisStore::new(&redis.url(), "conf:").unwrap();
        portcullis::store::conformance(&store, tokio::time::sleep).await;
    });
}
