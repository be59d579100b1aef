//! The `webhook` backend: one HTTP request per message, for SMS and voice
//! providers (Twilio-like APIs take a form-encoded body, in-house gateways JSON).
//! The body is a minijinja template over the message; headers (e.g.
//! `Authorization`) come from the config. Neither the body nor the headers are
//! ever logged: they hold codes and credentials. Sent with reqwest (async, rustls,
//! redirects not followed) on the async workers.

use std::time::Duration;

use async_trait::async_trait;
use minijinja::Environment;

use super::{Message, Notifier, NotifyError, SetupError};
use crate::config::webhook_body::{self, environment as env, Vars};
use crate::config::WebhookConfig;

fn render(env: &Environment<'_>, m: &Message) -> Result<String, minijinja::Error> {
    webhook_body::render(
        env,
        Vars {
            channel: m.channel.as_str(),
            to: &m.to,
            subject: &m.subject,
            text: &m.text,
            kind: &m.kind,
            code: m.code.as_deref(),
            ts: m.ts,
        },
    )
}

pub struct WebhookNotifier {
    cfg: WebhookConfig,
    env: Environment<'static>,
    client: reqwest::Client,
}

impl WebhookNotifier {
    pub fn new(cfg: &WebhookConfig) -> Result<WebhookNotifier, SetupError> {
        let env = env(&cfg.body)?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SetupError::WebhookClient(e.without_url().to_string()))?;
        Ok(WebhookNotifier {
            cfg: cfg.clone(),
            env,
            client,
        })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let body = render(&self.env, msg).map_err(|e| NotifyError::Delivery(e.to_string()))?;
        let mut req = self
            .client
            .post(self.cfg.url.clone())
            .header(http::header::CONTENT_TYPE, &self.cfg.content_type);
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.0.as_str());
        }
        // Only the outcome is reported: the status (a provider's error body may echo
        // the message), or the kind of transport failure (reqwest's own text would
        // carry the URL, whose query may hold an API key).
        let answer = match req.body(body).send().await {
            Ok(r) if r.status().as_u16() < 400 => Ok(()),
            Ok(r) => Err(format!("answered {}", r.status().as_u16())),
            Err(e) if e.is_timeout() => Err("timed out".to_string()),
            Err(e) if e.is_connect() => Err("connection failed".to_string()),
            Err(e) if e.is_builder() => {
                Err("invalid request (check notify.webhook.headers)".to_string())
            }
            Err(_) => Err("request failed".to_string()),
        };
        answer
            .map_err(|e| NotifyError::Delivery(format!("webhook {}: {e}", redacted(&self.cfg.url))))
    }
}

/// The URL without credentials or query (which may carry API keys), for logs.
fn redacted(u: &url::Url) -> String {
    format!(
        "{}://{}{}",
        u.scheme(),
        u.host_str().unwrap_or(""),
        u.path()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_body_is_json_and_bad_templates_are_refused() {
        let env = env(crate::config::DEFAULT_WEBHOOK_BODY).unwrap();
        let m = Message {
            channel: crate::notify::Channel::Sms,
            to: "+14155552671".into(),
            subject: "Code".into(),
            text: "Your code is \"1\"\n".into(),
            kind: "otp".into(),
            ts: 5,
            code: Some("1".into()),
        };
        let v: serde_json::Value = serde_json::from_str(&render(&env, &m).unwrap()).unwrap();
        assert_eq!(v["to"], "+14155552671");
        assert_eq!(v["text"], "Your code is \"1\"\n");
        assert!(webhook_body::check("{{ to|urlencode }}&Body={{ text|urlencode }}").is_ok());
        assert!(webhook_body::check("{% if %}").is_err());
    }

    #[test]
    fn urls_in_errors_lose_credentials_and_query() {
        let u = url::Url::parse("https://key:secret@api.example.com/send?token=abc").unwrap();
        assert_eq!(redacted(&u), "https://api.example.com/send");
    }
}
