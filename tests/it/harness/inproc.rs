//! The in-process gateway: an [`App`] on a [`FakeClock`](portcullis::clock::FakeClock),
//! driven through `portal::handle` by a [`Browser`] (its cookies and address) that
//! gets [`Page`]s back — no HTTP, no sleeping. Used where a test moves time
//! (the ladder, codes, TOTP windows); over HTTP, see [`super::http`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use portcullis::app::App;
use portcullis::portal::{self, Response};
use portcullis::respond;

use super::*;

pub(crate) struct Env {
    pub(crate) app: Arc<App>,
    pub(crate) dir: tempfile::TempDir,
    /// The gateway's clock: tests move it instead of sleeping.
    pub(crate) clock: portcullis::clock::FakeClock,
    _redis: Option<Redis>,
}

impl Env {
    /// Lets `d` pass. The gateway's clock moves at once; with Redis, whose TTLs run
    /// on real time, the test also waits it out for real.
    pub(crate) async fn pass(&self, d: Duration) {
        self.clock.advance_by(d);
        if self._redis.is_some() {
            tokio::time::sleep(d).await;
        }
    }

    /// The gateway's Unix time, in seconds.
    pub(crate) fn now(&self) -> u64 {
        portcullis::clock::Clock::now(&self.clock)
    }

    /// The messages sent so far (after waiting for those still going out).
    pub(crate) async fn outbox(&self) -> Vec<serde_json::Value> {
        self.app.outgoing_settled().await;
        read_outbox(&self.app.config.load().notify.file)
    }

    /// The messages written to the outbox so far, without waiting.
    pub(crate) fn outbox_now(&self) -> Vec<serde_json::Value> {
        read_outbox(&self.dir.path().join("outbox.jsonl"))
    }
}

pub(crate) fn env(backend: Backend, defense: &str) -> Env {
    let redis = (backend == Backend::Redis).then(Redis::start);
    let dir = tempfile::tempdir().unwrap();
    let store = match &redis {
        Some(r) => format!(
            "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
            r.url()
        ),
        None => String::new(),
    };
    let text = format!(
        "[session]\nsecure = false\n{store}\n[[site]]\nhost = \"{HOST}\"\nupstream = \"127.0.0.1:9\"\n{defense}"
    );
    let cfg = portcullis::config::Config::from_str(&text, dir.path()).unwrap();
    portcullis::secrets::Secrets::create_missing(&cfg.secrets_dir).unwrap();
    let hash = portcullis::auth::password::hash_now(PASSWORD).unwrap();
    portcullis::users::file::update(&cfg.users_file, |u| {
        for (name, email, phone, groups) in [
            (
                "alice",
                "alice@example.com",
                "+14155552671",
                vec!["admins".to_string()],
            ),
            ("bob", "bob@example.com", "", vec![]),
        ] {
            u.push(portcullis::users::User {
                name: name.into(),
                email: email.into(),
                phone: phone.into(),
                groups,
                password: hash.clone(),
                ..Default::default()
            });
        }
        Ok::<_, ()>(())
    })
    .unwrap()
    .unwrap();
    // Started near the real time, so lock deadlines stay close to Redis's own (real)
    // TTLs; 5 s into a TOTP step, so codes computed by a test at `Env::now` are
    // checked in that same step (the clock only moves when a test moves it).
    let real = portcullis::clock::Clock::now(&portcullis::clock::SystemClock);
    let clock = portcullis::clock::FakeClock::at(real - real % 30 + 5);
    Env {
        app: Arc::new(App::with_clock(cfg, None, Arc::new(clock.clone())).unwrap()),
        dir,
        clock,
        _redis: redis,
    }
}

/// Where an account stands for a browser never seen before (a fresh address, no device).
pub(crate) async fn standing(e: &Env, account: &str) -> portcullis::defense::Standing {
    let cfg = e.app.config.load();
    e.app
        .defense
        .standing(
            &cfg.defense,
            Some(account),
            None,
            "192.0.2.250".parse().unwrap(),
        )
        .await
        .unwrap()
}

/// One browser: its cookies and its address.
pub(crate) struct Browser {
    app: Arc<App>,
    pub(crate) jar: HashMap<String, String>,
    ip: IpAddr,
}

impl Browser {
    /// The messages sent so far (after waiting for those still going out).
    pub(crate) async fn outbox(&self) -> Vec<serde_json::Value> {
        self.app.outgoing_settled().await;
        read_outbox(&self.app.config.load().notify.file)
    }
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Page {
    pub(crate) fn field(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\" value=\"");
        let i = self.body.find(&needle)? + needle.len();
        Some(self.body[i..].split('"').next()?.to_string())
    }
    pub(crate) fn error(&self) -> String {
        self.body
            .split("id=\"error\">")
            .nth(1)
            .map(|s| s.split('<').next().unwrap().to_string())
            .unwrap_or_default()
    }
    pub(crate) fn header(&self, n: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }
}

impl Browser {
    pub(crate) fn new(env: &Env, ip: &str) -> Browser {
        Browser {
            app: env.app.clone(),
            jar: HashMap::new(),
            ip: ip.parse().unwrap(),
        }
    }

    /// The gateway's Unix time, in seconds.
    pub(crate) fn now(&self) -> u64 {
        self.app.clock.now()
    }

    /// The `Cookie` header this browser sends.
    pub(crate) fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// What the gateway makes of this browser's session cookie.
    pub(crate) async fn session(&self) -> portcullis::app::SessionState {
        self.app.session_state(&self.cookie_header()).await.unwrap()
    }

    pub(crate) async fn send(&mut self, method: &str, path: &str, body: &str) -> Page {
        let (sub, query) = path.split_once('?').unwrap_or((path, ""));
        let cookie = self.cookie_header();
        let m = ::http::Method::from_bytes(method.as_bytes()).unwrap();
        let req = portal::Request {
            method: &m,
            sub_path: sub,
            query,
            host: HOST,
            scheme: "http",
            cookie_header: &cookie,
            accept_html: true,
            accept_language: "",
            user_agent: "",
            client_ip: self.ip,
            origin: None,
            body: Bytes::from(body.to_string()),
            forwarded: None,
        };
        let r: Response = portal::handle(&self.app, req).await;
        // (Response headers are `http` types; the page keeps them as text.)
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    respond::titled(k),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap();
                let (n, val) = pair.split_once('=').unwrap();
                if val.is_empty() {
                    self.jar.remove(n);
                } else {
                    self.jar.insert(n.to_string(), val.to_string());
                }
            }
        }
        Page {
            status: r.status,
            body: String::from_utf8_lossy(&r.body).to_string(),
            headers,
        }
    }

    /// Opens the form and submits it; `captcha`: None = leave the field empty,
    /// Some(true) = solve it (through the library), Some(false) = answer wrongly.
    pub(crate) async fn sign_in(&mut self, id: &str, pw: &str, captcha: Option<bool>) -> Page {
        let form_page = self.send("GET", "/login", "").await;
        self.submit(&form_page, id, pw, captcha).await
    }

    /// `n` failed sign-ins in a row (solving each CAPTCHA); returns the last page.
    pub(crate) async fn fail_times(&mut self, id: &str, pw: &str, n: usize) -> Page {
        let mut last = self.sign_in(id, pw, Some(true)).await;
        for _ in 1..n {
            last = self.submit(&last, id, pw, Some(true)).await;
        }
        last
    }

    pub(crate) async fn submit(
        &mut self,
        form_page: &Page,
        id: &str,
        pw: &str,
        captcha: Option<bool>,
    ) -> Page {
        let csrf = form_page.field("csrf").unwrap();
        let cid = form_page.field("captcha_id").unwrap_or_default();
        let answer = match captcha {
            Some(true) if !cid.is_empty() => {
                self.app
                    .captchas
                    .answers_for_tests(&cid)
                    .await
                    .unwrap()
                    .unwrap()
                    .0
            }
            Some(false) => "wrong1".into(),
            _ => String::new(),
        };
        let body = form(&[
            ("csrf", &csrf),
            ("identifier", id),
            ("password", pw),
            ("captcha_id", &cid),
            ("captcha", &answer),
        ]);
        self.send("POST", "/login", &body).await
    }
}

macro_rules! both_async {
    ($name:ident, $f:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                $f(Backend::Memory).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                $f(Backend::Redis).await
            }
        }
    };
}
pub(crate) use both_async;
