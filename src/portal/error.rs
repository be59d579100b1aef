//! The portal's one error type, [`PortalError`], and the one place it becomes a
//! response ([`PortalError::respond`]). Handlers return
//! `Result<Response, PortalError>` and use `?`; the person sees a plain message
//! (with `Retry-After` where waiting helps), the log gets the cause, and nothing
//! here is ever a 500.

use std::time::Duration;

use super::{status_page, Request, Response};
use crate::app::App;
use crate::auth::flow::AuthError;
use crate::store::StoreError;
use crate::users::store::AccountError;

#[derive(Debug)]
pub enum PortalError {
    /// The store (sessions, counters, codes) can't be reached: 503, retry in 5 s.
    Unavailable,
    /// The account database can't be reached: 503, retry in a minute.
    AccountsUnavailable,
    /// Stored data this version can't use (logged where it was met): 503.
    Undecodable,
    /// The account's stored password hash can't be read: 503, contact support.
    PasswordUnreadable,
    /// The argon2 pool is full: 503 + `Retry-After: 5`.
    Busy,
    /// One client over its rate: 429 + `Retry-After`.
    TooMany(Duration),
    /// The form can't be read: 400.
    BadForm,
    /// CSRF token or `Origin` wrong: 403 "This form has expired".
    FormExpired,
    /// The page needs a (complete) sign-in first: where to go instead (a redirect
    /// to the step, or 401 JSON for API clients; made by [`crate::respond`]).
    GoFirst(Box<Response>),
    /// A change to one account wasn't made (`what`: "password", ...).
    NotChanged {
        what: &'static str,
        why: AccountError,
    },
}

impl From<StoreError> for PortalError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Encoding(_) => {
                tracing::error!(error = %e, "portal: a stored value can't be encoded or decoded");
                PortalError::Undecodable
            }
            StoreError::Unavailable(_) | StoreError::Full => {
                tracing::warn!(error = %e, "portal: store unavailable");
                PortalError::Unavailable
            }
        }
    }
}

impl From<AuthError> for PortalError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => e.into(),
            AuthError::Accounts(e) => {
                tracing::warn!(error = %e, "portal: accounts unavailable");
                PortalError::AccountsUnavailable
            }
            AuthError::Decode { what } => {
                tracing::error!(what, "portal: stored data can't be decoded");
                PortalError::Undecodable
            }
            AuthError::HashUnreadable { user } => {
                // Never the hash itself: only whose it is.
                tracing::error!(user = %user, "stored password hash can't be read; fix the account (portcullis user set-password)");
                PortalError::PasswordUnreadable
            }
            AuthError::NotChanged { what, why } => PortalError::NotChanged { what, why },
            AuthError::Hash(e) => {
                tracing::error!(error = %e, "password hashing failed");
                PortalError::Undecodable
            }
        }
    }
}

impl PortalError {
    /// The one mapping from an error to what the person (or script) gets.
    pub fn respond(self, app: &App, req: &Request<'_>) -> Response {
        let this = match self {
            PortalError::GoFirst(r) => return *r,
            PortalError::NotChanged { what, why } => return not_changed(app, what, &why),
            other => other,
        };
        let html = req.accept_html;
        let (status, heading, text, retry): (u16, &str, String, Option<u64>) = match &this {
            // (GoFirst and NotChanged were answered above.)
            PortalError::Unavailable
            | PortalError::Undecodable
            | PortalError::GoFirst(_)
            | PortalError::NotChanged { .. } => (
                503,
                "Temporarily unavailable",
                "Sign-in is unavailable for a moment. Please try again shortly.".into(),
                Some(5),
            ),
            PortalError::AccountsUnavailable => (
                503,
                "Temporarily unavailable",
                "Accounts can't be reached right now. Nothing was changed. Please try again in a few minutes.".into(),
                Some(60),
            ),
            PortalError::PasswordUnreadable => (
                503,
                "Password can't be checked",
                "We couldn't check your password: something is wrong with how this account is stored. \
                 Please contact support; nothing was changed."
                    .into(),
                None,
            ),
            PortalError::Busy => (
                503,
                "Busy",
                "Too many sign-ins at this moment. Try again in a few seconds.".into(),
                Some(5),
            ),
            PortalError::TooMany(wait) => {
                app.metrics.rate_limited.inc();
                let secs = wait.as_secs().max(1);
                let text = app.ui.load().texts.text(
                    crate::i18n::current().lang,
                    "status-too-many-text",
                    &[("secs", fluent_bundle::FluentValue::from(secs))],
                );
                (429, "Too many attempts", text, Some(secs))
            }
            PortalError::BadForm => (
                400,
                "Bad request",
                "The form could not be read.".into(),
                None,
            ),
            PortalError::FormExpired => (
                403,
                "This form has expired",
                "For your security the form could not be accepted. Go back, reload the page and try again.".into(),
                None,
            ),
        };
        let mut r = status_page(app, html, status, heading, &text);
        if let Some(secs) = retry {
            r.header("Retry-After", secs.to_string());
        }
        r
    }
}

/// A change to one account that wasn't made: why, in words.
fn not_changed(app: &App, what: &str, why: &AccountError) -> Response {
    tracing::error!(error = %why, change = what, "account not updated");
    match why {
        AccountError::NotFound(_) => status_page(
            app,
            true,
            400,
            "Account not found",
            "This account no longer exists.",
        ),
        AccountError::Unavailable(_) => {
            let mut r = status_page(
                app,
                true,
                503,
                "Temporarily unavailable",
                &format!("Your {what} was not changed: accounts can't be reached right now. Please try again in a few minutes."),
            );
            r.header("Retry-After", "60");
            r
        }
        e => status_page(
            app,
            true,
            409,
            "Not changed",
            &format!("Your {what} was not changed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_mapped_deliberately() {
        let cases: Vec<(PortalError, &str)> = vec![
            (StoreError::Unavailable("down".into()).into(), "Unavailable"),
            (StoreError::Full.into(), "Unavailable"),
            (
                StoreError::Encoding("bad json".into()).into(),
                "Undecodable",
            ),
            (
                AuthError::Store(StoreError::Unavailable("x".into())).into(),
                "Unavailable",
            ),
            (
                AuthError::Accounts(AccountError::Unavailable("db".into())).into(),
                "AccountsUnavailable",
            ),
            (AuthError::Decode { what: "a code" }.into(), "Undecodable"),
            (
                AuthError::HashUnreadable { user: "hal".into() }.into(),
                "PasswordUnreadable",
            ),
            (AuthError::Hash("join".into()).into(), "Undecodable"),
            (
                AuthError::NotChanged {
                    what: "password",
                    why: AccountError::NotFound("x".into()),
                }
                .into(),
                "NotChanged",
            ),
        ];
        for (e, want) in cases {
            assert!(format!("{e:?}").starts_with(want), "{e:?} is not {want}");
        }
    }
}
