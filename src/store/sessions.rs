//! SSO sessions. The browser holds a random token; the table holds its SHA-256 digest, so a
//! database leak does not leak live sessions.
//!
//! ```text
//!  created --(request within idle window)--> last_seen moves, idle window slides
//!     |                                            |
//!     +--(idle or absolute expiry / sign-out / admin revoke)--> dead (revoked_at set)
//! ```

use diesel::prelude::*;

use super::schema::sessions;
use super::{DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_expires_at: i64,
    pub expires_at: i64,
    pub auth_time: i64,
    pub acr: String,
    pub amr: String,
    pub device_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub revoked_at: Option<i64>,
    /// The risk assessment (token claim JSON) of the sign-in that created the session.
    pub risk: Option<String>,
}

pub fn insert(conn: &mut DbConn, s: &Session) -> StoreResult<()> {
    diesel::insert_into(sessions::table)
        .values(s)
        .execute(conn)?;
    Ok(())
}

/// The live session whose token has this digest, if any.
pub fn find_live(conn: &mut DbConn, token_hash: &str, now: i64) -> StoreResult<Option<Session>> {
    Ok(sessions::table
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::idle_expires_at.gt(now))
        .select(Session::as_select())
        .first(conn)
        .optional()?)
}

/// Slide the idle window (never past the absolute expiry).
pub fn touch(conn: &mut DbConn, id: &str, now: i64, idle_expires_at: i64) -> StoreResult<()> {
    diesel::update(sessions::table.find(id))
        .set((
            sessions::last_seen_at.eq(now),
            sessions::idle_expires_at.eq(idle_expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn revoke(conn: &mut DbConn, id: &str, now: i64) -> StoreResult<bool> {
    let n = diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// End every session of a user except `keep`, returning the sessions it ended (containment
/// tells their applications).
pub fn revoke_all_returning(
    conn: &mut DbConn,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
) -> StoreResult<Vec<Session>> {
    let live: Vec<Session> = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .select(Session::as_select())
        .load(conn)?;
    let mut ended = Vec::new();
    for s in live {
        if Some(s.id.as_str()) == keep {
            continue;
        }
        if revoke(conn, &s.id, now)? {
            ended.push(s);
        }
    }
    Ok(ended)
}

/// Whether the session was ended on purpose (sign-out, containment) — not merely expired — or
/// no longer exists.
pub fn is_revoked(conn: &mut DbConn, id: &str) -> StoreResult<bool> {
    // A session that no longer exists (purged, or its user deleted) is over: fail closed.
    Ok(sessions::table
        .find(id)
        .select(sessions::revoked_at)
        .first::<Option<i64>>(conn)
        .optional()?
        .is_none_or(|r| r.is_some()))
}

/// End every live session of a user (password reset, admin action, "this wasn't me").
pub fn revoke_all_for_user(conn: &mut DbConn, user_id: &str, now: i64) -> StoreResult<usize> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)?)
}

pub fn list_live_for_user(conn: &mut DbConn, user_id: &str, now: i64) -> StoreResult<Vec<Session>> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::idle_expires_at.gt(now))
        .order(sessions::last_seen_at.desc())
        .select(Session::as_select())
        .load(conn)?)
}

/// Attach the risk claim of the sign-in that created the session.
pub fn set_risk(conn: &mut DbConn, id: &str, risk: &str) -> StoreResult<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::risk.eq(risk))
        .execute(conn)?;
    Ok(())
}

/// End every session of the user except `keep` (after changing one's own password).
pub fn revoke_others_for_user(
    conn: &mut DbConn,
    user_id: &str,
    keep: &str,
    now: i64,
) -> StoreResult<usize> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::id.ne(keep))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)?)
}
