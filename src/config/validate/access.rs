//! `[[rule]]` and `[access]`: who may reach what. First match wins; a rule's
//! host must be a `[[site]]`'s.

use super::Problems;
use crate::config::defaults::access as d;
use crate::config::raw::{RawAccess, RawRule};
use crate::policy::{Policy, Rule};

/// `hosts`: the sites' hosts (a rule naming another is a problem).
pub fn validate_rules(raw_rules: &[RawRule], hosts: &[&str], v: &mut Problems<'_>) -> Vec<Rule> {
    raw_rules
        .iter()
        .enumerate()
        .map(|(i, r)| validate_rule(&format!("rule[{i}]"), r, hosts, v))
        .collect()
}

fn validate_rule(key: &str, r: &RawRule, hosts: &[&str], v: &mut Problems<'_>) -> Rule {
    let policy = match r.policy {
        Some(p) => p.0,
        None => {
            // A policy that didn't read was reported as such: it isn't missing too.
            let pkey = format!("{key}.policy");
            if !v.has(&pkey) {
                v.err(&pkey, "is required");
            }
            Policy::Deny
        }
    };
    let host = r.host.as_deref().map(|h| h.trim().to_ascii_lowercase());
    if let Some(h) = &host {
        if !hosts.contains(&h.as_str()) {
            v.err(
                &format!("{key}.host"),
                format!("{h:?} is not the host of any [[site]]"),
            );
        }
    }
    let path = r.path.as_deref().unwrap_or(d::RULE_PATH);
    let path = match crate::pathnorm::normalize(path) {
        Ok(p) => p,
        Err(e) => {
            v.err(&format!("{key}.path"), format!("{path:?}: {e}"));
            "/".into()
        }
    };
    let mut methods = Vec::new();
    for (j, m) in r.methods.iter().flatten().enumerate() {
        match http::Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()) {
            Ok(m) => methods.push(m),
            Err(_) => v.err(
                &format!("{key}.methods[{j}]"),
                format!("{m:?} is not an HTTP method"),
            ),
        }
    }
    Rule {
        host,
        path,
        methods,
        groups: r.groups.clone().unwrap_or_default(),
        networks: v.cidrs(
            &format!("{key}.networks"),
            r.networks.as_deref().unwrap_or(&[]),
        ),
        policy,
    }
}

/// `access.default_policy` (a bad word was reported while parsing).
pub fn default_policy(a: &RawAccess) -> Policy {
    a.default_policy.map_or(d::DEFAULT_POLICY, |p| p.0)
}
