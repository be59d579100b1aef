//! Credentials: password hashing and verification. Later: TOTP, one-time and
//! backup codes (see the second-factor issue).

pub mod password;
