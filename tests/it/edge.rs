//! The edge: slow clients, slow or several upstreams, and the documented nginx
//! forward-auth setup against a real nginx.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn slowloris_headers_are_cut_off_but_idle_keepalive_is_not() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: "#server\nheader_timeout = \"1s\"\n#end\n".into(),
            ..Default::default()
        },
    );
    // Trickle a header a byte at a time: the gateway hangs up after ~1 s.
    let mut s = TcpStream::connect(("127.0.0.1", g.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let header = format!(
        "GET /public/x HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
    );
    let mut closed = false;
    for b in header.bytes().cycle().take(200) {
        if s.write_all(&[b]).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        if start.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    assert!(closed, "a trickled header must not hold the connection");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "cut off after {:?}",
        start.elapsed()
    );

    // A keep-alive connection idle between requests for longer than the header timeout is fine.
    let mut s = TcpStream::connect(("127.0.0.1", g.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!("GET /public/x HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    for _ in 0..2 {
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        std::thread::sleep(Duration::from_millis(1500));
    }
}

#[test]
fn slow_upstream_gets_a_504_and_sites_route_to_their_own_upstream() {
    // An upstream that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        silent.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end && !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok((c, _)) = silent.accept() {
                held.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: format!(
                "#server\nupstream_timeout = \"1s\"\n#end\n[[site]]\nhost = \"slow.test\"\nupstream = \"127.0.0.1:{silent_port}\"\n"
            ),
            ..Default::default()
        },
    );
    let start = Instant::now();
    let r = g.req(
        "GET",
        "slow.test",
        "/public/x",
        &["Accept: text/html"],
        None,
    );
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.body.contains("taking too long"));
    assert!(start.elapsed() < Duration::from_secs(5));
    // The other sites still answer from their own upstream.
    assert_eq!(g.get("/public/x", &[]).status, 200);
    assert_eq!(
        g.req("GET", "other.test", "/public/x", &[], None).status,
        200
    );
    drop(g);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = hold.join();
}

#[test]
fn readme_nginx_auth_request_snippet_works_with_real_nginx() {
    let app = Upstream::start();
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(app.port),
            extra: "#server\ntrusted_proxies = [\"127.0.0.1/32\"]\n#end\n".into(),
            ..Default::default()
        },
    );
    // The README's snippet itself, with this test's ports.
    let nginx = crate::security::Nginx::start(g.port, app.port);
    let port = nginx.port;
    let via = |path: &str, headers: &[&str], body: Option<&str>| {
        let mut raw = format!(
            "{} {path} HTTP/1.1\r\nHost: app.test:{port}\r\nConnection: close\r\n",
            if body.is_some() { "POST" } else { "GET" }
        );
        for h in headers {
            raw.push_str(&format!("{h}\r\n"));
        }
        match body {
            Some(b) => raw.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => raw.push_str("\r\n"),
        }
        try_request(port, &raw).unwrap()
    };
    // Not signed in (and trying to spoof): sent to the sign-in page on the same site.
    let r = via("/docs?page=2", &["Remote-User: admin"], None);
    assert_eq!(r.status, 302, "{}", r.body);
    let login = r.header("location").unwrap().to_string();
    assert_eq!(login, format!("http://app.test:{port}/_auth/login?rd=http%3A%2F%2Fapp.test%3A{port}%2Fdocs%3Fpage%3D2"));
    // Sign in through nginx.
    let path = login.split_once(&format!(":{port}")).unwrap().1;
    let page = via(path, &["Accept: text/html"], None);
    assert_eq!(page.status, 200);
    let pre = page.cookie("portcullis_pre").unwrap();
    let rd = rd_field(&page.body);
    let body = form(&[
        ("csrf", &page.csrf()),
        ("identifier", "alice"),
        ("password", PASSWORD),
        ("rd", &rd),
    ]);
    let r = via("/_auth/login", &[&format!("Cookie: {pre}")], Some(&body));
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("http://app.test:{port}/docs?page=2").as_str())
    );
    let cookie = r.cookie("portcullis").unwrap();
    // Signed in: the app gets the identity from nginx, not the client's spoof.
    let r = via(
        "/docs?page=2",
        &[&format!("Cookie: {cookie}"), "Remote-User: admin"],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.echo();
    assert_eq!(echo["headers"]["remote-user"], "alice");
    assert_eq!(echo["headers"]["remote-groups"], "admins,staff");
    // And a denied path is denied.
    let bob = g.login("bob");
    assert_eq!(
        via("/admin/x", &[&format!("Cookie: {bob}")], None).status,
        403
    );
}

/// Writes `prefix` at once, then `header` a byte every 50 ms, until the gateway
/// hangs up (or 10 s pass). Returns whether it hung up, and when.
fn trickle(port: u16, prefix: &str, header: &str) -> (bool, Duration) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    if s.write_all(prefix.as_bytes()).is_err() {
        return (true, start.elapsed());
    }
    for b in header.bytes().cycle().take(400) {
        if s.write_all(&[b]).is_err() {
            return (true, start.elapsed());
        }
        match s.read(&mut buf) {
            Ok(0) => return (true, start.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (true, start.elapsed()),
        }
        if start.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    (false, start.elapsed())
}

#[test]
fn leading_empty_lines_do_not_disarm_the_header_timer() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: "#server\nheader_timeout = \"1s\"\n#end\n".into(),
            ..Default::default()
        },
    );
    let header = format!("GET /public/x HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n");
    for prefix in ["\r\n\r\n", "\r\n", "\r\n\r\n\r\n\r\n"] {
        let (closed, after) = trickle(g.port, prefix, &header);
        assert!(
            closed,
            "{prefix:?} then a trickle must not hold the connection"
        );
        assert!(
            after < Duration::from_secs(5),
            "{prefix:?}: cut off after {after:?}"
        );
    }
    // Empty lines alone, then nothing: the timer runs for them too.
    let mut s = TcpStream::connect(("127.0.0.1", g.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    s.write_all(b"\r\n\r\n").unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let r = s.read(&mut buf);
    assert!(
        matches!(r, Ok(0) | Err(_)) && start.elapsed() < Duration::from_secs(5),
        "{r:?} after {:?}",
        start.elapsed()
    );
    // A complete request after leading empty lines is still served.
    let r = g.raw(&format!(
        "\r\n\r\nGET /public/x HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn connections_beyond_the_per_client_cap_are_closed_at_once() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: "#server\nmax_connections_per_client = 2\n#end\n".into(),
            ..Default::default()
        },
    );
    let open = || {
        let s = TcpStream::connect(("127.0.0.1", g.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    let request = |s: &mut TcpStream| -> String {
        s.write_all(format!("GET /public/x HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    // Two connections that have each been answered: both are counted for sure (a
    // health-check connection of the harness may still be closing: retry, bounded).
    let answered = || {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = open();
            if request(&mut s).starts_with("HTTP/1.1 200") {
                return s;
            }
            assert!(Instant::now() < deadline, "no place under the cap");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut a = answered();
    let mut b = answered();
    let mut c = open();
    let start = Instant::now();
    let _ = c.write_all(format!("GET /public/x HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes());
    let mut buf = [0u8; 256];
    let r = c.read(&mut buf);
    assert!(
        matches!(r, Ok(0) | Err(_)) && start.elapsed() < Duration::from_secs(2),
        "the third connection must be closed at once: {r:?}"
    );
    // The first two work, and keep working.
    for got in [request(&mut a), request(&mut b), request(&mut a)] {
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    }
    // Closing one gives its place back.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = open();
        let got = request(&mut d);
        if got.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the cap was not counted down");
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = request(&mut b);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");

    // A SIGHUP changes the cap for the connections that come next: 3 now, so two
    // more connections beside `b` are answered, and the one after is not.
    let text = std::fs::read_to_string(&g.config).unwrap();
    let text = text
        .replacen(
            "max_connections_per_client = 2",
            "max_connections_per_client = 3",
            1,
        )
        .replacen(
            "[[rule]]",
            "[[rule]]\npath = \"/reloaded/\"\npolicy = \"bypass\"\n\n[[rule]]",
            1,
        );
    std::fs::write(&g.config, text).unwrap();
    // (The reload is seen over `b`: a new connection might not get a place.)
    crate::operations::signal(g.pid(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        b.write_all(format!("GET /reloaded/x HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = b.read(&mut buf).unwrap_or(0);
        if buf[..n].starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the reload never came");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut e = answered();
    let _f = answered();
    let mut h = open();
    let _ = h.write_all(format!("GET /public/x HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes());
    let r = h.read(&mut buf);
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "a fourth connection is over the new cap: {r:?}"
    );
    assert!(request(&mut e).starts_with("HTTP/1.1 200"));
}

#[test]
/// Lengths servers read differently, bare LF, bodies on bodiless methods, and
/// targets the parsed URI doesn't stand for: 400, and nothing reaches the upstream.
fn ambiguous_requests_get_400_and_never_reach_the_upstream() {
    // An upstream that counts connections and answers 200 to each.
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = up.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hits2 = hits.clone();
    std::thread::spawn(move || {
        for s in up.incoming() {
            let Ok(mut s) = s else { continue };
            hits2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(up_port),
            ..Default::default()
        },
    );
    let hits_now = || hits.load(std::sync::atomic::Ordering::SeqCst);
    let post = |cl: &str| {
        format!(
            "POST /public/x HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {cl}\r\nConnection: close\r\n\r\nhello"
        )
    };
    let bad = [
        post("5, 5"),
        post("5,5"),
        post("005"),
        post("+5"),
        format!("GET /public/x HTTP/1.1\nHost: {HOST}\nConnection: close\n\n"),
        format!("GET /public/x HTTP/1.1\r\nHost: {HOST}\nConnection: close\r\n\r\n"),
        format!(
            "POST /public/x HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
        ),
    ];
    // A body on a method whose body means nothing: an upstream that never reads it
    // would take it for the next request on the pooled connection (attack pass: a
    // request to a denied path, finished by the next person's, identity and all).
    let smuggled = "GET /private/delete HTTP/1.1\r\nHost: app.test\r\nX-Ignore: ";
    let with_body = |method: &str, framing: &str| {
        format!(
            "{method} /public/x HTTP/1.1\r\nHost: {HOST}\r\n{framing}\r\nConnection: close\r\n\r\n{}",
            if framing.starts_with("Transfer") {
                format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len())
            } else {
                smuggled.to_string()
            }
        )
    };
    let cl = format!("Content-Length: {}", smuggled.len());
    let bad: Vec<String> = bad
        .into_iter()
        .chain(["GET", "HEAD", "OPTIONS", "TRACE", "get"].map(|m| with_body(m, &cl)))
        .chain(["GET", "HEAD"].map(|m| with_body(m, "Transfer-Encoding: chunked")))
        // Targets Pingora's URI reads as another (a fragment dropped, `#` as `/`),
        // and absolute-form with a scheme other than HTTP's (attack pass).
        .chain(
            [
                "#/public/x",
                "#",
                "/public/x#y",
                "/private#/public/",
                "ftp://app.test/public/x",
            ]
            .map(|t| format!("GET {t} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n")),
        )
        .collect();
    for raw in &bad {
        let r = g.raw(raw);
        assert_eq!(r.status, 400, "{raw:?}: {}", r.body);
    }
    assert_eq!(hits_now(), 0, "a refused request reached the upstream");
    // Plain requests still pass, body intact.
    let r = g.raw(&post("5"));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = g.raw(&format!(
        "GET /public/x HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = g.raw(&format!(
        "GET http://{HOST}/public/x HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 200, "absolute-form: {}", r.body);
    // An empty body said so is no body.
    let r = g.raw(&format!(
        "GET /public/x HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(hits_now() >= 1);
    // A site whose application reads such bodies (`allow_get_bodies`) gets them.
    let reads_them = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(up_port),
            site: "allow_get_bodies = true\n".into(),
            ..Default::default()
        },
    );
    let before = hits_now();
    let r = reads_them.raw(&with_body("GET", &cl));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(hits_now(), before + 1);
}

/// An upstream that answers without reading request bodies (an early error, a
/// handler that ignores the body), keeps its connections open unless told to close
/// (as servers do: RFC 9112 §9.6), and records each request line it reads.
fn careless_upstream() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader};
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = up.local_addr().unwrap().port();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = lines.clone();
    std::thread::spawn(move || {
        for s in up.incoming().take(20) {
            let Ok(s) = s else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut r = BufReader::new(s);
                loop {
                    let (mut first, mut close) = (String::new(), false);
                    if r.read_line(&mut first).map_or(true, |n| n == 0) {
                        return;
                    }
                    let mut line = String::new();
                    while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                        close |= line.to_ascii_lowercase().starts_with("connection: close");
                        line.clear();
                    }
                    seen.lock().unwrap().push(first.trim_end().to_string());
                    let _ = r
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    if close {
                        return;
                    }
                }
            });
        }
    });
    (port, lines)
}

/// A request with a body goes upstream with `Connection: close`: an application that
/// answers without reading the body would otherwise read it as the next request on
/// the pooled connection, judged by no rule (review of the attack pass's fix: any
/// method, not only the bodiless ones). `keep_alive_after_bodies` keeps the pool.
#[test]
fn a_body_the_application_leaves_unread_is_never_read_as_a_request() {
    let (up_port, lines) = careless_upstream();
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(up_port),
            ..Default::default()
        },
    );
    let smuggled = format!("GET /private/x HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    for method in ["POST", "DELETE"] {
        let r = g.req(method, HOST, "/public/x", &[], Some(&smuggled));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Signed-in requests that follow reuse nothing the body could have poisoned.
    let bob = format!("Cookie: {}", g.login("bob"));
    for _ in 0..3 {
        assert_eq!(g.get("/docs", &[&bob]).status, 200);
    }
    let seen = lines.lock().unwrap().clone();
    assert!(
        seen.iter().all(|l| !l.contains("/private/x")),
        "a body was read as a request: {seen:?}"
    );
    assert_eq!(seen.len(), 5, "{seen:?}");

    // An application that reads its bodies can keep its connections.
    let (up_port, lines) = careless_upstream();
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(up_port),
            site: "keep_alive_after_bodies = true\n".into(),
            ..Default::default()
        },
    );
    let r = g.req("POST", HOST, "/public/x", &[], Some(&smuggled));
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("/private/x"))
    {
        assert!(
            Instant::now() < deadline,
            "kept alive, this careless application reads the body as a request: {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn check_config_warns_about_groups_rules_nothing_denies_after() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            rules:
                "[[rule]]\npath = \"/admin\"\ngroups = [\"admins\"]\npolicy = \"one_factor\"\n\n\
                    [[rule]]\npath = \"/staff\"\ngroups = [\"staff\"]\npolicy = \"one_factor\"\n\n\
                    [[rule]]\npath = \"/staff\"\npolicy = \"deny\"\n"
                    .into(),
            ..Default::default()
        },
    );
    let o = g.cli(&["check-config"], None);
    assert!(o.status.success(), "warnings don't fail the check");
    let err = String::from_utf8_lossy(&o.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].starts_with("warning: rule[0]: "), "{err}");
    // `serve` logged the same at start.
    assert!(g.log().contains("rule[0]: "), "{}", g.log());
}

/// An upstream that counts the connections it accepts and holds every answer until
/// `wave` requests are in flight together (at most 12 s; the flag returned tells
/// whether a wait ran out), so that a proxy in front of it needs `wave` connections
/// at once; it keeps each connection open for the next request (keep-alive), as
/// applications do.
fn counting_upstream(
    wave: usize,
) -> (
    u16,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::io::{BufRead, BufReader};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = up.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    let ran_out = Arc::new(AtomicBool::new(false));
    let late = ran_out.clone();
    let arrived = Arc::new((Mutex::new(0usize), Condvar::new()));
    std::thread::spawn(move || {
        for s in up.incoming().take(64) {
            let Ok(s) = s else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            let arrived = arrived.clone();
            let late = late.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut r = BufReader::new(s);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).map_or(true, |n| n == 0) {
                        return;
                    }
                    while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let (count, all_in) = &*arrived;
                    let mut n = count.lock().unwrap();
                    *n += 1;
                    let target = n.div_ceil(wave) * wave;
                    all_in.notify_all();
                    let (n, waited) = all_in
                        .wait_timeout_while(n, Duration::from_secs(12), |n| *n < target)
                        .unwrap();
                    drop(n);
                    if waited.timed_out() {
                        late.store(true, Ordering::SeqCst);
                    }
                    if r.get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, accepted, ran_out)
}

/// `server.upstream_idle_connections`: the idle upstream connections kept for reuse
/// (per worker). Two waves of eight requests in flight together: with the default
/// (128) the second wave goes over the first wave's connections; with 2 kept, six of
/// its requests need a new connection each.
#[test]
fn idle_upstream_connections_are_kept_up_to_the_configured_number() {
    const WAVE: usize = 8;
    let accepted_after_two_waves = |server: &str| {
        let (up_port, accepted, ran_out) = counting_upstream(WAVE);
        let g = Gateway::start(
            Backend::Memory,
            Options {
                upstream_port: Some(up_port),
                extra: format!("#server\nthreads = 1\n{server}#end\n"),
                ..Default::default()
            },
        );
        for _ in 0..2 {
            let clients: Vec<_> = (0..WAVE)
                .map(|_| {
                    let port = g.port;
                    std::thread::spawn(move || {
                        try_request(
                            port,
                            &format!("GET /public/x HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"),
                        )
                        .map(|r| r.status)
                    })
                })
                .collect();
            for c in clients {
                assert_eq!(c.join().unwrap().unwrap(), 200);
            }
            // The gateway puts a connection back in its pool once the answer is through.
            std::thread::sleep(Duration::from_secs(1));
        }
        assert!(
            !ran_out.load(std::sync::atomic::Ordering::SeqCst),
            "a wave's requests never were in flight together: the counts say nothing"
        );
        accepted.load(std::sync::atomic::Ordering::SeqCst)
    };
    assert_eq!(accepted_after_two_waves(""), WAVE, "all eight reused");
    assert_eq!(
        accepted_after_two_waves("upstream_idle_connections = 2\n"),
        WAVE + WAVE - 2,
        "two kept, six made again"
    );
}

/// The harness takes a gateway for started only when the listening socket is that
/// gateway's own (another test's gateway on the same port answers the health check
/// too): the check tells the owner of a socket from any other process.
#[test]
fn the_harness_tells_a_gateways_own_socket_from_anothers() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let mine = TcpListener::bind("127.0.0.1:0").unwrap();
    let mine = mine.local_addr().unwrap().port();
    assert!(listens(g.pid(), g.port));
    assert!(!listens(g.pid(), mine));
    assert!(listens(std::process::id(), mine));
    assert!(!listens(std::process::id(), g.port));
}
