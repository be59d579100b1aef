//! The operator's tools: `check-config --explain`.

use crate::harness::*;

#[test]
fn check_config_explains_the_ladder_in_numbers() {
    let g = Gateway::start(
        Backend::Memory,
        Options {
            extra: "[defense]\nlock_after = 10\n".into(),
            ..Default::default()
        },
    );
    let out = g.cli(&["check-config", "--explain"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "at most 30 sign-in attempts a minute",
        "after 3 failures within 15m: a CAPTCHA",
        "at 10 failures within 15m: locked for unknown browsers",
        "15m, 30m, 1h, 2h, 4h, 8h, 16h, 1day",
        "70 passwords against one account in the first day, 49 of them with a CAPTCHA",
        "then about 9 a day",
        "known device",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // Without --explain, just the verdict.
    let out = g.cli(&["check-config"], None);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("passwords against"));
}
