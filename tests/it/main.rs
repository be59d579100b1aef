//! One integration-test binary: the real gateway on loopback, a real upstream,
//! a real redis-server. Scenarios in `scenarios` run against both stores.

mod harness;
mod operations;
mod scenarios;
