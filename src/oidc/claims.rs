//! What goes into ID tokens and access tokens (RFC 9068), including vigil's `risk` claim.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};

use super::RiskClaim;
use crate::store::users::User;

/// Access token claims (RFC 9068 `at+jwt`). `sub` is the user, or the client itself for
/// `client_credentials`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    /// The client the token was issued to (vigil has no separate resource indicators yet).
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskClaim>,
    /// The grant the token came from (an authorization code's id, which its refresh family
    /// keeps): revoking the grant — code replay, refresh reuse, containment — ends every token
    /// that carries it, with no row per token. Absent on `client_credentials` tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// Scope `roles`: the user's roles of the audience (RFC 9068 §2.2.3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Scope `groups`: the user's groups' names (RFC 9068 §2.2.3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

/// ID token claims (OIDC Core §2) plus the scope's standard claims, flattened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub acr: String,
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    pub risk: RiskClaim,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The standard claims a scope releases (OIDC Core §5.4).
pub fn user_claims(user: &User, scopes: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has("profile") {
        m.insert("preferred_username".into(), json!(user.username));
        if !user.name.is_empty() {
            m.insert("name".into(), json!(user.name));
        }
        m.insert(
            "updated_at".into(),
            json!(user.updated_at.div_euclid(1_000_000)),
        );
    }
    if has("email") {
        m.insert("email".into(), json!(user.email));
        // True only once a link mailed to this address was opened (`flow::email`).
        m.insert("email_verified".into(), json!(user.email_verified));
    }
    m
}

/// The scope that releases a standard claim vigil holds (the inverse of [`user_claims`]).
pub fn scope_releasing(claim: &str) -> Option<&'static str> {
    match claim {
        "name" | "preferred_username" | "updated_at" => Some("profile"),
        "email" | "email_verified" => Some("email"),
        _ => None,
    }
}

/// `at_hash`: the left half of the access token's hash, with the hash the JWS alg uses
/// (SHA-256 for RS256/ES256, SHA-512 for EdDSA with Ed25519).
pub fn at_hash(alg: &str, access_token: &str) -> String {
    use base64::Engine as _;
    let digest: Vec<u8> = if alg == "EdDSA" {
        Sha512::digest(access_token.as_bytes()).to_vec()
    } else {
        Sha256::digest(access_token.as_bytes()).to_vec()
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}
