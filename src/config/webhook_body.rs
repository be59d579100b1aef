//! The webhook body template (`notify.webhook.body`): how it is compiled and the
//! variables it is rendered with. It lives with the config, which checks it, so
//! that `config` doesn't depend on `notify` (which reads `config`).

use minijinja::Environment;

/// What a body template can use: `channel`, `to`, `subject`, `text`, `kind`,
/// `code` (the one-time code, when the message carries one) and `ts`.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    pub channel: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub kind: &'a str,
    pub code: Option<&'a str>,
    pub ts: u64,
}

/// The template compiled. Bodies are JSON or form data, not HTML: the template
/// chooses its own escaping (`tojson`, `urlencode`).
pub fn environment(body: &str) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_template_owned("body", body.to_string())?;
    Ok(env)
}

/// The body for one message.
pub fn render(env: &Environment<'_>, v: Vars<'_>) -> Result<String, minijinja::Error> {
    env.get_template("body").and_then(|t| {
        t.render(minijinja::context! {
            channel => v.channel, to => v.to, subject => v.subject, text => v.text,
            kind => v.kind, code => v.code, ts => v.ts,
        })
    })
}

/// Checks a body template at config time: it compiles and renders a sample message.
pub fn check(body: &str) -> Result<(), minijinja::Error> {
    let env = environment(body)?;
    render(
        &env,
        Vars {
            channel: "sms",
            to: "+10000000000",
            subject: "s",
            text: "t",
            kind: "k",
            code: Some("123456"),
            ts: 0,
        },
    )?;
    Ok(())
}
