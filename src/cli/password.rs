//! New passwords from the command line: read from stdin and checked against the
//! password policy, or generated; and `hash-password`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::anyhow;
use rand::Rng;

use crate::config::Config;
use crate::users::User;

/// `hash-password`: a password on stdin, its argon2id PHC string on stdout.
/// Refuses what no sign-in would take (empty, over [`MAX_PASSWORD_BYTES`] bytes, a
/// control character): its hash could never be matched (attack pass).
///
/// [`MAX_PASSWORD_BYTES`]: crate::auth::password::MAX_PASSWORD_BYTES
pub fn hash_password() -> anyhow::Result<()> {
    let pw = read_password_stdin(|p| {
        if p.is_empty() {
            Err("the password is empty".to_string())
        } else if p.chars().any(char::is_control) {
            Err(
                "the password holds a control character (tab, NUL, ...), which sign-in refuses"
                    .to_string(),
            )
        } else {
            Ok(())
        }
    })?;
    println!("{}", crate::auth::password::hash_now(&pw)?);
    Ok(())
}

fn read_password_stdin(check: impl Fn(&str) -> Result<(), String>) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
    }
    // One line, read no further than a password can be long (a 50 MB stdin isn't
    // read whole).
    let max = crate::auth::password::MAX_PASSWORD_BYTES;
    let mut bytes = Vec::new();
    std::io::Read::take(stdin.lock(), max as u64 + 3).read_until(b'\n', &mut bytes)?;
    let end = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if end.strip_suffix(b"\r").unwrap_or(end).len() > max {
        return Err(anyhow!(
            "the password is longer than {max} bytes, which sign-in refuses"
        ));
    }
    let line = String::from_utf8(bytes).map_err(|_| anyhow!("the password is not UTF-8 text"))?;
    let pw = line.strip_suffix('\n').unwrap_or(&line);
    let pw = pw.strip_suffix('\r').unwrap_or(pw).to_string();
    check(&pw).map_err(|e| anyhow!("{e}"))?;
    Ok(pw)
}

/// The password policy ([`crate::auth::password_policy`]) for `user`'s new password.
pub(super) fn policy_for<'a>(
    cfg: &'a Config,
    user: &User,
) -> impl Fn(&str) -> Result<(), String> + 'a {
    use crate::auth::password_policy as policy;
    let service = [cfg.ui.title.as_str(), cfg.otp.totp_issuer.as_str()];
    let words = policy::personal_words(user, &service);
    let second = policy::has_second_factor(user);
    move |pw: &str| policy::check(&cfg.password, pw, None, second, &words).map_err(|r| r.message())
}

pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

pub(super) fn new_password(
    stdin: bool,
    check: impl Fn(&str) -> Result<(), String>,
) -> anyhow::Result<(String, bool)> {
    if stdin {
        Ok((read_password_stdin(check)?, false))
    } else {
        Ok((generate_password(), true))
    }
}
