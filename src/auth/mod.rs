//! Credentials: password hashing and verification ([`password`]), TOTP
//! ([`totp`]), one-time and backup codes ([`codes`]), and the sealing of
//! second-factor secrets at rest ([`sealed`]).

pub mod codes;
pub mod password;
pub mod password_policy;
pub mod sealed;
pub mod totp;
