//! The per-request work of an authenticated, proxied request, without the
//! network: cookie decrypt → session lookup (memory store) → policy → header
//! rewrite. `scripts/bench.sh` measures the whole hop against nginx.

// Benchmark set-up fails loudly rather than measuring something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pingora::http::RequestHeader;
use portcullis::clock::SystemClock;
use portcullis::config::{SameSite, SessionConfig};
use portcullis::cookies::CookieCrypto;
use portcullis::policy::{self, Factors, Policy, Rule, Subject};
use portcullis::session::{Lookup, SessionId, Sessions};
use portcullis::store::memory::MemoryStore;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cfg = SessionConfig {
        cookie_name: "portcullis".into(),
        domain: None,
        secure: true,
        same_site: SameSite::Lax,
        idle_timeout: Duration::from_secs(1800),
        absolute_timeout: Duration::from_secs(43200),
    };
    let cookies = CookieCrypto::new(&[42u8; 64], &cfg);
    let store = Arc::new(MemoryStore::new());
    let sessions = Sessions::new(
        store,
        Arc::new(SystemClock),
        cfg.idle_timeout,
        cfg.absolute_timeout,
    );
    // Other sessions in the store, so lookups hit a realistically filled map.
    for i in 0..10_000 {
        rt.block_on(sessions.create(&format!("u{i}"), 1, "127.0.0.1", 0))
            .unwrap();
    }
    let (id, _) = rt
        .block_on(sessions.create("alice", 1, "127.0.0.1", 0))
        .unwrap();
    let set = cookies.session_cookie(id.as_str(), "app.example.com");
    let header = format!("other=1; {}", set.split(';').next().unwrap());
    let rules: Vec<Rule> = (0..10)
        .map(|i| Rule {
            host: None,
            path: format!("/area{i}/"),
            methods: vec![],
            groups: vec![],
            networks: vec![],
            policy: if i % 2 == 0 {
                Policy::Bypass
            } else {
                Policy::Deny
            },
        })
        .collect();
    let groups = vec!["staff".to_string()];
    let method = http::Method::GET;

    c.bench_function("cookie_decrypt", |b| {
        b.iter(|| cookies.read(&header, "portcullis").unwrap())
    });
    c.bench_function("hot_path_full", |b| {
        b.iter(|| {
            let raw = cookies.read(&header, "portcullis").unwrap();
            let id = SessionId::parse(&raw).unwrap();
            let Lookup::Valid(record) = rt.block_on(sessions.load(&id)).unwrap() else {
                panic!("session")
            };
            let path = portcullis::pathnorm::normalize("/app/./page").unwrap();
            let subject = Subject {
                factors: if record.factors > 1 {
                    Factors::Two
                } else {
                    Factors::One
                },
                groups: &groups,
            };
            let req = policy::Request {
                host: "app.example.com",
                path: &path,
                method: &method,
                client: [127, 0, 0, 1].into(),
                overridden: &[],
            };
            let decision = policy::decide(
                policy::policy_for(&rules, Policy::OneFactor, &req, &subject),
                &subject,
            );
            let mut h = RequestHeader::build("GET", b"/app/page", Some(16)).unwrap();
            h.insert_header("Remote-User", "spoof").unwrap();
            h.insert_header("Accept", "*/*").unwrap();
            let mut plain = portcullis::proxy::headers::Plain::take(&mut h);
            portcullis::proxy::headers::strip_spoofable(&mut plain.parts.headers);
            plain.put(&mut h).unwrap();
            h.insert_header("Remote-User", record.user.as_str())
                .unwrap();
            h.insert_header("Remote-Groups", "staff").unwrap();
            h.insert_header("X-Forwarded-For", "127.0.0.1").unwrap();
            (decision, h)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
