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

/// docs/portcullis.service: a unit systemd accepts, hardened (exposure "OK" or better).
#[test]
fn the_systemd_unit_is_valid_and_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/portcullis.service"
    ))
    .unwrap()
    .replace("/usr/local/bin/portcullis", BIN);
    let path = dir.path().join("portcullis.service");
    std::fs::write(&path, unit).unwrap();
    let verify = std::process::Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("systemd-analyze is installed (scripts/test.sh installs systemd)");
    let complaints = String::from_utf8_lossy(&verify.stderr).to_string();
    assert!(
        verify.status.success() && !complaints.contains("portcullis.service:"),
        "{complaints}"
    );
    let security = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout).to_string();
    let level: f64 = text
        .split("Overall exposure level for portcullis.service: ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(level <= 2.0, "exposure {level}: {text}");
}
