//! jsonwebtoken with parsed signing keys kept in memory.
//!
//! jsonwebtoken's aws-lc backend parses the private key from DER on every signature. For RSA
//! that parse (with its key check) and the fresh blinding values it forces cost about as much
//! as the signature itself: the load tool measured RS256 issuance at half the rate the same
//! machine signs with a key already parsed. This module installs a jsonwebtoken
//! [`CryptoProvider`] — the crate's documented extension point — whose signers come from a small
//! process-wide table of parsed aws-lc key pairs, keyed by the key's DER. Encoding and
//! verification stay jsonwebtoken's and aws-lc's; nothing here touches a signature's bytes.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Once, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{self, Signer};
use jsonwebtoken::{Algorithm, EncodingKey};

/// More distinct keys than a key set ever holds (three algorithms, a few rotations): past this
/// the table starts again rather than growing.
const MAX_KEYS: usize = 32;

#[derive(Clone)]
enum Parsed {
    Rs256(Arc<RsaKeyPair>),
    Es256(Arc<EcdsaKeyPair>),
    EdDsa(Arc<Ed25519KeyPair>),
}

/// Parsed key pairs by algorithm and DER.
type Table = HashMap<(AlgKey, Vec<u8>), Parsed>;

static PARSED: LazyLock<RwLock<Table>> = LazyLock::new(|| RwLock::new(HashMap::new()));

/// `Algorithm` is not `Hash`; the three vigil signs with are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum AlgKey {
    Rs256,
    Es256,
    EdDsa,
}

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| {
    let default = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    CryptoProvider {
        signer_factory: signer,
        verifier_factory: default.verifier_factory,
        jwk_utils: default.jwk_utils.clone(),
    }
});

/// Make the cached signers jsonwebtoken's default for this process. Idempotent; called before
/// any key set signs.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Already installed by someone else (a test harness): their provider stands.
        let _ = PROVIDER.install_default();
    });
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    let k = match alg {
        Algorithm::RS256 => AlgKey::Rs256,
        Algorithm::ES256 => AlgKey::Es256,
        Algorithm::EdDSA => AlgKey::EdDsa,
        // Not an algorithm vigil signs with: jsonwebtoken's own signer, uncached.
        _ => return (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.signer_factory)(alg, key),
    };
    let der = key.inner();
    let cached = PARSED
        .read()
        .ok()
        .and_then(|t| t.get(&(k, der.to_vec())).cloned());
    let parsed = match cached {
        Some(p) => p,
        None => {
            let p = parse(k, der)?;
            if let Ok(mut t) = PARSED.write() {
                if t.len() >= MAX_KEYS {
                    t.clear();
                }
                t.insert((k, der.to_vec()), p.clone());
            }
            p
        }
    };
    Ok(Box::new(CachedSigner {
        alg: *alg,
        key: parsed,
    }))
}

fn parse(k: AlgKey, der: &[u8]) -> Result<Parsed, Error> {
    Ok(match k {
        AlgKey::Rs256 => Parsed::Rs256(Arc::new(
            RsaKeyPair::from_der(der)
                .map_err(|_| Error::from(ErrorKind::InvalidRsaKey(String::new())))?,
        )),
        AlgKey::Es256 => Parsed::Es256(Arc::new(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?,
        )),
        AlgKey::EdDsa => Parsed::EdDsa(Arc::new(
            Ed25519KeyPair::from_pkcs8(der).map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?,
        )),
    })
}

struct CachedSigner {
    alg: Algorithm,
    key: Parsed,
}

impl Signer<Vec<u8>> for CachedSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let rng = SystemRandom::new();
        match &self.key {
            Parsed::Rs256(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .map_err(signature::Error::from_source)?;
                Ok(sig)
            }
            Parsed::Es256(k) => Ok(k
                .sign(&rng, msg)
                .map_err(signature::Error::from_source)?
                .as_ref()
                .to_vec()),
            Parsed::EdDsa(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for CachedSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::Timestamp;
    use crate::oidc::keys::KeySet;

    /// Tokens signed through the cached key pairs verify with the published keys, for every
    /// algorithm and again on the second use (the cached path).
    #[test]
    fn cached_signers_produce_tokens_that_verify() {
        let now = Timestamp::from_secs(1_700_000_000);
        let keys = KeySet::ephemeral(now).expect("keys");
        let claims = serde_json::json!({
            "iss": "https://vigil.example", "sub": "s", "aud": "a",
            "iat": 1_700_000_000i64, "exp": 4_000_000_000i64,
        });
        for alg in ["RS256", "ES256", "EdDSA"] {
            for _ in 0..2 {
                let jwt = keys.sign(alg, "JWT", &claims).expect("sign");
                let back: serde_json::Value = keys
                    .verify(&jwt, "https://vigil.example", Some("JWT"), true)
                    .expect("verifies");
                assert_eq!(back["sub"], "s", "{alg}");
            }
        }
    }
}
