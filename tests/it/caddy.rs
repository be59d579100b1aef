//! Forward-auth through a real Caddy (Debian's `caddy`, 2.6) running the
//! README's Caddyfile block verbatim: sign-in, identity, and the attacks of
//! `security.rs` tried through it.

use crate::harness::*;

/// The README's Caddyfile block with this test's ports, taken from the README itself.
fn readme_caddy(caddy_port: u16, gateway_port: u16, app_port: u16) -> String {
    let block = readme_block("caddy");
    assert!(block.contains("app.example.com {"), "{block}");
    block
        .replace(
            "app.example.com {",
            &format!("http://app.test:{caddy_port} {{"),
        )
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{gateway_port}"))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{app_port}"))
}

pub struct Caddy {
    pub port: u16,
    _p: Proc,
    dir: tempfile::TempDir,
}

impl Caddy {
    pub fn start(gateway_port: u16, app_port: u16) -> Caddy {
        let bin = installed(
            &["/usr/bin/caddy", "/usr/local/bin/caddy"],
            "scripts/test.sh installs it",
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        // Test-side global options only: no admin endpoint, no certificates, and
        // everything Caddy writes (storage, autosave, its HOME) in the temp dir.
        let conf = format!(
            "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {d}/data\n\t\
             log {{\n\t\toutput file {d}/caddy.log\n\t}}\n}}\n\n{}",
            readme_caddy(port, gateway_port, app_port)
        );
        let file = dir.path().join("Caddyfile");
        std::fs::write(&file, conf).unwrap();
        let child = std::process::Command::new(bin)
            .args([
                "run",
                "--config",
                file.to_str().unwrap(),
                "--adapter",
                "caddyfile",
            ])
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let mut p = Proc(child);
        wait_listening(&mut p, port, "caddy", Some(&dir.path().join("stderr.log")));
        Caddy { port, _p: p, dir }
    }

    /// A raw request to Caddy: request line target, Host value, extra header lines.
    pub fn send(&self, method: &str, target: &str, host: &str, headers: &[&str]) -> Resp {
        self.try_send(method, target, host, headers, None).unwrap()
    }

    /// [`send`](Self::send) with an optional form body; `Err` when Caddy hung up.
    pub fn try_send(
        &self,
        method: &str,
        target: &str,
        host: &str,
        headers: &[&str],
        body: Option<&str>,
    ) -> std::io::Result<Resp> {
        raw_request(self.port, method, target, host, headers, body)
    }
}

fn behind_caddy(b: Backend) -> (Gateway, Caddy, Upstream) {
    let app = Upstream::start();
    let g = Gateway::start(
        b,
        Options {
            upstream_port: Some(app.port),
            extra: "#server\ntrusted_proxies = [\"127.0.0.1/32\"]\n#end\n".into(),
            // Another site, wide open: its rules must never judge app.test's requests.
            rules: format!(
                "[[rule]]\nhost = \"other.test\"\npath = \"/\"\npolicy = \"bypass\"\n{DEFAULT_RULES}"
            ),
            ..Default::default()
        },
    );
    let c = Caddy::start(g.port, app.port);
    (g, c, app)
}

/// An answer that let the request through to the application.
fn reached_app(r: &Resp) -> bool {
    r.status == 200 && r.body.contains("\"headers\"")
}

#[test]
fn caddy_writes_nothing_outside_its_temp_dir() {
    let app = Upstream::start();
    let c = Caddy::start(free_port(), app.port);
    let written: Vec<_> = walk(c.dir.path());
    assert!(
        written.iter().any(|p| p.ends_with("Caddyfile")),
        "{written:?}"
    );
    // Its autosave goes to XDG_CONFIG_HOME, inside the temp dir.
    assert!(
        written
            .iter()
            .any(|p| p.ends_with("autosave.json") && p.starts_with(c.dir.path())),
        "{written:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn readme_caddy_snippet_signs_in_and_returns_to_the_original_url() {
    let (g, c, _app) = behind_caddy(Backend::Memory);
    let port = c.port;
    let host = format!("app.test:{port}");
    // Not signed in (and trying to spoof): sent to the sign-in page on the same site.
    let r = c.send("GET", "/docs?page=2", &host, &["Remote-User: admin"]);
    assert_eq!(r.status, 302, "{}", r.body);
    let login = r.header("location").unwrap().to_string();
    assert_eq!(
        login,
        format!("http://app.test:{port}/_auth/login?rd=http%3A%2F%2Fapp.test%3A{port}%2Fdocs%3Fpage%3D2")
    );
    // Sign in through Caddy.
    let path = login.split_once(&format!(":{port}")).unwrap().1;
    let page = c.send("GET", path, &host, &["Accept: text/html"]);
    assert_eq!(page.status, 200, "{}", page.body);
    let pre = page.cookie("portcullis_pre").unwrap();
    let rd = rd_field(&page.body);
    let body = form(&[
        ("csrf", &page.csrf()),
        ("identifier", "alice"),
        ("password", PASSWORD),
        ("rd", &rd),
    ]);
    let r = c
        .try_send(
            "POST",
            "/_auth/login",
            &host,
            &[&format!("Cookie: {pre}")],
            Some(&body),
        )
        .unwrap();
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("http://app.test:{port}/docs?page=2").as_str())
    );
    let cookie = r.cookie("portcullis").unwrap();
    // Signed in: the app gets the identity from the gateway, not the client's spoofs,
    // and none of the gateway's cookies (its own cookies, untouched).
    let r = c.send(
        "GET",
        "/docs?page=2",
        &host,
        &[
            &format!("Cookie: app_session=abc; {cookie}; portcullis_pre=x; Portcullis_Dev=bob|1; portcullis_2fa=y; theme=dark"),
            "Remote-User: admin",
            "remote_user: admin",
            "X-Forwarded-User: admin",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.echo();
    assert_eq!(echo["path"], "/docs?page=2", "{echo}");
    assert_eq!(echo["headers"]["remote-user"], "alice");
    assert_eq!(echo["headers"]["remote-email"], "alice@example.com");
    assert_eq!(echo["headers"]["remote-groups"], "admins,staff");
    assert_eq!(echo["headers"]["cookie"], "app_session=abc; theme=dark");
    assert!(echo["headers"].get("x-forwarded-user").is_none(), "{echo}");
    assert!(echo["headers"].get("remote_user").is_none(), "{echo}");
    // Signed-in users are judged by the rules too.
    let bob = g.login("bob");
    assert_eq!(
        c.send("GET", "/admin/x", &host, &[&format!("Cookie: {bob}")])
            .status,
        403
    );
}

crate::scenarios::both!(
    forward_auth_through_caddy_decides_on_the_real_request,
    |b| {
        let (g, c, _app) = behind_caddy(b);
        let host = format!("app.test:{}", c.port);
        // The baseline: the bypass works, /admin doesn't.
        assert!(reached_app(&c.send("GET", "/public/x", &host, &[])));
        let r = c.send("GET", "/admin", &host, &[]);
        assert_eq!(r.status, 403, "{}", r.body);
        let r = c.send("GET", "/private", &host, &[]);
        assert_eq!(r.status, 302, "{}", r.body);
        // A Host that isn't this site is never served, nor judged by the other site's rules.
        for other in [
            "other.test".to_string(),
            format!("other.test:{}", c.port),
            "elsewhere.test".to_string(),
        ] {
            let r = c.send("GET", "/admin", &other, &[]);
            assert!(!reached_app(&r), "Host {other}: {} {}", r.status, r.body);
        }
        // The review's Host tricks (a bypass path smuggled through Host) and their variants.
        for evil_host in [
            "app.test:\\public?".to_string(),
            format!("app.test:{}\\public?", c.port),
            "app.test:\\public#".to_string(),
            "other.test:@app.test".to_string(),
            format!("other.test:@app.test:{}", c.port),
            "app.test:@other.test".to_string(),
            "app.test/public/?".to_string(),
            "app.test:/public/".to_string(),
            format!("app.test:{0}:{0}", c.port),
        ] {
            for target in ["/admin", "/admin/x?y=1", "/private"] {
                // Caddy may refuse the request or hang up; never the app.
                let Ok(r) = c.try_send("GET", target, &evil_host, &[], None) else {
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
            ("/public;/../admin", vec![]),
            ("//admin", vec![]),
            ("/admin#/public/", vec![]),
            ("/admin?/public/", vec![]),
            ("http://app.test/admin", vec![]),
            ("/_auth/../admin", vec![]),
            ("/_AUTH/../admin", vec![]),
            ("/admin", vec!["X-Original-URI: /public/x"]),
            ("/admin", vec!["X-Forwarded-Uri: /public/x"]),
            ("/admin", vec!["X-Original-URL: http://app.test/public/x"]),
            ("/admin", vec!["X_Original_URI: /public/x"]),
            ("/admin", vec!["X-Forwarded-Host: other.test"]),
            (
                "/admin",
                vec!["X-Forwarded-Host: app.test", "X-Forwarded-Host: other.test"],
            ),
            ("/admin", vec!["X-Forwarded-Method: GET"]),
            ("/admin", vec!["Forwarded: host=other.test"]),
        ] {
            let r = c.send("GET", target, &host, &headers);
            assert!(
                !reached_app(&r),
                "{target} {headers:?}: reached the app: {} {}",
                r.status,
                r.body
            );
        }
        // A GET-only bypass admits neither a POST nor a DELETE, whatever the client claims.
        assert!(reached_app(&c.send("GET", "/readonly/x", &host, &[])));
        for (m, h) in [
            ("POST", vec![]),
            ("DELETE", vec![]),
            ("PUT", vec![]),
            ("POST", vec!["X-Original-Method: GET"]),
            ("POST", vec!["X-Forwarded-Method: GET"]),
            ("POST", vec!["X-HTTP-Method-Override: GET"]),
            (
                "DELETE",
                vec!["X-HTTP-Method: GET", "X-Method-Override: GET"],
            ),
        ] {
            let r = c.send(m, "/readonly/x", &host, &h);
            assert!(!reached_app(&r), "{m} {h:?}: {} {}", r.status, r.body);
        }
        // ...and a GET it admits carries no method override to the app.
        let r = c.send(
            "GET",
            "/readonly/x",
            &host,
            &["X-HTTP-Method-Override: DELETE", "X_HTTP_Method: DELETE"],
        );
        let echo = r.echo();
        for k in echo["headers"].as_object().unwrap().keys() {
            assert!(!k.to_ascii_lowercase().contains("method"), "{k}: {echo}");
        }
        // A network-scoped bypass can't be claimed with a forged client address.
        for xff in [
            "X-Forwarded-For: 10.1.2.3",
            "X-Real-IP: 10.1.2.3",
            "Forwarded: for=10.1.2.3",
            "X_Forwarded_For: 10.1.2.3",
        ] {
            let r = c.send("GET", "/lan/x", &host, &[xff]);
            assert!(!reached_app(&r), "{xff}: {} {}", r.status, r.body);
        }
        // Anonymous on a bypass path: the app gets no identity, forged or placeholder.
        let r = c.send(
            "GET",
            "/public/x",
            &host,
            &[
                "Remote-User: admin",
                "REMOTE-GROUPS: admins",
                "X-Remote-User: admin",
                "X-Auth-Request-User: admin",
                "X-WEBAUTH-USER: admin",
                "X-Portcullis-Assertion: forged",
                "OIDC_CLAIM_email: admin@example.com",
                "X-Forwarded-For: 10.0.0.1",
                "X-Forwarded-Host: evil.test",
                "X-Forwarded-Proto: https",
                "X-Real-IP: 10.0.0.1",
                "True-Client-IP: 10.0.0.1",
                "Forwarded: for=10.0.0.1",
                "X-Original-URL: /admin",
                "X-Rewrite-URL: /admin",
            ],
        );
        let echo = r.echo();
        let headers = echo["headers"].as_object().unwrap();
        for (k, v) in headers {
            let k = k.to_ascii_lowercase().replace('_', "-");
            let v = v.as_str().unwrap_or_default();
            if k.starts_with("remote-") {
                assert_eq!(v, "", "{k}: {v} reached the app");
                continue;
            }
            assert!(!app_trusted_header(&k), "{k}: {v} reached the app");
        }
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], host.as_str());
        // Signed in, the identity still comes from the gateway only.
        let bob = format!("Cookie: {}", g.login("bob"));
        let r = c.send("GET", "/docs", &host, &[&bob, "Remote-User: alice"]);
        assert!(reached_app(&r), "{} {}", r.status, r.body);
        assert_eq!(r.echo()["headers"]["remote-user"], "bob");
        assert_eq!(c.send("GET", "/admin", &host, &[&bob]).status, 403);
        // The forged facts above were refused and explained in the gateway's log.
        let log = g.log();
        assert!(log.contains("forward-auth request refused"), "{log}");
    }
);

crate::scenarios::both!(client_addresses_come_from_caddy_not_the_client, |b| {
    let app = Upstream::start();
    let g = Gateway::start(
        b,
        Options {
            upstream_port: Some(app.port),
            extra: "#server\ntrusted_proxies = [\"127.0.0.1/32\"]\n#end\n[defense]\nip_per_minute = 5\ncaptcha_after = 1000\nlock_after = 1000\nspray_per_minute = 0\n".into(),
            ..Default::default()
        },
    );
    let c = Caddy::start(g.port, app.port);
    let host = format!("app.test:{}", c.port);
    // Rotating X-Forwarded-For doesn't buy fresh sign-in attempts: after 5, 429.
    let mut statuses = Vec::new();
    for i in 0..8 {
        let page = c.send("GET", "/_auth/login", &host, &["Accept: text/html"]);
        let pre = page.cookie("portcullis_pre").unwrap();
        let body = form(&[
            ("csrf", &page.csrf()),
            ("identifier", "alice"),
            ("password", "wrong password"),
        ]);
        let forged = [
            format!("Cookie: {pre}"),
            format!("X-Forwarded-For: 198.51.100.{i}"),
            format!("X-Real-IP: 198.51.100.{i}"),
            format!("Forwarded: for=198.51.100.{i}"),
        ];
        let forged: Vec<&str> = forged.iter().map(String::as_str).collect();
        let r = c
            .try_send("POST", "/_auth/login", &host, &forged, Some(&body))
            .unwrap();
        statuses.push(r.status);
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // And the audit log names the real client, never a forged one.
    let log = g.log();
    assert!(!log.contains("198.51.100."), "{log}");
    assert!(log.contains("\"client\":\"127.0.0.1\""), "{log}");
});
