//! TLS and HTTP/2: the gateway's own TLS listener (rustls, ALPN h2 + http/1.1),
//! HSTS, certificate reload on SIGHUP, and verified TLS to an upstream signed by
//! a private CA. Certificates are made per test with the openssl CLI in a temp
//! folder; clients are curl (HTTP/2) and a tokio-rustls client (one connection
//! kept open across reloads). Every wait is bounded; every process is stopped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;
use crate::operations::signal;

/// A private CA in a temp folder, and leaf certificates it signs.
struct Pki {
    dir: tempfile::TempDir,
}

fn run(cmd: &str, args: &[&str], dir: &Path) {
    // `timeout` bounds every external tool.
    let o = Command::new("timeout")
        .arg("30")
        .arg(cmd)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ca.cnf"),
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = Portcullis Test CA\n\
             [v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier = hash\n",
        )
        .unwrap();
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-config",
                "ca.cnf",
                "-extensions",
                "v3_ca",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
            ],
            dir.path(),
        );
        Pki { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A leaf for `names` with common name `cn`: (`{file}.pem`, `{file}.key`).
    fn leaf(&self, file: &str, cn: &str, serial: u32, names: &[&str]) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        std::fs::write(
            d.join(format!("{file}.ext")),
            format!(
                "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n\
                 extendedKeyUsage = serverAuth\nsubjectAltName = {}\n",
                sans.join(",")
            ),
        )
        .unwrap();
        let (key, csr, pem, ext) = (
            format!("{file}.key"),
            format!("{file}.csr"),
            format!("{file}.pem"),
            format!("{file}.ext"),
        );
        run(
            "openssl",
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={cn}"),
            ],
            d,
        );
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial.to_string(),
                "-days",
                "2",
                "-out",
                &pem,
                "-extfile",
                &ext,
            ],
            d,
        );
        (d.join(pem), d.join(key))
    }
}

/// A gateway serving TLS with `cert`/`key`, Secure cookies, and `tls_extra`
/// lines in `[server.tls]` (e.g. `hsts = ...`).
fn tls_gateway(cert: &Path, key: &Path, tls_extra: &str) -> Gateway {
    Gateway::start(
        Backend::Memory,
        Options {
            extra: format!(
                "#session\nsecure = true\n#end\n[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n{tls_extra}\n",
                cert.display(),
                key.display()
            ),
            ..Default::default()
        },
    )
}

struct CurlOut {
    status: u16,
    /// `%{http_version}`: "2" or "1.1".
    version: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl CurlOut {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_curl(o: &std::process::Output) -> CurlOut {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "curl failed: {} {out}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (rest, version) = out.rsplit_once('\n').unwrap();
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    CurlOut {
        status,
        version: version.trim().to_string(),
        headers,
        body: body.to_string(),
    }
}

fn curl_cmd(port: u16, ca: &Path, host: &str, path: &str, args: &[&str]) -> Command {
    let mut c = Command::new("/usr/bin/curl");
    c.args(["-sS", "--max-time", "15", "-i", "-w", "\n%{http_version}"])
        .arg("--cacert")
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(args)
        .arg(format!("https://{host}:{port}{path}"));
    c
}

/// One request with curl over TLS to `host` (resolved to loopback).
fn curl(port: u16, ca: &Path, host: &str, path: &str, args: &[&str]) -> CurlOut {
    let o = curl_cmd(port, ca, host, path, args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    parse_curl(&o)
}

#[test]
fn tls_listener_speaks_h2_and_h1_signs_in_with_secure_cookies_and_sends_hsts() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("server", "portcullis-gen1", 1, &[HOST, "other.test"]);
    let ca = pki.ca();
    let g = tls_gateway(
        &cert,
        &key,
        "hsts = \"max-age=31536000; includeSubDomains\"",
    );
    let sts = "max-age=31536000; includeSubDomains";

    // ALPN: HTTP/2 when the client offers it, HTTP/1.1 otherwise.
    let r = curl(g.port, &ca, HOST, "/_auth/health", &["--http2"]);
    assert_eq!((r.status, r.version.as_str()), (200, "2"), "{}", r.body);
    let r = curl(g.port, &ca, HOST, "/_auth/health", &["--http1.1"]);
    assert_eq!((r.status, r.version.as_str()), (200, "1.1"), "{}", r.body);

    // HSTS on the gateway's pages, its refusals, and proxied answers, in both protocols.
    for proto in ["--http2", "--http1.1"] {
        let page = curl(
            g.port,
            &ca,
            HOST,
            "/_auth/login",
            &[proto, "-H", "Accept: text/html"],
        );
        assert_eq!(page.status, 200);
        assert_eq!(
            page.header("strict-transport-security"),
            Some(sts),
            "{proto}"
        );
        let refused = curl(g.port, &ca, HOST, "/private", &[proto]);
        assert_eq!(refused.status, 401);
        assert_eq!(
            refused.header("strict-transport-security"),
            Some(sts),
            "{proto}"
        );
        let proxied = curl(g.port, &ca, HOST, "/public/x", &[proto]);
        assert_eq!(proxied.status, 200);
        assert_eq!(
            proxied.header("strict-transport-security"),
            Some(sts),
            "{proto}"
        );
        // The upstream learns the request came over TLS.
        let echo: serde_json::Value = serde_json::from_str(&proxied.body).unwrap();
        assert_eq!(echo["headers"]["x-forwarded-proto"], "https", "{proto}");
        // A GET with a body (over HTTP/2, DATA frames after the headers) is refused.
        // Over HTTP/2 the answer comes before the body is read, and ends with
        // RST_STREAM(NO_ERROR) (RFC 9113 §8.1, as h2 sends it). curl 7.88 fails such an
        // answer with exit 92 when it arrives before curl has sent its DATA (seen under
        // load: the gateway's log showed HEADERS 400, DATA END_STREAM, then the reset).
        // So a 92 is asked again, a few times: a 400 must still come.
        let with_body = (0..5)
            .map(|_| {
                curl_cmd(
                    g.port,
                    &ca,
                    HOST,
                    "/public/x",
                    &[proto, "-X", "GET", "--data", "a=1"],
                )
                .stdin(Stdio::null())
                .output()
                .unwrap()
            })
            .find(|o| o.status.code() != Some(92))
            .map(|o| parse_curl(&o))
            .expect("curl failed with 92 five times");
        assert_eq!(with_body.status, 400, "{proto}: {}", with_body.body);
    }

    // Sign-in over HTTP/2: Secure cookies, then the app sees the identity.
    let jar = g.dir.path().join("jar.txt");
    let jar_s = jar.to_str().unwrap();
    let form = curl(
        g.port,
        &ca,
        HOST,
        "/_auth/login",
        &["--http2", "-c", jar_s, "-H", "Accept: text/html"],
    );
    let i = form.body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = form.body[i..].split('"').next().unwrap().to_string();
    let r = curl(
        g.port,
        &ca,
        HOST,
        "/_auth/login",
        &[
            "--http2",
            "-b",
            jar_s,
            "-c",
            jar_s,
            "-H",
            "Accept: text/html",
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            "identifier=alice",
            "--data-urlencode",
            &format!("password={PASSWORD}"),
            "--data-urlencode",
            "rd=/",
        ],
    );
    assert_eq!((r.status, r.version.as_str()), (303, "2"), "{}", r.body);
    let session = r
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("portcullis="))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    assert!(session.contains("; Secure"), "{session}");
    assert!(session.contains("HttpOnly"), "{session}");
    for proto in ["--http2", "--http1.1"] {
        let r = curl(g.port, &ca, HOST, "/dashboard", &[proto, "-b", jar_s]);
        assert_eq!(r.status, 200, "{proto}: {}", r.body);
        let echo: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(echo["headers"]["remote-user"], "alice");
    }

    // An HTTP/2 connection isn't cut by the (HTTP/1) header deadline: a request
    // body that takes longer than `header_timeout` still gets its answer.
    let g_slow = Gateway::start(
        Backend::Memory,
        Options {
            extra: format!(
                "#server\nheader_timeout = \"1s\"\n#end\n[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                key.display()
            ),
            ..Default::default()
        },
    );
    let mut child = curl_cmd(
        g_slow.port,
        &ca,
        HOST,
        // The gateway's own pages read the whole body before answering.
        "/_auth/login",
        &["--http2", "-X", "POST", "-T", "-"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let start = Instant::now();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first half ").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    stdin.write_all(b"second half").unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let r = parse_curl(&o);
    assert!(start.elapsed() >= Duration::from_millis(2500));
    // No CSRF token: refused, but answered, on the same HTTP/2 stream.
    assert_eq!((r.status, r.version.as_str()), (403, "2"), "{}", r.body);
    // And no HSTS where it isn't configured.
    for proto in ["--http2", "--http1.1"] {
        let page = curl(
            g_slow.port,
            &ca,
            HOST,
            "/_auth/login",
            &[proto, "-H", "Accept: text/html"],
        );
        assert_eq!(page.status, 200);
        assert_eq!(page.header("strict-transport-security"), None);
        let proxied = curl(g_slow.port, &ca, HOST, "/public/x", &[proto]);
        assert_eq!(proxied.status, 200);
        assert_eq!(proxied.header("strict-transport-security"), None);
    }
}

/// A TLS client that trusts only `ca`, for connections held across reloads.
struct TlsClient {
    connector: pingora::tls::TlsConnector,
}

type Conn = pingora::tls::ClientTlsStream<tokio::net::TcpStream>;

impl TlsClient {
    fn new(ca: &Path) -> TlsClient {
        pingora::tls::install_default_crypto_provider();
        let mut roots = pingora::tls::RootCertStore::empty();
        let pem = std::fs::read(ca).unwrap();
        for c in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(c.unwrap()).unwrap();
        }
        let cfg = pingora::tls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsClient {
            connector: pingora::tls::TlsConnector::from(Arc::new(cfg)),
        }
    }

    async fn connect(&self, port: u16) -> std::io::Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let name = pingora::tls::ServerName::try_from(HOST).unwrap().to_owned();
        self.connector.connect(name, tcp).await
    }
}

/// The common name of the certificate the server showed on this connection.
fn peer_cn(c: &Conn) -> String {
    let der = c.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    cn
}

/// One keep-alive HTTP/1.1 request on `c`; the status.
async fn keepalive_get(c: &mut Conn, path: &str) -> u16 {
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = c.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.trim().parse().unwrap())
                .expect("content-length");
            if body.len() >= len {
                return head.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
        }
    }
}

/// Waits up to 10 s for a new connection to show a certificate named `cn`.
async fn wait_for_cn(client: &TlsClient, port: u16, cn: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = client.connect(port).await.unwrap();
        let seen = peer_cn(&c);
        if seen == cn {
            return;
        }
        assert!(Instant::now() < deadline, "still {seen}, wanted {cn}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wait_log(g: &Gateway, needle: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while g.log().matches(needle).count() < times {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in log: {}",
            g.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_swaps_the_certificate_for_new_handshakes_and_keeps_open_connections() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("server", "portcullis-gen1", 1, &[HOST]);
    let (cert2, key2) = pki.leaf("server2", "portcullis-gen2", 2, &[HOST]);
    let (cert3, _) = pki.leaf("server3", "portcullis-gen3", 3, &[HOST]);
    let g = tls_gateway(&cert, &key, "");
    let client = TlsClient::new(&pki.ca());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut old = client.connect(g.port).await.unwrap();
            assert_eq!(peer_cn(&old), "portcullis-gen1");
            assert_eq!(keepalive_get(&mut old, "/_auth/health").await, 200);

            // New certificate and key in place, then SIGHUP.
            std::fs::copy(&key2, &key).unwrap();
            std::fs::copy(&cert2, &cert).unwrap();
            signal(g.pid(), "HUP");
            wait_for_cn(&client, g.port, "portcullis-gen2").await;
            // The connection opened before the reload still works.
            assert_eq!(keepalive_get(&mut old, "/_auth/health").await, 200);
            assert_eq!(keepalive_get(&mut old, "/public/x").await, 200);
            let r = curl(g.port, &pki.ca(), HOST, "/_auth/health", &["--http2"]);
            assert_eq!((r.status, r.version.as_str()), (200, "2"));

            // A broken certificate: the running one stays, the error is logged.
            std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
            signal(g.pid(), "HUP");
            wait_log(&g, "TLS certificate not reloaded", 1);
            // A certificate that doesn't match the key: refused too.
            std::fs::copy(&cert3, &cert).unwrap();
            signal(g.pid(), "HUP");
            wait_log(&g, "TLS certificate not reloaded", 2);
            assert!(g.log().contains("don't go together"), "{}", g.log());
            let mut fresh = client.connect(g.port).await.unwrap();
            assert_eq!(peer_cn(&fresh), "portcullis-gen2");
            assert_eq!(keepalive_get(&mut fresh, "/_auth/health").await, 200);
            assert_eq!(keepalive_get(&mut old, "/_auth/health").await, 200);
        })
        .await
        .expect("bounded");
    });
    assert!(
        g.log().matches("panicked").count() == 0,
        "gateway panicked: {}",
        g.log()
    );
}

/// An HTTPS upstream on loopback (python3 http.server behind ssl) answering 200.
struct TlsUpstream {
    port: u16,
    _p: Proc,
}

const PY_HTTPS: &str = r#"
import http.server, ssl, sys
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("tls upstream " + self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

impl TlsUpstream {
    fn start(cert: &Path, key: &Path) -> TlsUpstream {
        let port = free_port();
        let child = Command::new("/usr/bin/python3")
            .args(["-c", PY_HTTPS, &port.to_string()])
            .arg(cert)
            .arg(key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let p = Proc(child);
        wait_port(port, "python https upstream");
        TlsUpstream { port, _p: p }
    }
}

#[test]
fn upstream_tls_is_verified_against_the_sites_ca_or_the_system_roots() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("upstream", "upstream", 7, &["tls.test", "noca.test"]);
    let up = TlsUpstream::start(&cert, &key);
    let ca = pki.ca();
    let site = |host: &str, ca_line: &str| {
        format!(
            "[[site]]\nhost = \"{host}\"\nupstream = \"127.0.0.1:{}\"\nupstream_tls = true\n{ca_line}\n",
            up.port
        )
    };
    let with_ca = format!("upstream_ca = \"{}\"", ca.display());
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: format!(
                "{}{}{}",
                site("tls.test", &with_ca),
                site("noca.test", ""),
                // The CA is right but the certificate doesn't name this host.
                site("wrong.test", &with_ca),
            ),
            ..Default::default()
        },
    );
    // Trusted through the site's CA, name checked: the upstream's answer.
    let r = g.req("GET", "tls.test", "/public/x", &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "tls upstream /public/x");
    // Kept-alive pooled TLS connection: again.
    let r = g.req("GET", "tls.test", "/public/y", &[], None);
    assert_eq!((r.status, r.body.as_str()), (200, "tls upstream /public/y"));
    // Without the CA (system roots) the private CA isn't trusted: the 502 page.
    for host in ["noca.test", "wrong.test"] {
        let r = g.req("GET", host, "/public/x", &["Accept: text/html"], None);
        assert_eq!(r.status, 502, "{host}: {}", r.body);
        assert!(r.body.contains("not responding"), "{host}: {}", r.body);
        assert!(!r.body.contains("tls upstream"), "{host}");
    }
    // For the right reasons: an unknown issuer, a name the certificate doesn't carry.
    let log = g.log();
    assert!(log.contains("UnknownIssuer"), "{log}");
    assert!(log.contains("not valid for name \"wrong.test\""), "{log}");
    // The gateway is still there.
    assert_eq!(g.get("/_auth/health", &[]).status, 200);
    assert!(!g.log().contains("panicked"), "{}", g.log());

    // check-config names a CA file that can't be used.
    let text = std::fs::read_to_string(&g.config).unwrap();
    let broken = g.dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        text.replace(&ca.display().to_string(), "missing-ca.pem"),
    )
    .unwrap();
    let o = cli(&broken, &["check-config"], None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    assert!(err.contains("upstream_ca"), "{err}");
    assert!(err.contains("missing-ca.pem"), "{err}");
}
