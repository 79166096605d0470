//! UserInfo (OIDC Core §5.3) and the one place access tokens are checked: signature by a
//! published key, `typ: at+jwt`, issuer, expiry, and not revoked.

use serde_json::{json, Map, Value};

use super::claims::{user_claims, AccessClaims};
use super::{split_scope, OAuthError};
use crate::clock::Timestamp;
use crate::flow::Services;
use crate::store::users;

/// A valid, unrevoked access token's claims, or `invalid_token`.
pub async fn verify_access_token(
    svc: &Services,
    now: Timestamp,
    token: &str,
) -> Result<AccessClaims, OAuthError> {
    let keys = svc.keys.current(now).await?;
    let claims: AccessClaims = keys
        .verify(token, svc.settings.issuer.as_str(), Some("at+jwt"), true)
        .map_err(|e| OAuthError::invalid_token(e.to_string()))?;
    if svc
        .revocations
        .is_revoked(&svc.db, now, &claims.jti, claims.grant_id.as_deref())
        .await?
    {
        return Err(OAuthError::invalid_token("the access token was revoked"));
    }
    Ok(claims)
}

/// The claims the token's scopes release about its user.
pub async fn userinfo(svc: &Services, now: Timestamp, token: &str) -> Result<Value, OAuthError> {
    let claims = verify_access_token(svc, now, token).await?;
    let scopes = split_scope(&claims.scope);
    if !scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError {
            error: "insufficient_scope",
            error_description: "the token lacks the openid scope".into(),
            status: 403,
        });
    }
    let sub = claims.sub.clone();
    let user = svc
        .db
        .run(move |c| users::find(c, &sub))
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| OAuthError::invalid_token("the account is not available"))?;
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    out.extend(user_claims(&user, &scopes));
    // Roles and groups as the token carries them (read and released at its issuance).
    if let Some(r) = &claims.roles {
        out.insert("roles".into(), json!(r));
    }
    if let Some(g) = &claims.groups {
        out.insert("groups".into(), json!(g));
    }
    Ok(Value::Object(out))
}
