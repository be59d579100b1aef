//! Credentials and the flows that check them.
//!
//! Credentials: password hashing and verification ([`password`]) and which new
//! passwords are accepted ([`password_policy`]), TOTP ([`totp`]), one-time and
//! backup codes ([`codes`]), and the sealing of second-factor secrets at rest
//! ([`sealed`]).
//!
//! Flows, as state machines with their diagrams in their module docs: sign-in
//! ([`signin`]), the second step with code sending and re-authentication
//! ([`second_step`]), enrolment of an authenticator app ([`enrolment`]),
//! password reset ([`reset`]) and password change ([`password_change`]). Each
//! takes typed input and the narrow dependencies of [`flow::Deps`] — never a
//! request, a form or HTML — and returns a typed outcome the portal renders;
//! [`flow::AuthError`] is what isn't an answer about the person (a service
//! down, data that can't be read). Store keys come only from
//! [`crate::store::keys`].

pub mod codes;
pub mod enrolment;
pub mod flow;
pub mod password;
pub mod password_change;
pub mod password_policy;
pub mod reset;
pub mod sealed;
pub mod second_step;
pub mod signin;
pub mod totp;
