//! The validators on their own: no files are read and no names resolved here
//! (paths that don't exist and names that don't resolve are fine until
//! [`crate::config::load`]).

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::{
    defaults, parse, NotifyBackend, Require, SameSite, StoreBackend, TotpAlgorithm, UsersBackend,
};
use crate::policy::Policy;

const SITE: &str =
    "[[site]]\nhost = \"app.example.com\"\nupstream = \"app.internal.invalid:3000\"\n";

/// Parse + the pure validators; the problems sorted.
fn check(text: &str) -> (Config, Pending, Vec<String>) {
    let mut problems = Vec::new();
    let raw = parse::parse_raw(text, &mut problems).unwrap_or_default();
    let (config, pending) = validate(raw, Path::new("/nonexistent/etc"), &mut problems);
    parse::sort_problems(&mut problems);
    (config, pending, problems)
}

#[test]
fn defaults_come_from_one_place() {
    let (c, pending, problems) = check(SITE);
    assert_eq!(problems, Vec::<String>::new());
    assert_eq!(c.server.listen.to_string(), defaults::server::LISTEN);
    assert_eq!(c.server.portal_prefix, defaults::server::PORTAL_PREFIX);
    assert_eq!(c.server.threads, 0, "counted by the load step");
    assert_eq!(c.server.header_timeout, defaults::server::HEADER_TIMEOUT);
    assert_eq!(c.server.upstream_timeout, Duration::from_secs(60));
    assert_eq!(
        c.server.upstream_idle_connections, 128,
        "Pingora's own default"
    );
    assert_eq!(c.session.same_site, SameSite::Lax);
    assert_eq!(c.session.absolute_timeout, Duration::from_secs(12 * 3600));
    assert_eq!(c.store.backend, StoreBackend::Memory);
    assert_eq!(c.store.session_cache, Duration::from_secs(5));
    assert_eq!(c.store.max_entries, 1_000_000);
    assert_eq!(
        c.users.backend,
        UsersBackend::File("/nonexistent/etc/users.toml".into())
    );
    assert_eq!(c.users.stale_for, Duration::from_secs(300));
    assert_eq!(
        (c.password.min_length, c.password.min_length_single_factor),
        (8, 15)
    );
    assert_eq!(c.password.argon2.memory_kib, 19_456);
    assert_eq!((c.defense.captcha_after, c.defense.lock_after), (3, 10));
    assert_eq!(c.defense.known_device_lock_after, c.defense.lock_after);
    assert_eq!(c.defense.lock_max, Duration::from_secs(86_400));
    assert!(!c.defense.lock_per_network);
    assert_eq!(c.otp.totp_algorithm, TotpAlgorithm::Sha1);
    assert_eq!(c.otp.require, Require::Optional);
    assert_eq!((c.otp.totp_period, c.otp.code_length), (30, 6));
    assert_eq!(c.notify.backend, NotifyBackend::File);
    assert_eq!(c.ui.accent_color, defaults::ui::ACCENT_COLOR);
    assert_eq!(c.default_policy, Policy::OneFactor);
    assert_eq!(c.assertion.ttl, Duration::from_secs(60));
    // The site waits for the load step to resolve its upstream.
    assert!(c.sites.is_empty());
    assert_eq!(pending.sites.len(), 1);
    assert_eq!(pending.sites[0].1.upstream, "app.internal.invalid:3000");
}

/// One bad value in every section: each is reported with its key path, all in
/// one run, and nothing else is.
#[test]
fn every_section_reports_its_problems_at_once() {
    let text = format!(
        "{SITE}[server]\nlisten = \"nowhere\"\nthreads = 999\nupstream_idle_connections = 0\n\
         [session]\ncookie_name = \"a b\"\nsame_site = \"none\"\nsecure = false\n\
         [store]\nbackend = \"redis\"\nredis_url = \"http://x\"\nsession_cache = \"2m\"\n\
         [users]\nbackend = \"postgres\"\n\
         [password]\nmin_strength = 5\n\
         [defense]\nlock_duration = \"2h\"\nlock_max = \"1h\"\ncaptcha_ttl = \"1s\"\n\
         [otp]\ntotp_issuer = \"a:b\"\ntotp_period = \"10m\"\n\
         [notify]\nsms = \"smtp\"\n[notify.smtp]\nhost = \"m\"\nfrom = \"a@b.example\"\n\
         [ui]\naccent_color = \"blue\"\n\
         [[rule]]\nhost = \"other.example.com\"\npolicy = \"deny\"\nmethods = [\"GE T\"]\n\
         [assertion]\nttl = \"0s\"\n"
    );
    let (_, _, problems) = check(&text);
    let keys: Vec<&str> = problems
        .iter()
        .map(|p| p.split_once(": ").map_or(p.as_str(), |(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "assertion.ttl",
            "defense.captcha_ttl",
            "defense.lock_max",
            "notify.sms",
            "otp.totp_issuer",
            "otp.totp_period",
            "password.min_strength",
            "rule[0].host",
            "rule[0].methods[0]",
            "server.listen",
            "server.threads",
            "server.upstream_idle_connections",
            "session.cookie_name",
            "session.same_site",
            "store.redis_url",
            "store.session_cache",
            "ui.accent_color",
            "users.url",
        ],
        "{problems:#?}"
    );
    assert!(problems.contains(&"server.threads: 999 is out of range (0 to 256)".to_string()));
    assert!(problems
        .contains(&"server.upstream_idle_connections: 0 is out of range (1 to 4096)".to_string()));
    assert!(problems.contains(&"defense.captcha_ttl: must be at least 10s".to_string()));
}

/// A word or duration that doesn't read is a problem of its key (nested ones
/// too), named once, with the allowed words; the rest of its table is still
/// validated.
#[test]
fn bad_words_and_durations_name_their_key_once() {
    let text = format!(
        "{SITE}[store]\nbackend = \"mongo\"\n[users]\nbackend = \"ldap\"\n\
         [defense]\nlock_scope = \"world\"\nwindow = \"fortnight\"\n\
         [otp]\ntotp_algorithm = \"md5\"\nrequire = \"always\"\n\
         [notify]\nbackend = \"pigeon\"\nemail = \"owl\"\n\
         [notify.smtp]\nsecurity = \"ssl\"\ntimeout = \"soon\"\nfrom = \"not a mailbox\"\nhost = \"m\"\n\
         [access]\ndefault_policy = \"maybe\"\n[[rule]]\npolicy = \"perhaps\"\n"
    );
    let (c, _, problems) = check(&text);
    let want = [
        "access.default_policy: \"maybe\" is not one of bypass, one_factor, two_factor, deny",
        "defense.lock_scope: \"world\" is not one of account, account_network",
        "defense.window: \"fortnight\" is not a duration (use e.g. \"90s\", \"15m\", \"12h\", \"30d\")",
        "notify.backend: \"pigeon\" is not one of file, log, smtp, webhook",
        "notify.email: \"owl\" is not one of file, log, smtp, webhook, none",
        "notify.smtp.from: \"not a mailbox\" is not a mailbox like \"Portcullis <auth@example.com>\"",
        "notify.smtp.security: \"ssl\" is not one of starttls, tls, none",
        "notify.smtp.timeout: \"soon\" is not a duration (use e.g. \"90s\", \"15m\", \"12h\", \"30d\")",
        "otp.require: \"always\" is not one of optional, required",
        "otp.totp_algorithm: \"MD5\" is not one of SHA1, SHA256, SHA512",
        "rule[0].policy: \"perhaps\" is not one of bypass, one_factor, two_factor, deny",
        "store.backend: \"mongo\" is not one of memory, redis",
        "users.backend: \"ldap\" is not supported (file, sqlite or postgres)",
    ];
    assert_eq!(problems, want);
    // Each bad key fell back to its default.
    assert_eq!(c.store.backend, StoreBackend::Memory);
    assert_eq!(c.defense.window, defaults::defense::WINDOW);
    assert_eq!(c.rules[0].policy, Policy::Deny);
    // A value of the wrong type still names its table (as it always did).
    let (_, _, problems) = check(&format!("{SITE}[notify.smtp]\nport = \"25\"\n"));
    assert!(
        problems[0].starts_with("notify.smtp: invalid type: string \"25\", expected an integer"),
        "{problems:?}"
    );
    // A missing policy is still "required".
    let (_, _, problems) = check(&format!("{SITE}[[rule]]\npath = \"/x\"\n"));
    assert_eq!(problems, ["rule[0].policy: is required"]);
}

/// The validators read no file and resolve no name: that's the load step's job,
/// which reports with the same key paths.
#[test]
fn io_is_left_to_the_load_step() {
    let text = format!(
        "{SITE}upstream_tls = true\nupstream_ca = \"ca.pem\"\n\
         [server.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
         [ui]\ntemplates = \"t\"\nlogo = \"logo.png\"\nlocales = \"l\"\n\
         [notify.smtp]\nhost = \"m\"\nfrom = \"a@b.example\"\nusername = \"u\"\n\
         password_file = \"pw\"\nca_file = \"ca.pem\"\n\
         [[rule]]\nhost = \"app.example.com\"\npolicy = \"deny\"\n"
    );
    let (config, pending, problems) = check(&text);
    assert_eq!(problems, Vec::<String>::new());
    assert_eq!(
        pending.smtp_password_file,
        Some(("pw".into(), "/nonexistent/etc/pw".into()))
    );
    assert_eq!(
        pending.sites[0].1.upstream_ca.as_deref(),
        Some(Path::new("/nonexistent/etc/ca.pem"))
    );
    let mut problems = Vec::new();
    let config = crate::config::load::complete(config, pending, &mut problems);
    parse::sort_problems(&mut problems);
    let keys: Vec<&str> = problems
        .iter()
        .map(|p| p.split_once(": ").map_or(p.as_str(), |(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "notify.smtp.ca_file",
            "notify.smtp.password_file",
            "notify.smtp.username",
            "rule[0].host",
            "server.tls",
            "site[0].upstream",
            "site[0].upstream_ca",
            "ui.locales",
            "ui.logo",
            "ui.templates",
        ],
        "{problems:#?}"
    );
    assert!(problems.contains(
        &"site[0].upstream: \"app.internal.invalid:3000\" is not a reachable host:port".to_string()
    ));
    assert!(config.sites.is_empty());
    assert!(config.server.threads >= 1);
}

#[test]
fn a_redis_url_in_a_message_never_shows_its_password() {
    for url in ["http://user:s3cretpw@x:6379", "redis://:s3cretpw@[bad"] {
        let text = format!("{SITE}[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\n");
        let (_, _, problems) = check(&text);
        let msg = problems
            .iter()
            .find(|p| p.starts_with("store.redis_url"))
            .unwrap_or_else(|| panic!("no store.redis_url problem for {url}: {problems:#?}"));
        assert!(!msg.contains("s3cretpw"), "{msg}");
    }
}
