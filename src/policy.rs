//! Access policy: a pure function from (site, path, method, client, session) to
//! a [`Decision`]. No I/O, no Pingora; table-tested below.
//!
//! Rules are tried in order and the first that matches wins; when none does,
//! `access.default_policy` applies. Path matching is a prefix match on the
//! normalised path, biased toward protection:
//! - a rule that *loosens* protection (`bypass`) must match the path exactly as
//!   written, both with and without `;parameters`;
//! - a rule that *demands* something (`one_factor`, `two_factor`, `deny`) matches
//!   regardless of letter case and of `;parameters`, so `/ADMIN` or `/admin;x`
//!   can't slip past a rule on `/admin` when the application behind is
//!   case-insensitive or a servlet container.

use std::borrow::Cow;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::pathnorm::{decoded_and_folded, strip_params};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Policy {
    Bypass,
    OneFactor,
    TwoFactor,
    Deny,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "bypass" => Some(Policy::Bypass),
            "one_factor" => Some(Policy::OneFactor),
            "two_factor" => Some(Policy::TwoFactor),
            "deny" => Some(Policy::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Bypass => "bypass",
            Policy::OneFactor => "one_factor",
            Policy::TwoFactor => "two_factor",
            Policy::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub host: Option<String>,
    /// Normalised path prefix.
    pub path: String,
    /// Empty = any method.
    pub methods: Vec<http::Method>,
    /// Empty = anyone; otherwise only signed-in subjects in one of these groups.
    pub groups: Vec<String>,
    /// Empty = any client; otherwise only clients in one of these networks.
    pub networks: Vec<IpNet>,
    pub policy: Policy,
}

/// What a request brings to the decision.
pub struct Request<'a> {
    pub host: &'a str,
    /// Normalised path (see [`crate::pathnorm`]).
    pub path: &'a str,
    pub method: &'a http::Method,
    pub client: IpAddr,
    /// The methods the query names for a `POST` (`_method=DELETE`: Symfony, Laravel,
    /// Rails read it), from [`method_override`]: the request is judged as each of
    /// them too, the strictest answer counting.
    pub overridden: &'a [http::Method],
}

/// The methods a `POST`'s query string names in `_method` (upper-cased), which
/// frameworks may run instead of `POST`: every one (PHP and Rack take the last, others
/// the first), with the key read as PHP reads it (escapes decoded, `.` and blanks as
/// `_`). (One named in the form body isn't seen here: the gateway judges a request
/// before reading its body. The `X-HTTP-Method-Override` headers never reach the
/// application: they are stripped.)
pub fn method_override(method: &http::Method, query: Option<&str>) -> Vec<http::Method> {
    let Some(query) = query.filter(|_| method.as_str().eq_ignore_ascii_case("POST")) else {
        return Vec::new();
    };
    // Form encoding: `+` is a blank.
    let decoded = |s: &str| {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| {
            decoded(k)
                .trim_start()
                .chars()
                .map(|c| if c == '.' || c == ' ' { '_' } else { c })
                .eq("_method".chars())
        })
        .filter_map(|(_, v)| {
            http::Method::from_bytes(decoded(v).trim().to_ascii_uppercase().as_bytes()).ok()
        })
        .collect()
}

/// What the session (if any) proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factors {
    None,
    /// Password right, the second-factor challenge still to pass.
    PendingSecond,
    /// Password right, two-step verification required and still to set up.
    PendingEnrol,
    One,
    Two,
}

pub struct Subject<'a> {
    pub factors: Factors,
    pub groups: &'a [String],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No (valid) session: sign in first.
    Login,
    /// Signed in with one factor, the rule wants two (or the sign-in isn't finished).
    SecondFactor,
    /// Two-step verification must be set up before anything else.
    Enrol,
    Deny,
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Where a directory's bare name ends in `path`: the whole path (`/secure`), and the
/// last segment before its first dot (`/secure.json`, as Rails' format routes and
/// Spring's suffix patterns read it) — the spellings a demanding rule on `/secure/`
/// also covers (see [`policy_for`]). A path ending in `/` has none; a segment's
/// leading dot (`/.well-known`) is not an extension.
fn bare_name_ends(path: &str) -> [Option<usize>; 2] {
    if path.ends_with('/') {
        return [None, None];
    }
    let seg = path.rfind('/').map_or(0, |i| i + 1);
    let ext = path[seg..]
        .bytes()
        .skip(1)
        .position(|b| b == b'.')
        .map(|i| seg + 1 + i);
    [Some(path.len()), ext]
}

/// Is there a demanding rule for this host whose path is `dir` and a `/` (any letter
/// case)? Only then is `dir/` judged as another spelling (see [`policy_for`]).
fn names_directory(rules: &[Rule], host: &str, dir: &str) -> bool {
    rules.iter().any(|r| {
        r.policy != Policy::Bypass
            && r.host.as_deref().is_none_or(|h| h == host)
            && r.path.len() == dir.len() + 1
            && r.path.ends_with('/')
            && r.path[..dir.len()].eq_ignore_ascii_case(dir)
    })
}

/// `prefix` is a prefix of `path` made of whole segments: `/public` matches
/// `/public` and `/public/x`, not `/publicity`; `/public/` matches `/public/x`.
fn starts_with_segments(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix)
        && (prefix.ends_with('/')
            || path.len() == prefix.len()
            || path.as_bytes()[prefix.len()] == b'/')
}

impl Rule {
    /// Does the rule cover `spelling`, one spelling of the request's path `raw` (see
    /// [`spellings`])? A `bypass` rule loosens access, so it covers a spelling only
    /// when it covers the path as received too, by whole segments and exactly as
    /// written (with and without `;parameters`); any other rule covers a spelling
    /// that starts with its path in any letter case.
    fn path_matches(&self, raw: &str, spelling: &str) -> bool {
        if self.policy == Policy::Bypass {
            starts_with_segments(raw, &self.path)
                && starts_with_segments(&strip_params(raw), &self.path)
                && (spelling == raw || starts_with_segments(spelling, &self.path))
        } else {
            starts_with_ci(spelling, &self.path)
        }
    }

    /// Everything but the path: host, method, network, groups.
    fn applies_to(&self, req: &Request<'_>, subject: &Subject<'_>) -> bool {
        if self.host.as_deref().is_some_and(|h| h != req.host) {
            return false;
        }
        if !self.methods.is_empty() && !self.methods.contains(req.method) {
            return false;
        }
        if !self.networks.is_empty() && !self.networks.iter().any(|n| n.contains(&req.client)) {
            return false;
        }
        if !self.groups.is_empty()
            && (!matches!(subject.factors, Factors::One | Factors::Two)
                || !subject.groups.iter().any(|g| self.groups.contains(g)))
        {
            return false;
        }
        true
    }

    fn matches(&self, req: &Request<'_>, subject: &Subject<'_>, spelling: &str) -> bool {
        self.applies_to(req, subject) && self.path_matches(req.path, spelling)
    }
}

/// The other spellings of a (normalised) path an application might route it by,
/// each once and only when it differs from the path: without `;parameters`
/// (servlet containers); decoded and folded further (escapes, NFKC, Unicode case
/// rules: see [`crate::pathnorm::decoded_and_folded`]), again and again while that
/// changes it (up to three times: applications and servers that decode twice read
/// `%252e%252e%252f` as `../`), each also without parameters and cut at a decoded
/// `?` or `#` (`/secure%3F.json`), and each of these that doesn't normalise also as
/// rule paths are written ([`crate::pathnorm::as_rule_path`]); every one of those
/// normalised again when dropping parameters left dot segments (`/x/..%3B/admin`);
/// and each as Windows servers read it ([`windows_form`]). A plain path has none,
/// and costs no allocation.
fn spellings(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    fn add(out: &mut Vec<String>, path: &str, s: String) {
        if s != path && !out.contains(&s) && out.len() < MAX_SPELLINGS {
            out.push(s);
        }
    }
    fn with_stripped(out: &mut Vec<String>, path: &str, s: &str) {
        if let Cow::Owned(stripped) = strip_params(s) {
            if let Some(n) = renormalised(&stripped) {
                add(out, path, n);
            }
            add(out, path, stripped);
        }
    }
    with_stripped(&mut out, path, path);
    let mut current = Cow::Borrowed(path);
    for _ in 0..3 {
        // Each decoding goes on from the form that keeps bytes that aren't UTF-8
        // (escaped): a character escaped at two depths (`%25C3%BC`) is whole after
        // the next ([`crate::pathnorm::decoded_keeping_bytes`]).
        let kept = match crate::pathnorm::decoded_keeping_bytes(&current) {
            Cow::Borrowed(_) => None,
            Cow::Owned(k) => Some(k),
        };
        let next = match decoded_and_folded(&current) {
            Cow::Borrowed(_) => None,
            Cow::Owned(n) => Some(n),
        };
        // The form with the bytes kept is a spelling too: its next decoding may be
        // the same text (`/%C3%BCber` decodes and folds to itself).
        if let Some(k) = kept.as_ref().filter(|k| Some(*k) != next.as_ref()) {
            add(&mut out, path, k.clone());
        }
        let Some(next) = next else {
            // (Nothing decoded differently with the bytes dropped; with them kept,
            // the next decoding may still join them.)
            match kept {
                Some(k) => {
                    current = Cow::Owned(k);
                    continue;
                }
                None => break,
            }
        };
        with_stripped(&mut out, path, &next);
        // A decoded `?` or `#` (`/secure%3F.json`) ends the path for an application
        // that parses the decoded target again.
        if let Some(cut) = next.find(['?', '#']).filter(|&i| i > 0) {
            if let Some(e) = crate::pathnorm::as_rule_path(&next[..cut]) {
                add(&mut out, path, e);
            }
            add(&mut out, path, next[..cut].to_string());
        }
        if let Some(e) = crate::pathnorm::as_rule_path(&next) {
            add(&mut out, path, e);
        }
        add(&mut out, path, next);
        // (Kept the same as the path: nothing more to decode.)
        let Some(k) = kept else { break };
        current = Cow::Owned(k);
    }
    let decoded = out.len();
    if let Some(w) = windows_form(path) {
        add(&mut out, path, w);
    }
    for i in 0..decoded {
        if let Some(w) = windows_form(&out[i]) {
            add(&mut out, path, w);
        }
    }
    out
}

/// At most this many other spellings of one path are judged (a bound on the work
/// for any path; real ones have a handful, the most contrived about thirty).
const MAX_SPELLINGS: usize = 48;

/// A path with parameters dropped, normalised again when that left dot segments
/// (judged besides the form without: another spelling only tightens).
fn renormalised(p: &str) -> Option<String> {
    if p.split('/').any(|seg| seg == "." || seg == "..") {
        return crate::pathnorm::normalize(p).ok().filter(|n| n != p);
    }
    None
}

/// The path as IIS and other Windows servers read it: `\` as `/`, a segment's
/// NTFS stream suffix ignored (from its first `:`, in a segment naming a stream
/// type: `::$DATA`, `::$INDEX_ALLOCATION`, `:$i30:$INDEX_ALLOCATION`), and its trailing dots and
/// blanks (`.. ` is `..`); then normalised again. So `/secure./x`, `/secure /x`,
/// `/secure::$DATA/x` and `/x/..\secure` are `/secure/x` or `/secure`. `None`
/// when nothing changes.
fn windows_form(path: &str) -> Option<String> {
    fn trimmed(seg: &str) -> &str {
        // A stream names its type after `:$`; a colon without one is left alone
        // (`/wiki/Special:Login`).
        let stream = memchr::memmem::find(seg.as_bytes(), b":$").is_some();
        let seg = match seg.find(':').filter(|_| stream) {
            Some(i) => &seg[..i],
            None => seg,
        };
        let seg = seg.trim_end_matches(' ');
        if seg == "." || seg == ".." {
            return seg;
        }
        seg.trim_end_matches(['.', ' '])
    }
    // (Most paths hold none of these bytes: one quick pass, no splitting.)
    let b = path.as_bytes();
    if memchr::memchr3(b'.', b' ', b':', b).is_none() && memchr::memchr(b'\\', b).is_none() {
        return None;
    }
    let slashed: Cow<'_, str> = match memchr::memchr(b'\\', b) {
        Some(_) => Cow::Owned(path.replace('\\', "/")),
        None if !path.split('/').any(|seg| trimmed(seg).len() != seg.len()) => return None,
        None => Cow::Borrowed(path),
    };
    let joined = slashed
        .split('/')
        .map(trimmed)
        .collect::<Vec<_>>()
        .join("/");
    let out = crate::pathnorm::normalize(&joined).unwrap_or(joined);
    (out != path).then_some(out)
}

/// The policy that governs this request: for each spelling of its path (as
/// received, and [`spellings`]), the first rule in file order that covers it (else
/// `default`), and of those the strictest. So another spelling can only tighten:
/// an application that routes `/secure/;x/public` or `/secure/publıc` as
/// `/secure/public` gets that path's rule if it is stricter, and the rule of the
/// path as received otherwise.
///
/// A demanding rule written for a directory (`/secure/`) also protects the
/// directory's bare name (`/secure`, and `/secure.json`: see [`bare_name_ends`]),
/// which applications commonly serve, redirect or route to the same handler: when
/// such a rule exists, `/secure/` is judged as one more spelling of those paths. As
/// another spelling, it only ever tightens.
pub fn policy_for(
    rules: &[Rule],
    default: Policy,
    req: &Request<'_>,
    subject: &Subject<'_>,
) -> Policy {
    with_short_names(rules, req, |req, others| {
        with_method_variants(req, |req| judged(rules, default, req, subject, others))
    })
}

/// The request judged as it is, and as each reading of its path through IIS short
/// names ([`short_name_readings`]), the strictest answer counting. `judge` gets each
/// path's [`spellings`], made once per path (every method variant shares them).
fn with_short_names(
    rules: &[Rule],
    req: &Request<'_>,
    judge: impl Fn(&Request<'_>, &[String]) -> Policy,
) -> Policy {
    // The usual path has no other spelling and no short name: judged as it is.
    if !may_read_otherwise(req.path) {
        return judge(req, &[]);
    }
    let others = spellings(req.path);
    short_name_readings(rules, req.host, req.path, &others)
        .iter()
        .fold(judge(req, &others), |p, path| {
            let req = Request {
                path: path.as_str(),
                ..*req
            };
            p.max(judge(&req, &spellings(path)))
        })
}

/// Windows servers with 8.3 names (NTFS short names, on by default on system
/// volumes) serve `/ADMINI~1/x` from `/administration/x`. A path segment shaped like
/// a short name (up to six characters, `~`, digits, perhaps `.EXT`) is also read as
/// the segment, at the same place, of each demanding rule whose name it could be
/// short for ([`short_name_of`]). Read in the path and in its other spellings too
/// (`%257E`, a trailing blank or `::$DATA` after the number: `others` are the
/// path's [`spellings`]). Only tightens; nothing to do when no spelling holds a `~`,
/// and the work is bounded for any path: per
/// rule, only the segments with a `~` above the rule's depth are looked at, and at
/// most [`MAX_SHORT_READINGS`] readings are judged.
fn short_name_readings(rules: &[Rule], host: &str, path: &str, others: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for candidate in std::iter::once(path).chain(others.iter().map(String::as_str)) {
        if memchr::memchr(b'~', candidate.as_bytes()).is_none() {
            continue;
        }
        let segments: Vec<&str> = candidate.split('/').collect();
        let tildes: Vec<usize> = (0..segments.len())
            .filter(|&i| segments[i].contains('~'))
            .collect();
        for r in rules
            .iter()
            .filter(|r| r.policy != Policy::Bypass && r.host.as_deref().is_none_or(|h| h == host))
        {
            let last = memchr::memchr_iter(b'/', r.path.as_bytes()).count();
            let mut read: Option<Vec<&str>> = None;
            let mut long = r.path.split('/').enumerate();
            for &i in tildes.iter().take_while(|&&i| i <= last) {
                let Some((_, l)) = long.find(|&(j, _)| j == i) else {
                    break;
                };
                if short_name_of(segments[i], l, i == last) {
                    read.get_or_insert_with(|| segments.clone())[i] = l;
                }
            }
            if let Some(read) = read {
                let read = read.join("/");
                if !out.contains(&read) {
                    out.push(read);
                    if out.len() >= MAX_SHORT_READINGS {
                        return out;
                    }
                }
            }
        }
    }
    out
}

/// Could `path` have other [`spellings`] or [`short_name_readings`]? Only through
/// one of these bytes: `%` (escapes), `;` (parameters), `.`, blank, `:` and `\`
/// (Windows readings), `~` (short names), or one that isn't ASCII. One pass over the
/// path, so that a plain one (`/app/items/42`) costs nothing more (issue #11).
fn may_read_otherwise(path: &str) -> bool {
    path.bytes()
        .any(|b| matches!(b, b'%' | b';' | b'.' | b' ' | b':' | b'\\' | b'~') || !b.is_ascii())
}

/// At most this many readings through short names are judged for one request.
const MAX_SHORT_READINGS: usize = 8;

/// Could `seg` be the 8.3 short name of a name starting with `long` (a rule's
/// segment)? A short name is the first (up to six) characters of the long name
/// without its dots and blanks, `~`, a number, and perhaps an extension; compared
/// without regard to case. A rule matches by prefix, so its `last` segment may be
/// the start of a longer name, or shorter than the six characters.
fn short_name_of(seg: &str, long: &str, last: bool) -> bool {
    let Some((stem, rest)) = seg.split_once('~') else {
        return false;
    };
    let number = rest.split('.').next().unwrap_or_default();
    if stem.is_empty()
        || stem.chars().count() > 6
        || number.is_empty()
        || !number.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    // (Characters a short name can't hold are `_` in it: `my+admin` is `MY_ADM~1`.)
    let long: String = long
        .chars()
        .filter(|c| !matches!(c, '.' | ' '))
        .map(|c| match c {
            '+' | ',' | ';' | '=' | '[' | ']' => '_',
            c => c,
        })
        .collect::<String>()
        .to_lowercase();
    let stem = stem.to_lowercase();
    !long.is_empty() && (long.starts_with(&stem) || (last && stem.starts_with(&long)))
}

/// The methods a request is judged as besides its own, the strictest answer counting:
/// its name upper-cased (PHP and .NET frameworks read `get` as `GET`) and, for
/// `HEAD`, `GET` (frameworks answer `HEAD` with the `GET` handler), and the method a
/// `POST`'s query overrides it with (see [`method_override`]). So a rule on `GET`
/// reaches `get` and `HEAD` only to tighten; a plain `GET` is judged once.
fn with_method_variants(req: &Request<'_>, judge: impl Fn(&Request<'_>) -> Policy) -> Policy {
    let m = req.method.as_str();
    let upper = m
        .bytes()
        .any(|b| b.is_ascii_lowercase())
        .then(|| http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
        .flatten();
    let get = m.eq_ignore_ascii_case("HEAD").then_some(http::Method::GET);
    // An override to `HEAD` is also a `GET` (the overrides are upper-cased already).
    let overridden_get = req
        .overridden
        .contains(&http::Method::HEAD)
        .then_some(http::Method::GET);
    [upper, get, overridden_get]
        .iter()
        .flatten()
        .chain(req.overridden)
        .fold(judge(req), |p, method| {
            p.max(judge(&Request { method, ..*req }))
        })
}

/// [`policy_for`] for the request's own method.
fn judged(
    rules: &[Rule],
    default: Policy,
    req: &Request<'_>,
    subject: &Subject<'_>,
    others: &[String],
) -> Policy {
    let first = |spelling: &str| {
        rules
            .iter()
            .find(|r| r.matches(req, subject, spelling))
            .map_or(default, |r| r.policy)
    };
    let all = || std::iter::once(req.path).chain(others.iter().map(String::as_str));
    let mut policy = others.iter().fold(first(req.path), |p, s| p.max(first(s)));
    for s in all() {
        for end in bare_name_ends(s).into_iter().flatten() {
            if names_directory(rules, req.host, &s[..end]) {
                policy = policy.max(first(&format!("{}/", &s[..end])));
            }
        }
    }
    policy
}

/// The rules indexed by host and path prefix: the same answer as [`policy_for`]
/// (first match wins, in file order), without trying every rule. Each rule sits in
/// a byte trie of its lower-cased path, under its host (or under "any host"); a
/// request walks the trie along its lower-cased path (and along its other
/// spellings), collecting the rules whose path is a prefix, then tries just
/// those, in file order, with the full check of [`Rule::matches`].
#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    any_host: Trie,
    // (foldhash: a host is hashed on every request; SipHash cost more than the walk.)
    by_host: std::collections::HashMap<String, Trie, foldhash::fast::RandomState>,
}

#[derive(Debug, Clone, Default)]
struct Trie {
    /// Node 0 is the root (the empty prefix).
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// (byte, child node), sorted by byte.
    children: Vec<(u8, u32)>,
    /// Rules (by position in the list) whose lower-cased path ends here.
    rules: Vec<u32>,
}

impl Trie {
    fn insert(&mut self, path: &str, rule: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        let mut at = 0usize;
        for b in path.bytes().map(|b| b.to_ascii_lowercase()) {
            at = match self.nodes[at].children.binary_search_by_key(&b, |c| c.0) {
                Ok(i) => self.nodes[at].children[i].1 as usize,
                Err(i) => {
                    let n = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[at].children.insert(i, (b, n as u32));
                    n
                }
            };
        }
        self.nodes[at].rules.push(rule);
    }

    /// Adds to `out` every rule whose path is a case-insensitive prefix of `path`, and
    /// the rules naming a directory at one of `path`'s [`bare_name_ends`]; returns, for
    /// each of those ends, whether a demanding rule names that directory.
    fn prefixes_of(&self, path: &str, rules: &[Rule], out: &mut Vec<u32>) -> [bool; 2] {
        let mut named = [false; 2];
        let Some(root) = self.nodes.first() else {
            return named;
        };
        out.extend_from_slice(&root.rules);
        let ends = bare_name_ends(path);
        // At a directory's bare name: the rules whose path is it and a `/`.
        let look = |at: usize, out: &mut Vec<u32>| -> bool {
            let node = &self.nodes[at];
            let Ok(i) = node.children.binary_search_by_key(&b'/', |c| c.0) else {
                return false;
            };
            let dir = &self.nodes[node.children[i].1 as usize].rules;
            out.extend_from_slice(dir);
            dir.iter().any(|&r| {
                rules
                    .get(r as usize)
                    .is_some_and(|r| r.policy != Policy::Bypass)
            })
        };
        let mut at = 0usize;
        for (k, b) in path.bytes().map(|b| b.to_ascii_lowercase()).enumerate() {
            if ends[1] == Some(k) {
                named[1] = look(at, out);
            }
            let node = &self.nodes[at];
            match node.children.binary_search_by_key(&b, |c| c.0) {
                Ok(i) => at = node.children[i].1 as usize,
                Err(_) => return named,
            }
            out.extend_from_slice(&self.nodes[at].rules);
        }
        if ends[0].is_some() {
            named[0] = look(at, out);
        }
        named
    }
}

impl RuleIndex {
    pub fn new(rules: &[Rule]) -> RuleIndex {
        let mut ix = RuleIndex::default();
        for (i, r) in rules.iter().enumerate() {
            let trie = match &r.host {
                Some(h) => ix.by_host.entry(h.clone()).or_default(),
                None => &mut ix.any_host,
            };
            trie.insert(&r.path, i as u32);
        }
        ix
    }

    /// [`policy_for`] over the same `rules` this index was built from.
    pub fn policy_for(
        &self,
        rules: &[Rule],
        default: Policy,
        req: &Request<'_>,
        subject: &Subject<'_>,
    ) -> Policy {
        // No rule for this host at all (a site left to `default_policy`, the usual
        // legacy app): every spelling and method variant would find no candidate and
        // get the default, so none is made (issue #11).
        if self.any_host.nodes.is_empty()
            && (self.by_host.is_empty() || !self.by_host.contains_key(req.host))
        {
            return default;
        }
        with_short_names(rules, req, |req, others| {
            with_method_variants(req, |req| self.judged(rules, default, req, subject, others))
        })
    }

    fn judged(
        &self,
        rules: &[Rule],
        default: Policy,
        req: &Request<'_>,
        subject: &Subject<'_>,
        others: &[String],
    ) -> Policy {
        let mut candidates: Vec<u32> = Vec::new();
        let all = || std::iter::once(req.path).chain(others.iter().map(String::as_str));
        // Spellings (by position in `all`) with a directory named at a bare-name end:
        // bits `2i` and `2i + 1` for the two ends of spelling `i` (a mask, not an array:
        // the usual request has none, and a zero is the cheapest answer to look at).
        const _: () = assert!(2 * (MAX_SPELLINGS + 1) <= 128);
        let mut named: u128 = 0;
        let host = (!self.by_host.is_empty())
            .then(|| self.by_host.get(req.host))
            .flatten();
        for trie in std::iter::once(&self.any_host).chain(host) {
            for (i, s) in all().enumerate().take(MAX_SPELLINGS + 1) {
                let found = trie.prefixes_of(s, rules, &mut candidates);
                named |= (u128::from(found[0]) | u128::from(found[1]) << 1) << (2 * i);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        // As [`policy_for`]: the strictest of the first matches of every spelling.
        let first = |spelling: &str| {
            candidates
                .iter()
                .filter_map(|&i| rules.get(i as usize))
                .find(|r| r.matches(req, subject, spelling))
                .map_or(default, |r| r.policy)
        };
        let mut policy = others.iter().fold(first(req.path), |p, s| p.max(first(s)));
        if named == 0 {
            return policy;
        }
        for (i, s) in all().enumerate().take(MAX_SPELLINGS + 1) {
            for (j, end) in bare_name_ends(s).into_iter().enumerate() {
                if let (true, Some(end)) = (named >> (2 * i + j) & 1 == 1, end) {
                    policy = policy.max(first(&format!("{}/", &s[..end])));
                }
            }
        }
        policy
    }
}

pub fn decide(policy: Policy, subject: &Subject<'_>) -> Decision {
    match (policy, subject.factors) {
        (Policy::Bypass, _) => Decision::Allow,
        (Policy::Deny, _) => Decision::Deny,
        (_, Factors::None) => Decision::Login,
        (_, Factors::PendingSecond) => Decision::SecondFactor,
        (_, Factors::PendingEnrol) => Decision::Enrol,
        (Policy::OneFactor, _) => Decision::Allow,
        (Policy::TwoFactor, Factors::Two) => Decision::Allow,
        (Policy::TwoFactor, Factors::One) => Decision::SecondFactor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, policy: Policy) -> Rule {
        Rule {
            host: None,
            path: path.into(),
            methods: vec![],
            groups: vec![],
            networks: vec![],
            policy,
        }
    }

    fn run(
        rules: &[Rule],
        path: &str,
        method: &str,
        client: &str,
        factors: Factors,
        groups: &[String],
    ) -> Decision {
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let req = Request {
            host: "app.example.com",
            path,
            method: &method,
            client: client.parse().unwrap(),
            overridden: &[],
        };
        let subject = Subject { factors, groups };
        let linear = policy_for(rules, Policy::OneFactor, &req, &subject);
        let indexed = RuleIndex::new(rules).policy_for(rules, Policy::OneFactor, &req, &subject);
        assert_eq!(linear, indexed, "index and scan disagree on {path}");
        decide(linear, &subject)
    }

    #[test]
    fn a_pending_sign_in_proves_nothing_but_bypass() {
        let admins = vec!["admins".to_string()];
        let rules = vec![
            rule("/public/", Policy::Bypass),
            Rule {
                groups: admins.clone(),
                ..rule("/admin", Policy::Bypass)
            },
            rule("/secure/", Policy::TwoFactor),
            rule("/no/", Policy::Deny),
        ];
        use Factors::{PendingEnrol, PendingSecond};
        for (path, pending, want) in [
            ("/public/x", PendingSecond, Decision::Allow),
            ("/app", PendingSecond, Decision::SecondFactor),
            ("/secure/x", PendingSecond, Decision::SecondFactor),
            ("/no/x", PendingSecond, Decision::Deny),
            ("/app", PendingEnrol, Decision::Enrol),
            ("/secure/x", PendingEnrol, Decision::Enrol),
            // Group rules need a finished sign-in.
            ("/admin", PendingSecond, Decision::SecondFactor),
        ] {
            assert_eq!(
                run(&rules, path, "GET", "192.0.2.1", pending, &admins),
                want,
                "{path} {pending:?}"
            );
        }
    }

    /// Found in review: another spelling only ever tightens. An earlier, looser rule
    /// that covers only the other spelling doesn't win over the rule of the path as
    /// received.
    #[test]
    fn another_spelling_never_loosens() {
        let rules = vec![
            rule("/secure/public", Policy::OneFactor),
            rule("/secure/", Policy::TwoFactor),
        ];
        for path in ["/secure/publ%C4%B1c", "/secure/;x/public", "/secure/public"] {
            let want = if path == "/secure/public" {
                Decision::Allow
            } else {
                Decision::SecondFactor
            };
            assert_eq!(
                run(&rules, path, "GET", "192.0.2.1", Factors::One, &[]),
                want,
                "{path}"
            );
        }
        // An unmatched path under a strict default stays strict.
        let rules = vec![rule("/status", Policy::OneFactor)];
        let method = http::Method::GET;
        let req = Request {
            host: "app.example.com",
            path: "/%C5%BFtatus",
            method: &method,
            client: "192.0.2.1".parse().unwrap(),
            overridden: &[],
        };
        let subject = Subject {
            factors: Factors::Two,
            groups: &[],
        };
        assert_eq!(
            policy_for(&rules, Policy::Deny, &req, &subject),
            Policy::Deny
        );
        assert_eq!(
            RuleIndex::new(&rules).policy_for(&rules, Policy::Deny, &req, &subject),
            Policy::Deny
        );
    }

    /// Found by the attack pass: an application comparing paths by Unicode case rules
    /// (Java's `equalsIgnoreCase`) reads `/ſecure` as `/secure`.
    #[test]
    fn spellings_an_application_may_decode_or_fold_meet_the_rules_that_tighten() {
        let rules = vec![
            rule("/public/", Policy::Bypass),
            rule("/secure/", Policy::TwoFactor),
            rule("/admin", Policy::Deny),
            rule("/ops", Policy::Deny),
            rule("/kiosk", Policy::Deny),
            rule("/staff", Policy::Deny),
            rule("/%C3%BCber-geheim/", Policy::Deny),
        ];
        for (path, factors, want) in [
            ("/%C5%BFecure/x", Factors::One, Decision::SecondFactor),
            ("/SECURE/x", Factors::One, Decision::SecondFactor),
            ("/ADM%C4%B0N", Factors::Two, Decision::Deny),
            ("/adm%C4%B1n/x", Factors::Two, Decision::Deny),
            ("/op%C5%BF;x=1", Factors::Two, Decision::Deny),
            ("/%E2%84%AAiosk", Factors::Two, Decision::Deny),
            // Ligatures, fullwidth forms, dot segments that appear (second attack pass).
            ("/%EF%AC%86aff", Factors::Two, Decision::Deny),
            ("/%EF%BD%93ecure/x", Factors::One, Decision::SecondFactor),
            (
                "/public/%EF%BC%8E%EF%BC%8E/secure/x",
                Factors::One,
                Decision::SecondFactor,
            ),
            ("/secure%3B/x", Factors::One, Decision::SecondFactor),
            // Bytes that aren't UTF-8, dropped by lenient decoders.
            ("/ad%80min", Factors::Two, Decision::Deny),
            (
                "/public/.%80./secure/x",
                Factors::One,
                Decision::SecondFactor,
            ),
            ("/pub%80lic/x", Factors::None, Decision::Login),
            ("/%C3%BCber-geheim", Factors::Two, Decision::Deny),
            // IIS short names of a demanding rule's segment.
            ("/SECURE~1/x", Factors::One, Decision::SecondFactor),
            ("/secure~12.DIR/x", Factors::One, Decision::SecondFactor),
            ("/ADMIN~1", Factors::Two, Decision::Deny),
            ("/STAFF~1.HTM", Factors::Two, Decision::Deny),
            ("/public/x~1", Factors::None, Decision::Allow),
            ("/PUBLIC~1/x", Factors::None, Decision::Login),
            ("/other~1/x", Factors::One, Decision::Allow),
            // ...in other spellings too (review): a blank or stream after the number,
            // an escaped `~`.
            ("/SECURE~1%20/x", Factors::One, Decision::SecondFactor),
            (
                "/SECURE~1::$INDEX_ALLOCATION/x",
                Factors::One,
                Decision::SecondFactor,
            ),
            ("/SECURE%257E1/x", Factors::One, Decision::SecondFactor),
            ("/SECURE%7E1/x", Factors::One, Decision::SecondFactor),
            ("/SECURE~1;a/x", Factors::One, Decision::SecondFactor),
            ("/SEC%C2%ADURE~1/x", Factors::One, Decision::SecondFactor),
            ("/SECURE%EF%BD%9E1/x", Factors::One, Decision::SecondFactor),
            ("/%EF%BC%B3ECURE~1/x", Factors::One, Decision::SecondFactor),
            (
                "/SECURE~1:$I30:$INDEX_ALLOCATION/x",
                Factors::One,
                Decision::SecondFactor,
            ),
            // Invisible characters an application may drop.
            ("/se%C2%ADcure/x", Factors::One, Decision::SecondFactor),
            ("/ad%E2%80%8Bmin", Factors::Two, Decision::Deny),
            ("/%EF%BB%BFstaff", Factors::Two, Decision::Deny),
            ("/pub%C2%ADlic/x", Factors::None, Decision::Login),
            // Other non-ASCII letters are just themselves.
            ("/adm%C3%AFn", Factors::One, Decision::Allow),
            // Loosening stays exact: a look-alike of a bypass path isn't bypassed.
            ("/public/x", Factors::None, Decision::Allow),
            ("/pub%C4%B1ic/x", Factors::None, Decision::Login),
        ] {
            assert_eq!(
                run(&rules, path, "GET", "192.0.2.1", factors, &[]),
                want,
                "{path}"
            );
        }
        // A deny rule written with a non-ASCII letter (`/über-geheim/`) holds for
        // every spelling of the letter: another case, decomposed, escaped at two
        // depths (attack pass), and with a blank, a `%` that escapes nothing, a control
        // character or a decoded `?` later in the path (reviews).
        for path in [
            "/%C3%9CBER-GEHEIM/x",
            "/%C3%9Cber-geheim/a%20b",
            "/%C3%9Cber-geheim/100%25",
            "/u%CC%88ber-geheim/%25",
            "/%C3%9Cber-geheim/a%20b%25",
            "/%C3%9Cber-geheim/x%3F%25",
            "/%C3%9Cber-geheim/%2509",
            "/%C3%9Cber-geheim/%2500",
            "/%25C3%BCber-geheim/x",
            "/%C3%25BCber-geheim/x",
            "/%C3%259Cber-geheim/x",
            "/u%25CC%88ber-geheim/x",
            "/u%CC%2588ber-geheim/x",
            "/%25C3%2525BCber-geheim/x",
            "/%25C3%BCber-geheim/a%2520b",
        ] {
            let got = run(&rules, path, "GET", "192.0.2.1", Factors::Two, &[]);
            assert_eq!(got, Decision::Deny, "{path}");
        }
    }

    proptest::proptest! {
        /// The fast path skips nothing: a path without the bytes
        /// [`may_read_otherwise`] looks for has no other spelling and no short-name
        /// reading (printable ASCII and a few non-ASCII characters, every rule shape).
        #[test]
        fn a_path_without_those_bytes_reads_only_as_itself(
            path in "/[ -~\u{e9}\u{ff5e}]{0,24}",
        ) {
            let rules = vec![
                rule("/administration/", Policy::Deny),
                rule("/secure/", Policy::TwoFactor),
            ];
            if !may_read_otherwise(&path) {
                proptest::prop_assert!(spellings(&path).is_empty(), "{}", path);
                proptest::prop_assert!(
                    short_name_readings(&rules, "app.test", &path, &[]).is_empty(),
                    "{}",
                    path
                );
            }
        }
    }

    /// Short names: a rule's middle segment is a whole name (`/a/x` isn't
    /// `/APPLE~1/x`), its last may be the start of one; a hostile path with a `~` in
    /// every segment, before ten thousand rules, yields a bounded number of readings.
    #[test]
    fn short_name_readings_are_exact_enough_and_bounded() {
        let readings =
            |rules: &[Rule], path: &str| short_name_readings(rules, "h", path, &spellings(path));
        let rules = vec![rule("/a/x", Policy::Deny), rule("/appl", Policy::Deny)];
        assert_eq!(readings(&rules, "/APPLE~1/x"), ["/appl/x"]);
        assert!(readings(&rules, "/BANANA~1/x").is_empty());
        let plus = vec![rule("/a+b,c=d/", Policy::Deny)];
        assert_eq!(readings(&plus, "/A_B_C_~1/x"), ["/a+b,c=d/x"]);
        assert_eq!(readings(&rules, "/A~1/x"), ["/a/x", "/appl/x"]);
        let many: Vec<Rule> = (0..10_000)
            .map(|i| rule(&format!("/a{i}/b{i}/"), Policy::Deny))
            .collect();
        let hostile = "/a~1".repeat(2000);
        let readings = readings(&many, &hostile);
        assert_eq!(readings.len(), MAX_SHORT_READINGS);
        assert!(readings.iter().all(|r| r.len() < hostile.len() + 32));
    }

    #[test]
    fn table() {
        let admins = vec!["admins".to_string()];
        let rules = vec![
            Rule {
                host: Some("other.example.com".into()),
                ..rule("/", Policy::Deny)
            },
            rule("/public/", Policy::Bypass),
            rule("/status", Policy::Bypass),
            Rule {
                methods: vec![http::Method::GET],
                ..rule("/readonly/", Policy::Bypass)
            },
            Rule {
                networks: vec!["10.0.0.0/8".parse().unwrap()],
                ..rule("/intranet/", Policy::Bypass)
            },
            Rule {
                groups: admins.clone(),
                ..rule("/admin/", Policy::TwoFactor)
            },
            rule("/admin/", Policy::Deny),
            rule("/secure/", Policy::TwoFactor),
        ];
        use Decision::*;
        use Factors::{None as No, One, Two};
        type Case<'a> = (&'a str, &'a str, &'a str, Factors, &'a [String], Decision);
        const IP: &str = "1.2.3.4";
        let cases: &[Case<'_>] = &[
            ("/public/x", "GET", "1.2.3.4", No, &[], Allow),
            ("/PUBLIC/x", "GET", "1.2.3.4", No, &[], Login),
            ("/public;x/y", "GET", "1.2.3.4", No, &[], Login),
            // A bypass prefix is whole segments: /status, /status/x; not /statusboard.
            ("/status", "GET", "1.2.3.4", No, &[], Allow),
            ("/status/health", "GET", "1.2.3.4", No, &[], Allow),
            ("/statusboard", "GET", "1.2.3.4", No, &[], Login),
            ("/status.json", "GET", "1.2.3.4", No, &[], Login),
            ("/status;x", "GET", "1.2.3.4", No, &[], Login),
            ("/readonly/a", "GET", "1.2.3.4", No, &[], Allow),
            ("/readonly/a", "POST", "1.2.3.4", No, &[], Login),
            ("/intranet/a", "GET", "10.1.2.3", No, &[], Allow),
            ("/intranet/a", "GET", "11.1.2.3", No, &[], Login),
            ("/admin/x", "GET", "1.2.3.4", No, &[], Deny),
            ("/admin/x", "GET", "1.2.3.4", One, &[], Deny),
            ("/admin/x", "GET", "1.2.3.4", One, &admins, SecondFactor),
            ("/admin/x", "GET", "1.2.3.4", Two, &admins, Allow),
            ("/ADMIN/x", "GET", "1.2.3.4", Two, &[], Deny),
            ("/admin;x/", "GET", "1.2.3.4", Two, &[], Deny),
            ("/secure/a", "GET", "1.2.3.4", No, &[], Login),
            ("/secure/a", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/secure/a", "GET", "1.2.3.4", Two, &[], Allow),
            ("/other", "GET", "1.2.3.4", No, &[], Login),
            ("/other", "GET", "1.2.3.4", One, &[], Allow),
            // A demanding rule on a directory covers its bare name too; a bypass doesn't.
            ("/secure", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/SECURE", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/secure;x", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/securex", "GET", "1.2.3.4", One, &[], Allow),
            ("/admin", "GET", "1.2.3.4", Two, &[], Deny),
            ("/public", "GET", "1.2.3.4", No, &[], Login),
            // ... and its bare name with a format suffix (Rails, Spring).
            ("/secure.json", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/SECURE.xml", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/secure.json/x", "GET", "1.2.3.4", One, &[], Allow),
            ("/.secure", "GET", "1.2.3.4", One, &[], Allow),
            // An escaped `;` that, once decoded and dropped with its parameter, leaves
            // a dot segment: judged where it leads.
            ("/public/..%3B/x", "GET", "1.2.3.4", No, &[], Login),
            ("/public/%2e%2e%3b/x", "GET", "1.2.3.4", No, &[], Login),
            ("/x/..%3b/admin/", "GET", "1.2.3.4", Two, &[], Deny),
            ("/x/..%3B/secure/a", "GET", IP, One, &[], SecondFactor),
            // Windows servers' reading: trailing dots and blanks, NTFS streams.
            ("/secure./a", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/secure%20/a", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/secure::$DATA/a", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/public/..%20/x", "GET", "1.2.3.4", No, &[], Login),
            ("/public/a.", "GET", "1.2.3.4", No, &[], Allow),
            ("/public/Special:Login", "GET", "1.2.3.4", No, &[], Allow),
            // (second attack pass) NTFS directory streams, servlet parameters and the
            // Windows reading together, escapes decoded twice or three times.
            ("/admin::$INDEX_ALLOCATION/x", "GET", IP, Two, &[], Deny),
            ("/admin:$i30:$INDEX_ALLOCATION/x", "GET", IP, Two, &[], Deny),
            ("/admin%20;x/a", "GET", "1.2.3.4", Two, &[], Deny),
            ("/admin.;x/a", "GET", "1.2.3.4", Two, &[], Deny),
            ("/secure::$DATA;x/y", "GET", IP, One, &[], SecondFactor),
            ("/public/%252e%252e%252fsecure/x", "GET", IP, No, &[], Login),
            ("/public/..%255csecure/x", "GET", "1.2.3.4", No, &[], Login),
            ("/secure%252f", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/%252573ecure/x", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/secure%3f", "GET", "1.2.3.4", One, &[], SecondFactor),
            // Overlong UTF-8 escaped twice (review): read as a lenient decoder does.
            (
                "/public/%25C0%25AE%25C0%25AE/secure/x",
                "GET",
                IP,
                No,
                &[],
                Login,
            ),
            ("/secure%3F.json", "GET", "1.2.3.4", One, &[], SecondFactor),
            ("/secure%23x", "GET", "1.2.3.4", One, &[], SecondFactor),
            // A demanding rule's methods in any letter case, and GET's for HEAD; a
            // bypass rule's exactly.
            ("/readonly/a", "get", "1.2.3.4", No, &[], Login),
            ("/readonly/a", "HEAD", "1.2.3.4", No, &[], Login),
        ];
        for (path, method, client, factors, groups, want) in cases {
            assert_eq!(
                run(&rules, path, method, client, *factors, groups),
                *want,
                "{method} {path} from {client} {factors:?} {groups:?}"
            );
        }
    }

    /// The policy for `method path` on app.example.com with `factors` and `overridden`
    /// methods, after checking that the linear scan and the index agree on it.
    fn agreed(
        rules: &[Rule],
        default: Policy,
        (method, path, overridden): (&http::Method, &str, &[http::Method]),
        factors: Factors,
    ) -> Policy {
        let req = Request {
            host: "app.example.com",
            path,
            method,
            client: [192, 0, 2, 1].into(),
            overridden,
        };
        let subject = Subject {
            factors,
            groups: &[],
        };
        let linear = policy_for(rules, default, &req, &subject);
        let indexed = RuleIndex::new(rules).policy_for(rules, default, &req, &subject);
        assert_eq!(
            linear, indexed,
            "index and scan disagree on {method} {path}"
        );
        linear
    }

    #[test]
    fn demanding_methods_cover_other_cases_and_head() {
        let rules = vec![Rule {
            methods: vec![http::Method::GET, http::Method::POST],
            ..rule("/m/", Policy::Deny)
        }];
        for m in ["GET", "get", "Get", "post", "HEAD", "head"] {
            assert_eq!(
                run(&rules, "/m/x", m, "1.2.3.4", Factors::Two, &[]),
                Decision::Deny,
                "{m}"
            );
        }
        for m in ["PUT", "DELETE", "OPTIONS"] {
            assert_eq!(
                run(&rules, "/m/x", m, "1.2.3.4", Factors::Two, &[]),
                Decision::Allow,
                "{m}"
            );
        }
        // Only to tighten: a laxer rule on GET doesn't take `HEAD` or `get` away from
        // the stricter rule that follows (review).
        let rules = vec![
            Rule {
                methods: vec![http::Method::GET],
                ..rule("/api/", Policy::OneFactor)
            },
            rule("/api/", Policy::Deny),
        ];
        let api = |m: &str| run(&rules, "/api/x", m, "1.2.3.4", Factors::Two, &[]);
        assert_eq!(api("GET"), Decision::Allow);
        for m in ["HEAD", "get", "head"] {
            assert_eq!(api(m), Decision::Deny, "{m}");
        }
    }

    #[test]
    fn a_post_is_also_judged_as_the_method_its_query_names() {
        let rules = vec![Rule {
            methods: vec![http::Method::DELETE],
            ..rule("/del/", Policy::Deny)
        }];
        let post = http::Method::POST;
        let judge = |query: Option<&str>| {
            let overridden = method_override(&post, query);
            agreed(
                &rules,
                Policy::OneFactor,
                (&post, "/del/x", &overridden),
                Factors::Two,
            )
        };
        assert_eq!(judge(None), Policy::OneFactor);
        assert_eq!(judge(Some("a=1")), Policy::OneFactor);
        for q in [
            "_method=DELETE",
            "x=1&_method=delete",
            "_method=%44ELETE",
            "_method=+delete",
            "%5Fmethod=DELETE",
            "_method=GET&_method=DELETE",
            ".method=DELETE",
            " _method=DELETE",
        ] {
            assert_eq!(judge(Some(q)), Policy::Deny, "{q}");
        }
        // Only a POST (in any letter case) is overridden; nothing odd errs.
        assert!(method_override(&http::Method::GET, Some("_method=DELETE")).is_empty());
        let lower = http::Method::from_bytes(b"post").unwrap();
        assert_eq!(
            method_override(&lower, Some("_method=DELETE")),
            [http::Method::DELETE]
        );
        for q in ["_method=%FF", "_method=", "_method=%00", "_method", "&&=&"] {
            let _ = method_override(&http::Method::POST, Some(q));
        }
        // An override to HEAD is judged as GET too.
        let rules = vec![Rule {
            methods: vec![http::Method::GET],
            ..rule("/g/", Policy::Deny)
        }];
        let overridden = method_override(&post, Some("_method=head"));
        let got = agreed(
            &rules,
            Policy::Bypass,
            (&post, "/g/x", &overridden),
            Factors::Two,
        );
        assert_eq!(got, Policy::Deny);
    }

    /// A spelling normalised again is judged besides the one it came from, not
    /// instead of it (review: `/x/y/../admin` and `/x/admin` both count).
    #[test]
    fn renormalised_spellings_add_to_the_others() {
        let rules = vec![
            rule("/x/y/%EF%BC%8E", Policy::OneFactor),
            rule("/x/y/", Policy::TwoFactor),
        ];
        let path = "/x/y;p%20q/%EF%BC%8E%EF%BC%8E/admin";
        let got = agreed(
            &rules,
            Policy::Bypass,
            (&http::Method::GET, path, &[]),
            Factors::One,
        );
        assert_eq!(got, Policy::TwoFactor);
    }

    /// A directory rule on the bare name is one more spelling: it tightens, never
    /// loosens what the rules in file order (or the default) give the bare name.
    #[test]
    fn directory_rules_only_tighten() {
        let check = |rules: &[Rule], default: Policy, path: &str, want: Policy| {
            let got = agreed(
                rules,
                default,
                (&http::Method::GET, path, &[]),
                Factors::One,
            );
            assert_eq!(got, want, "{path}");
        };
        let docs = [
            rule("/docs/", Policy::OneFactor),
            rule("/", Policy::TwoFactor),
        ];
        check(&docs, Policy::Bypass, "/docs", Policy::TwoFactor);
        check(&docs, Policy::Bypass, "/docs/x", Policy::OneFactor);
        let app = [rule("/app/", Policy::OneFactor)];
        check(&app, Policy::Deny, "/app", Policy::Deny);
        check(&app, Policy::Bypass, "/app", Policy::OneFactor);
        check(&app, Policy::Bypass, "/app.json", Policy::OneFactor);
        // Only a demanding rule names a directory: a bypass on `/public/` and another
        // on `/public.json` leave `/public.json` open.
        let public = [
            rule("/public.json", Policy::Bypass),
            rule("/public/", Policy::Bypass),
            rule("/", Policy::OneFactor),
        ];
        check(&public, Policy::Deny, "/public.json", Policy::Bypass);
        // A rule on another host names nothing here.
        let other = [Rule {
            host: Some("other.example.com".into()),
            ..rule("/app/", Policy::Deny)
        }];
        check(&other, Policy::Bypass, "/app", Policy::Bypass);
    }

    #[test]
    fn host_rule_applies_to_its_host_only() {
        let rules = vec![Rule {
            host: Some("app.example.com".into()),
            ..rule("/", Policy::Deny)
        }];
        assert_eq!(
            run(&rules, "/x", "GET", "1.2.3.4", Factors::Two, &[]),
            Decision::Deny
        );
        let rules = vec![Rule {
            host: Some("b.example.com".into()),
            ..rule("/", Policy::Deny)
        }];
        assert_eq!(
            run(&rules, "/x", "GET", "1.2.3.4", Factors::Two, &[]),
            Decision::Allow
        );
    }

    mod index {
        use super::super::*;
        use proptest::prelude::*;

        // Small alphabets, so that rules and requests overlap often: shared
        // prefixes, case differences, `;parameters`, partial segments.
        fn path() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("/"),
                    Just("a"),
                    Just("A"),
                    Just("b"),
                    Just(";x"),
                    Just("/a"),
                    Just("/B"),
                    Just("i"),
                    Just("%C4%B1"),
                    Just("%C4%B0"),
                    Just("s"),
                    Just("%C5%BF"),
                    Just("%E2%84%AA"),
                    Just("%EF%BC%8F"),
                    Just("%3B"),
                    Just(".j"),
                    Just("."),
                    Just("/.."),
                    Just("%20"),
                    Just("::$DATA"),
                    Just("%2e"),
                    Just("~1"),
                ],
                0..6,
            )
            .prop_map(|parts| format!("/{}", parts.concat()))
        }

        fn rule() -> impl Strategy<Value = Rule> {
            (
                prop_oneof![
                    Just(None),
                    Just(Some("app.test".to_string())),
                    Just(Some("other.test".to_string()))
                ],
                path(),
                prop_oneof![Just(vec![]), Just(vec![http::Method::GET])],
                prop_oneof![Just(vec![]), Just(vec!["admins".to_string()])],
                prop_oneof![
                    Just(vec![]),
                    Just(vec!["10.0.0.0/8".parse::<IpNet>().unwrap()])
                ],
                prop_oneof![
                    Just(Policy::Bypass),
                    Just(Policy::OneFactor),
                    Just(Policy::TwoFactor),
                    Just(Policy::Deny)
                ],
            )
                .prop_map(|(host, path, methods, groups, networks, policy)| Rule {
                    host,
                    path,
                    methods,
                    groups,
                    networks,
                    policy,
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            /// First match wins, exactly as the linear scan.
            #[test]
            fn index_agrees_with_the_linear_scan(
                rules in proptest::collection::vec(rule(), 0..12),
                req_path in path(),
                host in prop_oneof![Just("app.test"), Just("other.test"), Just("x.test")],
                method in prop_oneof![Just("GET"), Just("POST"), Just("get"), Just("HEAD")],
                client in prop_oneof![Just("10.1.2.3"), Just("192.0.2.1")],
                factors in prop_oneof![Just(Factors::None), Just(Factors::One), Just(Factors::Two), Just(Factors::PendingSecond)],
                admin in any::<bool>(),
            ) {
                let method = http::Method::from_bytes(method.as_bytes()).unwrap();
                let groups = if admin { vec!["admins".to_string()] } else { vec![] };
                let req = Request { host, path: &req_path, method: &method, client: client.parse().unwrap(), overridden: &[] };
                let subject = Subject { factors, groups: &groups };
                let ix = RuleIndex::new(&rules);
                let got = policy_for(&rules, Policy::OneFactor, &req, &subject);
                prop_assert_eq!(ix.policy_for(&rules, Policy::OneFactor, &req, &subject), got);
                // Never looser than the rule before other spellings were judged apart
                // (the first rule covering the path as received or without
                // `;parameters`), nor than the path as received alone.
                let before = rules
                    .iter()
                    .find(|r| {
                        r.applies_to(&req, &subject)
                            && if r.policy == Policy::Bypass {
                                r.path_matches(&req_path, &req_path)
                            } else {
                                starts_with_ci(&req_path, &r.path)
                                    || starts_with_ci(&strip_params(&req_path), &r.path)
                            }
                    })
                    .map_or(Policy::OneFactor, |r| r.policy);
                prop_assert!(got >= before, "{:?} looser than {:?}", got, before);
                let as_received = rules
                    .iter()
                    .find(|r| r.matches(&req, &subject, &req_path))
                    .map_or(Policy::OneFactor, |r| r.policy);
                prop_assert!(got >= as_received);
            }
        }
    }
}
