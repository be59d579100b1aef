//! Talking to a gateway process over real HTTP/1.1 on loopback: one request per
//! connection ([`try_request`], [`raw_request`], the [`Gateway`] methods), the
//! signed-in shortcuts ([`get`], [`post`], [`html`]), and a [`Client`] that
//! keeps cookies across requests. In-process (no HTTP, fake clock): see
//! [`super::inproc`].

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::*;

impl Gateway {
    pub fn raw(&self, raw: &str) -> Resp {
        try_request(self.port, raw).unwrap()
    }

    /// A request with Host app.test; `headers` are extra lines like "Accept: text/html".
    pub fn get(&self, path: &str, headers: &[&str]) -> Resp {
        self.req("GET", HOST, path, headers, None)
    }

    pub fn req(
        &self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[&str],
        body: Option<&str>,
    ) -> Resp {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for h in headers {
            raw.push_str(h);
            raw.push_str("\r\n");
        }
        if let Some(b) = body {
            raw.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            raw.push_str("\r\n");
        }
        self.raw(&raw)
    }

    /// Fetches the sign-in form: (pre-session cookie pair, CSRF token).
    pub fn login_form(&self) -> (String, String) {
        let r = self.get("/_auth/login", &["Accept: text/html"]);
        assert_eq!(r.status, 200, "{}", r.body);
        let pre = r.cookie("portcullis_pre").expect("pre-session cookie");
        (pre, r.csrf())
    }

    pub fn post_login(&self, identifier: &str, password: &str, rd: &str) -> Resp {
        let (pre, csrf) = self.login_form();
        let fields = [
            ("csrf", csrf.as_str()),
            ("identifier", identifier),
            ("password", password),
            ("rd", rd),
        ];
        self.submit_login(&pre, &fields, &["Accept: text/html"])
    }

    /// Posts the sign-in form with the pre-session cookie `pre`, these fields and extra headers.
    pub fn submit_login(&self, pre: &str, fields: &[(&str, &str)], headers: &[&str]) -> Resp {
        let cookie = format!("Cookie: {pre}");
        let mut all = vec![cookie.as_str()];
        all.extend_from_slice(headers);
        self.req("POST", HOST, "/_auth/login", &all, Some(&form(fields)))
    }

    /// Signs in and returns the `portcullis=...` cookie pair.
    pub fn login(&self, identifier: &str) -> String {
        let r = self.post_login(identifier, PASSWORD, "/");
        assert_eq!(
            r.status, 303,
            "sign-in as {identifier} failed: {} {}",
            r.status, r.body
        );
        r.cookie("portcullis").expect("session cookie")
    }

    /// Passes the second step for the signed-in `cookie` pair with a code sent by
    /// `method` (`email`, `sms`, `voice`); returns the stepped-up session's cookie pair.
    pub fn step_up(&self, cookie: &str, method: &str) -> String {
        self.step_up_with(cookie, method, &[])
    }

    /// [`step_up`](Self::step_up), the last step (where the session is made) sent
    /// with `headers` too (a browser's `User-Agent`, say).
    pub fn step_up_with(&self, cookie: &str, method: &str, headers: &[&str]) -> String {
        let before = self.outbox().len();
        let page = get(self, &format!("/_auth/2fa?method={method}"), cookie);
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page.csrf();
        let sent = post(
            self,
            "/_auth/2fa/send",
            cookie,
            &[("csrf", &csrf), ("method", method)],
        );
        assert_eq!(sent.status, 200, "{}", sent.body);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let msg = loop {
            if let Some(m) = self.outbox().get(before) {
                break m.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {method} code sent"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let code: String = msg["text"]
            .as_str()
            .unwrap()
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a six-digit code")
            .to_string();
        let fields = [("csrf", csrf.as_str()), ("method", method), ("code", &code)];
        let cookie = cookie_hdr(cookie);
        let mut sent_with = vec![cookie.as_str(), "Accept: text/html"];
        sent_with.extend(headers.iter().filter(|h| !h.starts_with("Accept:")));
        let ok = self.req("POST", HOST, "/_auth/2fa", &sent_with, Some(&form(&fields)));
        assert_eq!(ok.status, 303, "{}", ok.body);
        ok.cookie("portcullis").expect("the stepped-up session")
    }

    /// The messages the `file` notifier has written so far.
    pub fn outbox(&self) -> Vec<serde_json::Value> {
        read_outbox(&self.dir.path().join("outbox.jsonl"))
    }

    /// The first message of `kind` in the outbox, waiting up to 10 s for it
    /// (messages go out off the request path); fails with `what` when none comes.
    pub fn wait_message(&self, kind: &str, what: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(m) = self.outbox().into_iter().find(|m| m["kind"] == kind) {
                return m;
            }
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// The JSON lines of an outbox file (none when it doesn't exist yet).
pub fn read_outbox(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `name=value` pair of a Set-Cookie that sets (not clears) `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.split(';').next().unwrap_or("").trim().to_string())
            .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
    }

    pub fn csrf(&self) -> String {
        let i = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("csrf field")
            + 19;
        self.body[i..].split('"').next().unwrap().to_string()
    }

    /// The sample app's JSON echo.
    pub fn echo(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not an upstream echo: {} {}", self.status, self.body))
    }
}

pub fn try_request(port: u16, raw: &str) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.write_all(raw.as_bytes())?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no response: {text:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Resp {
        status,
        headers,
        body: body.to_string(),
    })
}

/// The hidden `rd` field of a sign-in page, unescaped.
pub fn rd_field(body: &str) -> String {
    body.split("name=\"rd\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// A raw HTTP/1.1 request to `port`: request-line target, Host value, extra header
/// lines and an optional form body (`Connection: close`). `Err` when the peer hung up.
pub fn raw_request(
    port: u16,
    method: &str,
    target: &str,
    host: &str,
    headers: &[&str],
    body: Option<&str>,
) -> std::io::Result<Resp> {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    match body {
        Some(b) => raw.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None if method == "POST" => raw.push_str("Content-Length: 0\r\n\r\n"),
        None => raw.push_str("\r\n"),
    }
    try_request(port, &raw)
}

pub fn cookie_hdr(c: &str) -> String {
    format!("Cookie: {c}")
}

/// A page with the cookie pair(s) `cookie`, as a browser asks (`Accept: text/html`).
pub fn get(g: &Gateway, path: &str, cookie: &str) -> Resp {
    g.get(path, &[&cookie_hdr(cookie), "Accept: text/html"])
}

/// A form posted with the cookie pair(s) `cookie`, as a browser posts it.
pub fn post(g: &Gateway, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Resp {
    g.req(
        "POST",
        HOST,
        path,
        &[&cookie_hdr(cookie), "Accept: text/html"],
        Some(&form(fields)),
    )
}

/// A page without cookies, as a browser asks.
pub fn html(g: &Gateway, path: &str) -> Resp {
    g.get(path, &["Accept: text/html"])
}

/// A cookie jar for the raw HTTP client.
pub struct Client<'a> {
    pub g: &'a Gateway,
    pub cookies: Vec<(String, String)>,
}

impl<'a> Client<'a> {
    pub fn new(g: &'a Gateway) -> Client<'a> {
        Client {
            g,
            cookies: Vec::new(),
        }
    }
    pub fn cookie_line(&self) -> String {
        format!(
            "Cookie: {}",
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        )
    }
    pub fn keep(&mut self, r: &Resp) {
        for (k, v) in &r.headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap().trim();
                let (n, val) = pair.split_once('=').unwrap();
                self.cookies.retain(|(k, _)| k != n);
                if !val.is_empty() {
                    self.cookies.push((n.to_string(), val.to_string()));
                }
            }
        }
    }
    pub fn get(&mut self, path: &str) -> Resp {
        let c = self.cookie_line();
        let r = self.g.get(path, &["Accept: text/html", &c]);
        self.keep(&r);
        r
    }
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let c = self.cookie_line();
        let body = form(fields);
        let raw = format!(
            "POST {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nAccept: text/html\r\n{c}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let t = std::time::Instant::now();
        let r = try_request(self.g.port, &raw).unwrap_or_else(|e| {
            panic!(
                "POST {path}: {e} after {:?}\ngateway log:\n{}",
                t.elapsed(),
                self.g.log()
            )
        });
        self.keep(&r);
        r
    }
    pub fn sign_in(&mut self, rd: &str) -> Resp {
        let page = self.get("/_auth/login");
        let csrf = page.csrf();
        self.post(
            "/_auth/login",
            &[
                ("csrf", &csrf),
                ("identifier", "alice"),
                ("password", PASSWORD),
                ("rd", rd),
            ],
        )
    }
}

/// The text between the first `start` and the next `end` of a page.
pub fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in page:\n{s}"))
        + start.len();
    s[i..].split(end).next().unwrap()
}
