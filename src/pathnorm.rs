//! Request-path normalisation: the one place that decides which path a rule sees
//! and the upstream receives.
//!
//! Done once per request: percent-decoding of unreserved characters only
//! (`%41` → `A`, `%2e` → `.`), upper-case hex for the escapes that stay,
//! dot-segment removal and duplicate-slash collapse. Forms that different
//! servers read differently are refused instead of guessed at: an encoded `/`
//! or `\`, a literal `\`, NUL or other control characters, malformed escapes,
//! and dot segments carrying path parameters (`..;`, `.;`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    Malformed,
    EncodedSeparator,
    Backslash,
    Control,
    DotParameter,
    TooLong,
    Overlong,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotAbsolute => "the path must start with '/'",
            PathError::Malformed => "malformed percent-escape",
            PathError::EncodedSeparator => "encoded '/' or '\\' in the path",
            PathError::Backslash => "backslash in the path",
            PathError::Control => "control character in the path",
            PathError::DotParameter => "dot segment with a path parameter (e.g. '..;')",
            PathError::TooLong => "path too long",
            PathError::Overlong => "overlong UTF-8 in the path (a second spelling of '.', '/' or another ASCII character)",
        })
    }
}

/// Longest path accepted, in bytes.
pub const MAX_PATH: usize = 8192;

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// A path normalising leaves as it is (most requests): only unreserved bytes and
/// `/`, no empty segment but a trailing one, no `.` or `..` segment. Checked
/// first, so such a path is copied once instead of rebuilt.
fn is_plain(raw: &[u8]) -> bool {
    let Some(rest) = raw.strip_prefix(b"/") else {
        return false;
    };
    let mut segments = rest.split(|&b| b == b'/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if (seg.is_empty() && !last) || seg == b"." || seg == b".." {
            return false;
        }
        if !seg.iter().all(|&b| is_unreserved(b)) {
            return false;
        }
    }
    true
}

/// Normalises the path part of a request target (no query string).
pub fn normalize(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if bytes.len() > MAX_PATH {
        return Err(PathError::TooLong);
    }
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if is_plain(bytes) {
        return Ok(raw.to_string());
    }
    rebuild(raw)
}

/// Does `lead` then `next` start an overlong UTF-8 sequence (`C0 AE` for `.`,
/// `E0 80 AF` for `/`)? Strict decoders refuse them; lenient and legacy ones read
/// the ASCII character, which a rule on the path would never see. (A Latin-1 `À`
/// or `à` followed by another Latin-1 letter doesn't match: the second byte would
/// have to be a C1 control or one of `¡`..`¿`.)
fn overlong(lead: u8, next: u8) -> bool {
    match lead {
        0xC0 | 0xC1 => (0x80..=0xBF).contains(&next),
        0xE0 => (0x80..=0x9F).contains(&next),
        0xF0 => (0x80..=0x8F).contains(&next),
        _ => false,
    }
}

/// Overlong UTF-8 sequences read as the character they spell, as lenient decoders
/// do (`C0 AE` is `.`): [`normalize`] refuses them in a request, but one escaped
/// twice (`%25C0%25AE`) only appears once decoded, and must then be judged as what
/// a server that decodes twice reads.
fn ascii_from_overlong(bytes: Vec<u8>) -> Vec<u8> {
    if !bytes.windows(2).any(|w| overlong(w[0], w[1])) {
        return bytes;
    }
    let cont = |b: Option<&u8>| b.copied().filter(|b| (0x80..=0xBF).contains(b));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (len, lead_bits) = match b {
            0xC0 | 0xC1 => (2, b & 0x1F),
            0xE0 => (3, b & 0x0F),
            0xF0 => (4, b & 0x07),
            _ => (1, 0),
        };
        let tail: Option<Vec<u8>> = (1..len).map(|k| cont(bytes.get(i + k))).collect();
        match tail {
            Some(t) if len > 1 && overlong(b, t[0]) => {
                let v = t
                    .iter()
                    .fold(u32::from(lead_bits), |v, c| (v << 6) | u32::from(c & 0x3F));
                match u8::try_from(v) {
                    Ok(ascii) if ascii < 0x80 => out.push(ascii),
                    _ => out.extend_from_slice(&bytes[i..i + len]),
                }
                i += len;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// [`normalize`] the long way: decode, then rebuild segment by segment.
fn rebuild(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    // Pass 1: decode unreserved escapes, refuse ambiguous ones.
    let mut decoded = String::with_capacity(bytes.len());
    let mut i = 0;
    // The last byte above 0x7f (escaped or raw), if the one before this was one.
    let mut high: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        let this = match b {
            b'%' => bytes
                .get(i + 1)
                .copied()
                .and_then(hex)
                .zip(bytes.get(i + 2).copied().and_then(hex))
                .map(|(h, l)| h * 16 + l),
            _ => Some(b),
        };
        if let (Some(lead), Some(next)) = (high, this) {
            if overlong(lead, next) {
                return Err(PathError::Overlong);
            }
        }
        high = this.filter(|v| *v >= 0x80);
        match b {
            b'%' => {
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::Malformed);
                };
                let v = h * 16 + l;
                match v {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    0..=0x1f | 0x7f => return Err(PathError::Control),
                    _ if is_unreserved(v) => decoded.push(v as char),
                    _ => {
                        decoded.push('%');
                        decoded.push(char::from(b"0123456789ABCDEF"[usize::from(h)]));
                        decoded.push(char::from(b"0123456789ABCDEF"[usize::from(l)]));
                    }
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            0..=0x20 | 0x7f => return Err(PathError::Control),
            0x80..=0xff => {
                // Raw non-ASCII bytes: keep them, percent-encoded, so the path stays ASCII.
                decoded.push('%');
                decoded.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
                decoded.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
                i += 1;
            }
            _ => {
                decoded.push(b as char);
                i += 1;
            }
        }
    }
    // Pass 2: segments.
    let trailing_slash =
        decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s if s.starts_with(".;") || s.starts_with("..;") => {
                return Err(PathError::DotParameter)
            }
            s => out.push(s),
        }
    }
    let mut path = String::with_capacity(decoded.len());
    for seg in &out {
        path.push('/');
        path.push_str(seg);
    }
    if path.is_empty() || (trailing_slash && !path.ends_with('/')) {
        path.push('/');
    }
    Ok(path)
}

/// `path` (normalised) as an application that decodes and folds it further might
/// route it: every percent-escape decoded once (`%3B` is a `;`, `%252e` a `%2e`),
/// Unicode compatibility forms made plain (NFKC: ligatures `ﬆ` → `st`, fullwidth
/// `ａ／．` → `a/.`, `‥` → `..`, ſ → `s`, the Kelvin sign → `K`), the Turkish dotted
/// and dotless I (İ, ı) read as `i`, and the result normalised again (dot segments
/// resolved). Java's `equalsIgnoreCase` and `toUpperCase`, .NET's
/// `ToUpperInvariant`, Go's `EqualFold` and NFKC-normalising frameworks all take
/// some of these for ASCII paths; rules are also judged on this spelling, and the
/// stricter answer counts (see [`crate::policy::policy_for`]). Borrowed when it is
/// the same (a path without `%` is not even searched: a normalised path is ASCII).
pub fn decoded_and_folded(path: &str) -> std::borrow::Cow<'_, str> {
    decode_fold(path, false)
}

/// [`decoded_and_folded`], except that bytes that aren't UTF-8 stay, escaped again:
/// the form to decode once more. A character whose bytes were escaped at two depths
/// (`%25C3%BC`: `%C3` then a lone `BC` after one decode) is whole again only for a
/// decoder that keeps the lone bytes, as byte-wise double decoding does (attack pass:
/// dropped at each step, the halves never met).
pub fn decoded_keeping_bytes(path: &str) -> std::borrow::Cow<'_, str> {
    decode_fold(path, true)
}

fn decode_fold(path: &str, keep_bytes: bool) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization;
    if memchr::memchr(b'%', path.as_bytes()).is_none() {
        return std::borrow::Cow::Borrowed(path);
    }
    let bytes = ascii_from_overlong(percent_encoding::percent_decode_str(path).collect());
    // (Invisible characters dropped before NFKC too, so what they separated composes.)
    // Bytes that aren't UTF-8 are dropped, as decoders that ignore errors (iconv's
    // `//IGNORE`, Python's `errors="ignore"`) do: `/pri%80vate` is `/private` to them
    // (attack pass). (Replaced by U+FFFD they would spell no route at all.) Kept
    // escaped for the next decoding ([`decoded_keeping_bytes`]).
    let mut text = String::with_capacity(bytes.len());
    for c in bytes.utf8_chunks() {
        text.push_str(c.valid());
        if keep_bytes {
            for b in c.invalid() {
                text.push('%');
                text.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
                text.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
            }
        }
    }
    let folded: String = text
        .chars()
        .filter(|&c| !default_ignorable(c))
        .nfkc()
        .filter(|&c| !default_ignorable(c))
        .map(|c| match c {
            '\u{130}' | '\u{131}' => 'i',
            _ => c,
        })
        // Other letters in one case (`Ü` as `ü`), as case-insensitive file systems
        // (NTFS, APFS) and applications that lower-case routes read them; ASCII is
        // compared without regard to case anyway.
        .flat_map(lower_unless_ascii)
        .collect();
    // Normalised again (dot segments that appeared, non-ASCII escaped); a form that
    // doesn't normalise (a `\`, a blank) is judged as it is (and as [`as_rule_path`]
    // writes it).
    let folded = normalize(&folded).unwrap_or(folded);
    if folded == path {
        std::borrow::Cow::Borrowed(path)
    } else {
        std::borrow::Cow::Owned(folded)
    }
}

/// A decoded spelling (or the part of one before a decoded `?`) written as rule
/// paths are: normalised; or, when it doesn't normalise as it is (a blank, a control
/// character, a `%` that escapes nothing: `/über/a b`, `/über/100%`), with those
/// escaped again (`%20`, `%25`; control characters dropped, as URL parsers drop tabs
/// and line ends) and then normalised (`/%C3%BCber/a%20b`). Its non-ASCII letters and
/// dot segments then read as rule paths are written, which the raw Unicode form never
/// meets. `None` when that is `path` itself, or when it can't be written so (a `\`,
/// which the Windows readings take up).
pub fn as_rule_path(path: &str) -> Option<String> {
    let n = normalize(path)
        .or_else(|_| normalize(&escaped_again(path)))
        .ok()?;
    (n != path).then_some(n)
}

/// `path` with blanks and `%` that escape nothing escaped, control characters dropped.
fn escaped_again(path: &str) -> String {
    let b = path.as_bytes();
    let hex = |i: usize| b.get(i).is_some_and(u8::is_ascii_hexdigit);
    let mut out = String::with_capacity(path.len() + 8);
    for (i, c) in path.char_indices() {
        match c {
            ' ' => out.push_str("%20"),
            c if c.is_ascii_control() => {}
            '%' if !(hex(i + 1) && hex(i + 2)) => out.push_str("%25"),
            // (Non-ASCII stays: `normalize` escapes it.)
            c => out.push(c),
        }
    }
    out
}

/// `c` in lower case when it isn't ASCII (`Ü` as `ü`, `Σ` as `σ`), else as it is.
fn lower_unless_ascii(c: char) -> impl Iterator<Item = char> {
    let lower = (!c.is_ascii()).then(|| c.to_lowercase());
    lower.into_iter().flatten().chain(c.is_ascii().then_some(c))
}

/// Unicode's default-ignorable code points (`Default_Ignorable_Code_Point`): the
/// soft hyphen, zero-width space and joiners, the byte order mark, bidirectional
/// marks, variation selectors, tags. Invisible, and dropped by NFKC_Casefold (ICU,
/// IDNA mapping) and by applications that clean names before routing them, so
/// `/se%C2%ADcure` may reach `/secure`'s handler.
fn default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{AD}' | '\u{34F}' | '\u{61C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// The path with `;parameters` removed from every segment, and the segments left
/// empty by that (`/;/admin`) or empty before (`//`) merged: what servlet
/// containers (Tomcat, Jetty) route on. Rules are judged on both forms.
pub fn strip_params(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains(';') {
        return std::borrow::Cow::Borrowed(path);
    }
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut out = String::with_capacity(path.len());
    for (i, seg) in segments.iter().enumerate() {
        let seg = seg.split(';').next().unwrap_or("");
        if i == 0 {
            out.push_str(seg);
        } else if !seg.is_empty() || i == last {
            out.push('/');
            out.push_str(seg);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_decoded_and_folded_as_an_application_may_read_them() {
        for (path, folded) in [
            ("/%C5%BFecure", "/secure"),
            ("/ADM%C4%B0N/x%C4%B1", "/ADMiN/xi"),
            ("/%E2%84%AA", "/K"),
            ("/%C4%B2", "/IJ"),
            // Ligatures and fullwidth forms (found by the second attack pass).
            ("/%EF%AC%86aff", "/staff"),
            // Invisible characters an application may drop (soft hyphen, zero-width
            // space and joiner, byte order mark, a variation selector).
            ("/se%C2%ADcure", "/secure"),
            ("/%E2%80%8Bsecure/x", "/secure/x"),
            ("/sec%E2%80%8Dure", "/secure"),
            ("/secure%EF%BB%BF/x", "/secure/x"),
            ("/secure%EF%B8%8F", "/secure"),
            ("/public/.%E2%80%8B./secure", "/secure"),
            // Bytes that aren't UTF-8 dropped.
            ("/pri%80vate/x", "/private/x"),
            ("/confidential%E2%82/x", "/confidential/x"),
            ("/public/.%80./private/x", "/private/x"),
            // Non-ASCII letters in lower case.
            ("/%C3%9Cber-geheim/x", "/%C3%BCber-geheim/x"),
            ("/%C3%9CBER/%CE%A3", "/%C3%BCBER/%CF%83"),
            // (e, combining grapheme joiner, acute: composes once the joiner is gone.)
            ("/caf%65%CD%8F%CC%81", "/caf%C3%A9"),
            ("/sta%EF%AC%80", "/staff"),
            ("/%EF%BD%81dmin", "/admin"),
            ("/secure%EF%BC%8Fx", "/secure/x"),
            // Dot segments that appear are resolved; a decoded `;` is a parameter.
            ("/public/%EF%BC%8E%EF%BC%8E/secure/x", "/secure/x"),
            ("/public/%E2%80%A5/secure/x", "/secure/x"),
            ("/public/%252e%252e/secure/x", "/secure/x"),
            ("/secure%3B/x", "/secure;/x"),
            // A blank decoded can't be normalised: judged as it is (and see
            // `as_rule_path`).
            ("/a%20b", "/a b"),
            ("/%C3%9Cber/a%20b", "/über/a b"),
        ] {
            assert_eq!(decoded_and_folded(path), folded, "{path}");
        }
        for (decoded, escaped) in [
            ("/über/a b", Some("/%C3%BCber/a%20b")),
            ("/x/../café/a b", Some("/caf%C3%A9/a%20b")),
            ("/a b", Some("/a%20b")),
            ("/über/ab", Some("/%C3%BCber/ab")),
            ("/über/100%", Some("/%C3%BCber/100%25")),
            ("/über/a b%", Some("/%C3%BCber/a%20b%25")),
            ("/über/a\tb", Some("/%C3%BCber/ab")),
            ("/über/%41", Some("/%C3%BCber/A")),
            ("/plain", None),
            ("/über\\a b", None),
            ("/über/%2F", None),
        ] {
            assert_eq!(as_rule_path(decoded).as_deref(), escaped, "{decoded}");
        }
        for plain in ["/", "/secure", "/caf%C3%A9", "/%C3%BCber"] {
            assert!(
                matches!(decoded_and_folded(plain), std::borrow::Cow::Borrowed(_)),
                "{plain}"
            );
        }
        // Through normalisation: raw bytes and lower-case escapes end up the same.
        let raw = normalize("/\u{17f}ecure/%c4%b1").unwrap();
        assert_eq!(decoded_and_folded(&raw), "/secure/i");
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let ok = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("//admin", "/admin"),
            ("/./admin", "/admin"),
            ("/pub/../admin", "/admin"),
            ("/pub/%2e%2e/admin", "/admin"),
            ("/pub/%2E%2e/admin/", "/admin/"),
            ("/%61dmin", "/admin"),
            ("/a/b/", "/a/b/"),
            ("/a/.", "/a/"),
            ("/a/b/..", "/a/"),
            ("/../../etc", "/etc"),
            ("/a%20b", "/a%20b"),
            ("/a%3ab", "/a%3Ab"),
            ("/admin;x", "/admin;x"),
            ("/a///b//", "/a/b/"),
            ("/%7Euser", "/~user"),
            ("/caf\u{e9}", "/caf%C3%A9"),
            // Latin-1 letters are not overlong UTF-8: `éé`, `Àb`.
            ("/caf%E9%E9", "/caf%E9%E9"),
            ("/%C0b", "/%C0b"),
        ];
        for (input, want) in ok {
            assert_eq!(normalize(input).as_deref(), Ok(want), "input {input:?}");
        }
        let bad = [
            ("/pub%2f..%2fadmin", PathError::EncodedSeparator),
            ("/pub%2F..%2Fadmin", PathError::EncodedSeparator),
            ("/a%5cb", PathError::EncodedSeparator),
            ("/a\\b", PathError::Backslash),
            ("/pub/..;/admin", PathError::DotParameter),
            ("/pub/%2e%2e;/admin", PathError::DotParameter),
            ("/pub/.;/admin", PathError::DotParameter),
            ("/a%00", PathError::Control),
            ("/a\0", PathError::Control),
            ("/a%zz", PathError::Malformed),
            ("/public/%C0%AE%C0%AE/secure", PathError::Overlong),
            ("/public/..%c0%af/secure", PathError::Overlong),
            ("/deny%e0%80%ae/x", PathError::Overlong),
            ("/x%F0%80%80%AE", PathError::Overlong),
            ("/x%C1%81", PathError::Overlong),
            ("/a%4", PathError::Malformed),
            ("admin", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
        ];
        for (input, want) in bad {
            assert_eq!(normalize(input), Err(want), "input {input:?}");
        }
    }

    #[test]
    fn params_are_stripped_per_segment() {
        assert_eq!(strip_params("/admin;x"), "/admin");
        assert_eq!(strip_params("/a;jsessionid=1/b;c=d"), "/a/b");
        assert_eq!(strip_params("/plain"), "/plain");
        // A segment that is only a parameter is merged away, as Tomcat does.
        assert_eq!(strip_params("/;/admin"), "/admin");
        assert_eq!(strip_params("/;jsessionid=1/secret/x"), "/secret/x");
        assert_eq!(strip_params("/;a/;b/admin"), "/admin");
        assert_eq!(strip_params("/a/;"), "/a/");
        assert_eq!(strip_params("/;"), "/");
    }

    proptest! {
        /// A path taken as plain is exactly what the long way makes of it.
        #[test]
        fn plain_paths_are_their_own_normal_form(s in "/[a-zA-Z0-9%./;~_-]{0,30}") {
            if is_plain(s.as_bytes()) {
                prop_assert_eq!(rebuild(&s), Ok(s.clone()));
            }
        }

        #[test]
        fn idempotent(s in "/[a-zA-Z0-9%./;~_-]{0,40}") {
            if let Ok(once) = normalize(&s) {
                prop_assert_eq!(normalize(&once), Ok(once.clone()));
                prop_assert!(once.starts_with('/'));
                prop_assert!(!once.contains("//"));
                prop_assert!(!once.split('/').any(|seg| seg == ".." || seg == "."));
            }
        }
    }
}
