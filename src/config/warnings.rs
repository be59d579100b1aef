//! Settings that are valid but probably not what was meant (`check-config`
//! prints them, `serve` logs them). Pure: reads the validated rules only.

use crate::policy::{Policy, Rule};

/// A `[[rule]]` with `groups` applies only to members of those groups; everyone
/// else falls through to the rules after it and then `access.default_policy`.
/// Unless something later denies the same requests, such a rule takes nothing
/// away from anyone outside the groups: it only changes what members need.
/// Warns for each groups-rule (policy other than `deny`) that no later rule
/// denies for everyone with the same or a covering host, path, methods and
/// networks, when `default_policy` isn't `deny` either.
pub fn rule_warnings(rules: &[Rule], default_policy: Policy) -> Vec<String> {
    let mut out = spelling_warnings(rules);
    if default_policy == Policy::Deny {
        return out;
    }
    for (i, r) in rules.iter().enumerate() {
        if r.groups.is_empty() || r.policy == Policy::Deny {
            continue;
        }
        if rules[i + 1..].iter().any(|d| denies_all_of(d, r)) {
            continue;
        }
        out.push(format!(
            "rule[{i}]: groups = {:?} with policy = \"{}\" restricts nothing for anyone else: \
             they fall through to the next rule or access.default_policy (\"{}\"); \
             add a later rule with the same host and path and policy = \"deny\"",
            r.groups,
            r.policy.as_str(),
            default_policy.as_str(),
        ));
    }
    out
}

/// Requests are compared with their non-ASCII letters in lower case and composed
/// (`Ü` as `ü`, `u` and a combining diaeresis as `ü`: see
/// [`crate::pathnorm::decoded_and_folded`]), so a rule path with non-ASCII letters
/// written otherwise (`/Über/`) misses them in that spelling: warned, with the
/// spelling to write.
fn spelling_warnings(rules: &[Rule]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(&r.path).collect();
        if decoded.is_ascii() {
            continue;
        }
        let folded = crate::pathnorm::decoded_and_folded(&r.path);
        let folded = crate::pathnorm::as_rule_path(&folded).unwrap_or_else(|| folded.into_owned());
        if folded != r.path {
            let readable = |p: &str| {
                String::from_utf8_lossy(
                    &percent_encoding::percent_decode_str(p).collect::<Vec<u8>>(),
                )
                .into_owned()
            };
            out.push(format!(
                "rule[{i}]: path {:?} has non-ASCII letters in upper case or not composed; \
                 requests are also compared as {:?}, which this rule misses: write path = {:?}",
                readable(&r.path),
                readable(&folded),
                readable(&folded),
            ));
        }
    }
    out
}

/// Does `d` deny, for everyone, every request that `r` matches?
fn denies_all_of(d: &Rule, r: &Rule) -> bool {
    let host = d.host.is_none() || d.host == r.host;
    // Prefixes are compared on whole segments (as `/admin` covers `/admin/x` but
    // not `/administrator`), and without case: a deny rule matches any case.
    let (dp, rp) = (d.path.to_ascii_lowercase(), r.path.to_ascii_lowercase());
    let path =
        rp == dp || (rp.starts_with(&dp) && (dp.ends_with('/') || rp[dp.len()..].starts_with('/')));
    let methods = d.methods.is_empty()
        || (!r.methods.is_empty() && r.methods.iter().all(|m| d.methods.contains(m)));
    let networks = d.networks.is_empty()
        || (!r.networks.is_empty()
            && r.networks
                .iter()
                .all(|n| d.networks.iter().any(|dn| dn.contains(n))));
    d.policy == Policy::Deny && d.groups.is_empty() && host && path && methods && networks
}
