//! Authenticator apps: RFC 6238 TOTP (totp-rs). An [`Enrolment`] keeps the
//! parameters it was made with, so changing `[otp]` later doesn't break apps
//! already set up. Checking allows one step of clock drift either way; that a
//! step is used only once per account is enforced by the caller in the store.

use qrcodegen::{QrCode, QrCodeEcc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use totp_rs::{Secret, TOTP};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::config::{OtpConfig, TotpAlgorithm};

/// An authenticator app's shared secret and parameters; `Debug` hides the secret.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Enrolment {
    /// Base32, no padding (what people type into an app).
    pub secret: String,
    #[zeroize(skip)]
    pub algorithm: TotpAlgorithm,
    #[zeroize(skip)]
    pub digits: u32,
    #[zeroize(skip)]
    pub period: u64,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl Enrolment {
    /// A new 160-bit secret with the configured parameters.
    pub fn generate(cfg: &OtpConfig) -> Enrolment {
        let mut bytes = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret = encode_secret(&bytes);
        bytes.zeroize();
        Enrolment {
            secret,
            algorithm: cfg.totp_algorithm,
            digits: cfg.totp_digits,
            period: cfg.totp_period,
        }
    }

    fn totp(&self, issuer: &str, account: &str) -> Option<TOTP> {
        let secret = Secret::Encoded(self.secret.clone()).to_bytes().ok()?;
        if self.period == 0 || !(6..=8).contains(&self.digits) {
            return None;
        }
        Some(TOTP::new_unchecked(
            self.algorithm.into(),
            self.digits as usize,
            1,
            self.period,
            secret,
            Some(issuer.to_string()),
            account.to_string(),
        ))
    }

    /// The time step `unix_time` falls in.
    pub fn step_at(&self, unix_time: u64) -> u64 {
        unix_time / self.period.max(1)
    }

    /// The code an app shows during `step`.
    pub fn code_at_step(&self, step: u64) -> Option<String> {
        Some(
            self.totp("", "")?
                .generate(step.saturating_mul(self.period)),
        )
    }

    /// The step (now, one before, or one after) whose code this is.
    pub fn matching_step(&self, code: &str, now: u64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != self.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let t = self.totp("", "")?;
        let current = self.step_at(now);
        let mut found = None;
        // Every candidate is computed and compared, in constant time, whatever matches.
        for step in [current.saturating_sub(1), current, current + 1] {
            let want = t.generate(step.saturating_mul(self.period));
            if bool::from(want.as_bytes().ct_eq(code.as_bytes())) {
                found = found.or(Some(step));
            }
        }
        found
    }

    /// The `otpauth://` URI apps read from the QR code.
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        self.totp(issuer, account)
            .map(|t| t.get_url())
            .unwrap_or_default()
    }
}

/// A secret as people type it: base32 (RFC 4648), no padding.
fn encode_secret(bytes: &[u8]) -> String {
    // `to_encoded` makes it `Secret::Encoded`, whose `Display` is the base32 text.
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

/// A QR code as a standalone SVG document (no scripts, no external references).
pub fn qr_svg(text: &str) -> Option<String> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let border = 4;
    let size = qr.size() + border * 2;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrol(secret: &[u8], alg: TotpAlgorithm) -> Enrolment {
        Enrolment {
            secret: encode_secret(secret),
            algorithm: alg,
            digits: 8,
            period: 30,
        }
    }

    /// RFC 6238, Appendix B: every time and algorithm of the table.
    #[test]
    fn rfc6238_test_vectors() {
        let sha1 = enrol(b"12345678901234567890", TotpAlgorithm::Sha1);
        let sha256 = enrol(b"12345678901234567890123456789012", TotpAlgorithm::Sha256);
        let sha512 = enrol(
            b"1234567890123456789012345678901234567890123456789012345678901234",
            TotpAlgorithm::Sha512,
        );
        let table: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in table {
            for (e, want) in [(&sha1, c1), (&sha256, c256), (&sha512, c512)] {
                assert_eq!(
                    e.code_at_step(e.step_at(t)).unwrap(),
                    want,
                    "t={t} {:?}",
                    e.algorithm
                );
                assert_eq!(e.matching_step(want, t), Some(e.step_at(t)));
            }
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let e = enrol(b"12345678901234567890", TotpAlgorithm::Sha1);
        let now = 1_700_000_015;
        let s = e.step_at(now);
        for (step, ok) in [
            (s - 2, false),
            (s - 1, true),
            (s, true),
            (s + 1, true),
            (s + 2, false),
        ] {
            let code = e.code_at_step(step).unwrap();
            assert_eq!(
                e.matching_step(&code, now).is_some(),
                ok,
                "step offset {}",
                step as i64 - s as i64
            );
        }
        assert_eq!(e.matching_step("1234567", now), None);
        assert_eq!(e.matching_step("abcdefgh", now), None);
        let spaced = e.code_at_step(s).unwrap();
        let spaced = format!("{} {}", &spaced[..4], &spaced[4..]);
        assert_eq!(e.matching_step(&spaced, now), Some(s));
    }

    #[test]
    fn uri_and_qr() {
        let cfg = crate::config::Config::from_str(
            "[[site]]\nhost = \"a.example.com\"\nupstream = \"127.0.0.1:1\"\n",
            std::path::Path::new("."),
        )
        .unwrap();
        let e = Enrolment::generate(&cfg.otp);
        assert_eq!(e.secret.len(), 32);
        let uri = e.uri("Acme Corp", "alice");
        assert!(
            uri.starts_with("otpauth://totp/Acme%20Corp:alice?secret="),
            "{uri}"
        );
        assert!(uri.contains(&e.secret) && uri.contains("issuer=Acme%20Corp"));
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"));
        assert!(!format!("{e:?}").contains(&e.secret));
    }
}
