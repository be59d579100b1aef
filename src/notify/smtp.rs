//! The `smtp` backend (lettre): STARTTLS (required, never downgraded), TLS from
//! the first byte, or plain for a relay on the same machine; optional
//! authentication; an extra trusted root for in-house relays.

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Message, Notifier, NotifyError, SetupError};
use crate::config::{SmtpConfig, SmtpSecurity};

pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpNotifier {
    pub fn new(cfg: &SmtpConfig) -> Result<SmtpNotifier, SetupError> {
        let from: Mailbox = cfg.from.parse()?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .timeout(Some(cfg.timeout));
        if cfg.security != SmtpSecurity::None {
            let mut tls = TlsParameters::builder(cfg.host.clone());
            if let Some(path) = &cfg.ca_file {
                let ca_file = |reason: String| SetupError::SmtpCaFile {
                    path: path.clone(),
                    reason,
                };
                let pem = std::fs::read(path).map_err(|e| ca_file(e.to_string()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| ca_file(e.to_string()))?;
                tls = tls.add_root_certificate(cert);
            }
            let params = tls.build_rustls().map_err(SetupError::SmtpTls)?;
            builder = builder.tls(match cfg.security {
                SmtpSecurity::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.0.to_string()));
        }
        Ok(SmtpNotifier {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let to: Mailbox = msg
            .to
            .parse()
            .map_err(|e| NotifyError::Delivery(format!("recipient address: {e}")))?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.clone())
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(msg.text.clone())
            .map_err(|e| NotifyError::Delivery(e.to_string()))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| NotifyError::Delivery(format!("smtp: {e}")))
    }
}
