//! WebAuthn ceremonies as parts of the sign-in and account flows: registering passkeys from
//! /account, using one as the second factor after a password, and signing in with one alone
//! (discoverable credentials). Ceremony state lives in the database (`mfa_flows`), so any node
//! can finish a ceremony another began; each state row is used once.
//!
//! ```text
//!  begin ──> options to the browser + state row (5 min) ──> navigator.credentials.* ──> finish
//!  finish: take the state row ─> verify with webauthn-rs against the credentials stored *now*
//!          ─> counter went backwards? refuse, audit `factor.clone_detected`
//!          ─> ok: store the new counter; session acr=phr, amr=[…, hwk|swk, user, mfa]
//! ```

use serde_json::Value;

use super::login::{establish, log_signin, Proof};
use super::mfa::{self, StepResult};
use super::{random_token, FlowError, RequestContext, Services};
use crate::audit::AuditEvent;
use crate::auth::webauthn::{Authenticated, Passkeys, StoredPasskey};
use crate::auth::AuthError;
use crate::clock::Timestamp;
use crate::oidc::ACR_PHR;
use crate::store::factors::{self, WebauthnRow};
use crate::store::flows::{self, FlowRow};
use crate::store::users::{self, User};
use crate::store::{self, new_id, token_digest};

const CEREMONY_SECS: i64 = 300;

fn passkeys(svc: &Services) -> Result<&Passkeys, FlowError> {
    svc.passkeys.as_deref().ok_or_else(|| {
        FlowError::Invalid(
            "Passkeys need vigil to run on a domain name (VIGIL_ISSUER), not an IP address.".into(),
        )
    })
}

fn stored(rows: &[WebauthnRow]) -> Vec<StoredPasskey> {
    rows.iter()
        .map(|r| StoredPasskey {
            cred_id: r.cred_id.clone(),
            passkey_json: r.passkey.clone(),
        })
        .collect()
}

fn user_uuid(user: &User) -> Result<uuid::Uuid, FlowError> {
    uuid::Uuid::parse_str(&user.id).map_err(|e| FlowError::Invalid(e.to_string()))
}

/// Save ceremony state; returns the flow token the browser sends back.
async fn save(
    svc: &Services,
    now: Timestamp,
    purpose: &str,
    user_id: Option<String>,
    state: String,
) -> Result<String, FlowError> {
    let token = random_token();
    let row = FlowRow {
        id: token_digest(&token),
        purpose: purpose.to_owned(),
        user_id,
        data: state,
        created_at: now.micros(),
        expires_at: now.plus_secs(CEREMONY_SECS).micros(),
    };
    svc.db.run(move |c| flows::insert(c, &row)).await?;
    Ok(token)
}

async fn take(
    svc: &Services,
    now: Timestamp,
    purpose: &'static str,
    token: &str,
) -> Result<Option<FlowRow>, FlowError> {
    let id = token_digest(token);
    Ok(svc
        .db
        .run(move |c| flows::take(c, &id, purpose, now.micros()))
        .await?)
}

/// Begin registering a passkey for a signed-in user.
pub async fn register_begin(
    svc: &Services,
    now: Timestamp,
    user: &User,
) -> Result<(Value, String), FlowError> {
    let pk = passkeys(svc)?;
    let uid = user.id.clone();
    let existing = svc
        .db
        .run(move |c| factors::passkeys_all_for(c, &uid))
        .await?;
    let display = if user.name.is_empty() {
        user.username.clone()
    } else {
        user.name.clone()
    };
    let (options, state) = pk.start_registration(
        user_uuid(user)?,
        &user.username,
        &display,
        &stored(&existing),
    )?;
    let flow = save(svc, now, "register", Some(user.id.clone()), state).await?;
    Ok((options, flow))
}

/// Finish registration. Returns recovery codes when this was the user's first factor.
pub async fn register_finish(
    svc: &Services,
    now: Timestamp,
    user: &User,
    flow: &str,
    name: &str,
    response: &str,
    ip: std::net::IpAddr,
) -> Result<Option<Vec<String>>, FlowError> {
    let pk = passkeys(svc)?;
    let Some(row) = take(svc, now, "register", flow)
        .await?
        .filter(|r| r.user_id.as_deref() == Some(user.id.as_str()))
    else {
        return Err(FlowError::Invalid(
            "This passkey set-up expired. Try again.".into(),
        ));
    };
    let reg = pk.finish_registration(response, &row.data)?;
    let name: String = name.trim().chars().take(64).collect();
    let name = if name.is_empty() {
        "Passkey".to_owned()
    } else {
        name
    };
    let (auditor, uid) = (svc.auditor.clone(), user.id.clone());
    let codes = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                factors::insert_passkey(
                    c,
                    &WebauthnRow {
                        id: new_id(),
                        user_id: uid.clone(),
                        cred_id: reg.cred_id.clone(),
                        name: name.clone(),
                        passkey: reg.passkey_json.clone(),
                        created_at: now.micros(),
                        last_used_at: None,
                        suspended_at: None,
                    },
                )?;
                auditor.record(
                    c,
                    now,
                    AuditEvent::new("factor.enrolled")
                        .actor(uid.clone())
                        .target(uid.clone())
                        .ip(ip)
                        .details(serde_json::json!({ "factor": "webauthn", "name": name })),
                )?;
                super::factors::first_recovery_codes(&auditor, c, &uid, now, Some(ip))
            })
        })
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(_) => {
                FlowError::Conflict("This passkey is already registered.".into())
            }
            other => FlowError::Store(other),
        })?;
    super::notices::send(
        svc,
        now,
        &user.id,
        super::notices::Notice::FactorAdded("passkey"),
    )
    .await;
    Ok(codes)
}

pub async fn remove(
    svc: &Services,
    now: Timestamp,
    user: &User,
    id: &str,
    ip: std::net::IpAddr,
) -> Result<(), FlowError> {
    let (auditor, uid, id) = (svc.auditor.clone(), user.id.clone(), id.to_owned());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                if factors::delete_passkey(c, &uid, &id)? {
                    auditor.record(
                        c,
                        now,
                        AuditEvent::new("factor.removed")
                            .actor(uid.clone())
                            .target(uid.clone())
                            .ip(ip)
                            .details(serde_json::json!({ "factor": "webauthn" })),
                    )?;
                }
                super::factors::drop_orphan_recovery_codes(c, &uid)
            })
        })
        .await?;
    Ok(())
}

/// The amr a WebAuthn assertion adds.
fn amr_of(a: &Authenticated) -> Vec<&'static str> {
    let mut v = vec![if a.hardware { "hwk" } else { "swk" }];
    if a.user_verified {
        v.push("user");
    }
    v
}

/// Record what a failed assertion means: a clone is an event for the admin.
///
/// With no user identified (a passwordless response that names nobody) there is nobody to
/// log it for: anyone can post garbage there, so it writes no sign-in row and no audit entry,
/// which would let anonymous traffic grow both. It is a log line, and a failure counted
/// against the IP (account "") so the IP throttle still sees it.
async fn assertion_failed(
    svc: &Services,
    now: Timestamp,
    user: Option<&User>,
    e: &AuthError,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    if user.is_none() {
        tracing::info!(client.ip = %ctx.ip, error = %e, "anonymous passkey assertion refused");
        let ip = ctx.ip.to_string();
        svc.db
            .run(move |c| store::throttle::record(c, "", &ip, now.micros()))
            .await?;
        return Ok(());
    }
    let (auditor, uid, ctx2) = (svc.auditor.clone(), user.map(|u| u.id.clone()), ctx.clone());
    let clone = matches!(e, AuthError::CloneDetected);
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                log_signin(
                    c,
                    now,
                    uid.as_deref(),
                    "webauthn",
                    "step_up_failed",
                    &ctx2,
                    None,
                    None,
                )?;
                let action = if clone {
                    "factor.clone_detected"
                } else {
                    "login.failed"
                };
                let mut ev = AuditEvent::new(action)
                    .ip(ctx2.ip)
                    .details(serde_json::json!({ "method": "webauthn" }));
                if let Some(u) = &uid {
                    ev = ev.target(u.clone());
                }
                auditor.record(c, now, ev)
            })
        })
        .await?;
    if let Some(u) = user {
        super::throttle::record_unreserved(svc, now, &u.username, ctx).await?;
    }
    Ok(())
}

/// Step-up with WebAuthn: options for the pending sign-in's user.
pub async fn step_up_begin(
    svc: &Services,
    now: Timestamp,
    pending_token: &str,
    ctx: &RequestContext,
) -> Result<(Value, String), FlowError> {
    let pk = passkeys(svc)?;
    let p = mfa::pending(svc, now, pending_token, ctx)
        .await?
        .ok_or_else(|| FlowError::Invalid("This sign-in expired. Start again.".into()))?;
    let uid = p.user.id.clone();
    let creds = svc.db.run(move |c| factors::passkeys_for(c, &uid)).await?;
    let (options, state) = pk.start_authentication(&stored(&creds))?;
    let flow = save(svc, now, "webauthn_step_up", Some(p.user.id.clone()), state).await?;
    Ok((options, flow))
}

pub async fn step_up_finish(
    svc: &Services,
    now: Timestamp,
    pending_token: &str,
    flow: &str,
    response: &str,
    ctx: &RequestContext,
) -> Result<Result<StepResult, String>, FlowError> {
    let pk = passkeys(svc)?;
    let Some(p) = mfa::pending(svc, now, pending_token, ctx).await? else {
        return Ok(Ok(StepResult::Expired));
    };
    if !p.requirement.accepts(super::enforce::Factor::Passkey) {
        return Ok(Ok(StepResult::NotAccepted));
    }
    let Some(row) = take(svc, now, "webauthn_step_up", flow)
        .await?
        .filter(|r| r.user_id.as_deref() == Some(p.user.id.as_str()))
    else {
        return Ok(Err("This request expired. Try again.".into()));
    };
    let uid = p.user.id.clone();
    let creds = svc.db.run(move |c| factors::passkeys_for(c, &uid)).await?;
    match pk.finish_authentication(response, &row.data, &stored(&creds)) {
        Ok(a) => {
            store_use(svc, now, &p.user.id, &a).await?;
            let extra = amr_of(&a);
            mfa::finish_with(svc, now, p, "webauthn", ACR_PHR, &extra, ctx)
                .await
                .map(Ok)
        }
        Err(e) => {
            assertion_failed(svc, now, Some(&p.user), &e, ctx).await?;
            Ok(Err(user_message(&e)))
        }
    }
}

async fn store_use(
    svc: &Services,
    now: Timestamp,
    user_id: &str,
    a: &Authenticated,
) -> Result<(), FlowError> {
    let (uid, cred, updated) = (
        user_id.to_owned(),
        a.cred_id.clone(),
        a.updated_passkey_json.clone(),
    );
    svc.db
        .run(move |c| factors::touch_passkey(c, &uid, &cred, updated.as_deref(), now.micros()))
        .await?;
    Ok(())
}

fn user_message(e: &AuthError) -> String {
    match e {
        AuthError::CloneDetected => "This passkey cannot be used: it may have been copied. Use another way to sign in and contact your administrator.".into(),
        _ => "That passkey could not be verified. Try again, or use another way to sign in.".into(),
    }
}

/// Passwordless: options for any discoverable credential.
pub async fn passwordless_begin(
    svc: &Services,
    now: Timestamp,
) -> Result<(Value, String), FlowError> {
    let pk = passkeys(svc)?;
    let (options, state) = pk.start_discoverable()?;
    let flow = save(svc, now, "passwordless", None, state).await?;
    Ok((options, flow))
}

pub enum Passwordless {
    Done {
        user: Box<User>,
        established: Box<super::session::Established>,
    },
    Failed(String),
}

pub async fn passwordless_finish(
    svc: &Services,
    now: Timestamp,
    flow: &str,
    response: &str,
    ctx: &RequestContext,
    previous_digest: Option<String>,
    tx: Option<String>,
) -> Result<Passwordless, FlowError> {
    let pk = passkeys(svc)?;
    let Some(row) = take(svc, now, "passwordless", flow).await? else {
        return Ok(Passwordless::Failed(
            "This request expired. Try again.".into(),
        ));
    };
    let (user_uuid, _) = match pk.identify_discoverable(response) {
        Ok(v) => v,
        Err(e) => {
            assertion_failed(svc, now, None, &e, ctx).await?;
            return Ok(Passwordless::Failed(user_message(&e)));
        }
    };
    let uid = user_uuid.to_string();
    let found = svc
        .db
        .run(move |c| {
            let Some(user) = users::find(c, &uid)?.filter(|u| !u.disabled) else {
                return Ok(None);
            };
            let creds = factors::passkeys_for(c, &user.id)?;
            Ok(Some((user, creds)))
        })
        .await?;
    let Some((user, creds)) = found else {
        return Ok(Passwordless::Failed(user_message(
            &AuthError::InvalidCredentials,
        )));
    };
    // No password throttle here: a passkey cannot be guessed, and strangers' wrong passwords
    // must not keep the owner out.
    match pk.finish_discoverable(response, &row.data, &stored(&creds)) {
        Ok(a) if a.user_verified => {
            // A passkey is already the strongest factor; the sign-in is still scored, and the one
            // enforcement point decides what can stop it (a block: a deny-listed network).
            let mut verdict =
                super::risk::evaluate(svc, now, &user.id, ctx, &user.username, None, None).await?;
            let facts = super::enforce::Facts {
                now: now.micros(),
                device_id: ctx.device_id.as_deref(),
                decision: Some((verdict.decision, verdict.assessment.level)),
                ..Default::default()
            };
            let need = super::enforce::check(
                svc,
                &user,
                None,
                &facts,
                super::enforce::Action::SignIn(super::enforce::Method::Passkey),
            )
            .await?;
            match need {
                super::enforce::Requirement::Allow => {
                    verdict.decision = crate::risk::Decision::Allow
                }
                other => {
                    let message = match other {
                        super::enforce::Requirement::Deny(r) => r.message(),
                        _ => crate::risk::BlockReason::Policy.message(),
                    };
                    super::login::record_decision(
                        svc, now, &user.id, "passkey", "blocked", ctx, &verdict,
                    )
                    .await?;
                    return Ok(Passwordless::Failed(message.to_owned()));
                }
            }
            let verdict = Some(verdict);
            store_use(svc, now, &user.id, &a).await?;
            let mut amr: Vec<String> = amr_of(&a).into_iter().map(str::to_owned).collect();
            amr.push("mfa".into());
            let est = establish(
                svc,
                now,
                &user,
                Proof {
                    method: "passkey",
                    acr: ACR_PHR.into(),
                    amr,
                    verdict,
                    tx,
                    reservation: None,
                    answers_tx: false,
                },
                ctx,
                previous_digest,
            )
            .await?;
            Ok(Passwordless::Done {
                user: Box::new(user),
                established: Box::new(est),
            })
        }
        Ok(_) => Ok(Passwordless::Failed(
            "Your passkey did not verify you (no PIN or biometric). Use your password instead."
                .into(),
        )),
        Err(e) => {
            assertion_failed(svc, now, Some(&user), &e, ctx).await?;
            Ok(Passwordless::Failed(user_message(&e)))
        }
    }
}
