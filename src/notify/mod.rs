//! How messages reach people: one-time codes, reset codes, lock and backup-code notices.
//!
//! Backends: `file` appends one JSON object per line (`{"channel","to","subject","text",...}`)
//! for development and tests; `log` records that a message was sent (recipient and
//! subject only: message texts carry links and codes, which never go to logs);
//! [`smtp`] for email; [`webhook`] for SMS and voice (and email, if wanted).
//! [`Router`] sends each channel (`email`, `sms`, `voice`) to its configured backend;
//! a channel without one is not offered to people at all.

pub mod smtp;
pub mod webhook;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;

use crate::config::{NotifyBackend, NotifyConfig};

/// How a message reaches a person; each is routed to its own backend
/// (`notify.email`, `notify.sms`, `notify.voice`). Written as `email`, `sms`, `voice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Voice,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub channel: Channel,
    pub to: String,
    pub subject: String,
    pub text: String,
    /// What the message is about, e.g. `lock_notice`.
    pub kind: String,
    pub ts: u64,
    /// The one-time code the text carries, for webhook templates (e.g. a provider's own
    /// voice script). Not written to the outbox file: the text has it.
    #[serde(skip)]
    pub code: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot deliver message: {0}")]
    Delivery(String),
}

/// Why a configured backend can't be built (at start-up or on SIGHUP).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A channel names a backend whose section is absent.
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("notify.smtp.from: {0}")]
    SmtpFrom(#[from] lettre::address::AddressError),
    #[error("notify.smtp.ca_file {path}: {reason}")]
    SmtpCaFile { path: PathBuf, reason: String },
    #[error("notify.smtp: TLS setup: {0}")]
    SmtpTls(lettre::transport::smtp::Error),
    /// The webhook body template doesn't compile or render.
    #[error("{0}")]
    Template(#[from] minijinja::Error),
    #[error("notify.webhook: {0}")]
    WebhookClient(String),
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError>;
}

pub struct FileNotifier {
    path: PathBuf,
    // Serialises appends from this process so lines never interleave.
    lock: Mutex<()>,
}

impl FileNotifier {
    pub fn new(path: PathBuf) -> FileNotifier {
        FileNotifier {
            path,
            lock: Mutex::new(()),
        }
    }
}

#[async_trait]
impl Notifier for FileNotifier {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let mut line =
            serde_json::to_string(msg).map_err(|e| NotifyError::Delivery(e.to_string()))?;
        line.push('\n');
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o
            .open(&self.path)
            .map_err(|e| NotifyError::Delivery(format!("{}: {e}", self.path.display())))?;
        f.write_all(line.as_bytes())
            .map_err(|e| NotifyError::Delivery(e.to_string()))?;
        Ok(())
    }
}

pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        tracing::info!(target: "notify", channel = %msg.channel, to = %msg.to, subject = %msg.subject, kind = %msg.kind, "message sent (text withheld from logs)");
        Ok(())
    }
}

/// Sends each channel to its own backend.
pub struct Router {
    email: Option<Arc<dyn Notifier>>,
    sms: Option<Arc<dyn Notifier>>,
    voice: Option<Arc<dyn Notifier>>,
}

impl Router {
    /// Builds the backends the config names (each once).
    pub fn from_config(cfg: &NotifyConfig) -> Result<Router, SetupError> {
        let mut made: Vec<(NotifyBackend, Arc<dyn Notifier>)> = Vec::new();
        let mut get = |b: Option<NotifyBackend>| -> Result<Option<Arc<dyn Notifier>>, SetupError> {
            let Some(b) = b else { return Ok(None) };
            if let Some((_, n)) = made.iter().find(|(k, _)| *k == b) {
                return Ok(Some(n.clone()));
            }
            let n: Arc<dyn Notifier> = match b {
                NotifyBackend::File => Arc::new(FileNotifier::new(cfg.file.clone())),
                NotifyBackend::Log => Arc::new(LogNotifier),
                NotifyBackend::Smtp => Arc::new(smtp::SmtpNotifier::new(
                    cfg.smtp
                        .as_ref()
                        .ok_or(SetupError::Missing("notify.smtp"))?,
                )?),
                NotifyBackend::Webhook => Arc::new(webhook::WebhookNotifier::new(
                    cfg.webhook
                        .as_ref()
                        .ok_or(SetupError::Missing("notify.webhook"))?,
                )?),
            };
            made.push((b, n.clone()));
            Ok(Some(n))
        };
        Ok(Router {
            email: get(cfg.email)?,
            sms: get(cfg.sms)?,
            voice: get(cfg.voice)?,
        })
    }

    fn route(&self, channel: Channel) -> Option<&Arc<dyn Notifier>> {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
            Channel::Voice => self.voice.as_ref(),
        }
    }

    /// Whether messages on `channel` can be delivered at all.
    pub fn offers(&self, channel: Channel) -> bool {
        self.route(channel).is_some()
    }
}

#[async_trait]
impl Notifier for Router {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        match self.route(msg.channel) {
            Some(n) => n.send(msg).await,
            None => Err(NotifyError::Delivery(format!(
                "no backend is configured for {} messages",
                msg.channel
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_backend_appends_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let n = FileNotifier::new(dir.path().join("outbox.jsonl"));
        for i in 0..2 {
            let m = Message {
                channel: Channel::Email,
                to: "a@example.com".into(),
                subject: format!("s{i}"),
                text: "t".into(),
                kind: "k".into(),
                ts: 1,
                code: None,
            };
            n.send(&m).await.unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["subject"], "s1");
        assert_eq!(lines[0]["channel"], "email");
    }
}
