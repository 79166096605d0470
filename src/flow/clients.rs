//! Registering relying parties. Secrets are 256-bit random values, stored only as a SHA-256
//! digest (a password hash would cap every client-authenticated grant at the hash's speed).

use secrecy::{ExposeSecret, SecretString};

use super::{random_token, FlowError, Services};
use crate::clock::Timestamp;
use crate::domain::{ClientId, RedirectUri};
use crate::flow::accounts::Actor;
use crate::store::clients::{self, Client};
use crate::store::{self, token_digest, StoreError};

pub const GRANTS: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];
const MIN_SECRET_LEN: usize = 32;

pub struct NewClient {
    pub id: String,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub first_party: bool,
    pub grants: Vec<String>,
    /// An operator-chosen secret; without one a confidential client gets a generated secret.
    pub secret: Option<SecretString>,
    /// Where to deliver OpenID back-channel logout tokens.
    pub backchannel_logout_uri: Option<String>,
    /// RS256 (default), ES256 or EdDSA.
    pub id_token_alg: Option<String>,
    /// The access tokens' algorithm: RS256 (default), ES256 or EdDSA.
    pub access_token_alg: Option<String>,
    /// Let a confidential client skip PKCE (public clients always need it).
    pub pkce_optional: bool,
    /// The least `acr` this client accepts (urn:vigil:acr:mfa or phr).
    pub min_acr: Option<String>,
    /// Only users holding one of the client's roles may sign in to it.
    pub require_role: bool,
    /// The oldest sign-in that may receive one of its privileged roles, in seconds.
    pub privileged_max_age_secs: Option<i64>,
    /// May provision accounts and groups through SCIM (the `scim` scope).
    pub provisioning: bool,
}

pub struct Registered {
    pub client: Client,
    /// Shown once to the operator, never stored.
    pub generated_secret: Option<SecretString>,
}

pub async fn register(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    n: NewClient,
) -> Result<Registered, FlowError> {
    let id = ClientId::parse(&n.id).map_err(FlowError::Invalid)?;
    let settings = ClientSettings {
        name: n.name.unwrap_or_else(|| id.as_str().to_owned()),
        redirect_uris: n.redirect_uris,
        post_logout_redirect_uris: n.post_logout_redirect_uris,
        public: n.public,
        first_party: n.first_party,
        grants: n.grants,
        backchannel_logout_uri: n.backchannel_logout_uri,
        id_token_alg: n.id_token_alg,
        access_token_alg: n.access_token_alg,
        pkce_optional: n.pkce_optional,
        min_acr: n.min_acr,
        risk_thresholds: None,
        require_role: n.require_role,
        privileged_max_age_secs: n.privileged_max_age_secs,
        provisioning: n.provisioning,
    };
    let (secret_hash, generated_secret) = match (settings.public, n.secret) {
        (true, Some(_)) => return Err(FlowError::Invalid("a public client has no secret".into())),
        (true, None) => (None, None),
        (false, Some(s)) => {
            if s.expose_secret().len() < MIN_SECRET_LEN {
                return Err(FlowError::Invalid(format!(
                    "a client secret needs at least {MIN_SECRET_LEN} characters (better: let vigil generate one)"
                )));
            }
            (Some(token_digest(s.expose_secret())), None)
        }
        (false, None) => {
            let (hash, s) = new_secret();
            (Some(hash), Some(s))
        }
    };
    let client = settings.into_client(id.as_str(), secret_hash, now)?;
    insert_audited(svc, actor, now, client, generated_secret).await
}

/// A fresh client secret and its digest (the only thing stored).
fn new_secret() -> (String, SecretString) {
    let s = random_token();
    (token_digest(&s), SecretString::from(s))
}

async fn insert_audited(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    client: Client,
    generated_secret: Option<SecretString>,
) -> Result<Registered, FlowError> {
    let (auditor, actor, c2) = (svc.auditor.clone(), actor.clone(), client.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                clients::insert(c, &c2, now.micros())?;
                auditor.record(
                    c,
                    now,
                    actor
                        .event("client.created")
                        .target(c2.id.clone())
                        .details(summary(&c2)),
                )
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => FlowError::Conflict(m),
            other => FlowError::Store(other),
        })?;
    Ok(Registered {
        client,
        generated_secret,
    })
}

/// What the audit log records about a client's settings (never its secret).
fn summary(c: &Client) -> serde_json::Value {
    serde_json::json!({
        "name": c.name,
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "public": c.public,
        "first_party": c.first_party,
        "grants": c.grant_types,
        "require_pkce": c.require_pkce,
        "id_token_alg": c.id_token_alg,
        "access_token_alg": c.access_token_alg,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "min_acr": c.min_acr,
        "risk_thresholds": c.risk_thresholds.map(|(m, h)| [m, h]),
        "require_role": c.require_role,
        "privileged_max_age_secs": c.privileged_max_age_secs,
        "provisioning": c.provisioning,
    })
}

/// Everything about a client an admin sets, except its id and secret: what the create and
/// edit forms post. [`ClientSettings::into_client`] is the one place it is validated.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub first_party: bool,
    /// Empty: the defaults (authorization_code and refresh_token, plus client_credentials for
    /// a confidential client).
    pub grants: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// RS256 (default), ES256 or EdDSA.
    pub id_token_alg: Option<String>,
    /// The access tokens' algorithm: RS256 (default), ES256 or EdDSA.
    pub access_token_alg: Option<String>,
    /// Let a confidential client skip PKCE (public clients always need it).
    pub pkce_optional: bool,
    /// The least `acr` this client accepts.
    pub min_acr: Option<String>,
    /// This client's own medium and high score thresholds (None: the global ones).
    pub risk_thresholds: Option<(i64, i64)>,
    /// Only users holding one of the client's roles may sign in to it.
    pub require_role: bool,
    /// The oldest sign-in that may receive a privileged role of this client, in seconds
    /// (None: `access::PRIVILEGED_MAX_AGE_SECS`).
    pub privileged_max_age_secs: Option<i64>,
    /// May provision through SCIM: needs `client_credentials` and a secret.
    pub provisioning: bool,
}

impl ClientSettings {
    /// Validate and normalise into a client with this id and secret digest.
    pub fn into_client(
        self,
        id: &str,
        secret_hash: Option<String>,
        now: Timestamp,
    ) -> Result<Client, FlowError> {
        let parse_all = |uris: &[String], what: &str| -> Result<Vec<String>, FlowError> {
            uris.iter()
                .map(|u| {
                    RedirectUri::parse(u)
                        .map(RedirectUri::into_string)
                        .map_err(|e| FlowError::Invalid(format!("{what}: {e}")))
                })
                .collect()
        };
        let redirect_uris = parse_all(&self.redirect_uris, "redirect URI")?;
        let post_logout = parse_all(&self.post_logout_redirect_uris, "post-logout redirect URI")?;
        let mut grants: Vec<String> = if self.grants.is_empty() {
            if self.public {
                vec!["authorization_code".into(), "refresh_token".into()]
            } else {
                GRANTS.iter().map(|g| (*g).to_owned()).collect()
            }
        } else {
            self.grants
        };
        grants.sort();
        grants.dedup();
        if let Some(g) = grants.iter().find(|g| !GRANTS.contains(&g.as_str())) {
            return Err(FlowError::Invalid(format!(
                "unknown grant `{g}`; use authorization_code, refresh_token or client_credentials"
            )));
        }
        if self.public && grants.iter().any(|g| g == "client_credentials") {
            return Err(FlowError::Invalid(
                "a public client cannot use client_credentials".into(),
            ));
        }
        if grants.iter().any(|g| g == "authorization_code") && redirect_uris.is_empty() {
            return Err(FlowError::Invalid(
                "give at least one redirect URI (--redirect-uri)".into(),
            ));
        }
        let backchannel_logout_uri = match self.backchannel_logout_uri {
            Some(u) => Some(
                RedirectUri::parse(&u)
                    .map(RedirectUri::into_string)
                    .map_err(|e| FlowError::Invalid(format!("back-channel logout URI: {e}")))?,
            ),
            None => None,
        };
        let id_token_alg = self.id_token_alg.unwrap_or_else(|| "RS256".into());
        if !crate::oidc::keys::ALGS.contains(&id_token_alg.as_str()) {
            return Err(FlowError::Invalid(format!(
                "unknown ID token algorithm `{id_token_alg}`; use RS256, ES256 or EdDSA"
            )));
        }
        let access_token_alg = self.access_token_alg.unwrap_or_else(|| "RS256".into());
        if !crate::oidc::keys::ALGS.contains(&access_token_alg.as_str()) {
            return Err(FlowError::Invalid(format!(
                "unknown access token algorithm `{access_token_alg}`; use RS256, ES256 or EdDSA"
            )));
        }
        if let Some(a) = &self.min_acr {
            if !crate::oidc::ACRS.contains(&a.as_str()) {
                return Err(FlowError::Invalid(format!(
                    "unknown acr `{a}`; use {}",
                    crate::oidc::ACRS.join(", ")
                )));
            }
        }
        if self.public && self.pkce_optional {
            return Err(FlowError::Invalid(
                "a public client always needs PKCE".into(),
            ));
        }
        if let Some((m, h)) = self.risk_thresholds {
            if !((1..=100).contains(&m) && (1..=100).contains(&h) && m < h) {
                return Err(FlowError::Invalid(
                    "risk thresholds must be between 1 and 100, and medium must be below high"
                        .into(),
                ));
            }
        }
        if let Some(age) = self.privileged_max_age_secs {
            if !(super::access::PRIVILEGED_MAX_AGE_RANGE).contains(&age) {
                return Err(FlowError::Invalid(format!(
                    "the privileged roles' maximum sign-in age must be between {} and {} seconds",
                    super::access::PRIVILEGED_MAX_AGE_RANGE.start(),
                    super::access::PRIVILEGED_MAX_AGE_RANGE.end()
                )));
            }
        }
        if self.provisioning && !grants.iter().any(|g| g == "client_credentials") {
            return Err(FlowError::Invalid(
                "a provisioning client needs the client_credentials grant (and a secret)".into(),
            ));
        }
        let name = self.name.trim().chars().take(200).collect::<String>();
        Ok(Client {
            name: if name.is_empty() { id.to_owned() } else { name },
            id: id.to_owned(),
            secret_hash,
            public: self.public,
            first_party: self.first_party,
            redirect_uris,
            post_logout_redirect_uris: post_logout,
            grant_types: grants,
            require_pkce: !self.pkce_optional,
            created_at: now.micros(),
            backchannel_logout_uri,
            id_token_alg,
            access_token_alg,
            min_acr: self.min_acr,
            risk_thresholds: self.risk_thresholds,
            require_role: self.require_role,
            privileged_max_age_secs: self.privileged_max_age_secs,
            provisioning: self.provisioning,
        })
    }
}

/// Create a client from the admin form; a confidential one gets a generated secret, returned
/// to show once.
pub async fn create(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    id: &str,
    settings: ClientSettings,
) -> Result<Registered, FlowError> {
    let id = ClientId::parse(id.trim()).map_err(FlowError::Invalid)?;
    let (secret_hash, generated) = if settings.public {
        (None, None)
    } else {
        let (h, s) = new_secret();
        (Some(h), Some(s))
    };
    let client = settings.into_client(id.as_str(), secret_hash, now)?;
    insert_audited(svc, actor, now, client, generated).await
}

/// The client with this id, or `NotFound`.
pub async fn find(svc: &Services, id: &str) -> Result<Client, FlowError> {
    let id2 = id.to_owned();
    svc.db
        .run(move |c| clients::find(c, &id2))
        .await?
        .ok_or_else(|| FlowError::NotFound(format!("client `{id}`")))
}

/// Change a client's settings. Turning it public drops its secret; turning a public client
/// confidential gives it a generated secret, returned to show once.
pub async fn update(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    id: &str,
    settings: ClientSettings,
) -> Result<Option<SecretString>, FlowError> {
    not_builtin(id)?;
    let before = find(svc, id).await?;
    let (secret_hash, generated) = match (settings.public, before.secret_hash.clone()) {
        (true, _) => (None, None),
        (false, Some(h)) => (Some(h), None),
        (false, None) => {
            let (h, s) = new_secret();
            (Some(h), Some(s))
        }
    };
    let mut client = settings.into_client(&before.id, secret_hash.clone(), now)?;
    client.created_at = before.created_at;
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    let secret_changed = secret_hash != before.secret_hash;
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                clients::update(c, &client, now.micros())?;
                if secret_changed {
                    clients::set_secret_hash(c, &client.id, secret_hash.as_deref(), now.micros())?;
                }
                auditor.record(
                    c,
                    now,
                    actor
                        .event("client.updated")
                        .target(client.id.clone())
                        .details(serde_json::json!({
                            "before": summary(&before),
                            "after": summary(&client),
                        })),
                )
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => FlowError::NotFound(format!("client `{id}`")),
            other => FlowError::Store(other),
        })?;
    Ok(generated)
}

/// Give a confidential client a new secret; the old one stops working at once. Returns the new
/// secret, to show once.
pub async fn rotate_secret(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    id: &str,
) -> Result<SecretString, FlowError> {
    not_builtin(id)?;
    let client = find(svc, id).await?;
    if client.public {
        return Err(FlowError::Invalid(
            "A public client has no secret to rotate.".into(),
        ));
    }
    let (hash, secret) = new_secret();
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                clients::set_secret_hash(c, &client.id, Some(&hash), now.micros())?;
                auditor.record(
                    c,
                    now,
                    actor
                        .event("client.secret_rotated")
                        .target(client.id.clone()),
                )
            })
        })
        .await?;
    Ok(secret)
}

/// Every client but the console's own (`vigil`, built in: it holds the console roles).
pub async fn list(svc: &Services) -> Result<Vec<Client>, FlowError> {
    let mut all = svc.db.run(clients::list).await?;
    all.retain(|c| c.id != crate::store::access::CONSOLE_CLIENT);
    Ok(all)
}

/// The console's client is built in: it cannot be edited, given a secret or removed.
fn not_builtin(id: &str) -> Result<(), FlowError> {
    if id == crate::store::access::CONSOLE_CLIENT {
        return Err(FlowError::Invalid(
            "`vigil` is the console's built-in client (it holds the console roles); it cannot be changed or removed".into(),
        ));
    }
    Ok(())
}

pub async fn remove(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    id: &str,
) -> Result<(), FlowError> {
    not_builtin(id)?;
    let (auditor, actor, id2) = (svc.auditor.clone(), actor.clone(), id.to_owned());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                clients::delete(c, &id2, now.micros())?;
                auditor.record(c, now, actor.event("client.removed").target(id2.clone()))
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => FlowError::NotFound(format!("client `{id}`")),
            other => FlowError::Store(other),
        })
}
