//! Signing keys: generation (aws-lc-rs), sealing at rest, the JWKS, signing and verifying JWTs
//! (jsonwebtoken with its aws-lc-rs backend — ≈0.24 ms per RS256 signature here, against ≈2.9 ms
//! for the pure-Rust `rsa` crate).
//!
//! ```text
//!  generated ──> active (signs; published) ──rotate──> rotated (verifies; published until every
//!                                                      token it signed has expired) ──> retired
//! ```
//! Keys live in the database so every node signs and verifies with the same set; each node
//! caches the set for a few seconds and reloads it, so a rotation on one node reaches the others.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::clock::Timestamp;
use crate::sealing::MasterKey;
use crate::store::keys::{self as rows, KeyRow};
use crate::store::{new_id, Db, DbConn, StoreError};

/// The algorithms vigil signs with. RS256 is required by OIDC and is the default.
pub const ALGS: &[&str] = &["RS256", "ES256", "EdDSA"];
/// How long a node trusts its cached key set before reloading it from the database.
const CACHE_SECS: i64 = 10;
/// How far ahead of this node's clock another node's may run: a token's `iat` up to this many
/// seconds in the future is accepted (nodes of one deployment skewed by ±30 s, i.e. 60 s apart,
/// work with room to spare; tests/it/faults.rs). `exp` and `nbf` keep a 5 s leeway.
pub const MAX_CLOCK_SKEW_SECS: i64 = 120;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("stored key {0} cannot be used: {1}")]
    Stored(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no active {0} signing key")]
    NoKey(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Why a JWT was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown or retired signing key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
}

fn alg_of(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new key pair: PKCS#8 private key and the public JWK (without kid).
fn generate(alg: &str) -> Result<(Vec<u8>, serde_json::Value), KeyError> {
    let gen = |e: &dyn std::fmt::Debug| KeyError::Generate(format!("{alg}: {e:?}"));
    match alg {
        "RS256" => {
            let kp = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| gen(&e))?;
            let der = kp.as_der().map_err(|e| gen(&e))?.as_ref().to_vec();
            let (n, e) = rsa_public_parts(&der).map_err(|e| gen(&e))?;
            Ok((der, json!({ "kty": "RSA", "n": b64(&n), "e": b64(&e) })))
        }
        "ES256" => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|e| gen(&e))?;
            let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .map_err(|e| gen(&e))?;
            let point = kp.public_key().as_ref();
            // Uncompressed SEC1 point: 0x04 ‖ X ‖ Y.
            if point.len() != 65 {
                return Err(KeyError::Generate("unexpected P-256 point".into()));
            }
            Ok((
                doc.as_ref().to_vec(),
                json!({ "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]) }),
            ))
        }
        "EdDSA" => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| gen(&e))?;
            let kp = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|e| gen(&e))?;
            Ok((
                doc.as_ref().to_vec(),
                json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref()) }),
            ))
        }
        other => Err(KeyError::Generate(format!("unsupported algorithm {other}"))),
    }
}

/// PKCS#8 (RSA) -> the inner PKCS#1 key, as jsonwebtoken's RSA signer expects.
fn rsa_pkcs1(pkcs8_der: &[u8]) -> Result<Vec<u8>, String> {
    let info = pkcs8::PrivateKeyInfo::try_from(pkcs8_der).map_err(|e| e.to_string())?;
    Ok(info.private_key.to_vec())
}

fn rsa_public_parts(pkcs8_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let pkcs1_der = rsa_pkcs1(pkcs8_der)?;
    let key = pkcs1::RsaPrivateKey::try_from(pkcs1_der.as_slice()).map_err(|e| e.to_string())?;
    Ok((
        key.modulus.as_bytes().to_vec(),
        key.public_exponent.as_bytes().to_vec(),
    ))
}

/// The signing and verifying halves of a key: the private key (PKCS#8 DER) and its public JWK.
fn key_pair(
    alg_name: &str,
    der: &[u8],
    jwk: &serde_json::Value,
) -> Result<(Algorithm, EncodingKey, DecodingKey), String> {
    let alg = alg_of(alg_name).ok_or_else(|| "unknown algorithm".to_owned())?;
    let s = |k: &str| jwk[k].as_str().unwrap_or_default().to_owned();
    let (encoding, decoding) = match alg {
        Algorithm::RS256 => (
            EncodingKey::from_rsa_der(&rsa_pkcs1(der)?),
            DecodingKey::from_rsa_components(&s("n"), &s("e")).map_err(|e| e.to_string())?,
        ),
        Algorithm::ES256 => (
            EncodingKey::from_ec_der(der),
            DecodingKey::from_ec_components(&s("x"), &s("y")).map_err(|e| e.to_string())?,
        ),
        _ => (
            EncodingKey::from_ed_der(der),
            DecodingKey::from_ed_components(&s("x")).map_err(|e| e.to_string())?,
        ),
    };
    Ok((alg, encoding, decoding))
}

/// One usable key.
struct LoadedKey {
    kid: String,
    alg: Algorithm,
    active: bool,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The keys in force at one moment, with the JWKS body serialised once.
pub struct KeySet {
    loaded_at: Timestamp,
    keys: Vec<LoadedKey>,
    jwks: String,
}

impl KeySet {
    /// A set held only in memory: one fresh active key per algorithm of [`ALGS`], loaded at
    /// `now`, never stored or sealed. For tools and harnesses that sign and verify without a
    /// database (the fuzz targets); the server always uses [`Keys::current`].
    pub fn ephemeral(now: Timestamp) -> Result<KeySet, KeyError> {
        let mut keys = Vec::new();
        let mut jwks = Vec::new();
        for (i, name) in ALGS.iter().enumerate() {
            let (der, mut jwk) = generate(name)?;
            let kid = format!("ephemeral-{i}-{name}");
            jwk["kid"] = json!(kid);
            jwk["use"] = json!("sig");
            jwk["alg"] = json!(name);
            let (alg, encoding, decoding) = key_pair(name, &der, &jwk)
                .map_err(|e| KeyError::Generate(format!("{name}: {e}")))?;
            jwks.push(jwk);
            keys.push(LoadedKey {
                kid,
                alg,
                active: true,
                encoding,
                decoding,
            });
        }
        Ok(KeySet {
            loaded_at: now,
            keys,
            jwks: json!({ "keys": jwks }).to_string(),
        })
    }

    /// The JWKS document (`/jwks`).
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    fn signer(&self, alg: Algorithm) -> Option<&LoadedKey> {
        self.keys.iter().find(|k| k.alg == alg && k.active)
    }

    /// Sign `claims` with the active key of `alg` (a name from [`ALGS`]), with header `typ`.
    pub fn sign<T: Serialize>(&self, alg: &str, typ: &str, claims: &T) -> Result<String, KeyError> {
        let a = alg_of(alg).ok_or_else(|| KeyError::NoKey(alg.into()))?;
        let key = self.signer(a).ok_or_else(|| KeyError::NoKey(alg.into()))?;
        super::signers::install();
        let mut header = Header::new(a);
        header.kid = Some(key.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// Verify a JWT signed by one of our published keys. Only the key named by `kid` is tried,
    /// only with that key's own algorithm: `alg: none` and HMAC can never pass.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        typ: Option<&str>,
        check_exp: bool,
    ) -> Result<T, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(VerifyError::UnknownKey)?;
        if header.alg != key.alg {
            return Err(VerifyError::Invalid(
                "algorithm does not match the key".into(),
            ));
        }
        if let Some(t) = typ {
            if !header
                .typ
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(t))
            {
                return Err(VerifyError::Invalid("wrong token type".into()));
            }
        }
        let mut v = Validation::new(key.alg);
        v.set_issuer(&[issuer]);
        v.validate_aud = false;
        v.validate_exp = check_exp;
        v.leeway = 5;
        // jsonwebtoken checks neither `nbf` (unless asked) nor `iat`: a token not yet valid, or
        // "issued" in the future, was not issued by this clock and is refused everywhere
        // (found by the forged-token suite, tests/it/adversarial.rs).
        v.validate_nbf = true;
        if !check_exp {
            v.required_spec_claims.remove("exp");
        }
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &v)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?
            .claims;
        // Now by vigil's clock: the set was loaded at most CACHE_SECS ago. Another node of the
        // same deployment may run ahead of this one: its tokens' `iat` is tolerated up to
        // MAX_CLOCK_SKEW_SECS in the future, and refused beyond.
        let now = self.loaded_at.micros() / 1_000_000 + CACHE_SECS;
        if claims
            .get("iat")
            .and_then(serde_json::Value::as_i64)
            .is_some_and(|iat| iat > now + MAX_CLOCK_SKEW_SECS)
        {
            return Err(VerifyError::Invalid("issued in the future".into()));
        }
        serde_json::from_value(claims).map_err(|e| VerifyError::Invalid(e.to_string()))
    }
}

/// The shared key store with its per-node cache.
pub struct Keys {
    master: Arc<MasterKey>,
    db: Db,
    cache: RwLock<Option<Arc<KeySet>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys")
    }
}

impl Keys {
    pub fn new(master: Arc<MasterKey>, db: Db) -> Self {
        Keys {
            master,
            db,
            cache: RwLock::new(None),
        }
    }

    /// Make sure every algorithm has an active key (first start, or a new algorithm).
    pub fn ensure(&self, conn: &mut DbConn, now: Timestamp) -> Result<(), KeyError> {
        let rows = rows::all(conn)?;
        for alg in ALGS {
            if !rows.iter().any(|r| r.alg == *alg && r.rotated_at.is_none()) {
                self.create(conn, alg, now)?;
            }
        }
        Ok(())
    }

    fn create(&self, conn: &mut DbConn, alg: &str, now: Timestamp) -> Result<KeyRow, KeyError> {
        let (der, mut jwk) = generate(alg)?;
        let kid = new_id();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(alg);
        let row = KeyRow {
            private_enc: self
                .master
                .seal(&kid, &der)
                .map_err(|e| KeyError::Generate(e.to_string()))?,
            id: kid,
            alg: alg.to_owned(),
            public_jwk: jwk.to_string(),
            created_at: now.micros(),
            rotated_at: None,
            publish_until: None,
        };
        rows::insert(conn, &row)?;
        Ok(row)
    }

    /// Make a new key active for every algorithm. Old keys stay published for `grace_secs`
    /// (the longest lifetime of a token they signed), then drop out of the JWKS.
    pub fn rotate(
        &self,
        conn: &mut DbConn,
        now: Timestamp,
        grace_secs: i64,
    ) -> Result<Vec<KeyRow>, KeyError> {
        let mut created = Vec::new();
        for alg in ALGS {
            rows::retire_active(conn, alg, now.micros(), now.plus_secs(grace_secs).micros())?;
            created.push(self.create(conn, alg, now)?);
        }
        self.invalidate();
        Ok(created)
    }

    /// Forget the cached set (after a change made by this node).
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.cache.write() {
            *c = None;
        }
    }

    /// The current key set, reloaded from the database when the cached one is a few seconds old.
    pub async fn current(&self, now: Timestamp) -> Result<Arc<KeySet>, KeyError> {
        if let Ok(c) = self.cache.read() {
            if let Some(set) = c.as_ref() {
                if now.micros() - set.loaded_at.micros() < CACHE_SECS * 1_000_000 {
                    return Ok(set.clone());
                }
            }
        }
        let rows = self
            .db
            .run(move |c| rows::published(c, now.micros()))
            .await?;
        let set = Arc::new(self.load(rows, now)?);
        if let Ok(mut c) = self.cache.write() {
            *c = Some(set.clone());
        }
        Ok(set)
    }

    /// [`Keys::current`] for publishing (`/jwks`): while the database cannot be reached, the
    /// last set this node loaded — keys cannot change while nothing can be written, and relying
    /// parties keep verifying tokens. Verification itself keeps using [`Keys::current`].
    pub async fn published(&self, now: Timestamp) -> Result<Arc<KeySet>, KeyError> {
        match self.current(now).await {
            Err(KeyError::Store(StoreError::Unavailable(e))) => self
                .cache
                .read()
                .ok()
                .and_then(|c| c.clone())
                .ok_or(KeyError::Store(StoreError::Unavailable(e))),
            other => other,
        }
    }

    fn load(&self, rows: Vec<KeyRow>, now: Timestamp) -> Result<KeySet, KeyError> {
        let mut keys = Vec::new();
        let mut jwks = Vec::new();
        let mut active_seen: HashMap<String, bool> = HashMap::new();
        for r in rows {
            let bad = |e: String| KeyError::Stored(r.id.clone(), e);
            let alg = alg_of(&r.alg).ok_or_else(|| bad("unknown algorithm".into()))?;
            let der = self
                .master
                .open(&r.id, &r.private_enc)
                .map_err(|e| bad(e.to_string()))?;
            let jwk: serde_json::Value =
                serde_json::from_str(&r.public_jwk).map_err(|e| bad(e.to_string()))?;
            let (_, encoding, decoding) = key_pair(&r.alg, &der, &jwk).map_err(bad)?;
            // Newest first: the first un-rotated key of an algorithm is the one that signs.
            let active = r.rotated_at.is_none() && !active_seen.contains_key(&r.alg);
            if active {
                active_seen.insert(r.alg.clone(), true);
            }
            jwks.push(jwk);
            keys.push(LoadedKey {
                kid: r.id,
                alg,
                active,
                encoding,
                decoding,
            });
        }
        let jwks = json!({ "keys": jwks }).to_string();
        Ok(KeySet {
            loaded_at: now,
            keys,
            jwks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_public_parts() {
        for alg in ALGS {
            let (der, jwk) = generate(alg).unwrap();
            assert!(!der.is_empty());
            assert!(jwk["kty"].is_string(), "{alg}");
        }
    }
}
