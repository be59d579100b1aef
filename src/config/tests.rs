//! Whole-pipeline tests: text in, [`Config`] or every problem out.

use super::parse::{edit_distance, hint, sort_problems};
use super::*;

const MINIMAL: &str = "[[site]]\nhost = \"app.example.com\"\nupstream = \"127.0.0.1:3000\"\n";

/// A rule path with non-ASCII letters in upper case or decomposed never meets a
/// request (those are compared in lower case, composed): warned, with the spelling.
#[test]
fn rule_paths_with_letters_requests_never_have_are_warned_about() {
    let warn = |path: &str| {
        let text = format!("{MINIMAL}[[rule]]\npath = \"{path}\"\npolicy = \"deny\"\n");
        Config::from_str(&text, Path::new("/etc/p"))
            .unwrap()
            .warnings()
    };
    for path in ["/\u{dc}ber/", "/u\u{308}ber/", "/%C3%9Cber/x"] {
        let w = warn(path);
        assert_eq!(w.len(), 1, "{path}: {w:?}");
        assert!(w[0].contains("write path = \"/\u{fc}ber/"), "{path}: {w:?}");
    }
    for path in ["/\u{fc}ber/", "/%C3%BCber/a%20b", "/Admin/", "/a%20b"] {
        assert_eq!(warn(path), Vec::<String>::new(), "{path}");
    }
}

#[test]
fn groups_rules_without_a_later_deny_are_warned_about() {
    let rules = |body: &str| format!("{MINIMAL}{body}");
    let warn = |text: &str| {
        Config::from_str(text, Path::new("/etc/p"))
            .unwrap()
            .warnings()
    };
    let admins = "[[rule]]\npath = \"/admin\"\ngroups = [\"admins\"]\npolicy = \"one_factor\"\n";
    let deny = |path: &str| format!("[[rule]]\npath = \"{path}\"\npolicy = \"deny\"\n");
    let table: &[(String, usize, &str)] = &[
        (rules(admins), 1, "nothing denies the others"),
        (rules(&format!("{admins}{}", deny("/admin"))), 0, "a later deny on the same path"),
        (rules(&format!("{admins}{}", deny("/"))), 0, "a later deny on a covering path"),
        (rules(&format!("{admins}{}", deny("/ADMIN"))), 0, "deny matches any case"),
        (rules(&format!("{}{admins}", deny("/admin"))), 1, "a deny before it doesn't count"),
        (rules(&format!("{admins}{}", deny("/admin/x"))), 1, "a narrower deny"),
        (rules(&format!("{admins}{}", deny("/adm"))), 1, "not a whole segment"),
        (
            rules(&format!("{admins}[[rule]]\npath = \"/admin\"\ngroups = [\"staff\"]\npolicy = \"deny\"\n")),
            1,
            "a deny for a group only",
        ),
        (
            rules(&format!("{admins}[[rule]]\npath = \"/admin\"\nmethods = [\"POST\"]\npolicy = \"deny\"\n")),
            1,
            "a deny for some methods only",
        ),
        (
            rules(&format!("{admins}[[rule]]\npath = \"/admin\"\nnetworks = [\"10.0.0.0/8\"]\npolicy = \"deny\"\n")),
            1,
            "a deny for some networks only",
        ),
        (
            rules(&format!("{admins}[[rule]]\nhost = \"app.example.com\"\npath = \"/admin\"\npolicy = \"deny\"\n")),
            1,
            "a deny on one host doesn't cover every host",
        ),
        (rules(&format!("{admins}[access]\ndefault_policy = \"deny\"\n")), 0, "default deny"),
        (
            rules("[[rule]]\npath = \"/x\"\ngroups = [\"a\"]\npolicy = \"deny\"\n"),
            0,
            "a groups deny restricts by itself",
        ),
        (rules("[[rule]]\npath = \"/x\"\npolicy = \"bypass\"\n"), 0, "no groups"),
    ];
    for (text, n, what) in table {
        let w = warn(text);
        assert_eq!(w.len(), *n, "{what}: {w:?}");
    }
    let w = warn(&rules(&format!("{}{admins}", deny("/other"))));
    assert!(w[0].starts_with("rule[1]: "), "{w:?}");
    assert!(w[0].contains("one_factor"), "{w:?}");
}

#[test]
fn minimal_config_gets_safe_defaults() {
    let c = Config::from_str(MINIMAL, Path::new("/etc/p")).unwrap();
    assert!(c.session.secure);
    assert_eq!(c.session.idle_timeout, Duration::from_secs(1800));
    assert_eq!(c.default_policy, Policy::OneFactor);
    assert_eq!(c.users_file, PathBuf::from("/etc/p/users.toml"));
    assert_eq!(c.server.portal_prefix, "/_auth");
}

#[test]
fn reports_every_problem_with_its_key_path() {
    let text = format!(
        "{MINIMAL}[session]\nidle_timeout = \"soon\"\nbogus = 1\n[store]\nbackend = \"mongo\"\n\
         [defense]\nlock_after = \"ten\"\n[[rule]]\npath = \"/x\"\npolicy = \"maybe\"\nextra = true\n[nope]\n"
    );
    let err = Config::from_str(&text, Path::new(".")).unwrap_err();
    let all = err.problems.join("\n");
    for needle in [
        "session.bogus",
        "defense.lock_after",
        "rule[0].extra",
        "nope: unknown section",
    ] {
        assert!(all.contains(needle), "missing {needle} in:\n{all}");
    }
    // Key-level problems are reported first; value validation adds the rest when keys parse.
    let text2 = format!("{MINIMAL}[session]\nidle_timeout = \"soon\"\n[store]\nbackend = \"mongo\"\n[[rule]]\npolicy = \"maybe\"\n");
    let err = Config::from_str(&text2, Path::new(".")).unwrap_err();
    let all = err.problems.join("\n");
    for needle in ["session.idle_timeout", "store.backend", "rule[0].policy"] {
        assert!(all.contains(needle), "missing {needle} in:\n{all}");
    }
}

/// Issue #12.5: unknown keys don't hide bad values; every problem is in one
/// report, with its key path and a hint, sorted and without repeats.
#[test]
fn unknown_keys_and_bad_values_are_reported_together() {
    let cases: &[(&str, &[&str])] = &[
        // Unknown key + bad duration + bad CIDR + no site, in one file.
        (
            "[session]\nidle_timout = \"30m\"\nabsolute_timeout = \"soon\"\n\
             [server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            &[
                "server.trusted_proxies[0]: \"10.0.0.0/33\" is not a CIDR",
                "session.absolute_timeout: \"soon\" is not a duration",
                "session.idle_timout: unknown key; did you mean `idle_timeout`? (valid keys: cookie_name, domain,",
                "site: at least one [[site]] is required",
            ],
        ),
        // A mistyped value is left out too, so the others are still validated.
        (
            "[defense]\nlock_after = \"ten\"\nwindow = \"later\"\n[[site]]\nhost = \"a.test\"\n\
             upstream = \"127.0.0.1:1\"\nupstreem = \"x\"\n[[rule]]\npath = \"/x\"\npolicy = \"maybe\"\n\
             networks = [\"nope\"]\n",
            &[
                "defense.lock_after: invalid type: string \"ten\", expected an integer\n",
                "defense.window: \"later\" is not a duration",
                "rule[0].networks[0]: \"nope\" is not a CIDR",
                "rule[0].policy",
                "site[0].upstreem: unknown key; did you mean `upstream`?",
            ],
        ),
        // Unknown sections, and unknown keys in a nested table.
        (
            "[sesion]\nsecure = false\n[server.tls]\ncert = \"c.pem\"\nkye = \"k.pem\"\nbogus = 1\n\
             [[site]]\nhost = \"a.test\"\nupstream = \"127.0.0.1:1\"\n[session]\nidle_timeout = \"1x\"\n",
            &[
                "server.tls.bogus: unknown key (valid keys: cert, key, hsts)\n",
                "server.tls.kye: unknown key; did you mean `key`? (valid keys: cert, key, hsts)\n",
                "sesion: unknown section; did you mean `session`?",
                "session.idle_timeout: \"1x\" is not a duration",
            ],
        ),
    ];
    for (text, expected) in cases {
        let err = Config::from_str(text, Path::new(".")).unwrap_err();
        let all = err.problems.join("\n");
        for needle in *expected {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        let mut sorted = err.problems.clone();
        sort_problems(&mut sorted);
        assert_eq!(sorted, err.problems, "sorted, no repeats");
    }
    // The order is by key path, numbers as numbers.
    let mut p = vec![
        "rule[10].path: x".to_string(),
        "rule[2].path: x".into(),
        "rule[2].path: x".into(),
        "access.default_policy: x".into(),
    ];
    sort_problems(&mut p);
    assert_eq!(
        p,
        [
            "access.default_policy: x",
            "rule[2].path: x",
            "rule[10].path: x"
        ]
    );
    assert_eq!(edit_distance("idle_timout", "idle_timeout"), 1);
    // No "did you mean" for a name like nothing known.
    assert!(!hint("zzzzzzzz", ["cookie_name", "domain"].into_iter()).contains("did you mean"));
}

#[test]
fn notify_channels_route_to_backends_that_can_carry_them() {
    let smtp =
        "[notify.smtp]\nhost = \"mail.example.com\"\nfrom = \"Portcullis <auth@example.com>\"\n";
    let hook = "[notify.webhook]\nurl = \"https://sms.example.com/send\"\n";
    let c = |t: &str| Config::from_str(&format!("{MINIMAL}{t}"), Path::new("/etc/p"));
    // Defaults: everything to the file.
    let d = c("").unwrap().notify;
    assert_eq!(
        (d.email, d.sms, d.voice),
        (
            Some(NotifyBackend::File),
            Some(NotifyBackend::File),
            Some(NotifyBackend::File)
        )
    );
    // smtp alone: email only; SMS and voice not offered.
    let n = c(&format!("[notify]\nbackend = \"smtp\"\n{smtp}"))
        .unwrap()
        .notify;
    assert_eq!(
        (n.email, n.sms, n.voice),
        (Some(NotifyBackend::Smtp), None, None)
    );
    let s = n.smtp.unwrap();
    assert_eq!((s.port, s.security), (587, SmtpSecurity::StartTls));
    // smtp + webhook: SMS and voice by the webhook.
    let n = c(&format!("[notify]\nbackend = \"smtp\"\n{smtp}{hook}"))
        .unwrap()
        .notify;
    assert_eq!(
        (n.email, n.sms),
        (Some(NotifyBackend::Smtp), Some(NotifyBackend::Webhook))
    );
    assert!(n.webhook.unwrap().body.contains("tojson"));
    // webhook + smtp: email by smtp.
    let n = c(&format!("[notify]\nbackend = \"webhook\"\n{smtp}{hook}"))
        .unwrap()
        .notify;
    assert_eq!(
        (n.email, n.voice),
        (Some(NotifyBackend::Smtp), Some(NotifyBackend::Webhook))
    );
    // Explicit per channel, including none.
    let n = c("[notify]\nbackend = \"log\"\nvoice = \"none\"\n")
        .unwrap()
        .notify;
    assert_eq!((n.email, n.voice), (Some(NotifyBackend::Log), None));
    // Problems, each with its key.
    for (text, key) in [
        ("[notify]\nbackend = \"smtp\"\n".to_string(), "notify.smtp"),
        ("[notify]\nbackend = \"pigeon\"\n".to_string(), "notify.backend"),
        (format!("[notify]\nsms = \"smtp\"\n{smtp}"), "notify.sms"),
        ("[notify]\nbackend = \"webhook\"\n[notify.webhook]\nurl = \"ftp://x\"\n".to_string(), "notify.webhook.url"),
        (format!("[notify]\nbackend = \"webhook\"\n{hook}body = \"{{% if %}}\"\n"), "notify.webhook.body"),
        ("[notify]\nbackend = \"smtp\"\n[notify.smtp]\nhost = \"m\"\nfrom = \"not a mailbox\"\nsecurity = \"ssl\"\nusername = \"u\"\n".to_string(), "notify.smtp.from"),
        ("[notify]\nbackend = \"smtp\"\n[notify.smtp]\nhost = \"m\"\nfrom = \"a@b.example\"\nsecurity = \"ssl\"\n".to_string(), "notify.smtp.security"),
        ("[notify]\nbackend = \"smtp\"\n[notify.smtp]\nhost = \"m\"\nfrom = \"a@b.example\"\nusername = \"u\"\n".to_string(), "notify.smtp.username"),
        ("[notify.smtp]\nbogus = 1\n".to_string(), "notify.smtp"),
    ] {
        let err = c(&text).unwrap_err().problems.join("\n");
        assert!(err.contains(key), "{key} missing for {text:?}: {err}");
    }
    // A password in the config never shows in Debug output.
    let n = c(&format!(
        "[notify]\nbackend = \"smtp\"\n{smtp}username = \"u\"\npassword = \"hunter2\"\n"
    ))
    .unwrap();
    assert!(!format!("{n:?}").contains("hunter2"));
}

#[test]
fn otp_settings_are_validated() {
    let c = |t: &str| Config::from_str(&format!("{MINIMAL}[otp]\n{t}"), Path::new("."));
    let o = c("").unwrap().otp;
    assert_eq!(
        (o.totp_digits, o.totp_period, o.remember_days, o.require),
        (6, 30, 30, Require::Optional)
    );
    let o =
        c("require = \"required\"\ntotp_algorithm = \"sha256\"\nrequire_groups = [\"admins\"]\n")
            .unwrap()
            .otp;
    assert_eq!(
        (o.require, o.totp_algorithm),
        (Require::Required, TotpAlgorithm::Sha256)
    );
    assert!(o.required_for(&[]));
    let o = c("require_groups = [\"admins\"]\n").unwrap().otp;
    assert!(o.required_for(&["admins".into()]) && !o.required_for(&["staff".into()]));
    for (text, key) in [
        ("require = \"always\"", "otp.require"),
        ("totp_algorithm = \"MD5\"", "otp.totp_algorithm"),
        ("totp_digits = 9", "otp.totp_digits"),
        ("totp_period = \"1h\"", "otp.totp_period"),
        ("totp_issuer = \"a:b\"", "otp.totp_issuer"),
        ("code_length = 4", "otp.code_length"),
        ("remember_days = -1", "otp.remember_days"),
    ] {
        let err = c(text).unwrap_err().problems.join("\n");
        assert!(err.contains(key), "{key} missing for {text:?}: {err}");
    }
}

#[test]
fn site_headers_default_and_custom() {
    use crate::identity::IdentityHeaders;
    let c = Config::from_str(MINIMAL, Path::new(".")).unwrap();
    assert_eq!(*c.sites[0].identity, IdentityHeaders::default());
    assert!(
        c.identity_strip.is_empty(),
        "Remote-* is in the static list"
    );
    assert_eq!(c.assertion.ttl, Duration::from_secs(60));
    let text = format!(
        "{MINIMAL}[site.headers]\nuser = \"X-WEBAUTH-USER\"\nemail = \"\"\ngroups = \" X-Groups \"\n\
         group_separator = \";\"\nassertion = \"X-App-Assertion\"\n\
         [[site]]\nhost = \"b.example.com\"\nupstream = \"127.0.0.1:3001\"\n\
         [site.headers]\nuser = \"X_App_User\"\ngroups = \"x-groups\"\n\
         [assertion]\nttl = \"2m\"\n"
    );
    let c = Config::from_str(&text, Path::new(".")).unwrap();
    let a = &c.sites[0].identity;
    assert_eq!(a.user.as_ref().map(|n| n.as_str()), Some("x-webauth-user"));
    assert_eq!(a.email, None);
    assert_eq!(a.name.as_ref().map(|n| n.as_str()), Some("remote-name"));
    assert_eq!(a.groups.as_ref().map(|n| n.as_str()), Some("x-groups"));
    assert_eq!(a.group_separator, ";");
    assert_eq!(
        a.assertion.as_ref().map(|n| n.as_str()),
        Some("x-app-assertion")
    );
    assert_eq!(c.sites[1].identity.group_separator, ",");
    assert_eq!(c.sites[1].identity.assertion, None);
    assert_eq!(c.assertion.ttl, Duration::from_secs(120));
    // Names of every site, folded, once; the static list's own (`X-WEBAUTH-USER`,
    // `X-Groups`) are left to it.
    assert_eq!(c.identity_strip, vec!["x-app-assertion", "x-app-user"]);
}

#[test]
fn site_header_errors_carry_key_paths() {
    let problems = |headers: &str| {
        Config::from_str(
            &format!("{MINIMAL}[site.headers]\n{headers}"),
            Path::new("."),
        )
        .unwrap_err()
        .problems
    };
    let table: &[(&str, &str)] = &[
        ("user = \"Host\"\n", "site[0].headers.user: \"Host\" can't carry identity (routing)"),
        ("email = \"X Mail\"\n", "site[0].headers.email: \"X Mail\" is not a header name"),
        ("name = \"X-Forwarded-For\"\n", "site[0].headers.name: \"X-Forwarded-For\" can't carry identity (set by the gateway itself)"),
        ("groups = \"x_forwarded_proto\"\n", "site[0].headers.groups: \"x_forwarded_proto\" can't carry identity"),
        ("assertion = \"Content-Length\"\n", "site[0].headers.assertion: \"Content-Length\" can't carry identity (framing)"),
        ("user = \"Transfer-Encoding\"\n", "site[0].headers.user: \"Transfer-Encoding\" can't carry identity (framing)"),
        ("user = \"Cookie\"\n", "site[0].headers.user: \"Cookie\" can't carry identity"),
        ("user = \"connection\"\n", "site[0].headers.user: \"connection\" can't carry identity (hop-by-hop)"),
        ("user = \"X-Who\"\ngroups = \"x_who\"\n", "site[0].headers.groups: \"x_who\" is already used by site[0].headers.user"),
        ("assertion = \"Remote-User\"\n", "site[0].headers.assertion: \"remote-user\" is already used by site[0].headers.user"),
        ("group_separator = \"\"\n", "site[0].headers.group_separator: \"\" must be"),
        ("group_separator = \"a\"\n", "site[0].headers.group_separator: \"a\" must be"),
        ("group_separator = \"\\n\"\n", "site[0].headers.group_separator:"),
        ("colour = \"x\"\n", "site[0].headers.colour: unknown key (valid keys: user, email, name, groups, group_separator, assertion)"),
        ("user = 5\n", "site[0].headers: invalid type"),
    ];
    for (headers, want) in table {
        let p = problems(headers);
        assert!(p.iter().any(|l| l.starts_with(want)), "{headers:?}: {p:?}");
    }
    // Every problem at once, the [assertion] section's too.
    let p = Config::from_str(
        &format!("{MINIMAL}[site.headers]\nuser = \"Host\"\nemail = \"a b\"\n[assertion]\nttl = \"soon\"\n"),
        Path::new("."),
    )
    .unwrap_err()
    .problems;
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p.iter()
            .any(|l| l.starts_with("assertion.ttl: \"soon\" is not a duration")),
        "{p:?}"
    );
    let p = Config::from_str(
        &format!("{MINIMAL}[assertion]\nttl = \"0s\"\nkey = 1\n"),
        Path::new("."),
    )
    .unwrap_err()
    .problems;
    assert!(
        p.iter()
            .any(|l| l.starts_with("assertion.key: unknown key")),
        "{p:?}"
    );
}

#[test]
fn rejects_bad_sites_and_durations() {
    let err =
        Config::from_str("[[site]]\nhost = \"https://x.com/\"\n", Path::new(".")).unwrap_err();
    let all = err.problems.join("\n");
    assert!(all.contains("site[0].host"), "{all}");
    assert!(all.contains("site[0].upstream"), "{all}");
    assert!(Config::from_str("", Path::new(".")).is_err());
    assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(
        parse_duration("30d").unwrap(),
        Duration::from_secs(30 * 86400)
    );
    assert!(parse_duration("-1s").is_err());
    let err = Config::from_str(
        "[[site]]\nhost = \"a.test\"\nupstream = \"127.0.0.1:0\"\n",
        Path::new("."),
    )
    .unwrap_err();
    assert_eq!(
        err.problems,
        ["site[0].upstream: \"127.0.0.1:0\": port 0 is no port to connect to"]
    );
}

/// The load step reads what the config names, relative to the config's folder.
#[test]
fn the_load_step_reads_files_and_resolves_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smtp.pw"), "s3cret\r\n").unwrap();
    std::fs::create_dir(dir.path().join("tpl")).unwrap();
    let text = "[[site]]\nhost = \"app.example.com\"\nupstream = \"localhost:3000\"\n\
                [notify.smtp]\nhost = \"m\"\nfrom = \"a@b.example\"\nusername = \"u\"\npassword_file = \"smtp.pw\"\n\
                [ui]\ntemplates = \"tpl\"\n";
    let c = Config::from_str(text, dir.path()).unwrap();
    assert_eq!(c.sites[0].upstream.port(), 3000);
    assert!(c.sites[0].upstream.ip().is_loopback());
    let pw = c.notify.smtp.unwrap().password.unwrap();
    assert_eq!(pw.0.as_str(), "s3cret", "trailing newline dropped");
    assert!(c.server.threads >= 1, "threads = 0 means one per core");
}

/// Peers and `X-Forwarded-For` entries are read as IPv4 when IPv4-mapped, so a
/// mapped network in the config is the IPv4 network (else it would match nobody).
#[test]
fn an_ipv4_mapped_network_is_its_ipv4_network() {
    let net = |s: &str| parse_cidr(s).map(|n| n.to_string());
    assert_eq!(net("::ffff:10.0.0.0/104").as_deref(), Some("10.0.0.0/8"));
    assert_eq!(net("::ffff:192.0.2.7").as_deref(), Some("192.0.2.7/32"));
    assert_eq!(net("::ffff:0:0/96").as_deref(), Some("0.0.0.0/0"));
    assert_eq!(net("::ffff:0:0/95").as_deref(), Some("::fffe:0:0/95"));
    assert_eq!(net("2001:db8::/32").as_deref(), Some("2001:db8::/32"));
    assert_eq!(net("10.1.2.3/8").as_deref(), Some("10.0.0.0/8"));
    assert!(net("nonsense").is_none());
}
