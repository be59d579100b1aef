//! Which new passwords are accepted (NIST SP 800-63B, section 3.1.1.2): long
//! enough, not too long to type (1024 bytes, so at least 64 characters always
//! fit), never truncated, no composition rules ("one digit, one symbol"), and not
//! easy to guess. Guessability is zxcvbn's estimate, with the person's own name,
//! email, phone and the service's name as extra dictionary words, so
//! "alice2024" is refused for Alice.
//!
//! The minimum length depends on what else protects the account: 8 characters
//! with a second factor (an authenticator app or a phone), 15 when the password
//! is the only factor (`[password] min_length`, `min_length_single_factor`).
//!
//! Pure: no I/O; the portal and the CLI turn a [`Refusal`] into words.

use unicode_normalization::UnicodeNormalization;

use super::password::MAX_PASSWORD_BYTES;
use crate::config::PasswordConfig;
use crate::users::User;

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Fewer characters than `min` (code points after NFKC, as 800-63B counts).
    TooShort { min: usize, single_factor: bool },
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    TooLong,
    /// Contains a control character (a tab, a line break, NUL, ...): nobody can
    /// type it reliably on every device, and it breaks files and logs.
    ControlCharacter,
    /// Easy to guess: zxcvbn's warning and suggestions, in English.
    Guessable {
        warning: Option<String>,
        suggestions: Vec<String>,
    },
    /// Contains the person's own name, email or phone, or the service's name.
    Personal,
    /// The confirmation differs.
    Mismatch,
}

impl Refusal {
    /// What to tell the person: why, and what would work.
    pub fn message(&self) -> String {
        match self {
            Refusal::TooShort { min, single_factor } => {
                let why = if *single_factor {
                    " (your password is the only thing protecting this account; with two-step \
                     verification turned on, 8 are enough)"
                } else {
                    ""
                };
                format!(
                    "Choose a password of at least {min} characters{why}. Several unrelated words \
                     make a long password that is easy to remember; spaces are allowed."
                )
            }
            Refusal::TooLong => {
                "That password is too long (1024 bytes at most; any 64 characters fit).".into()
            }
            Refusal::ControlCharacter => "A password can't contain control characters such as \
                 tabs or line breaks. Use letters, digits, spaces and symbols."
                .into(),
            Refusal::Guessable {
                warning,
                suggestions,
            } => {
                let mut s = String::from("This password would be easy to guess");
                match warning {
                    Some(w) => {
                        s.push_str(": ");
                        s.push_str(w.trim_end_matches('.'));
                        s.push('.');
                    }
                    None => s.push('.'),
                }
                for x in suggestions {
                    s.push(' ');
                    s.push_str(x);
                }
                s.push_str(
                    " Try a few unrelated words, or a sentence only you would think of; \
                     you don't need symbols or digits.",
                );
                s
            }
            Refusal::Personal => "This password would be easy to guess: it contains your name, \
                 email address or phone number, or the name of this service. Try a few unrelated \
                 words instead; you don't need symbols or digits."
                .into(),
            Refusal::Mismatch => "The two passwords are not the same.".into(),
        }
    }
}

impl Refusal {
    /// [`Refusal::message`] from the catalogues, in language `lang` (0 = English,
    /// which keeps zxcvbn's own feedback; other languages get the translated reason).
    pub fn message_in(&self, texts: &crate::i18n::Catalogues, lang: usize) -> String {
        use fluent_bundle::FluentValue;
        let t = |k: &str, args: &[(&str, FluentValue<'_>)]| texts.text(lang, k, args);
        match self {
            Refusal::TooShort { min, single_factor } => {
                let mut s = t("policy-too-short", &[("min", FluentValue::from(*min))]);
                if *single_factor {
                    s.push(' ');
                    s.push_str(&t("policy-too-short-why", &[]));
                }
                s.push(' ');
                s.push_str(&t("policy-words-tip", &[]));
                s
            }
            Refusal::Guessable { .. } if lang == 0 => self.message(),
            Refusal::Guessable { .. } => t("policy-guessable", &[]),
            Refusal::TooLong => t("policy-too-long", &[]),
            Refusal::ControlCharacter => t("policy-control", &[]),
            Refusal::Personal => t("policy-personal", &[]),
            Refusal::Mismatch => t("policy-mismatch", &[]),
        }
    }
}

/// Whether `user` has a second factor that isn't the password (NIST counts an
/// authenticator app and a phone; an email inbox is not an authenticator).
pub fn has_second_factor(user: &User) -> bool {
    !user.totp.is_empty() || !user.phone.is_empty()
}

/// The extra dictionary words for `user`: the name, the display name's words, the
/// email's parts, the phone's digits, and the service's names.
pub fn personal_words(user: &User, service: &[&str]) -> Vec<String> {
    let mut words = vec![user.name.clone()];
    words.extend(user.display_name.split_whitespace().map(str::to_string));
    if let Some((local, domain)) = user.email.split_once('@') {
        words.push(local.to_string());
        words.extend(local.split(['.', '_', '-', '+']).map(str::to_string));
        words.extend(domain.split('.').map(str::to_string));
    }
    let digits: String = user.phone.chars().filter(char::is_ascii_digit).collect();
    if !digits.is_empty() {
        words.push(digits.clone());
        // The national part too: people type their number without the country code.
        if digits.len() > 7 {
            words.push(digits[digits.len() - 7..].to_string());
        }
    }
    for s in service {
        words.push(s.to_string());
        words.extend(s.split_whitespace().map(str::to_string));
    }
    words.push("portcullis".into());
    words.retain(|w| w.chars().count() >= 3);
    words.iter_mut().for_each(|w| *w = w.to_lowercase());
    words.sort();
    words.dedup();
    words
}

/// Checks a new password (`again`: the confirmation, when the form has one).
pub fn check(
    cfg: &PasswordConfig,
    password: &str,
    again: Option<&str>,
    second_factor: bool,
    words: &[String],
) -> Result<(), Refusal> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Refusal::TooLong);
    }
    if password.chars().any(char::is_control) {
        return Err(Refusal::ControlCharacter);
    }
    let norm: String = password.nfkc().collect();
    let min = if second_factor {
        cfg.min_length
    } else {
        cfg.min_length_single_factor
    };
    if norm.chars().count() < min {
        return Err(Refusal::TooShort {
            min,
            single_factor: !second_factor,
        });
    }
    // zxcvbn rates "alice liddell 2024" as several words, so whole personal words
    // (4 letters and more, or 7 digits of the phone) are refused outright, as
    // 800-63B asks for context-specific words.
    let folded: String = norm
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    let personal = words.iter().any(|w| {
        let w: String = w.chars().filter(|c| c.is_alphanumeric()).collect();
        let digits = w.chars().all(|c| c.is_ascii_digit());
        w.chars().count() >= if digits { 7 } else { 4 } && folded.contains(&w)
    });
    if personal {
        return Err(Refusal::Personal);
    }
    // zxcvbn looks at the first 100 characters only (its cost grows with length);
    // the password itself is never cut.
    let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(&norm, &inputs);
    if u8::from(estimate.score()) < cfg.min_strength {
        let fb = estimate.feedback();
        return Err(Refusal::Guessable {
            warning: fb.and_then(|f| f.warning()).map(|w| w.to_string()),
            suggestions: fb
                .map(|f| f.suggestions().iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        });
    }
    if again.is_some_and(|a| a != password) {
        return Err(Refusal::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::HashParams;

    fn cfg() -> PasswordConfig {
        PasswordConfig {
            min_length: 8,
            min_length_single_factor: 15,
            min_strength: 3,
            max_concurrent_hashes: 1,
            argon2: HashParams::default(),
        }
    }

    fn alice() -> User {
        User {
            name: "alice".into(),
            display_name: "Alice Liddell".into(),
            email: "alice.liddell@wonderland.example".into(),
            phone: "+14155550123".into(),
            ..User::default()
        }
    }

    fn words() -> Vec<String> {
        personal_words(&alice(), &["Acme Portal"])
    }

    #[test]
    fn control_characters_are_refused_with_their_own_message() {
        let c = cfg();
        let good = "correct horse battery staple";
        assert_eq!(check(&c, good, Some(good), false, &[]), Ok(()));
        for bad in [
            "correct horse\tbattery staple",
            "correct horse battery staple\n",
            "correct horse\u{0}battery staple",
            "correct horse\u{7f}battery staple",
            "correct horse\u{85}battery staple",
            "\r\ncorrect horse battery staple",
        ] {
            let r = check(&c, bad, Some(bad), true, &[]);
            assert_eq!(r, Err(Refusal::ControlCharacter), "{bad:?}");
            assert!(r.unwrap_err().message().contains("control characters"));
        }
        // Spaces and symbols of any script are fine.
        let fine = "ünïcödé wörds «and» symbols ✓ 東京";
        assert_eq!(check(&c, fine, None, true, &[]), Ok(()));
    }

    #[test]
    fn length_depends_on_the_second_factor() {
        let c = cfg();
        // 10 characters, hard to guess: fine with a second factor, too short without.
        assert_eq!(check(&c, "vq7Lr2mXpz", None, true, &words()), Ok(()));
        assert_eq!(
            check(&c, "vq7Lr2mXpz", None, false, &words()),
            Err(Refusal::TooShort {
                min: 15,
                single_factor: true
            })
        );
        assert!(matches!(
            check(&c, "vq7Lr2m", None, true, &words()),
            Err(Refusal::TooShort { min: 8, .. })
        ));
        // Characters, not bytes: 8 accented letters are 16 bytes but still 8 characters.
        let r = check(&c, "éàüöçñøå", None, false, &words());
        assert!(matches!(r, Err(Refusal::TooShort { min: 15, .. })), "{r:?}");
    }

    #[test]
    fn common_and_personal_passwords_are_refused_with_a_reason() {
        let c = cfg();
        for pw in [
            "password1234567",
            "123456789012345",
            "qwertyuiopasdfgh",
            "aliceliddell2024",
            "wonderland12345",
            "AcmePortal2024!!",
            "14155550123abc",
        ] {
            match check(&c, pw, None, true, &words()) {
                Err(Refusal::Guessable { .. } | Refusal::Personal) => {}
                other => panic!("{pw}: {other:?}"),
            }
        }
        let msg = check(&c, "password1234567", None, true, &words())
            .unwrap_err()
            .message();
        assert!(
            msg.contains("easy to guess") && msg.contains("unrelated words"),
            "{msg}"
        );
        let msg = check(&c, "alice in a hat 2024", None, true, &words())
            .unwrap_err()
            .message();
        assert!(msg.contains("contains your name"), "{msg}");
        // The same shapes without the personal words are fine for someone else.
        assert_eq!(
            check(&c, "wonderland walrus teapot", None, true, &[]),
            Ok(())
        );
    }

    #[test]
    fn long_passphrases_pass_no_composition_rules_and_nothing_is_truncated() {
        let c = cfg();
        // All lower case, no digits, no symbols: fine when long and unusual.
        assert_eq!(
            check(
                &c,
                "correct pony staple battery horse",
                None,
                false,
                &words()
            ),
            Ok(())
        );
        // 64 characters and far more (up to 1024 bytes) are accepted.
        let long = "lantern orchard velvet quarry ".repeat(30);
        assert!(long.len() > 64 && long.len() <= 1024);
        assert_eq!(check(&c, &long, None, false, &words()), Ok(()));
        assert_eq!(
            check(&c, &"x".repeat(1025), None, false, &words()),
            Err(Refusal::TooLong)
        );
        // The confirmation is compared whole: a difference after 100 characters counts.
        let other = format!("{}!", &long[..long.len() - 1]);
        assert_eq!(
            check(&c, &long, Some(&other), false, &words()),
            Err(Refusal::Mismatch)
        );
        assert_eq!(check(&c, &long, Some(&long), false, &words()), Ok(()));
    }

    #[test]
    fn refusals_are_told_in_the_persons_language() {
        let texts = crate::i18n::Catalogues::load(None).unwrap();
        let de = texts.negotiate(Some("de"), "");
        let short = Refusal::TooShort {
            min: 15,
            single_factor: true,
        };
        assert!(short
            .message_in(&texts, 0)
            .starts_with("Choose a password of at least 15 characters"));
        let m = short.message_in(&texts, de);
        assert!(m.contains("mindestens 15 Zeichen"), "{m}");
        let weak = check(&cfg(), "password123", None, true, &[]).unwrap_err();
        assert_eq!(weak.message_in(&texts, 0), weak.message());
        assert!(weak.message_in(&texts, de).contains("leicht zu erraten"));
        assert_eq!(
            Refusal::Mismatch.message_in(&texts, de),
            "Die beiden Passwörter sind nicht gleich."
        );
    }

    #[test]
    fn strength_threshold_is_configurable() {
        let mut c = cfg();
        c.min_strength = 0;
        c.min_length_single_factor = 8;
        assert_eq!(check(&c, "password", None, false, &[]), Ok(()));
        c.min_strength = 4;
        assert!(check(&c, "vq7Lr2mXpz", None, true, &[]).is_err());
    }

    #[test]
    fn second_factor_means_an_app_or_a_phone() {
        let mut u = alice();
        assert!(has_second_factor(&u));
        u.phone.clear();
        assert!(!has_second_factor(&u), "email is not a second factor");
        u.totp = "sealed".into();
        assert!(has_second_factor(&u));
    }

    #[test]
    fn personal_words_cover_name_email_phone_and_service() {
        let w = words();
        for x in [
            "alice",
            "liddell",
            "alice.liddell",
            "wonderland",
            "14155550123",
            "5550123",
            "acme portal",
            "portal",
        ] {
            assert!(w.iter().any(|y| y == x), "{x} missing from {w:?}");
        }
    }
}
