//! The seeded data set (`vigil seed`, keycloak-benchmark's names) and the small pieces of
//! protocol a client computes: PKCE pairs, state values, TOTP codes. Must agree with
//! `vigil::commands::load_data` and `seed_totp_secret`; the tests pin both to fixed values.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

pub const REDIRECT_URI: &str = "https://load.invalid/callback";
pub const POST_LOGOUT_REDIRECT_URI: &str = "https://load.invalid/";

pub fn username(k: u32) -> String {
    format!("user-{k}")
}
pub fn password(k: u32) -> String {
    format!("user-{k}-password")
}
pub fn client_id(k: u32) -> String {
    format!("client-{k}")
}
/// Where user `k`'s own browser connects from (sent as `X-Forwarded-For`; vigil honours it only
/// behind `VIGIL_TRUSTED_PROXIES`): one stable private address per user, so that thousands of
/// set-up sign-ins do not all come from one address, which vigil rightly treats as an attack.
pub fn home_address(k: u32) -> String {
    format!("10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255)
}
/// keycloak-benchmark's `client-K-secret` lengthened to vigil's 32-character minimum.
pub fn client_secret(k: u32) -> String {
    format!("client-{k}-secret-vigil-load-testing")
}

/// `vigil seed --totp`'s secret for `username`: SHA-256("vigil-load-totp:" + username)[..20].
pub fn totp_secret(username: &str) -> Vec<u8> {
    let d = Sha256::digest(format!("vigil-load-totp:{username}").as_bytes());
    d[..20].to_vec()
}

/// The TOTP step (30 s) of a unix time, as vigil counts them.
pub fn totp_step(unix_secs: u64) -> u64 {
    unix_secs / 30
}

/// The 6-digit SHA-1 code vigil expects for `secret` at `unix_secs` (RFC 6238, 30 s steps).
pub fn totp_code(secret: &[u8], unix_secs: u64) -> Result<String, String> {
    let t = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .with_account_name("load")
        .build()
        .map_err(|e| format!("totp: {e:?}"))?;
    Ok(t.generate(unix_secs).to_string())
}

/// A random URL-safe value (state, nonce, PKCE verifier): 32 bytes, base64url.
pub fn random_value() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A PKCE pair (RFC 7636, S256): the verifier kept by the client, the challenge sent.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = random_value();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_names() {
        assert_eq!(username(7), "user-7");
        assert_eq!(password(7), "user-7-password");
        assert_eq!(client_id(2), "client-2");
        assert!(client_secret(1).len() >= 32);
    }

    #[test]
    fn totp_secret_matches_vigil_seed() {
        // The same vector is pinned in vigil's `commands::tests`.
        assert_eq!(
            hex(&totp_secret("user-1")),
            "339b35ecc4e5e0a1177fdc8565e3855771d59a58"
        );
    }

    #[test]
    fn totp_rfc6238_vector() {
        assert_eq!(totp_code(b"12345678901234567890", 59).unwrap(), "287082");
    }

    #[test]
    fn pkce_s256_rfc7636_shape() {
        let p = Pkce::new();
        assert_eq!(p.verifier.len(), 43);
        assert_eq!(p.challenge.len(), 43);
        // RFC 7636 appendix B.
        let c = URL_SAFE_NO_PAD.encode(Sha256::digest(
            b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
