//! One integration-test binary: the real gateway on loopback, a real upstream,
//! a real redis-server. Scenarios in `scenarios` run against both stores.

// Test code: helpers outside #[test] fns assert by panicking too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
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
