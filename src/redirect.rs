//! Validation of redirect targets (`rd`): the only way the gateway ever sends a
//! browser somewhere the request didn't name itself.
//!
//! Accepted: a relative path on the same host, or an absolute https URL (http
//! only when cookies are not `Secure`) whose host is a configured site or lies
//! under `session.domain`. Everything else — protocol-relative `//x`, `/\x`,
//! userinfo tricks, other schemes, encoded separators, whitespace and control
//! characters — is refused and the caller falls back to `/`.

/// Whether `host` is `domain` or a name under it (`a.example.com` under
/// `example.com`, not `badexample.com`): `session.domain` for cookies and redirects.
pub fn within_domain(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// What counts as "ours" for absolute redirect targets.
#[derive(Debug, Clone, Default)]
pub struct RedirectPolicy {
    pub site_hosts: Vec<String>,
    pub domain: Option<String>,
    pub allow_http: bool,
}

impl RedirectPolicy {
    fn host_ok(&self, host: &str) -> bool {
        self.site_hosts.iter().any(|h| h == host)
            || self
                .domain
                .as_deref()
                .is_some_and(|d| within_domain(host, d))
    }

    /// Returns the target to send the browser to, or `None` when it must not be used.
    pub fn validate(&self, rd: &str) -> Option<String> {
        if rd.is_empty() || rd.len() > 2048 {
            return None;
        }
        // Characters no honest target has, in any of its decodings.
        let mut probe = rd.to_string();
        if rd
            .bytes()
            .any(|b| b <= 0x20 || b == 0x7f || b == b'\\' || b >= 0x80)
        {
            return None;
        }
        // The target and up to three decodings of it are looked at; one that still
        // decodes further after that is refused (no honest target is encoded four
        // times over, and an application behind could decode once more: attack pass).
        let mut settled = false;
        for _ in 0..4 {
            // Decoded forms may hold spaces (`%20`) but nothing a browser would strip or fold.
            if probe.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\') {
                return None;
            }
            let lower = probe.to_ascii_lowercase();
            if lower.contains("%2f")
                || lower.contains("%5c")
                || lower.contains("%09")
                || lower.contains("%0a")
                || lower.contains("%0d")
                || lower.contains("%00")
            {
                return None;
            }
            let next = percent_encoding::percent_decode_str(&probe)
                .decode_utf8_lossy()
                .into_owned();
            if next == probe {
                settled = true;
                break;
            }
            probe = next;
        }
        if !settled {
            return None;
        }
        if probe.contains("//") && !probe.to_ascii_lowercase().starts_with("http") {
            // A relative path whose decoding has `//` is read as protocol-relative somewhere.
            if rd.starts_with('/') {
                return None;
            }
        }
        if rd.starts_with('/') {
            return self.relative(rd);
        }
        self.absolute(rd)
    }

    fn relative(&self, rd: &str) -> Option<String> {
        let b = rd.as_bytes();
        if b.get(1).is_some_and(|&c| c == b'/' || c == b'\\') {
            return None;
        }
        // Dot segments that climb or hide a second slash are refused outright.
        let path = rd.split(['?', '#']).next().unwrap_or("");
        if path
            .split('/')
            .any(|s| s == ".." || s == "." || s.starts_with(".;") || s.starts_with("..;"))
        {
            return None;
        }
        if rd.contains("@") && path.contains('@') && path.contains(':') {
            return None;
        }
        Some(rd.to_string())
    }

    fn absolute(&self, rd: &str) -> Option<String> {
        let lower = rd.to_ascii_lowercase();
        let rest = if let Some(r) = lower.strip_prefix("https://") {
            r
        } else if self.allow_http {
            lower.strip_prefix("http://")?
        } else {
            return None;
        };
        let url = url::Url::parse(rd).ok()?;
        if !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let url::Host::Domain(host) = url.host()? else {
            return None;
        };
        // The host the URL parser found must be exactly what follows the scheme.
        let after = rest.strip_prefix(host)?;
        if !(after.is_empty() || after.starts_with([':', '/', '?', '#'])) {
            return None;
        }
        if !self.host_ok(host) {
            return None;
        }
        Some(url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_domain_is_the_domain_or_below_it() {
        assert!(within_domain("example.com", "example.com"));
        assert!(within_domain("a.example.com", "example.com"));
        assert!(within_domain("a.b.example.com", "example.com"));
        assert!(!within_domain("badexample.com", "example.com"));
        assert!(!within_domain("example.com.evil", "example.com"));
        assert!(!within_domain("com", "example.com"));
    }

    fn policy() -> RedirectPolicy {
        RedirectPolicy {
            site_hosts: vec!["www.whitelisteddomain.tld".into(), "foo.bar".into()],
            domain: None,
            allow_http: false,
        }
    }

    #[test]
    fn accepts_honest_targets() {
        let p = RedirectPolicy {
            domain: Some("example.com".into()),
            ..policy()
        };
        for ok in [
            "/",
            "/app/page?x=1&y=2#frag",
            "/a%20b",
            "/search?q=100%25",
            "https://foo.bar/x",
            "https://www.whitelisteddomain.tld:8443/path?q=1",
            "https://app.example.com/",
            "https://example.com",
        ] {
            assert!(p.validate(ok).is_some(), "refused {ok}");
        }
    }

    #[test]
    fn refuses_table() {
        let p = RedirectPolicy {
            domain: Some("example.com".into()),
            ..policy()
        };
        for bad in [
            "",
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "http://foo.bar/",
            "https://evil.com",
            "https://foo.bar.evil.com/",
            "https://evilexample.com/",
            "https://foo.bar@evil.com/",
            "https://evil.com@foo.bar/",
            "javascript:alert(1)",
            "/%2f%2fevil.com",
            "/%252f%252fevil.com",
            // Encoded three and four times over (attack pass: the third decoding
            // wasn't looked at).
            "/%2525252f%2525252fevil.com",
            "/%252525252f%252525252fevil.com",
            "/%2525252525x",
            "https:/foo.bar",
            "https:foo.bar",
            " /x",
            "/x\ny",
            "https://127.0.0.1/",
            "data:text/html,hi",
        ] {
            assert!(p.validate(bad).is_none(), "accepted {bad:?}");
        }
        let http = RedirectPolicy {
            allow_http: true,
            ..policy()
        };
        assert!(http.validate("http://foo.bar/").is_some());
    }

    /// Every payload of the shared open-redirect corpus is refused.
    #[test]
    fn refuses_the_whole_open_redirect_corpus() {
        // The shared corpus beside the repository; the copy in tests/data when the
        // repository is checked out alone (CI). Where both exist they must agree.
        let shared = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/testdata/openredirects.txt"
        );
        let copy = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/openredirects.txt");
        let text = std::fs::read_to_string(copy).expect("tests/data/openredirects.txt");
        if let Ok(upstream) = std::fs::read_to_string(shared) {
            assert_eq!(
                upstream, text,
                "tests/data copy differs from shared/testdata"
            );
        }
        let p = policy();
        let mut accepted = Vec::new();
        let mut n = 0;
        for line in text.lines().filter(|l| !l.is_empty()) {
            n += 1;
            let plus = line.replace('+', " ");
            let decoded = percent_encoding::percent_decode_str(&plus).decode_utf8_lossy();
            if let Some(t) = p.validate(&decoded) {
                accepted.push(format!("{line} -> {t}"));
            }
        }
        assert!(n >= 558, "corpus has only {n} payloads");
        assert!(
            accepted.is_empty(),
            "accepted {} payloads:\n{}",
            accepted.len(),
            accepted.join("\n")
        );
    }
}
