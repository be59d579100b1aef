//! One integration-test binary: the real gateway on loopback, a real upstream,
//! a real redis-server. Scenarios in `scenarios` run against both stores.

// Test code: helpers outside #[test] fns assert by panicking too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Real gateway processes, Redis and browsers run on real time: bounded waits read it to
// stop, and codes for a gateway process are computed at the real time. In-process
// tests (`harness::inproc`) run the gateway on a `FakeClock` instead.
#![allow(clippy::disallowed_methods)]

mod accounts;
mod browser;
mod cache;
mod caddy;
mod defense;
mod edge;
mod harness;
mod identity;
mod operations;
mod operator;
mod pages;
mod scenarios;
mod second_factor;
mod security;
mod streams;
mod tls;
