//! Page rendering: minijinja templates (HTML auto-escaped), built in and
//! overridable file by file from `ui.templates`, plus the stylesheet and logo.
//! Shared by the portal's pages, the proxy's error pages and the message texts
//! (so it sits beside them, not inside `portal`: [`crate::app`] holds it without
//! depending on the pages).

pub mod help;

use std::path::Path;

use minijinja::{context, Environment, Value};

use crate::config::UiConfig;

pub(crate) const BUILTIN: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("help.html", include_str!("../../templates/help.html")),
    ("account.html", include_str!("../../templates/account.html")),
    (
        "msg_account_change.txt",
        include_str!("../../templates/msg_account_change.txt"),
    ),
    ("logout.html", include_str!("../../templates/logout.html")),
    ("message.html", include_str!("../../templates/message.html")),
    ("reset.html", include_str!("../../templates/reset.html")),
    ("captcha.html", include_str!("../../templates/captcha.html")),
    (
        "password.html",
        include_str!("../../templates/password.html"),
    ),
    ("style.css", include_str!("../../templates/style.css")),
    ("2fa.html", include_str!("../../templates/2fa.html")),
    (
        "2fa_setup.html",
        include_str!("../../templates/2fa_setup.html"),
    ),
    ("msg_code.txt", include_str!("../../templates/msg_code.txt")),
    (
        "msg_code_voice.txt",
        include_str!("../../templates/msg_code_voice.txt"),
    ),
    (
        "msg_backup_used.txt",
        include_str!("../../templates/msg_backup_used.txt"),
    ),
    (
        "msg_lock_notice.txt",
        include_str!("../../templates/msg_lock_notice.txt"),
    ),
    (
        "msg_reset_code.txt",
        include_str!("../../templates/msg_reset_code.txt"),
    ),
];

pub struct Ui {
    env: Environment<'static>,
    /// The message catalogues the templates' `t()` and `|tr` read.
    pub texts: std::sync::Arc<crate::i18n::Catalogues>,
    pub css: String,
    pub logo: Option<(Vec<u8>, &'static str)>,
    brand: String,
    prefix: String,
    /// What every page may show: the support contact, the phone region, the script.
    common: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("template {name}: {msg}")]
    Template { name: String, msg: String },
    #[error("ui.locales: {0}")]
    Texts(#[from] crate::i18n::I18nError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

fn image_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => "image/svg+xml",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "image/png",
    }
}

/// A template that failed to render, by name.
#[derive(Debug, thiserror::Error)]
#[error("{template}: {source}")]
pub struct TemplateError {
    pub template: String,
    #[source]
    pub source: minijinja::Error,
}

impl Ui {
    pub fn load(cfg: &UiConfig, prefix: &str) -> Result<Ui, UiError> {
        let mut env = Environment::new();
        let texts = std::sync::Arc::new(crate::i18n::Catalogues::load(cfg.locales.as_deref())?);
        let t = texts.clone();
        env.add_function(
            "t",
            move |key: &str,
                  kwargs: minijinja::value::Kwargs|
                  -> Result<String, minijinja::Error> {
                let mut args = Vec::new();
                for k in kwargs.args() {
                    let v: Value = kwargs.get(k)?;
                    let fv = match i64::try_from(v.clone()) {
                        Ok(n) if v.is_number() => fluent_bundle::FluentValue::from(n),
                        _ => fluent_bundle::FluentValue::from(v.to_string()),
                    };
                    args.push((k, fv));
                }
                Ok(t.text(crate::i18n::current().lang, key, &args))
            },
        );
        let t = texts.clone();
        env.add_filter("tr", move |v: Value| -> Value {
            match v.as_str() {
                Some(s) => Value::from(t.english(crate::i18n::current().lang, s)),
                None => v,
            }
        });
        for (name, text) in BUILTIN {
            let text = match &cfg.templates {
                Some(dir) if dir.join(name).is_file() => std::fs::read_to_string(dir.join(name))
                    .map_err(|source| UiError::Read {
                        path: dir.join(name).display().to_string(),
                        source,
                    })?,
                _ => (*text).to_string(),
            };
            env.add_template_owned(*name, text)
                .map_err(|e| UiError::Template {
                    name: (*name).into(),
                    msg: e.to_string(),
                })?;
        }
        let css = env
            .get_template("style.css")
            .and_then(|t| t.render(context! { accent => &cfg.accent_color }))
            .map_err(|e| UiError::Template {
                name: "style.css".into(),
                msg: e.to_string(),
            })?;
        let logo = match &cfg.logo {
            Some(p) => Some((
                std::fs::read(p).map_err(|source| UiError::Read {
                    path: p.display().to_string(),
                    source,
                })?,
                image_type(p),
            )),
            None => None,
        };
        let contact = cfg
            .support_contact
            .as_deref()
            .and_then(help::Contact::parse);
        let region = cfg.default_region.as_deref();
        let common = context! {
            contact => contact.as_ref().map(|c| c.text().to_string()),
            contact_href => contact.as_ref().map(|c| c.href()),
            region => region,
            region_code => region.and_then(help::calling_region),
            phone_example => help::phone_example(region),
            caps_script => help::CAPS_SCRIPT,
            // "Sign in", the default title, is no brand: not shown twice.
            show_brand => cfg.title != "Sign in",
        };
        let ui = Ui {
            env,
            texts,
            css,
            logo,
            brand: cfg.title.clone(),
            prefix: prefix.to_string(),
            common,
        };
        // Render every page once so a broken override fails at load, not per request.
        for page in [
            "login.html",
            "help.html",
            "account.html",
            "msg_account_change.txt",
            "logout.html",
            "message.html",
            "reset.html",
            "password.html",
            "2fa.html",
            "2fa_setup.html",
            "msg_code.txt",
            "msg_code_voice.txt",
            "msg_backup_used.txt",
            "msg_lock_notice.txt",
            "msg_reset_code.txt",
        ] {
            ui.try_render(page, Value::from(()))
                .map_err(|e| UiError::Template {
                    name: page.into(),
                    msg: e.source.to_string(),
                })?;
        }
        Ok(ui)
    }

    fn try_render(&self, name: &str, ctx: Value) -> Result<String, TemplateError> {
        let base = context! { brand => &self.brand, prefix => &self.prefix, has_logo => self.logo.is_some(), title => &self.brand };
        let here = crate::i18n::current();
        let languages: Vec<Value> = self
            .texts
            .languages()
            .into_iter()
            .enumerate()
            .map(|(i, (tag, name))| {
                let sep = if here.query.is_empty() { "" } else { "&" };
                let href = format!("{}{}?{}{sep}lang={tag}", self.prefix, here.path, here.query);
                context! { tag => tag, name => name, href => href, current => i == here.lang }
            })
            .collect();
        let lang = context! { lang => self.texts.tag(here.lang), languages => languages };
        self.env
            .get_template(name)
            .and_then(|t| t.render(context! { ..ctx, ..base, ..lang, ..self.common.clone() }))
            .map_err(|source| TemplateError {
                template: name.to_string(),
                source,
            })
    }

    /// Renders a page; a template error degrades to a plain escaped message.
    pub fn render(&self, name: &str, ctx: Value) -> String {
        self.try_render(name, ctx).unwrap_or_else(|e| {
            tracing::error!(template = name, error = %e, "template failed");
            "<!doctype html><title>Error</title><p>This page could not be shown.</p>".to_string()
        })
    }

    /// A message to send: `(subject, text)`. A first line `Subject: ...` is the
    /// subject; without one, `default_subject`.
    pub fn message_text(
        &self,
        name: &str,
        ctx: Value,
        default_subject: &str,
    ) -> Result<(String, String), TemplateError> {
        let text = self.try_render(name, ctx)?;
        let text = text.trim_start_matches('\n');
        Ok(match text.split_once('\n') {
            Some((first, rest)) if first.starts_with("Subject:") => (
                first.trim_start_matches("Subject:").trim().to_string(),
                rest.trim_start_matches('\n').to_string(),
            ),
            _ => (default_subject.to_string(), text.to_string()),
        })
    }

    pub fn message(&self, heading: &str, text: &str, link: Option<(&str, &str)>) -> String {
        self.render(
            "message.html",
            context! { heading => heading, text => text, link => link.map(|l| l.0), link_text => link.map(|l| l.1) },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> UiConfig {
        UiConfig {
            templates: None,
            title: "Acme".into(),
            accent_color: "#112233".into(),
            logo: None,
            default_region: None,
            support_contact: None,
            locales: None,
        }
    }

    #[test]
    fn output_is_escaped_and_css_has_accent() {
        let ui = Ui::load(&cfg(), "/_auth").unwrap();
        let html = ui.message("Hi <b>", "x\"><script>alert(1)</script>", None);
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(ui.css.contains("#112233"));
    }

    #[test]
    fn message_texts_have_a_subject_line_and_can_be_overridden() {
        let ui = Ui::load(&cfg(), "/_auth").unwrap();
        let (subject, text) = ui
            .message_text(
                "msg_code.txt",
                context! { code => "123456", minutes => 10, channel => "email", name => "Al <b>", service => "Acme" },
                "x",
            )
            .unwrap();
        assert_eq!(subject, "Your Acme sign-in code");
        assert!(
            text.starts_with("Hello Al <b>,"),
            "plain text, not HTML-escaped: {text}"
        );
        assert!(text.contains("123456") && text.contains("10 minutes"));
        let (_, sms) = ui
            .message_text(
                "msg_code.txt",
                context! { code => "123456", minutes => 1, channel => "sms", service => "Acme" },
                "x",
            )
            .unwrap();
        assert!(
            sms.len() < 160 && sms.contains("1 min"),
            "fits one SMS: {sms}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("msg_code.txt"), "Code {{ code }}").unwrap();
        let ui = Ui::load(
            &UiConfig {
                templates: Some(dir.path().into()),
                ..cfg()
            },
            "/_auth",
        )
        .unwrap();
        let (subject, text) = ui
            .message_text("msg_code.txt", context! { code => "9" }, "Default")
            .unwrap();
        assert_eq!((subject.as_str(), text.as_str()), ("Default", "Code 9"));
    }

    #[test]
    fn overrides_replace_builtins_and_bad_ones_fail_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("message.html"), "CUSTOM {{ heading }}").unwrap();
        let ui = Ui::load(
            &UiConfig {
                templates: Some(dir.path().into()),
                ..cfg()
            },
            "/_auth",
        )
        .unwrap();
        assert_eq!(ui.message("x", "y", None), "CUSTOM x");
        std::fs::write(dir.path().join("login.html"), "{% if %}").unwrap();
        assert!(Ui::load(
            &UiConfig {
                templates: Some(dir.path().into()),
                ..cfg()
            },
            "/_auth"
        )
        .is_err());
    }
}
