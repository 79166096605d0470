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
use super::LIFETIMES;
use crate::audit::AuditEvent;
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

/// Why a logout request cannot be planned.
#[derive(Debug)]
pub enum PlanError {
    /// The request is wrong: a message for the error page.
    Invalid(String),
    /// The database cannot be reached (a 503 page, not "your request is wrong").
    Unavailable(String),
}

impl From<String> for PlanError {
    fn from(m: String) -> Self {
        PlanError::Invalid(m)
    }
}

impl From<&str> for PlanError {
    fn from(m: &str) -> Self {
        PlanError::Invalid(m.to_owned())
    }
}

/// The database's unavailability as itself; any other failure as the page's message.
fn unavailable_or(e: impl Into<Option<crate::store::StoreError>>) -> PlanError {
    match e.into() {
        Some(crate::store::StoreError::Unavailable(m)) => PlanError::Unavailable(m),
        _ => PlanError::Invalid("The sign-out service is unavailable.".into()),
    }
}

/// Check a logout request.
pub async fn plan(
    svc: &Services,
    now: Timestamp,
    p: &LogoutParams,
) -> Result<LogoutPlan, PlanError> {
    let mut hinted_sub = None;
    let mut client_id = p.client_id.clone().filter(|c| c.len() <= 128);
    if let Some(hint) = &p.id_token_hint {
        let keys = svc.keys.current(now).await.map_err(|e| match e {
            super::keys::KeyError::Store(s) => unavailable_or(s),
            _ => unavailable_or(None),
        })?;
        // Expired hints are fine: logout often happens long after sign-in.
        let claims: IdClaims = keys
            .verify(
                hint,
                svc.settings.issuer.as_str(),
                Some(super::ID_TOKEN_TYP),
                false,
            )
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
            .map_err(unavailable_or)?,
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
        // The application is known and asked for an address it never registered: an error,
        // not a silent sign-out (RP-Initiated Logout 1.0 §3; the conformance suite's
        // bad-post-logout-redirect-uri and query-added modules expect this page).
        (Some(_), Some(_)) => {
            return Err(
                "The sign-out request asks to return to an address (post_logout_redirect_uri) that is not registered for this application."
                    .into(),
            )
        }
        _ => None,
    };
    Ok(LogoutPlan {
        hinted_sub,
        client,
        redirect,
    })
}

/// A logout token (Back-Channel Logout 1.0 §2.4). Without `sid` it ends every session of `sub`
/// at the RP (§2.6), which is what a user-wide logout means.
#[derive(Serialize)]
struct LogoutToken {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    events: serde_json::Value,
}

static HTTP: LazyLock<Option<reqwest::Client>> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()
});

/// Attempts per logout token. An RP that is briefly down (a deploy, a restart) still hears of
/// the logout; one that stays down is recorded as not delivered.
pub const DELIVERY_ATTEMPTS: u32 = 5;
/// The pause before the first retry, doubling after each: 0.5 s, 1 s, 2 s, 4 s (7.5 s in all).
/// Short, because a logout token only lives [`TOKEN_SECS`] and the RP's sessions stay open
/// until it arrives.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Lifetime of a logout token; covers every retry with room to spare.
const TOKEN_SECS: i64 = 120;

/// Tell every client that received tokens in `session` (and registered a back-channel URI)
/// that it ended (with `sid`). Delivery runs in the background, with retries, and each
/// client's outcome is audited (`logout.backchannel`); failures are never fatal.
pub async fn backchannel(svc: &Services, now: Timestamp, session: &Session) {
    let sid = session.id.clone();
    let targets = targets(svc, move |c| authz::clients_of_session(c, &sid)).await;
    send(svc, now, &session.user_id, Some(&session.id), targets).await;
}

/// Tell every client that has issued `user_id` anything still meaningful (a code or a refresh
/// token created within the refresh tokens' absolute lifetime) and registered a back-channel
/// URI that all of the user's sessions there are over: a logout token with `sub` and no `sid`.
/// For containment (an account disabled, its sessions and tokens ended). Delivery and audit as
/// for [`backchannel`]. Returns the delivery tasks: a server may drop them (they run on), a
/// short-lived process such as the CLI should await them before it exits.
pub async fn backchannel_user(svc: &Services, now: Timestamp, user_id: &str) -> Deliveries {
    let (uid, since) = (
        user_id.to_owned(),
        now.minus_secs(LIFETIMES.refresh_absolute).micros(),
    );
    let targets = targets(svc, move |c| authz::clients_of_user(c, &uid, since)).await;
    send(svc, now, user_id, None, targets).await
}

/// Background deliveries of logout tokens, one task per client.
pub type Deliveries = Vec<tokio::task::JoinHandle<()>>;

/// The clients among `ids` that registered a back-channel logout URI.
async fn targets<F>(svc: &Services, ids: F) -> Vec<Client>
where
    F: FnOnce(&mut crate::store::DbConn) -> crate::store::StoreResult<Vec<String>> + Send + 'static,
{
    let found = svc
        .db
        .run(move |c| {
            let mut out = Vec::new();
            for id in ids(c)? {
                if let Some(cl) = clients::find(c, &id)? {
                    if cl.backchannel_logout_uri.is_some() {
                        out.push(cl);
                    }
                }
            }
            Ok(out)
        })
        .await;
    found.unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not list back-channel logout targets");
        Vec::new()
    })
}

/// Sign one logout token per client and deliver each in its own background task.
async fn send(
    svc: &Services,
    now: Timestamp,
    user_id: &str,
    sid: Option<&str>,
    targets: Vec<Client>,
) -> Deliveries {
    let mut tasks = Vec::new();
    if targets.is_empty() {
        return tasks;
    }
    let keys: std::sync::Arc<KeySet> = match svc.keys.current(now).await {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "no keys for back-channel logout");
            return tasks;
        }
    };
    let Some(http) = HTTP.as_ref() else {
        tracing::error!("no HTTP client for back-channel logout");
        return tasks;
    };
    for client in targets {
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        let token = LogoutToken {
            iss: svc.settings.issuer.as_str().to_owned(),
            sub: user_id.to_owned(),
            aud: client.id.clone(),
            iat: now.secs(),
            exp: now.secs() + TOKEN_SECS,
            jti: new_id(),
            sid: sid.map(str::to_owned),
            events: json!({ "http://schemas.openid.net/event/backchannel-logout": {} }),
        };
        let signed = match keys.sign(&client.id_token_alg, "logout+jwt", &token) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, client.id = %client.id, "could not sign a logout token");
                continue;
            }
        };
        let job = Delivery {
            svc: svc.clone(),
            http: http.clone(),
            uri,
            client_id: client.id.clone(),
            user_id: user_id.to_owned(),
            sid: sid.map(str::to_owned),
            token: signed,
        };
        tasks.push(tokio::spawn(job.run()));
    }
    tasks
}

/// One logout token on its way to one client.
struct Delivery {
    svc: Services,
    http: reqwest::Client,
    uri: String,
    client_id: String,
    user_id: String,
    sid: Option<String>,
    token: String,
}

/// Whether an answer is worth another attempt: transport failures, 5xx, 408 and 429 are
/// passing trouble; any other 4xx means the RP refused this token and will refuse it again.
fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s >= 500 || s == 408 || s == 429,
    }
}

impl Delivery {
    async fn run(self) {
        let mut delay = FIRST_RETRY_DELAY;
        let mut attempts = 0;
        let mut last_status: Option<u16> = None;
        let mut delivered = false;
        while attempts < DELIVERY_ATTEMPTS {
            if attempts > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            attempts += 1;
            match self
                .http
                .post(&self.uri)
                .form(&[("logout_token", self.token.as_str())])
                .send()
                .await
            {
                Ok(r) => {
                    last_status = Some(r.status().as_u16());
                    if r.status().is_success() {
                        delivered = true;
                        break;
                    }
                    tracing::warn!(client.id = %self.client_id, status = r.status().as_u16(), attempt = attempts, "back-channel logout refused");
                }
                Err(e) => {
                    last_status = None;
                    tracing::warn!(client.id = %self.client_id, error = %e, attempt = attempts, "back-channel logout failed");
                }
            }
            if !retryable(last_status) {
                break;
            }
        }
        if delivered {
            tracing::info!(client.id = %self.client_id, attempts, "back-channel logout delivered");
        } else {
            tracing::warn!(client.id = %self.client_id, attempts, "back-channel logout not delivered");
        }
        let now = self.svc.clock.now();
        let auditor = self.svc.auditor.clone();
        let ev = AuditEvent::new("logout.backchannel")
            .actor("system")
            .target(self.user_id.clone())
            .details(json!({
                "client_id": self.client_id,
                "sid": self.sid,
                "delivered": delivered,
                "attempts": attempts,
                "last_status": last_status,
            }));
        if let Err(e) = self.svc.db.run(move |c| auditor.record(c, now, ev)).await {
            tracing::error!(error = %e, client.id = %self.client_id, "could not audit a back-channel logout");
        }
    }
}
