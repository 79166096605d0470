//! SSO sessions: created at a verified sign-in, recognised on later visits, ended on sign-out.
//!
//! ```text
//!  sign-in ──> new token (never the old one: no fixation) ──> live
//!  live ──(visit within idle window)──> live, idle window slides
//!  live ──(idle timeout | absolute timeout | sign-out | revoke)──> ended
//! ```

use secrecy::{ExposeSecret, SecretString};

use super::{random_token, FlowError, RequestContext, Services};
use crate::audit::AuditEvent;
use crate::clock::Timestamp;
use crate::config::SessionSettings;
use crate::store::sessions::{self, Session};
use crate::store::users::{self, User};
use crate::store::{new_id, token_digest, DbConn, StoreResult};

/// The assurance a session carries (OIDC `acr`).
pub const ACR_PASSWORD: &str = "urn:vigil:acr:pwd";

/// A session just created: the token goes into the cookie, once.
pub struct Established {
    pub token: SecretString,
    pub session: Session,
    /// The code for the authorization request the sign-in was made for, when the sign-in's
    /// transaction could mint it (`flow::authorize::mint_in_sign_in`).
    pub code: Option<crate::oidc::authorize::Redirect>,
}

/// Create a session row for `user_id` (inside the caller's transaction).
pub fn create(
    conn: &mut DbConn,
    cfg: &SessionSettings,
    user_id: &str,
    now: Timestamp,
    acr: &str,
    amr: &[&str],
    ctx: &RequestContext,
) -> StoreResult<Established> {
    let token = random_token();
    let session = Session {
        id: new_id(),
        token_hash: token_digest(&token),
        user_id: user_id.to_owned(),
        created_at: now.micros(),
        last_seen_at: now.micros(),
        idle_expires_at: now.plus_secs(cfg.idle_secs.min(cfg.absolute_secs)).micros(),
        expires_at: now.plus_secs(cfg.absolute_secs).micros(),
        auth_time: now.micros(),
        acr: acr.to_owned(),
        amr: serde_json::to_string(amr).unwrap_or_else(|_| "[]".into()),
        device_id: ctx.device_id.clone(),
        ip: Some(ctx.ip.to_string()),
        user_agent: ctx
            .user_agent
            .as_ref()
            .map(|ua| ua.chars().take(512).collect()),
        revoked_at: None,
        risk: None,
    };
    sessions::insert(conn, &session)?;
    // The account's last verified sign-in (dormant accounts are a query on it).
    crate::store::usage::signed_in(conn, user_id, now.micros())?;
    Ok(Established {
        token: SecretString::from(token),
        session,
        code: None,
    })
}

/// The live session behind a cookie value and its (enabled) user; slides the idle window.
///
/// A session belongs to the browser that created it (its device cookie). The same session
/// cookie from another browser is a stolen cookie: the session is ended at once (audited) and
/// the request is treated as signed out, so a replay from another device gets nothing.
pub async fn resolve(
    svc: &Services,
    token: &str,
    now: Timestamp,
    ctx: &RequestContext,
) -> Result<Option<(Session, User)>, FlowError> {
    let digest = token_digest(token);
    let cfg = svc.settings.session;
    let (auditor, ctx) = (svc.auditor.clone(), ctx.clone());
    Ok(svc
        .db
        .run(move |c| {
            let Some(s) = sessions::find_live(c, &digest, now.micros())? else {
                return Ok(None);
            };
            let Some(u) = users::find(c, &s.user_id)? else {
                return Ok(None);
            };
            if u.disabled {
                return Ok(None);
            }
            if s.device_id != ctx.device_id {
                crate::store::transaction(c, |c| {
                    sessions::revoke(c, &s.id, now.micros())?;
                    auditor.record(
                        c,
                        now,
                        AuditEvent::new("session.wrong_device")
                            .actor(s.user_id.clone())
                            .target(s.id.clone())
                            .ip(ctx.ip),
                    )
                })?;
                tracing::warn!(user.id = %s.user_id, client.ip = %ctx.ip, "session cookie used from another device; session ended");
                return Ok(None);
            }
            // Touch at most once a minute: a page view should not always be a write.
            if now.micros() - s.last_seen_at > 60_000_000 {
                let idle = now.plus_secs(cfg.idle_secs).micros().min(s.expires_at);
                sessions::touch(c, &s.id, now.micros(), idle)?;
            }
            Ok(Some((s, u)))
        })
        .await?)
}

/// End the session behind `token` (sign-out). Unknown or dead tokens are fine: nothing to do.
/// Returns the session that ended, so the caller can notify its relying parties.
pub async fn end(
    svc: &Services,
    token: SecretString,
    now: Timestamp,
    ctx: RequestContext,
) -> Result<Option<Session>, FlowError> {
    let digest = token_digest(token.expose_secret());
    let auditor = svc.auditor.clone();
    let ended = svc
        .db
        .run(move |c| {
            crate::store::transaction(c, |c| {
                let found = sessions::find_live(c, &digest, now.micros())?;
                if let Some(s) = &found {
                    sessions::revoke(c, &s.id, now.micros())?;
                    auditor.record(
                        c,
                        now,
                        AuditEvent::new("session.ended")
                            .actor(s.user_id.clone())
                            .target(s.id.clone())
                            .ip(ctx.ip),
                    )?;
                }
                Ok(found)
            })
        })
        .await?;
    Ok(ended)
}
