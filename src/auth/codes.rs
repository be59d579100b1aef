//! Codes people type: one-time codes sent by email, SMS or voice (digits), and
//! backup codes (shown once at enrolment; stored only as keyed hashes, see
//! [`crate::auth::sealed::Sealer::code_hash`]).

use rand::Rng;

/// Backup codes avoid characters that look alike (0/o, 1/l/i).
const BACKUP_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
pub const BACKUP_CODES: usize = 10;

/// `len` random digits from the OS CSPRNG.
pub fn numeric(len: u32) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// A new set of backup codes, formatted `xxxxx-xxxxx` (about 49 bits each).
pub fn backup_set() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..BACKUP_CODES)
        .map(|_| {
            let s: String = (0..10)
                .map(|_| char::from(BACKUP_ALPHABET[rng.gen_range(0..BACKUP_ALPHABET.len())]))
                .collect();
            format!("{}-{}", &s[..5], &s[5..])
        })
        .collect()
}

/// What is compared: lower case, without spaces and dashes.
pub fn normalize_backup(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Digits only (people paste codes with spaces).
pub fn normalize_numeric(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_codes_are_digits_and_vary() {
        let a = numeric(8);
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        let distinct: std::collections::HashSet<String> = (0..50).map(|_| numeric(6)).collect();
        assert!(distinct.len() > 45);
    }

    #[test]
    fn backup_codes_are_distinct_and_normalize() {
        let set = backup_set();
        assert_eq!(set.len(), 10);
        let uniq: std::collections::HashSet<&String> = set.iter().collect();
        assert_eq!(uniq.len(), 10);
        assert!(set.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
        assert_eq!(normalize_backup(" ABCDE-fghjk "), "abcdefghjk");
        assert_eq!(normalize_numeric("123 456"), "123456");
    }
}
