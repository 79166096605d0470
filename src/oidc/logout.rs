//! RP-initiated logout (OpenID RP-Initiated Logout 1.0) and back-channel logout
//! (OpenID Back-Channel Logout 1.0).
//!
//! A redirect after logout goes only to a `post_logout_redirect_uri` registered, exactly, for
//! the client the request identifies (by `client_id` or by the `aud` of a valid
//! `id_token_hint`); otherwise vigil shows its own signed-out page.

use std::sync::LazyLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::claims::IdClaims;
use super::keys::KeySet;
use crate::clock::Timestamp;
use crate::flow::Services;
use crate::store::clients::{self, Client};
use crate::store::{authz, new_id, sessions::Session};

#[derive(Debug, Default, Clone, Deserialize)]
pub struct LogoutParams {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub ui_locales: Option<String>,
}

/// What a logout request resolves to.
#[derive(Debug, Clone)]
pub struct LogoutPlan {
    /// The user the id_token_hint names (`sub`), when a valid hint was given.
    pub hinted_sub: Option<String>,
    pub client: Option<Client>,
    /// Where to send the browser afterwards, with `state`; `None` shows vigil's page.
    pub redirect: Option<String>,
}

/// Check a logout request. `Err` carries a message for an error page.
pub async fn plan(svc: &Services, now: Timestamp, p: &LogoutParams) -> Result<LogoutPlan, String> {
    let mut hinted_sub = None;
    let mut client_id = p.client_id.clone().filter(|c| c.len() <= 128);
    if let Some(hint) = &p.id_token_hint {
        let keys = svc
            .keys
            .current(now)
            .await
            .map_err(|_| "The sign-out service is unavailable.".to_owned())?;
        // Expired hints are fine: logout often happens long after sign-in.
        let claims: IdClaims = keys
            .verify(hint, svc.settings.issuer.as_str(), None, false)
            .map_err(|_| "The sign-out request carries an invalid id_token_hint.".to_owned())?;
        if client_id.as_ref().is_some_and(|c| *c != claims.aud) {
            return Err("The sign-out request names two different applications.".into());
        }
        client_id = Some(claims.aud.clone());
        hinted_sub = Some(claims.sub);
    }
    let client = match client_id {
        Some(id) => svc
            .db
            .run(move |c| clients::find(c, &id))
            .await
            .map_err(|_| "The sign-out service is unavailable.".to_owned())?,
        None => None,
    };
    let redirect = match (&client, &p.post_logout_redirect_uri) {
        (Some(c), Some(uri)) if c.post_logout_redirect_uris.iter().any(|r| r == uri) => {
            let mut u =
                url::Url::parse(uri).map_err(|_| "The sign-out request is invalid.".to_owned())?;
            if let Some(s) = p.state.as_ref().filter(|s| s.len() <= 2048) {
                u.query_pairs_mut().append_pair("state", s);
            }
            Some(u.to_string())
        }
        _ => None,
    };
    Ok(LogoutPlan {
        hinted_sub,
        client,
        redirect,
    })
}

#[derive(Serialize)]
struct LogoutToken {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
    sid: String,
    events: serde_json::Value,
}

static HTTP: LazyLock<Option<reqwest::Client>> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()
});

/// Tell every client that received tokens in `session` (and registered a back-channel URI)
/// that it ended. Delivery runs in the background; failures are logged, never fatal.
pub async fn backchannel(svc: &Services, now: Timestamp, session: &Session) {
    let sid = session.id.clone();
    let targets = svc
        .db
        .run(move |c| {
            let ids = authz::clients_of_session(c, &sid)?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(cl) = clients::find(c, &id)? {
                    if cl.backchannel_logout_uri.is_some() {
                        out.push(cl);
                    }
                }
            }
            Ok(out)
        })
        .await;
    let targets = match targets {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "could not list back-channel logout targets");
            return;
        }
    };
    if targets.is_empty() {
        return;
    }
    let keys: std::sync::Arc<KeySet> = match svc.keys.current(now).await {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "no keys for back-channel logout");
            return;
        }
    };
    for client in targets {
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        let token = LogoutToken {
            iss: svc.settings.issuer.as_str().to_owned(),
            sub: session.user_id.clone(),
            aud: client.id.clone(),
            iat: now.secs(),
            exp: now.secs() + 120,
            jti: new_id(),
            sid: session.id.clone(),
            events: json!({ "http://schemas.openid.net/event/backchannel-logout": {} }),
        };
        let signed = match keys.sign(&client.id_token_alg, "logout+jwt", &token) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, client.id = %client.id, "could not sign a logout token");
                continue;
            }
        };
        let Some(http) = HTTP.as_ref() else { return };
        let http = http.clone();
        let client_id = client.id.clone();
        tokio::spawn(async move {
            match http
                .post(&uri)
                .form(&[("logout_token", signed)])
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(client.id = %client_id, "back-channel logout delivered")
                }
                Ok(r) => {
                    tracing::warn!(client.id = %client_id, status = r.status().as_u16(), "back-channel logout refused")
                }
                Err(e) => {
                    tracing::warn!(client.id = %client_id, error = %e, "back-channel logout failed")
                }
            }
        });
    }
}
