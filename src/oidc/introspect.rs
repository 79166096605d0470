//! Token introspection (RFC 7662) for resource servers: client-authenticated; an inactive,
//! unknown or malformed token is simply `{"active": false}`.
//!
//! A caller learns about a token only if it is that token's business: the client it was issued
//! to, or (access tokens) its audience. Any other client gets the same `{"active": false}` as
//! for garbage (§2.2), so introspection cannot be used to probe other clients' tokens.

use serde::Deserialize;
use serde_json::{json, Value};

use super::client_auth::{authenticate, Presented};
use super::userinfo::verify_access_token;
use super::OAuthError;
use crate::clock::Timestamp;
use crate::flow::Services;
use crate::store::{token_digest, tokens, users};

#[derive(Debug, Default, Deserialize)]
pub struct IntrospectParams {
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

pub async fn introspect(
    svc: &Services,
    now: Timestamp,
    authorization: Option<&str>,
    p: IntrospectParams,
) -> Result<Value, OAuthError> {
    let client = authenticate(
        svc,
        now,
        Presented::from_parts(authorization, p.client_id, p.client_secret)?,
    )
    .await?;
    if client.public {
        return Err(OAuthError::invalid_client(
            "introspection needs a confidential client",
        ));
    }
    let token = p
        .token
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if token.len() > 8192 {
        return Ok(json!({ "active": false }));
    }
    let verified = verify_access_token(svc, now, &token).await;
    // A token this node cannot check now (the revocations cannot be read) is not "inactive".
    if let Err(e) = &verified {
        if e.is_unavailable() {
            return Err(e.clone());
        }
    }
    if let Ok(c) = verified {
        if c.client_id != client.id && c.aud != client.id {
            return Ok(json!({ "active": false }));
        }
        let sub = c.sub.clone();
        let username = svc
            .db
            .run(move |db| users::find(db, &sub))
            .await?
            .map(|u| u.username);
        let mut v = json!({
            "active": true,
            "token_type": "Bearer",
            "scope": c.scope,
            "client_id": c.client_id,
            "sub": c.sub,
            "aud": c.aud,
            "iss": c.iss,
            "exp": c.exp,
            "iat": c.iat,
            "jti": c.jti,
        });
        if let Some(u) = username {
            v["username"] = json!(u);
        }
        for (k, val) in [
            ("auth_time", json!(c.auth_time)),
            ("acr", json!(c.acr)),
            ("amr", json!(c.amr)),
            ("sid", json!(c.sid)),
            ("risk", json!(c.risk)),
            ("roles", json!(c.roles)),
            ("groups", json!(c.groups)),
        ] {
            if !val.is_null() {
                v[k] = val;
            }
        }
        return Ok(v);
    }
    let hash = token_digest(&token);
    if let Some(r) = svc.db.run(move |c| tokens::find_refresh(c, &hash)).await? {
        // Only the client that holds a refresh token may ask about it.
        let live = r.client_id == client.id
            && r.revoked_at.is_none()
            && r.used_at.is_none()
            && r.expires_at > now.micros()
            && r.family_expires_at > now.micros();
        if live {
            let risk: Value = serde_json::from_str(&r.risk).unwrap_or(Value::Null);
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": r.scope,
                "client_id": r.client_id,
                "sub": r.user_id,
                "exp": r.expires_at.div_euclid(1_000_000),
                "iat": r.created_at.div_euclid(1_000_000),
                "auth_time": r.auth_time.div_euclid(1_000_000),
                "acr": r.acr,
                "risk": risk,
            }));
        }
    }
    Ok(json!({ "active": false }))
}
