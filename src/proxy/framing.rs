//! Request framing the gateway forwards only in one spelling.
//!
//! A proxy and the application behind it must agree on where a request ends;
//! where they might not (request smuggling), the gateway answers 400 instead of
//! forwarding. Pingora (through httparse) is lenient in ways an upstream may not
//! be, and forwards what it accepted unchanged, so this refuses:
//! - a header line ending in a bare LF (or a stray CR): RFC 9112 §2.2 lets a
//!   recipient accept bare LF, so parsers differ on it;
//! - more than one `Content-Length` (as several lines or a comma list, even of
//!   equal values: Pingora collapses `5, 5` but forwards it as written);
//! - a `Content-Length` that isn't plain digits: signs, spaces inside, leading
//!   zeros (`005`), anything too large for a u64;
//! - `Content-Length` together with `Transfer-Encoding`.
//!
//! Pure functions over the raw header bytes (HTTP/1) and the parsed headers
//! (any version); [`super::ambiguous_framing`] calls them. Nothing here knows
//! Pingora.

use http::HeaderValue;

/// Why a request's framing is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("a header line ends in a bare LF or holds a stray CR")]
    BareLineEnding,
    #[error("more than one Content-Length")]
    ContentLengthList,
    #[error("a Content-Length that is not a plain decimal number")]
    ContentLengthValue,
    #[error("both Content-Length and Transfer-Encoding")]
    ContentLengthAndTransferEncoding,
}

/// Checks an HTTP/1 request: `raw` is its header as received, from the request
/// line (or the empty lines before it) to the blank line that ends it;
/// `content_lengths` and `transfer_encoding` are what Pingora parsed from it.
///
/// The same verdict as [`check_raw`], cheaper (this runs on every request, issue
/// #11): one pass for the line ends ([`line_ends_paired`]), then the parsed
/// `Content-Length` values, which are every `Content-Length` line of the header
/// unless `Transfer-Encoding` is present (Pingora then drops them): only then are
/// the raw lines read.
pub fn check_h1<'a>(
    raw: &[u8],
    content_lengths: impl IntoIterator<Item = &'a HeaderValue>,
    transfer_encoding: bool,
) -> Result<(), FramingError> {
    if !line_ends_paired(raw) {
        return Err(FramingError::BareLineEnding);
    }
    if transfer_encoding {
        return check_raw(raw);
    }
    check_lengths(content_lengths, false)
}

/// Does every LF follow a CR, and every CR precede an LF? One pass over byte pairs,
/// in blocks of [`BLOCK`] the compiler turns into vector instructions; the last block
/// ends at the last pair, overlapping the one before (a pair looked at twice counts
/// once), so no pair is left to a byte-by-byte loop but in a head shorter than a block.
pub fn line_ends_paired(raw: &[u8]) -> bool {
    let next = raw.get(1..).unwrap_or_default();
    let n = next.len();
    // A lane of `odd` is non-zero once a pair there has a CR without its LF, or an
    // LF without its CR. One accumulator for all blocks, folded once at the end (a
    // fold per block cost as much as the comparisons).
    let mut odd = [0u8; BLOCK];
    let mut pairs = |at: usize| {
        if let (Some(a), Some(b)) = (raw.get(at..at + BLOCK), next.get(at..at + BLOCK)) {
            for ((o, &a), &b) in odd.iter_mut().zip(a).zip(b) {
                *o |= u8::from(a == b'\r') ^ u8::from(b == b'\n');
            }
        }
    };
    if n < BLOCK {
        let mut o = 0u8;
        for (&a, &b) in raw.iter().zip(next) {
            o |= u8::from(a == b'\r') ^ u8::from(b == b'\n');
        }
        odd[0] = o;
    } else {
        for i in 0..n / BLOCK {
            pairs(i * BLOCK);
        }
        pairs(n - BLOCK);
    }
    // (The pairs above leave out an LF first and a CR last.)
    odd.iter().fold(0, |a, &b| a | b) == 0
        && raw.first() != Some(&b'\n')
        && raw.last() != Some(&b'\r')
}

/// Pairs [`line_ends_paired`] looks at together.
const BLOCK: usize = 32;

/// Checks an HTTP/1 request header as received, from the request line (or the
/// empty lines before it) to the blank line that ends it, line by line.
///
/// One pass from line end to line end (`memchr`).
pub fn check_raw(raw: &[u8]) -> Result<(), FramingError> {
    let mut lines = Lines::default();
    let mut start = 0;
    let mut line_ends = 0;
    for lf in memchr::memchr_iter(b'\n', raw) {
        // Every LF must follow a CR...
        let line = raw[start..lf]
            .strip_suffix(b"\r")
            .ok_or(FramingError::BareLineEnding)?;
        line_ends += 1;
        lines.next(line);
        start = lf + 1;
    }
    // ...and every CR precede an LF: each LF has its own CR before it, so any CR
    // beyond those is a stray one.
    if memchr::memchr_iter(b'\r', raw).count() != line_ends {
        return Err(FramingError::BareLineEnding);
    }
    // Whatever follows the last LF is read as a last line.
    lines.next(&raw[start..]);
    if let Some(e) = lines.first_error {
        return Err(e);
    }
    verdict(lines.lengths, lines.te)
}

/// Where [`check_raw`] stands in the header's lines.
#[derive(Default)]
struct Lines {
    /// The request line was seen (empty lines before it are skipped).
    started: bool,
    /// The blank line after it was seen: nothing more is a header.
    ended: bool,
    lengths: usize,
    te: bool,
    /// The first bad `Content-Length` value.
    first_error: Option<FramingError>,
}

impl Lines {
    fn next(&mut self, line: &[u8]) {
        if self.ended {
            return;
        }
        if !self.started {
            self.started = !line.is_empty();
            return;
        }
        if line.is_empty() {
            self.ended = true;
            return;
        }
        // Only names starting with c or t matter.
        if !matches!(line[0] | 0x20, b'c' | b't') {
            return;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            self.lengths += 1;
            if self.first_error.is_none() {
                self.first_error = content_length(value).err();
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.te = true;
        }
    }
}

/// The same rules on parsed headers (any HTTP version): the `Content-Length`
/// values and whether `Transfer-Encoding` is present. Pingora drops
/// `Content-Length` when `Transfer-Encoding` is present, so in HTTP/1 only
/// [`check_raw`] sees that pair.
pub fn check_lengths<'a>(
    content_lengths: impl IntoIterator<Item = &'a HeaderValue>,
    transfer_encoding: bool,
) -> Result<(), FramingError> {
    let mut lengths = 0;
    for v in content_lengths {
        lengths += 1;
        content_length(v.as_bytes())?;
    }
    verdict(lengths, transfer_encoding)
}

fn verdict(lengths: usize, te: bool) -> Result<(), FramingError> {
    match (lengths, te) {
        (0, _) => Ok(()),
        (1, false) => Ok(()),
        (1, true) => Err(FramingError::ContentLengthAndTransferEncoding),
        _ => Err(FramingError::ContentLengthList),
    }
}

/// One `Content-Length` value: optional whitespace around `0` or a number
/// without leading zeros that fits a u64. A comma means a list.
fn content_length(value: &[u8]) -> Result<(), FramingError> {
    let v = value.trim_ascii();
    if v.contains(&b',') {
        return Err(FramingError::ContentLengthList);
    }
    let plain = !v.is_empty()
        && v.iter().all(u8::is_ascii_digit)
        && (v == b"0" || v[0] != b'0')
        && std::str::from_utf8(v).is_ok_and(|s| s.parse::<u64>().is_ok());
    if plain {
        Ok(())
    } else {
        Err(FramingError::ContentLengthValue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FramingError::*;

    #[test]
    fn raw_headers_table() {
        let table: &[(&str, Result<(), FramingError>)] = &[
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok(())),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
                Ok(()),
            ),
            ("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", Ok(())),
            ("POST / HTTP/1.1\r\ncontent-length:  12 \r\n\r\n", Ok(())),
            // Leading empty lines (skipped by the parser) are fine in CRLF form.
            ("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok(())),
            // Other headers may hold commas and digits.
            ("GET / HTTP/1.1\r\nAccept: a, b\r\nX-N: 005\r\n\r\n", Ok(())),
            (
                "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
                Err(ContentLengthList),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 5,5\r\n\r\n",
                Err(ContentLengthList),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                Err(ContentLengthList),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 005\r\n\r\n",
                Err(ContentLengthValue),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 00\r\n\r\n",
                Err(ContentLengthValue),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
                Err(ContentLengthValue),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                Err(ContentLengthValue),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n",
                Err(ContentLengthValue),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n",
                Err(ContentLengthValue),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
                Err(ContentLengthValue),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                Err(ContentLengthValue),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(ContentLengthAndTransferEncoding),
            ),
            ("GET / HTTP/1.1\nHost: a\n\n", Err(BareLineEnding)),
            ("GET / HTTP/1.1\r\nHost: a\n\r\n", Err(BareLineEnding)),
            ("GET / HTTP/1.1\r\nHost: a\r\n\n", Err(BareLineEnding)),
            ("\nGET / HTTP/1.1\r\n\r\n", Err(BareLineEnding)),
            ("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", Err(BareLineEnding)),
            // A Content-Length in the request line is not a header.
            ("GET /Content-Length:005 HTTP/1.1\r\n\r\n", Ok(())),
        ];
        for (raw, want) in table {
            assert_eq!(check_raw(raw.as_bytes()), *want, "{raw:?}");
        }
    }

    /// The byte-at-a-time form `check_raw` replaced: the reference it must agree with.
    fn check_raw_reference(raw: &[u8]) -> Result<(), FramingError> {
        for (i, &b) in raw.iter().enumerate() {
            let ok = match b {
                b'\n' => i > 0 && raw[i - 1] == b'\r',
                b'\r' => raw.get(i + 1) == Some(&b'\n'),
                _ => true,
            };
            if !ok {
                return Err(FramingError::BareLineEnding);
            }
        }
        let lines = raw
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .skip_while(|l| l.is_empty())
            .skip(1);
        let mut lengths = 0;
        let mut te = false;
        for line in lines.take_while(|l| !l.is_empty()) {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"content-length") {
                lengths += 1;
                content_length(value)?;
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                te = true;
            }
        }
        verdict(lengths, te)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Any mix of line ends, names and values: the same verdict as the reference.
        #[test]
        fn check_raw_agrees_with_the_reference(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "\r", "\n", "\r\n", "GET / HTTP/1.1", "Content-Length:", "content-length: 5",
                "CONTENT-LENGTH:05", "Transfer-Encoding: chunked", "t", "c", ":", " 7", "0", ",",
                "Host: a", "x",
            ]), 0..14),
        ) {
            let raw = parts.concat();
            proptest::prop_assert_eq!(check_raw(raw.as_bytes()), check_raw_reference(raw.as_bytes()), "{:?}", raw);
        }
    }

    /// A request head as httparse (Pingora's parser) would take it: the values of
    /// `Content-Length` and whether `Transfer-Encoding` is present, with Pingora's
    /// rule (`Content-Length` dropped when both are); `None` when it isn't taken.
    fn parsed(raw: &[u8]) -> Option<(Vec<HeaderValue>, bool)> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(raw), Ok(httparse::Status::Complete(n)) if n == raw.len()) {
            return None;
        }
        let named = |n: &str| {
            req.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(n))
                .map(|h| HeaderValue::from_bytes(h.value).ok())
                .collect::<Option<Vec<_>>>()
        };
        let te = !named("transfer-encoding")?.is_empty();
        let cl = if te { vec![] } else { named("content-length")? };
        Some((cl, te))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Every head Pingora's parser takes: `check_h1` on what it parsed gives the
        /// verdict of the byte-at-a-time reference on the bytes.
        #[test]
        fn check_h1_agrees_with_the_reference(
            leading in proptest::sample::select(vec!["", "\r\n", "\n"]),
            lines in proptest::collection::vec((
                proptest::sample::select(vec![
                    "Host: a", "Content-Length: 5", "content-length:05", "CONTENT-LENGTH: 5, 5",
                    "Content-Length: 7", "Transfer-Encoding: chunked", "transfer-encoding: x",
                    "TE: x", "Cookie: a=b", "Connection: close", "Content-Lengthy: 1", "X: a\rb",
                    "Content-Length: +1", "Content-Length:", "X-Pad: 0123456789abcdef",
                ]),
                proptest::sample::select(vec!["\r\n", "\r\n", "\r\n", "\n", "\r"]),
            ), 0..8),
            end in proptest::sample::select(vec!["\r\n", "\n"]),
        ) {
            let mut raw = format!("{leading}GET / HTTP/1.1\r\n");
            for (line, eol) in &lines {
                raw.push_str(line);
                raw.push_str(eol);
            }
            raw.push_str(end);
            if let Some((cl, te)) = parsed(raw.as_bytes()) {
                proptest::prop_assert_eq!(
                    check_h1(raw.as_bytes(), &cl, te),
                    check_raw_reference(raw.as_bytes()),
                    "{:?}",
                    raw
                );
            }
        }

        /// Line ends, on any bytes: as the reference reads them.
        #[test]
        fn line_ends_paired_is_the_byte_at_a_time_check(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "\r", "\n", "\r\n", "a", "0123456789abcdefghijklmnopqrstu", "\u{e9}", "\t", "\u{b}",
            ]), 0..40),
        ) {
            let raw = parts.concat();
            let b = raw.as_bytes();
            let reference = b.iter().enumerate().all(|(i, &c)| match c {
                b'\n' => i > 0 && b[i - 1] == b'\r',
                b'\r' => b.get(i + 1) == Some(&b'\n'),
                _ => true,
            });
            proptest::prop_assert_eq!(line_ends_paired(b), reference, "{:?}", raw);
        }
    }

    #[test]
    fn parsed_headers_table() {
        use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
        let map = crate::test_support::header_map;
        type Case<'a> = (&'a [(&'a str, &'a str)], Result<(), FramingError>);
        let table: &[Case<'_>] = &[
            (&[], Ok(())),
            (&[("content-length", "5")], Ok(())),
            (&[("content-length", "5, 5")], Err(ContentLengthList)),
            (
                &[("content-length", "5"), ("content-length", "5")],
                Err(ContentLengthList),
            ),
            (&[("content-length", "005")], Err(ContentLengthValue)),
            (
                &[("content-length", "5"), ("transfer-encoding", "chunked")],
                Err(ContentLengthAndTransferEncoding),
            ),
            (&[("transfer-encoding", "chunked")], Ok(())),
        ];
        for (pairs, want) in table {
            let h = map(pairs);
            let got = check_lengths(h.get_all(CONTENT_LENGTH), h.contains_key(TRANSFER_ENCODING));
            assert_eq!(got, *want, "{pairs:?}");
        }
    }
}
