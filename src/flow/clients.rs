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
    /// Let a confidential client skip PKCE (public clients always need it).
    pub pkce_optional: bool,
    /// The least `acr` this client accepts (urn:vigil:acr:mfa or phr).
    pub min_acr: Option<String>,
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
    let parse_all = |uris: &[String]| -> Result<Vec<String>, FlowError> {
        uris.iter()
            .map(|u| {
                RedirectUri::parse(u)
                    .map(RedirectUri::into_string)
                    .map_err(FlowError::Invalid)
            })
            .collect()
    };
    let redirect_uris = parse_all(&n.redirect_uris)?;
    let post_logout = parse_all(&n.post_logout_redirect_uris)?;
    let mut grants: Vec<String> = if n.grants.is_empty() {
        if n.public {
            vec!["authorization_code".into(), "refresh_token".into()]
        } else {
            GRANTS.iter().map(|g| (*g).to_owned()).collect()
        }
    } else {
        n.grants.clone()
    };
    grants.sort();
    grants.dedup();
    if let Some(g) = grants.iter().find(|g| !GRANTS.contains(&g.as_str())) {
        return Err(FlowError::Invalid(format!(
            "unknown grant `{g}`; use authorization_code, refresh_token or client_credentials"
        )));
    }
    if n.public && grants.iter().any(|g| g == "client_credentials") {
        return Err(FlowError::Invalid(
            "a public client cannot use client_credentials".into(),
        ));
    }
    if grants.iter().any(|g| g == "authorization_code") && redirect_uris.is_empty() {
        return Err(FlowError::Invalid(
            "give at least one --redirect-uri".into(),
        ));
    }
    let (secret_hash, generated_secret) = match (n.public, n.secret) {
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
            let s = random_token();
            (Some(token_digest(&s)), Some(SecretString::from(s)))
        }
    };
    let backchannel_logout_uri = match n.backchannel_logout_uri {
        Some(u) => Some(
            RedirectUri::parse(&u)
                .map(RedirectUri::into_string)
                .map_err(FlowError::Invalid)?,
        ),
        None => None,
    };
    let id_token_alg = n.id_token_alg.unwrap_or_else(|| "RS256".into());
    if !crate::oidc::keys::ALGS.contains(&id_token_alg.as_str()) {
        return Err(FlowError::Invalid(format!(
            "unknown ID token algorithm `{id_token_alg}`; use RS256, ES256 or EdDSA"
        )));
    }
    if let Some(a) = &n.min_acr {
        if !crate::oidc::ACRS.contains(&a.as_str()) {
            return Err(FlowError::Invalid(format!(
                "unknown acr `{a}`; use {}",
                crate::oidc::ACRS.join(", ")
            )));
        }
    }
    if n.public && n.pkce_optional {
        return Err(FlowError::Invalid(
            "a public client always needs PKCE".into(),
        ));
    }
    let client = Client {
        name: n.name.unwrap_or_else(|| id.as_str().to_owned()),
        id: id.as_str().to_owned(),
        secret_hash,
        public: n.public,
        first_party: n.first_party,
        redirect_uris,
        post_logout_redirect_uris: post_logout,
        grant_types: grants,
        require_pkce: !n.pkce_optional,
        created_at: now.micros(),
        backchannel_logout_uri,
        id_token_alg,
        min_acr: n.min_acr,
        risk_thresholds: None,
    };
    let (auditor, actor, c2) = (svc.auditor.clone(), actor.clone(), client.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                clients::insert(c, &c2, now.micros())?;
                auditor.record(
                    c,
                    now,
                    actor.event("client.created").target(c2.id.clone()).details(serde_json::json!({
                        "redirect_uris": c2.redirect_uris, "public": c2.public, "grants": c2.grant_types
                    })),
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

pub async fn list(svc: &Services) -> Result<Vec<Client>, FlowError> {
    Ok(svc.db.run(clients::list).await?)
}

pub async fn remove(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    id: &str,
) -> Result<(), FlowError> {
    let (auditor, actor, id2) = (svc.auditor.clone(), actor.clone(), id.to_owned());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                clients::delete(c, &id2)?;
                auditor.record(c, now, actor.event("client.removed").target(id2.clone()))
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => FlowError::NotFound(format!("client `{id}`")),
            other => FlowError::Store(other),
        })
}
