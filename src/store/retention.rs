//! Retention of raw client IP addresses: after the configured period they are cleared from every
//! table that keeps them. Only raw addresses go; what was derived from them for a purpose stays
//! (the audit chain's keyed digest, the risk profiles' /24 prefixes, GeoIP country and ASN).
//!
//! It must never touch anything an audit hash covers: `audit_log.ip` is outside the hash (the
//! hash covers `ip_digest`), so clearing it keeps the chain verifiable.

use diesel::prelude::*;

use super::schema::{audit_log, login_failures, mfa_flows, sessions, signins};
use super::{DbConn, StoreResult};

/// What one purge cleared, per table (rows changed or deleted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub audit_log: usize,
    pub signins: usize,
    pub signin_features: usize,
    pub login_failures: usize,
    pub sessions: usize,
    pub mfa_flows: usize,
}

impl Purged {
    pub fn total(&self) -> usize {
        self.audit_log
            + self.signins
            + self.signin_features
            + self.login_failures
            + self.sessions
            + self.mfa_flows
    }
}

/// Clear raw IPs recorded before `cutoff` (unix µs). `now` decides which sessions have ended:
/// a live session keeps its address (the user's account page shows it) until it ends.
pub fn purge_ips(conn: &mut DbConn, cutoff: i64, now: i64) -> StoreResult<Purged> {
    let mut p = Purged {
        audit_log: diesel::update(
            audit_log::table
                .filter(audit_log::at.lt(cutoff))
                .filter(audit_log::ip.is_not_null()),
        )
        .set(audit_log::ip.eq(None::<String>))
        .execute(conn)?,
        signins: diesel::update(
            signins::table
                .filter(signins::at.lt(cutoff))
                .filter(signins::ip.is_not_null()),
        )
        .set(signins::ip.eq(None::<String>))
        .execute(conn)?,
        // The rows exist only to count recent failures by account and IP; old ones count nothing.
        login_failures: diesel::delete(login_failures::table.filter(login_failures::at.lt(cutoff)))
            .execute(conn)?,
        sessions: diesel::update(
            sessions::table
                .filter(sessions::created_at.lt(cutoff))
                .filter(sessions::ip.is_not_null())
                .filter(
                    sessions::revoked_at
                        .is_not_null()
                        .or(sessions::expires_at.le(now))
                        .or(sessions::idle_expires_at.le(now)),
                ),
        )
        .set(sessions::ip.eq(None::<String>))
        .execute(conn)?,
        // A pending step-up carries the request's features (with its IP) until it expires.
        mfa_flows: diesel::delete(mfa_flows::table.filter(mfa_flows::expires_at.lt(cutoff)))
            .execute(conn)?,
        signin_features: 0,
    };
    p.signin_features = scrub_signin_features(conn, cutoff)?;
    Ok(p)
}

/// The risk features stored with each sign-in carry the address too (`"ip":"…"`): null it.
/// Paged by id so a row whose JSON cannot be parsed is skipped once, not looped on.
fn scrub_signin_features(conn: &mut DbConn, cutoff: i64) -> StoreResult<usize> {
    let mut after = String::new();
    let mut changed = 0;
    loop {
        let page: Vec<(String, Option<String>)> = signins::table
            .filter(signins::at.lt(cutoff))
            .filter(signins::id.gt(&after))
            .filter(signins::features.like("%\"ip\":\"%"))
            .order(signins::id.asc())
            .limit(500)
            .select((signins::id, signins::features))
            .load(conn)?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        for (id, features) in page {
            let Some(text) = features else { continue };
            let Ok(mut json) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let Some(obj) = json.as_object_mut() else {
                continue;
            };
            if obj.get("ip").is_some_and(|v| !v.is_null()) {
                obj.insert("ip".into(), serde_json::Value::Null);
                changed += diesel::update(signins::table.find(&id))
                    .set(signins::features.eq(json.to_string()))
                    .execute(conn)?;
            }
        }
    }
    Ok(changed)
}
