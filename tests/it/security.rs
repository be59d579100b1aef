//! The holes of the security review (issue #8), each tried as an attacker
//! would, with its variants: forward-auth through the real nginx with the
//! README's snippet, forged facts sent straight to `/verify`, client-chosen
//! addresses, identity and cookies that must not reach the application.

use std::time::{Duration, Instant};

use crate::harness::*;

/// The README's nginx block with this test's ports, taken from the README itself.
fn readme_nginx(nginx_port: u16, gateway_port: u16, app_port: u16) -> String {
    readme_block("nginx")
        .replace("listen 80;", &format!("listen 127.0.0.1:{nginx_port};"))
        .replace(
            "listen 80 default_server;",
            &format!("listen 127.0.0.1:{nginx_port} default_server;"),
        )
        .replace("server_name app.example.com;", "server_name app.test;")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{gateway_port}"))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{app_port}"))
}

pub struct Nginx {
    pub port: u16,
    _p: Proc,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(gateway_port: u16, app_port: u16) -> Nginx {
        let bin = installed(
            &["/usr/sbin/nginx", "/usr/local/sbin/nginx"],
            "scripts/test.sh installs nginx-light",
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = format!(
            "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n{}\n}}\n",
            readme_nginx(port, gateway_port, app_port),
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = std::process::Command::new(bin)
            .args([
                "-p",
                dir.path().to_str().unwrap(),
                "-c",
                dir.path().join("nginx.conf").to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut p = Proc(child);
        wait_listening(&mut p, port, "nginx", None);
        Nginx {
            port,
            _p: p,
            _dir: dir,
        }
    }

    /// A raw request to nginx: request line target, Host value, extra header lines.
    pub fn send(&self, method: &str, target: &str, host: &str, headers: &[&str]) -> Resp {
        self.try_send(method, target, host, headers).unwrap()
    }

    /// [`send`](Self::send), `Err` when nginx closed the connection without an answer.
    pub fn try_send(
        &self,
        method: &str,
        target: &str,
        host: &str,
        headers: &[&str],
    ) -> std::io::Result<Resp> {
        raw_request(self.port, method, target, host, headers, None)
    }
}

fn behind_nginx(b: Backend, extra: &str) -> (Gateway, Nginx, Upstream) {
    let app = Upstream::start();
    let g = Gateway::start(
        b,
        Options {
            upstream_port: Some(app.port),
            extra: format!("#server\ntrusted_proxies = [\"127.0.0.1/32\"]\n#end\n{extra}"),
            // Another site, wide open: its rules must never judge app.test's requests.
            rules: format!(
                "[[rule]]\nhost = \"other.test\"\npath = \"/\"\npolicy = \"bypass\"\n{DEFAULT_RULES}"
            ),
            ..Default::default()
        },
    );
    let n = Nginx::start(g.port, app.port);
    (g, n, app)
}

/// An answer that let the request through to the application.
fn reached_app(r: &Resp) -> bool {
    r.status == 200 && r.body.contains("\"headers\"")
}

crate::scenarios::both!(
    forward_auth_through_nginx_decides_on_the_real_request,
    |b| {
        let (g, n, _app) = behind_nginx(b, "");
        let host = format!("app.test:{}", n.port);
        // The baseline: the bypass works, /admin doesn't.
        assert!(reached_app(&n.send("GET", "/public/x", &host, &[])));
        let r = n.send("GET", "/admin", &host, &[]);
        assert_eq!(r.status, 403, "{}", r.body);
        let r = n.send("GET", "/private", &host, &[]);
        assert_eq!(r.status, 302, "{}", r.body);
        // The review's Host tricks (a bypass path smuggled through Host) and their variants.
        for evil_host in [
            "app.test:\\public?".to_string(),
            format!("app.test:{}\\public?", n.port),
            "app.test:\\public#".to_string(),
            "other.test:@app.test".to_string(),
            format!("other.test:@app.test:{}", n.port),
            "app.test:@other.test".to_string(),
            "app.test/public/?".to_string(),
            "app.test:/public/".to_string(),
        ] {
            for target in ["/admin", "/admin/x?y=1", "/private"] {
                // nginx may close the connection (its default server) or answer; never the app.
                let Ok(r) = n.try_send("GET", target, &evil_host, &[]) else {
                    continue;
                };
                assert!(
                    !reached_app(&r),
                    "Host {evil_host:?} {target}: reached the app: {} {}",
                    r.status,
                    r.body
                );
            }
        }
        // Paths that read differently to different parsers, and forged facts from the client.
        for (target, headers) in [
            ("/public/../admin", vec![]),
            ("/public/%2e%2e/admin", vec![]),
            ("/public/%2E%2E/admin", vec![]),
            ("/public/..%2fadmin", vec![]),
            ("/public/..%5cadmin", vec![]),
            ("/public/..;/admin", vec![]),
            ("//admin", vec![]),
            ("/admin#/public/", vec![]),
            ("/admin?/public/", vec![]),
            ("http://app.test/admin", vec![]),
            ("/admin", vec!["X-Original-URI: /public/x"]),
            ("/admin", vec!["X-Forwarded-Uri: /public/x"]),
            ("/admin", vec!["X-Original-URL: http://app.test/public/x"]),
            ("/admin", vec!["X_Original_URI: /public/x"]),
            ("/admin", vec!["X-Forwarded-Host: other.test"]),
            ("/admin", vec!["X-Forwarded-Method: GET"]),
        ] {
            let r = n.send("GET", target, &host, &headers);
            assert!(
                !reached_app(&r),
                "{target} {headers:?}: reached the app: {} {}",
                r.status,
                r.body
            );
        }
        // A GET-only bypass admits neither a POST nor a DELETE, whatever the client claims.
        assert!(reached_app(&n.send("GET", "/readonly/x", &host, &[])));
        for (m, h) in [
            ("POST", vec![]),
            ("DELETE", vec![]),
            ("POST", vec!["X-Original-Method: GET"]),
            ("POST", vec!["X-HTTP-Method-Override: GET"]),
        ] {
            let r = n.send(m, "/readonly/x", &host, &h);
            assert!(!reached_app(&r), "{m} {h:?}: {} {}", r.status, r.body);
        }
        // A network-scoped bypass can't be claimed with a forged client address.
        for xff in [
            "X-Forwarded-For: 10.1.2.3",
            "X-Real-IP: 10.1.2.3",
            "Forwarded: for=10.1.2.3",
        ] {
            let r = n.send("GET", "/lan/x", &host, &[xff]);
            assert!(!reached_app(&r), "{xff}: {} {}", r.status, r.body);
        }
        // Signed in, the identity still comes from the gateway only.
        let bob = format!("Cookie: {}", g.login("bob"));
        let r = n.send("GET", "/docs", &host, &[&bob, "Remote-User: alice"]);
        assert!(reached_app(&r), "{} {}", r.status, r.body);
        assert_eq!(r.echo()["headers"]["remote-user"], "bob");
        assert_eq!(n.send("GET", "/admin", &host, &[&bob]).status, 403);
        // Every refusal above was explained in the gateway's log.
        let log = g.log();
        assert!(log.contains("forward-auth request refused"), "{log}");
    }
);

crate::scenarios::both!(client_addresses_come_from_nginx_not_the_client, |b| {
    let (g, n, _app) = behind_nginx(b, "[defense]\nip_per_minute = 5\ncaptcha_after = 1000\nlock_after = 1000\nspray_per_minute = 0\n");
    let host = format!("app.test:{}", n.port);
    // Rotating X-Forwarded-For doesn't buy fresh sign-in attempts: after 5, 429.
    let mut statuses = Vec::new();
    for i in 0..8 {
        let page = n.send("GET", "/_auth/login", &host, &["Accept: text/html"]);
        let pre = page.cookie("portcullis_pre").unwrap();
        let body = form(&[
            ("csrf", &page.csrf()),
            ("identifier", "alice"),
            ("password", "wrong password"),
        ]);
        let raw = format!(
            "POST /_auth/login HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nCookie: {pre}\r\n\
             X-Forwarded-For: 198.51.100.{i}\r\nX-Real-IP: 198.51.100.{i}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        statuses.push(try_request(n.port, &raw).unwrap().status);
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // And the audit log names the real client, never a forged one.
    let log = g.log();
    assert!(!log.contains("198.51.100."), "{log}");
    assert!(log.contains("\"client\":\"127.0.0.1\""), "{log}");
});

crate::scenarios::both!(verify_refuses_what_it_cannot_trust, |b| {
    let g = Gateway::start(
        b,
        Options {
            extra: "#server\ntrusted_proxies = [\"127.0.0.1/32\"]\n#end\n".into(),
            ..Default::default()
        },
    );
    let alice = format!("Cookie: {}", g.login("alice"));
    let ok = [
        "X-Original-URI: /public/x",
        "X-Original-Method: GET",
        "X-Forwarded-Host: app.test",
    ];
    assert_eq!(g.get("/_auth/verify", &ok).status, 200);
    // Any missing, malformed or conflicting fact: 400 (nginx turns it into a 500),
    // never a decision; signed in or not.
    let cases: Vec<Vec<&str>> = vec![
        vec!["X-Original-URI: /public/x", "X-Forwarded-Host: app.test"],
        vec!["X-Original-Method: GET", "X-Forwarded-Host: app.test"],
        vec!["X-Original-URI: /public/x", "X-Original-Method: GET"],
        vec![
            "X-Original-URI: /public/x",
            "X-Original-Method: GET",
            "X-Forwarded-Host: app.test:\\public?",
        ],
        vec![
            "X-Original-URI: /public/x",
            "X-Original-Method: GET",
            "X-Forwarded-Host: other.test:@app.test",
        ],
        vec![
            "X-Original-URI: /public/x",
            "X-Original-Method: GET",
            "X-Forwarded-Host: app.test:",
        ],
        vec![
            "X-Original-URI: /public/x",
            "X-Original-Method: GET",
            "X-Forwarded-Host: app.test:http",
        ],
        vec![
            "X-Original-URI: /public/x#y",
            "X-Original-Method: GET",
            "X-Forwarded-Host: app.test",
        ],
        vec![
            "X-Original-URI: /public\\..\\admin",
            "X-Original-Method: GET",
            "X-Forwarded-Host: app.test",
        ],
        vec![
            "X-Original-URI: /public/..%2fadmin",
            "X-Original-Method: GET",
            "X-Forwarded-Host: app.test",
        ],
        vec![
            "X-Original-URI: public/x",
            "X-Original-Method: GET",
            "X-Forwarded-Host: app.test",
        ],
        vec![
            "X-Original-URI: /public/x",
            "X-Forwarded-Uri: /admin",
            "X-Original-Method: GET",
            "X-Forwarded-Host: app.test",
        ],
        vec![
            "X-Original-URI: /public/x",
            "X-Original-Method: GET",
            "X-Forwarded-Method: POST",
            "X-Forwarded-Host: app.test",
        ],
        vec![
            "X-Original-URI: /public/x",
            "X-Original-Method: GET",
            "X-Forwarded-Host: app.test",
            "X-Forwarded-Host: other.test",
        ],
        vec![
            "X-Original-URL: https://other.test:@app.test/public/x",
            "X-Original-Method: GET",
        ],
        vec![
            "X-Original-URL: https://app.test:\\public?/admin",
            "X-Original-Method: GET",
        ],
        vec![
            "X-Original-URL: https://app.test/public/x",
            "X-Original-Method: get",
        ],
    ];
    for facts in &cases {
        for cookie in [None, Some(alice.as_str())] {
            let mut h = facts.clone();
            h.extend(cookie);
            let r = g.get("/_auth/verify", &h);
            assert_eq!(r.status, 400, "{facts:?}: {}", r.body);
            assert!(r.body.contains("bad_forward_auth_request"), "{}", r.body);
            assert_eq!(r.header("remote-user"), None);
        }
    }
    // A host that isn't a site of this gateway: refused, not judged by the default policy.
    let r = g.get(
        "/_auth/verify",
        &[
            "X-Original-URI: /public/x",
            "X-Original-Method: GET",
            "X-Forwarded-Host: elsewhere.test",
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("unknown_site"));
    // The method decides: the GET-only bypass doesn't answer a POST or a DELETE.
    for m in ["POST", "DELETE", "PUT"] {
        let r = g.get(
            "/_auth/verify",
            &[
                "X-Original-URI: /readonly/x",
                &format!("X-Original-Method: {m}"),
                "X-Forwarded-Host: app.test",
            ],
        );
        assert_eq!(r.status, 401, "{m}: {}", r.body);
    }
    // The path is normalised exactly as for proxied requests.
    for (uri, status) in [
        ("/public/../admin", 403),
        ("/public/%2e%2e/admin", 403),
        ("/public/../private", 401),
        ("/PUBLIC/x", 401),
        ("/publicity", 401),
        ("/public//x", 200),
        ("/public/./x?a=b", 200),
    ] {
        let r = g.get(
            "/_auth/verify",
            &[
                &format!("X-Original-URI: {uri}"),
                "X-Original-Method: GET",
                "X-Forwarded-Host: app.test",
            ],
        );
        assert_eq!(r.status, status, "{uri}: {}", r.body);
    }
});

const CAPTCHA_TEXT: &str = "Please type the characters";

/// Issue #8.5: simultaneous attempts can't all slip under the thresholds.
async fn burst_races(b: Backend) {
    // The CAPTCHA threshold: of 16 simultaneous wrong attempts without a CAPTCHA
    // answer, only the first `captcha_after` (2) are judged on the password.
    let e = env(
        b,
        "[defense]\ncaptcha_after = 2\nlock_after = 100\nip_per_minute = 100000\nspray_per_minute = 0\n",
    );
    let mut browsers = Vec::new();
    for i in 0..16 {
        let mut br = Browser::new(&e, &format!("198.51.100.{i}"));
        let page = br.send("GET", "/login", "").await;
        browsers.push((br, page));
    }
    let answers = futures::future::join_all(
        browsers
            .iter_mut()
            .map(|(br, page)| br.submit(page, "alice", "wrong password", None)),
    )
    .await;
    let judged = answers
        .iter()
        .filter(|p| !p.body.contains(CAPTCHA_TEXT))
        .count();
    assert!(answers.iter().all(|p| p.status == 401));
    assert!(judged <= 2, "{judged} attempts skipped the CAPTCHA");

    // The lock threshold: 3 failures, then 12 simultaneous attempts with the *right*
    // password. At most one is judged before the lock; none signs in once it's set.
    let e = env(
        b,
        "[defense]\ncaptcha_after = 100\nlock_after = 4\nip_per_minute = 100000\nspray_per_minute = 0\n",
    );
    let mut first = Browser::new(&e, "192.0.2.1");
    for _ in 0..3 {
        assert_eq!(
            first.sign_in("bob", "wrong password", None).await.status,
            401
        );
    }
    let mut browsers = Vec::new();
    for i in 0..12 {
        let mut br = Browser::new(&e, &format!("203.0.113.{i}"));
        let page = br.send("GET", "/login", "").await;
        browsers.push((br, page));
    }
    let answers = futures::future::join_all(
        browsers
            .iter_mut()
            .map(|(br, page)| br.submit(page, "bob", PASSWORD, None)),
    )
    .await;
    let signed_in = answers.iter().filter(|p| p.status == 303).count();
    assert!(signed_in <= 1, "{signed_in} signed in during the burst");
    assert!(
        standing(&e, "bob").await.locked_for.is_some(),
        "the burst locked the account"
    );
}

both_async!(concurrent_attempts_cannot_race_the_thresholds, burst_races);

/// Issue #8.11: an identifier that is no account behaves like one that is.
async fn unknown_like_known(b: Backend) {
    let e = env(
        b,
        "[defense]\ncaptcha_after = 2\nlock_after = 4\nip_per_minute = 100000\nspray_per_minute = 0\n",
    );
    let mut answers = Vec::new();
    for id in ["bob", "nobody", "nobody@example.com", "+14155550000"] {
        // Two failures from one client...
        let mut a = Browser::new(&e, "198.51.100.1");
        for _ in 0..2 {
            assert_eq!(a.sign_in(id, "wrong password", None).await.status, 401);
        }
        // ...and a fresh client is asked for a CAPTCHA for this identifier alike.
        let mut fresh = Browser::new(&e, &format!("203.0.113.{}", answers.len()));
        let p = fresh.sign_in(id, "wrong password", None).await;
        assert!(p.body.contains(CAPTCHA_TEXT), "{id}: no CAPTCHA asked");
        // Locked after lock_after failures: the same answer as for a wrong password.
        let mut c = Browser::new(&e, &format!("192.0.2.{}", answers.len()));
        let mut last = c.sign_in(id, "wrong password", Some(true)).await;
        for _ in 0..3 {
            last = c.submit(&last, id, "wrong password", Some(true)).await;
        }
        let locked = c.submit(&last, id, PASSWORD, Some(true)).await;
        answers.push((id, locked.status, locked.error()));
    }
    let first = (answers[0].1, answers[0].2.clone());
    for (id, status, error) in &answers {
        assert_eq!((*status, error.clone()), first, "{id} answered differently");
    }
    assert_eq!(first.0, 401);
}

both_async!(unknown_identifiers_answer_like_accounts, unknown_like_known);

async fn reset_codes_sent(e: &Env) -> Vec<String> {
    e.outbox()
        .await
        .into_iter()
        .filter(|m| m["kind"] == "reset_code")
        .map(|m| {
            let t = m["text"].as_str().unwrap().to_string();
            t.split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Issue #8.6: one live reset code per account, a send limit per account, tries
/// capped per account, and the code dies with its use.
async fn reset_limits(b: Backend) {
    let calm = "[defense]\ncaptcha_after = 100\nlock_after = 100\nip_per_minute = 100000\nspray_per_minute = 0\n[otp]\nsend_limit = 3\nmax_attempts = 3\n";
    let e = env(b, calm);
    let ask = |ip: String| {
        let e = &e;
        async move {
            let mut v = Browser::new(e, &ip);
            let p = v.send("GET", "/reset", "").await;
            let csrf = p.field("csrf").unwrap();
            let r = v
                .send(
                    "POST",
                    "/reset",
                    &form(&[
                        ("csrf", &csrf),
                        ("step", "request"),
                        ("identifier", "alice"),
                    ]),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            // Messages go out in the background: wait, so codes are listed in order.
            e.app.outgoing_settled().await;
            (v, csrf)
        }
    };
    let confirm = |csrf: &str, code: &str| {
        form(&[
            ("csrf", csrf),
            ("step", "confirm"),
            ("code", code),
            ("password", "brand new password"),
            ("confirm", "brand new password"),
        ])
    };
    // Six fresh visitors ask for alice: only `send_limit` (3) codes go out.
    let mut visitors = Vec::new();
    for i in 0..6 {
        visitors.push(ask(format!("198.51.100.{i}")).await);
    }
    let sent = reset_codes_sent(&e).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    // The first two were voided by the newer ones.
    for (i, code) in sent.iter().enumerate().take(2) {
        let (v, csrf) = &mut visitors[i];
        let r = v.send("POST", "/reset", &confirm(csrf, code)).await;
        assert_eq!(r.status, 400, "visitor {i}'s voided code: {}", r.body);
    }
    // The newest works, once, for the browser that asked for it only.
    let (other, other_csrf) = &mut visitors[5];
    let r = other
        .send("POST", "/reset", &confirm(other_csrf, &sent[2]))
        .await;
    assert_eq!(r.status, 400, "another browser can't use it");
    let (v, csrf) = &mut visitors[2];
    let r = v.send("POST", "/reset", &confirm(csrf, &sent[2])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = v.send("POST", "/reset", &confirm(csrf, &sent[2])).await;
    assert_eq!(r.status, 400, "used once");

    // Tries are capped per account: after max_attempts (3) wrong tries the code is void.
    let e = env(b, calm);
    let (mut v, csrf) = {
        let mut v = Browser::new(&e, "192.0.2.5");
        let p = v.send("GET", "/reset", "").await;
        let csrf = p.field("csrf").unwrap();
        v.send(
            "POST",
            "/reset",
            &form(&[("csrf", &csrf), ("step", "request"), ("identifier", "bob")]),
        )
        .await;
        (v, csrf)
    };
    let code = reset_codes_sent(&e).await.pop().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        assert_eq!(
            v.send("POST", "/reset", &confirm(&csrf, wrong))
                .await
                .status,
            401
        );
    }
    assert_eq!(
        v.send("POST", "/reset", &confirm(&csrf, &code))
            .await
            .status,
        400,
        "the right code after the tries ran out"
    );
    assert_eq!(v.sign_in("bob", PASSWORD, None).await.status, 303);
}

both_async!(reset_codes_are_limited_per_account, reset_limits);

/// Issue #8.7, #8.9, #8.10: what reaches the application.
fn what_reaches_the_app(b: Backend) {
    let g = Gateway::start(
        b,
        Options {
            extra: "[otp]\nrequire = \"required\"\n".into(),
            ..Default::default()
        },
    );
    // Identity-like, address-like and method-override headers from the client, in
    // several spellings: none reaches the app (the gateway sets its own X-Forwarded-*).
    let spoofs = [
        "X-Forwarded-User: admin",
        "X-Forwarded-Email: admin@example.com",
        "X-Forwarded-Groups: admins",
        "X-Forwarded-Preferred-Username: admin",
        "X_Forwarded_User: admin",
        "X-Remote-User: admin",
        "x-remote-email: admin@example.com",
        "X-Auth-Request-User: admin",
        "X-Auth-Request-Email: admin@example.com",
        "X-WEBAUTH-USER: admin",
        "Remote-User: admin",
        "remote_user: admin",
        "REMOTE-GROUPS: admins",
        "X-Portcullis-Assertion: forged",
        "X-Real-IP: 10.0.0.1",
        "True-Client-IP: 10.0.0.1",
        "Forwarded: for=10.0.0.1",
        "X-Forwarded-For: 10.0.0.1",
        "X-Forwarded-Host: evil.test",
        "X-HTTP-Method-Override: DELETE",
        "X-Method-Override: DELETE",
        "X_HTTP_Method: DELETE",
        "X-Original-URL: /admin",
        "Transfer_Encoding: chunked",
        "Content_Length: 0",
        "X-Ms-Client-Principal-Name: admin",
        "X-Goog-Authenticated-User-Email: admin@example.com",
        "OIDC_CLAIM_email: admin@example.com",
        // httpoxy: a CGI application's `HTTP_PROXY`.
        "Proxy: http://10.9.9.9:3128",
    ];
    let r = g.get("/public/x", &spoofs);
    let echo = r.echo();
    let headers = echo["headers"].as_object().unwrap();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase().replace('_', "-");
        assert!(
            !(app_trusted_header(&k) || k == "transfer-encoding" || k == "content-length"),
            "{k}: {v} reached the app"
        );
    }
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-host"], "app.test");
    assert_eq!(echo["method"], "GET");

    // A sign-in still waiting for its second step (here: required enrolment) passes
    // `bypass` rules anonymously: no identity goes out.
    let pending = g.login("alice");
    let r = g.get("/public/x", &[&format!("Cookie: {pending}")]);
    let echo = r.echo();
    assert!(
        echo["headers"].get("remote-user").is_none(),
        "identity of a half-finished sign-in: {echo}"
    );
    // ...and no further than bypass rules.
    let r = g.get("/docs", &[&format!("Cookie: {pending}")]);
    assert_ne!(r.status, 200);

    // The gateway's own cookies (any of them, any letter case) never reach the app;
    // the app's own cookies do, untouched.
    let g = Gateway::start(b, Options::default());
    let session = g.login("bob");
    let cookie = format!(
        "Cookie: app_session=abc; {session}; portcullis_pre=x; Portcullis_Dev=bob|1; portcullis_2fa=y; theme=dark"
    );
    let r = g.get("/docs", &[&cookie]);
    let echo = r.echo();
    assert_eq!(echo["headers"]["remote-user"], "bob");
    assert_eq!(echo["headers"]["cookie"], "app_session=abc; theme=dark");
    // An application's cookie that isn't ASCII goes on unchanged and doesn't hide the
    // session beside it (such a header used to be dropped whole). An own name padded
    // with Unicode blanks, which the cookie parser trims, never goes on (review).
    let cookie = format!("Cookie: name=Zoë; {session}; \u{a0}portcullis_2fa=y; theme=dark");
    let r = g.get("/docs", &[&cookie]);
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.echo();
    assert_eq!(echo["headers"]["remote-user"], "bob");
    assert_eq!(echo["headers"]["cookie"], "name=Zoë; theme=dark");
    let r = g.get("/public/x", &[&format!("Cookie: \u{2003}{session}")]);
    let echo = r.echo();
    assert!(echo["headers"].get("cookie").is_none(), "{echo}");

    // Signed in, but not an admin: no spelling of the target reaches /admin (found by
    // the attack pass: a target without its leading slash was judged as `/`, and a
    // segment that is only a parameter hid the path from Tomcat-style matching).
    let raw = |target: &str| {
        g.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: app.test\r\nCookie: {session}\r\nConnection: close\r\n\r\n"
        ))
    };
    for target in [
        "admin",
        "x/../admin",
        "sec/../admin",
        "*",
        "/;/admin",
        "/;x/admin",
        "/;a/;b/admin/x",
    ] {
        let r = raw(target);
        assert!(
            r.status == 400 || r.status == 403,
            "{target}: {} {}",
            r.status,
            r.body
        );
    }
    // A whole URL is judged by its path and goes on as that path.
    let r = raw("http://app.test/docs/x?y=1");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.echo()["path"], "/docs/x?y=1", "{}", r.body);
    assert_eq!(raw("http://app.test/admin").status, 403);
}

crate::scenarios::both!(
    only_what_the_gateway_vouches_for_reaches_the_app,
    what_reaches_the_app
);

/// Hop-by-hop fields (RFC 9110 §7.6.1) never reach the application, whether the
/// gateway removes them itself (only `Connection: keep-alive`/`close`, the usual
/// request, issue #11) or leaves the head to Pingora's standard pass (anything else,
/// including fields that `Connection` names).
#[test]
fn hop_by_hop_fields_stay_on_their_hop() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let session = cookie_hdr(&g.login("bob"));
    let hop = |r: &Resp| -> Vec<String> {
        let echo = r.echo();
        echo["headers"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| {
                // (`_` spellings too: CGI and WSGI read them as the field.)
                matches!(
                    k.to_ascii_lowercase().replace('_', "-").as_str(),
                    "connection"
                        | "keep-alive"
                        | "proxy-connection"
                        | "proxy-authorization"
                        | "te"
                        | "trailer"
                        | "upgrade"
                        | "http2-settings"
                        | "x-secret-hop"
                        | "close"
                )
            })
            .cloned()
            .collect()
    };
    // The harness sends `Connection: close`; here also `Keep-Alive` in every case.
    for extra in [
        &[][..],
        &["Connection: keep-alive"][..],
        &["Connection: Keep-Alive, , CLOSE"][..],
        &["Connection: close, X-Secret-Hop", "X-Secret-Hop: 1"][..],
        &["Connection: X-Secret-Hop", "X-Secret-Hop: 1"][..],
        &["Close: x"][..],
        // An `Upgrade` that `Connection` doesn't name is no handshake (attack pass).
        &[
            "Upgrade: websocket",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ][..],
        &["Keep-Alive: timeout=5"][..],
        &["Proxy-Authorization: Basic Ym9iOmh1bnRlcjI="][..],
        &["Proxy-Connection: keep-alive"][..],
        &["TE: trailers"][..],
        &["Trailer: X-Checksum"][..],
        &["Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__"][..],
        // `_` spellings (attack pass: they reached the application).
        &[
            "Proxy_Authorization: Basic Ym9iOmh1bnRlcjI=",
            "Keep_Alive: 5",
            "Proxy_Connection: x",
            "HTTP2_Settings: x",
        ][..],
    ] {
        let mut headers = extra.to_vec();
        headers.push(&session);
        let r = g.get("/docs", &headers);
        assert_eq!(r.status, 200, "{extra:?}: {}", r.body);
        assert!(
            hop(&r).is_empty(),
            "{extra:?}: {:?} reached the app",
            hop(&r)
        );
        assert_eq!(r.echo()["headers"]["remote-user"], "bob", "{extra:?}");
        // Anonymous, on a bypass rule, the same.
        let r = g.get("/public/x", extra);
        assert_eq!(r.status, 200, "{extra:?}: {}", r.body);
        assert!(
            hop(&r).is_empty(),
            "{extra:?}: {:?} reached the app",
            hop(&r)
        );
    }
    // A `Connection` naming a field the gateway sets is refused, not obeyed.
    let r = g.get("/public/x", &["Connection: X-Forwarded-For"]);
    assert_eq!(r.status, 400, "{}", r.body);
    // A request with a body goes with `Connection: close`, so it is no upgrade: its
    // `Upgrade` and WebSocket key stay behind (attack pass: a POST's pair went on).
    let r = g.req(
        "POST",
        crate::harness::HOST,
        "/docs",
        &[
            &session,
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ],
        Some("a=1"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.echo();
    let sent = echo["headers"].as_object().unwrap();
    assert!(!sent.contains_key("upgrade"), "{sent:?}");
    assert!(!sent.contains_key("sec-websocket-key"), "{sent:?}");
    assert_eq!(echo["headers"]["connection"], "close", "{sent:?}");
    assert_eq!(echo["headers"]["remote-user"], "bob");
}

/// An IPv4 client of a dual-stack listener (`listen = "[::]:…"`, where it arrives as
/// `::ffff:127.0.0.1`) is judged by its IPv4 address: a rule's IPv4 network matches it,
/// and `X-Forwarded-For` names it as IPv4 (found in review: a deny-by-network rule
/// failed open, an allow-by-network rule closed).
#[test]
fn an_ipv4_client_of_a_dual_stack_listener_is_seen_as_ipv4() {
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only")
            .unwrap_or_default()
            .trim(),
        "0",
        "this test needs dual-stack sockets (net.ipv6.bindv6only = 0)"
    );
    let rules = format!(
        "[[rule]]\npath = \"/local/\"\nnetworks = [\"127.0.0.0/8\"]\npolicy = \"bypass\"\n\n\
         [[rule]]\npath = \"/blocked/\"\nnetworks = [\"127.0.0.0/8\"]\npolicy = \"deny\"\n{}",
        crate::harness::DEFAULT_RULES
    );
    let mut g = Gateway::start(
        Backend::Memory,
        Options {
            rules,
            ..Default::default()
        },
    );
    drop(g.proc.take());
    let cfg = std::fs::read_to_string(&g.config).unwrap();
    let v4 = format!("listen = \"127.0.0.1:{}\"", g.port);
    assert!(cfg.contains(&v4), "{cfg}");
    let dual = cfg.replace(&v4, &format!("listen = \"[::]:{}\"", g.port));
    std::fs::write(&g.config, dual).unwrap();
    g.spawn();
    let r = g.get("/local/x", &[]);
    assert_eq!(r.status, 200, "the IPv4 network matches: {}", r.body);
    assert_eq!(r.echo()["headers"]["x-forwarded-for"], "127.0.0.1");
    let bob = g.login("bob");
    let r = g.get("/blocked/x", &[&format!("Cookie: {bob}")]);
    assert_eq!(r.status, 403, "deny by network holds: {}", r.body);
}

/// A gateway in front of an application that answers one request with `answer`
/// (raw bytes), and the response to `GET path` through it.
fn one_answer(path: &str, answer: &'static [u8]) -> (Gateway, Resp) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut b = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap() == 1 {
            buf.push(b[0]);
        }
        s.write_all(answer).unwrap();
    });
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(port),
            ..Default::default()
        },
    );
    let r = g.get(path, &[]);
    app.join().unwrap();
    (g, r)
}

/// An application's answer can't set or clear the gateway's cookies (found by the
/// attack pass of session 7: a planted `portcullis` cookie would swap the person's
/// session for one of the planter's choosing); its own cookies reach the browser.
#[test]
fn an_application_cannot_set_the_gateways_cookies() {
    let (_g, r) = one_answer(
        "/public/x",
        b"HTTP/1.1 200 OK\r\nSet-Cookie: theme=dark; Path=/\r\n\
              Set-Cookie: portcullis=planted; Path=/; HttpOnly\r\n\
              Set-Cookie: PORTCULLIS_dev=x\r\nSet-Cookie: sid=abc\r\n\
              Set-Cookie:  portcullis_2fa = y ; Max-Age=0\r\n\
              Content-Length: 2\r\nConnection: close\r\n\r\nok",
    );
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let set: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(set, ["theme=dark; Path=/", "sid=abc"]);
}

/// A broken upstream answer is logged without its bytes (found by the attack pass of
/// session 7: the whole head, `Set-Cookie` values included, went to the log at WARN
/// and at Pingora's ERROR).
#[test]
fn a_broken_upstream_answer_is_logged_without_its_bytes() {
    let (g, r) = one_answer(
        "/public/x",
        b"HTTP/1.1 200 OK\r\nSet-Cookie: appsession=APPSECRET123; HttpOnly\r\n\
              X-Bad: a\x01b\r\nContent-Length: 2\r\n\r\nok",
    );
    assert_eq!(r.status, 502, "{}", r.body);
    let log = g.log();
    assert!(log.contains("proxy failure"), "{log}");
    assert!(!log.contains("APPSECRET123"), "{log}");
}

/// Issue #8.14: CAPTCHA challenges (store entries) per client are bounded.
#[test]
fn challenge_creation_is_bounded_per_client() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: "[defense]\ncaptcha_after = 0\nip_per_minute = 5\n".into(),
            ..Default::default()
        },
    );
    // captcha_after = 0: every sign-in page carries a challenge; 5 attempts a
    // minute allow 20 challenges, then 429 with Retry-After.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let r = g.get("/_auth/login", &["Accept: text/html"]);
        statuses.push(r.status);
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        20,
        "{statuses:?}"
    );
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
}

/// Found by the outside attack on this change: the current password on the
/// password-change page is a guess like any other — reserved, refused while locked.
async fn password_change_guesses(b: Backend) {
    let e = env(
        b,
        "[defense]\ncaptcha_after = 100\nlock_after = 4\nip_per_minute = 100000\nspray_per_minute = 0\n",
    );
    let mut owner = Browser::new(&e, "192.0.2.30");
    assert_eq!(owner.sign_in("bob", PASSWORD, None).await.status, 303);
    let page = owner.send("GET", "/password", "").await;
    let csrf = page.field("csrf").unwrap();
    let change = |current: &str| {
        form(&[
            ("csrf", &csrf),
            ("current", current),
            ("password", "a whole new password"),
            ("confirm", "a whole new password"),
        ])
    };
    // A burst of wrong guesses with a stolen session: at most lock_after are judged.
    let wrong = change("guess");
    let mut tabs: Vec<Browser> = (0..12)
        .map(|i| {
            let mut t = Browser::new(&e, &format!("203.0.113.{i}"));
            t.jar = owner.jar.clone();
            t.jar.remove("portcullis_dev");
            t
        })
        .collect();
    let answers =
        futures::future::join_all(tabs.iter_mut().map(|t| t.send("POST", "/password", &wrong)))
            .await;
    let judged = answers
        .iter()
        .filter(|p| p.error().contains("current password is not right"))
        .count();
    assert!(judged <= 4, "{judged} guesses judged");
    assert!(standing(&e, "bob").await.locked_for.is_some());
    // Locked: even the right current password changes nothing.
    let r = tabs[0].send("POST", "/password", &change(PASSWORD)).await;
    assert_eq!(r.status, 429, "{}", r.error());
    assert!(
        portcullis::auth::password::verify_now(
            PASSWORD,
            &e.app.accounts.get("bob").await.unwrap().unwrap().password
        ),
        "the password was changed while locked"
    );
}

both_async!(
    password_change_guesses_are_on_the_ladder,
    password_change_guesses
);

/// Two gateways on one Redis, sharing keys and accounts as a deployment does.
fn two_gateways(extra: &str) -> (Redis, Gateway, Gateway) {
    let redis = Redis::start();
    let opts = || Options {
        redis_url: Some(redis.url()),
        extra: extra.to_string(),
        ..Options::default()
    };
    let g1 = Gateway::start(Backend::Redis, opts());
    let mut g2 = Gateway::start(Backend::Redis, opts());
    g2.proc = None;
    for f in ["secrets/cookie.key", "secrets/data.key", "users.toml"] {
        std::fs::copy(g1.dir.path().join(f), g2.dir.path().join(f)).unwrap();
    }
    g2.spawn();
    (redis, g1, g2)
}

/// Issue #8.5 and #8.6 across two gateways on one Redis: a burst split between
/// them can't race the lock, and an account still has one live reset code.
#[test]
fn two_gateways_share_the_ladder_and_the_reset_code() {
    let (_redis, g1, g2) = two_gateways(
        "[defense]\ncaptcha_after = 100\nlock_after = 4\nip_per_minute = 100000\nspray_per_minute = 0\n",
    );
    // Three failures, alternating gateways.
    for g in [&g1, &g2, &g1] {
        assert_eq!(g.post_login("bob", "wrong password", "/").status, 401);
    }
    // Twelve simultaneous right passwords, six on each gateway: at most one signs in,
    // and the account ends locked on both.
    let forms: Vec<(&Gateway, (String, String))> = (0..12)
        .map(|i| {
            let g = if i % 2 == 0 { &g1 } else { &g2 };
            (g, g.login_form())
        })
        .collect();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = forms
            .iter()
            .map(|(g, (pre, csrf))| {
                s.spawn(move || {
                    g.submit_login(
                        pre,
                        &[
                            ("csrf", csrf),
                            ("identifier", "bob"),
                            ("password", PASSWORD),
                            ("rd", "/"),
                        ],
                        &["Accept: text/html"],
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let signed_in = statuses.iter().filter(|s| **s == 303).count();
    assert!(signed_in <= 1, "{statuses:?}");
    for g in [&g1, &g2] {
        assert_eq!(
            g.post_login("bob", PASSWORD, "/").status,
            401,
            "locked everywhere"
        );
    }

    // Reset: a code asked for on g1 is voided by a newer one asked for on g2.
    let ask = |g: &Gateway| {
        let page = g.get("/_auth/reset", &["Accept: text/html"]);
        let pre = page.cookie("portcullis_pre").unwrap();
        let csrf = page.csrf();
        let r = g.req(
            "POST",
            HOST,
            "/_auth/reset",
            &[&format!("Cookie: {pre}"), "Accept: text/html"],
            Some(&form(&[
                ("csrf", &csrf),
                ("step", "request"),
                ("identifier", "alice"),
            ])),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        (pre, csrf)
    };
    let code_sent = |g: &Gateway, n: usize| -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let msgs: Vec<String> = std::fs::read_to_string(g.dir.path().join("outbox.jsonl"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("reset_code"))
                .map(str::to_string)
                .collect();
            if msgs.len() >= n {
                let m: serde_json::Value = serde_json::from_str(&msgs[n - 1]).unwrap();
                let t = m["text"].as_str().unwrap();
                return t
                    .split(|c: char| !c.is_ascii_digit())
                    .find(|w| w.len() == 6)
                    .unwrap()
                    .to_string();
            }
            assert!(Instant::now() < deadline, "no reset code sent");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let confirm = |g: &Gateway, (pre, csrf): &(String, String), code: &str| {
        g.req(
            "POST",
            HOST,
            "/_auth/reset",
            &[&format!("Cookie: {pre}"), "Accept: text/html"],
            Some(&form(&[
                ("csrf", csrf),
                ("step", "confirm"),
                ("code", code),
                ("password", "a new password here"),
                ("confirm", "a new password here"),
            ])),
        )
        .status
    };
    let first = ask(&g1);
    let first_code = code_sent(&g1, 1);
    let second = ask(&g2);
    let second_code = code_sent(&g2, 1);
    assert_eq!(
        confirm(&g1, &first, &first_code),
        400,
        "voided by the newer code"
    );
    assert_eq!(confirm(&g2, &second, &second_code), 200);
    assert_eq!(confirm(&g2, &second, &second_code), 400, "used once");
}

/// Pingora tries a request again on a fresh connection when the pooled one it
/// reused turns out closed. The retry must carry what the first try did: the
/// gateway's `X-Forwarded-*`, the identity and the normalised path (found by the
/// review: the first version used them up on the first try).
#[test]
fn a_retried_upstream_try_sends_the_same_head() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Reads one request head (no bodies here); `None` when the peer closed first.
    fn head(s: &mut std::net::TcpStream) -> Option<String> {
        let mut buf = Vec::new();
        let mut b = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).ok()? == 0 {
                return None;
            }
            buf.push(b[0]);
        }
        Some(String::from_utf8_lossy(&buf).into_owned())
    }
    let app = std::thread::spawn(move || {
        // The first connection answers once, keeps alive, then closes on the next
        // request without answering: the pooled connection "turned out closed".
        let (mut first, _) = listener.accept().unwrap();
        head(&mut first).unwrap();
        first
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
        head(&mut first);
        drop(first);
        // The retry: answered with the head it carried.
        let (mut second, _) = listener.accept().unwrap();
        let h = head(&mut second).unwrap();
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{h}",
            h.len()
        );
        second.write_all(reply.as_bytes()).unwrap();
    });
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(port),
            ..Default::default()
        },
    );
    let cookie = format!("Cookie: {}", g.login("bob"));
    let r = g.get("/docs/a", &[&cookie]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = g.get("/docs/./x?y=1", &[&cookie, "X-Forwarded-For: 6.6.6.6"]);
    assert_eq!(r.status, 200, "{}", r.body);
    app.join().unwrap();
    let sent = r.body.to_ascii_lowercase();
    assert!(sent.starts_with("get /docs/x?y=1 http/1.1\r\n"), "{sent}");
    for line in [
        "x-forwarded-for: 127.0.0.1\r\n",
        "x-forwarded-host: app.test\r\n",
        "x-forwarded-proto: http\r\n",
        "remote-user: bob\r\n",
    ] {
        assert!(sent.contains(line), "{line:?} missing in the retry: {sent}");
    }
    assert!(!sent.contains("6.6.6.6"), "{sent}");
}

/// The rule fixes of session 8's attack passes, end to end through the gateway: a
/// directory rule on its bare name and suffixes, the Windows and escaped-`;`
/// spellings, the method a POST's query names, overlong escapes; ordinary requests
/// still pass.
#[test]
fn rules_hold_for_other_spellings_and_methods() {
    let rules = format!(
        "[[rule]]\npath = \"/del/\"\nmethods = [\"DELETE\"]\npolicy = \"deny\"\n\
         [[rule]]\npath = \"/über/\"\npolicy = \"deny\"\n{}",
        crate::harness::DEFAULT_RULES
    );
    let g = Gateway::start(
        Backend::Memory,
        Options {
            rules,
            ..Default::default()
        },
    );
    let bob = format!("Cookie: {}", g.login("bob"));
    let post = |path: &str| g.req("POST", HOST, path, &[&bob], Some("a=1")).status;
    assert_eq!(post("/del/x"), 200);
    assert_eq!(post("/del/x?_method=DELETE"), 403);
    assert_eq!(post("/del/x?%5Fmethod=delete"), 403);
    // bob has one factor; `/secure/` wants two.
    let secure = g.get("/secure/x", &[&bob]).status;
    assert_ne!(secure, 200);
    for p in [
        "/secure",
        "/SECURE.json",
        "/secure./x",
        "/secure::$DATA/x",
        "/x/..%3B/secure/x",
        "/secure%252fx",
        "/se%C2%ADcure/x",
        "/%E2%80%8Bsecure/x",
        "/SECURE~1/x",
        "/secure~1",
        "/sec%80ure/x",
    ] {
        assert_eq!(g.get(p, &[&bob]).status, secure, "{p}");
    }
    // Non-ASCII letters in any case meet a demanding rule (attack pass).
    for p in [
        "/%C3%BCber/x",
        "/%C3%9Cber/x",
        "/%C3%9CBER/x",
        "/%C3%BCBER",
        "/%C3%9Cber/a%20b",
        "/u%CC%88ber/a%20b",
        "/%25C3%BCber/x",
        "/%C3%25BCber/x",
        "/u%25CC%88ber/x",
    ] {
        assert_eq!(g.get(p, &[&bob]).status, 403, "{p}");
    }
    assert_eq!(g.get("/%C3%BCbersicht/x", &[&bob]).status, 200);
    assert_eq!(g.get("/public/..%3B/x", &[]).status, 401);
    assert_eq!(g.get("/public/%C0%AE%C0%AE/secure/x", &[]).status, 400);
    assert_eq!(g.get("/public/x.css", &[]).status, 200);
    assert_eq!(g.get("/other/page", &[&bob]).status, 200);
}

/// A failed sign-in for an identifier that names no account is audited under a keyed
/// digest, not the text typed: that may be a password in the wrong box (attack pass).
/// A known account's failures still name it.
#[test]
fn an_unknown_identifier_is_not_written_to_the_log() {
    let g = Gateway::start(Backend::Memory, Options::default());
    for _ in 0..2 {
        let r = g.post_login("Hunter2Password99", "whatever it was", "/");
        assert_ne!(r.status, 303);
    }
    let r = g.post_login("bob", "not bob's password", "/");
    assert_ne!(r.status, 303);
    // The log once it holds `needle` (audit lines are written as they happen).
    let log_with = |needle: &str| {
        let mut log = g.log();
        for _ in 0..50 {
            if log.contains(needle) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            log = g.log();
        }
        assert!(log.contains(needle), "{needle}: {log}");
        log
    };
    let log = log_with("name:bob");
    assert!(!log.to_lowercase().contains("hunter2password99"), "{log}");
    let digests: Vec<&str> = log
        .match_indices("unknown:")
        .map(|(i, _)| &log[i..i + 24])
        .collect();
    assert!(digests.len() >= 2, "{log}");
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");

    // The same for a wrong reset code asked for an unknown identifier.
    let (mut c, csrf) = ask_reset(&g, "Swordfish2Secret77");
    let r = c.post(
        "/_auth/reset",
        &[
            ("csrf", &csrf),
            ("step", "confirm"),
            ("code", "000000"),
            ("password", "brand new password"),
            ("confirm", "brand new password"),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let log = log_with("reset_code_failed");
    assert!(!log.to_lowercase().contains("swordfish2secret77"), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("reset_code_failed"))
        .unwrap_or_default();
    assert!(line.contains("unknown:"), "{line}");
}

/// A browser that asked for a reset code for `identifier` (answered 200), and its
/// CSRF token.
fn ask_reset<'a>(g: &'a Gateway, identifier: &str) -> (Client<'a>, String) {
    let mut c = Client::new(g);
    let csrf = c.get("/_auth/reset").csrf();
    let r = c.post(
        "/_auth/reset",
        &[
            ("csrf", &csrf),
            ("step", "request"),
            ("identifier", identifier),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    (c, csrf)
}

/// Nor is it kept in the store: an identifier that names no account counts on a
/// ladder named by the keyed digest (what `portcullis lock list` shows and `lock
/// clear` takes), and a reset asked for it waits under that name too. Every key and
/// value in Redis is read.
#[test]
fn an_unknown_identifier_is_not_kept_in_the_store() {
    // Locked after two failures, as a real account would be.
    let g = Gateway::start(
        Backend::Redis,
        Options {
            extra: "[defense]\nip_per_minute = 100000\ncaptcha_after = 1000\nlock_after = 2\nspray_per_minute = 0\n".into(),
            ..Default::default()
        },
    );
    for typed in ["Hunter2Password99", "not an identifier at all: Pa55word!"] {
        for _ in 0..2 {
            let r = g.post_login(typed, "whatever it was", "/");
            assert_ne!(r.status, 303);
        }
    }
    ask_reset(&g, "Swordfish2Secret77@example.com");
    let secrets = ["hunter2password99", "pa55word", "swordfish2secret77"];
    let url = g._redis.as_ref().map(Redis::url).unwrap();
    let mut redis = redis::Client::open(url).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut redis).unwrap();
    assert!(keys.len() > 3, "{keys:?}");
    for k in &keys {
        let kind: String = redis::cmd("TYPE").arg(k).query(&mut redis).unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![redis::cmd("GET").arg(k).query(&mut redis).unwrap()],
            "set" => redis::cmd("SMEMBERS").arg(k).query(&mut redis).unwrap(),
            "hash" => redis::cmd("HGETALL").arg(k).query(&mut redis).unwrap(),
            "list" => redis::cmd("LRANGE")
                .arg(k)
                .arg(0)
                .arg(-1)
                .query(&mut redis)
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(k)
                .arg(0)
                .arg(-1)
                .query(&mut redis)
                .unwrap(),
            other => panic!("{k}: a {other}"),
        };
        let text = format!(
            "{k} {}",
            values
                .iter()
                .map(|v| String::from_utf8_lossy(v).to_lowercase())
                .collect::<Vec<_>>()
                .join(" ")
        );
        for s in secrets {
            assert!(!text.to_lowercase().contains(s), "{s} in {text}");
        }
    }
    let list = String::from_utf8(g.cli(&["lock", "list"], None).stdout).unwrap();
    let names: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split('\t').nth(1))
        .filter(|n| n.starts_with("unknown:"))
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    for s in secrets {
        assert!(!list.to_lowercase().contains(s), "{list}");
    }
    let o = g.cli(&["lock", "clear", names[0]], None);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.starts_with("cleared"), "{out}");
    // What an operator pastes from a person's message (it may hold the password) is
    // not written to the audit line when it names no lock.
    let o = g.cli(&["lock", "clear", "Hunter2Password99"], None);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(out.starts_with("nothing to clear"), "{out}");
    let logs = format!("{err}{}", g.log()).to_lowercase();
    assert!(logs.contains("unlocked"), "{logs}");
    assert!(!logs.contains("hunter2password99"), "{logs}");
}

/// An upstream that answers every request with the number of the connection it
/// came on (`conn=N`), keeping connections open; for `n` connections at most.
fn numbering_upstream(n: usize) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().take(n).enumerate() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
                let mut out = conn.try_clone().unwrap();
                let mut lines = BufReader::new(conn);
                let mut line = String::new();
                // One answer per blank line (the requests have no body).
                while matches!(lines.read_line(&mut line), Ok(n) if n > 0) {
                    if line == "\r\n" {
                        let body = format!("conn={i}");
                        let head =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                        if out.write_all(format!("{head}{body}").as_bytes()).is_err() {
                            break;
                        }
                    }
                    line.clear();
                }
            });
        }
    });
    port
}

/// Two sites on one plain-HTTP upstream address never share a pooled upstream
/// connection (a desync caused through one site can't reach the other's users),
/// while each site's requests reuse its own.
#[test]
fn sites_on_one_upstream_address_keep_their_own_connections() {
    let port = numbering_upstream(16);
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(port),
            ..Default::default()
        },
    );
    let conn = |host: &str| {
        let r = raw_request(g.port, "GET", "/public/x", host, &[], None).unwrap();
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        r.body
    };
    // Alternating requests. Pingora puts a connection back in its pool just after
    // the answer went out, so a request sent at once may open another one: a short
    // pause lets the pool catch up, and only the two sites' sets are compared.
    let (mut a, mut b) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for _ in 0..5 {
        a.insert(conn("app.test"));
        std::thread::sleep(Duration::from_millis(30));
        b.insert(conn("other.test"));
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(
        a.is_disjoint(&b),
        "the two sites share an upstream connection: {a:?} {b:?}"
    );
    // Not vacuous: each site's requests reuse its connections (one shared pool would
    // then hand the other site's to it).
    assert!(a.len() < 5, "app.test reuses its pooled connections: {a:?}");
    assert!(
        b.len() < 5,
        "other.test reuses its pooled connections: {b:?}"
    );
}
