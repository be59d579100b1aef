//! How messages reach people: lock notices now; one-time codes later.
//!
//! Backends: `file` appends one JSON object per line (`{"channel","to","subject","text",...}`)
//! for development and tests; `log` records that a message was sent (recipient and
//! subject only: message texts carry links and codes, which never go to logs).
//! `smtp` and `webhook` arrive with the second-factor work and are refused at start-up.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// `email`, `sms` or `voice`.
    pub channel: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    /// What the message is about, e.g. `lock_notice`.
    pub kind: String,
    pub ts: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot deliver message: {0}")]
    Delivery(String),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_backend_appends_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let n = FileNotifier::new(dir.path().join("outbox.jsonl"));
        for i in 0..2 {
            let m = Message {
                channel: "email".into(),
                to: "a@example.com".into(),
                subject: format!("s{i}"),
                text: "t".into(),
                kind: "k".into(),
                ts: 1,
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
