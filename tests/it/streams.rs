//! WebSockets and large bodies through the gateway (issue #12, point 7).
//!
//! A real WebSocket server (`tests/support/ws_echo.py`, python3-websockets) and a streaming
//! HTTP upstream (`tests/support/bulk_upstream.py`) sit behind the gateway. The WebSocket
//! client here is a raw RFC 6455 client over `TcpStream`; the large-body clients generate
//! their bodies on the fly and hash what they send or receive, so nothing holds 200 MB.
//! The gateway's memory is read from `/proc/PID/status` while the bodies stream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::harness::*;

const SUPPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/");

/// One of the python servers in tests/support, on a free port, killed on drop.
fn python_server(script: &str) -> (u16, Proc) {
    let port = free_port();
    let mut child = Command::new("/usr/bin/python3")
        .arg(format!("{SUPPORT}{script}"))
        .args(["--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("/usr/bin/python3 (scripts/test.sh installs python3-websockets)");
    let mut line = String::new();
    let out = child.stdout.take().unwrap();
    let proc = Proc(child);
    // Bounded: the script exits (EOF) if it can't start; wait_port bounds a hang.
    let reader = std::thread::spawn(move || {
        let _ = BufReader::new(out).read_line(&mut line);
        line
    });
    wait_port(port, script);
    let line = reader.join().unwrap();
    assert_eq!(line.trim(), "ready", "{script} did not start");
    (port, proc)
}

// ---------------------------------------------------------------------------
// A raw WebSocket client.

/// The key and answer from RFC 6455 §1.3.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

struct Ws {
    s: TcpStream,
}

/// The gateway's answer to an upgrade request: the socket when it switched protocols.
struct Upgrade {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    ws: Option<Ws>,
}

impl Upgrade {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn ws_connect(port: u16, path: &str, extra: &[&str]) -> Upgrade {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // Read the head byte by byte so no frame after it is swallowed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(
            s.read(&mut b).unwrap(),
            1,
            "connection closed in the head: {head:?}"
        );
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut up = Upgrade {
        status,
        headers,
        body: String::new(),
        ws: None,
    };
    if status == 101 {
        up.ws = Some(Ws { s });
    } else {
        let n: usize = up
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; n];
        s.read_exact(&mut body).unwrap();
        up.body = String::from_utf8_lossy(&body).into_owned();
        // A refused upgrade leaves no pipe open: frames sent anyway are read as HTTP
        // (and refused) or meet a closed connection; they never reach the application.
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            rest.is_empty() || rest.starts_with("HTTP/1.1 400"),
            "after a refused upgrade: {rest:?}"
        );
    }
    up
}

impl Ws {
    /// Sends one masked frame (clients must mask, RFC 6455 §5.3).
    fn send(&mut self, opcode: u8, payload: &[u8]) {
        let mut f = vec![0x80 | opcode];
        let n = payload.len();
        if n < 126 {
            f.push(0x80 | n as u8);
        } else if n <= 0xffff {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).unwrap();
    }

    fn text(&mut self, t: &str) {
        self.send(0x1, t.as_bytes());
    }

    /// One whole (unfragmented, unmasked) frame from the server: (opcode, payload).
    fn recv(&mut self) -> (u8, Vec<u8>) {
        let mut h = [0u8; 2];
        self.s.read_exact(&mut h).unwrap();
        assert_eq!(h[0] & 0x80, 0x80, "fragmented frame");
        assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
        let n = match h[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.s.read_exact(&mut b).unwrap();
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                self.s.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut p = vec![0u8; n];
        self.s.read_exact(&mut p).unwrap();
        (h[0] & 0x0f, p)
    }

    fn recv_text(&mut self) -> String {
        let (op, p) = self.recv();
        assert_eq!(op, 0x1, "expected a text frame, got opcode {op}");
        String::from_utf8(p).unwrap()
    }

    /// The server's first message: what it received with the upgrade request.
    fn hello(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.recv_text()).unwrap()
    }

    /// The closing handshake, then the connection ends.
    fn close(mut self) {
        let t = Instant::now();
        self.send(0x8, &1000u16.to_be_bytes());
        let (op, p) = self.recv();
        assert_eq!(op, 0x8, "expected a close frame");
        assert_eq!(&p[..2], &1000u16.to_be_bytes());
        let mut rest = Vec::new();
        let _ = self.s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "bytes after close: {rest:?}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "close took {:?}",
            t.elapsed()
        );
    }
}

/// The values of `name` (any case) among the headers the WebSocket server received.
fn received(hello: &serde_json::Value, name: &str) -> Vec<String> {
    hello["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|kv| kv[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|kv| kv[1].as_str().unwrap().to_string())
        .collect()
}

fn ws_gateway() -> (Gateway, Proc) {
    let (port, ws) = python_server("ws_echo.py");
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(port),
            ..Default::default()
        },
    );
    (g, ws)
}

#[test]
fn websocket_for_a_signed_in_person_carries_identity_and_messages_both_ways() {
    let (g, _ws) = ws_gateway();
    let session = g.login("alice");
    let cookie = format!("Cookie: theme=dark; {session}");
    let up = ws_connect(
        g.port,
        "/chat/room?id=7",
        &[
            &cookie,
            "Remote-User: mallory",
            "X-Forwarded-User: mallory",
            "Origin: http://app.test",
        ],
    );
    assert_eq!(up.status, 101, "{:?} {}", up.headers, up.body);
    assert_eq!(up.header("sec-websocket-accept"), Some(WS_ACCEPT));
    assert!(up
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket")));
    let mut ws = up.ws.unwrap();

    // Server → client: the upgrade request as the application saw it.
    let hello = ws.hello();
    assert_eq!(hello["path"], "/chat/room?id=7");
    assert_eq!(received(&hello, "remote-user"), ["alice"]);
    assert_eq!(received(&hello, "remote-email"), ["alice@example.com"]);
    assert_eq!(received(&hello, "remote-groups"), ["admins,staff"]);
    assert_eq!(received(&hello, "remote-name"), ["Alice Exämple"]);
    assert!(received(&hello, "x-forwarded-user").is_empty());
    assert_eq!(received(&hello, "cookie"), ["theme=dark"]);
    assert_eq!(received(&hello, "x-forwarded-host"), [HOST]);
    // The application got the gateway's own key (whose accept value the client can't
    // reckon, nor an application that echoes headers fake); the client the accept of
    // its own, above.
    let key = received(&hello, "sec-websocket-key");
    assert!(
        key.len() == 1 && key[0] != WS_KEY && key[0].len() == 24,
        "{key:?}"
    );
    assert!(received(&hello, "upgrade")
        .iter()
        .any(|v| v.eq_ignore_ascii_case("websocket")));

    // Client → server → client: text, a 300 KiB binary message (64-bit length), a ping.
    ws.text("hello through the gateway");
    assert_eq!(ws.recv_text(), "hello through the gateway");
    let big: Vec<u8> = (0..300 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    ws.send(0x2, &big);
    let (op, back) = ws.recv();
    assert_eq!(op, 0x2);
    assert!(back == big, "binary message changed on the way");
    ws.send(0x9, b"are you there");
    assert_eq!(ws.recv(), (0xA, b"are you there".to_vec()));
    // Server-initiated messages while the client says nothing.
    ws.text("push 3 0.05");
    for i in 0..3 {
        assert_eq!(ws.recv_text(), format!("push {i}"));
    }
    ws.close();
}

#[test]
fn websocket_without_a_session_is_refused_and_never_reaches_the_application() {
    let (g, _ws) = ws_gateway();

    // A browser is sent to sign in.
    let up = ws_connect(g.port, "/chat", &["Accept: text/html"]);
    assert_eq!(up.status, 302, "{}", up.body);
    assert_eq!(up.header("location"), Some("/_auth/login?rd=%2Fchat"));
    assert!(up.header("upgrade").is_none());

    // Anything else gets 401 JSON, also with a forged or signed-out cookie.
    for extra in [
        &[][..],
        &["Cookie: portcullis=forged"][..],
        &["Remote-User: alice"][..],
    ] {
        let up = ws_connect(g.port, "/chat", extra);
        assert_eq!(up.status, 401, "{extra:?}: {}", up.body);
        assert!(up.header("upgrade").is_none());
        let v: serde_json::Value = serde_json::from_str(&up.body).unwrap();
        assert_eq!(v["error"], "unauthenticated");
    }

    // None of those reached the application: this is its first request.
    let session = g.login("bob");
    let up = ws_connect(g.port, "/chat", &[&format!("Cookie: {session}")]);
    assert_eq!(up.status, 101, "{}", up.body);
    let mut ws = up.ws.unwrap();
    let hello = ws.hello();
    assert_eq!(
        hello["requests"], 1,
        "refused upgrades reached the application"
    );
    assert_eq!(received(&hello, "remote-user"), ["bob"]);
    ws.close();

    // A signed-out session is refused like no session.
    let form = g.get(
        "/_auth/logout",
        &["Accept: text/html", &format!("Cookie: {session}")],
    );
    let fields = [("csrf", form.csrf())];
    let out = g.req(
        "POST",
        HOST,
        "/_auth/logout",
        &["Accept: text/html", &format!("Cookie: {session}")],
        Some(&form_body(&fields)),
    );
    assert!(
        out.status < 400,
        "sign-out failed: {} {}",
        out.status,
        out.body
    );
    let up = ws_connect(g.port, "/chat", &[&format!("Cookie: {session}")]);
    assert_eq!(up.status, 401, "{}", up.body);
}

fn form_body(fields: &[(&str, String)]) -> String {
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form(&pairs)
}

#[test]
fn websocket_on_a_bypass_path_works_anonymously() {
    let (g, _ws) = ws_gateway();
    let up = ws_connect(
        g.port,
        "/public/feed",
        &[
            "Remote-User: mallory",
            "X-Remote-User: mallory",
            "X-Forwarded-Email: m@x",
        ],
    );
    assert_eq!(up.status, 101, "{}", up.body);
    let mut ws = up.ws.unwrap();
    let hello = ws.hello();
    assert_eq!(hello["path"], "/public/feed");
    for h in [
        "remote-user",
        "remote-email",
        "remote-name",
        "remote-groups",
        "x-remote-user",
        "x-forwarded-email",
    ] {
        assert!(
            received(&hello, h).is_empty(),
            "{h} reached the application"
        );
    }
    ws.text("anonymous hello");
    assert_eq!(ws.recv_text(), "anonymous hello");
    ws.close();
}

/// A `101` that doesn't complete the WebSocket handshake (no `Sec-WebSocket-Accept`
/// for the request's key: an endpoint whose status the caller picks, say) opens no
/// tunnel: the client gets 502, and nothing it sends after reaches the application,
/// where no rule would judge it (attack pass).
#[test]
fn a_101_that_completes_no_handshake_opens_no_tunnel() {
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = up.local_addr().unwrap().port();
    let after = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let seen = after.clone();
    let upstream = std::thread::spawn(move || {
        let Ok((s, _)) = up.accept() else { return };
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            line.clear();
        }
        let _ = r
            .get_mut()
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        seen.lock().unwrap().extend(rest);
    });
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(up_port),
            ..Default::default()
        },
    );
    // (`ws_connect` sends a frame after a refused upgrade, and checks it goes nowhere.)
    let refused = ws_connect(g.port, "/public/feed", &[]);
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert!(
        g.log().contains("without completing the upgrade"),
        "{}",
        g.log()
    );
    // (The application's side ends when the gateway drops the connection, or after 3 s.)
    upstream.join().unwrap();
    assert!(
        after.lock().unwrap().is_empty(),
        "bytes after the 101 reached the application: {:?}",
        String::from_utf8_lossy(&after.lock().unwrap())
    );
}

// ---------------------------------------------------------------------------
// Large bodies.

const MIB: u64 = 1024 * 1024;
const BIG: u64 = 200 * MIB;
/// How much the gateway may grow while 200 MB pass through it.
const MAX_GROWTH_KIB: u64 = 64 * 1024;

/// `VmRSS` or `VmHWM` of a process, in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// User + system CPU time of a process, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Samples a process's resident memory every 20 ms until stopped; returns the highest.
struct RssWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut max = 0;
            while !flag.load(Ordering::Relaxed) {
                max = max.max(proc_kib(pid, "VmRSS"));
                std::thread::sleep(Duration::from_millis(20));
            }
            max.max(proc_kib(pid, "VmRSS"))
        });
        RssWatch { stop, thread }
    }

    fn peak(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// A body generated on the fly: 1 MiB pieces of fixed noise, each starting with its
/// index, so a lost, repeated or reordered piece changes the hash.
struct Body {
    block: Vec<u8>,
    index: u64,
    left: u64,
}

impl Body {
    fn new(len: u64) -> Body {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let block = (0..MIB)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Body {
            block,
            index: 0,
            left: len,
        }
    }

    /// The next piece (at most `max` bytes), or None at the end.
    fn next(&mut self, max: usize) -> Option<&[u8]> {
        if self.left == 0 {
            return None;
        }
        let n = (max.min(self.block.len()) as u64).min(self.left) as usize;
        self.block[..8].copy_from_slice(&self.index.to_be_bytes());
        self.index += 1;
        self.left -= n as u64;
        Some(&self.block[..n])
    }
}

/// Reads a response head; returns (status, headers).
fn read_head(r: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut status = 0;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "connection closed in the head"
        );
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if status == 0 {
            status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (status, headers)
}

fn head_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Reads a response body to its end (Content-Length, chunked, or close), hashing it.
fn hash_body(r: &mut impl BufRead, headers: &[(String, String)]) -> (u64, String) {
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let mut copy = |r: &mut dyn Read, mut left: Option<u64>| loop {
        let want = left.map_or(buf.len(), |l| l.min(buf.len() as u64) as usize);
        if want == 0 {
            return;
        }
        let got = r.read(&mut buf[..want]).unwrap();
        if got == 0 {
            assert!(left.is_none(), "body cut short after {n} bytes");
            return;
        }
        h.update(&buf[..got]);
        n += got as u64;
        left = left.map(|l| l - got as u64);
    };
    if head_value(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap(), 16).unwrap();
            if size == 0 {
                let mut end = String::new();
                while r.read_line(&mut end).unwrap() > 0 && end.trim() != "" {
                    end.clear();
                }
                break;
            }
            copy(r, Some(size));
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).unwrap();
        }
    } else {
        let len = head_value(headers, "content-length").map(|v| v.parse().unwrap());
        copy(r, len);
    }
    (n, hex::encode(h.finalize()))
}

fn connect(port: u16, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    s
}

/// Uploads `len` generated bytes (Content-Length, or chunked), `pause` between pieces of
/// `piece` bytes; returns the upstream's JSON answer and the sha256 of what was sent.
fn upload(
    port: u16,
    cookie: &str,
    len: u64,
    chunked: bool,
    piece: usize,
    pause: Duration,
) -> (serde_json::Value, String) {
    let mut s = connect(port, Duration::from_secs(120));
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {len}")
    };
    write!(
        s,
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\n\
         Content-Type: application/octet-stream\r\n{framing}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = Body::new(len);
    let mut h = Sha256::new();
    while let Some(p) = body.next(piece) {
        h.update(p);
        if chunked {
            write!(s, "{:x}\r\n", p.len()).unwrap();
            s.write_all(p).unwrap();
            s.write_all(b"\r\n").unwrap();
        } else {
            s.write_all(p).unwrap();
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    if chunked {
        s.write_all(b"0\r\n\r\n").unwrap();
    }
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let mut text = String::new();
    let n: usize = head_value(&headers, "content-length")
        .unwrap()
        .parse()
        .unwrap();
    r.take(n as u64).read_to_string(&mut text).unwrap();
    assert_eq!(status, 200, "{text}");
    (
        serde_json::from_str(&text).unwrap(),
        hex::encode(h.finalize()),
    )
}

/// Downloads `query` from the bulk upstream through the gateway; returns (bytes, sha256).
fn download(port: u16, cookie: &str, query: &str) -> (u64, String) {
    let s = connect(port, Duration::from_secs(120));
    let mut r = BufReader::with_capacity(256 * 1024, s);
    write!(
        r.get_mut(),
        "GET /download?{query} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (status, headers) = read_head(&mut r);
    assert_eq!(status, 200);
    hash_body(&mut r, &headers)
}

/// What the bulk upstream says it sent as download `id`.
fn sent(upstream: u16, id: &str) -> serde_json::Value {
    let r = try_request(
        upstream,
        &format!("GET /sent?id={id} HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "download {id} not recorded");
    serde_json::from_str(&r.body).unwrap()
}

fn bulk_gateway(extra: &str) -> (Gateway, u16, Proc) {
    let (port, up) = python_server("bulk_upstream.py");
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(port),
            extra: extra.to_string(),
            ..Default::default()
        },
    );
    (g, port, up)
}

/// Runs `f` while watching the gateway's memory; returns (growth over `base` at the peak
/// in KiB, seconds taken).
fn measured(pid: u32, base: u64, what: &str, f: impl FnOnce()) -> (u64, f64) {
    let watch = RssWatch::start(pid);
    let cpu = cpu_ticks(pid);
    let t = Instant::now();
    f();
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_ticks(pid) - cpu;
    let peak = watch.peak();
    let growth = peak.saturating_sub(base);
    eprintln!(
        "{what}: {secs:.1} s ({:.0} MiB/s), gateway CPU {:.1} s, RSS {base} -> peak {peak} KiB (+{growth} KiB)",
        BIG as f64 / MIB as f64 / secs,
        cpu as f64 / 100.0,
    );
    assert!(
        growth < MAX_GROWTH_KIB,
        "{what}: the gateway grew by {growth} KiB while 200 MB passed through"
    );
    (growth, secs)
}

#[test]
fn large_bodies_stream_through_without_being_buffered() {
    let (g, up, _up) = bulk_gateway("");
    let cookie = g.login("alice");
    let pid = g.pid();

    // Warm up (threads, buffers, connection pool) before taking the baseline.
    let (v, sha) = upload(
        g.port,
        &cookie,
        4 * MIB,
        false,
        MIB as usize,
        Duration::ZERO,
    );
    assert_eq!(v["sha256"], sha.as_str());
    let (n, _) = download(g.port, &cookie, &format!("bytes={}&id=warm", 4 * MIB));
    assert_eq!(n, 4 * MIB);
    let base = proc_kib(pid, "VmRSS");

    let mut answer = serde_json::Value::Null;
    let mut sha = String::new();
    measured(pid, base, "upload 200 MB, Content-Length", || {
        (answer, sha) = upload(g.port, &cookie, BIG, false, MIB as usize, Duration::ZERO);
    });
    assert_eq!(answer["bytes"], BIG);
    assert_eq!(answer["sha256"], sha.as_str());
    assert_eq!(answer["chunked"], false);
    assert_eq!(answer["headers"]["remote-user"], "alice");

    measured(pid, base, "upload 200 MB, chunked", || {
        (answer, sha) = upload(g.port, &cookie, BIG, true, MIB as usize, Duration::ZERO);
    });
    assert_eq!(answer["bytes"], BIG);
    assert_eq!(answer["sha256"], sha.as_str());
    assert_eq!(answer["chunked"], true);

    let mut got = (0, String::new());
    measured(pid, base, "download 200 MB, Content-Length", || {
        got = download(g.port, &cookie, &format!("bytes={BIG}&id=cl"));
    });
    let want = sent(up, "cl");
    assert_eq!(got.0, BIG);
    assert_eq!(want["bytes"], BIG);
    assert_eq!(want["sha256"], got.1.as_str());

    measured(pid, base, "download 200 MB, chunked", || {
        got = download(g.port, &cookie, &format!("bytes={BIG}&id=ch&chunked=1"));
    });
    let want = sent(up, "ch");
    assert_eq!(got.0, BIG);
    assert_eq!(want["sha256"], got.1.as_str());

    let hwm = proc_kib(pid, "VmHWM");
    eprintln!("gateway VmHWM after all transfers: {hwm} KiB (baseline RSS {base} KiB)");
    assert!(hwm.saturating_sub(base) < MAX_GROWTH_KIB, "peak {hwm} KiB");
    // Pingora logs (at ERROR) a pooled upstream connection it found closed and replaced
    // (the test upstream closes idle connections); that's not a failed transfer.
    assert!(
        g.log()
            .lines()
            .all(|l| !l.contains("ERROR") || l.contains("failed to acquire reusable stream")),
        "{}",
        g.log()
    );
}

/// The gateway bounds each read of a request body (30 s) and each read from the upstream
/// (`server.upstream_timeout`, 2 s here), not the whole transfer: bodies that keep moving
/// take as long as they take, in both directions. A body that stops is still cut off.
#[test]
fn slow_but_steady_transfers_outlast_the_timeouts() {
    let (g, up, _up) = bulk_gateway("#server\nupstream_timeout = \"2s\"\n#end\n");
    let cookie = g.login("alice");
    const PIECE: u64 = 64 * 1024;
    const PIECES: u64 = 36;

    // Upload: one piece a second for 36 s; the upstream answers only at the end.
    let port = g.port;
    let c = cookie.clone();
    let slow_up = std::thread::spawn(move || {
        let t = Instant::now();
        let (v, sha) = upload(
            port,
            &c,
            PIECES * PIECE,
            true,
            PIECE as usize,
            Duration::from_secs(1),
        );
        (v, sha, t.elapsed())
    });
    // Download: the upstream sends one piece a second for 36 s; the client only reads.
    let t = Instant::now();
    let (n, sha) = download(
        g.port,
        &cookie,
        &format!("bytes={}&chunk={PIECE}&delay=1&id=slow", PIECES * PIECE),
    );
    let took = t.elapsed();
    assert_eq!(n, PIECES * PIECE);
    assert_eq!(sent(up, "slow")["sha256"], sha.as_str());
    assert!(took > Duration::from_secs(30), "{took:?}");
    let (v, sha, took) = slow_up.join().unwrap();
    assert_eq!(v["bytes"], PIECES * PIECE);
    assert_eq!(v["sha256"], sha.as_str());
    assert!(took > Duration::from_secs(30), "{took:?}");
    eprintln!("slow upload and download: {:.1} s each", took.as_secs_f64());
}

/// The per-read timeout still holds: an upload that stops mid-body is cut off.
#[test]
fn a_stalled_upload_is_cut_off() {
    let (g, _up, _p) = bulk_gateway("#server\nupstream_timeout = \"90s\"\n#end\n");
    let cookie = g.login("alice");
    let mut s = connect(g.port, Duration::from_secs(60));
    write!(
        s,
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\nContent-Length: 1000\r\n\r\nonly ten b"
    )
    .unwrap();
    let t = Instant::now();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let _ = r.read_line(&mut line);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(29) && took < Duration::from_secs(45),
        "{took:?}: {line:?}"
    );
    assert!(line.starts_with("HTTP/1.1 408 "), "{line:?}");
}

/// An upgraded connection is bounded by `server.upstream_timeout` of silence in both
/// directions (as nginx's `proxy_read_timeout` bounds it), not by the 30 s limit on each
/// read of a request body: a WebSocket quiet for 35 s stays open under a 40 s timeout.
#[test]
fn a_quiet_websocket_lasts_as_long_as_the_upstream_timeout() {
    let (port, _ws) = python_server("ws_echo.py");
    let g = Gateway::start(
        Backend::Memory,
        Options {
            upstream_port: Some(port),
            extra: "#server\nupstream_timeout = \"40s\"\n#end\n".into(),
            ..Default::default()
        },
    );
    let up = ws_connect(g.port, "/public/quiet", &[]);
    assert_eq!(up.status, 101, "{}", up.body);
    let mut ws = up.ws.unwrap();
    ws.hello();
    std::thread::sleep(Duration::from_secs(35));
    ws.text("still there?");
    assert_eq!(ws.recv_text(), "still there?");
    ws.close();
}
