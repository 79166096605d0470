//! The token endpoint: `authorization_code` (single use, PKCE), `refresh_token` (rotation with
//! reuse detection), `client_credentials`. Errors exactly per RFC 6749 §5.2.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::claims::{at_hash, AccessClaims, IdClaims};
use super::client_auth::{authenticate, Presented};
use super::{split_scope, OAuthError, RiskClaim, LIFETIMES};
use crate::audit::AuditEvent;
use crate::clock::Timestamp;
use crate::flow::access::{self, Access, GrantView};
use crate::flow::enforce::{self, Action, Facts, Requirement, RoleFacts};
use crate::flow::{random_token, Services};
use crate::store::clients::Client;
use crate::store::tokens::{self, AccessTokenRow, RefreshTokenRow};
use crate::store::users::{self, User};
use crate::store::{self, authz, new_id, token_digest};

#[derive(Debug, Default, Deserialize)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Who and how: what a code or refresh token carries forward into new tokens.
struct Grant {
    user: User,
    scopes: Vec<String>,
    auth_time: i64,
    acr: String,
    amr: Vec<String>,
    sid: Option<String>,
    nonce: Option<String>,
    risk: RiskClaim,
    code_id: Option<String>,
    /// The user's access to the client, when the caller already read it (refresh does, for
    /// the client's access rule).
    access: Option<Access>,
}

pub async fn token(
    svc: &Services,
    now: Timestamp,
    authorization: Option<&str>,
    p: TokenParams,
) -> Result<TokenResponse, OAuthError> {
    let presented =
        Presented::from_parts(authorization, p.client_id.clone(), p.client_secret.clone())?;
    let grant_type = p
        .grant_type
        .clone()
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    if !matches!(
        grant_type.as_str(),
        "authorization_code" | "refresh_token" | "client_credentials"
    ) {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type `{}` is not supported",
            truncate(&grant_type)
        )));
    }
    let client = authenticate(svc, now, presented).await?;
    if !client.allows_grant(&grant_type) || (client.public && grant_type == "client_credentials") {
        return Err(OAuthError::unauthorized_client(format!(
            "this client may not use {grant_type}"
        )));
    }
    let (grant, issued) = match grant_type.as_str() {
        "authorization_code" => (
            "authorization_code",
            authorization_code(svc, now, &client, p).await,
        ),
        "refresh_token" => ("refresh_token", refresh(svc, now, &client, p).await),
        _ => (
            "client_credentials",
            client_credentials(svc, now, &client, p).await,
        ),
    };
    if issued.is_ok() {
        crate::telemetry::METRICS
            .tokens_issued
            .with_label_values(&[grant])
            .inc();
    }
    issued
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge, compared in constant time.
fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

async fn authorization_code(
    svc: &Services,
    now: Timestamp,
    client: &Client,
    p: TokenParams,
) -> Result<TokenResponse, OAuthError> {
    let code = p
        .code
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = p
        .redirect_uri
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    if code.len() > 256 {
        return Err(OAuthError::invalid_grant("the code is invalid"));
    }
    let hash = token_digest(&code);
    // The code and, when it may be redeemed, its account in one visit to the database.
    let (cid, require_role) = (client.id.clone(), client.require_role);
    let (row, account) = svc
        .db
        .run(move |c| {
            let Some(row) = authz::find_code(c, &hash)? else {
                return Ok(None);
            };
            let account = if row.used_at.is_none() && row.client_id == cid {
                let user = users::find(c, &row.user_id)?;
                let held = match &user {
                    Some(u) if access::wanted(&split_scope(&row.scope), require_role) => {
                        Some(access::for_token(c, &u.id, &cid)?)
                    }
                    _ => None,
                };
                Some((user, held))
            } else {
                None
            };
            Ok(Some((row, account)))
        })
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the code is invalid, expired or already used"))?;
    if row.used_at.is_some() {
        return Err(code_replayed(svc, now, client, &row.id).await);
    }
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if row.expires_at <= now.micros() {
        return Err(OAuthError::invalid_grant(
            "the code is invalid, expired or already used",
        ));
    }
    if row.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&row.code_challenge, &p.code_verifier) {
        (Some(ch), Some(v)) if pkce_ok(v, ch) => {}
        (Some(_), _) => {
            return Err(OAuthError::invalid_grant(
                "the PKCE code_verifier is missing or wrong",
            ))
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "no code_challenge was sent for this code",
            ))
        }
        (None, None) => {}
    }
    let scopes = split_scope(&row.scope);
    let (user, held) = account
        .ok_or_else(|| OAuthError::invalid_grant("the code is invalid, expired or already used"))?;
    let user = user.ok_or_else(|| OAuthError::invalid_grant("the account is not available"))?;
    // A code minted before a compromise, a forced password change or the loss of the client's
    // roles is worth nothing after: the one enforcement point says so.
    let facts = Facts {
        now: now.micros(),
        roles: held.as_ref().map(|a| RoleFacts {
            lacks_required: client.require_role && !a.holds_any(),
            privileged: false,
            privileged_max_age_secs: 0,
        }),
        ..Facts::default()
    };
    let account = enforce::AccountView {
        user: &user,
        factors: crate::risk::AvailableFactors::default(),
    };
    if enforce::require(&account, None, &facts, Action::Exchange) != Requirement::Allow {
        return Err(OAuthError::invalid_grant("the account is not available"));
    }
    let grant = Grant {
        user,
        scopes,
        auth_time: row.auth_time,
        acr: row.acr,
        amr: serde_json::from_str(&row.amr).unwrap_or_default(),
        sid: Some(row.session_id),
        nonce: row.nonce,
        risk: serde_json::from_str(&row.risk).unwrap_or_else(|_| RiskClaim::neutral()),
        code_id: Some(row.id.clone()),
        access: held,
    };
    // The code is consumed in the transaction that stores its tokens: whoever sees it used
    // also sees (and so can revoke) what it produced.
    match issue(svc, now, client, grant, Parent::Code(row.id.clone())).await? {
        Some(r) => Ok(r),
        // Another redemption consumed it first: a replay like any other.
        None => Err(code_replayed(svc, now, client, &row.id).await),
    }
}

/// A code presented after it was consumed: someone else may hold it. Revoke everything it
/// produced (RFC 6749 §4.1.2) and answer `invalid_grant`.
async fn code_replayed(
    svc: &Services,
    now: Timestamp,
    client: &Client,
    code_id: &str,
) -> OAuthError {
    let (auditor, code_id, client_id) =
        (svc.auditor.clone(), code_id.to_owned(), client.id.clone());
    let revoked = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                tokens::revoke_by_code(c, &code_id, super::grant_revocation(now))?;
                auditor.record(
                    c,
                    now,
                    AuditEvent::new("oidc.code_reused")
                        .actor(client_id)
                        .target(code_id.clone()),
                )
            })
        })
        .await;
    if let Err(e) = revoked {
        return e.into();
    }
    tracing::warn!(client.id = %client.id, "authorization code reused; its tokens were revoked");
    OAuthError::invalid_grant("the code is invalid, expired or already used")
}

async fn refresh(
    svc: &Services,
    now: Timestamp,
    client: &Client,
    p: TokenParams,
) -> Result<TokenResponse, OAuthError> {
    let presented = p
        .refresh_token
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    if presented.len() > 256 {
        return Err(OAuthError::invalid_grant("the refresh token is invalid"));
    }
    let hash = token_digest(&presented);
    // One visit to the database for the token and, when it may be rotated, everything the
    // enforcement point needs about its account (a refresh is the hottest path that reads them).
    let (cid, first_party, require_role) =
        (client.id.clone(), client.first_party, client.require_role);
    let asked = p.scope.clone();
    let (row, state) = svc
        .db
        .run(move |c| {
            let Some(row) = tokens::find_refresh(c, &hash)? else {
                return Ok(None);
            };
            let fresh = row.client_id == cid && row.revoked_at.is_none() && row.used_at.is_none();
            let state = if fresh {
                let scopes = split_scope(asked.as_deref().unwrap_or(&row.scope));
                Some(AccountState::read(
                    c,
                    &row,
                    &cid,
                    first_party,
                    require_role,
                    &scopes,
                )?)
            } else {
                None
            };
            Ok(Some((row, state)))
        })
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if row.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token was revoked"));
    }
    let reuse = |svc: &Services, row: &RefreshTokenRow| {
        let (auditor, family, client_id, user_id) = (
            svc.auditor.clone(),
            row.family_id.clone(),
            client.id.clone(),
            row.user_id.clone(),
        );
        let db = svc.db.clone();
        async move {
            db.run(move |c| {
                store::transaction(c, |c| {
                    tokens::revoke_family(c, &family, super::grant_revocation(now))?;
                    auditor.record(
                        c,
                        now,
                        AuditEvent::new("oidc.refresh_reused")
                            .actor(client_id)
                            .target(user_id)
                            .details(serde_json::json!({ "family": family })),
                    )
                })
            })
            .await
        }
    };
    if let Some(used_at) = row.used_at {
        if within_reuse_interval(svc, now, used_at) {
            tracing::info!(client.id = %client.id, "refresh token presented again within the reuse interval; refused, family kept");
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used",
            ));
        }
        reuse(svc, &row).await?;
        tracing::warn!(client.id = %client.id, "rotated refresh token reused; the family was revoked");
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used",
        ));
    }
    if row.expires_at <= now.micros() || row.family_expires_at <= now.micros() {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    let original = split_scope(&row.scope);
    let scopes = match p.scope.as_deref() {
        None => original,
        Some(s) => {
            let asked = split_scope(s);
            if let Some(extra) = asked.iter().find(|a| !original.contains(a)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope `{}` was not granted originally",
                    truncate(extra)
                )));
            }
            asked
        }
    };
    // The one enforcement point: a disabled, compromised or must-change account, an ended
    // session or a withdrawn consent stops the family here, whoever holds the token.
    let AccountState {
        user,
        session_revoked,
        consent_withdrawn,
        held,
        enrolled,
    } = state.ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    let user = user.ok_or_else(|| OAuthError::invalid_grant("the account is not available"))?;
    let as_session = store::sessions::Session {
        id: row.session_id.clone().unwrap_or_default(),
        token_hash: String::new(),
        user_id: row.user_id.clone(),
        created_at: row.auth_time,
        last_seen_at: row.auth_time,
        idle_expires_at: row.expires_at,
        expires_at: row.family_expires_at,
        auth_time: row.auth_time,
        acr: row.acr.clone(),
        amr: row.amr.clone(),
        device_id: None,
        ip: None,
        user_agent: None,
        revoked_at: None,
        risk: None,
    };
    let facts = Facts {
        now: now.micros(),
        session_revoked,
        consent_withdrawn,
        // A client that admits only its roles stops the family of a user who lost them.
        roles: held.as_ref().map(|a| RoleFacts {
            lacks_required: client.require_role && !a.holds_any(),
            privileged: false,
            privileged_max_age_secs: 0,
        }),
        ..Facts::default()
    };
    let account = enforce::AccountView {
        user: &user,
        factors: enforce::available(svc, enrolled),
    };
    let need = enforce::require(&account, Some(&as_session), &facts, Action::Refresh);
    if need != Requirement::Allow {
        let (family, auditor) = (row.family_id.clone(), svc.auditor.clone());
        let (client_id, uid) = (client.id.clone(), row.user_id.clone());
        svc.db
            .run(move |c| {
                store::transaction(c, |c| {
                    tokens::revoke_family(c, &family, super::grant_revocation(now))?;
                    auditor.record(
                        c,
                        now,
                        AuditEvent::new("oidc.refresh_refused")
                            .actor(client_id)
                            .target(uid)
                            .details(serde_json::json!({ "family": family, "requirement": format!("{need:?}") })),
                    )
                })
            })
            .await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token is no longer valid for this account",
        ));
    }
    let grant = Grant {
        user,
        scopes,
        auth_time: row.auth_time,
        acr: row.acr.clone(),
        amr: serde_json::from_str(&row.amr).unwrap_or_default(),
        sid: row.session_id.clone(),
        nonce: None,
        risk: serde_json::from_str(&row.risk).unwrap_or_else(|_| RiskClaim::neutral()),
        code_id: row.code_id.clone(),
        access: held,
    };
    match issue(
        svc,
        now,
        client,
        grant,
        Parent::Refresh(Box::new(row.clone())),
    )
    .await?
    {
        Some(r) => Ok(r),
        None => {
            // Lost a race with another use (or a revocation) of the same token. A concurrent
            // duplicate within the reuse interval is refused and the winner's family kept;
            // otherwise that is reuse too.
            let id = row.id.clone();
            let now_row = svc
                .db
                .run(move |c| tokens::find_refresh_by_id(c, &id))
                .await?;
            let (used_at, revoked) = match &now_row {
                Some(r) => (r.used_at, r.revoked_at.is_some()),
                None => (None, true),
            };
            if revoked {
                return Err(OAuthError::invalid_grant("the refresh token was revoked"));
            }
            if used_at.is_some_and(|at| within_reuse_interval(svc, now, at)) {
                tracing::info!(client.id = %client.id, "concurrent refresh within the reuse interval; refused, family kept");
                return Err(OAuthError::invalid_grant(
                    "the refresh token was already used",
                ));
            }
            reuse(svc, &row).await?;
            Err(OAuthError::invalid_grant(
                "the refresh token was already used",
            ))
        }
    }
}

/// Whether a refresh token rotated at `used_at` is still inside the configured reuse interval
/// at `now`. A rotation stamped "later" than `now` (another node's clock ahead of this one) is
/// inside it. With the interval 0 (the default) nothing is.
fn within_reuse_interval(svc: &Services, now: Timestamp, used_at: i64) -> bool {
    let interval = svc.settings.refresh_reuse_interval_secs;
    interval > 0 && now.micros() - used_at < interval * 1_000_000
}

async fn client_credentials(
    svc: &Services,
    now: Timestamp,
    client: &Client,
    p: TokenParams,
) -> Result<TokenResponse, OAuthError> {
    let scopes: Vec<String> = split_scope(p.scope.as_deref().unwrap_or(""))
        .into_iter()
        .filter(|s| !super::SCOPES.contains(&s.as_str()))
        .collect();
    if scopes.iter().any(|s| {
        s.len() > 128
            || !s
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    }) {
        return Err(OAuthError::invalid_scope("malformed scope"));
    }
    // The `scim` scope provisions accounts: only for a client marked for it, as enforcement
    // decides.
    if scopes.iter().any(|s| s == crate::scim::SCOPE) {
        let view = enforce::ClientView {
            id: &client.id,
            provisioning: client.provisioning,
        };
        let asked = Action::Provision(enforce::Provision::Token);
        if enforce::require(view, None, &Facts::default(), asked) != Requirement::Allow {
            return Err(OAuthError::invalid_scope(
                "this client may not request the scim scope (it is not a provisioning client)",
            ));
        }
    }
    let scope = scopes.join(" ");
    let jti = new_id();
    let claims = AccessClaims {
        iss: svc.settings.issuer.as_str().to_owned(),
        sub: client.id.clone(),
        aud: client.id.clone(),
        exp: now.secs() + LIFETIMES.access_token,
        iat: now.secs(),
        jti: jti.clone(),
        client_id: client.id.clone(),
        scope: scope.clone(),
        auth_time: None,
        acr: None,
        amr: None,
        sid: None,
        risk: None,
        grant_id: None,
        roles: None,
        groups: None,
    };
    let keys = svc.keys.current(now).await?;
    let access_token = keys.sign(&client.access_token_alg, "at+jwt", &claims)?;
    // No write: the token is self-contained; the issuance log is batched.
    svc.token_log.record(
        AccessTokenRow {
            jti,
            client_id: client.id.clone(),
            user_id: None,
            code_id: None,
            family_id: None,
            expires_at: now.plus_secs(LIFETIMES.access_token).micros(),
            issued_at: now.micros(),
            grant_type: "client_credentials".into(),
        },
        Vec::new(),
    );
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: LIFETIMES.access_token,
        scope,
        id_token: None,
        refresh_token: None,
    })
}

/// What the enforcement point needs about a refresh token's account, read with the token.
struct AccountState {
    user: Option<User>,
    session_revoked: bool,
    consent_withdrawn: bool,
    /// The user's access to the client, when the scope or the client's rule needs it.
    held: Option<Access>,
    enrolled: store::factors::Enrolled,
}

impl AccountState {
    fn read(
        c: &mut store::DbConn,
        row: &RefreshTokenRow,
        client_id: &str,
        first_party: bool,
        require_role: bool,
        scopes: &[String],
    ) -> store::StoreResult<Self> {
        let uid = row.user_id.as_str();
        Ok(AccountState {
            user: users::find(c, uid)?,
            session_revoked: match &row.session_id {
                Some(s) => store::sessions::is_revoked(c, s)?,
                None => false,
            },
            consent_withdrawn: !first_party && store::consents::find(c, uid, client_id)?.is_none(),
            held: if access::wanted(scopes, require_role) {
                Some(access::for_token(c, uid, client_id)?)
            } else {
                None
            },
            enrolled: store::factors::enrolled(c, uid)?,
        })
    }
}

/// What a grant of tokens spends: an authorization code or a refresh token.
enum Parent {
    Code(String),
    Refresh(Box<RefreshTokenRow>),
}

/// Sign the access token (and ID token, and a rotated/new refresh token) for `grant`. The code
/// or refresh token it spends is marked used in the same transaction that stores the new tokens
/// (a crash between cannot leave a spent code without its tokens, nor make a client's retry
/// look like reuse); `None` when another request spent it first (or it was revoked meanwhile).
async fn issue(
    svc: &Services,
    now: Timestamp,
    client: &Client,
    g: Grant,
    spends: Parent,
) -> Result<Option<TokenResponse>, OAuthError> {
    let (parent, code_id) = match spends {
        Parent::Code(id) => (None, Some(id)),
        Parent::Refresh(row) => (Some(*row), None),
    };
    let issuer = svc.settings.issuer.as_str().to_owned();
    let scope = g.scopes.join(" ");
    let jti = new_id();
    // The grant every token of this exchange belongs to: a new family is named after its code.
    let grant_id = match (&parent, &code_id) {
        (Some(p), _) => p.family_id.clone(),
        (None, Some(code)) => code.clone(),
        (None, None) => new_id(),
    };
    // Roles and groups: read now (grants change), privileged roles as enforcement allows.
    let claims = if g
        .scopes
        .iter()
        .any(|s| s == access::SCOPE_ROLES || s == access::SCOPE_GROUPS)
    {
        let (user, cl, scopes, read) = (
            g.user.clone(),
            client.clone(),
            g.scopes.clone(),
            g.access.clone(),
        );
        let (acr, amr, auth_time) = (
            g.acr.clone(),
            serde_json::to_string(&g.amr).unwrap_or_else(|_| "[]".into()),
            g.auth_time,
        );
        let risk = serde_json::to_string(&g.risk).ok();
        svc.db
            .run(move |c| {
                let view = GrantView {
                    user_id: &user.id,
                    acr: &acr,
                    amr: &amr,
                    auth_time,
                    risk,
                };
                access::claims_for(c, &user, &cl, &scopes, &view, now.micros(), read)
            })
            .await?
    } else {
        access::Claims::default()
    };
    let access = AccessClaims {
        iss: issuer.clone(),
        sub: g.user.id.clone(),
        aud: client.id.clone(),
        exp: now.secs() + LIFETIMES.access_token,
        iat: now.secs(),
        jti: jti.clone(),
        client_id: client.id.clone(),
        scope: scope.clone(),
        auth_time: Some(g.auth_time.div_euclid(1_000_000)),
        acr: Some(g.acr.clone()),
        amr: Some(g.amr.clone()),
        sid: g.sid.clone(),
        risk: Some(g.risk.clone()),
        grant_id: Some(grant_id.clone()),
        roles: claims.roles.clone(),
        groups: claims.groups.clone(),
    };
    // The roles this token carries count as used (least privilege, `store::usage`).
    let used_roles = claims.roles.clone().unwrap_or_default();
    let keys = svc.keys.current(now).await?;
    let access_token = keys.sign(&client.access_token_alg, "at+jwt", &access)?;
    let id_token = if g.scopes.iter().any(|s| s == "openid") {
        let alg = client.id_token_alg.as_str();
        let claims = IdClaims {
            iss: issuer,
            sub: g.user.id.clone(),
            aud: client.id.clone(),
            exp: now.secs() + LIFETIMES.id_token,
            iat: now.secs(),
            auth_time: g.auth_time.div_euclid(1_000_000),
            nonce: g.nonce.clone(),
            acr: g.acr.clone(),
            amr: g.amr.clone(),
            sid: g.sid.clone(),
            at_hash: Some(at_hash(alg, &access_token)),
            risk: g.risk.clone(),
            // The scope's claims come from UserInfo (OIDC Core §5.4), not the ID token; roles
            // and groups are authorisation data the application reads from both tokens.
            extra: {
                let mut m = serde_json::Map::new();
                claims.extend(&mut m);
                m
            },
        };
        Some(keys.sign(alg, "JWT", &claims)?)
    } else {
        None
    };
    let wants_refresh =
        g.scopes.iter().any(|s| s == "offline_access") && client.allows_grant("refresh_token");
    let (refresh_plain, refresh_row) = if wants_refresh {
        let plain = random_token();
        let family_expires_at = match &parent {
            Some(p) => p.family_expires_at,
            None => now.plus_secs(LIFETIMES.refresh_absolute).micros(),
        };
        let family_id = grant_id.clone();
        let row = RefreshTokenRow {
            id: new_id(),
            token_hash: token_digest(&plain),
            family_id,
            client_id: client.id.clone(),
            user_id: g.user.id.clone(),
            session_id: g.sid.clone(),
            code_id: g.code_id.clone(),
            scope: match &parent {
                // A narrowed refresh keeps the family's original grant available.
                Some(p) => p.scope.clone(),
                None => scope.clone(),
            },
            auth_time: g.auth_time,
            acr: g.acr.clone(),
            amr: serde_json::to_string(&g.amr).unwrap_or_else(|_| "[]".into()),
            risk: serde_json::to_string(&g.risk).unwrap_or_else(|_| "{}".into()),
            created_at: now.micros(),
            expires_at: now
                .plus_secs(LIFETIMES.refresh_sliding)
                .micros()
                .min(family_expires_at),
            family_expires_at,
            used_at: None,
            revoked_at: None,
        };
        (Some(plain), Some(row))
    } else {
        (None, None)
    };
    let access_row = AccessTokenRow {
        jti,
        client_id: client.id.clone(),
        user_id: Some(g.user.id.clone()),
        code_id: g.code_id.clone(),
        family_id: Some(grant_id),
        expires_at: now.plus_secs(LIFETIMES.access_token).micros(),
        issued_at: now.micros(),
        grant_type: if parent.is_some() {
            "refresh_token"
        } else {
            "authorization_code"
        }
        .into(),
    };
    let parent_id = parent.as_ref().map(|p| p.id.clone());
    let stored = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                if let Some(id) = &parent_id {
                    if !tokens::mark_refresh_used(c, id, now.micros())? {
                        return Ok(false);
                    }
                }
                if let Some(id) = &code_id {
                    if !authz::consume_code(c, id, now.micros())? {
                        return Ok(false);
                    }
                }
                if let Some(r) = &refresh_row {
                    tokens::insert_refresh(c, r)?;
                }
                Ok(true)
            })
        })
        .await?;
    if !stored {
        return Ok(None);
    }
    svc.token_log.record(access_row, used_roles);
    Ok(Some(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: LIFETIMES.access_token,
        scope,
        id_token,
        refresh_token: refresh_plain,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pkce_s256_is_base64url_sha256_of_the_verifier() {
        // Challenge computed independently (Python hashlib) for this verifier.
        assert!(super::pkce_ok(
            "vigil-pkce-test-verifier-0123456789abcdefghij",
            "7i5WpX2rFeir2bEJji9AYnQfzYXMf8RTA41UjGliiUw"
        ));
        assert!(!super::pkce_ok(
            "vigil-pkce-test-verifier-0123456789abcdefghiX",
            "7i5WpX2rFeir2bEJji9AYnQfzYXMf8RTA41UjGliiUw"
        ));
        assert!(!super::pkce_ok(
            "short",
            "7i5WpX2rFeir2bEJji9AYnQfzYXMf8RTA41UjGliiUw"
        ));
    }
}
