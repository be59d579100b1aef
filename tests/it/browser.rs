//! Browser tests: headless Chromium (Debian's chromium + chromedriver, installed by
//! scripts/test.sh) driven over the W3C WebDriver protocol through the real pages of
//! a real gateway. No JavaScript on our side: forms are filled and buttons pressed as a
//! person would; the page's own behaviour (redirects, cookies, CSP) is the browser's.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One Chromium session behind a chromedriver on a free port. Closed and killed on drop.
pub(crate) struct Chrome {
    base: String,
    agent: ureq::Agent,
    _driver: Proc,
    _profile: tempfile::TempDir,
}

impl Chrome {
    pub(crate) fn start() -> Chrome {
        let port = free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/test.sh installs chromium-driver)");
        let driver = Proc(driver);
        wait_port(port, "chromedriver");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let profile = tempfile::tempdir().unwrap();
        let mut c = Chrome {
            base: format!("http://127.0.0.1:{port}"),
            agent,
            _driver: driver,
            _profile: profile,
        };
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    // The gateway's site is app.test: resolve it to loopback.
                    "--host-resolver-rules=MAP app.test 127.0.0.1",
                    format!("--user-data-dir={}", c._profile.path().display()),
                ]
            }
        }}});
        let v = c.raw("POST", "/session", Some(caps));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        c.base = format!("{}/session/{id}", c.base);
        c
    }

    pub(crate) fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let req = self.agent.request(method, &format!("{}{path}", self.base));
        let resp = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let text = match resp {
            Ok(r) => r.into_string().unwrap(),
            Err(ureq::Error::Status(_, r)) => r.into_string().unwrap(),
            Err(e) => panic!("webdriver {method} {path}: {e}"),
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        v.get("value").cloned().unwrap_or(v)
    }

    pub(crate) fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self.raw(method, path, body);
        assert!(v.get("error").is_none(), "webdriver {method} {path}: {v}");
        v
    }

    pub(crate) fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub(crate) fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap().to_string()
    }

    pub(crate) fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The element for a CSS selector, waiting up to 10 s for it to appear.
    pub(crate) fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.raw(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            );
            if let Some(id) = v.get(ELEMENT).and_then(Value::as_str) {
                return id.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no {css} on {}:\n{}",
                self.url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn count(&self, css: &str) -> usize {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        )
        .as_array()
        .map_or(0, Vec::len)
    }

    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub(crate) fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    pub(crate) fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Reads a property the browser computed (e.g. whether an image really loaded).
    pub(crate) fn script(&self, js: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
    }

    /// Waits until the address bar satisfies `f`.
    pub(crate) fn wait_url(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let u = self.url();
            if f(&u) {
                return u;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; at {u}:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Where axe-core's `axe.min.js` is: `PORTCULLIS_AXE_JS`, else the copy
/// `scripts/test.sh` installs from npm under `target/axe` (installed here when missing).
fn axe_source() -> &'static str {
    static SRC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SRC.get_or_init(|| {
        let path = std::env::var("PORTCULLIS_AXE_JS").unwrap_or_else(|_| {
            format!(
                "{}/target/axe/node_modules/axe-core/axe.min.js",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        if !std::path::Path::new(&path).exists() {
            let status = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(format!("{}/target/axe", env!("CARGO_MANIFEST_DIR")))
                .arg("axe-core@4.14.1")
                .status()
                .expect("npm (scripts/test.sh installs it)");
            assert!(status.success(), "npm install axe-core failed");
        }
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
}

/// Where screenshots go: `PORTCULLIS_SCREENSHOTS`, else `target/screenshots`.
pub(crate) fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::env::var("PORTCULLIS_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Chrome {
    /// Clicks `css` (a submit button) and waits until the next page has replaced
    /// this one, so what follows never touches the old page.
    pub(crate) fn submit(&self, css: &str) {
        self.script("window.__before_submit = true; return true;");
        self.click(css);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.script("return window.__before_submit === true;") == json!(true) {
            assert!(
                Instant::now() < deadline,
                "no new page after {css}: {}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.find("body");
    }

    /// Sets the viewport (CSS pixels, device scale 1) through Chromium's device
    /// emulation, which unlike the window has no minimum width.
    pub(crate) fn size(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(
                json!({ "cmd": "Emulation.setDeviceMetricsOverride", "params": {
                    "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500
                }}),
            ),
        );
    }

    /// axe-core's serious and critical violations on the page as it is now
    /// (WCAG 2.0/2.1/2.2 A and AA rules and best practices), one line each.
    pub(crate) fn axe_violations(&self) -> Vec<String> {
        // Injected through WebDriver (not the page), so the pages' CSP stays as strict.
        if self.script("return typeof window.axe === 'object';") != json!(true) {
            self.cmd(
                "POST",
                "/execute/sync",
                Some(json!({ "script": format!("{};\nreturn true;", axe_source()), "args": [] })),
            );
        }
        let v = self.cmd(
            "POST",
            "/execute/async",
            Some(json!({ "script": "const done = arguments[arguments.length - 1];\
                axe.run(document, { resultTypes: ['violations'] })\
                  .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,\
                     nodes: v.nodes.map(n => n.target.join(' ')) }))))\
                  .catch(e => done({ error: String(e) }));", "args": [] })),
        );
        assert!(v.get("error").is_none(), "axe failed: {v}");
        v.as_array()
            .unwrap()
            .iter()
            .filter(|x| matches!(x["impact"].as_str(), Some("serious" | "critical")))
            .map(|x| {
                format!(
                    "{} ({}): {} at {}",
                    x["id"], x["impact"], x["help"], x["nodes"]
                )
            })
            .collect()
    }

    /// Saves a PNG of the viewport as `NAME.png` in [`screenshot_dir`].
    pub(crate) fn screenshot(&self, name: &str) -> std::path::PathBuf {
        use base64::Engine;
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// One page state, checked as a person would meet it: at desktop width and at
    /// 320 px (what 1280 px is at 400 % zoom, and 640 px at 200 %), no serious or
    /// critical axe-core violation, nothing wider than the window (no sideways
    /// scrolling), and a screenshot of each (`STATE-desktop.png`, `STATE-phone.png`).
    pub(crate) fn check_state(&self, state: &str) {
        for (form, w, h) in [("desktop", 1280, 1000), ("phone", 320, 1200)] {
            self.size(w, h);
            let inner = self.script("return window.innerWidth;");
            let wide = self.script("return document.documentElement.scrollWidth;");
            assert!(
                wide.as_u64().unwrap() <= inner.as_u64().unwrap(),
                "{state} at {w} px: content {wide} px wide in a {inner} px window"
            );
            let bad = self.axe_violations();
            assert!(
                bad.is_empty(),
                "{state} ({form}): axe-core found:\n{}\n{}",
                bad.join("\n"),
                self.source()
            );
            self.screenshot(&format!("{state}-{form}"));
        }
        self.size(1280, 1000);
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // Closes the browser; chromedriver itself is killed by its Proc.
        let _ = self.agent.delete(&self.base).call();
    }
}

pub(crate) fn outbox_code(g: &Gateway) -> String {
    let text = std::fs::read_to_string(g.dir.path().join("outbox.jsonl")).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let t = last["text"].as_str().unwrap();
    let i = t.find(|c: char| c.is_ascii_digit()).unwrap();
    t[i..i + 6].to_string()
}

#[test]
fn sign_in_second_factor_and_enrolment_in_a_real_browser() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let chrome = Chrome::start();
    let site = format!("http://{HOST}:{}", g.port);

    // A protected page sends the browser to the sign-in form and back.
    chrome.go(&format!("{site}/secure/report?q=1"));
    chrome.wait_url("the sign-in page", |u| u.contains("/_auth/login?rd="));
    assert!(chrome.source().contains("Forgot your password?"));
    chrome.type_into("#identifier", "ALICE@example.com");
    chrome.type_into("#password", PASSWORD);
    chrome.click("button[type=submit]");
    // One factor isn't enough for /secure/: the challenge, with email, SMS and voice.
    chrome.wait_url("the challenge", |u| u.contains("/_auth/2fa?rd="));
    let page = chrome.source();
    assert!(page.contains("Two-step verification") && page.contains("Use a backup method"));
    chrome.click("#send");
    chrome.wait_url("the code page", |u| u.ends_with("/_auth/2fa/send"));
    assert!(chrome
        .text("#notice")
        .contains("We sent a code to a•••@example.com"));
    chrome.type_into("#code", &outbox_code(&g));
    chrome.click("form[action$='/2fa'] button[type=submit]");
    let back = chrome.wait_url("the original page", |u| u.ends_with("/secure/report?q=1"));
    assert_eq!(back, format!("{site}/secure/report?q=1"));
    assert!(
        chrome.source().contains("<td>alice</td>"),
        "{}",
        chrome.source()
    );

    // Enrolment: the QR code really renders under the page's CSP; the key typed from
    // the page's text gives the code; the backup codes show once.
    chrome.go(&format!("{site}/_auth/2fa/setup"));
    let loaded = chrome.script(
        "const i = document.querySelector('.qr img'); return i.complete && i.naturalWidth > 0;",
    );
    assert_eq!(loaded, json!(true), "QR image blocked or broken");
    let secret = chrome.text("#secret").replace(' ', "");
    let bytes = totp_rs::Secret::Encoded(secret.clone()).to_bytes().unwrap();
    let totp = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    );
    for _ in 0..40 {
        let r = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 30;
        if (2..=24).contains(&r) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    chrome.type_into("#code", &totp.generate(now));
    chrome.click("button[type=submit]");
    chrome.find("#backup-codes");
    assert_eq!(chrome.count("#backup-codes li"), 10);

    // Sign out, then in again: now the authenticator app is asked for.
    chrome.go(&format!("{site}/_auth/logout"));
    chrome.click("button[type=submit]");
    chrome.find("a[href$='/_auth/login']");
    chrome.go(&format!("{site}/page"));
    chrome.wait_url("the sign-in page", |u| u.contains("/_auth/login"));
    chrome.type_into("#identifier", "alice");
    chrome.type_into("#password", PASSWORD);
    chrome.click("button[type=submit]");
    chrome.wait_url("the challenge", |u| u.contains("/_auth/2fa"));
    assert!(chrome.source().contains("authenticator app"));
    chrome.type_into("#code", &totp.generate(now + 30));
    chrome.click("form[action$='/2fa'] button[type=submit]");
    chrome.wait_url("the page", |u| u.ends_with("/page"));
    assert!(chrome.source().contains("<td>alice</td>"));
}

#[test]
fn captcha_image_and_audio_load_under_the_pages_policy() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: "[defense]\ncaptcha_after = 1\nlock_after = 100\nip_per_minute = 10000\nspray_per_minute = 0\n".into(),
            ..Options::default()
        },
    );
    let chrome = Chrome::start();
    chrome.go(&format!("http://{HOST}:{}/_auth/login", g.port));
    chrome.type_into("#identifier", "alice");
    chrome.type_into("#password", "wrong password");
    chrome.click("button[type=submit]");
    chrome.find("fieldset.captcha img");
    let loaded = chrome.script(
        "const i = document.querySelector('fieldset.captcha img'); return i.complete && i.naturalWidth === 240;",
    );
    assert_eq!(loaded, json!(true), "CAPTCHA image blocked or broken");
    // The audio version plays from the page (media-src 'self'): the browser loads and
    // decodes it, and it lasts several seconds (seven digits with pauses).
    chrome.script("const a = document.querySelector('fieldset.captcha audio'); a.preload = 'auto'; a.load(); return true;");
    let mut duration = json!(null);
    for _ in 0..100 {
        duration = chrome.script("const a = document.querySelector('fieldset.captcha audio'); return a.readyState >= 1 ? a.duration : null;");
        if duration.is_number() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let secs = duration
        .as_f64()
        .unwrap_or_else(|| panic!("audio never loaded"));
    assert!(secs > 3.0 && secs < 30.0, "audio lasts {secs} s");
    assert!(chrome.text("#error").contains("not right"));
}
