//! Operator scenarios: CLI, users-file changes, SIGHUP reload, SIGTERM drain.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn init_writes_a_working_setup_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["init", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    let cfg = dir.path().join("portcullis.toml");
    let key = dir.path().join("secrets/cookie.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(std::fs::metadata(&key).unwrap().len() >= 64);
    let before = std::fs::read(&key).unwrap();
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap() + "\n# mine\n").unwrap();
    let o = Command::new(BIN)
        .args(["init", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(std::fs::read(&key).unwrap(), before, "secrets kept");
    assert!(
        std::fs::read_to_string(&cfg).unwrap().contains("# mine"),
        "config kept"
    );
    let o = cli(&cfg, &["check-config"], None);
    assert!(o.status.success(), "{}", out(&o));
}

/// `check-config` of `cfg` after writing `text` to it: whether it passed, and what it said.
fn check_config_of(cfg: &std::path::Path, text: &str) -> (bool, String) {
    std::fs::write(cfg, text).unwrap();
    let o = cli(cfg, &["check-config"], None);
    (o.status.success(), out(&o))
}

#[test]
fn check_config_reports_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    let (ok, text) = check_config_of(
        &cfg,
        "[session]\nidle_timeout = \"forever\"\ncolour = 1\n[store]\nbackend = \"mongo\"\n[[site]]\nhost = \"a.test\"\n",
    );
    assert!(!ok);
    assert!(text.contains("session.colour"), "{text}");
    assert!(
        text.contains("site[0].upstream") || text.contains("session.colour"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    std::fs::write(&cfg, "[session]\nidle_timeout = \"forever\"\n[store]\nbackend = \"mongo\"\n[[site]]\nhost = \"a.test\"\n").unwrap();
    let text = out(&cli(&cfg, &["check-config"], None));
    for key in ["session.idle_timeout", "store.backend", "site[0].upstream"] {
        assert!(text.contains(key), "{key} missing from: {text}");
    }
    // `serve` refuses the same file before binding anything.
    let o = cli(&cfg, &["serve"], None);
    assert!(!o.status.success());
}

/// With the config itself in order, every other problem is named in one run: each
/// key file readable by others, and the users file (attack pass: one per run, and
/// the second key file never).
#[cfg(unix)]
#[test]
fn check_config_names_the_secrets_and_accounts_problems_together() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    portcullis::secrets::Secrets::create_missing(&dir.path().join("secrets")).unwrap();
    for k in ["cookie.key", "data.key"] {
        let p = dir.path().join("secrets").join(k);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::write(dir.path().join("users.toml"), "[[user]\nname = ").unwrap();
    let (ok, text) = check_config_of(
        &dir.path().join("portcullis.toml"),
        "[session]\nsecure = false\n[[site]]\nhost = \"a.test\"\nupstream = \"127.0.0.1:9\"\n",
    );
    assert!(!ok);
    for part in ["cookie.key", "data.key", "users.toml"] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
    assert!(!text.contains("panicked"), "{text}");
}

/// Issue #12.5: an unknown key no longer hides the bad values; each problem
/// once, with its key path and a hint; `serve` stops before binding.
#[test]
fn check_config_reports_unknown_keys_and_bad_values_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    let (port, admin) = (free_port(), free_port());
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\
             trusted_proxies = [\"10.0.0.0/33\"]\n\
             [session]\nsecure = false\nidle_timout = \"30m\"\nabsolute_timeout = \"soon\"\n\
             [defence]\nlock_after = 3\n"
        ),
    )
    .unwrap();
    let o = cli(&cfg, &["check-config"], None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = out(&o);
    let expected = [
        "defence: unknown section; did you mean `defense`? (valid keys: server, secrets, session,",
        "server.trusted_proxies[0]: \"10.0.0.0/33\" is not a CIDR like \"10.0.0.0/8\"",
        "session.absolute_timeout: \"soon\" is not a duration (use e.g. \"90s\"",
        "session.idle_timout: unknown key; did you mean `idle_timeout`? (valid keys: cookie_name, domain, secure, same_site, idle_timeout, absolute_timeout",
        "site: at least one [[site]] is required",
    ];
    // Every problem, once each, in key-path order.
    let mut at = 0;
    for e in expected {
        let i = text[at..]
            .find(e)
            .unwrap_or_else(|| panic!("missing (or out of order) {e:?} in:\n{text}"));
        assert_eq!(text.matches(e).count(), 1, "{e:?} repeated:\n{text}");
        at += i + e.len();
    }
    assert!(!text.contains("panicked"), "{text}");
    // `serve` gives the same report and exits without binding either port.
    let mut child = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        for p in [port, admin] {
            assert!(
                std::net::TcpStream::connect(("127.0.0.1", p)).is_err(),
                "serve bound {p} with a broken config"
            );
        }
        assert!(Instant::now() < deadline, "serve kept running");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = out(&o);
    for e in expected {
        assert!(text.contains(e), "serve: missing {e:?} in:\n{text}");
    }
    for p in [port, admin] {
        assert!(std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
    }
}

#[test]
fn user_cli_manages_accounts_and_ends_sessions() {
    let g = Gateway::start(Backend::Memory, Options::default());
    // add: duplicate identifiers refused, in any spelling
    let o = g.cli(
        &[
            "user",
            "add",
            "dave",
            "--email",
            "Dave@Example.com",
            "--phone",
            "+44 20 7946 0958",
            "--groups",
            "ops,dev",
            "--password-stdin",
        ],
        Some("his long pass phrase\n"),
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = g.cli(
        &["user", "add", "dave2", "--email", "dave@EXAMPLE.com"],
        None,
    );
    assert!(!o.status.success());
    assert!(out(&o).contains("already belongs"), "{}", out(&o));
    let o = g.cli(
        &[
            "user",
            "add",
            "eve",
            "--email",
            "eve@example.com",
            "--phone",
            "+44 (0)20-7946-0958",
        ],
        None,
    );
    assert!(!o.status.success(), "same phone, other spelling");
    let o = g.cli(
        &["user", "add", "bad name", "--email", "x@example.com"],
        None,
    );
    assert!(!o.status.success());
    // short password refused
    let o = g.cli(
        &[
            "user",
            "add",
            "frank",
            "--email",
            "f@example.com",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!o.status.success());
    let list = out(&g.cli(&["user", "list"], None));
    assert!(
        list.contains("dave\tdave@example.com\t+442079460958\tops,dev"),
        "{list}"
    );
    assert!(!list.contains("$argon2"), "no hashes in listings");
    // the running gateway picks up the new user by itself
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = form(&[
        ("identifier", "+44 20 7946 0958"),
        ("password", "his long pass phrase"),
    ]);
    let mut ok = false;
    while Instant::now() < deadline && !ok {
        let (pre, csrf) = g.login_form();
        let r = g.req(
            "POST",
            HOST,
            "/_auth/login",
            &[&format!("Cookie: {pre}")],
            Some(&format!("{body}&csrf={csrf}")),
        );
        ok = r.status == 303;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ok, "new user can sign in without a restart");
    // sessions: list and revoke
    let c1 = format!("Cookie: {}", g.login("bob"));
    let c2 = format!("Cookie: {}", g.login("bob@example.com"));
    let listed = out(&g.cli(&["session", "list", "bob"], None));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let handle = listed
        .lines()
        .next()
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    let o = g.cli(&["session", "revoke", "bob", "--handle", &handle], None);
    assert!(out(&o).contains("ended 1"), "{}", out(&o));
    let statuses = [g.get("/x", &[&c1]).status, g.get("/x", &[&c2]).status];
    assert!(
        statuses.contains(&401) && statuses.contains(&200),
        "{statuses:?}"
    );
    // disable ends every session at once, and sign-in is refused
    let o = g.cli(&["user", "disable", "bob"], None);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(g.get("/x", &[&c1]).status, 401);
    assert_eq!(g.get("/x", &[&c2]).status, 401);
    assert_eq!(g.post_login("bob", PASSWORD, "/").status, 401);
    assert!(g.cli(&["user", "enable", "bob"], None).status.success());
    // set-password ends sessions and the old password stops working
    let alice = format!("Cookie: {}", g.login("alice"));
    let o = g.cli(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("a brand new password\n"),
    );
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(g.get("/x", &[&alice]).status, 401);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(g.post_login("alice", PASSWORD, "/").status, 401);
    assert_eq!(
        g.post_login("alice", "a brand new password", "/").status,
        303
    );
    // delete
    let r = g.post_login("alice@example.com", "a brand new password", "/");
    let alice = format!("Cookie: {}", r.cookie("portcullis").unwrap());
    assert_eq!(g.get("/x", &[&alice]).status, 200);
    assert!(g.cli(&["user", "delete", "alice"], None).status.success());
    assert_eq!(g.get("/x", &[&alice]).status, 401);
    assert!(!g.cli(&["user", "show", "alice"], None).status.success());
    assert!(!g.cli(&["user", "delete", "nobody"], None).status.success());
}

/// A session its account's deletion missed (the session store hung then) never
/// serves an account created later under the same name: a new account's versions
/// are its own (attack pass: the old cookie came through as the new person, groups
/// and all).
#[test]
fn an_account_made_again_under_a_deleted_name_takes_over_no_session() {
    let g = Gateway::start(Backend::Redis, Options::default());
    let old = format!("Cookie: {}", g.login("alice"));
    assert_eq!(g.get("/x", &[&old]).status, 200);
    let redis = g._redis.as_ref().unwrap();
    redis.signal("STOP");
    let o = g.cli(&["user", "delete", "alice"], None);
    redis.signal("CONT");
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sessions not ended now"),
        "the store was unreachable: {}",
        out(&o)
    );
    // The old session is still in the store; nothing used it while the name was free.
    let o = g.cli(
        &[
            "user",
            "add",
            "alice",
            "--email",
            "new.alice@example.com",
            "--groups",
            "admins",
            "--password-stdin",
        ],
        Some("a password of her own\n"),
    );
    assert!(o.status.success(), "{}", out(&o));
    // Once the gateway has the new account (a sign-in as it works) ...
    let deadline = Instant::now() + Duration::from_secs(10);
    while g.post_login("alice", "a password of her own", "/").status != 303 {
        assert!(Instant::now() < deadline, "the new account never signed in");
        std::thread::sleep(Duration::from_millis(100));
    }
    // ... the old cookie is refused, not forwarded as her.
    let r = g.get("/x", &[&old]);
    assert_eq!(r.status, 401, "{}", r.body);
}

/// The users file edited by hand: an account given another password, or removed
/// and written back, under the same (or no) `credentials_version`, keeps none of its
/// sessions (re-attack pass: the old cookie served the account written back).
#[test]
fn hand_edits_of_the_users_file_end_the_sessions_they_would_keep() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let refused_soon = |cookie: &str, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while g.get("/x", &[cookie]).status == 200 {
            assert!(
                Instant::now() < deadline,
                "{what}: the old session still works"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(g.get("/x", &[cookie]).status, 401, "{what}");
    };
    // Another password, by hand.
    let old = format!("Cookie: {}", g.login("bob"));
    assert_eq!(g.get("/x", &[&old]).status, 200);
    let other = portcullis::auth::password::hash_now("another password of bob").unwrap();
    g.edit_users(|u| {
        u.iter_mut()
            .filter(|u| u.name == "bob")
            .for_each(|b| b.password = other.clone())
    });
    refused_soon(&old, "password changed by hand");
    // Removed, then written back as it was (a new person, say, under the old name).
    let r = g.post_login("bob", "another password of bob", "/");
    let old = format!("Cookie: {}", r.cookie("portcullis").unwrap());
    assert_eq!(g.get("/x", &[&old]).status, 200);
    let mut bob = None;
    g.edit_users(|u| bob = u.iter().position(|u| u.name == "bob").map(|i| u.remove(i)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while g.post_login("bob", "another password of bob", "/").status == 303 {
        assert!(Instant::now() < deadline, "the removal was never read");
        std::thread::sleep(Duration::from_millis(100));
    }
    let back = bob.unwrap();
    g.edit_users(|u| u.push(back));
    refused_soon(&old, "removed and written back by hand");
}

/// A hand edit read while the session store is down ends the sessions once it is
/// back (re-attack pass: the ending was dropped after one failed try).
#[test]
fn a_hand_edit_read_while_the_store_is_down_ends_the_sessions_once_it_is_back() {
    let g = Gateway::start(Backend::Redis, Options::default());
    let old = format!("Cookie: {}", g.login("bob"));
    assert_eq!(g.get("/x", &[&old]).status, 200);
    let redis = g._redis.as_ref().unwrap();
    redis.signal("STOP");
    let other = portcullis::auth::password::hash_now("another password of bob").unwrap();
    g.edit_users(|u| {
        for b in u.iter_mut().filter(|u| u.name == "bob") {
            b.password = other.clone();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !g.log().contains("sessions not ended yet") {
        assert!(Instant::now() < deadline, "{}", g.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    redis.signal("CONT");
    let deadline = Instant::now() + Duration::from_secs(10);
    while g.get("/x", &[&old]).status != 401 {
        assert!(
            Instant::now() < deadline,
            "the old session outlived the edit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn session_cli_works_directly_against_redis() {
    let g = Gateway::start(Backend::Redis, Options::default());
    let c = format!("Cookie: {}", g.login("bob"));
    // Stop the gateway: with Redis the CLI needs no running gateway.
    let mut g = g;
    g.proc = None;
    let listed = out(&g.cli(&["session", "list", "bob"], None));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    // `--all` (the contract's spelling) is every session, as without it.
    assert_eq!(
        out(&g.cli(&["session", "list", "bob", "--all"], None)),
        listed
    );
    assert!(out(&g.cli(&["session", "revoke", "bob", "--all"], None)).contains("ended 1"));
    g.spawn();
    assert_eq!(g.get("/x", &[&c]).status, 401);
}

/// `hash-password` with `input` on its standard input.
fn hash_password(input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn hash_password_prints_argon2id() {
    let o = hash_password("some password\n");
    let phc = String::from_utf8(o.stdout).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(portcullis::auth::password::verify_now(
        "some password",
        phc.trim()
    ));
    // What no sign-in would take gets a clear error and no hash.
    let long = "x".repeat(1025) + "\n";
    // Cut inside a character at the reading bound: still "too long", not "not UTF-8".
    let long_wide = "\u{e9}".repeat(600) + "\n";
    for (input, says) in [
        ("\n", "empty"),
        ("a\tb\n", "control character"),
        (long.as_str(), "longer than 1024 bytes"),
        (long_wide.as_str(), "longer than 1024 bytes"),
    ] {
        let o = hash_password(input);
        assert!(!o.status.success());
        assert!(o.stdout.is_empty());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(says),
            "{}",
            out(&o)
        );
    }
}

/// Sends SIGHUP and waits (bounded) until `path`, opened by a rule in the new file,
/// is served without a session: the reload happened.
pub(crate) fn reload_until_open(g: &Gateway, path: &str) {
    signal(g.pid(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while g.get(path, &[]).status != 200 {
        assert!(Instant::now() < deadline, "the reload never opened {path}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A setting that changes only on restart is warned about on reload, and the gateway
/// keeps running on the one it started with: put back as it was, the next reload says
/// nothing (attack pass: the new value was stored anyway, so putting it back warned
/// again, and a later reload read a secrets folder not in use). The rest applies.
#[test]
fn sighup_warns_about_a_restart_only_change_and_keeps_running_on_the_old() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let cookie = format!("Cookie: {}", g.login("bob"));
    let text = std::fs::read_to_string(&g.config).unwrap();
    let text = text.replacen("[session]\n", "[session]\ncookie_name = \"other\"\n", 1);
    let text = text.replacen(
        "[[rule]]",
        "[[rule]]\npath = \"/newly-public/\"\npolicy = \"bypass\"\n\n[[rule]]",
        1,
    );
    std::fs::write(&g.config, &text).unwrap();
    let warned = |g: &Gateway| g.log().matches("change only on restart").count();
    reload_until_open(&g, "/newly-public/x");
    assert_eq!(warned(&g), 1, "{}", g.log());
    // The warning names the setting that waits.
    assert!(g.log().contains("session.cookie_name"), "{}", g.log());
    // Put back, with one more rule change to see the reload happen.
    let text = text.replacen("cookie_name = \"other\"\n", "", 1).replacen(
        "/newly-public/",
        "/public-too/",
        1,
    );
    std::fs::write(&g.config, text).unwrap();
    reload_until_open(&g, "/public-too/x");
    assert_eq!(warned(&g), 1, "{}", g.log());
    // Still the cookie it started with.
    assert_eq!(g.get("/x", &[&cookie]).status, 200);
    // Settings read at start only (the upstream pool's size, the admin listener)
    // warn on their own too, each named.
    assert!(
        !g.log().contains("upstream_idle_connections"),
        "{}",
        g.log()
    );
    let text = std::fs::read_to_string(&g.config).unwrap();
    let text = text
        .replacen(
            "[server]\n",
            "[server]\nupstream_idle_connections = 4\nadmin_listen = \"127.0.0.1:1\"\n",
            1,
        )
        .replacen("/public-too/", "/public-three/", 1);
    std::fs::write(&g.config, text).unwrap();
    reload_until_open(&g, "/public-three/x");
    assert_eq!(warned(&g), 2, "{}", g.log());
    for key in ["server.upstream_idle_connections", "server.admin_listen"] {
        assert!(g.log().contains(key), "{key}: {}", g.log());
    }
}

/// A new `portal_prefix` on SIGHUP moves the pages and their own links together
/// (attack pass: the links still pointed at the old prefix, which the proxy then
/// judged as an application path).
#[test]
fn sighup_moves_the_pages_and_their_links_to_a_new_portal_prefix() {
    let g = Gateway::start(Backend::Memory, Options::default());
    // (Links as the page writes them, `/` escaped.)
    let links = |p: &Resp| p.body.replace("&#x2f;", "/");
    let page = g.get("/_auth/login", &["Accept: text/html"]);
    assert!(links(&page).contains("/_auth/login?lang="), "{}", page.body);
    let text = std::fs::read_to_string(&g.config).unwrap();
    let text = text.replacen("[server]\n", "[server]\nportal_prefix = \"/_gate\"\n", 1);
    std::fs::write(&g.config, text).unwrap();
    signal(g.pid(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let p = g.get("/_gate/login", &["Accept: text/html"]);
        if p.status == 200 {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "never moved: {} {}",
            p.status,
            p.body
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(links(&page).contains("/_gate/login?lang="), "{}", page.body);
    assert!(!links(&page).contains("/_auth/"), "{}", page.body);
}

#[test]
fn sighup_reloads_rules_without_dropping_and_sigterm_drains() {
    let g = Gateway::start(Backend::Memory, Options::default());
    assert_eq!(g.get("/newly-public/x", &[]).status, 401);
    let text = std::fs::read_to_string(&g.config).unwrap();
    let text = text.replacen(
        "[[rule]]",
        "[[rule]]\npath = \"/newly-public/\"\npolicy = \"bypass\"\n\n[[rule]]",
        1,
    );
    std::fs::write(&g.config, text).unwrap();
    // Keep a connection open across the reload.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", g.port)).unwrap();
    signal(g.pid(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    use std::io::{Read, Write};
    s.write_all(
        format!("GET /newly-public/x HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    assert!(buf.starts_with("HTTP/1.1 200"), "{buf}");
    assert_eq!(g.get("/newly-public/x", &[]).status, 200);
    // A broken config on SIGHUP keeps the running one.
    std::fs::write(&g.config, "this is not toml [").unwrap();
    signal(g.pid(), "HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(g.get("/newly-public/x", &[]).status, 200);
    // SIGTERM: exits by itself within a few seconds.
    let mut g = g;
    signal(g.pid(), "TERM");
    let start = Instant::now();
    let mut proc = g.proc.take().unwrap();
    loop {
        if let Some(status) = proc.0.try_wait().unwrap() {
            assert!(status.success() || status.code().is_some(), "{status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn demo_serves_the_sample_app_after_sign_in() {
    let (port, app_port) = (free_port(), free_port());
    let child = Command::new(BIN)
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--app-listen",
            &format!("127.0.0.1:{app_port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut p = Proc(child);
    let mut stdout = std::io::BufReader::new(p.0.stdout.take().unwrap());
    let mut password = String::new();
    use std::io::BufRead;
    let mut config = String::new();
    for _ in 0..20 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        if let Some(pw) = line.trim().strip_prefix("password:") {
            password = pw.trim().to_string();
        }
        if let Some(c) = line.trim().strip_prefix("config:") {
            config = c.trim().to_string();
            break;
        }
    }
    assert!(!password.is_empty() && !config.is_empty());
    let dir = std::path::Path::new(&config)
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(dir.exists());
    let deadline = Instant::now() + Duration::from_secs(20);
    while try_request(
        port,
        "GET /_auth/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .is_err()
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = try_request(port, "GET /_auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n").unwrap();
    let pre = r.cookie("portcullis_pre").unwrap();
    let body = form(&[
        ("csrf", &r.csrf()),
        ("identifier", "demo"),
        ("password", &password),
        ("rd", "/"),
    ]);
    let raw = format!("POST /_auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {pre}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let r = try_request(port, &raw).unwrap();
    assert_eq!(r.status, 303);
    let cookie = r.cookie("portcullis").unwrap();
    let r = try_request(port, &format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Hello, Demo User!"), "{}", r.body);
    // Ctrl-C: the demo's throw-away folder (secrets, accounts) goes with it.
    signal(p.0.id(), "INT");
    assert!(exit_within(&mut p.0, Duration::from_secs(20)).is_some());
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Waits (bounded) for `child` to exit; `None` if it is still running after `limit`
/// (then it is killed).
fn exit_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `serve` of `config` (listening on `port`), once it answers; its log (`info`) on
/// its standard error.
fn serving(config: &std::path::Path, port: u16) -> std::process::Child {
    let child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("PORTCULLIS_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while try_request(
        port,
        "GET /_auth/health HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    )
    .is_err()
    {
        assert!(Instant::now() < deadline, "the gateway never served");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// A second `serve` of a config whose address is taken exits at once with the
/// address and the reason; a second gateway sharing the secrets folder (another
/// address) leaves the first's control socket alone, also when it stops. Either way
/// the CLI still reaches the first gateway. (Attack pass: the second took the
/// socket over, stayed up without a listener, and removed the socket at exit.)
#[test]
fn a_second_gateway_neither_starts_on_a_taken_address_nor_takes_the_control_socket() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let _bob = g.login("bob");
    let listed = || out(&g.cli(&["session", "list", "bob"], None));
    assert_eq!(listed().lines().count(), 1, "{}", listed());
    let mut same = Command::new(BIN)
        .args(["serve", "--config", g.config.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = exit_within(&mut same, Duration::from_secs(20));
    let o = same.wait_with_output().unwrap();
    assert!(
        status.is_some_and(|s| !s.success()),
        "still running, or succeeded"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{}", g.port)) && err.contains("in use"),
        "{err}"
    );
    assert_eq!(listed().lines().count(), 1, "{}", listed());
    // Another address, the same secrets folder.
    let port = free_port();
    let text = std::fs::read_to_string(&g.config).unwrap();
    let other = g.dir.path().join("second.toml");
    std::fs::write(
        &other,
        text.replace(
            &format!("127.0.0.1:{}", g.port),
            &format!("127.0.0.1:{port}"),
        ),
    )
    .unwrap();
    let mut second = serving(&other, port);
    assert_eq!(
        listed().lines().count(),
        1,
        "the CLI reaches the first: {}",
        listed()
    );
    signal(second.id(), "TERM");
    assert!(exit_within(&mut second, Duration::from_secs(20)).is_some());
    let err = String::from_utf8_lossy(&second.wait_with_output().unwrap().stderr).to_string();
    assert!(
        err.contains("another gateway answers on the control socket"),
        "{err}"
    );
    assert_eq!(
        listed().lines().count(),
        1,
        "after the second stopped: {}",
        listed()
    );
    // The other way round: when the first stops, a second one takes the socket over
    // (within a tick), so the CLI still reaches a gateway.
    let mut second = serving(&other, port);
    let config = g.config.clone();
    let mut g = g;
    g.proc = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = cli(&config, &["session", "list", "bob"], None);
        if o.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no gateway took the socket: {}",
            out(&o)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(second.id(), "TERM");
    assert!(exit_within(&mut second, Duration::from_secs(20)).is_some());
    let err = String::from_utf8_lossy(&second.wait_with_output().unwrap().stderr).to_string();
    assert!(err.contains("this one answers on it now"), "{err}");
}

/// A command whose output pipe is closed early (`user list | head`) ends quietly,
/// as with SIGPIPE, never with a panic (attack pass).
#[test]
fn a_closed_output_pipe_ends_the_cli_quietly() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let mut child = Command::new(BIN)
        .args(["user", "list", "--config", g.config.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the command has read its config, let alone printed.
    drop(child.stdout.take());
    let status = exit_within(&mut child, Duration::from_secs(20)).expect("it ends");
    let err = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        status.success() || status.code() == Some(141),
        "{status:?} {err}"
    );
    // A full disk (here /dev/full) is said in one line, with no panic.
    if std::path::Path::new("/dev/full").exists() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = Command::new(BIN)
            .args(["user", "list", "--config", g.config.to_str().unwrap()])
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("cannot write the output") && !err.contains("panicked"),
            "{err}"
        );
    }
}
