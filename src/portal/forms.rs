//! The portal's forms as typed structs, with the field names of the contract
//! (`ARCHITECTURE.md` §2). Every field is optional on the wire (an absent field
//! reads as empty, as browsers omit unchecked boxes); a repeated field keeps its
//! last value, as the pages always have.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::error::PortalError;

/// Decodes an `application/x-www-form-urlencoded` body into `T`; a body that
/// isn't one is [`PortalError::BadForm`].
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, PortalError> {
    let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map_err(|_| PortalError::BadForm)?;
    // Last value wins for a repeated field.
    let map: HashMap<String, String> = pairs.into_iter().collect();
    T::deserialize(serde::de::value::MapDeserializer::<
        _,
        serde::de::value::Error,
    >::new(map.into_iter()))
    .map_err(|_| PortalError::BadForm)
}

/// [`parse`], with an unreadable body read as an empty form (whose CSRF check
/// then fails: the pages that always answered so keep doing it).
pub fn parse_or_empty<T: DeserializeOwned + Default>(body: &[u8]) -> T {
    parse(body).unwrap_or_default()
}

/// A field that is there (even empty) as `Some`; with `#[serde(default)]`, an
/// absent one is `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// The CAPTCHA fields, on every form that may show one.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CaptchaFields {
    pub captcha_id: String,
    pub captcha: String,
}

/// `POST /login`
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    pub csrf: String,
    pub rd: String,
    pub identifier: String,
    pub password: String,
    #[serde(flatten)]
    pub captcha: CaptchaFields,
}

/// `POST /2fa` and `POST /2fa/send`
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ChallengeForm {
    pub csrf: String,
    pub rd: String,
    pub method: String,
    pub code: String,
    pub remember: String,
}

/// `POST /2fa/setup`
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SetupForm {
    pub csrf: String,
    pub rd: String,
    /// `confirm` (the default, when the field is absent), `regenerate`, `remove`.
    #[serde(deserialize_with = "present")]
    pub action: Option<String>,
    pub code: String,
    pub password: String,
}

/// `POST /reset`
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    pub csrf: String,
    /// `request` (the default) or `confirm`.
    pub step: String,
    pub identifier: String,
    pub code: String,
    pub password: String,
    pub confirm: String,
    #[serde(flatten)]
    pub captcha: CaptchaFields,
}

/// `POST /password`
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    pub csrf: String,
    pub current: String,
    pub password: String,
    pub confirm: String,
    #[serde(flatten)]
    pub captcha: CaptchaFields,
}

/// `POST /account`
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AccountForm {
    pub csrf: String,
    pub action: String,
    pub handle: String,
    pub password: String,
}

/// `POST /logout`
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CsrfOnly {
    pub csrf: String,
}

/// `POST /unlock`
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct UnlockForm {
    pub csrf: String,
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let f: LoginForm =
            parse(b"identifier=alice&password=pw-s3cret&csrf=tok-s3cret&captcha=cap-s3cret")
                .unwrap();
        let shown = format!("{f:?}");
        assert!(
            shown.contains("alice") && shown.contains("password"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        let f: ResetForm =
            parse(b"step=confirm&code=123456&password=pw-s3cret&confirm=pw-s3cret").unwrap();
        let shown = format!("{f:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("123456"),
            "{shown}"
        );
    }

    #[test]
    fn setup_action_absent_is_confirm_but_empty_is_not() {
        let f: SetupForm = parse(b"code=1").unwrap();
        assert_eq!(f.action, None);
        let f: SetupForm = parse(b"action=&code=1").unwrap();
        assert_eq!(f.action.as_deref(), Some(""));
    }

    #[test]
    fn fields_by_contract_name_absent_empty_last_wins() {
        let f: LoginForm = parse(
            b"identifier=alice&password=a%26b+c&rd=%2Fx&csrf=t&captcha_id=1&captcha=Ab&identifier=bob&extra=1",
        )
        .unwrap();
        assert_eq!(f.identifier, "bob", "last value wins");
        assert_eq!(f.password, "a&b c");
        assert_eq!((f.rd.as_str(), f.csrf.as_str()), ("/x", "t"));
        assert_eq!(
            (f.captcha.captcha_id.as_str(), f.captcha.captcha.as_str()),
            ("1", "Ab")
        );
        let empty: ChallengeForm = parse(b"").unwrap();
        assert_eq!(empty.code, "");
        // Malformed escapes are kept as typed (as the pages always read them).
        let odd: LoginForm = parse(b"identifier=%ZZ").unwrap();
        assert_eq!(odd.identifier, "%ZZ");
        let junk: UnlockForm = parse_or_empty(&[0xff, 0xfe, b'=', b'%']);
        assert_eq!(junk.token, "");
    }
}

debug_hiding!(LoginForm { rd, identifier } hides { csrf, password, captcha });

debug_hiding!(ChallengeForm { rd, method, remember } hides { csrf, code });

debug_hiding!(SetupForm { rd, action } hides { csrf, code, password });

debug_hiding!(ResetForm { step, identifier } hides { csrf, code, password, confirm, captcha });

debug_hiding!(PasswordForm {  } hides { csrf, current, password, confirm, captcha });

debug_hiding!(AccountForm { action, handle } hides { csrf, password });

debug_hiding!(CsrfOnly {  } hides { csrf });

debug_hiding!(UnlockForm {  } hides { csrf, token });
