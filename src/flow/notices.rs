//! Notices: the account's owner hears by e-mail of what could mean someone else has it — a
//! sign-in from a new device or country, a factor added, the password changed or reset, the
//! account locked — with the time, a coarse place and the device, and a one-click "this wasn't
//! me" link that needs no sign-in.
//!
//! ```text
//!  event (in its transaction) ─► report link (digest, single use, 7 days, names the sign-in)
//!                             └► mail "notice" queued (outbox) ─► sent in the background
//!  link ─► page with a button ─► POST /report ─► the link is used once ─► review::report
//!          (mail scanners GET)                     (containment, review queue, compromised)
//! ```
//! The link is a 256-bit random token stored only as its SHA-256 digest: it cannot be forged,
//! only delivered, and it reports exactly the sign-in it names.

use super::risk::Verdict;
use super::{random_token, FlowError, RequestContext, Services};
use crate::clock::Timestamp;
use crate::mail::Mailer;
use crate::store::mail::{self as links, LinkRow};
use crate::store::users::User;
use crate::store::{self, signins, token_digest, DbConn, StoreResult};

pub const REPORT: &str = "report";
/// How long a "this wasn't me" link works.
pub const REPORT_DAYS: i64 = 7;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A sign-in from a device or a country the account had not used.
    NewSignIn,
    /// A second factor was added (`totp` or `passkey`).
    FactorAdded(&'static str),
    PasswordChanged,
    PasswordReset,
    /// An administrator disabled the account.
    Locked,
}

impl Notice {
    fn kind(self) -> &'static str {
        match self {
            Notice::NewSignIn => "new_sign_in",
            Notice::FactorAdded(_) => "factor_added",
            Notice::PasswordChanged => "password_changed",
            Notice::PasswordReset => "password_reset",
            Notice::Locked => "locked",
        }
    }
    fn subject(self) -> &'static str {
        match self {
            Notice::NewSignIn => "New sign-in to your account",
            Notice::FactorAdded(_) => "A sign-in method was added to your account",
            Notice::PasswordChanged => "Your password was changed",
            Notice::PasswordReset => "Your password was reset",
            Notice::Locked => "Your account was locked",
        }
    }
}

/// Where an event came from, as the notice tells it: coarse (country and city from GeoIP, the
/// browser and system family), never more than the sign-in log holds.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: String,
    pub place: String,
    pub device: String,
}

impl Origin {
    pub fn of(ctx: &RequestContext, verdict: Option<&Verdict>) -> Self {
        let (place, device) = match verdict {
            Some(v) => {
                let g = &v.features.geo;
                let place = match (&g.city, &g.country) {
                    (Some(city), Some(cc)) => format!("{city}, {cc}"),
                    (None, Some(cc)) => cc.clone(),
                    _ => "unknown location".to_owned(),
                };
                let ua = &v.features.ua;
                (place, format!("{} on {}", ua.browser_family, ua.os_family))
            }
            None => (
                "unknown location".to_owned(),
                ctx.user_agent
                    .as_deref()
                    .map(|u| u.chars().take(80).collect())
                    .unwrap_or_else(|| "unknown device".to_owned()),
            ),
        };
        Origin {
            ip: ctx.ip.to_string(),
            place,
            device,
        }
    }
}

/// Queue `notice` for the account's owner in the caller's transaction. With `signin_id` the
/// mail carries a one-click report of that sign-in. Nothing happens with e-mail off or no
/// address on the account.
#[allow(clippy::too_many_arguments)] // a notice names who, what, when, where and what to report
pub fn queue(
    conn: &mut DbConn,
    mailer: &Mailer,
    issuer: &str,
    now: Timestamp,
    user: &User,
    notice: Notice,
    signin_id: Option<&str>,
    origin: &Origin,
) -> StoreResult<()> {
    if !mailer.enabled() || user.email.trim().is_empty() {
        return Ok(());
    }
    let report = match signin_id {
        Some(sid) => {
            let token = random_token();
            links::insert_link(
                conn,
                &LinkRow {
                    digest: token_digest(&token),
                    user_id: user.id.clone(),
                    purpose: REPORT.into(),
                    email: user.email.clone(),
                    created_at: now.micros(),
                    expires_at: now.plus_secs(REPORT_DAYS * 86_400).micros(),
                    used_at: None,
                    device_id: None,
                    subject: Some(sid.to_owned()),
                },
            )?;
            Some(format!("{issuer}/report?token={token}"))
        }
        None => None,
    };
    let name = if user.name.is_empty() {
        &user.username
    } else {
        &user.name
    };
    let factor = match notice {
        Notice::FactorAdded("passkey") => "a passkey",
        Notice::FactorAdded(_) => "an authenticator app",
        _ => "",
    };
    super::mail::queue(
        conn,
        mailer,
        now,
        &user.email,
        "notice",
        notice.subject(),
        &serde_json::json!({
            "kind": notice.kind(),
            "name": name,
            "username": user.username,
            "factor": factor,
            "when": super::signin_log::when(now.micros()),
            "ip": origin.ip,
            "place": origin.place,
            "device": origin.device,
            "report": report,
            "days": REPORT_DAYS,
            "account": format!("{issuer}/account"),
        }),
    )
}

impl Origin {
    /// Where a logged sign-in came from (its features, as scored).
    fn of_row(row: &signins::SigninRow) -> Self {
        let features: Option<crate::risk::SignInFeatures> = row
            .features
            .as_deref()
            .and_then(|f| serde_json::from_str(f).ok());
        let place = features
            .as_ref()
            .and_then(|f| match (&f.geo.city, &f.geo.country) {
                (Some(city), Some(cc)) => Some(format!("{city}, {cc}")),
                (None, Some(cc)) => Some(cc.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "unknown location".to_owned());
        let device = match &features {
            Some(f) => format!("{} on {}", f.ua.browser_family, f.ua.os_family),
            None => row
                .user_agent
                .as_deref()
                .map(|u| u.chars().take(80).collect())
                .unwrap_or_else(|| "unknown device".to_owned()),
        };
        Origin {
            ip: row.ip.clone().unwrap_or_default(),
            place,
            device,
        }
    }
}

/// Tell the owner of `user_id` of a change made from a signed-in session (a factor added, the
/// password changed) or by an admin (locked). The report link names the account's latest
/// sign-in: a factor or password change needs one no older than five minutes, so that is the
/// sign-in that made it. A mail that cannot be queued is logged, never the caller's failure:
/// the change it reports has already committed.
pub async fn send(svc: &Services, now: Timestamp, user_id: &str, notice: Notice) {
    if !svc.mailer.enabled() {
        return;
    }
    let (mailer, issuer, uid) = (
        svc.mailer.clone(),
        svc.settings.issuer.as_str().to_owned(),
        user_id.to_owned(),
    );
    let queued = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let Some(user) = crate::store::users::find(c, &uid)? else {
                    return Ok(());
                };
                let latest = signins::latest_success(c, &uid)?;
                let (sid, origin) = match (&latest, notice) {
                    (_, Notice::Locked) | (None, _) => (None, Origin::default()),
                    (Some(row), _) => (Some(row.id.as_str()), Origin::of_row(row)),
                };
                queue(c, &mailer, &issuer, now, &user, notice, sid, &origin)
            })
        })
        .await;
    if let Err(e) = queued {
        tracing::warn!(error = %e, kind = notice.kind(), "a notice could not be queued");
    }
}

/// What a report link names, for its page: when and from where.
#[derive(Debug, Clone)]
pub struct Reportable {
    pub at: i64,
    pub ip: Option<String>,
}

fn unusable() -> FlowError {
    FlowError::Invalid(
        "This link does not work: it expired, was already used, or was copied incompletely. If someone else is using your account, sign in and choose \u{201c}This wasn't me\u{201d} on your account page, or ask your administrator.".into(),
    )
}

/// The sign-in a live report link names (the page shows it before the button is pressed).
pub async fn reportable(
    svc: &Services,
    now: Timestamp,
    token: &str,
) -> Result<Reportable, FlowError> {
    if token.is_empty() || token.len() > 100 {
        return Err(unusable());
    }
    let digest = token_digest(token);
    let found = svc
        .db
        .run(move |c| {
            let Some(link) = links::find_link(c, &digest)? else {
                return Ok(None);
            };
            if link.purpose != REPORT || link.used_at.is_some() || link.expires_at <= now.micros() {
                return Ok(None);
            }
            let Some(sid) = link.subject else {
                return Ok(None);
            };
            Ok(signins::find(c, &sid)?.map(|r| Reportable { at: r.at, ip: r.ip }))
        })
        .await?;
    found.ok_or_else(unusable)
}

/// Press the button: the link is used once and the sign-in it names is reported, exactly as
/// "this wasn't me" on the account page (`review::report`): every session ends, every token
/// is revoked, applications are told, the account is compromised until its owner proves a
/// second factor and chooses a new password.
pub async fn report(
    svc: &Services,
    now: Timestamp,
    token: &str,
    ip: std::net::IpAddr,
) -> Result<super::review::Reported, FlowError> {
    if token.is_empty() || token.len() > 100 {
        return Err(unusable());
    }
    let digest = token_digest(token);
    let taken = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let Some(link) = links::find_link(c, &digest)? else {
                    return Ok(None);
                };
                if link.purpose != REPORT || !links::use_link(c, &digest, now.micros())? {
                    return Ok(None);
                }
                Ok(link.subject.map(|s| (link.user_id, s)))
            })
        })
        .await?;
    let (user_id, signin_id) = taken.ok_or_else(unusable)?;
    super::review::report(svc, now, &user_id, &signin_id, ip).await
}
