//! `[ui]`: branding. The contact and region must parse here; the folders and
//! files it names are checked (and the catalogues read) by [`crate::config::load`].

use std::path::Path;

use super::{resolve, Problems};
use crate::config::defaults::ui as d;
use crate::config::raw::RawUi;
use crate::config::UiConfig;

pub fn validate(u: RawUi, base: &Path, v: &mut Problems<'_>) -> UiConfig {
    let accent_color = u.accent_color.unwrap_or_else(|| d::ACCENT_COLOR.into());
    let hex_ok = accent_color.len() == 7
        && accent_color.starts_with('#')
        && accent_color[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if !hex_ok {
        v.err(
            "ui.accent_color",
            format!("{accent_color:?} must be a colour like \"#1f5fbf\""),
        );
    }
    let ui = UiConfig {
        templates: u.templates.as_deref().map(|p| resolve(base, p)),
        title: u.title.unwrap_or_else(|| d::TITLE.into()),
        accent_color,
        logo: u.logo.as_deref().map(|p| resolve(base, p)),
        default_region: u
            .default_region
            .filter(|r| !r.is_empty())
            .map(|r| r.to_ascii_uppercase()),
        support_contact: u.support_contact.filter(|c| !c.trim().is_empty()),
        locales: u.locales.as_deref().map(|p| resolve(base, p)),
    };
    if let Some(r) = &ui.default_region {
        if crate::ui::help::calling_region(r).is_none() {
            v.err(
                "ui.default_region",
                format!("{r:?} is not a two-letter region with phone numbers (e.g. \"US\")"),
            );
        }
    }
    if let Some(c) = &ui.support_contact {
        if crate::ui::help::Contact::parse(c).is_none() {
            v.err(
                "ui.support_contact",
                format!("{c:?} must be an email address or an http(s) URL"),
            );
        }
    }
    ui
}
