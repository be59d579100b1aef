//! Identity headers per site (`[site.headers]`) and the signed identity
//! (assertion JWT), checked through the real gateway and the sample app's echo.
//! The JWTs are verified by an independent verifier: PyJWT (Debian's
//! `python3-jwt` with `python3-cryptography`), which fetches the JWKS over HTTP.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::harness::*;
use crate::operations::signal;

const TRUSTED: &str = "#server\ntrusted_proxies = [\"127.0.0.1/32\"]\n#end\n";

/// Client copies of identity headers, in several spellings.
const SPOOFED: &[&str] = &[
    "x_webauth_user: mallory",
    "X-WEBAUTH-USER: mallory",
    "x-groups: root",
    "X_Groups: root",
    "Remote-User: mallory",
    "remote_email: mallory@example.com",
];

fn forward_auth(host: &str) -> Vec<String> {
    vec![
        "X-Forwarded-Method: GET".into(),
        "X-Forwarded-Proto: https".into(),
        format!("X-Forwarded-Host: {host}"),
        "X-Forwarded-Uri: /private".into(),
    ]
}

/// The identity a signed-in request carries follows its account and its site: an
/// account changed by hand (groups, email) or a site's header names changed on
/// SIGHUP show in the very next requests, on the same session and connection-less
/// requests alike. (Each account keeps its head per site, and each thread its last
/// account and config: none of them may outlive the change.)
#[test]
fn a_changed_account_or_site_sends_its_new_identity() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            site: "[site.headers]\ngroups = \"X-Groups\"\n".into(),
            ..Default::default()
        },
    );
    let alice = format!("Cookie: {}", g.login("alice"));
    let sent = || headers_of(&g.get("/private", &[&alice]));
    let h = sent();
    assert_eq!(h["x-groups"], "admins,staff", "{h:?}");
    assert_eq!(h["remote-email"], "alice@example.com", "{h:?}");
    // The account changed by hand: the new groups and email, never the old ones again.
    g.edit_users(|u| {
        for a in u.iter_mut().filter(|u| u.name == "alice") {
            a.groups = vec!["staff".into()];
            a.email = "alice@new.example.com".into();
        }
    });
    // Waits (bounded) until `seen` holds for what is sent, then checks it stays so.
    let settles = |what: &str, seen: &dyn Fn(&serde_json::Map<String, Value>) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen(&sent()) {
            assert!(Instant::now() < deadline, "{what} never reached the app");
            std::thread::sleep(Duration::from_millis(100));
        }
        for _ in 0..20 {
            let h = sent();
            assert!(seen(&h), "{what} went back: {h:?}");
        }
    };
    settles("the new groups and email", &|h| {
        h["x-groups"] == "staff" && h["remote-email"] == "alice@new.example.com"
    });
    // The site's names changed on SIGHUP: the new name, the old one gone.
    let cfg = std::fs::read_to_string(&g.config).unwrap();
    assert!(cfg.contains("groups = \"X-Groups\""), "{cfg}");
    std::fs::write(&g.config, cfg.replace("\"X-Groups\"", "\"X-Team\"")).unwrap();
    signal(g.pid(), "HUP");
    settles("the new header name", &|h| {
        h.get("x-team").is_some_and(|v| v == "staff") && !h.contains_key("x-groups")
    });
}

fn headers_of(r: &Resp) -> serde_json::Map<String, Value> {
    assert_eq!(r.status, 200, "{}", r.body);
    r.echo()["headers"].as_object().unwrap().clone()
}

fn site_headers(b: Backend) {
    let g = Gateway::start(
        b,
        Options {
            extra: TRUSTED.into(),
            site: "[site.headers]\nuser = \"X-WEBAUTH-USER\"\nemail = \"\"\nname = \"\"\n\
                   groups = \"X-Groups\"\ngroup_separator = \";\"\n"
                .into(),
            ..Default::default()
        },
    );
    let alice = format!("Cookie: {}", g.login("alice"));
    let with = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = SPOOFED.iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let req = |host: &str, path: &str, hs: &[String]| {
        let hs: Vec<&str> = hs.iter().map(String::as_str).collect();
        g.req("GET", host, path, &hs, None)
    };

    // Signed in on app.test: exactly the configured names, with the gateway's values.
    let h = headers_of(&req(HOST, "/private", &with(&[&alice])));
    assert_eq!(h["x-webauth-user"], "alice", "{h:?}");
    assert_eq!(h["x-groups"], "admins;staff", "{h:?}");
    for absent in [
        "remote-user",
        "remote-email",
        "remote-name",
        "remote-groups",
        "x_webauth_user",
        "x_groups",
        "remote_email",
    ] {
        assert!(!h.contains_key(absent), "{absent} reached the app: {h:?}");
    }
    assert_eq!(h["x-forwarded-host"], HOST);
    let mut identity: Vec<&String> = h
        .keys()
        .filter(|k| k.contains("user") || k.contains("group") || k.contains("email"))
        .collect();
    identity.sort();
    assert_eq!(identity, ["x-groups", "x-webauth-user"], "{h:?}");

    // Anonymous through a bypass rule: none of them, whatever the client sent.
    let h = headers_of(&req(HOST, "/public/x", &with(&[])));
    for absent in [
        "x-webauth-user",
        "x_webauth_user",
        "x-groups",
        "x_groups",
        "remote-user",
        "remote_email",
    ] {
        assert!(!h.contains_key(absent), "{absent} reached the app: {h:?}");
    }

    // Another site keeps the default names, and a name configured anywhere is
    // stripped everywhere.
    let h = headers_of(&req("other.test", "/private", &with(&[&alice])));
    assert_eq!(h["remote-user"], "alice");
    assert_eq!(h["remote-groups"], "admins,staff");
    assert_eq!(h["remote-email"], "alice@example.com");
    for absent in ["x-webauth-user", "x_webauth_user", "x-groups", "x_groups"] {
        assert!(!h.contains_key(absent), "{absent} reached the app: {h:?}");
    }
    let h = headers_of(&req("other.test", "/public/x", &with(&[])));
    assert!(
        !h.contains_key("x-groups") && !h.contains_key("x_groups"),
        "{h:?}"
    );

    // Forward-auth answers with the names of the original request's site.
    let mut fa = forward_auth(HOST);
    fa.push(alice.clone());
    let r = req(HOST, "/_auth/verify", &fa);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-webauth-user"), Some("alice"));
    assert_eq!(r.header("x-groups"), Some("admins;staff"));
    assert_eq!(r.header("remote-user"), None);
    assert_eq!(r.header("remote-email"), None);
    // Anonymous through a bypass rule: the site's names, empty (for proxies that copy them).
    let mut fa = forward_auth(HOST);
    fa[3] = "X-Forwarded-Uri: /public/x".into();
    let r = req(HOST, "/_auth/verify", &fa);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-webauth-user"), Some(""));
    assert_eq!(r.header("x-groups"), Some(""));
    assert_eq!(r.header("remote-user"), None);
    let mut fa = forward_auth("other.test");
    fa.push(alice);
    let r = req(HOST, "/_auth/verify", &fa);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("remote-user"), Some("alice"));
    assert_eq!(r.header("x-webauth-user"), None);
}

#[test]
fn site_headers_memory() {
    site_headers(Backend::Memory)
}

#[test]
fn site_headers_redis() {
    site_headers(Backend::Redis)
}

/// PyJWT verifies each case against the JWKS it fetches from the gateway.
const VERIFIER: &str = r#"
import base64, hashlib, json, sys, urllib.request
import jwt

spec = json.load(sys.stdin)
req = urllib.request.Request(spec["jwks_url"], headers={"Host": spec["host"]})
with urllib.request.urlopen(req, timeout=10) as resp:
    jwks = json.load(resp)
    cache = resp.headers.get("Cache-Control")

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

# RFC 7638, computed here independently of the gateway.
thumbprints_ok = all(
    k["kid"] == b64u(hashlib.sha256(json.dumps(
        {"crv": k["crv"], "kty": k["kty"], "x": k["x"], "y": k["y"]},
        separators=(",", ":"), sort_keys=True).encode()).digest())
    for k in jwks["keys"])
keys = {k["kid"]: jwt.PyJWK.from_dict(k) for k in jwks["keys"]}

results = []
for case in spec["cases"]:
    try:
        kid = jwt.get_unverified_header(case["token"]).get("kid")
        if kid not in keys:
            raise LookupError("NoSuchKid")
        claims = jwt.decode(
            case["token"], key=keys[kid].key, algorithms=["ES256"],
            audience=case["aud"], issuer=case["iss"],
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]})
        results.append({"ok": True, "claims": claims})
    except LookupError as e:
        results.append({"ok": False, "error": str(e)})
    except jwt.PyJWTError as e:
        results.append({"ok": False, "error": type(e).__name__})
json.dump({"kids": list(keys), "cache": cache, "thumbprints_ok": thumbprints_ok,
           "results": results}, sys.stdout)
"#;

struct Case<'a> {
    token: &'a str,
    aud: &'a str,
    iss: &'a str,
}

fn pyjwt(g: &Gateway, cases: &[Case<'_>]) -> Value {
    let script = g.dir.path().join("verify_jwt.py");
    std::fs::write(&script, VERIFIER).unwrap();
    let spec = json!({
        "jwks_url": format!("http://127.0.0.1:{}/_auth/jwks.json", g.port),
        "host": HOST,
        "cases": cases.iter().map(|c| json!({"token": c.token, "aud": c.aud, "iss": c.iss})).collect::<Vec<_>>(),
    });
    let mut child = Command::new("/usr/bin/python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (scripts/test.sh installs python3-jwt, python3-cryptography)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "verifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["thumbprints_ok"], true,
        "kid is not the RFC 7638 thumbprint: {v}"
    );
    v
}

const ASSERTION: &str = "x-portcullis-assertion";
const ISS: &str = "https://auth.app.test";

/// The assertion the app received on a signed-in request (exactly one).
fn token_for(g: &Gateway, cookie: &str) -> String {
    let h = headers_of(&g.get(
        "/private",
        &[
            cookie,
            "X-Portcullis-Assertion: forged",
            "x_portcullis_assertion: forged",
        ],
    ));
    assert!(!h.contains_key("x_portcullis_assertion"), "{h:?}");
    let t = h[ASSERTION].as_str().unwrap().to_string();
    assert_eq!(
        t.split('.').count(),
        3,
        "one compact JWS, not the client's: {t}"
    );
    t
}

fn payload(token: &str) -> Value {
    let p = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

fn kid(token: &str) -> String {
    let h = token.split('.').next().unwrap();
    let h: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    h["kid"].as_str().unwrap().to_string()
}

fn jwks(g: &Gateway) -> Value {
    let r = g.get("/_auth/jwks.json", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

/// SIGHUP, then waits until the JWKS holds `n` keys.
fn reload_until_keys(g: &Gateway, n: usize) {
    signal(g.pid(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while jwks(g)["keys"].as_array().unwrap().len() != n {
        assert!(
            Instant::now() < deadline,
            "JWKS never had {n} keys: {}",
            g.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn signed_identity_verified_by_pyjwt() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: format!(
                "#server\ntrusted_proxies = [\"127.0.0.1/32\"]\npublic_url = \"{ISS}\"\n#end\n\
                 [assertion]\nttl = \"60s\"\n"
            ),
            site: "[site.headers]\nuser = \"X-Forwarded-User\"\nemail = \"X-Forwarded-Email\"\n\
                   assertion = \"X-Portcullis-Assertion\"\n"
                .into(),
            ..Default::default()
        },
    );
    // The JWKS: public, cacheable, one P-256 key.
    let r = g.get("/_auth/jwks.json", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let set = jwks(&g);
    let key = &set["keys"][0];
    assert_eq!(set["keys"].as_array().unwrap().len(), 1);
    for (k, v) in [
        ("kty", "EC"),
        ("crv", "P-256"),
        ("use", "sig"),
        ("alg", "ES256"),
    ] {
        assert_eq!(key[k], v, "{set}");
    }
    assert!(key.get("d").is_none(), "no private part: {set}");

    // Signed in: the gateway's X-Forwarded-User / -Email (stripped from the
    // client, then set), its own X-Forwarded-For, and the assertion.
    let alice = format!("Cookie: {}", g.login("alice"));
    let h = headers_of(&g.get(
        "/private",
        &[
            &alice,
            "X-Forwarded-User: mallory",
            "x_forwarded_email: mallory@example.com",
            "X-Forwarded-For: 6.6.6.6",
        ],
    ));
    assert_eq!(h["x-forwarded-user"], "alice", "{h:?}");
    assert_eq!(h["x-forwarded-email"], "alice@example.com", "{h:?}");
    assert!(!h.contains_key("x_forwarded_email"), "{h:?}");
    assert_eq!(h["x-forwarded-host"], HOST);
    assert!(!h.contains_key("remote-user"), "{h:?}");
    let t1 = token_for(&g, &alice);
    let bob = format!("Cookie: {}", g.login("bob"));
    let t_bob = token_for(&g, &bob);
    // Anonymous requests carry no assertion, and no client copy of one.
    let h = headers_of(&g.get("/public/x", &["X-Portcullis-Assertion: forged"]));
    assert!(!h.contains_key(ASSERTION), "{h:?}");
    // Forward-auth's 200 carries one too, for the original request's site.
    let mut fa = forward_auth(HOST);
    fa.push(alice.clone());
    let fa: Vec<&str> = fa.iter().map(String::as_str).collect();
    let r = g.get("/_auth/verify", &fa);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-forwarded-user"), Some("alice"));
    let t_verify = r.header(ASSERTION).unwrap().to_string();

    // A tampered payload (sub changed, signature kept).
    let mut forged = payload(&t1);
    forged["sub"] = json!("admin");
    let parts: Vec<&str> = t1.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        parts[2]
    );
    let case = |token, aud, iss| Case { token, aud, iss };
    let v = pyjwt(
        &g,
        &[
            case(&t1, HOST, ISS),
            case(&t_bob, HOST, ISS),
            case(&t_verify, HOST, ISS),
            case(&tampered, HOST, ISS),
            case(&t1, "other.test", ISS),
            case(&t1, HOST, "portcullis"),
        ],
    );
    assert_eq!(v["cache"], "public, max-age=300");
    let res = &v["results"];
    assert_eq!(res[0]["ok"], true, "{v}");
    let c = &res[0]["claims"];
    assert_eq!(c["iss"], ISS);
    assert_eq!(c["aud"], HOST);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["name"], "Alice Exämple");
    assert_eq!(c["groups"], json!(["admins", "staff"]));
    assert_eq!(c["factors"], 1);
    assert_eq!(c["amr"], json!(["pwd"]));
    assert_eq!(c["nbf"], c["iat"]);
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);
    assert_eq!(res[1]["ok"], true, "{v}");
    assert_eq!(res[1]["claims"]["sub"], "bob");
    assert_ne!(res[1]["claims"]["jti"], c["jti"]);
    assert_eq!(res[2]["ok"], true, "{v}");
    assert_eq!(res[2]["claims"]["sub"], "alice");
    assert_eq!(res[3]["error"], "InvalidSignatureError", "{v}");
    assert_eq!(res[4]["error"], "InvalidAudienceError", "{v}");
    assert_eq!(res[5]["error"], "InvalidIssuerError", "{v}");

    // Rotation: the old key becomes assertion.previous.key; on SIGHUP the gateway
    // makes a new assertion.key and publishes both.
    let secrets = g.dir.path().join("secrets");
    std::fs::rename(
        secrets.join("assertion.key"),
        secrets.join("assertion.previous.key"),
    )
    .unwrap();
    reload_until_keys(&g, 2);
    let t2 = token_for(&g, &alice);
    assert_ne!(kid(&t2), kid(&t1));
    let v = pyjwt(&g, &[case(&t1, HOST, ISS), case(&t2, HOST, ISS)]);
    assert_eq!(v["kids"], json!([kid(&t2), kid(&t1)]), "{v}");
    assert_eq!(v["results"][0]["ok"], true, "made before the rotation: {v}");
    assert_eq!(v["results"][1]["ok"], true, "{v}");
    // The previous key removed: its tokens no longer verify.
    std::fs::remove_file(secrets.join("assertion.previous.key")).unwrap();
    reload_until_keys(&g, 1);
    let v = pyjwt(&g, &[case(&t1, HOST, ISS), case(&t2, HOST, ISS)]);
    assert_eq!(v["results"][0]["error"], "NoSuchKid", "{v}");
    assert_eq!(v["results"][1]["ok"], true, "{v}");

    // Expiry: a 1s ttl (applied on SIGHUP), and the token is refused once past it.
    let text = std::fs::read_to_string(&g.config).unwrap();
    std::fs::write(&g.config, text.replace("ttl = \"60s\"", "ttl = \"1s\"")).unwrap();
    signal(g.pid(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let short = loop {
        let t = token_for(&g, &alice);
        let p = payload(&t);
        if p["exp"].as_u64().unwrap() - p["iat"].as_u64().unwrap() == 1 {
            break t;
        }
        assert!(Instant::now() < deadline, "ttl not reloaded: {}", g.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(2100));
    let v = pyjwt(&g, &[case(&short, HOST, ISS)]);
    assert_eq!(v["results"][0]["error"], "ExpiredSignatureError", "{v}");

    // Never logged.
    let log = g.log();
    for t in [&t1, &t2, &short] {
        assert!(!log.contains(t.as_str()), "token in the log");
    }
    assert!(!log.contains("PRIVATE KEY"));
}

#[test]
fn serve_creates_a_missing_assertion_key() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            site: "[site.headers]\nassertion = \"X-Assertion\"\n".into(),
            ..Default::default()
        },
    );
    // An install from before assertions: no key; `serve` makes one when a site needs it.
    let key = g.dir.path().join("secrets/assertion.key");
    let mut g = g;
    drop(g.proc.take());
    std::fs::remove_file(&key).unwrap();
    g.spawn();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    }
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(jwks(&g)["keys"].as_array().unwrap().len(), 1);
    let alice = format!("Cookie: {}", g.login("alice"));
    let h = headers_of(&g.get("/private", &[&alice]));
    assert_eq!(h["remote-user"], "alice", "defaults stay: {h:?}");
    let t = h["x-assertion"].as_str().unwrap();
    assert_eq!(payload(t)["iss"], "portcullis");
    assert_eq!(payload(t)["aud"], HOST);
    // A key readable by others is refused at start.
    drop(g.proc.take());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config", g.config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "serve started with a key readable by others"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!status.success());
        let mut err = String::new();
        use std::io::Read;
        child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(
            err.contains("assertion.key") && err.contains("readable by others"),
            "{err}"
        );
    }
}

#[test]
fn init_makes_the_key_and_the_documented_example_checks() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["init", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = dir.path().join("secrets/assertion.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    }
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    // The commented [site.headers] and [assertion] examples, switched on, are valid.
    let cfg = dir.path().join("portcullis.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let mut on = String::new();
    let mut in_example = false;
    for line in text.lines() {
        if line.starts_with("# [site.headers]") || line.starts_with("# [assertion]") {
            in_example = true;
        } else if !line.starts_with('#') {
            in_example = false;
        }
        match line.strip_prefix("# ") {
            Some(l) if in_example && !l.starts_with(' ') => on.push_str(l),
            _ => on.push_str(line),
        }
        on.push('\n');
    }
    let on = on.replace("assertion = \"\"", "assertion = \"X-Portcullis-Assertion\"");
    assert!(
        on.contains("\n[site.headers] ") && on.contains("\n[assertion] "),
        "{on}"
    );
    std::fs::write(&cfg, on).unwrap();
    let o = cli(&cfg, &["check-config"], None);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
