//! The "Trouble signing in?" page (`/help`). The words of help (support contact,
//! national phone numbers, the Caps Lock script, each error page's next steps)
//! are [`crate::ui::help`]'s, re-exported here.

use minijinja::context;

use super::{Request, Response};
use crate::app::App;
pub use crate::ui::help::*;

/// `GET /help`: the troubleshooting page (template `help.html`, replaceable by
/// the operator like every other).
pub async fn page(app: &App, _req: &Request<'_>) -> Response {
    let cfg = app.config.load();
    let html = app.ui.load().render(
        "help.html",
        context! {
            captcha_after => cfg.defense.captcha_after,
            lock_minutes => cfg.defense.lock_duration.as_secs().div_ceil(60),
            code_minutes => cfg.otp.code_ttl.as_secs().div_ceil(60),
            service => &cfg.otp.totp_issuer,
        },
    );
    Response::html(200, html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_english_texts_of_the_code_are_in_the_catalogue() {
        let c = crate::i18n::Catalogues::load(None).unwrap();
        let de = c.negotiate(Some("de"), "");
        let mut texts = vec![
            super::super::login::WRONG,
            super::super::login::WRONG_LOCKED_HINT,
            super::super::login::CAPTCHA_WRONG,
        ];
        texts.extend(
            [400, 403, 404, 408, 429, 500, 502, 503]
                .into_iter()
                .filter_map(next_steps),
        );
        for t in texts {
            let translated = c.english(de, t);
            assert_ne!(translated, t, "not in en.ftl: {t}");
        }
    }
}
