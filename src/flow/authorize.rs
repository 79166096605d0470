//! From a validated authorization request to a code: the OIDC side of the sign-in flow.
//!
//! ```text
//!  /authorize ──> request saved (tx) ──> session good enough? ──no──> Login{tx} ─┐
//!                                              │yes                              │ (password, …)
//!                                              v                                 v
//!                                   consent needed? ──yes──> Consent{tx} ──> resume(tx)
//!                                              │no
//!                                              v
//!                                  code issued ──> Redirect(code, state, iss)
//! ```
//! "Good enough": a live session, re-authenticated after the request when `prompt=login` or
//! `select_account` asked for it, within `max_age`, and with an `acr` at least what was asked.

use super::access::{self, Access};
use super::enforce::{self, Action, Facts, Refusal, Requirement, RoleFacts};
use super::login::{log_access_denied, log_signin};
use super::risk::evaluate;
use super::{random_token, RequestContext, Services};
use crate::clock::Timestamp;
use crate::oidc::authorize::{Redirect, ResponseMode, ValidRequest};
use crate::oidc::claims::IdClaims;
use crate::oidc::{acr_rank, split_scope, OAuthError, RiskClaim, LIFETIMES};
use crate::risk::Decision;
use crate::store::authz::{self, AuthCode, AuthzRequest};
use crate::store::clients::{self, Client};
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{self, consents, new_id, token_digest};

/// What the browser should see next.
#[derive(Debug)]
pub enum Next {
    Login {
        tx: String,
        login_hint: Option<String>,
    },
    Consent {
        tx: String,
        client_name: String,
        scopes: Vec<String>,
    },
    Redirect(Redirect),
    /// The session is fresh but weaker than asked: prove a second factor (cookie token).
    StepUp {
        pending: secrecy::SecretString,
    },
    /// The request cannot continue and cannot be redirected (expired or unknown tx).
    Page(String),
    /// Refused by risk policy (403); the message says what the user can do.
    Blocked(String),
    /// The account must choose a new password before any application gets a code.
    ChangePassword,
    /// The application admits only holders of one of its roles (403 page); the way back
    /// carries `error=access_denied` to the application.
    NoAccess {
        client_name: String,
        back: Redirect,
    },
}

enum Reassessed {
    Keep(String),
    StepUp(secrecy::SecretString),
    Block(String),
    ChangePassword,
}

/// Score an SSO reuse for `tx` and let the one enforcement point decide: keep the session,
/// step up (a session already at the needed `acr` passes), or refuse. Logged and audited like a
/// sign-in; a kept session is recorded as assessed for this request.
async fn reassess(
    svc: &Services,
    now: Timestamp,
    s: &Session,
    user: &User,
    ctx: &RequestContext,
    tx: &AuthzRequest,
) -> Result<Reassessed, OAuthError> {
    let err = OAuthError::from_flow;
    let mut v = evaluate(
        svc,
        now,
        &user.id,
        ctx,
        &user.username,
        Some(&tx.client_id),
        None,
    )
    .await
    .map_err(err)?;
    let facts = Facts {
        now: now.micros(),
        device_id: ctx.device_id.as_deref(),
        decision: Some((v.decision, v.assessment.level)),
        ..Facts::default()
    };
    // The verdict already read the account's factors: decide on those, no second query.
    let account = enforce::AccountView {
        user,
        factors: v.available,
    };
    let need = enforce::require(&account, Some(s), &facts, Action::UseSession);
    let outcome = match need {
        Requirement::Allow => {
            v.decision = Decision::Allow;
            None
        }
        Requirement::ChangePassword => return Ok(Reassessed::ChangePassword),
        Requirement::Deny(r) => {
            if let Refusal::Blocked(reason) = r {
                v.decision = Decision::Block { reason };
            }
            Some(("blocked", Reassessed::Block(r.message().to_owned())))
        }
        Requirement::StepUp { phishing_resistant } => {
            v.decision = Decision::StepUp { phishing_resistant };
            let amr: Vec<String> = serde_json::from_str(&s.amr).unwrap_or_default();
            let pending = super::mfa::begin_step_up(
                svc,
                now,
                super::mfa::StepUpStart {
                    user,
                    amr,
                    // The step-up continues this request: the user lands back in the app.
                    tx: Some(tx.id.clone()),
                    previous_digest: Some(s.token_hash.clone()),
                    verdict: Some(v.clone()),
                    requirement: need,
                    device_id: ctx.device_id.clone(),
                    reset: false,
                },
            )
            .await
            .map_err(err)?;
            Some(("step_up_required", Reassessed::StepUp(pending)))
        }
        Requirement::Reauthenticate { .. } | Requirement::EnrolFactor => Some((
            "blocked",
            Reassessed::Block(Refusal::Revoked.message().to_owned()),
        )),
    };
    let (ctx2, uid, sid, acr, amr, v2, tx_id) = (
        ctx.clone(),
        user.id.clone(),
        s.id.clone(),
        s.acr.clone(),
        s.amr.clone(),
        v.clone(),
        tx.id.clone(),
    );
    let label = outcome.as_ref().map(|o| o.0).unwrap_or("success");
    let auditor = svc.auditor.clone();
    let engine = svc.risk.clone();
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let session =
                    (label == "success").then_some((sid.as_str(), acr.as_str(), amr.as_str()));
                log_signin(c, now, Some(&uid), "sso", label, &ctx2, session, Some(&v2))?;
                super::risk::learn(c, &engine, Some(&uid), &v2, false, now)?;
                if label == "success" {
                    authz::set_assessed_session(c, &tx_id, &sid)?;
                }
                // Every re-assessment is a risk decision: audited with its context like a sign-in.
                let details = crate::audit::with(
                    serde_json::json!({ "method": "sso", "outcome": label }),
                    crate::audit::risk_details(
                        &v2.features,
                        &v2.assessment,
                        &v2.decision,
                        v2.candidate.as_ref(),
                        v2.geoip_build,
                    ),
                );
                let ev = crate::audit::AuditEvent::new("login.sso_assessed");
                auditor.record(
                    c,
                    now,
                    ev.actor(uid.clone())
                        .target(sid.clone())
                        .ip(ctx2.ip)
                        .details(details),
                )
            })
        })
        .await?;
    Ok(match outcome {
        Some((_, r)) => r,
        None => Reassessed::Keep(serde_json::to_string(&v.claim()).unwrap_or_default()),
    })
}

/// The outcome of a re-assessment as the browser's next step (`prompt=none` gets the OAuth
/// error the spec names instead of a page).
async fn reassessed_next(
    svc: &Services,
    now: Timestamp,
    tx: AuthzRequest,
    client: Client,
    session: (Session, User),
    ctx: &RequestContext,
) -> Result<Next, OAuthError> {
    let (mut s, user) = session;
    let issuer = svc.settings.issuer.as_str().to_owned();
    let prompt_none = tx.prompt == "none";
    match reassess(svc, now, &s, &user, ctx, &tx).await? {
        Reassessed::Keep(claim) => {
            s.risk = Some(claim);
            proceed(svc, now, tx, client, Some((s, user)), ctx).await
        }
        Reassessed::StepUp(_) if prompt_none => Ok(Next::Redirect(redirect_error(
            &tx,
            &issuer,
            &OAuthError::interaction_required("this sign-in needs a second factor"),
        ))),
        Reassessed::Block(_) | Reassessed::ChangePassword if prompt_none => {
            Ok(Next::Redirect(redirect_error(
                &tx,
                &issuer,
                &OAuthError::login_required("the session cannot be used for this request"),
            )))
        }
        Reassessed::StepUp(pending) => Ok(Next::StepUp { pending }),
        Reassessed::Block(message) => Ok(Next::Blocked(message)),
        Reassessed::ChangePassword => Ok(Next::ChangePassword),
    }
}

/// Start: save the request, then continue as far as the session allows.
pub async fn begin(
    svc: &Services,
    now: Timestamp,
    req: ValidRequest,
    session: Option<(Session, User)>,
    ctx: &RequestContext,
) -> Result<Next, OAuthError> {
    let issuer = svc.settings.issuer.as_str().to_owned();
    // An id_token_hint naming someone else means this session is not the one the RP expects.
    let mut session = session;
    if let Some(hint) = &req.id_token_hint {
        let keys = svc.keys.current(now).await?;
        // Only an ID token (typ JWT) is a hint: an access token (`at+jwt`) or a logout token
        // carries the same sub and aud and must not pass for one.
        match keys.verify::<IdClaims>(hint, &issuer, Some(crate::oidc::ID_TOKEN_TYP), false) {
            Ok(c) if c.aud == req.client.id => {
                if session.as_ref().is_some_and(|(_, u)| u.id != c.sub) {
                    session = None;
                }
            }
            _ => {
                return Ok(Next::Redirect(Redirect::error(
                    &req,
                    &issuer,
                    &OAuthError::invalid_request("invalid id_token_hint"),
                )))
            }
        }
    }
    let tx = AuthzRequest {
        id: random_token(),
        client_id: req.client.id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scopes.join(" "),
        state: req.state.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        response_mode: req.response_mode.as_str().to_owned(),
        prompt: req.prompt.join(" "),
        max_age: req.max_age,
        acr_values: effective_acr_values(&req),
        login_hint: req
            .login_hint
            .clone()
            .map(|h| h.chars().take(128).collect()),
        created_at: now.micros(),
        expires_at: now.plus_secs(LIFETIMES.request).micros(),
        // Only this browser may continue the request (resume, consent, the login for it).
        device_id: ctx.device_id.clone(),
        assessed_session: None,
    };
    let row = tx.clone();
    svc.db.run(move |c| authz::insert_request(c, &row)).await?;
    // SSO is not blind: reusing a session re-scores this request's context (another country
    // or device mid-session steps up, a deny-listed network is blocked).
    let forced = req
        .prompt
        .iter()
        .any(|p| p == "login" || p == "select_account");
    match session {
        Some(session) if !forced => reassessed_next(svc, now, tx, req.client, session, ctx).await,
        other => proceed(svc, now, tx, req.client, other, ctx).await,
    }
}

fn expired() -> Next {
    Next::Page(
        "This sign-in request has expired or belongs to another browser. Go back to the application and start again."
            .into(),
    )
}

/// Continue a saved request after the user signed in (or again with the SSO session). Only the
/// browser that started the request may continue it, and a session that was not assessed for
/// this request (the sign-in made for it) is re-scored first, like any SSO reuse.
pub async fn resume(
    svc: &Services,
    now: Timestamp,
    tx_id: &str,
    session: Option<(Session, User)>,
    ctx: &RequestContext,
) -> Result<Next, OAuthError> {
    let Some((tx, client)) = load(svc, now, tx_id, ctx).await? else {
        return Ok(expired());
    };
    match session {
        Some(session) if tx.assessed_session.as_deref() != Some(session.0.id.as_str()) => {
            reassessed_next(svc, now, tx, client, session, ctx).await
        }
        other => proceed(svc, now, tx, client, other, ctx).await,
    }
}

/// The user answered the consent page.
pub async fn consent(
    svc: &Services,
    now: Timestamp,
    tx_id: &str,
    session: Option<(Session, User)>,
    allow: bool,
    ctx: &RequestContext,
) -> Result<Next, OAuthError> {
    let Some((tx, client)) = load(svc, now, tx_id, ctx).await? else {
        return Ok(expired());
    };
    let issuer = svc.settings.issuer.as_str().to_owned();
    let Some((s, user)) = session.filter(|(s, _)| satisfied(&tx, s, now).is_ok()) else {
        return proceed(svc, now, tx, client, None, ctx).await;
    };
    // Consent is given with the session assessed for this request; any other goes through
    // the re-assessment first.
    if tx.assessed_session.as_deref() != Some(s.id.as_str()) {
        return reassessed_next(svc, now, tx, client, (s, user), ctx).await;
    }
    if !allow {
        let id = tx.id.clone();
        svc.db.run(move |c| authz::delete_request(c, &id)).await?;
        return Ok(Next::Redirect(redirect_error(
            &tx,
            &issuer,
            &OAuthError::access_denied("the user denied the request"),
        )));
    }
    let grant = consents::Consent {
        user_id: user.id.clone(),
        client_id: client.id.clone(),
        scope: tx.scope.clone(),
        granted_at: now.micros(),
    };
    svc.db.run(move |c| consents::grant(c, &grant)).await?;
    Ok(issue_code(svc, now, &tx, &s)
        .await?
        .map_or_else(expired, Next::Redirect))
}

/// The live request `tx_id`, if this browser started it.
async fn load(
    svc: &Services,
    now: Timestamp,
    tx_id: &str,
    ctx: &RequestContext,
) -> Result<Option<(AuthzRequest, Client)>, OAuthError> {
    if tx_id.len() > 64 {
        return Ok(None);
    }
    let id = tx_id.to_owned();
    let device = ctx.device_id.clone();
    Ok(svc
        .db
        .run(move |c| {
            let Some(tx) = authz::find_request(c, &id, now.micros())? else {
                return Ok(None);
            };
            if tx.device_id != device {
                return Ok(None);
            }
            Ok(clients::find(c, &tx.client_id)?.map(|cl| (tx, cl)))
        })
        .await?)
}

/// What the request demands, raised to the client's floor: the request's weakest acceptable
/// value, unless the client's `min_acr` is stronger (then that alone).
fn effective_acr_values(req: &ValidRequest) -> Option<String> {
    let asked = req.acr_values.iter().map(|a| acr_rank(a)).min();
    match (&req.client.min_acr, asked) {
        (Some(floor), Some(rank)) if acr_rank(floor) > rank => Some(floor.clone()),
        (Some(floor), None) => Some(floor.clone()),
        _ => (!req.acr_values.is_empty()).then(|| req.acr_values.join(" ")),
    }
}

/// Why a session does not satisfy a request.
enum Unsatisfied {
    NeedsLogin,
    NeedsStrongerFactor,
}

fn satisfied(tx: &AuthzRequest, s: &Session, now: Timestamp) -> Result<(), Unsatisfied> {
    let prompt = split_scope(&tx.prompt);
    if prompt.iter().any(|p| p == "login" || p == "select_account") && s.auth_time < tx.created_at {
        return Err(Unsatisfied::NeedsLogin);
    }
    if let Some(max) = tx.max_age {
        if now.micros().saturating_sub(s.auth_time) > max.saturating_mul(1_000_000) {
            return Err(Unsatisfied::NeedsLogin);
        }
    }
    if acr_rank(&s.acr) < needed_rank(tx) {
        return Err(Unsatisfied::NeedsStrongerFactor);
    }
    Ok(())
}

/// The weakest `acr` the request accepts (0 when it asked for none).
fn needed_rank(tx: &AuthzRequest) -> usize {
    tx.acr_values
        .as_deref()
        .map(|w| {
            split_scope(w)
                .iter()
                .map(|a| acr_rank(a))
                .min()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn redirect_error(tx: &AuthzRequest, issuer: &str, e: &OAuthError) -> Redirect {
    Redirect::new(
        &tx.redirect_uri,
        ResponseMode::parse(&tx.response_mode),
        tx.state.as_deref(),
        issuer,
        vec![
            ("error".into(), e.error.into()),
            ("error_description".into(), e.error_description.clone()),
        ],
    )
}

/// What a request needs next from a live session: one pure decision, shared by the code path
/// after SSO or a resumed request ([`proceed`]) and the sign-in's own transaction
/// ([`mint_in_sign_in`]), so both issue a code under exactly the same rules.
#[derive(Debug)]
enum Needs {
    Code,
    Login,
    SecondFactor(Requirement),
    /// An OAuth error for the application (redirected).
    Refuse(OAuthError),
    Blocked(String),
    ChangePassword,
    Consent,
    /// The client's access rule refuses this user.
    NoAccess,
}

/// Whether the client's consent record matters to [`decide`] (it is read only then).
fn consent_matters(tx: &AuthzRequest, client: &Client) -> bool {
    !client.first_party || split_scope(&tx.prompt).iter().any(|p| p == "consent")
}

/// What the user holds of the client's roles, as enforcement weighs it for this request.
fn role_facts(tx: &AuthzRequest, client: &Client, access: Option<&Access>) -> Option<RoleFacts> {
    let a = access?;
    let wants_roles = split_scope(&tx.scope)
        .iter()
        .any(|s| s == access::SCOPE_ROLES);
    Some(RoleFacts {
        lacks_required: client.require_role && !a.holds_any(),
        privileged: wants_roles && a.holds_privileged(),
        privileged_max_age_secs: client
            .privileged_max_age_secs
            .unwrap_or(access::PRIVILEGED_MAX_AGE_SECS),
    })
}

/// The user's access to the client, when this request needs it read (a client that admits
/// only its roles, or scope `roles`/`groups`).
fn access_matters(tx: &AuthzRequest, client: &Client) -> bool {
    access::wanted(&split_scope(&tx.scope), client.require_role)
}

#[allow(clippy::too_many_arguments)]
fn decide(
    tx: &AuthzRequest,
    client: &Client,
    s: &Session,
    user: &User,
    factors: crate::risk::AvailableFactors,
    consent: Option<&consents::Consent>,
    access: Option<&Access>,
    now: Timestamp,
) -> Needs {
    let prompt_none = tx.prompt == "none";
    // The account's own state (a forced password change, a compromise, at risk) applies to
    // every code, whatever the session looked like when it was made; so do the client's
    // access rule and its privileged roles.
    let facts = Facts {
        now: now.micros(),
        device_id: s.device_id.as_deref(),
        roles: role_facts(tx, client, access),
        ..Facts::default()
    };
    let account = enforce::AccountView { user, factors };
    let need = enforce::require(&account, Some(s), &facts, Action::UseSession);
    match need {
        Requirement::Allow => {}
        Requirement::Deny(Refusal::NoAccess) => return Needs::NoAccess,
        _ if prompt_none => {
            return Needs::Refuse(OAuthError::login_required(
                "the session cannot be used for this request",
            ))
        }
        Requirement::ChangePassword => return Needs::ChangePassword,
        Requirement::StepUp { .. } => return Needs::SecondFactor(need),
        Requirement::Deny(r) => return Needs::Blocked(r.message().to_owned()),
        Requirement::Reauthenticate { .. } | Requirement::EnrolFactor => return Needs::Login,
    }
    match satisfied(tx, s, now) {
        Ok(()) => {}
        Err(_) if prompt_none => {
            return Needs::Refuse(OAuthError::login_required(
                "the session does not satisfy the request",
            ))
        }
        Err(Unsatisfied::NeedsLogin) => return Needs::Login,
        Err(Unsatisfied::NeedsStrongerFactor) => {
            // Only a passkey reaches `phr`: a TOTP-only account asked for it cannot comply,
            // and offering TOTP again would loop.
            let phishing_resistant = needed_rank(tx) >= acr_rank(crate::oidc::ACR_PHR);
            let can = if phishing_resistant {
                factors.webauthn
            } else {
                factors.webauthn || factors.totp || factors.recovery
            };
            return if can {
                Needs::SecondFactor(Requirement::StepUp { phishing_resistant })
            } else {
                // Too weak, and the account has no stronger factor to offer.
                Needs::Refuse(OAuthError::access_denied(
                    "the requested authentication level (acr_values) cannot be met",
                ))
            };
        }
    }
    if consent_matters(tx, client) {
        let prompt_consent = split_scope(&tx.prompt).iter().any(|p| p == "consent");
        let covered = consent.is_some_and(|c| {
            let granted = split_scope(&c.scope);
            split_scope(&tx.scope).iter().all(|s| granted.contains(s))
        });
        if prompt_consent || !covered {
            if prompt_none {
                return Needs::Refuse(OAuthError::consent_required("consent is required"));
            }
            return Needs::Consent;
        }
    }
    Needs::Code
}

async fn proceed(
    svc: &Services,
    now: Timestamp,
    tx: AuthzRequest,
    client: Client,
    session: Option<(Session, User)>,
    ctx: &RequestContext,
) -> Result<Next, OAuthError> {
    let issuer = svc.settings.issuer.as_str().to_owned();
    let login = || Next::Login {
        tx: tx.id.clone(),
        login_hint: tx.login_hint.clone(),
    };
    let Some((s, user)) = session else {
        return Ok(if tx.prompt == "none" {
            Next::Redirect(redirect_error(
                &tx,
                &issuer,
                &OAuthError::login_required("no active session"),
            ))
        } else {
            login()
        });
    };
    let err = OAuthError::from_flow;
    // The account's factors, consent and access to the client: one visit to the database.
    let (uid, cid) = (user.id.clone(), client.id.clone());
    let (wants_consent, wants_access) =
        (consent_matters(&tx, &client), access_matters(&tx, &client));
    let (enrolled, consent, access) = svc
        .db
        .run(move |c| {
            let enrolled = store::factors::enrolled(c, &uid)?;
            let consent = match wants_consent {
                true => consents::find(c, &uid, &cid)?,
                false => None,
            };
            let access = match wants_access {
                true => Some(access::for_token(c, &uid, &cid)?),
                false => None,
            };
            Ok((enrolled, consent, access))
        })
        .await?;
    let factors = enforce::available(svc, enrolled);
    let needs = decide(
        &tx,
        &client,
        &s,
        &user,
        factors,
        consent.as_ref(),
        access.as_ref(),
        now,
    );
    Ok(match needs {
        Needs::Code => issue_code(svc, now, &tx, &s)
            .await?
            .map_or_else(expired, Next::Redirect),
        Needs::Login => login(),
        Needs::SecondFactor(requirement) => {
            let amr: Vec<String> = serde_json::from_str(&s.amr).unwrap_or_default();
            let pending = super::mfa::begin_step_up(
                svc,
                now,
                super::mfa::StepUpStart {
                    user: &user,
                    amr,
                    tx: Some(tx.id.clone()),
                    previous_digest: Some(s.token_hash.clone()),
                    verdict: None,
                    requirement,
                    device_id: s.device_id.clone(),
                    reset: false,
                },
            )
            .await
            .map_err(err)?;
            Next::StepUp { pending }
        }
        Needs::Refuse(e) => Next::Redirect(redirect_error(&tx, &issuer, &e)),
        Needs::Blocked(message) => Next::Blocked(message),
        Needs::ChangePassword => Next::ChangePassword,
        Needs::Consent => Next::Consent {
            tx: tx.id.clone(),
            client_name: client.name.clone(),
            scopes: split_scope(&tx.scope),
        },
        Needs::NoAccess => {
            // The request ends here; the sign-in log records the refusal.
            let (tx_id, uid, cid, ctx2) = (
                tx.id.clone(),
                user.id.clone(),
                client.id.clone(),
                ctx.clone(),
            );
            let (sid, acr, amr) = (s.id.clone(), s.acr.clone(), s.amr.clone());
            svc.db
                .run(move |c| {
                    store::transaction(c, |c| {
                        authz::delete_request(c, &tx_id)?;
                        log_access_denied(c, now, &uid, &cid, &ctx2, (&sid, &acr, &amr))
                    })
                })
                .await?;
            tracing::info!(user.id = %user.id, client = %client.id, "refused by the client's access rule");
            let back = redirect_error(
                &tx,
                &issuer,
                &OAuthError::access_denied(
                    "the user holds none of the roles this application admits",
                ),
            );
            // prompt=none promised the application no page: the error goes straight back.
            if tx.prompt == "none" {
                Next::Redirect(back)
            } else {
                Next::NoAccess {
                    client_name: client.name.clone(),
                    back,
                }
            }
        }
    })
}

/// Inside a sign-in's transaction, made for request `tx` (this browser's): when the new session
/// is all the request needs, mint its code in the same commit (one commit fewer per sign-in
/// flow; issue 14). `None` leaves the request to [`resume`], which decides the same way.
pub fn mint_in_sign_in(
    c: &mut store::DbConn,
    now: Timestamp,
    issuer: &str,
    webauthn_enabled: bool,
    tx: &AuthzRequest,
    s: &Session,
    user: &User,
) -> store::StoreResult<Option<Redirect>> {
    let Some(client) = clients::find(c, &tx.client_id)? else {
        return Ok(None);
    };
    let e = store::factors::enrolled(c, &user.id)?;
    let factors = crate::risk::AvailableFactors {
        webauthn: e.webauthn && webauthn_enabled,
        totp: e.totp,
        recovery: e.recovery,
    };
    let consent = if consent_matters(tx, &client) {
        consents::find(c, &user.id, &client.id)?
    } else {
        None
    };
    let access = if access_matters(tx, &client) {
        Some(access::for_token(c, &user.id, &client.id)?)
    } else {
        None
    };
    if !matches!(
        decide(
            tx,
            &client,
            s,
            user,
            factors,
            consent.as_ref(),
            access.as_ref(),
            now
        ),
        Needs::Code
    ) {
        return Ok(None);
    }
    let (code, row) = code_row(now, tx, s);
    if !authz::take_request(c, &tx.id)? {
        return Ok(None);
    }
    authz::insert_code(c, &row)?;
    Ok(Some(code_redirect(issuer, tx, code)))
}

/// After a sign-in made for request `tx`: the code minted with the session, or the request
/// resumed with the new session.
pub async fn after_sign_in(
    svc: &Services,
    now: Timestamp,
    tx: &str,
    est: &mut super::session::Established,
    user: User,
    ctx: &RequestContext,
) -> Result<Next, OAuthError> {
    match est.code.take() {
        Some(redirect) => Ok(Next::Redirect(redirect)),
        None => resume(svc, now, tx, Some((est.session.clone(), user)), ctx).await,
    }
}

/// A new code for `s` answering `tx`: the secret for the redirect and the row to store.
fn code_row(now: Timestamp, tx: &AuthzRequest, s: &Session) -> (String, AuthCode) {
    let code = random_token();
    let row = AuthCode {
        id: new_id(),
        code_hash: token_digest(&code),
        client_id: tx.client_id.clone(),
        user_id: s.user_id.clone(),
        session_id: s.id.clone(),
        redirect_uri: tx.redirect_uri.clone(),
        scope: tx.scope.clone(),
        nonce: tx.nonce.clone(),
        code_challenge: tx.code_challenge.clone(),
        auth_time: s.auth_time,
        acr: s.acr.clone(),
        amr: s.amr.clone(),
        risk: s.risk.clone().unwrap_or_else(|| {
            serde_json::to_string(&RiskClaim::neutral()).unwrap_or_else(|_| "{}".into())
        }),
        created_at: now.micros(),
        expires_at: now.plus_secs(LIFETIMES.code).micros(),
        used_at: None,
    };
    (code, row)
}

fn code_redirect(issuer: &str, tx: &AuthzRequest, code: String) -> Redirect {
    Redirect::new(
        &tx.redirect_uri,
        ResponseMode::parse(&tx.response_mode),
        tx.state.as_deref(),
        issuer,
        vec![("code".into(), code)],
    )
}

/// Mint a single-use code for the session and consume the request; `None` when another
/// completion consumed it first.
async fn issue_code(
    svc: &Services,
    now: Timestamp,
    tx: &AuthzRequest,
    s: &Session,
) -> Result<Option<Redirect>, OAuthError> {
    let (code, row) = code_row(now, tx, s);
    let tx_id = tx.id.clone();
    // The request is consumed by the same transaction that stores the code: of two concurrent
    // completions, one deletes the row and mints the code, the other mints nothing.
    let minted = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                if !authz::take_request(c, &tx_id)? {
                    return Ok(false);
                }
                authz::insert_code(c, &row)?;
                Ok(true)
            })
        })
        .await?;
    if !minted {
        return Ok(None);
    }
    Ok(Some(code_redirect(svc.settings.issuer.as_str(), tx, code)))
}
