//! Self-registration (`VIGIL_REGISTRATION=off|invite|open`, default off).
//!
//! ```text
//!  invite: an admin mails an invitation (single use, 7 days, names the address) ─┐
//!  open:   anyone ───────────────────────────────────────────────────────────────┤
//!                                                                                v
//!  /register ─► counted per network (10/h, then 429); password policy and breached check
//!     ├ invited ──────────────────────────────► usable at once (the invitation proved the address)
//!     ├ a burst from one network (> 3/h) or a deny-listed address ─► `held` (+ verification mail)
//!     └ otherwise ────────────────────────────► `unverified` (+ verification mail)
//!  verification link ─► `unverified` becomes usable; an admin approves `held` (console)
//! ```
//! Enforcement refuses every path to an account in either state (`Refusal::Unverified`,
//! `Refusal::HeldForReview`), so a registration grants nothing until it is complete.

use secrecy::{ExposeSecret, SecretString};

use super::accounts::Actor;
use super::{random_token, FlowError, RequestContext, Services};
use crate::clock::Timestamp;
use crate::config::Registration as Mode;
use crate::domain::{Email, Username};
use crate::store::mail::{self as links, LinkRow};
use crate::store::users::{self, NewUser};
use crate::store::{self, new_id, token_digest, StoreError};

pub const INVITE: &str = "invite";
/// How long an invitation works.
pub const INVITE_DAYS: i64 = 7;
/// Registrations per network per hour before the page refuses (429).
pub const PER_NETWORK_PER_HOUR: i64 = 10;
/// Registrations per network per hour beyond which they are held for an administrator.
pub const BURST: i64 = 3;

/// What the registration form carries.
pub struct Registration {
    pub username: String,
    pub email: String,
    pub name: String,
    pub password: SecretString,
    pub invite: Option<String>,
}

/// What became of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Usable now (an invitation proved the address).
    Ready,
    /// Confirm the address through the mailed link first.
    VerifyEmail,
    /// Waiting for an administrator (and the address still to confirm).
    Held,
}

fn closed() -> FlowError {
    FlowError::Invalid(
        "This server does not take registrations; ask your administrator for an account.".into(),
    )
}

fn bad_invitation() -> FlowError {
    FlowError::Invalid(
        "This invitation does not work: it expired (invitations work for 7 days), was already used, or was copied incompletely. Ask for a new one.".into(),
    )
}

/// Whether the registration page is open at all (and whether it needs an invitation).
pub fn mode(svc: &Services) -> Mode {
    if svc.mailer.enabled() {
        svc.settings.registration
    } else {
        // Without e-mail no address can be confirmed and no invitation sent.
        Mode::Off
    }
}

/// The address a live invitation names (the page fills it in).
pub async fn invitation(svc: &Services, now: Timestamp, token: &str) -> Result<String, FlowError> {
    if token.is_empty() || token.len() > 100 {
        return Err(bad_invitation());
    }
    let digest = token_digest(token);
    svc.db
        .run(move |c| links::find_link(c, &digest))
        .await?
        .filter(|l| l.purpose == INVITE && l.used_at.is_none() && l.expires_at > now.micros())
        .map(|l| l.email)
        .ok_or_else(bad_invitation)
}

/// An administrator invites `email` to register (mode `invite` or `open`).
pub async fn invite(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    email: &str,
) -> Result<(), FlowError> {
    if mode(svc) == Mode::Off {
        return Err(FlowError::Invalid(
            "Registration is off (VIGIL_REGISTRATION), or this server sends no e-mail; nobody can be invited.".into(),
        ));
    }
    let email = Email::parse(email).map_err(FlowError::Invalid)?;
    if email.as_str().is_empty() {
        return Err(FlowError::Invalid("Type the address to invite.".into()));
    }
    let token = random_token();
    let link = format!("{}/register?invite={token}", svc.settings.issuer.as_str());
    let (auditor, mailer, actor) = (svc.auditor.clone(), svc.mailer.clone(), actor.clone());
    let to = email.as_str().to_owned();
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                links::insert_link(
                    c,
                    &LinkRow {
                        digest: token_digest(&token),
                        // The inviting administrator (the link names no account yet).
                        user_id: actor.id.clone(),
                        purpose: INVITE.into(),
                        email: to.clone(),
                        created_at: now.micros(),
                        expires_at: now.plus_secs(INVITE_DAYS * 86_400).micros(),
                        used_at: None,
                        device_id: None,
                        subject: None,
                    },
                )?;
                super::mail::queue(
                    c,
                    &mailer,
                    now,
                    &to,
                    "invite",
                    "You are invited to create an account",
                    &serde_json::json!({ "link": link, "days": INVITE_DAYS }),
                )?;
                auditor.record(
                    c,
                    now,
                    actor
                        .event("user.invited")
                        .details(serde_json::json!({ "email": to })),
                )
            })
        })
        .await?;
    Ok(())
}

/// Register an account.
pub async fn register(
    svc: &Services,
    now: Timestamp,
    r: Registration,
    ctx: &RequestContext,
) -> Result<Registered, FlowError> {
    let mode = mode(svc);
    let invite = r.invite.filter(|t| !t.trim().is_empty());
    match (mode, &invite) {
        (Mode::Off, _) | (Mode::Invite, None) => return Err(closed()),
        _ => {}
    }
    let username = Username::parse(&r.username).map_err(FlowError::Invalid)?;
    let invited_email = match &invite {
        Some(t) => Some(invitation(svc, now, t).await?),
        None => None,
    };
    let email = match &invited_email {
        Some(e) => Email::parse(e),
        None => Email::parse(&r.email),
    }
    .map_err(FlowError::Invalid)?;
    if email.as_str().is_empty() {
        return Err(FlowError::Invalid("An e-mail address is needed.".into()));
    }
    // Counted before anything costly: a network that registers in bulk pays nothing but this.
    let key = email.as_str().to_lowercase();
    let (_, by_network) =
        super::recovery::count_request(svc, now, "register", &key, ctx.ip).await?;
    if by_network > PER_NETWORK_PER_HOUR {
        return Err(crate::auth::AuthError::Throttled {
            retry_after_secs: 3600,
        }
        .into());
    }
    crate::auth::password::check_policy(r.password.expose_secret(), username.as_str())
        .map_err(super::accounts::weak)?;
    super::breached::refuse_breached(svc, r.password.expose_secret()).await?;
    let hash = svc.hasher.hash(r.password).await?;
    let held = by_network > BURST || svc.risk.deny_listed(ctx.ip);
    let state = match (&invite, held) {
        (Some(_), _) => None,
        (None, true) => Some("held"),
        (None, false) => Some("unverified"),
    };
    let id = new_id();
    let (auditor, uid, ip) = (svc.auditor.clone(), id.clone(), ctx.ip);
    let name: String = r.name.trim().chars().take(200).collect();
    let invite_digest = invite.as_deref().map(token_digest);
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                if let Some(d) = &invite_digest {
                    if !links::use_link(c, d, now.micros())? {
                        return Err(StoreError::Conflict("invitation used".into()));
                    }
                }
                users::insert(
                    c,
                    &NewUser {
                        id: &uid,
                        username: username.as_str(),
                        email: email.as_str(),
                        name: &name,
                        password_hash: &hash,
                        disabled: false,
                        created_at: now.micros(),
                        updated_at: now.micros(),
                        must_change_password: false,
                    },
                )?;
                users::set_registration(c, &uid, state, None, now.micros())?;
                if invite_digest.is_some() {
                    users::verify_email(c, &uid, email.as_str(), now.micros())?;
                }
                auditor.record(
                    c,
                    now,
                    Actor::new(uid.clone())
                        .event("user.registered")
                        .target(uid.clone())
                        .ip(ip)
                        .details(serde_json::json!({
                            "username": username.as_str(),
                            "invited": invite_digest.is_some(),
                            "state": state.unwrap_or("ready"),
                        })),
                )
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) if m == "invitation used" => bad_invitation(),
            // A taken username: said plainly, as every registration page must.
            StoreError::Conflict(_) => {
                FlowError::Invalid("That username is taken; choose another.".into())
            }
            e => e.into(),
        })?;
    if state.is_none() {
        return Ok(Registered::Ready);
    }
    super::email::request_verification(svc, &Actor::new(id.clone()), &id, now).await?;
    Ok(if held {
        Registered::Held
    } else {
        Registered::VerifyEmail
    })
}

/// An administrator approves a held registration. The account is usable once its address is
/// confirmed too.
pub async fn approve(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
) -> Result<(), FlowError> {
    let (auditor, actor, uid) = (svc.auditor.clone(), actor.clone(), user_id.to_owned());
    let done = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let Some(user) = users::find(c, &uid)? else {
                    return Ok(false);
                };
                let next = if user.email_verified {
                    None
                } else {
                    Some("unverified")
                };
                if !users::set_registration(c, &uid, next, Some("held"), now.micros())? {
                    return Ok(false);
                }
                auditor.record(
                    c,
                    now,
                    actor
                        .event("user.registration_approved")
                        .target(uid.clone()),
                )?;
                Ok(true)
            })
        })
        .await?;
    if done {
        Ok(())
    } else {
        Err(FlowError::Invalid(
            "This account has no registration waiting for approval.".into(),
        ))
    }
}

/// Registrations waiting for an administrator.
pub async fn held(svc: &Services) -> Result<Vec<users::User>, FlowError> {
    Ok(svc.db.run(users::held_registrations).await?)
}
