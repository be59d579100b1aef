//! Test harness, the one place for test helpers: real processes on loopback. A
//! gateway (`portcullis serve`) in front of the sample app (`portcullis
//! sample-app`), a `redis-server` and PostgreSQL on free ports, and the CLI
//! ([`cli`]). Everything is killed on drop; every wait is bounded.
//!
//! - [`http`]: talking HTTP to a gateway process (raw requests, the signed-in
//!   shortcuts, a cookie-jar [`Client`]), and reading its outbox;
//! - [`inproc`]: the in-process gateway ([`Env`], [`Browser`], [`Page`]) on a
//!   fake clock, for tests that move time instead of sleeping.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod http;
mod inproc;

pub use http::*;
pub(crate) use inproc::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
pub const HOST: &str = "app.test";
pub const PASSWORD: &str = "correct horse battery";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real Unix time, in seconds (a gateway process runs on it).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits until the current 30-second TOTP step has a few seconds left either side,
/// so a code computed here is checked in the same step by a gateway process.
pub fn steady() {
    for _ in 0..40 {
        if (2..=24).contains(&(now() % 30)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start on port {port}");
}

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Redis {
    pub port: u16,
    proc: Option<Proc>,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Redis {
            port: free_port(),
            proc: None,
            _dir: dir,
        };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn stop(&mut self) {
        self.proc = None;
    }

    /// Stops (`SIGSTOP`) or continues (`SIGCONT`) the server: unreachable but
    /// keeping its data, as a store that hangs.
    pub fn signal(&self, sig: &str) {
        let pid = self.proc.as_ref().expect("redis-server running").0.id();
        let s = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(s.success(), "kill -{sig} {pid}");
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(self._dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        self.proc = Some(Proc(child));
        wait_port(self.port, "redis-server");
    }
}

pub struct Upstream {
    pub port: u16,
    _p: Proc,
}

impl Upstream {
    pub fn start() -> Upstream {
        let port = free_port();
        let child = Command::new(BIN)
            .args(["sample-app", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let p = Proc(child);
        wait_port(port, "sample app");
        Upstream { port, _p: p }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Memory,
    Redis,
}

pub struct Options {
    pub extra: String,
    pub rules: String,
    pub upstream_port: Option<u16>,
    pub redis_url: Option<String>,
    /// Lines inside the app.test `[[site]]` (after its `upstream`), e.g. a `[site.headers]` table.
    pub site: String,
    /// Where accounts live; the harness users are imported there.
    pub users: Users,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            extra: String::new(),
            rules: DEFAULT_RULES.to_string(),
            upstream_port: None,
            redis_url: None,
            site: String::new(),
            users: USERS_DEFAULT.with(|u| u.borrow().clone()),
        }
    }
}

pub const DEFAULT_RULES: &str = r#"
[[rule]]
path = "/public/"
policy = "bypass"

[[rule]]
path = "/readonly/"
methods = ["GET"]
policy = "bypass"

[[rule]]
path = "/lan/"
networks = ["10.0.0.0/8"]
policy = "bypass"

[[rule]]
path = "/admin"
groups = ["admins"]
policy = "one_factor"

[[rule]]
path = "/admin"
policy = "deny"

[[rule]]
path = "/secure/"
policy = "two_factor"
"#;

pub struct Gateway {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub proc: Option<Proc>,
    pub _upstream: Option<Upstream>,
    pub _redis: Option<Redis>,
}

/// Whether process `pid` holds a socket listening on `port` (Linux: a listening
/// socket's inode in /proc/net/tcp or tcp6 among the process's descriptors).
pub fn listens(pid: u32, port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    // local address, state (0A = LISTEN), inode
                    (f.get(1).is_some_and(|a| a.ends_with(&suffix)) && f.get(3) == Some(&"0A"))
                        .then(|| f.get(9).map(|i| format!("socket:[{i}]")))
                        .flatten()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|t| inodes.iter().any(|i| t.to_string_lossy() == *i))
    })
}

/// A failing test shows its gateway's log (the folder holding it goes with the test).
impl Drop for Gateway {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let exited = self
                .proc
                .as_mut()
                .and_then(|p| p.0.try_wait().ok().flatten())
                .map_or_else(|| "running".to_string(), |s| format!("exited: {s}"));
            eprintln!(
                "--- gateway on port {} ({exited}), its log:\n{}",
                self.port,
                self.log()
            );
        }
    }
}

impl Gateway {
    /// A gateway with users alice (admins), bob, and carol (disabled).
    pub fn start(backend: Backend, opts: Options) -> Gateway {
        let redis = (backend == Backend::Redis && opts.redis_url.is_none()).then(Redis::start);
        let redis_url = opts
            .redis_url
            .clone()
            .or_else(|| redis.as_ref().map(Redis::url));
        let upstream = if opts.upstream_port.is_none() {
            Some(Upstream::start())
        } else {
            None
        };
        let up_port = opts
            .upstream_port
            .unwrap_or_else(|| upstream.as_ref().unwrap().port);
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let store = match &redis_url {
            Some(u) => {
                format!("[store]\nbackend = \"redis\"\nredis_url = \"{u}\"\nkey_prefix = \"t:\"\n")
            }
            None => "[store]\nbackend = \"memory\"\n".to_string(),
        };
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n{extra_server}\n[session]\n{insecure}{session}\n{store}\n\
             [[site]]\nhost = \"{HOST}\"\nupstream = \"127.0.0.1:{up_port}\"\n{site}\n\n[[site]]\nhost = \"other.test\"\nupstream = \"127.0.0.1:{up_port}\"\n{rules}\n{extra}",
            extra_server = section(&opts.extra, "server"),
            session = section(&opts.extra, "session"),
            // Plain-HTTP tests need non-Secure cookies, unless a `#session` part says otherwise.
            insecure = if section(&opts.extra, "session").contains("secure") {
                ""
            } else {
                "secure = false\n"
            },
            rules = opts.rules,
            site = opts.site,
            extra = rest(&opts.extra),
        );
        // Tests that aren't about the defence ladder sign in often from one address.
        let config = if opts.extra.contains("[defense]") {
            config
        } else {
            format!("{config}\n[defense]\nip_per_minute = 100000\ncaptcha_after = 1000\nlock_after = 1000\nspray_per_minute = 0\n")
        };
        let config = format!("{config}{}", opts.users.section());
        let cfg_path = dir.path().join("portcullis.toml");
        std::fs::write(&cfg_path, config).unwrap();
        portcullis::secrets::Secrets::create_missing(&dir.path().join("secrets")).unwrap();
        let hash = portcullis::auth::password::hash_now(PASSWORD).unwrap();
        let users = dir.path().join("users.toml");
        portcullis::users::file::update(&users, |u| {
            u.push(portcullis::users::User {
                name: "alice".into(),
                display_name: "Alice Exämple".into(),
                email: "alice@example.com".into(),
                phone: "+14155552671".into(),
                groups: vec!["admins".into(), "staff".into()],
                password: hash.clone(),
                ..Default::default()
            });
            u.push(portcullis::users::User {
                name: "bob".into(),
                email: "bob@example.com".into(),
                password: hash.clone(),
                ..Default::default()
            });
            u.push(portcullis::users::User {
                name: "carol".into(),
                email: "carol@example.com".into(),
                password: hash.clone(),
                disabled: true,
                ..Default::default()
            });
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        if opts.users != Users::File {
            for args in [
                vec!["db", "migrate"],
                vec!["user", "import", "--from", users.to_str().unwrap()],
            ] {
                let out = cli(&cfg_path, &args, None);
                assert!(
                    out.status.success(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let mut g = Gateway {
            port,
            dir,
            config: cfg_path,
            proc: None,
            _upstream: upstream,
            _redis: redis,
        };
        g.spawn();
        g
    }

    pub fn spawn(&mut self) {
        // A port free when picked can be taken by another test's server before the
        // gateway binds it: then the gateway refuses to start ("cannot listen"), and
        // it starts again on another port (a few times at most).
        for _ in 0..3 {
            if self.spawn_once() {
                return;
            }
            let port = free_port();
            let cfg = std::fs::read_to_string(&self.config).unwrap();
            let cfg = cfg.replacen(
                &format!("listen = \"127.0.0.1:{}\"", self.port),
                &format!("listen = \"127.0.0.1:{port}\""),
                1,
            );
            std::fs::write(&self.config, cfg).unwrap();
            self.port = port;
        }
        panic!("gateway could not listen: {}", self.log());
    }

    /// Starts the gateway once: `false` when its port turned out taken.
    fn spawn_once(&mut self) -> bool {
        let child = Command::new(BIN)
            .args(["serve", "--config", self.config.to_str().unwrap()])
            .env("PORTCULLIS_LOG", "warn,audit=info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.path().join("gateway.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
        let deadline = Instant::now() + Duration::from_secs(30);
        // A TLS listener can't be asked over plain HTTP: there, a bound port is the
        // sign of life (tests then talk TLS themselves).
        let tls = std::fs::read_to_string(&self.config)
            .unwrap_or_default()
            .contains("[server.tls]");
        loop {
            // (Whatever answers must be this gateway: a port taken by another test's
            // application answers too, and the gateway then exits.)
            if let Some(status) = self.proc.as_mut().unwrap().0.try_wait().unwrap() {
                if self.log().contains("cannot listen") {
                    return false;
                }
                panic!("gateway exited with {status}: {}", self.log());
            }
            // What answers must be this gateway's own socket: another test's gateway
            // that took the port first answers the health check too (seen once: the
            // test then talked to that gateway until it stopped, and got refused).
            let ours = || listens(self.pid(), self.port);
            if tls && TcpStream::connect(("127.0.0.1", self.port)).is_ok() && ours() {
                return true;
            }
            if let Ok(r) = try_request(
                self.port,
                &format!("GET /_auth/health HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"),
            ) {
                if r.status == 200 && r.body.contains("\"status\"") && ours() {
                    return true;
                }
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not become healthy: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.proc.as_ref().unwrap().0.id()
    }

    /// Edits the users file as an operator does by hand: no version raised, no
    /// session ended (the gateway reads it again within a second).
    pub fn edit_users(&self, f: impl FnOnce(&mut Vec<portcullis::users::User>)) {
        portcullis::users::file::update(&self.dir.path().join("users.toml"), |u| {
            f(u);
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
    }

    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        cli(&self.config, args, stdin)
    }
}

fn section(extra: &str, name: &str) -> String {
    // Lines of `extra` under a `#server` or `#session` marker go into that section.
    let marker = format!("#{name}\n");
    extra
        .split("#end\n")
        .filter_map(|part| part.strip_prefix(&marker))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rest(extra: &str) -> String {
    extra
        .split("#end\n")
        .filter(|p| !p.starts_with("#server\n") && !p.starts_with("#session\n"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn cli(config: &std::path::Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut full: Vec<&str> = Vec::new();
    let cfg = config.to_str().unwrap();
    // Insert --config after the subcommand words (first two for user/session, else first).
    let split = if matches!(args.first(), Some(&"user" | &"session" | &"lock" | &"db")) {
        2
    } else {
        1
    };
    full.extend(&args[..split.min(args.len())]);
    full.extend(["--config", cfg]);
    full.extend(&args[split.min(args.len())..]);
    let mut child = Command::new(BIN)
        .args(&full)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// A header (name lower-cased, `_` as `-`) an application might take as identity,
/// client address, original URL or method, that no client may get through to it.
/// The gateway's own `X-Forwarded-For`/`-Proto`/`-Host` are not among them.
pub fn app_trusted_header(k: &str) -> bool {
    k.starts_with("remote-")
        || k.starts_with("x-remote-")
        || k.starts_with("x-auth-request-")
        || k.starts_with("x-webauth-")
        || k.starts_with("x-portcullis-")
        || k.contains("method")
        || k.starts_with("x-original")
        || k.starts_with("x-rewrite")
        || k.starts_with("x-ms-client-principal")
        || k.starts_with("x-goog-")
        || k.starts_with("oidc-claim-")
        || k == "forwarded"
        || k == "proxy"
        || k == "x-real-ip"
        || k == "true-client-ip"
        || (k.starts_with("x-forwarded-")
            && !["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"].contains(&k))
}

/// Waits (bounded) until the process `p` listens on `port`; panics with `what` and
/// the tail of `log` (when given) if it exits or doesn't start in time.
pub fn wait_listening(p: &mut Proc, port: u16, what: &str, log: Option<&std::path::Path>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        let said = || {
            log.and_then(|l| std::fs::read_to_string(l).ok())
                .unwrap_or_default()
        };
        if let Some(status) = p.0.try_wait().unwrap() {
            panic!("{what} exited with {status}: {}", said());
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not start: {}",
            said()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Something answers; if it isn't `what` (its port was taken between picking and
    // binding), `what` exits soon after, and the test would talk to a stranger.
    std::thread::sleep(Duration::from_millis(100));
    if let Some(status) = p.0.try_wait().unwrap() {
        panic!("{what} exited with {status} (port {port} taken?)");
    }
}

/// The README's first fenced block in `lang` (e.g. "nginx", "caddy"), as written.
pub fn readme_block(lang: &str) -> &'static str {
    let readme = include_str!("../../README.md");
    let fence = format!("```{lang}\n");
    let start = readme
        .find(&fence)
        .unwrap_or_else(|| panic!("no {lang} block in README"))
        + fence.len();
    let end = start + readme[start..].find("```").unwrap();
    &readme[start..end]
}

/// The first of `paths` that exists: a program the test needs.
pub fn installed(paths: &[&'static str], hint: &str) -> &'static str {
    paths
        .iter()
        .copied()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("{} is not installed ({hint})", paths[0]))
}

thread_local! {
    /// The accounts backend of `Options::default()` on this test's thread.
    static USERS_DEFAULT: std::cell::RefCell<Users> = const { std::cell::RefCell::new(Users::File) };
}

/// While alive, `Options::default()` on this thread puts accounts in `users`
/// (each test runs on a thread of its own), so a whole scenario runs on another backend.
pub struct UsersDefault(Users);

impl UsersDefault {
    pub fn set(users: Users) -> UsersDefault {
        let old = USERS_DEFAULT.with(|u| std::mem::replace(&mut *u.borrow_mut(), users));
        UsersDefault(old)
    }
}

impl Drop for UsersDefault {
    fn drop(&mut self) {
        let old = std::mem::take(&mut self.0);
        USERS_DEFAULT.with(|u| *u.borrow_mut() = old);
    }
}

/// Where a harness gateway keeps its accounts.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Users {
    /// The TOML users file (the default for configs without `backend`).
    #[default]
    File,
    /// `accounts.db` beside the config.
    Sqlite,
    /// A SQLite file given by URL (gateways sharing one file).
    SqliteUrl(String),
    /// A PostgreSQL database (URL).
    Postgres(String),
    /// A PostgreSQL database (URL) and more `[users]` lines.
    PostgresWith(String, String),
}

impl Users {
    /// The `[users]` section for this backend.
    pub fn section(&self) -> String {
        match self {
            Users::File => String::new(),
            Users::Sqlite => {
                "\n[users]\nbackend = \"sqlite\"\nurl = \"sqlite:accounts.db\"\n".to_string()
            }
            Users::SqliteUrl(url) => {
                format!("\n[users]\nbackend = \"sqlite\"\nurl = \"{url}\"\n")
            }
            Users::Postgres(url) => {
                format!("\n[users]\nbackend = \"postgres\"\nurl = \"{url}\"\nstale_for = \"1h\"\n")
            }
            Users::PostgresWith(url, more) => {
                format!("\n[users]\nbackend = \"postgres\"\nurl = \"{url}\"\n{more}\n")
            }
        }
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The PostgreSQL server programs (Debian keeps them under /usr/lib/postgresql/N/bin).
fn pg_bin(name: &str) -> String {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.iter()
        .rev()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .map(|p| p.to_string_lossy().to_string())
        .unwrap_or_else(|| name.to_string())
}

/// A command run as the `postgres` system user when we are root (PostgreSQL refuses root).
fn as_pg_user(program: &str, args: &[&str]) -> Command {
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

/// A throw-away PostgreSQL server: `initdb` in a temp dir, `pg_ctl start` on a
/// free loopback port, trust authentication; stopped by pid on drop.
pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        if running_as_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:", dir.path().to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown to postgres");
        }
        let data = dir.path().join("data");
        let out = as_pg_user(
            &pg_bin("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        .output()
        .expect("initdb is installed (scripts/test.sh installs postgresql)");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Postgres {
            port: free_port(),
            dir,
        };
        pg.restart();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one SQL statement with `psql` (as an operator would, outside Portcullis).
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }

    /// [`Postgres::psql`], with PostgreSQL's refusal as the error.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(pg_bin("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ])
            .output()
            .expect("psql is installed with postgresql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The postmaster's pid (first line of `postmaster.pid`), while it runs.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    pub fn restart(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("pg.log");
        let out = as_pg_user(
            &pg_bin("pg_ctl"),
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        wait_port(self.port, "postgres");
    }

    /// Kills the server (immediate shutdown, by pid) and waits until it is gone.
    pub fn kill(&self) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill")
            .args(["-QUIT", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|st| {
                    !st.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false)
        };
        while alive() {
            assert!(Instant::now() < deadline, "postgres {pid} did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(self.data().join("postmaster.pid"));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
    }
}
