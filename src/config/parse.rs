//! Reading the TOML text into [`RawConfig`] so that every problem is found:
//! each key is checked on its own (an unknown or mistyped key, a word that
//! isn't one of its key's, a string that isn't a duration, is reported with a
//! hint and left out), and the rest of the file is still read — so
//! [`super::validate`] reports the bad values in the same run. Also the order
//! problems are reported in.

use serde::de::DeserializeOwned;

use super::raw::*;

/// The top-level sections of the file, each with the check for its keys.
type SectionCheck = fn(&str, &mut toml::Value, &mut Vec<String>) -> bool;
const SECTIONS: [(&str, SectionCheck); 14] = [
    ("server", check_section::<RawServer>),
    ("secrets", check_section::<RawSecrets>),
    ("session", check_section::<RawSession>),
    ("store", check_section::<RawStore>),
    ("users", check_section::<RawUsers>),
    ("password", check_section::<RawPassword>),
    ("defense", check_section::<RawDefense>),
    ("otp", check_section::<RawOtp>),
    ("notify", check_section::<RawNotify>),
    ("ui", check_section::<RawUi>),
    ("site", check_array::<RawSite>),
    ("rule", check_array::<RawRule>),
    ("access", check_section::<RawAccess>),
    ("assertion", check_section::<RawAssertion>),
];

/// Checks every key on its own, so that all problems are found: a key that is
/// unknown or doesn't read as its type is reported (with a hint) and left out,
/// and the rest of the file is still read — so [`super::validate`] reports the bad
/// values in the same run.
pub fn parse_raw(text: &str, problems: &mut Vec<String>) -> Option<RawConfig> {
    let mut root: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("syntax: {}", e.to_string().trim()));
            return None;
        }
    };
    let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
    let keys: Vec<String> = root.keys().cloned().collect();
    for key in keys {
        let keep = match (SECTIONS.iter().find(|(n, _)| *n == key), root.get_mut(&key)) {
            (Some((_, check)), Some(value)) => check(&key, value, problems),
            _ => {
                problems.push(format!(
                    "{key}: unknown section{}",
                    hint(&key, names.iter().copied())
                ));
                false
            }
        };
        if !keep {
            root.remove(&key);
        }
    }
    match toml::Value::Table(root).try_into::<RawConfig>() {
        Ok(raw) => Some(raw),
        Err(e) => {
            problems.push(clean_serde_error(&e.to_string()));
            None
        }
    }
}

/// serde's message on one line, without the trailing "in `key`" (the key path
/// says it) and with TOML's names for the expected types.
fn clean_serde_error(msg: &str) -> String {
    let mut m = msg.trim().replace('\n', " ");
    if let Some(i) = m.rfind(" in `").filter(|_| m.ends_with('`')) {
        m.truncate(i);
    }
    for (rust, toml) in [
        ("expected i64", "expected an integer"),
        ("expected u64", "expected an integer"),
        ("expected u32", "expected an integer"),
        ("expected usize", "expected an integer"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ] {
        m = m.replace(rust, toml);
    }
    if let Some(i) = m.find("expected struct ") {
        m.replace_range(i.., "expected a table");
    }
    m
}

/// `; did you mean `x`? (valid keys: a, b, c)` for a name that isn't one of `known`.
pub(super) fn hint<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    if known.is_empty() {
        return " (this table takes no keys)".into();
    }
    let lower = name.to_ascii_lowercase();
    let nearest = known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .min()
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(2))
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    format!("{nearest} (valid keys: {})", known.join(", "))
}

/// Levenshtein distance over chars (for "did you mean").
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// From serde's `unknown field `x`, expected one of `a`, `b`` (any of its
/// spellings): the unknown name and the expected ones.
fn unknown_field(msg: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.split_once("unknown field `")?.1;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split_once("expected")
        .map(|(_, e)| {
            e.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some((name.to_string(), expected))
}

/// The dotted path, inside `v`, of a table that has a key `name`.
fn find_key(v: &toml::Value, name: &str) -> Option<Vec<String>> {
    let t = v.as_table()?;
    if t.contains_key(name) {
        return Some(Vec::new());
    }
    t.iter().find_map(|(k, sub)| {
        find_key(sub, name).map(|mut p| {
            p.insert(0, k.clone());
            p
        })
    })
}

fn remove_at(v: &mut toml::Value, path: &[String], name: &str) -> bool {
    let Some(t) = v.as_table_mut() else {
        return false;
    };
    match path.split_first() {
        None => t.remove(name).is_some(),
        Some((first, rest)) => t.get_mut(first).is_some_and(|s| remove_at(s, rest, name)),
    }
}

/// Checks each key of the table `[path]` on its own; reports and removes the
/// keys (also of nested tables) that are unknown or don't read as their type.
/// Returns false when `value` isn't a table at all (the caller drops it).
fn check_section<T: DeserializeOwned>(
    path: &str,
    value: &mut toml::Value,
    problems: &mut Vec<String>,
) -> bool {
    let Some(table) = value.as_table_mut() else {
        problems.push(format!("{path}: expected a table ([{path}])"));
        return false;
    };
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        // Each round takes one problem out of this key (a nested table may hold several).
        while let Some(v) = table.get(&key) {
            let Err(msg) = read_one::<T>(&key, v.clone()) else {
                break;
            };
            let taken = match unknown_field(&msg) {
                Some((name, expected)) if name == key => {
                    problems.push(format!(
                        "{path}.{key}: unknown key{}",
                        hint(&key, expected.iter().map(String::as_str))
                    ));
                    table.remove(&key);
                    break;
                }
                Some((name, expected)) => table.get_mut(&key).is_some_and(|v| {
                    take_unknown_nested(&format!("{path}.{key}"), v, &name, &expected, problems)
                }),
                None => table.get_mut(&key).is_some_and(|v| {
                    take_bad_nested_value::<T>(&key, &format!("{path}.{key}"), v, problems)
                }),
            };
            if !taken {
                problems.push(format!("{path}.{key}: {msg}"));
                table.remove(&key);
                break;
            }
        }
    }
    true
}

/// Reads `{key = v}` as a `T`; serde's message when it doesn't.
fn read_one<T: DeserializeOwned>(key: &str, v: toml::Value) -> Result<T, String> {
    let mut one = toml::Table::new();
    one.insert(key.to_string(), v);
    toml::Value::Table(one)
        .try_into::<T>()
        .map_err(|e| clean_serde_error(&e.to_string()))
}

/// Reports and removes the unknown key `name` somewhere inside the table `v` at
/// `path`; false when it isn't found.
fn take_unknown_nested(
    path: &str,
    v: &mut toml::Value,
    name: &str,
    expected: &[String],
    problems: &mut Vec<String>,
) -> bool {
    let Some(p) = find_key(v, name).filter(|p| remove_at(v, p, name)) else {
        return false;
    };
    let mut full = vec![path.to_string()];
    full.extend(p);
    full.push(name.to_string());
    problems.push(format!(
        "{}: unknown key{}",
        full.join("."),
        hint(name, expected.iter().map(String::as_str))
    ));
    true
}

/// In the nested table `v` (the value of `key`, at `path`): reports and removes
/// the first key whose value doesn't read (a word that isn't one of its key's,
/// a string that isn't a duration) with its own key path, as
/// `notify.smtp.security: "ssl" is not one of ...`. A value of the wrong TOML
/// type is left to the caller, which reports it at the table's path. False when
/// no such key is found.
fn take_bad_nested_value<T: DeserializeOwned>(
    key: &str,
    path: &str,
    v: &mut toml::Value,
    problems: &mut Vec<String>,
) -> bool {
    let Some(inner) = v.as_table_mut() else {
        return false;
    };
    let bad = inner.iter().find_map(|(sub, val)| {
        let mut one = toml::Table::new();
        one.insert(sub.clone(), val.clone());
        let msg = read_one::<T>(key, toml::Value::Table(one)).err()?;
        (!msg.starts_with("invalid type") && unknown_field(&msg).is_none())
            .then(|| (sub.clone(), msg))
    });
    let Some((sub, msg)) = bad else {
        return false;
    };
    inner.remove(&sub);
    problems.push(format!("{path}.{sub}: {msg}"));
    true
}

/// Checks each `[[path]]` table; one that isn't a table is reported and
/// emptied (not removed, so the indices of the others stay as in the file).
fn check_array<T: DeserializeOwned>(
    path: &str,
    value: &mut toml::Value,
    problems: &mut Vec<String>,
) -> bool {
    let Some(items) = value.as_array_mut() else {
        problems.push(format!("{path}: expected an array of tables ([[{path}]])"));
        return false;
    };
    for (i, item) in items.iter_mut().enumerate() {
        if !check_section::<T>(&format!("{path}[{i}]"), item, problems) {
            *item = toml::Value::Table(toml::Table::new());
        }
    }
    true
}

/// Sorts problems by their key path (numbers in `rule[10]` as numbers) and
/// drops repeats.
pub fn sort_problems(problems: &mut Vec<String>) {
    fn chunks(s: &str) -> Vec<(String, u64)> {
        let path = s.split_once(": ").map_or(s, |(p, _)| p);
        let mut out = Vec::new();
        let mut text = String::new();
        let mut num: Option<u64> = None;
        for c in path.chars() {
            if let Some(d) = c.to_digit(10) {
                num = Some(
                    num.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(u64::from(d)),
                );
            } else {
                if let Some(n) = num.take() {
                    out.push((std::mem::take(&mut text), n));
                }
                text.push(c);
            }
        }
        out.push((text, num.unwrap_or(0)));
        out
    }
    problems.sort_by(|a, b| chunks(a).cmp(&chunks(b)).then_with(|| a.cmp(b)));
    problems.dedup();
}
