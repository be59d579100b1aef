//! Every default of the config file, in one place, one module per section.
//!
//! The raw structs ([`super::raw`]) name these in their docs; the validators
//! ([`super::validate`]) use them when a key is absent or its value is refused.
//! Limits (what range a value may take) belong to the validators, not here.

use std::time::Duration;

const fn minutes(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

/// `[server]`
pub mod server {
    use super::Duration;
    pub const LISTEN: &str = "127.0.0.1:8080";
    pub const PORTAL_PREFIX: &str = "/_auth";
    /// 0 = one per CPU core.
    pub const THREADS: i64 = 0;
    /// Threads when there are 0 and the number of cores can't be read.
    pub const THREADS_FALLBACK: usize = 2;
    pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);
    pub const MAX_CONNECTIONS_PER_CLIENT: i64 = 256;
    /// Pingora's own default.
    pub const UPSTREAM_IDLE_CONNECTIONS: i64 = 128;
}

/// `[secrets]`
pub mod secrets {
    pub const DIR: &str = "secrets";
}

/// `[session]`
pub mod session {
    use super::{minutes, Duration};
    pub const COOKIE_NAME: &str = "portcullis";
    pub const SECURE: bool = true;
    pub const SAME_SITE: crate::config::SameSite = crate::config::SameSite::Lax;
    pub const IDLE_TIMEOUT: Duration = minutes(30);
    pub const ABSOLUTE_TIMEOUT: Duration = minutes(12 * 60);
}

/// `[store]`
pub mod store {
    use super::Duration;
    pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
    pub const KEY_PREFIX: &str = "portcullis:";
    pub const MAX_ENTRIES: i64 = 1_000_000;
    pub const SESSION_CACHE: Duration = Duration::from_secs(5);
}

/// `[users]`
pub mod users {
    use super::{minutes, Duration};
    pub const FILE: &str = "users.toml";
    /// The SQLite database when `backend = "sqlite"` has no `url`.
    pub const SQLITE_FILE: &str = "accounts.db";
    pub const CACHE_SIZE: i64 = 10_000;
    pub const STALE_FOR: Duration = minutes(5);
}

/// `[password]`
pub mod password {
    /// NIST SP 800-63B.
    pub const MIN_LENGTH: i64 = 8;
    pub const MIN_LENGTH_SINGLE_FACTOR: i64 = 15;
    /// zxcvbn's "safely unguessable".
    pub const MIN_STRENGTH: i64 = 3;
    pub const MAX_CONCURRENT_HASHES: i64 = 2;
    /// OWASP's argon2id parameters.
    pub const ARGON2_MEMORY_KIB: i64 = 19_456;
    pub const ARGON2_ITERATIONS: i64 = 2;
    pub const ARGON2_PARALLELISM: i64 = 1;
}

/// `[defense]`
pub mod defense {
    use super::{minutes, Duration};
    pub const CAPTCHA_AFTER: i64 = 3;
    pub const LOCK_AFTER: i64 = 10;
    pub const WINDOW: Duration = minutes(15);
    pub const LOCK_DURATION: Duration = minutes(15);
    pub const LOCK_MAX: Duration = minutes(24 * 60);
    pub const IP_PER_MINUTE: i64 = 30;
    pub const KNOWN_DEVICE_DAYS: i64 = 90;
    // `known_device_lock_after` defaults to `lock_after`.
    pub const SPRAY_PER_MINUTE: i64 = 100;
    pub const CAPTCHA_TTL: Duration = minutes(5);
    pub const CAPTCHA_ON_RESET: bool = false;
    pub const CAPTCHA_ON_PASSWORD_CHANGE: bool = false;
}

/// `[otp]`
pub mod otp {
    use super::{minutes, Duration};
    use crate::config::{Require, TotpAlgorithm};
    pub const CODE_TTL: Duration = minutes(10);
    pub const CODE_LENGTH: i64 = 6;
    pub const MAX_ATTEMPTS: i64 = 5;
    pub const TOTP_ISSUER: &str = "Portcullis";
    pub const TOTP_ALGORITHM: TotpAlgorithm = TotpAlgorithm::Sha1;
    pub const TOTP_DIGITS: i64 = 6;
    pub const TOTP_PERIOD: Duration = Duration::from_secs(30);
    pub const REQUIRE: Require = Require::Optional;
    pub const REMEMBER_DAYS: i64 = 30;
    pub const REAUTH_AFTER: Duration = minutes(5);
    pub const SEND_LIMIT: i64 = 5;
    pub const SEND_LIMIT_CLIENT: i64 = 20;
    pub const SEND_WINDOW: Duration = minutes(15);
    pub const RESEND_AFTER: Duration = Duration::from_secs(30);
}

/// `[notify]`, `[notify.smtp]`, `[notify.webhook]`
pub mod notify {
    use super::Duration;
    use crate::config::{NotifyBackend, SmtpSecurity};
    pub const BACKEND: NotifyBackend = NotifyBackend::File;
    pub const FILE: &str = "outbox.jsonl";
    pub const SMTP_SECURITY: SmtpSecurity = SmtpSecurity::StartTls;
    /// With `security = "starttls"` or `"none"`.
    pub const SMTP_PORT: i64 = 587;
    /// With `security = "tls"`.
    pub const SMTP_TLS_PORT: i64 = 465;
    pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
    pub const WEBHOOK_CONTENT_TYPE: &str = "application/json";
    /// Every field of the message as JSON.
    pub const WEBHOOK_BODY: &str = "{\"channel\": {{ channel|tojson }}, \"to\": {{ to|tojson }}, \"subject\": {{ subject|tojson }}, \"text\": {{ text|tojson }}, \"kind\": {{ kind|tojson }}}";
    pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
}

/// `[ui]`
pub mod ui {
    pub const TITLE: &str = "Sign in";
    pub const ACCENT_COLOR: &str = "#1f5fbf";
}

/// `[[rule]]` and `[access]`
pub mod access {
    use crate::policy::Policy;
    pub const RULE_PATH: &str = "/";
    pub const DEFAULT_POLICY: Policy = Policy::OneFactor;
}

/// `[assertion]`
pub mod assertion {
    use super::Duration;
    pub const TTL: Duration = Duration::from_secs(60);
}
