//! The second step of a sign-in: after the password (or for an SSO session that is too weak for
//! what a client asked), prove a second factor.
//!
//! ```text
//!  password ok ──> pending step-up (DB row, 5 min; cookie holds its token)
//!      │
//!      ├─ TOTP code ok (step not used before) ──> session acr=mfa, amr=[pwd, otp, mfa]
//!      ├─ WebAuthn assertion ok ───────────────> session acr=phr, amr=[pwd, hwk|swk, (user), mfa]
//!      ├─ recovery code ok (single use) ───────> session acr=mfa, amr=[pwd, mfa]; asks to enrol anew
//!      └─ wrong ──> counted like a wrong password (same reservation, throttle.rs); pending stays
//! ```

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::enforce::{Factor, Requirement};
use super::login::{account_key, establish, Proof};
use super::risk::Verdict;
use super::session::Established;
use super::throttle::{self, Gate};
use super::{random_token, FlowError, RequestContext, Services};
use crate::auth::{recovery, totp, AuthError};
use crate::clock::Timestamp;
use crate::oidc::ACR_MFA;
use crate::store::factors::{self, Enrolled};
use crate::store::flows::{self, FlowRow};
use crate::store::users::{self, User};
use crate::store::{self, token_digest};

/// How long a half-finished sign-in waits for its second factor.
pub const STEP_UP_SECS: i64 = 300;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepUpData {
    amr: Vec<String>,
    tx: Option<String>,
    previous_digest: Option<String>,
    #[serde(default)]
    verdict: Option<Verdict>,
    /// What enforcement asked for: only a passkey will do when true.
    #[serde(default)]
    phishing_resistant: bool,
    /// The browser (device cookie) that started the sign-in; only it may finish it.
    #[serde(default)]
    device_id: Option<String>,
    /// A password reset by e-mail waits for this second factor: proving it grants the reset
    /// (`recovery.rs`), not a session.
    #[serde(default)]
    reset: bool,
}

/// A sign-in waiting for its second factor.
#[derive(Debug, Clone)]
pub struct Pending {
    pub user: User,
    pub tx: Option<String>,
    pub enrolled: Enrolled,
    /// What the step-up must prove; every factor check asks `requirement.accepts(..)`.
    pub requirement: Requirement,
    /// Why the step-up is asked, in one non-revealing line.
    pub reason: &'static str,
    verdict: Option<Verdict>,
    amr: Vec<String>,
    previous_digest: Option<String>,
    flow_id: String,
    /// This step-up is a password reset's (no session follows it).
    pub reset: bool,
}

impl Pending {
    /// The factors the page may offer: enrolled, and accepted by the requirement.
    pub fn offered(&self, passkeys_available: bool) -> Vec<Factor> {
        self.requirement.offered(crate::risk::AvailableFactors {
            webauthn: self.enrolled.webauthn && passkeys_available,
            totp: self.enrolled.totp,
            recovery: self.enrolled.recovery,
        })
    }
}

/// How a step-up starts: who, what they proved so far, and what enforcement requires.
pub struct StepUpStart<'a> {
    pub user: &'a User,
    pub amr: Vec<String>,
    pub tx: Option<String>,
    pub previous_digest: Option<String>,
    pub verdict: Option<Verdict>,
    pub requirement: Requirement,
    pub device_id: Option<String>,
    /// A password reset by e-mail, not a sign-in.
    pub reset: bool,
}

/// Start a step-up. Returns the cookie token.
pub async fn begin_step_up(
    svc: &Services,
    now: Timestamp,
    start: StepUpStart<'_>,
) -> Result<SecretString, FlowError> {
    let token = random_token();
    let phishing_resistant = matches!(
        start.requirement,
        Requirement::StepUp {
            phishing_resistant: true
        }
    );
    let row = FlowRow {
        id: token_digest(&token),
        purpose: "step_up".into(),
        user_id: Some(start.user.id.clone()),
        data: serde_json::to_string(&StepUpData {
            amr: start.amr,
            tx: start.tx,
            previous_digest: start.previous_digest,
            verdict: start.verdict,
            phishing_resistant,
            device_id: start.device_id,
            reset: start.reset,
        })
        .unwrap_or_default(),
        created_at: now.micros(),
        expires_at: now.plus_secs(STEP_UP_SECS).micros(),
    };
    svc.db.run(move |c| flows::insert(c, &row)).await?;
    Ok(SecretString::from(token))
}

/// The pending step-up behind a cookie value, if it is still live and this is the browser
/// that started it.
pub async fn pending(
    svc: &Services,
    now: Timestamp,
    token: &str,
    ctx: &RequestContext,
) -> Result<Option<Pending>, FlowError> {
    let id = token_digest(token);
    let device = ctx.device_id.clone();
    Ok(svc
        .db
        .run(move |c| {
            let Some(row) = flows::find(c, &id, "step_up", now.micros())? else {
                return Ok(None);
            };
            let Some(uid) = &row.user_id else {
                return Ok(None);
            };
            let Some(user) = users::find(c, uid)?.filter(|u| !u.disabled) else {
                return Ok(None);
            };
            let data: StepUpData = match serde_json::from_str(&row.data) {
                Ok(d) => d,
                Err(_) => return Ok(None),
            };
            if data.device_id != device {
                return Ok(None);
            }
            let enrolled = factors::enrolled(c, &user.id)?;
            let reason = match &data.verdict {
                Some(v) => crate::risk::user_message(&v.assessment),
                None => "this application asks for a second factor",
            };
            Ok(Some(Pending {
                user,
                tx: data.tx,
                enrolled,
                requirement: Requirement::StepUp {
                    phishing_resistant: data.phishing_resistant,
                },
                reason,
                verdict: data.verdict,
                amr: data.amr,
                previous_digest: data.previous_digest,
                flow_id: row.id,
                reset: data.reset,
            }))
        })
        .await?)
}

/// How a second-factor attempt ended.
pub enum StepResult {
    Done {
        user: Box<User>,
        established: Box<Established>,
        tx: Option<String>,
        used_recovery_code: bool,
    },
    Wrong,
    Replayed,
    Throttled {
        retry_after_secs: i64,
    },
    /// The pending sign-in expired or was already completed.
    Expired,
    /// This factor does not satisfy what the step-up requires (a passkey is needed).
    NotAccepted,
    /// A password reset's second factor was proven: `grant` (a cookie) lets the browser choose
    /// the new password.
    ResetGranted {
        grant: SecretString,
    },
}

/// Finish a pending step-up with proven `extra` amr values.
pub async fn finish_with(
    svc: &Services,
    now: Timestamp,
    p: Pending,
    method: &'static str,
    acr: &str,
    extra: &[&str],
    ctx: &RequestContext,
) -> Result<StepResult, FlowError> {
    // Take the pending row first: a second, concurrent completion finds nothing.
    let flow_id = p.flow_id.clone();
    let taken = svc
        .db
        .run(move |c| flows::take(c, &flow_id, "step_up", now.micros()))
        .await?;
    if taken.is_none() {
        return Ok(StepResult::Expired);
    }
    finish_taken(svc, now, p, method, acr, extra, ctx).await
}

/// [`finish_with`] for a pending row the caller has already taken.
async fn finish_taken(
    svc: &Services,
    now: Timestamp,
    p: Pending,
    method: &'static str,
    acr: &str,
    extra: &[&str],
    ctx: &RequestContext,
) -> Result<StepResult, FlowError> {
    if p.reset {
        let grant = super::recovery::grant(svc, now, &p.user, Some(method), ctx).await?;
        return Ok(StepResult::ResetGranted { grant });
    }
    let mut amr = p.amr.clone();
    for e in extra {
        if !amr.iter().any(|a| a == e) {
            amr.push((*e).to_owned());
        }
    }
    if !amr.iter().any(|a| a == "mfa") {
        amr.push("mfa".into());
    }
    let proof = Proof {
        method,
        acr: acr.to_owned(),
        amr,
        verdict: p.verdict.clone(),
        tx: p.tx.clone(),
        reservation: None,
        // A passkey's step-up answers in JSON and sends the browser to `/authorize/resume`;
        // the form-based factors answer the request in the same response.
        answers_tx: method != "webauthn",
    };
    let est = establish(svc, now, &p.user, proof, ctx, p.previous_digest.clone()).await?;
    Ok(StepResult::Done {
        user: Box::new(p.user),
        established: Box::new(est),
        tx: p.tx,
        used_recovery_code: method == "recovery_code",
    })
}

/// Second factor: a TOTP code.
pub async fn with_totp(
    svc: &Services,
    now: Timestamp,
    token: &str,
    code: &str,
    ctx: &RequestContext,
) -> Result<StepResult, FlowError> {
    let Some(p) = pending(svc, now, token, ctx).await? else {
        return Ok(StepResult::Expired);
    };
    if !p.requirement.accepts(Factor::Totp) {
        return Ok(StepResult::NotAccepted);
    }
    let account = account_key(&p.user.username);
    let r = match throttle::reserve(svc, now, &account, Some(&p.user.id), ctx).await? {
        Gate::Proceed(r) => r,
        Gate::Throttled {
            retry_after_secs, ..
        } => return Ok(StepResult::Throttled { retry_after_secs }),
    };
    match spend_totp_for(svc, now, &p.user.id, &p.flow_id, code).await? {
        Spend::Spent => {
            throttle::release(svc, r).await?;
            finish_taken(svc, now, p, "totp", ACR_MFA, &["otp"], ctx).await
        }
        // This very step-up was completed by a concurrent twin (a double-submitted form):
        // not a guess and not a replay by someone else — nothing is counted or flagged.
        Spend::Completed => {
            throttle::release(svc, r).await?;
            Ok(StepResult::Expired)
        }
        Spend::Replay => {
            throttle::failed(svc, now, r, Some(p.user.id.clone()), "totp", ctx).await?;
            Ok(StepResult::Replayed)
        }
        Spend::Wrong => {
            throttle::failed(svc, now, r, Some(p.user.id.clone()), "totp", ctx).await?;
            Ok(StepResult::Wrong)
        }
    }
}

/// What presenting a TOTP code at one pending step-up came to.
enum Spend {
    /// The code was right, its time step is spent and the pending row taken (one transaction).
    Spent,
    /// The pending row is gone: another request completed this same step-up.
    Completed,
    /// A right code whose time step was already spent elsewhere.
    Replay,
    Wrong,
}

/// Verify `code` and, in one transaction, spend its time step and take the pending step-up
/// `flow_id`. A step found spent while the pending row is gone was spent by a concurrent
/// completion of the same step-up (both happen in one transaction, so one is never seen
/// without the other).
async fn spend_totp_for(
    svc: &Services,
    now: Timestamp,
    user_id: &str,
    flow_id: &str,
    code: &str,
) -> Result<Spend, FlowError> {
    let uid = user_id.to_owned();
    let Some(row) = svc.db.run(move |c| factors::totp_for(c, &uid)).await? else {
        return Ok(Spend::Wrong);
    };
    let secret = svc
        .master
        .open(&row.id, &row.secret_enc)
        .map_err(|e| FlowError::Invalid(format!("stored TOTP secret: {e}")))?;
    let step = match totp::verify(&secret, code, now, row.last_used_step) {
        Ok(s) => Some(s),
        Err(AuthError::TotpReplay) => None,
        Err(_) => return Ok(Spend::Wrong),
    };
    let (id, fid) = (row.id.clone(), flow_id.to_owned());
    let spend = svc
        .db
        .run(move |c| {
            let out = store::transaction(c, |c| {
                // The write comes first: on SQLite it takes the write lock before any read.
                let fresh = match step {
                    Some(step) => factors::use_totp_step(c, &id, step, now.micros())?,
                    None => false,
                };
                if fresh {
                    if flows::take(c, &fid, "step_up", now.micros())?.is_some() {
                        return Ok(Spend::Spent);
                    }
                    // Completed meanwhile by another factor: give the step back.
                    return Err(store::StoreError::Conflict("step-up completed".into()));
                }
                Ok(match flows::find(c, &fid, "step_up", now.micros())? {
                    None => Spend::Completed,
                    Some(_) => Spend::Replay,
                })
            });
            match out {
                Err(store::StoreError::Conflict(_)) => Ok(Spend::Completed),
                other => other,
            }
        })
        .await?;
    Ok(spend)
}

/// Verify a code against the user's TOTP secret and spend its time step.
pub async fn check_totp(
    svc: &Services,
    now: Timestamp,
    user_id: &str,
    code: &str,
) -> Result<Result<(), AuthError>, FlowError> {
    let uid = user_id.to_owned();
    let Some(row) = svc.db.run(move |c| factors::totp_for(c, &uid)).await? else {
        return Ok(Err(AuthError::InvalidCredentials));
    };
    let secret = svc
        .master
        .open(&row.id, &row.secret_enc)
        .map_err(|e| FlowError::Invalid(format!("stored TOTP secret: {e}")))?;
    let step = match totp::verify(&secret, code, now, row.last_used_step) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let id = row.id.clone();
    let fresh = svc
        .db
        .run(move |c| factors::use_totp_step(c, &id, step, now.micros()))
        .await?;
    Ok(if fresh {
        Ok(())
    } else {
        Err(AuthError::TotpReplay)
    })
}

/// Second factor: one of the user's recovery codes.
pub async fn with_recovery_code(
    svc: &Services,
    now: Timestamp,
    token: &str,
    code: &str,
    ctx: &RequestContext,
) -> Result<StepResult, FlowError> {
    let Some(p) = pending(svc, now, token, ctx).await? else {
        return Ok(StepResult::Expired);
    };
    if !p.requirement.accepts(Factor::RecoveryCode) {
        return Ok(StepResult::NotAccepted);
    }
    let account = account_key(&p.user.username);
    let r = match throttle::reserve(svc, now, &account, Some(&p.user.id), ctx).await? {
        Gate::Proceed(r) => r,
        Gate::Throttled {
            retry_after_secs, ..
        } => return Ok(StepResult::Throttled { retry_after_secs }),
    };
    let (uid, digest) = (p.user.id.clone(), recovery::digest(code));
    let spent = svc
        .db
        .run(move |c| factors::use_recovery_code(c, &uid, &digest, now.micros()))
        .await?;
    if !spent {
        throttle::failed(svc, now, r, Some(p.user.id.clone()), "recovery_code", ctx).await?;
        return Ok(StepResult::Wrong);
    }
    throttle::release(svc, r).await?;
    finish_with(svc, now, p, "recovery_code", ACR_MFA, &[], ctx).await
}

/// Drop a pending step-up (the user chose to start over).
pub async fn cancel(svc: &Services, token: &str) -> Result<(), FlowError> {
    let id = token_digest(token);
    svc.db.run(move |c| flows::delete(c, &id)).await?;
    Ok(())
}

/// Store a verified TOTP secret as the user's factor (sealed under the master key).
pub fn store_totp(
    svc: &Services,
    conn: &mut store::DbConn,
    user_id: &str,
    secret: &[u8],
    step: Option<i64>,
    now: Timestamp,
) -> Result<(), FlowError> {
    let id = store::new_id();
    let sealed = svc
        .master
        .seal(&id, secret)
        .map_err(|e| FlowError::Invalid(e.to_string()))?;
    factors::put_totp(
        conn,
        &factors::TotpRow {
            id,
            user_id: user_id.to_owned(),
            secret_enc: sealed,
            last_used_step: step,
            created_at: now.micros(),
            last_used_at: None,
            suspended_at: None,
        },
    )?;
    Ok(())
}
