//! Password reset by e-mail, for someone who cannot sign in.
//!
//! ```text
//!  /login/forgot (name or address) ─► counted by what was typed and by network (throttle)
//!      │  the same answer, at once, whether or not an account matched; the lookup and the mail
//!      │  happen after the response (nothing to time)
//!      v
//!  mail: link (digest, single use, 15 min, bound to this browser's device cookie)
//!      v
//!  /login/reset (a page with a button; scanners only GET) ─► redeem: the link is used once,
//!      the request is scored, enforcement decides (Action::ResetPassword):
//!        ├ Deny ─────────────► refused (blocked: the attempt is in the review queue)
//!        ├ StepUp ───────────► second factor (mfa.rs, `reset`) ─┐
//!        └ Allow (no factor) ─────────────────────────────────────┴► grant (cookie, 10 min)
//!  /login/reset/password ─► new password (policy, breached check) ─► in one transaction:
//!      password set, containment (every session and token ends), account risk: proven with a
//!      second factor ► none (the self-service way out of `compromised`); without ► at_risk
//!      (until a sign-in the risk engine finds ordinary), audit, notice mail; then back-channel
//!      logout to every application.
//! ```

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::accounts::Actor;
use super::containment::{contain, notify, set_risk, Cause};
use super::enforce::{self, AccountRisk, Action, Facts, Requirement};
use super::notices::{self, Notice, Origin};
use super::{mfa, random_token, FlowError, RequestContext, Services};
use crate::clock::Timestamp;
use crate::net::ip_key;
use crate::store::flows::{self, FlowRow};
use crate::store::mail::{self as links, LinkRow, RequestRow};
use crate::store::users::{self, User};
use crate::store::{self, new_id, token_digest, StoreError};

pub const RESET: &str = "reset";
/// How long a reset link works.
pub const LINK_MINUTES: i64 = 15;
/// How long the browser has to choose the new password once the link (and factor) are proven.
const GRANT_SECS: i64 = 600;
const GRANT: &str = "password_reset";
/// Reset requests per typed name or address per hour: enough for a lost mail, too few to flood
/// an inbox.
pub const PER_ADDRESS_PER_HOUR: i64 = 3;
/// Reset requests per network (IPv4 address, IPv6 /64) per hour.
pub const PER_NETWORK_PER_HOUR: i64 = 20;

/// What asking for a reset link came to. The same for an account that exists and one that does
/// not: nothing here says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// "If an account matches, a link is on its way."
    Accepted,
    Throttled {
        retry_after_secs: i64,
    },
    /// The browser sent no device cookie, so a link could not be bound to it.
    NoDevice,
}

/// Ask for a reset link for `typed` (a username or an e-mail address). Returns before any
/// account is looked up: the lookup, the link and the mail happen in the background, so the
/// answer and its timing are the same whether or not an account matched.
pub async fn request(
    svc: &Services,
    now: Timestamp,
    typed: &str,
    ctx: &RequestContext,
) -> Result<Asked, FlowError> {
    let Some(device) = ctx.device_id.clone() else {
        return Ok(Asked::NoDevice);
    };
    let key: String = typed.trim().to_lowercase().chars().take(256).collect();
    if key.is_empty() || key.contains('\0') {
        return Err(FlowError::Invalid(
            "Enter your username or your e-mail address.".into(),
        ));
    }
    let (by_address, by_network) = count_request(svc, now, RESET, &key, ctx.ip).await?;
    if by_address > PER_ADDRESS_PER_HOUR || by_network > PER_NETWORK_PER_HOUR {
        crate::telemetry::note_reset_request("throttled");
        return Ok(Asked::Throttled {
            retry_after_secs: 3600,
        });
    }
    let (svc2, ip) = (svc.clone(), ctx.ip);
    tokio::spawn(async move {
        if let Err(e) = send_link(&svc2, now, &key, device, ip).await {
            tracing::warn!(error = %e, "a password reset link could not be prepared");
        }
    });
    Ok(Asked::Accepted)
}

/// Count a request that mails a link (a reset, a registration) under what was typed and the
/// client's network, and say how many each had in the last hour, this one included.
pub(super) async fn count_request(
    svc: &Services,
    now: Timestamp,
    kind: &'static str,
    address_key: &str,
    ip: std::net::IpAddr,
) -> Result<(i64, i64), FlowError> {
    let (k, ipk) = (address_key.to_owned(), ip_key(ip));
    let since = now.minus_secs(3600).micros();
    Ok(svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                links::count_request(
                    c,
                    &RequestRow {
                        id: &new_id(),
                        kind,
                        address_key: &k,
                        ip_key: &ipk,
                        created_at: now.micros(),
                    },
                    since,
                )
            })
        })
        .await?)
}

/// The background half of [`request`]: find the account, mail it a link.
async fn send_link(
    svc: &Services,
    now: Timestamp,
    key: &str,
    device: String,
    ip: std::net::IpAddr,
) -> Result<(), FlowError> {
    if !svc.mailer.enabled() {
        return Ok(());
    }
    let token = random_token();
    let link = format!("{}/login/reset?token={token}", svc.settings.issuer.as_str());
    let (k, auditor, mailer) = (key.to_owned(), svc.auditor.clone(), svc.mailer.clone());
    let sent = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let user = match users::find_by_username(c, &k)? {
                    Some(u) => Some(u),
                    None => users::find_by_email(c, &k)?,
                };
                // Disabled accounts, accounts without an address and unfinished registrations
                // (their address is not proven) get nothing.
                let Some(user) = user.filter(|u| {
                    !u.disabled && !u.email.trim().is_empty() && u.registration.is_none()
                }) else {
                    return Ok(false);
                };
                let digest = token_digest(&token);
                links::insert_link(
                    c,
                    &LinkRow {
                        digest: digest.clone(),
                        user_id: user.id.clone(),
                        purpose: RESET.into(),
                        email: user.email.clone(),
                        created_at: now.micros(),
                        expires_at: now.plus_secs(LINK_MINUTES * 60).micros(),
                        used_at: None,
                        device_id: Some(device.clone()),
                        subject: None,
                    },
                )?;
                // A newer link replaces older ones: one live link per account.
                links::expire_links(c, &user.id, RESET, &digest, now.micros())?;
                let name = if user.name.is_empty() {
                    &user.username
                } else {
                    &user.name
                };
                super::mail::queue(
                    c,
                    &mailer,
                    now,
                    &user.email,
                    "reset_password",
                    "Reset your password",
                    &serde_json::json!({
                        "name": name,
                        "username": user.username,
                        "link": link,
                        "minutes": LINK_MINUTES,
                        "ip": ip.to_string(),
                        "when": super::signin_log::when(now.micros()),
                    }),
                )?;
                auditor.record(
                    c,
                    now,
                    Actor::new(user.id.clone())
                        .event("user.password_reset_requested")
                        .target(user.id.clone())
                        .ip(ip),
                )?;
                Ok(true)
            })
        })
        .await?;
    crate::telemetry::note_reset_request(if sent { "sent" } else { "no_account" });
    Ok(())
}

fn unusable() -> FlowError {
    FlowError::Invalid(
        "This link does not work: it expired (links work for 15 minutes), was already used, or was replaced by a newer one. Ask for a new link.".into(),
    )
}

fn other_browser() -> FlowError {
    FlowError::Invalid(
        "Open this link in the browser where you asked for it (links work only there). Or ask for a new link in this browser.".into(),
    )
}

/// Whether `token` is a live reset link for this browser (the page checks before showing the
/// button; nothing is used up).
pub async fn check_link(
    svc: &Services,
    now: Timestamp,
    token: &str,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    live_link(svc, now, token, ctx).await.map(|_| ())
}

async fn live_link(
    svc: &Services,
    now: Timestamp,
    token: &str,
    ctx: &RequestContext,
) -> Result<LinkRow, FlowError> {
    if token.is_empty() || token.len() > 100 || token.contains('\0') {
        return Err(unusable());
    }
    let digest = token_digest(token);
    let link = svc
        .db
        .run(move |c| links::find_link(c, &digest))
        .await?
        .filter(|l| l.purpose == RESET && l.used_at.is_none() && l.expires_at > now.micros())
        .ok_or_else(unusable)?;
    if link.device_id.is_none() || link.device_id != ctx.device_id {
        return Err(other_browser());
    }
    Ok(link)
}

/// What opening a reset link came to.
pub enum Redeemed {
    /// Choose the new password (the grant goes into a cookie).
    Granted(SecretString),
    /// Prove a second factor first (the pending step-up goes into the step-up cookie).
    SecondFactor(SecretString),
    /// Refused; the message says what the person can do.
    Refused(String),
}

/// Use a reset link (once; two concurrent opens: one wins) and ask enforcement what it needs.
pub async fn redeem(
    svc: &Services,
    now: Timestamp,
    token: &str,
    ctx: &RequestContext,
) -> Result<Redeemed, FlowError> {
    let link = live_link(svc, now, token, ctx).await?;
    let (digest, uid, email) = (
        link.digest.clone(),
        link.user_id.clone(),
        link.email.clone(),
    );
    let user = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                if !links::use_link(c, &digest, now.micros())? {
                    return Ok(None);
                }
                Ok(users::find(c, &uid)?.filter(|u| u.email == email))
            })
        })
        .await?
        .ok_or_else(unusable)?;
    let verdict =
        super::risk::evaluate(svc, now, &user.id, ctx, &user.username, None, None).await?;
    let facts = Facts {
        now: now.micros(),
        device_id: ctx.device_id.as_deref(),
        decision: Some((verdict.decision, verdict.assessment.level)),
        ..Facts::default()
    };
    let need = enforce::check(svc, &user, None, &facts, Action::ResetPassword).await?;
    match need {
        Requirement::Allow => Ok(Redeemed::Granted(grant(svc, now, &user, None, ctx).await?)),
        Requirement::StepUp { .. } => {
            let pending = mfa::begin_step_up(
                svc,
                now,
                mfa::StepUpStart {
                    user: &user,
                    amr: Vec::new(),
                    tx: None,
                    previous_digest: None,
                    verdict: Some(verdict),
                    requirement: need,
                    device_id: ctx.device_id.clone(),
                    reset: true,
                },
            )
            .await?;
            Ok(Redeemed::SecondFactor(pending))
        }
        Requirement::Deny(refusal) => {
            let (auditor, ctx2, uid) = (svc.auditor.clone(), ctx.clone(), user.id.clone());
            let blocked = matches!(refusal, enforce::Refusal::Blocked(_));
            svc.db
                .run(move |c| {
                    store::transaction(c, |c| {
                        if blocked {
                            // Into the sign-in log and the review queue, like a blocked sign-in.
                            super::login::log_signin(
                                c,
                                now,
                                Some(&uid),
                                "email_link",
                                "blocked",
                                &ctx2,
                                None,
                                Some(&verdict),
                            )?;
                        }
                        auditor.record(
                            c,
                            now,
                            Actor::new(uid.clone())
                                .event("user.password_reset_refused")
                                .target(uid.clone())
                                .ip(ctx2.ip)
                                .details(serde_json::json!({ "why": refusal.message() })),
                        )
                    })
                })
                .await?;
            Ok(Redeemed::Refused(refusal.message().to_owned()))
        }
        // Not produced for a reset; refuse rather than guess.
        Requirement::Reauthenticate { .. }
        | Requirement::ChangePassword
        | Requirement::EnrolFactor => Ok(Redeemed::Refused(
            "this reset cannot continue; ask your administrator".into(),
        )),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct GrantData {
    device_id: Option<String>,
    /// The second factor proven on the way (`totp`, `webauthn`, `recovery_code`), if any.
    factor: Option<String>,
}

/// The browser may now choose the account's new password (`factor`: the second factor it
/// proved, if the account has one). Returns the cookie token.
pub async fn grant(
    svc: &Services,
    now: Timestamp,
    user: &User,
    factor: Option<&str>,
    ctx: &RequestContext,
) -> Result<SecretString, FlowError> {
    let token = random_token();
    let row = FlowRow {
        id: token_digest(&token),
        purpose: GRANT.into(),
        user_id: Some(user.id.clone()),
        data: serde_json::to_string(&GrantData {
            device_id: ctx.device_id.clone(),
            factor: factor.map(str::to_owned),
        })
        .unwrap_or_default(),
        created_at: now.micros(),
        expires_at: now.plus_secs(GRANT_SECS).micros(),
    };
    svc.db.run(move |c| flows::insert(c, &row)).await?;
    Ok(SecretString::from(token))
}

fn grant_gone() -> FlowError {
    FlowError::Invalid(
        "This password reset expired or was already completed. Ask for a new link.".into(),
    )
}

/// The account a live grant is for (the new-password page shows its name).
pub async fn granted(
    svc: &Services,
    now: Timestamp,
    grant_token: &str,
    ctx: &RequestContext,
) -> Result<User, FlowError> {
    let id = token_digest(grant_token);
    let device = ctx.device_id.clone();
    svc.db
        .run(move |c| {
            let Some(row) = flows::find(c, &id, GRANT, now.micros())? else {
                return Ok(None);
            };
            let data: Option<GrantData> = serde_json::from_str(&row.data).ok();
            if data.is_none_or(|d| d.device_id != device) {
                return Ok(None);
            }
            match row.user_id {
                Some(uid) => Ok(users::find(c, &uid)?.filter(|u| !u.disabled)),
                None => Ok(None),
            }
        })
        .await?
        .ok_or_else(grant_gone)
}

/// Choose the new password: the grant is taken once, and the password, containment, the
/// account's risk, the log, the audit and the notice commit together.
pub async fn complete(
    svc: &Services,
    now: Timestamp,
    grant_token: &str,
    new: SecretString,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let user = granted(svc, now, grant_token, ctx).await?;
    crate::auth::password::check_policy(new.expose_secret(), &user.username)
        .map_err(super::accounts::weak)?;
    super::breached::refuse_breached(svc, new.expose_secret()).await?;
    let hash = svc.hasher.hash(new).await?;
    let id = token_digest(grant_token);
    let (auditor, mailer, issuer, ctx2, uid) = (
        svc.auditor.clone(),
        svc.mailer.clone(),
        svc.settings.issuer.as_str().to_owned(),
        ctx.clone(),
        user.id.clone(),
    );
    let contained = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let Some(row) = flows::take(c, &id, GRANT, now.micros())? else {
                    return Err(StoreError::Conflict("grant gone".into()));
                };
                let factor = serde_json::from_str::<GrantData>(&row.data)
                    .ok()
                    .and_then(|d| d.factor);
                let user = users::find(c, &uid)?.ok_or(StoreError::NotFound)?;
                users::set_password(c, &uid, &hash, false, now.micros())?;
                let actor = Actor::user(uid.clone(), ctx2.ip);
                let contained =
                    contain(c, &auditor, &actor, now, &uid, Cause::PasswordReset, None)?;
                let (to, why) = if factor.is_some() {
                    (AccountRisk::None, "remediated")
                } else {
                    (AccountRisk::AtRisk, "password_reset_without_factor")
                };
                set_risk(c, &auditor, &actor, now, &uid, to, why)?;
                let signin = super::login::log_signin(
                    c,
                    now,
                    Some(&uid),
                    "email_link",
                    "password_reset",
                    &ctx2,
                    None,
                    None,
                )?;
                auditor.record(
                    c,
                    now,
                    actor
                        .event("user.password_reset")
                        .target(uid.clone())
                        .details(serde_json::json!({
                            "second_factor": factor,
                            "sessions_ended": contained.sessions.len(),
                        })),
                )?;
                notices::queue(
                    c,
                    &mailer,
                    &issuer,
                    now,
                    &user,
                    Notice::PasswordReset,
                    Some(&signin),
                    &Origin::of(&ctx2, None),
                )?;
                Ok(contained)
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => grant_gone(),
            e => e.into(),
        })?;
    let _ = notify(svc, now, &contained).await;
    tracing::info!(user.id = %user.id, client.ip = %ctx.ip, "password reset by e-mail");
    Ok(())
}
