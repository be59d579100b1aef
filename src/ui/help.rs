//! The words of help, wherever people need them: the support contact
//! (`[ui] support_contact`), national phone numbers under `[ui] default_region`,
//! the Caps Lock warning script (allowed by its CSP hash; every page works
//! without it), and what each error page tells the person to do.
//!
//! It owns the words, not the flows: the sign-in, second step and reset handlers
//! only pass what they know (the account's methods, the wait) to their templates.
//! Pure (config validation uses it too); the `/help` page itself is `portal::help`.

use std::sync::OnceLock;

use base64::Engine;
use sha2::{Digest, Sha256};

/// Warns while Caps Lock is on in a password field that has a `#ID-caps` warning
/// next to it. Progressive enhancement: without it the pages work the same.
pub const CAPS_SCRIPT: &str =
    "document.querySelectorAll('input[type=password]').forEach(function(i){\
var w=document.getElementById(i.id+'-caps');if(!w)return;\
function f(e){if(e.getModifierState)w.hidden=!e.getModifierState('CapsLock');}\
i.addEventListener('keydown',f);i.addEventListener('keyup',f);\
i.addEventListener('blur',function(){w.hidden=true;});});";

/// The CSP source allowing [`CAPS_SCRIPT`] inline, and nothing else.
pub fn script_src() -> &'static str {
    static SRC: OnceLock<String> = OnceLock::new();
    SRC.get_or_init(|| {
        let digest = Sha256::digest(CAPS_SCRIPT.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    })
}

/// `[ui] support_contact`: where people ask for help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Email(String),
    Url(String),
}

impl Contact {
    /// An email address or an http(s) URL; anything else is `None`.
    pub fn parse(s: &str) -> Option<Contact> {
        let s = s.trim().trim_start_matches("mailto:");
        if s.starts_with("https://") || s.starts_with("http://") {
            let u = url::Url::parse(s).ok()?;
            return u.host_str().is_some().then(|| Contact::Url(u.to_string()));
        }
        crate::users::normalize_email(s)
            .ok()
            .map(|_| Contact::Email(s.to_string()))
    }

    pub fn href(&self) -> String {
        match self {
            Contact::Email(e) => format!("mailto:{e}"),
            Contact::Url(u) => u.clone(),
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Contact::Email(e) | Contact::Url(e) => e,
        }
    }
}

/// The country calling code of a two-letter region (`"US"` -> 1), if it has one.
pub fn calling_region(region: &str) -> Option<u16> {
    let r = region.trim().to_ascii_uppercase();
    r.parse::<phonenumber::country::Id>().ok()?;
    phonenumber::metadata::DATABASE
        .by_id(r.as_str())
        .map(|m| m.country_code())
}

/// A mobile number of `region` as an example, in international form
/// (`+1 201-555-0123`), from the numbering plan's own example.
pub fn phone_example(region: Option<&str>) -> String {
    let number = region
        .and_then(|r| {
            let m = phonenumber::metadata::DATABASE.by_id(r)?;
            let ex = m.descriptors().mobile()?.example()?;
            let id = r.parse::<phonenumber::country::Id>().ok()?;
            phonenumber::parse(Some(id), ex).ok()
        })
        .map(|n| {
            n.format()
                .mode(phonenumber::Mode::International)
                .to_string()
        });
    number.unwrap_or_else(|| "+44 7700 900123".to_string())
}

/// `typed` read as a national phone number of `region` (`"(201) 555-0123"` under
/// `US`), in E.164; `None` when it isn't one (a name, an email, a number with a
/// `+`, or not a valid number there).
pub fn national_phone(typed: &str, region: &str) -> Option<String> {
    let t = typed.trim();
    let digits = t.chars().filter(char::is_ascii_digit).count();
    if t.starts_with('+')
        || digits < 5
        || !t.chars().all(|c| c.is_ascii_digit() || " -.()".contains(c))
    {
        return None;
    }
    let id = region.parse::<phonenumber::country::Id>().ok()?;
    let n = phonenumber::parse(Some(id), t).ok()?;
    if !phonenumber::is_valid(&n) {
        return None;
    }
    crate::users::normalize_phone(&n.format().mode(phonenumber::Mode::E164).to_string()).ok()
}

/// What a person can do after an error page with `status`: the next step and when
/// to try again. The page adds who to contact.
pub fn next_steps(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Go back, reload the page and try again. If you followed a link, ask for a new one.",
        401 | 403 => {
            "If you think you should have access, sign in with the account that has it, \
             or ask the person who manages your access."
        }
        404 => {
            "Check the address for typing mistakes, or start again from the home page. \
             A link from an old email may no longer work."
        }
        408 => "Try again. If your connection is slow, wait until it is better.",
        429 => {
            "Wait the time shown, then try once more. Guessing doesn't help: if you don't \
             remember your password, reset it instead."
        }
        500 => {
            "This is a problem on our side, not something you did. Try again in a few minutes; \
             if it keeps happening, tell us."
        }
        502 | 504 => {
            "You are still signed in; nothing was lost. This is usually over within a minute \
             or two: reload the page then. If it lasts longer, tell us."
        }
        503 => {
            "Wait a few seconds, then reload the page. You don't need to sign in again. \
             If it lasts longer than a few minutes, tell us."
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_emails_or_web_addresses() {
        assert_eq!(
            Contact::parse("help@example.com").map(|c| c.href()),
            Some("mailto:help@example.com".into())
        );
        assert_eq!(
            Contact::parse("mailto:help@example.com"),
            Some(Contact::Email("help@example.com".into()))
        );
        assert_eq!(
            Contact::parse("https://help.example.com/signin").map(|c| c.href()),
            Some("https://help.example.com/signin".into())
        );
        for bad in [
            "javascript:alert(1)",
            "call Bob",
            "https://",
            "ftp://x.example",
        ] {
            assert_eq!(Contact::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn national_numbers_under_a_default_region() {
        assert_eq!(calling_region("US"), Some(1));
        assert_eq!(calling_region("de"), Some(49));
        assert_eq!(calling_region("XX"), None);
        assert_eq!(
            national_phone("(201) 555-0123", "US").as_deref(),
            Some("+12015550123")
        );
        assert_eq!(
            national_phone("030 901820", "DE").as_deref(),
            Some("+4930901820")
        );
        assert_eq!(national_phone("+12015550123", "US"), None, "has its code");
        assert_eq!(national_phone("alice", "US"), None);
        assert_eq!(national_phone("1234", "US"), None);
        assert_eq!(national_phone("555", "US"), None);
        assert!(phone_example(Some("GB")).starts_with("+44 "));
        assert!(phone_example(None).starts_with('+'));
    }

    #[test]
    fn the_script_hash_matches_the_script() {
        let src = script_src();
        assert!(src.starts_with("'sha256-") && src.ends_with('\''));
        assert_eq!(src.len(), "'sha256-'".len() + 44);
    }

    #[test]
    fn every_error_status_says_what_to_do() {
        for s in [400, 401, 403, 404, 408, 429, 500, 502, 503, 504] {
            assert!(next_steps(s).is_some(), "{s}");
        }
        assert_eq!(next_steps(200), None);
    }
}
