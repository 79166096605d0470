//! Verifying a factor, nothing else. No HTTP, no database: callers load what is needed and pass
//! plain values in, so every check here is testable on its own.

pub mod password;
pub mod recovery;
pub mod totp;
pub mod webauthn;

/// Why a factor was not accepted. One variant for "wrong user" and "wrong password" so that no
/// caller can leak which one it was.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: i64 },
    #[error("{0}")]
    WeakPassword(String),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// Too many passwords are waiting to be hashed: try again shortly (not the client's fault).
    #[error("the server is busy checking passwords; try again shortly")]
    Busy,
    #[error("this code was already used")]
    TotpReplay,
    #[error("TOTP: {0}")]
    Totp(String),
    /// A WebAuthn ceremony failed (bad origin, challenge, signature, unknown credential, ...).
    /// The message is short and safe to log or show.
    #[error("passkey verification failed: {0}")]
    Webauthn(String),
    /// The passkey's signature counter did not increase: it may have been cloned. Refuse it and
    /// record the event for the admin.
    #[error("this passkey may have been cloned (its signature counter went backwards)")]
    CloneDetected,
}
