//! Translations: every text of the pages comes from a Fluent catalogue
//! (`locales/*.ftl`, built in: English, German, French), chosen per request by
//! the `lang` cookie (set by the switcher's `?lang=`) or else `Accept-Language`.
//! Operators override messages and add languages with `[ui] locales`, a folder of
//! `TAG.ftl` files (e.g. `de.ftl` replaces some German messages, `nl.ftl` adds
//! Dutch); a key missing there falls back to English. `check-config` lists the
//! keys an operator catalogue lacks.
//!
//! Templates call `t("key", name=value, ...)`; Rust code passes English texts,
//! which [`Catalogues::english`] maps back to their key so they are translated too
//! (a text not in the catalogue stays as it is).
//!
//! The language of the request being answered is a task-local ([`scope`]), so the
//! page code doesn't carry it through every call.

use std::collections::HashMap;
use std::path::Path;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// The built-in catalogues; the first is the fallback.
const BUILTIN: &[(&str, &str)] = &[
    ("en", include_str!("../locales/en.ftl")),
    ("de", include_str!("../locales/de.ftl")),
    ("fr", include_str!("../locales/fr.ftl")),
];

#[derive(Debug, thiserror::Error)]
pub enum I18nError {
    #[error("{path}: {msg}")]
    Catalogue { path: String, msg: String },
}

struct Catalogue {
    tag: String,
    /// The language's own name (`language-name`), for the switcher.
    name: String,
    bundle: FluentBundle<FluentResource>,
}

/// Every language the pages can be shown in; index 0 is English.
pub struct Catalogues {
    langs: Vec<Catalogue>,
    /// English text -> key, for texts that Rust code passes as English.
    by_english: HashMap<String, String>,
}

fn parse(path: &str, text: String) -> Result<FluentResource, I18nError> {
    FluentResource::try_new(text).map_err(|(_, errs)| I18nError::Catalogue {
        path: path.to_string(),
        msg: format!("{} syntax error(s), first: {:?}", errs.len(), errs.first()),
    })
}

fn keys_of(res: &FluentResource) -> Vec<String> {
    res.entries()
        .filter_map(|e| match e {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
            _ => None,
        })
        .collect()
}

fn bundle(tag: &str) -> Result<FluentBundle<FluentResource>, I18nError> {
    let id: unic_langid::LanguageIdentifier = tag.parse().map_err(|_| I18nError::Catalogue {
        path: tag.to_string(),
        msg: "not a language tag (like \"de\" or \"pt-BR\")".into(),
    })?;
    let mut b = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around values: they'd end up inside HTML attributes.
    b.set_use_isolating(false);
    Ok(b)
}

impl Catalogues {
    /// The built-in catalogues, with the operator's folder (if any) on top.
    pub fn load(dir: Option<&Path>) -> Result<Catalogues, I18nError> {
        let mut langs = Vec::new();
        for (tag, text) in BUILTIN {
            let mut b = bundle(tag)?;
            b.add_resource(parse(&format!("locales/{tag}.ftl"), (*text).to_string())?)
                .map_err(|e| I18nError::Catalogue {
                    path: format!("locales/{tag}.ftl"),
                    msg: format!("{e:?}"),
                })?;
            langs.push(Catalogue {
                tag: (*tag).to_string(),
                name: String::new(),
                bundle: b,
            });
        }
        for (tag, path, text) in operator_files(dir)? {
            let res = parse(&path, text)?;
            match langs.iter_mut().find(|c| c.tag.eq_ignore_ascii_case(&tag)) {
                Some(c) => c.bundle.add_resource_overriding(res),
                None => {
                    let mut b = bundle(&tag)?;
                    b.add_resource_overriding(res);
                    langs.push(Catalogue {
                        tag,
                        name: String::new(),
                        bundle: b,
                    });
                }
            }
        }
        let mut by_english = HashMap::new();
        let en_res = parse("locales/en.ftl", BUILTIN[0].1.to_string())?;
        let mut cats = Catalogues {
            langs,
            by_english: HashMap::new(),
        };
        for key in keys_of(&en_res) {
            if let Some(text) = cats.lookup(0, &key, None) {
                by_english.entry(text).or_insert(key);
            }
        }
        cats.by_english = by_english;
        for i in 0..cats.langs.len() {
            let name = cats
                .lookup(i, "language-name", None)
                .unwrap_or_else(|| cats.langs[i].tag.clone());
            cats.langs[i].name = name;
        }
        Ok(cats)
    }

    fn lookup(&self, lang: usize, key: &str, args: Option<&FluentArgs>) -> Option<String> {
        let c = self.langs.get(lang)?;
        let pattern = c.bundle.get_message(key)?.value()?;
        let mut errors = Vec::new();
        let s = c.bundle.format_pattern(pattern, args, &mut errors);
        Some(s.into_owned())
    }

    /// The text of `key` in language `lang` (else English, else the key itself).
    pub fn text(&self, lang: usize, key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let mut fa = FluentArgs::new();
        for (k, v) in args {
            fa.set(*k, v.clone());
        }
        self.lookup(lang, key, Some(&fa))
            .or_else(|| self.lookup(0, key, Some(&fa)))
            .unwrap_or_else(|| key.to_string())
    }

    /// `english` (a text the Rust code wrote in English) in language `lang`, when
    /// the English catalogue has it; else unchanged.
    pub fn english(&self, lang: usize, english: &str) -> String {
        match self.by_english.get(english) {
            Some(key) if lang != 0 => self.text(lang, key, &[]),
            _ => english.to_string(),
        }
    }

    /// `(tag, own name)` of every language, in switcher order.
    pub fn languages(&self) -> Vec<(String, String)> {
        self.langs
            .iter()
            .map(|c| (c.tag.clone(), c.name.clone()))
            .collect()
    }

    pub fn tag(&self, lang: usize) -> &str {
        self.langs.get(lang).map_or("en", |c| c.tag.as_str())
    }

    /// The language for a request: `chosen` (the switcher's cookie or `?lang=`) when
    /// offered, else the best of `Accept-Language` (q-values, then order; `de-CH`
    /// matches `de`), else English.
    pub fn negotiate(&self, chosen: Option<&str>, accept_language: &str) -> usize {
        let find = |tag: &str| -> Option<usize> {
            let tag = tag.trim();
            self.langs
                .iter()
                .position(|c| c.tag.eq_ignore_ascii_case(tag))
                .or_else(|| {
                    let primary = tag.split('-').next()?;
                    self.langs.iter().position(|c| {
                        c.tag
                            .split('-')
                            .next()
                            .is_some_and(|p| p.eq_ignore_ascii_case(primary))
                    })
                })
        };
        if let Some(i) = chosen.and_then(find) {
            return i;
        }
        let mut wanted: Vec<(f32, usize, &str)> = accept_language
            .split(',')
            .take(32)
            .enumerate()
            .filter_map(|(n, part)| {
                let mut it = part.split(';');
                let tag = it.next()?.trim();
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (q > 0.0 && !tag.is_empty() && tag != "*").then_some((q, n, tag))
            })
            .collect();
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        wanted.iter().find_map(|(_, _, t)| find(t)).unwrap_or(0)
    }

    /// Keys of the English catalogue that `lang` lacks (for `check-config`).
    pub fn missing(&self, lang: usize) -> Vec<String> {
        let Ok(en) = parse("en", BUILTIN[0].1.to_string()) else {
            return Vec::new();
        };
        let Some(c) = self.langs.get(lang) else {
            return Vec::new();
        };
        keys_of(&en)
            .into_iter()
            .filter(|k| !c.bundle.has_message(k))
            .collect()
    }
}

/// The operator's `TAG.ftl` files: `(tag, path, text)`.
fn operator_files(dir: Option<&Path>) -> Result<Vec<(String, String, String)>, I18nError> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    let read_err = |p: &Path, e: std::io::Error| I18nError::Catalogue {
        path: p.display().to_string(),
        msg: e.to_string(),
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
        let path = entry.map_err(|e| read_err(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("ftl") {
            continue;
        }
        let Some(tag) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
        out.push((tag, path.display().to_string(), text));
    }
    out.sort();
    Ok(out)
}

/// For `check-config`: each operator catalogue's missing keys, as
/// `"nl.ftl: missing help-title, ..."`.
pub fn check_folder(dir: &Path) -> Result<Vec<String>, I18nError> {
    let cats = Catalogues::load(Some(dir))?;
    let mut problems = Vec::new();
    for (tag, _, _) in operator_files(Some(dir))? {
        let Some(i) = cats
            .langs
            .iter()
            .position(|c| c.tag.eq_ignore_ascii_case(&tag))
        else {
            continue;
        };
        // Overrides of a built-in language fall back to the built-in text: complete.
        if BUILTIN.iter().any(|(t, _)| t.eq_ignore_ascii_case(&tag)) {
            continue;
        }
        let missing = cats.missing(i);
        if !missing.is_empty() {
            problems.push(format!(
                "{tag}.ftl: {} key(s) missing (English is shown instead): {}",
                missing.len(),
                missing.join(", ")
            ));
        }
    }
    Ok(problems)
}

/// The language tag in cookie `name` (not secret, so not sealed; only a tag of
/// letters and dashes is taken, and only an offered language is ever used).
pub fn cookie_tag(cookie_header: &str, name: &str) -> Option<String> {
    cookie::Cookie::split_parse(cookie_header)
        .flatten()
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
        .filter(|v| {
            (2..=16).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')
        })
}

/// What a page being rendered knows about its request.
#[derive(Clone, Debug, Default)]
pub struct Current {
    pub lang: usize,
    /// The portal path and query without `lang`, for the switcher's links.
    pub path: String,
    pub query: String,
}

tokio::task_local! {
    static CURRENT: Current;
}

/// Runs `f` (the answer to one request) with `current` as its language.
pub async fn scope<F: std::future::Future>(current: Current, f: F) -> F::Output {
    CURRENT.scope(current, f).await
}

/// Runs `f` (rendering a page outside the portal, e.g. a proxy error page) with
/// `current` as its language.
pub fn sync_scope<R>(current: Current, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(current, f)
}

/// The language of the request being answered (English outside one).
pub fn current() -> Current {
    CURRENT.try_with(Clone::clone).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<String> {
        let mut k = keys_of(&parse("t", text.to_string()).unwrap());
        k.sort();
        k
    }

    #[test]
    fn every_builtin_language_has_every_english_key_and_no_other() {
        let en = keys(BUILTIN[0].1);
        assert!(en.len() > 100, "{}", en.len());
        for (tag, text) in &BUILTIN[1..] {
            let k = keys(text);
            let missing: Vec<_> = en.iter().filter(|x| !k.contains(x)).collect();
            let extra: Vec<_> = k.iter().filter(|x| !en.contains(x)).collect();
            assert!(missing.is_empty(), "{tag}.ftl lacks {missing:?}");
            assert!(extra.is_empty(), "{tag}.ftl has unknown {extra:?}");
        }
        let c = Catalogues::load(None).unwrap();
        for i in 0..c.langs.len() {
            assert!(c.missing(i).is_empty());
        }
    }

    #[test]
    fn every_key_the_templates_use_exists() {
        let en = keys(BUILTIN[0].1);
        let re_start = "t(\"";
        for (name, text) in crate::ui::BUILTIN {
            let mut rest = *text;
            while let Some(i) = rest.find(re_start) {
                rest = &rest[i + re_start.len()..];
                let key = &rest[..rest.find('"').unwrap()];
                if key.ends_with('-') {
                    // A prefix completed at render time (`"account-change-" ~ change`).
                    assert!(en.iter().any(|k| k.starts_with(key)), "{name}: {key}*");
                    continue;
                }
                assert!(en.iter().any(|k| k == key), "{name}: {key} not in en.ftl");
            }
        }
    }

    #[test]
    fn translations_are_used_with_arguments_and_english_fallback() {
        let c = Catalogues::load(None).unwrap();
        let de = c.negotiate(None, "de-CH, fr;q=0.8");
        assert_eq!(c.tag(de), "de");
        assert_eq!(c.text(de, "login-title", &[]), "Anmelden");
        assert_eq!(c.text(de, "no-such-key", &[]), "no-such-key");
        assert_eq!(
            c.english(de, "There is no page at this address."),
            c.text(de, "status-not-found-text", &[])
        );
        assert_eq!(
            c.english(de, "Not in the catalogue"),
            "Not in the catalogue"
        );
        let fr = c.negotiate(None, "es;q=0.9, fr;q=0.8, de;q=0.1");
        assert_eq!(c.tag(fr), "fr");
        assert_eq!(c.negotiate(Some("fr"), "de"), fr, "the switcher wins");
        assert_eq!(c.negotiate(Some("xx"), "xx, *"), 0);
        assert_eq!(c.negotiate(None, "de;q=0, fr;q=abc"), 0);
        let two = c.text(
            fr,
            "twofactor-expires",
            &[("minutes", FluentValue::from(2))],
        );
        assert!(two.contains("2 minutes"), "{two}");
        let one = c.text(0, "twofactor-expires", &[("minutes", FluentValue::from(1))]);
        assert!(one.contains("1 minute."), "{one}");
        let names: Vec<_> = c.languages().into_iter().map(|l| l.1).collect();
        assert_eq!(names, ["English", "Deutsch", "Français"]);
    }

    #[test]
    fn operators_override_and_add_languages_and_missing_keys_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("de.ftl"), "login-title = Einloggen\n").unwrap();
        std::fs::write(
            dir.path().join("nl.ftl"),
            "language-name = Nederlands\nlogin-title = Inloggen\n",
        )
        .unwrap();
        let c = Catalogues::load(Some(dir.path())).unwrap();
        assert_eq!(
            c.text(c.negotiate(Some("de"), ""), "login-title", &[]),
            "Einloggen"
        );
        let nl = c.negotiate(None, "nl-BE");
        assert_eq!(c.text(nl, "login-title", &[]), "Inloggen");
        assert_eq!(
            c.text(nl, "login-forgot", &[]),
            c.text(0, "login-forgot", &[]),
            "English fallback"
        );
        let problems = check_folder(dir.path()).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("nl.ftl: ") && problems[0].contains("login-forgot"));
        std::fs::write(dir.path().join("fr.ftl"), "login-title = {").unwrap();
        assert!(Catalogues::load(Some(dir.path())).is_err());
    }
}
