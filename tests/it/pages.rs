//! The person signing in (issue #13): help where it's needed, the password
//! policy, and every page state checked in a real Chromium with axe-core, at
//! desktop and phone width, with a screenshot of each.

use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::browser::{outbox_code, Chrome};
use crate::harness::*;

const UI: &str =
    "[ui]\ntitle = \"Acme\"\nsupport_contact = \"help@acme.example\"\ndefault_region = \"US\"\n";
/// A password the policy accepts for alice (long, unusual, not personal).
const STRONG: &str = "velvet quarry lantern orchard";

#[test]
fn help_page_and_sign_in_hints_answer_the_common_troubles() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: UI.into(),
            ..Options::default()
        },
    );
    let help = html(&g, "/_auth/help");
    assert_eq!(help.status, 200);
    for needle in [
        "<title>Trouble signing in? · Acme</title>",
        "id=\"cookies\"",
        "Caps Lock",
        "Num Lock",
        "name@example.com",
        "country code",
        "Numbers from US (+1) also work without it",
        "spam or junk folder",
        "id=\"locked\"",
        "It never asks for your password",
        "id=\"two-step\"",
        "id=\"lost-access\"",
        "href=\"mailto:help@acme.example\"",
        "_auth/reset\"",
    ] {
        assert!(
            help.body.contains(needle),
            "{needle} missing:\n{}",
            help.body
        );
    }
    let r = g.req(
        "POST",
        HOST,
        "/_auth/help",
        &["Accept: text/html"],
        Some(""),
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));

    let login = html(&g, "/_auth/login");
    for needle in [
        "<title>Sign in · Acme</title>",
        "include the country code if it isn&#x27;t a US number",
        "US numbers also work without it",
        "Passwords are case-sensitive",
        "id=\"password-caps\"",
        "Forgot your password?",
        "_auth/help\"",
    ] {
        assert!(
            login.body.contains(needle),
            "{needle} missing:\n{}",
            login.body
        );
    }
    // The inline script runs only because the CSP names its hash, and nothing else.
    let csp = login.header("Content-Security-Policy").unwrap().to_string();
    let start = login.body.find("<script>").unwrap() + "<script>".len();
    let end = login.body[start..].find("</script>").unwrap() + start;
    use base64::Engine;
    let hash = base64::engine::general_purpose::STANDARD
        .encode(Sha256::digest(&login.body.as_bytes()[start..end]));
    assert!(
        csp.contains(&format!("script-src 'sha256-{hash}';")),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));

    // Without a configured title there is no brand: the tab says "Sign in" once.
    let plain = Gateway::start(Backend::Memory, Options::default());
    let body = html(&plain, "/_auth/login").body;
    assert!(body.contains("<title>Sign in</title>"), "{body}");
    assert!(!body.contains("class=\"brand\""));
    assert!(body.contains("include the country code, for example +44 7700 900123"));
}

#[test]
fn pages_speak_the_persons_language_with_a_switcher_and_operator_catalogues() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: UI.into(),
            ..Options::default()
        },
    );
    let de = g.get(
        "/_auth/login?rd=%2Fx",
        &["Accept: text/html", "Accept-Language: de-CH, fr;q=0.5"],
    );
    assert!(de.body.contains("<html lang=\"de\">"), "{}", de.body);
    assert!(de.body.contains("<h1>Anmelden</h1>") && de.body.contains("Passwort vergessen?"));
    // The switcher keeps the page's query (rd) and marks the current language.
    assert!(de.body.contains("lang=fr\""), "{}", de.body);
    assert!(
        de.body.contains("rd=%2Fx&amp;lang=fr") || de.body.contains("rd=%2Fx&lang=fr"),
        "{}",
        de.body
    );
    assert!(de.body.contains("aria-current=\"true\">Deutsch<"));
    let fr = g.get(
        "/_auth/login?lang=fr",
        &["Accept: text/html", "Accept-Language: de"],
    );
    assert!(fr.body.contains("<h1>Se connecter</h1>"), "{}", fr.body);
    let kept = fr
        .cookie("portcullis_pre_lang")
        .expect("the choice is remembered");
    assert_eq!(kept, "portcullis_pre_lang=fr");
    let again = g.get(
        "/_auth/help",
        &[
            "Accept: text/html",
            "Accept-Language: de",
            &format!("Cookie: {kept}"),
        ],
    );
    assert!(
        again.body.contains("Un problème pour vous connecter"),
        "{}",
        again.body
    );
    // Messages the code writes in English are translated too.
    let nf = g.get("/_auth/nope", &["Accept: text/html", "Accept-Language: fr"]);
    assert!(
        nf.body.contains("Il n’y a pas de page à cette adresse."),
        "{}",
        nf.body
    );
    let wrong = {
        let (pre, csrf) = g.login_form();
        let fields = [
            ("csrf", csrf.as_str()),
            ("identifier", "alice"),
            ("password", "nope"),
            ("rd", "/"),
        ];
        g.submit_login(&pre, &fields, &["Accept: text/html", "Accept-Language: de"])
    };
    assert!(
        wrong.body.contains("Kennung oder Passwort stimmen nicht"),
        "{}",
        wrong.body
    );
    // Messages go out in the language of the page that asked for them.
    let page = g.get(
        "/_auth/reset",
        &["Accept: text/html", "Accept-Language: de"],
    );
    let pre = page.cookie("portcullis_pre").unwrap();
    let body = form(&[
        ("csrf", &page.csrf()),
        ("step", "request"),
        ("identifier", "alice"),
    ]);
    let r = g.req(
        "POST",
        HOST,
        "/_auth/reset",
        &[
            &format!("Cookie: {pre}"),
            "Accept: text/html",
            "Accept-Language: de",
        ],
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let msg = g.wait_message("reset_code", "no reset code");
    assert!(
        msg["subject"]
            .as_str()
            .unwrap()
            .contains("Zurücksetzen des Passworts"),
        "{msg}"
    );
    // Unknown languages: English.
    let en = g.get(
        "/_auth/login",
        &["Accept: text/html", "Accept-Language: ja"],
    );
    assert!(en.body.contains("<h1>Sign in</h1>"));

    // An operator catalogue: overrides German, adds Dutch; check-config names what Dutch lacks.
    let dir = g.dir.path().join("locales");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("de.ftl"), "login-title = Einloggen\n").unwrap();
    std::fs::write(
        dir.join("nl.ftl"),
        "language-name = Nederlands\nlogin-title = Inloggen\n",
    )
    .unwrap();
    let cfg = std::fs::read_to_string(&g.config).unwrap().replace(
        "default_region = \"US\"\n",
        "default_region = \"US\"\nlocales = \"locales\"\n",
    );
    std::fs::write(&g.config, cfg).unwrap();
    let out = g.cli(&["check-config"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: ui.locales: nl.ftl: ") && err.contains("login-forgot"),
        "{err}"
    );
    assert!(!err.contains("de.ftl"), "{err}");
    let mut g = g;
    g.proc = None; // stopped (by pid), then started again with the catalogues
    g.spawn();
    let nl = g.get(
        "/_auth/login",
        &["Accept: text/html", "Accept-Language: nl"],
    );
    assert!(
        nl.body.contains("<h1>Inloggen</h1>") && nl.body.contains("Forgot your password?"),
        "{}",
        nl.body
    );
    let de = g.get(
        "/_auth/login",
        &["Accept: text/html", "Accept-Language: de"],
    );
    assert!(de.body.contains("<h1>Einloggen</h1>") && de.body.contains("Passwort vergessen?"));
    assert!(de.body.contains(">Nederlands<"));
}

#[test]
fn national_numbers_sign_in_under_the_default_region() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: UI.into(),
            ..Options::default()
        },
    );
    // alice's phone is +1 415 555 2671.
    for typed in ["(415) 555-2671", "415 555 2671", "+1 415 555 2671"] {
        assert_eq!(g.post_login(typed, PASSWORD, "/").status, 303, "{typed}");
    }
    let plain = Gateway::start(Backend::Memory, Options::default());
    assert_eq!(
        plain.post_login("(415) 555-2671", PASSWORD, "/").status,
        401
    );
    assert_eq!(plain.post_login("+14155552671", PASSWORD, "/").status, 303);
    // A bad region is a config error with its key.
    let bad = std::fs::read_to_string(&g.config)
        .unwrap()
        .replace("default_region = \"US\"", "default_region = \"XX\"");
    std::fs::write(&g.config, bad).unwrap();
    let out = g.cli(&["check-config"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ui.default_region"));
}

#[test]
fn error_pages_say_what_happened_what_to_do_and_who_to_ask() {
    // An upstream that isn't there: 502.
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: format!("{UI}[defense]\nip_per_minute = 2\nspray_per_minute = 0\n"),
            upstream_port: Some(free_port()),
            ..Options::default()
        },
    );
    let nf = html(&g, "/_auth/nothing-here");
    assert_eq!(nf.status, 404);
    for needle in [
        "Check the address",
        "href=\"&#x2f;\"",
        "contact <a href=\"mailto:help@acme.example\">help@acme.example</a> and mention error 404",
        "role=\"alert\"",
    ] {
        assert!(nf.body.contains(needle), "{needle}:\n{}", nf.body);
    }
    let bad = html(&g, "/public/x");
    assert_eq!(bad.status, 502);
    assert!(bad.body.contains("You are still signed in"), "{}", bad.body);
    assert!(bad.body.contains("mention error 502"));
    assert_eq!(bad.header("Retry-After"), Some("5"));
    let mut last = 0;
    for _ in 0..5 {
        last = g.post_login("alice", "wrong", "/").status;
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429);
    let r = g.post_login("alice", "wrong", "/");
    assert!(r.body.contains("Guessing doesn"), "{}", r.body);
    // JSON clients get JSON, as before.
    let j = g.get("/_auth/nothing-here", &["Accept: application/json"]);
    assert!(j.body.starts_with('{'), "{}", j.body);
}

/// A password alone can't change the password of an account with a second factor
/// (Alice has a phone, and no app): a password-only session is sent to the second
/// step, and its POST changes nothing. After the second step it can. An account
/// without one (Bob) changes it on the password. (Attack pass: a password-only
/// session of a phone-only account took the account over.) The account page, which
/// lists where the account is used and signs browsers out, asks the same.
#[test]
fn a_password_alone_cannot_change_the_password_or_see_the_account_of_an_account_with_a_phone() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let alone = g.login("alice");
    let page = get(&g, "/_auth/password", &alone);
    assert_eq!(page.status, 303, "{}", page.body);
    let to = page.header("location").unwrap_or("");
    assert!(to.starts_with("/_auth/2fa"), "{to}");
    assert!(to.contains("password"), "back to the page after: {to}");
    // Nor does the account page show (it would list where the account is used, and
    // sign browsers out).
    let account = get(&g, "/_auth/account", &alone);
    assert_eq!(account.status, 302, "{}", account.body);
    let to = account.header("location").unwrap_or("");
    assert!(
        to.starts_with("/_auth/2fa") && to.contains("account"),
        "{to}"
    );
    // The form's POST, with this session's token (from the second step's page),
    // changes nothing either.
    let step = get(&g, "/_auth/2fa", &alone);
    assert_eq!(step.status, 200, "{}", step.body);
    let new = "harbour quilt lantern 1931";
    let fields = [
        ("csrf", step.csrf()),
        ("current", PASSWORD.to_string()),
        ("password", new.to_string()),
        ("confirm", new.to_string()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post(&g, "/_auth/password", &alone, &fields);
    assert_eq!(r.status, 303, "{}", r.body);
    let with_new = g.post_login("alice", new, "/");
    assert_ne!(with_new.status, 303, "the password was changed");
    g.login("alice");
    // After the second step, the page is there.
    let stepped = g.step_up(&alone, "sms");
    assert_eq!(get(&g, "/_auth/password", &stepped).status, 200);
    assert_eq!(get(&g, "/_auth/account", &stepped).status, 200);
    // Bob has no second factor: the password is all there is.
    assert_eq!(get(&g, "/_auth/password", &g.login("bob")).status, 200);
    assert_eq!(get(&g, "/_auth/account", &g.login("bob")).status, 200);
}

#[test]
fn the_password_policy_applies_to_reset_change_and_the_cli() {
    let g = Gateway::start(Backend::Memory, Options::default());
    // (Alice has a phone: a second factor, so the page wants the second step first.)
    let session = g.step_up(&g.login("alice"), "sms");
    let page = g.get(
        "/_auth/password",
        &[&format!("Cookie: {session}"), "Accept: text/html"],
    );
    assert!(
        page.body
            .contains("At least 8 characters. A few unrelated words"),
        "{}",
        page.body
    );
    let change = |new: &str| {
        let body = form(&[
            ("csrf", &page.csrf()),
            ("current", PASSWORD),
            ("password", new),
            ("confirm", new),
        ]);
        g.req(
            "POST",
            HOST,
            "/_auth/password",
            &[&format!("Cookie: {session}"), "Accept: text/html"],
            Some(&body),
        )
    };
    let r = change("password123");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("easy to guess"), "{}", r.body);
    let r = change("alice example 2024");
    assert_eq!(r.status, 400, "her own name: {}", r.body);
    let r = change("short");
    assert!(r.body.contains("at least 8 characters"), "{}", r.body);
    // Control characters (a tab, a line break) are refused, with a reason.
    for bad in [
        "velvet quarry\tlantern orchard",
        "velvet quarry lantern\norchard",
    ] {
        let r = change(bad);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
        assert!(r.body.contains("control characters"), "{}", r.body);
    }
    let r = change(STRONG);
    assert_eq!(r.status, 200, "{}", r.body);

    // bob has no phone and no app: 15 characters, and the form says so.
    let out = g.cli(
        &["user", "set-password", "bob", "--password-stdin"],
        Some("Tr0ub4dor&3x\n"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 15 characters"), "{err}");
    let out = g.cli(
        &["user", "set-password", "bob", "--password-stdin"],
        Some("velvet quarry\u{7}lantern orchard\n"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("control characters"), "{err}");
    let out = g.cli(
        &["user", "set-password", "bob", "--password-stdin"],
        Some(&format!("{STRONG}\n")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = g.cli(
        &[
            "user",
            "add",
            "dora",
            "--email",
            "dora.marsh@example.com",
            "--password-stdin",
        ],
        Some("doramarsh123456\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("contains your name"));
    // 64 characters and more are fine, and nothing is cut off.
    let long = "lantern orchard velvet quarry ".repeat(5);
    let out = g.cli(
        &[
            "user",
            "add",
            "dora",
            "--email",
            "dora.marsh@example.com",
            "--password-stdin",
        ],
        Some(&format!("{long}\n")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(g.post_login("dora", &long, "/").status, 303);
    assert_eq!(
        g.post_login("dora", &long[..long.len() - 1], "/").status,
        401
    );
}

#[test]
fn a_corrupt_stored_hash_reads_as_wrong_at_sign_in_and_a_clear_503_on_the_password_page() {
    let g = Gateway::start(Backend::Memory, Options::default());
    let session = g.step_up(&g.login("alice"), "sms");
    let page = g.get(
        "/_auth/password",
        &[&format!("Cookie: {session}"), "Accept: text/html"],
    );
    const BROKEN: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0LXNhbHQ";
    g.edit_users(|u| {
        for x in u.iter_mut().filter(|x| x.name == "alice") {
            x.password = BROKEN.into();
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    // At sign-in, exactly a wrong password (status, page, counted): the answer never
    // tells a broken account apart from a wrong guess or an unknown name.
    let wrong = g.post_login("bob", "not-bobs-password", "/");
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    for _ in 0..2 {
        let r = g.post_login("alice", PASSWORD, "/");
        assert_eq!(r.status, wrong.status, "{}", r.body);
        assert!(!r.body.contains("check your password"), "{}", r.body);
        for page in [&r.body, &wrong.body] {
            assert!(page.contains("password is not right"), "{page}");
        }
    }
    // Bob (same password file, same client) is unaffected.
    assert_eq!(g.post_login("bob", PASSWORD, "/").status, 303);
    let body = form(&[
        ("csrf", &page.csrf()),
        ("current", PASSWORD),
        ("password", STRONG),
        ("confirm", STRONG),
    ]);
    let r = g.req(
        "POST",
        HOST,
        "/_auth/password",
        &[&format!("Cookie: {session}"), "Accept: text/html"],
        Some(&body),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("check your password"), "{}", r.body);
    let log = g.log();
    assert!(log.contains("stored password hash can't be read"), "{log}");
    assert!(
        !log.contains("c2VjcmV0LXNhbHQ"),
        "the hash never reaches the log"
    );
}

#[test]
fn a_hash_made_with_other_argon2_costs_is_remade_at_sign_in() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: "[password]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n".into(),
            ..Options::default()
        },
    );
    let users = g.dir.path().join("users.toml");
    let alice_hash = || {
        let t = std::fs::read_to_string(&users).unwrap();
        let v: toml::Value = toml::from_str(&t).unwrap();
        v["user"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"].as_str() == Some("alice"))
            .map(|u| u["password"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(alice_hash().contains("m=19456,t=2,p=1"));
    let session = g.login("alice");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !alice_hash().contains("m=1024,t=1,p=1") {
        assert!(Instant::now() < deadline, "not rehashed: {}", alice_hash());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Same password, and the session goes on (credentials unchanged).
    std::thread::sleep(Duration::from_millis(1500));
    let page = g.get("/page", &[&format!("Cookie: {session}")]);
    assert_eq!(page.status, 200);
    assert_eq!(g.post_login("alice", PASSWORD, "/").status, 303);
    assert!(g.log().contains("password_rehashed"));
}

fn totp_for(chrome: &Chrome) -> totp_rs::TOTP {
    let secret = chrome.text("#secret").replace(' ', "");
    let bytes = totp_rs::Secret::Encoded(secret).to_bytes().unwrap();
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    )
}

#[test]
fn every_page_state_passes_axe_at_desktop_and_phone_width() {
    // The failure ladder on a gateway of its own: its CAPTCHA standing for this
    // client would otherwise follow the later steps.
    let ladder = Gateway::start(
        Backend::Memory,
        Options {
            extra: format!(
                "{UI}[defense]\ncaptcha_after = 2\nlock_after = 4\nip_per_minute = 10000\nspray_per_minute = 0\nknown_device_days = 0\n"
            ),
            ..Options::default()
        },
    );
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: UI.into(),
            ..Options::default()
        },
    );
    let chrome = Chrome::start();
    let site = format!("http://{HOST}:{}", ladder.port);

    chrome.go(&format!("{site}/_auth/login"));
    chrome.find("#identifier");
    // The checker itself: an unlabelled field is reported (so a clean page means something).
    chrome.script("const i = document.createElement('input'); i.id = 'unlabelled'; document.querySelector('form').append(i); return true;");
    let found = chrome.axe_violations();
    assert!(
        found
            .iter()
            .any(|v| v.contains("\"label\"") && v.contains("#unlabelled")),
        "{found:?}"
    );
    chrome.script("document.getElementById('unlabelled').remove(); return true;");
    assert_eq!(
        chrome.script("return document.title;"),
        json!("Sign in · Acme")
    );
    assert_eq!(
        chrome.script("return document.activeElement.id;"),
        json!("identifier")
    );
    chrome.check_state("signin");
    // The Caps Lock warning: the script runs under the page's CSP.
    let caps = |on: bool| {
        chrome.script(&format!(
            "const i = document.getElementById('password');\
             i.dispatchEvent(new KeyboardEvent('keydown', {{ key: 'a', modifierCapsLock: {on} }}));\
             return document.getElementById('password-caps').hidden;"
        ))
    };
    assert_eq!(caps(true), json!(false), "warning shown with Caps Lock on");
    chrome.check_state("signin-caps-lock");
    assert_eq!(caps(false), json!(true));

    // Wrong password: announced, linked to the fields, focus on the password.
    chrome.type_into("#identifier", "alice");
    chrome.type_into("#password", "not my password");
    chrome.submit("button[type=submit]");
    chrome.find("#error");
    assert_eq!(
        chrome.script("return document.activeElement.id;"),
        json!("password")
    );
    assert_eq!(
        chrome
            .script("return document.getElementById('password').getAttribute('aria-describedby');"),
        json!("error password-hint password-caps")
    );
    assert_eq!(
        chrome.script("return document.getElementById('error').getAttribute('role');"),
        json!("alert")
    );
    chrome.check_state("signin-wrong-password");

    // Second failure: the CAPTCHA; its audio is reachable by keyboard.
    chrome.type_into("#password", "still not it");
    chrome.submit("button[type=submit]");
    chrome.find("fieldset.captcha");
    assert_eq!(
        chrome.script("return document.activeElement.id;"),
        json!("captcha")
    );
    assert_eq!(
        chrome.script("const a = document.querySelector('fieldset.captcha a[href$=\".wav\"]'); return a.tabIndex;"),
        json!(0)
    );
    assert!(chrome.text("#error").contains("locked for a while"));
    chrome.check_state("signin-captcha");

    // Two more failures lock the account: the page points to the help.
    for _ in 0..2 {
        chrome.type_into("#password", "wrong again");
        chrome.type_into("#captcha", "nope");
        chrome.submit("button[type=submit]");
        chrome.find("#error");
    }
    assert_eq!(
        chrome.count("#error a[href$='/help#locked']"),
        1,
        "{}",
        chrome.source()
    );
    chrome.check_state("signin-locked");

    // The lock email's link: the unlock page.
    let deadline = Instant::now() + Duration::from_secs(10);
    let link = loop {
        let found = ladder.outbox().iter().find_map(|m| {
            let t = m["text"].as_str()?;
            let i = t.find("http")?;
            Some(t[i..].split_whitespace().next()?.to_string())
        });
        if let Some(l) = found {
            break l;
        }
        assert!(Instant::now() < deadline, "no lock email");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The link names the host without the test's port: the same path on this port.
    let path = &link[link.find("/_auth/unlock?token=").expect("an unlock link")..];
    chrome.go(&format!("{site}{path}"));
    chrome.find("button[type=submit]");
    chrome.check_state("unlock");
    chrome.submit("button[type=submit]");
    chrome.wait_url("the unlock answer", |u| !u.contains("token="));
    assert!(
        chrome.source().contains("Account unlocked"),
        "{}",
        chrome.source()
    );

    chrome.go(&format!("{site}/_auth/help"));
    chrome.find("#lost-access");
    chrome.check_state("help");
    let site = format!("http://{HOST}:{}", g.port);

    // Two-step: every backup method, "Didn't get the code?" and "I can't use any".
    chrome.go(&format!("{site}/secure/x"));
    chrome.wait_url("sign-in", |u| u.contains("/_auth/login"));
    chrome.type_into("#identifier", "(415) 555-2671");
    chrome.type_into("#password", PASSWORD);
    chrome.submit("button[type=submit]");
    chrome.wait_url("two-step", |u| u.contains("/_auth/2fa"));
    let page = chrome.source();
    for needle in [
        "Get a code by text message",
        "Get a code by phone call",
        "Didn't get the code?",
        "I can't use any of these",
        "help@acme.example",
    ] {
        assert!(page.contains(needle), "{needle}:\n{page}");
    }
    chrome.click("#no-code summary");
    chrome.click("#cant-use summary");
    chrome.check_state("two-step");
    chrome.submit("#send");
    chrome.find("#notice");
    chrome.check_state("two-step-code-sent");
    chrome.type_into("#code", "000000");
    chrome.submit("form[action$='/2fa'] button[type=submit]");
    chrome.find("#error");
    assert_eq!(
        chrome.script("return document.activeElement.id;"),
        json!("code")
    );
    chrome.check_state("two-step-wrong-code");
    chrome.type_into("#code", &outbox_code(&g));
    chrome.submit("form[action$='/2fa'] button[type=submit]");
    chrome.wait_url("the page", |u| u.ends_with("/secure/x"));

    // Enrolment and the backup codes.
    chrome.go(&format!("{site}/_auth/2fa/setup"));
    chrome.find("#secret");
    chrome.check_state("enrolment");
    let totp = totp_for(&chrome);
    steady();
    chrome.type_into("#code", &totp.generate(now()));
    chrome.submit("button[type=submit]");
    chrome.find("#backup-codes");
    chrome.check_state("enrolment-backup-codes");

    // The account page.
    chrome.go(&format!("{site}/_auth/account"));
    chrome.find("#sessions");
    assert!(chrome.source().contains("this browser"));
    chrome.check_state("account");

    // Change password: the rule shown, a weak one refused with the reason.
    chrome.go(&format!("{site}/_auth/password"));
    chrome.find("#current");
    chrome.check_state("password-change");
    chrome.type_into("#current", PASSWORD);
    chrome.type_into("#password", "password123");
    chrome.type_into("#confirm", "password123");
    chrome.submit("button[type=submit]");
    chrome.find("#error");
    assert!(chrome.text("#error").contains("easy to guess"));
    assert_eq!(
        chrome.script("return document.activeElement.id;"),
        json!("password")
    );
    chrome.check_state("password-change-refused");

    // Reset, step by step.
    chrome.go(&format!("{site}/_auth/logout"));
    chrome.submit("button[type=submit]");
    chrome.find("a[href$='/_auth/login']");
    chrome.check_state("signed-out");
    chrome.go(&format!("{site}/_auth/reset"));
    chrome.find("#identifier");
    chrome.check_state("reset-request");
    chrome.type_into("#identifier", "alice@example.com");
    chrome.submit("button[type=submit]");
    chrome.find("#code");
    chrome.check_state("reset-code");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !g.outbox().iter().any(|m| m["kind"] == json!("reset_code")) {
        assert!(Instant::now() < deadline, "no reset code");
        std::thread::sleep(Duration::from_millis(100));
    }
    chrome.type_into("#code", &outbox_code(&g));
    chrome.type_into("#password", STRONG);
    chrome.type_into("#confirm", STRONG);
    chrome.submit("button[type=submit]");
    chrome.find("a[href$='/_auth/login']");
    assert!(chrome.source().contains("Password changed"));
    chrome.check_state("reset-done");

    // Error pages.
    chrome.go(&format!("{site}/_auth/no-such-page"));
    chrome.find("#next");
    chrome.check_state("error-404");
    let down = Gateway::start(
        Backend::Memory,
        Options {
            extra: UI.into(),
            upstream_port: Some(free_port()),
            ..Options::default()
        },
    );
    chrome.go(&format!("http://{HOST}:{}/public/x", down.port));
    chrome.find("#next");
    assert!(chrome.source().contains("not responding"));
    chrome.check_state("error-502");

    // Another language, chosen with the switcher: still accessible (lang attribute).
    chrome.go(&format!("{site}/_auth/login"));
    chrome.submit("a[hreflang=de]");
    chrome.wait_url("German", |u| u.contains("lang=de"));
    assert_eq!(
        chrome.script("return document.documentElement.lang;"),
        json!("de")
    );
    assert!(chrome.text("h1").contains("Anmelden"));
    chrome.check_state("signin-de");
    chrome.go(&format!("{site}/_auth/help"));
    assert!(
        chrome.text("h1").contains("Probleme bei der Anmeldung"),
        "the choice is kept"
    );
    chrome.check_state("help-de");
}

const FIREFOX: &str =
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// Signs alice in with extra request headers; the session cookie pair.
fn sign_in_with(g: &Gateway, headers: &[&str]) -> String {
    let (pre, csrf) = g.login_form();
    let fields = [
        ("csrf", csrf.as_str()),
        ("identifier", "alice"),
        ("password", PASSWORD),
        ("rd", "/"),
    ];
    let r = g.submit_login(&pre, &fields, headers);
    assert_eq!(r.status, 303, "{}", r.body);
    // Alice has a phone: the account page wants the second step too.
    g.step_up_with(&r.cookie("portcullis").unwrap(), "sms", headers)
}

#[test]
fn account_page_lists_sessions_and_signs_them_out_after_reauthentication() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: "[otp]\nreauth_after = \"2s\"\n".into(),
            ..Options::default()
        },
    );
    let r = html(&g, "/_auth/account");
    assert_eq!(
        (r.status, r.header("Location")),
        (302, Some("/_auth/login?rd=%2F_auth%2Faccount"))
    );
    let laptop = sign_in_with(&g, &["Accept: text/html", FIREFOX]);
    let phone = sign_in_with(
        &g,
        &[
            "Accept: text/html",
            "User-Agent: Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
        ],
    );
    let page = g.get(
        "/_auth/account",
        &[&format!("Cookie: {phone}"), "Accept: text/html"],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    for needle in [
        "Chrome on Android</strong> · this browser",
        "Firefox on Windows",
        "alice@example.com",
        "+14155552671",
        "Sign out all other browsers",
        "Authenticator app: not set up.",
        "_auth/password\"",
    ] {
        assert!(page.body.contains(needle), "{needle}:\n{}", page.body);
    }
    let post = |cookie: &str, fields: &[(&str, &str)]| {
        g.req(
            "POST",
            HOST,
            "/_auth/account",
            &[&format!("Cookie: {cookie}"), "Accept: text/html"],
            Some(&form(fields)),
        )
    };
    let csrf = page.csrf();
    // Without the CSRF token: refused.
    assert_eq!(post(&phone, &[("action", "signout_others")]).status, 403);
    // Older than otp.reauth_after: the password again, and a wrong one is refused.
    std::thread::sleep(Duration::from_millis(3500));
    let r = post(
        &phone,
        &[
            ("csrf", &csrf),
            ("action", "signout_others"),
            ("password", "wrong"),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("confirm it"), "{}", r.body);
    assert_eq!(
        g.get("/page", &[&format!("Cookie: {laptop}")]).status,
        200,
        "still signed in"
    );
    let r = post(
        &phone,
        &[
            ("csrf", &csrf),
            ("action", "signout_others"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Every other browser is signed out."));
    assert!(!r.body.contains("Firefox on Windows"), "{}", r.body);
    assert_ne!(g.get("/page", &[&format!("Cookie: {laptop}")]).status, 200);
    assert_eq!(g.get("/page", &[&format!("Cookie: {phone}")]).status, 200);
    // The owner is told.
    let notice = g.wait_message("account_change", "no notice");
    assert_eq!(notice["to"], json!("alice@example.com"));
    assert!(
        notice["text"]
            .as_str()
            .unwrap()
            .contains("All other browsers were signed out"),
        "{notice}"
    );
    // Within otp.reauth_after of the password: no password needed; then everywhere.
    let other = sign_in_with(&g, &["Accept: text/html", FIREFOX]);
    let page = g.get(
        "/_auth/account",
        &[&format!("Cookie: {other}"), "Accept: text/html"],
    );
    let handle_of_phone = {
        let i =
            page.body.find("name=\"handle\" value=\"").unwrap() + "name=\"handle\" value=\"".len();
        page.body[i..i + page.body[i..].find('"').unwrap()].to_string()
    };
    // A prefix is not a handle here (it could name this very browser).
    let r = post(
        &other,
        &[
            ("csrf", &page.csrf()),
            ("action", "signout"),
            ("handle", &handle_of_phone[..8]),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(g.get("/page", &[&format!("Cookie: {phone}")]).status, 200);
    // A handle that isn't one of this account's sessions ends nothing and tells no one.
    let notices = g.outbox().len();
    let r = post(
        &other,
        &[
            ("csrf", &page.csrf()),
            ("action", "signout"),
            ("handle", &"0".repeat(handle_of_phone.len())),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        g.outbox().len(),
        notices,
        "no notice for a change that didn't happen"
    );
    let r = post(
        &other,
        &[
            ("csrf", &page.csrf()),
            ("action", "signout"),
            ("handle", &handle_of_phone),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("That browser is signed out."));
    assert_ne!(g.get("/page", &[&format!("Cookie: {phone}")]).status, 200);
    let r = post(&other, &[("csrf", &page.csrf()), ("action", "signout_all")]);
    assert_eq!(
        (r.status, r.header("Location")),
        (303, Some("/_auth/login"))
    );
    assert_ne!(g.get("/page", &[&format!("Cookie: {other}")]).status, 200);
    assert!(g.log().contains("account_changed"));
    // The account's history shows on the page, in words (recorded off the request path).
    let again = sign_in_with(&g, &["Accept: text/html", FIREFOX]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = g.get(
            "/_auth/account",
            &[&format!("Cookie: {again}"), "Accept: text/html"],
        );
        let all = [
            "Recent activity",
            "<td>Signed in</td>",
            "<td>Account settings changed</td>",
        ]
        .iter()
        .all(|n| page.body.contains(n));
        if all {
            break;
        }
        assert!(Instant::now() < deadline, "no history:\n{}", page.body);
        std::thread::sleep(Duration::from_millis(200));
    }
}
