//! Prometheus metrics served on `server.admin_listen` at `/metrics`.

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by access decision (allow, login, second_factor, deny, unavailable, portal).
    pub requests: IntCounterVec,
    /// Sign-in attempts by result (success, failure, busy).
    pub signins: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

// The definitions are constants; `new` can fail only if they were malformed,
// which the unit test below would catch.
#[allow(clippy::expect_used)]
fn counter(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = counter(
            &registry,
            "portcullis_requests_total",
            "Requests by access decision",
            "outcome",
        );
        let signins = counter(
            &registry,
            "portcullis_signins_total",
            "Sign-in attempts by result",
            "result",
        );
        Metrics {
            registry,
            requests,
            signins,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_counters() {
        let m = super::Metrics::new();
        m.signins.with_label_values(&["success"]).inc();
        assert!(m
            .render()
            .contains("portcullis_signins_total{result=\"success\"} 1"));
    }
}
