//! Token revocation (RFC 7009). Unknown tokens, and tokens of other clients, answer 200 like a
//! success (§2.2): the endpoint must not become an oracle.

use serde::Deserialize;

use super::client_auth::{authenticate, Presented};
use super::keys::VerifyError;
use super::OAuthError;
use crate::clock::Timestamp;
use crate::flow::Services;
use crate::oidc::claims::AccessClaims;
use crate::store::{token_digest, tokens};

#[derive(Debug, Default, Deserialize)]
pub struct RevokeParams {
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

pub async fn revoke(
    svc: &Services,
    now: Timestamp,
    authorization: Option<&str>,
    p: RevokeParams,
) -> Result<(), OAuthError> {
    let client = authenticate(
        svc,
        now,
        Presented::from_parts(authorization, p.client_id, p.client_secret)?,
    )
    .await?;
    let token = p
        .token
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if token.len() > 8192 {
        return Ok(());
    }
    let hash = token_digest(&token);
    let client_id = client.id.clone();
    if let Some(r) = svc.db.run(move |c| tokens::find_refresh(c, &hash)).await? {
        if r.client_id == client_id {
            let family = r.family_id.clone();
            svc.db
                .run(move |c| tokens::revoke_family(c, &family, super::grant_revocation(now)))
                .await?;
        }
        return Ok(());
    }
    // An access token: expired ones need no revoking, but accept them quietly.
    let keys = svc.keys.current(now).await?;
    let claims: Result<AccessClaims, VerifyError> =
        keys.verify(&token, svc.settings.issuer.as_str(), Some("at+jwt"), false);
    if let Ok(c) = claims {
        if c.client_id == client.id {
            svc.db
                .run(move |db| {
                    let until = c.exp.saturating_add(5).saturating_mul(1_000_000);
                    tokens::revoke_access(db, &c.jti, now.micros(), until)
                })
                .await?;
        }
    }
    Ok(())
}
