//! TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, ±1 step of skew) with totp-rs. A code's time step
//! is accepted once: the caller stores the last step used and passes it back in.

use rand::RngCore as _;
use totp_rs::{Algorithm, Builder, Totp};

use super::AuthError;
use crate::clock::Timestamp;

pub const STEP_SECS: i64 = 30;

/// A fresh 160-bit secret (RFC 4226's recommended length).
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

fn totp(secret: &[u8], account: &str) -> Result<Totp, AuthError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS as u64)
        .with_secret(secret.to_vec())
        .with_account_name(account)
        .with_issuer(Some("vigil"))
        .build()
        .map_err(|e| AuthError::Totp(format!("{e:?}")))
}

/// The `otpauth://` URI authenticator apps import.
pub fn otpauth_uri(secret: &[u8], account: &str) -> Result<String, AuthError> {
    totp(secret, account)?
        .to_url()
        .map_err(|e| AuthError::Totp(format!("{e:?}")))
}

/// The secret in base32, for typing into an app by hand.
pub fn base32(secret: &[u8]) -> String {
    totp_rs::Secret::from(secret.to_vec()).to_base32()
}

/// The QR code of `uri` as an SVG document, drawn here (no third-party service sees the secret).
pub fn qr_svg(uri: &str) -> Result<String, AuthError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| AuthError::Totp(e.to_string()))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// Check `code` at `now`; on success return its time step. A step at or before
/// `last_used_step` is a replay.
pub fn verify(
    secret: &[u8],
    code: &str,
    now: Timestamp,
    last_used_step: Option<i64>,
) -> Result<i64, AuthError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::InvalidCredentials);
    }
    let t = totp(secret, "user")?;
    let secs = u64::try_from(now.secs()).map_err(|_| AuthError::InvalidCredentials)?;
    let step = t.check(&code, secs).ok_or(AuthError::InvalidCredentials)?;
    let step = i64::try_from(step).map_err(|_| AuthError::InvalidCredentials)?;
    if last_used_step.is_some_and(|last| step <= last) {
        return Err(AuthError::TotpReplay);
    }
    Ok(step)
}

/// The code for `at` (tests and the CLI's self-check).
pub fn code_at(secret: &[u8], at: Timestamp) -> Result<String, AuthError> {
    let secs = u64::try_from(at.secs()).map_err(|_| AuthError::InvalidCredentials)?;
    Ok(totp(secret, "user")?.generate(secs).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 Appendix B, SHA-1, T = 59 s: 94287082 (8 digits) -> 6 digits 287082.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, Timestamp::from_secs(59)).unwrap(), "287082");
    }

    #[test]
    fn skew_window_and_replay() {
        let s = new_secret();
        let now = Timestamp::from_secs(1_700_000_000);
        let step = now.secs() / STEP_SECS;
        let code = code_at(&s, now).unwrap();
        assert_eq!(verify(&s, &code, now, None).unwrap(), step);
        assert!(matches!(
            verify(&s, &code, now, Some(step)),
            Err(AuthError::TotpReplay)
        ));
        let prev = code_at(&s, now.minus_secs(30)).unwrap();
        assert_eq!(
            verify(&s, &prev, now, None).unwrap(),
            step - 1,
            "one step of skew back"
        );
        let next = code_at(&s, now.plus_secs(30)).unwrap();
        assert!(
            verify(&s, &next, now, None).is_ok(),
            "one step of skew forward"
        );
        let old = code_at(&s, now.minus_secs(90)).unwrap();
        assert!(verify(&s, &old, now, None).is_err(), "outside the window");
        assert!(verify(&s, "12345", now, None).is_err());
        assert!(verify(&s, "abcdef", now, None).is_err());
    }

    #[test]
    fn uri_and_qr() {
        let s = new_secret();
        let uri = otpauth_uri(&s, "alice").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/") && uri.contains(&base32(&s)),
            "{uri}"
        );
        assert!(qr_svg(&uri).unwrap().contains("<svg"));
    }
}
