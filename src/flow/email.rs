//! E-mail verification: a link mailed to the account's address, single-use, valid
//! [`LINK_HOURS`], stored only as a digest. Opening it (a page with a button: mail scanners
//! that fetch links must not use them up) sets `email_verified`, which the `email` scope then
//! reports. A link verifies only the address it was sent to: if the address changed since,
//! it verifies nothing (and a changed address is unverified again, `store::directory`).

use super::accounts::Actor;
use super::{random_token, FlowError, Services};
use crate::clock::Timestamp;
use crate::store::mail::{self as links, LinkRow};
use crate::store::{self, token_digest, users, StoreError};

pub const VERIFY: &str = "verify";
/// How long a verification link works.
pub const LINK_HOURS: i64 = 24;
/// Verification mails per account per hour: enough for a lost message, too few to flood an
/// inbox from a stolen session.
const PER_HOUR: i64 = 3;

/// What asking for a verification link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Sent,
    AlreadyVerified,
    /// `VIGIL_SMTP_URL` is not set.
    MailOff,
}

/// Mail a verification link to the account's address (the signed-in user asked).
pub async fn request_verification(
    svc: &Services,
    actor: &Actor,
    user_id: &str,
    now: Timestamp,
) -> Result<Requested, FlowError> {
    if !svc.mailer.enabled() {
        return Ok(Requested::MailOff);
    }
    let token = random_token();
    let link = format!(
        "{}/email/verify?token={token}",
        svc.settings.issuer.as_str()
    );
    let (uid, auditor, actor, mailer) = (
        user_id.to_owned(),
        svc.auditor.clone(),
        actor.clone(),
        svc.mailer.clone(),
    );
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let user = users::find(c, &uid)?.ok_or(StoreError::NotFound)?;
                if user.email_verified {
                    return Ok(Requested::AlreadyVerified);
                }
                let hour_ago = now.minus_secs(3600).micros();
                if links::links_since(c, &uid, VERIFY, hour_ago)? >= PER_HOUR {
                    return Err(StoreError::Conflict(
                        "Verification links were sent several times in the last hour; check your inbox (and spam folder), or try again later.".into(),
                    ));
                }
                links::insert_link(
                    c,
                    &LinkRow {
                        digest: token_digest(&token),
                        user_id: uid.clone(),
                        purpose: VERIFY.into(),
                        email: user.email.clone(),
                        created_at: now.micros(),
                        expires_at: now.plus_secs(LINK_HOURS * 3600).micros(),
                        used_at: None,
                        device_id: None,
                        subject: None,
                    },
                )?;
                let name = if user.name.is_empty() { &user.username } else { &user.name };
                super::mail::queue(
                    c,
                    &mailer,
                    now,
                    &user.email,
                    "verify_email",
                    "Confirm your e-mail address",
                    &serde_json::json!({ "name": name, "link": link, "hours": LINK_HOURS }),
                )?;
                auditor.record(
                    c,
                    now,
                    actor
                        .event("email.verification_sent")
                        .target(uid.clone())
                        .details(serde_json::json!({ "email": user.email })),
                )?;
                Ok(Requested::Sent)
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => FlowError::Invalid(m),
            e => e.into(),
        })
}

/// Open a verification link: the address it was sent to is verified. Returns that address.
pub async fn verify(svc: &Services, token: &str, now: Timestamp) -> Result<String, FlowError> {
    let invalid = || {
        FlowError::Invalid(
            "This link does not work: it expired, was already used, or was copied incompletely. Ask for a new one on your account page.".into(),
        )
    };
    if token.is_empty() || token.len() > 100 {
        return Err(invalid());
    }
    let digest = token_digest(token);
    let auditor = svc.auditor.clone();
    let verified = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let Some(link) = links::find_link(c, &digest)? else {
                    return Ok(None);
                };
                if link.purpose != VERIFY || !links::use_link(c, &digest, now.micros())? {
                    return Ok(None);
                }
                if !users::verify_email(c, &link.user_id, &link.email, now.micros())? {
                    return Ok(Some(Err(link.email)));
                }
                // A self-registered account waiting only for this becomes usable.
                users::set_registration(c, &link.user_id, None, Some("unverified"), now.micros())?;
                auditor.record(
                    c,
                    now,
                    Actor::new(link.user_id.clone())
                        .event("email.verified")
                        .target(link.user_id.clone())
                        .details(serde_json::json!({ "email": link.email })),
                )?;
                Ok(Some(Ok(link.email)))
            })
        })
        .await?;
    match verified {
        Some(Ok(email)) => Ok(email),
        Some(Err(_)) => Err(FlowError::Invalid(
            "This link was sent to an address the account no longer has; nothing was changed."
                .into(),
        )),
        None => Err(invalid()),
    }
}
