//! The OpenID Connect protocol: validating each endpoint's request and shaping its response.
//! Knows nothing of HTTP framing (web/ does that) and nothing of SQL (store/ does that).

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod discovery;
pub mod introspect;
pub mod keys;
pub mod logout;
pub mod revoke;
pub mod signers;
pub mod token;
pub mod userinfo;

use serde::Serialize;

/// Authentication context class references (contract: ARCHITECTURE.md §4), weakest first.
pub const ACR_PWD: &str = "urn:vigil:acr:pwd";
pub const ACR_MFA: &str = "urn:vigil:acr:mfa";
pub const ACR_PHR: &str = "phr";
pub const ACRS: &[&str] = &[ACR_PWD, ACR_MFA, ACR_PHR];

/// The rank of an acr value (higher is stronger); unknown values rank above everything so that
/// a request for an unknown level can never be satisfied by accident.
pub fn acr_rank(acr: &str) -> usize {
    ACRS.iter().position(|a| *a == acr).unwrap_or(usize::MAX)
}

/// Scopes vigil knows. Unknown scopes in an authorization request are ignored (RFC 6749 §3.3).
pub const SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "roles",
    "groups",
];

/// Lifetimes of what the protocol hands out, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub request: i64,
    pub code: i64,
    pub access_token: i64,
    pub id_token: i64,
    pub refresh_sliding: i64,
    pub refresh_absolute: i64,
}

pub const LIFETIMES: Lifetimes = Lifetimes {
    request: 30 * 60,
    code: 120,
    access_token: 600,
    id_token: 600,
    refresh_sliding: 14 * 24 * 3600,
    refresh_absolute: 30 * 24 * 3600,
};

/// How far a grant's revocation at `now` must reach: tokens issued within an access token's
/// lifetime may be alive, and no token of a grant outlives its family's absolute lifetime plus
/// one access token.
pub fn grant_revocation(now: crate::clock::Timestamp) -> crate::store::tokens::GrantRevocation {
    crate::store::tokens::GrantRevocation {
        now: now.micros(),
        until: now
            .plus_secs(LIFETIMES.refresh_absolute + LIFETIMES.access_token)
            .micros(),
        tokens_since: now.minus_secs(LIFETIMES.access_token).micros(),
    }
}

/// The JOSE `typ` of ID tokens (token.rs signs them with it). A hint must carry exactly this:
/// access tokens (`at+jwt`) and logout tokens (`logout+jwt`) share `iss`, `sub` and `aud`.
pub const ID_TOKEN_TYP: &str = "JWT";

/// The longest a signed token lives: a rotated key stays published this long (+ leeway).
pub const KEY_GRACE_SECS: i64 = 660;

/// An OAuth 2.0 / OIDC error response, with the status the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}: {error_description}")]
pub struct OAuthError {
    pub error: &'static str,
    #[serde(serialize_with = "serialize_description")]
    pub error_description: String,
    #[serde(skip)]
    pub status: u16,
}

/// RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E in `error_description`. Descriptions
/// echo what the client sent (a `grant_type`, a parser's message quoting the body), so every
/// description passes through here: anything else (quotes, backslashes, CR/LF, control
/// characters, non-ASCII) becomes `?`, and it cannot break a JSON consumer, a redirect's query
/// or the `WWW-Authenticate` header.
pub fn clean_description(d: &str) -> String {
    d.chars()
        .map(|c| match c {
            '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e' => c,
            _ => '?',
        })
        .collect()
}

fn serialize_description<S: serde::Serializer>(d: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&clean_description(d))
}

macro_rules! oauth_errors {
    ($($fn_name:ident => $code:literal, $status:literal;)*) => {
        impl OAuthError {
            $(
                pub fn $fn_name(d: impl Into<String>) -> Self {
                    OAuthError {
                        error: $code,
                        error_description: clean_description(&d.into()),
                        status: $status,
                    }
                }
            )*
        }
    };
}

oauth_errors! {
    invalid_request => "invalid_request", 400;            // RFC 6749 §4.1.2.1, §5.2
    invalid_client => "invalid_client", 401;              // §5.2
    invalid_grant => "invalid_grant", 400;                // §5.2
    unauthorized_client => "unauthorized_client", 400;    // §5.2
    unsupported_grant_type => "unsupported_grant_type", 400;
    invalid_scope => "invalid_scope", 400;
    access_denied => "access_denied", 400;                // §4.1.2.1
    unsupported_response_type => "unsupported_response_type", 400;
    server_error => "server_error", 500;
    temporarily_unavailable => "temporarily_unavailable", 503; // §4.1.2.1; used at §5.2 too
    login_required => "login_required", 400;              // OIDC Core §3.1.2.6
    consent_required => "consent_required", 400;
    interaction_required => "interaction_required", 400;
    request_not_supported => "request_not_supported", 400;
    request_uri_not_supported => "request_uri_not_supported", 400;
    invalid_token => "invalid_token", 401;                // RFC 6750 §3.1
    unsupported_token_type => "unsupported_token_type", 400; // RFC 7009 §2.2.1
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        if let crate::store::StoreError::Unavailable(m) = &e {
            // Debug: the pool logs once when the database goes and once when it is back.
            tracing::debug!(error = %m, "database unavailable: answered 503");
            return OAuthError::unavailable();
        }
        tracing::error!(error = %e, "storage failed during a protocol request");
        OAuthError::server_error("the server could not complete the request")
    }
}

impl From<keys::KeyError> for OAuthError {
    fn from(e: keys::KeyError) -> Self {
        if let keys::KeyError::Store(s) = e {
            return s.into();
        }
        tracing::error!(error = %e, "signing keys failed");
        OAuthError::server_error("the server could not complete the request")
    }
}

impl OAuthError {
    /// The database cannot be reached: 503 `temporarily_unavailable`, try again shortly.
    pub fn unavailable() -> Self {
        OAuthError::temporarily_unavailable(
            "the server cannot use its database at the moment; try again shortly",
        )
    }

    pub fn is_unavailable(&self) -> bool {
        self.error == "temporarily_unavailable"
    }

    /// A flow's failure at a protocol endpoint: `temporarily_unavailable` when the database
    /// cannot be reached, else `server_error` with `e`'s text (what these endpoints said before).
    pub fn from_flow(e: crate::flow::FlowError) -> Self {
        match e {
            crate::flow::FlowError::Store(s @ crate::store::StoreError::Unavailable(_)) => s.into(),
            other => OAuthError::server_error(other.to_string()),
        }
    }
}

/// Decode an `application/x-www-form-urlencoded` body (token, introspection, revocation) into
/// `T`. A parameter sent twice is `invalid_request` (RFC 6749 §3.1: serde refuses a duplicate
/// field), as is anything else serde cannot read; the description never quotes raw bytes
/// outside RFC 6749 §5.2's character set ([`clean_description`]).
pub fn parse_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, OAuthError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| OAuthError::invalid_request(format!("malformed body ({e})")))
}

/// Split a space-delimited parameter into its distinct values, in order.
pub fn split_scope(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(' ').filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == part) {
            out.push(part.to_owned());
        }
    }
    out
}

/// The risk assessment carried in tokens (contract). Until the risk engine lands it is neutral.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RiskClaim {
    pub score: u8,
    pub level: String,
    pub decision: String,
    pub reasons: Vec<String>,
    pub model: String,
}

impl RiskClaim {
    pub fn neutral() -> Self {
        RiskClaim {
            score: 0,
            level: "low".into(),
            decision: "allow".into(),
            reasons: vec![],
            model: "none".into(),
        }
    }
}
