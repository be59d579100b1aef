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

pub fn nginx_conf(
    nginx_port: u16,
    gateway_port: u16,
    app_port: u16,
    dir: &std::path::Path,
) -> String {
    // The README's snippet, with this test's ports.
    let snippet = format!(
        r#"
    server {{
        listen 127.0.0.1:{nginx_port};
        server_name app.test;
        # The sign-in pages. The client's address is overwritten, never passed on.
        location /_auth/ {{
            proxy_pass http://127.0.0.1:{gateway_port};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
        # The decision. Facts come from nginx's own variables, never from the client's
        # Host header ($http_host) or its X-Forwarded-* / X-Original-* headers.
        location = /_auth/verify {{
            internal;
            proxy_pass http://127.0.0.1:{gateway_port}/_auth/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Host $host;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Original-URL "";
            proxy_set_header X-Forwarded-Uri "";
            proxy_set_header X-Forwarded-Method "";
        }}
        location / {{
            auth_request /_auth/verify;
            auth_request_set $user $upstream_http_remote_user;
            auth_request_set $email $upstream_http_remote_email;
            auth_request_set $name $upstream_http_remote_name;
            auth_request_set $groups $upstream_http_remote_groups;
            auth_request_set $login $upstream_http_location;
            proxy_set_header Remote-User $user;
            proxy_set_header Remote-Email $email;
            proxy_set_header Remote-Name $name;
            proxy_set_header Remote-Groups $groups;
            proxy_set_header X-Forwarded-For $remote_addr;
            error_page 401 =302 $login;
            proxy_pass http://127.0.0.1:{app_port};
        }}
    }}"#
    );
    format!(
        "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n{snippet}\n}}\n",
        d = dir.display()
    )
}

#[test]
fn readme_nginx_auth_request_snippet_works_with_real_nginx() {
    let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let nginx = nginx.expect("nginx is installed (scripts/test.sh installs nginx-light)");
    let app = Upstream::start();
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(app.port),
            extra: "#server\ntrusted_proxies = [\"127.0.0.1/32\"]\n#end\n".into(),
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("nginx.conf"),
        nginx_conf(port, g.port, app.port, dir.path()),
    )
    .unwrap();
    let child = std::process::Command::new(nginx)
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
    let _n = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let rd = page
        .body
        .split("name=\"rd\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
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
