//! The session cache (issue #11) across two gateways on one real Redis: a signed-in
//! request is served without a store round trip, and every way a session ends
//! (sign-out, `session revoke`, disable, password change, sign out everywhere)
//! reaches the other gateway within a second — also when its invalidation
//! channel was cut.

use std::time::{Duration, Instant};

use crate::harness::*;

/// Two gateways on one Redis with the same keys and accounts (as deployed).
fn two_gateways() -> (Redis, Gateway, Gateway) {
    let redis = Redis::start();
    let opts = || Options {
        redis_url: Some(redis.url()),
        ..Options::default()
    };
    let a = Gateway::start(Backend::Redis, opts());
    let mut b = Gateway::start(Backend::Redis, opts());
    b.proc = None;
    for f in ["secrets/cookie.key", "secrets/data.key", "users.toml"] {
        std::fs::copy(a.dir.path().join(f), b.dir.path().join(f)).unwrap();
    }
    b.spawn();
    wait_subscribed(&redis, 2);
    (redis, a, b)
}

fn redis_conn(redis: &Redis) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// Waits (bounded) until `n` gateways listen on the invalidation channel.
fn wait_subscribed(redis: &Redis, n: i64) {
    let mut c = redis_conn(redis);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let subs: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("t:session-invalidate")
            .query(&mut c)
            .unwrap();
        if subs.first().map(|s| s.1) == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "subscribers: {subs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Calls of `GET` Redis has answered so far.
fn redis_gets(redis: &Redis) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis_conn(redis))
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|l| l.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Requests `/x` with `cookie` on `g` until it is refused (401); how long that took.
/// Fails when it is still served after `limit` (3 s for [`refused_after`]).
fn refused_after(g: &Gateway, cookie: &str) -> Duration {
    refused_after_within(g, cookie, Duration::from_secs(3))
}

fn refused_after_within(g: &Gateway, cookie: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = g.get("/x", &[cookie]);
        if r.status == 401 {
            return start.elapsed();
        }
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            start.elapsed() < limit,
            "the ended session is still served on the other gateway"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_refused_within_a_second(g: &Gateway, cookie: &str) {
    let took = refused_after(g, cookie);
    assert!(took < Duration::from_secs(1), "refused only after {took:?}");
}

/// Signs in on `a` and uses the session on both gateways (so both have cached it).
fn signed_in_on_both(a: &Gateway, b: &Gateway, user: &str) -> String {
    let cookie = format!("Cookie: {}", a.login(user));
    for g in [a, b, a, b] {
        assert_eq!(g.get("/x", &[&cookie]).status, 200);
    }
    cookie
}

#[test]
fn a_signed_in_request_needs_no_store_read() {
    let (redis, a, b) = two_gateways();
    let cookie = signed_in_on_both(&a, &b, "alice");
    let before = redis_gets(&redis);
    for _ in 0..40 {
        let r = b.get("/x", &[&cookie]);
        assert_eq!(r.status, 200);
        assert_eq!(r.echo()["headers"]["remote-user"], "alice");
    }
    let reads = redis_gets(&redis) - before;
    // The cached record lives 5 s (store.session_cache): at most a re-read or two.
    assert!(reads <= 3, "{reads} store reads for 40 signed-in requests");
}

#[test]
fn sign_out_on_one_gateway_ends_the_session_on_the_other() {
    let (_redis, a, b) = two_gateways();
    let cookie = signed_in_on_both(&a, &b, "alice");
    let page = a.get("/_auth/logout", &[&cookie, "Accept: text/html"]);
    let r = a.req(
        "POST",
        HOST,
        "/_auth/logout",
        &[&cookie],
        Some(&form(&[("csrf", &page.csrf())])),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // On the gateway that handled it: at once.
    assert_eq!(a.get("/x", &[&cookie]).status, 401);
    assert_refused_within_a_second(&b, &cookie);
}

#[test]
fn cli_revoke_everywhere_and_disable_reach_every_gateway() {
    let (_redis, a, b) = two_gateways();
    // Two sessions of alice's ("sign out everywhere" ends both), one of bob's.
    let first = signed_in_on_both(&a, &b, "alice");
    let second = signed_in_on_both(&b, &a, "alice");
    let bobs = signed_in_on_both(&a, &b, "bob");
    let out = a.cli(&["session", "revoke", "alice"], None);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ended 2 session"));
    for g in [&a, &b] {
        assert_refused_within_a_second(g, &first);
        assert_refused_within_a_second(g, &second);
    }
    // Bob's session is untouched; disabling him ends it everywhere.
    assert_eq!(b.get("/x", &[&bobs]).status, 200);
    let out = a.cli(&["user", "disable", "bob"], None);
    assert!(out.status.success(), "{out:?}");
    assert_refused_within_a_second(&b, &bobs);
    assert_refused_within_a_second(&a, &bobs);
}

#[test]
fn a_password_change_on_one_gateway_ends_sessions_on_the_other() {
    let (_redis, a, b) = two_gateways();
    // (Bob: no second factor, so a password-only session may change his password.)
    let elsewhere = signed_in_on_both(&b, &a, "bob");
    let here = signed_in_on_both(&a, &b, "bob");
    let page = a.get("/_auth/password", &[&here, "Accept: text/html"]);
    assert_eq!(page.status, 200, "{}", page.body);
    let r = a.req(
        "POST",
        HOST,
        "/_auth/password",
        &[&here, "Accept: text/html"],
        Some(&form(&[
            ("csrf", &page.csrf()),
            ("current", PASSWORD),
            ("password", "a fresh long password"),
            ("confirm", "a fresh long password"),
        ])),
    );
    assert!(r.status < 400, "{} {}", r.status, r.body);
    assert_refused_within_a_second(&b, &elsewhere);
    assert_refused_within_a_second(&a, &elsewhere);
    assert_refused_within_a_second(&b, &here);
}

#[test]
fn revocation_holds_when_the_invalidation_channel_is_cut() {
    let (redis, a, b) = two_gateways();
    let cookie = signed_in_on_both(&a, &b, "alice");
    // Cut every pub/sub connection, and revoke while the gateways may not have
    // resubscribed yet: the announcement can be lost, the revocation must not be.
    let mut c = redis_conn(&redis);
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut c)
        .unwrap();
    assert_eq!(killed, 2);
    let out = a.cli(&["session", "revoke", "alice"], None);
    assert!(out.status.success(), "{out:?}");
    assert_refused_within_a_second(&b, &cookie);
    assert_refused_within_a_second(&a, &cookie);
    // Both resubscribe by themselves, and the cache works (and is revoked) again.
    wait_subscribed(&redis, 2);
    assert!(b.log().contains("invalidation channel lost"), "{}", b.log());
    let cookie = signed_in_on_both(&a, &b, "alice");
    let before = redis_gets(&redis);
    for _ in 0..20 {
        assert_eq!(b.get("/x", &[&cookie]).status, 200);
    }
    assert!(redis_gets(&redis) - before <= 3, "cached again");
    let out = a.cli(&["session", "revoke", "alice"], None);
    assert!(out.status.success(), "{out:?}");
    assert_refused_within_a_second(&b, &cookie);
}

#[test]
fn a_session_deleted_without_announcement_ends_by_the_cache_lifetime() {
    // The backstop: a record removed behind the gateways' backs (no announcement)
    // is refused once the cached copy is older than `store.session_cache` (5 s).
    let (redis, a, b) = two_gateways();
    let cookie = signed_in_on_both(&a, &b, "alice");
    let mut c = redis_conn(&redis);
    let keys: Vec<String> = redis::cmd("KEYS").arg("t:sess:*").query(&mut c).unwrap();
    assert_eq!(keys.len(), 1);
    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut c).unwrap();
    let took = refused_after_within(&b, &cookie, Duration::from_secs(8));
    assert!(took <= Duration::from_millis(5500), "{took:?}");
}
