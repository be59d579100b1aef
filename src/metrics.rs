//! Prometheus metrics served on `server.admin_listen` at `/metrics`.

use prometheus::{Encoder, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

/// Request outcomes, resolved once so the hot path doesn't hash label values.
#[derive(Clone)]
pub struct Outcomes {
    pub allow: IntCounter,
    pub login: IntCounter,
    pub second_factor: IntCounter,
    pub deny: IntCounter,
    pub unavailable: IntCounter,
    pub portal: IntCounter,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by access decision (allow, login, second_factor, deny, unavailable, portal).
    pub requests: IntCounterVec,
    /// Sign-in attempts by result (success, failure, busy).
    pub signins: IntCounterVec,
    pub outcome: Outcomes,
    /// CAPTCHAs by result (shown, solved, failed).
    pub captcha: IntCounterVec,
    /// Accounts (or known devices) locked.
    pub locks: IntCounter,
    /// Sign-in attempts refused with 429.
    pub rate_limited: IntCounter,
    /// Second-factor attempts by method and result (ok, failed).
    pub second_factor: IntCounterVec,
    /// One-time codes sent, by channel.
    pub codes_sent: IntCounterVec,
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

#[allow(clippy::expect_used)]
fn counter2(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
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
        let captcha = counter(
            &registry,
            "portcullis_captcha_total",
            "CAPTCHAs by result",
            "result",
        );
        let locks = counter(
            &registry,
            "portcullis_locks_total",
            "Accounts or devices locked",
            "kind",
        )
        .with_label_values(&["account"]);
        let rate_limited = counter(
            &registry,
            "portcullis_rate_limited_total",
            "Sign-in attempts refused with 429",
            "limit",
        )
        .with_label_values(&["ip_per_minute"]);
        let second_factor = counter2(
            &registry,
            "portcullis_second_factor_total",
            "Second-factor attempts by method and result",
            &["method", "result"],
        );
        let codes_sent = counter(
            &registry,
            "portcullis_codes_sent_total",
            "One-time codes sent, by channel",
            "channel",
        );
        let o = |l: &str| requests.with_label_values(&[l]);
        let outcome = Outcomes {
            allow: o("allow"),
            login: o("login"),
            second_factor: o("second_factor"),
            deny: o("deny"),
            unavailable: o("unavailable"),
            portal: o("portal"),
        };
        Metrics {
            registry,
            requests,
            signins,
            outcome,
            captcha,
            locks,
            rate_limited,
            second_factor,
            codes_sent,
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
