//! Scale tables for BENCHMARKS.md (issue #11): how the per-request costs grow with
//! the work — rules (indexed vs the linear scan), live sessions in the memory store
//! (store read and cached read; memory per session), and limiter clients (time per
//! check, memory per distinct address, and after housekeeping).
//! Usage: cargo run --release --example scale [max n, default 1000000]

// A measuring tool: set-up failures abort loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// It measures wall time itself.
#![allow(clippy::disallowed_methods)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::clock::SystemClock;
use portcullis::policy::{self, Factors, Policy, Rule, RuleIndex, Subject};
use portcullis::session::{Lookup, SessionId, Sessions};
use portcullis::store::memory::MemoryStore;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident memory of this process, bytes.
fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

/// Median nanoseconds per call of `f`, over 5 batches of about 40 ms each.
fn time(mut f: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        f();
    }
    let t = Instant::now();
    f();
    let one = t.elapsed().max(Duration::from_nanos(20));
    let per_batch =
        (Duration::from_millis(40).as_nanos() / one.as_nanos()).clamp(1, 1_000_000) as u32;
    let mut batches: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(per_batch)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[2]
}

fn sizes(max: usize) -> Vec<usize> {
    [10, 1_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|n| *n <= max)
        .collect()
}

fn rules(max: usize) {
    println!("\n### Rules: policy lookup for a request no rule matches (the worst case)\n");
    println!("| rules | indexed | linear scan (before) | index memory |");
    println!("| ---: | ---: | ---: | ---: |");
    let method = http::Method::GET;
    let groups: Vec<String> = vec!["staff".into()];
    let subject = Subject {
        factors: Factors::One,
        groups: &groups,
    };
    let req = policy::Request {
        host: "app.example.com",
        path: "/app/area/page",
        method: &method,
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        overridden: &[],
    };
    for n in sizes(max) {
        let rules: Vec<Rule> = (0..n)
            .map(|i| Rule {
                // A quarter of the rules are for other sites.
                host: (i % 4 == 0).then(|| format!("h{}.example.com", i % 1000)),
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
        let before = rss();
        let ix = RuleIndex::new(&rules);
        let mem = rss().saturating_sub(before);
        let indexed = time(|| {
            std::hint::black_box(ix.policy_for(&rules, Policy::OneFactor, &req, &subject));
        });
        let linear = time(|| {
            std::hint::black_box(policy::policy_for(
                &rules,
                Policy::OneFactor,
                &req,
                &subject,
            ));
        });
        println!(
            "| {n} | {:.0} ns | {:.0} ns | {:.1} MiB |",
            indexed,
            linear,
            mem as f64 / 1048576.0
        );
    }
}

fn sessions(rt: &tokio::runtime::Runtime, max: usize) {
    println!("\n### Live sessions in the memory store\n");
    println!("| live sessions | load, cached | load, store read (cache off) | memory per session (store) |");
    println!("| ---: | ---: | ---: | ---: |");
    for n in sizes(max) {
        let store = Arc::new(MemoryStore::with_max_entries(4 * n + 100));
        let clock = Arc::new(SystemClock);
        let idle = Duration::from_secs(1800);
        let abs = Duration::from_secs(43200);
        let cached = Sessions::with_cache(
            store.clone(),
            clock.clone(),
            idle,
            abs,
            Duration::from_secs(60),
        );
        let uncached = Sessions::with_cache(store.clone(), clock, idle, abs, Duration::ZERO);
        let mut ids: Vec<SessionId> = Vec::with_capacity(n);
        rt.block_on(async {
            for i in 0..n {
                // Realistic names: a user has a few sessions.
                let (id, _) = uncached
                    .create(&format!("user{}", i / 3), 1, "203.0.113.7", 0)
                    .await
                    .unwrap();
                ids.push(id);
            }
        });
        let per = memory_per(&format!("sessions {n}"));
        let probe = ids[n / 2].clone();
        // Warm the cache with many sessions (up to its bound), then time one.
        rt.block_on(async {
            for id in ids.iter().take(200_000) {
                let _ = cached.load(id).await.unwrap();
            }
            let _ = cached.load(&probe).await.unwrap();
        });
        let hit = time(|| {
            let l = rt.block_on(cached.load(&probe)).unwrap();
            assert!(matches!(l, Lookup::Valid(_)));
        });
        let miss = time(|| {
            let l = rt.block_on(uncached.load(&probe)).unwrap();
            assert!(matches!(l, Lookup::Valid(_)));
        });
        println!("| {n} | {hit:.0} ns | {miss:.0} ns | {per} |");
    }
}

fn limiter(rt: &tokio::runtime::Runtime, max: usize) {
    println!("\n### Limiter state under many distinct client addresses\n");
    println!("| distinct addresses (within a minute) | check_rate | memory per address |");
    println!("| ---: | ---: | ---: |");
    let cfg = portcullis::config::Config::from_str(
        "[[site]]\nhost = \"a.test\"\nupstream = \"127.0.0.1:1\"\n",
        std::path::Path::new("/tmp"),
    )
    .unwrap_or_else(|e| panic!("{:?}", e.problems));
    for n in sizes(max) {
        let _guard = rt.enter();
        let d = portcullis::defense::Defense::new(
            Arc::new(MemoryStore::new()),
            Arc::new(SystemClock),
            &cfg.defense,
        );
        for i in 0..n as u32 {
            let _ = d.check_rate(&cfg.defense, IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
        }
        let mut k = 0u32;
        let t = time(|| {
            k = k.wrapping_add(1);
            let _ = d.check_rate(
                &cfg.defense,
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + k % n as u32)),
            );
        });
        println!(
            "| {n} | {t:.0} ns | {} |",
            memory_per(&format!("limiter {n}"))
        );
    }
}

/// Resident memory per item of `what` ("sessions N" or "limiter N"), measured in a
/// fresh process (so no memory freed earlier is reused); only meaningful from
/// about 100 000 items up (page-sized steps).
fn memory_per(what: &str) -> String {
    let n: usize = what.split(' ').nth(1).unwrap().parse().unwrap();
    if n < 100_000 {
        return "—".into();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["measure", what])
        .output()
        .unwrap();
    let bytes: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    format!("{:.0} B", bytes / n as f64)
}

/// The child side of [`memory_per`]: prints the bytes of resident memory added.
fn measure(what: &str) {
    let mut parts = what.split(' ');
    let kind = parts.next().unwrap();
    let n: usize = parts.next().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let before = rss();
    match kind {
        "sessions" => {
            let store = Arc::new(MemoryStore::with_max_entries(4 * n + 100));
            let s = Sessions::new(
                store.clone(),
                Arc::new(SystemClock),
                Duration::from_secs(1800),
                Duration::from_secs(43200),
            );
            rt.block_on(async {
                for i in 0..n {
                    // Dropped at once: only what the store keeps counts.
                    let _ = s
                        .create(&format!("user{}", i / 3), 1, "203.0.113.7", 0)
                        .await
                        .unwrap();
                }
            });
            println!("{}", rss().saturating_sub(before));
            std::hint::black_box(&store);
        }
        _ => {
            let cfg = portcullis::config::Config::from_str(
                "[[site]]\nhost = \"a.test\"\nupstream = \"127.0.0.1:1\"\n",
                std::path::Path::new("/tmp"),
            )
            .unwrap_or_else(|e| panic!("{:?}", e.problems));
            let before = rss();
            let d = portcullis::defense::Defense::new(
                Arc::new(MemoryStore::new()),
                Arc::new(SystemClock),
                &cfg.defense,
            );
            for i in 0..n as u32 {
                let _ = d.check_rate(&cfg.defense, IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
            }
            println!("{}", rss().saturating_sub(before));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("measure") {
        measure(args.get(2).map(String::as_str).unwrap_or(""));
        return;
    }
    let max = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rules(max);
    sessions(&rt, max);
    limiter(&rt, max);
}
