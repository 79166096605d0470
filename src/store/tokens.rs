//! Issued tokens: the access-token issuance log, revocations of access tokens and grants, and
//! refresh tokens.
//!
//! Refresh tokens form families (all descendants of one code):
//! ```text
//!  issued ──use──> used (rotated; a child is issued) ──use again──> REUSE: family revoked
//!     └──revoke / expiry──> dead
//! ```

use diesel::prelude::*;

use super::revocations::{self, Kind};
use super::schema::{access_tokens, auth_codes, refresh_tokens};
use super::{DbConn, StoreResult};

/// One line of the access-token issuance log: who got which token, when, by which grant. Not
/// consulted when a token is checked (the token is self-contained; revocations live in
/// `revocations`), so it is written in batches, off the request path.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = access_tokens)]
pub struct AccessTokenRow {
    pub jti: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub code_id: Option<String>,
    /// The grant the token belongs to (`grant_id` in the token), if any.
    pub family_id: Option<String>,
    pub expires_at: i64,
    pub issued_at: i64,
    /// `authorization_code`, `refresh_token` or `client_credentials`.
    pub grant_type: String,
}

/// Append a batch of issuance-log lines in one statement.
pub fn insert_access_batch(conn: &mut DbConn, rows: &[AccessTokenRow]) -> StoreResult<()> {
    // One multi-row statement per backend (the multi-backend connection has no batch insert),
    // in one transaction. Both backends cap bind parameters (SQLite 32,766); 8 per row, so 1,000
    // rows per statement.
    match conn {
        DbConn::Postgres(c) => c.transaction(|c| {
            for chunk in rows.chunks(1_000) {
                diesel::insert_into(access_tokens::table)
                    .values(chunk)
                    .execute(c)?;
            }
            Ok(())
        }),
        DbConn::Sqlite(c) => c.transaction(|c| {
            for chunk in rows.chunks(1_000) {
                diesel::insert_into(access_tokens::table)
                    .values(chunk)
                    .execute(c)?;
            }
            Ok(())
        }),
    }
}

/// The issuance-log line of one token (auditors, tests).
pub fn find_access(conn: &mut DbConn, jti: &str) -> StoreResult<Option<AccessTokenRow>> {
    Ok(access_tokens::table
        .find(jti)
        .select(AccessTokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// Revoke one access token by `jti` until it would have expired anyway.
pub fn revoke_access(conn: &mut DbConn, jti: &str, now: i64, expires_at: i64) -> StoreResult<()> {
    revocations::insert(conn, Kind::Jti, jti, now, expires_at)
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: String,
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub code_id: Option<String>,
    pub scope: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: String,
    pub risk: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub family_expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub fn insert_refresh(conn: &mut DbConn, t: &RefreshTokenRow) -> StoreResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(t)
        .execute(conn)?;
    Ok(())
}

pub fn find_refresh(conn: &mut DbConn, token_hash: &str) -> StoreResult<Option<RefreshTokenRow>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// Rotate: true only for the one caller that marks the token used.
pub fn mark_refresh_used(conn: &mut DbConn, id: &str, now: i64) -> StoreResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn find_refresh_by_id(conn: &mut DbConn, id: &str) -> StoreResult<Option<RefreshTokenRow>> {
    Ok(refresh_tokens::table
        .find(id)
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// How many passes a revocation makes at most before it stops looking for new children.
const REVOKE_PASSES: usize = 8;

/// When a grant's revocation can be forgotten and which tokens it must reach (unix µs).
#[derive(Debug, Clone, Copy)]
pub struct GrantRevocation {
    pub now: i64,
    /// After this no token of any grant it names can be alive.
    pub until: i64,
    /// Access tokens issued before this have expired: grants that issued nothing since are
    /// left alone when revoking by account.
    pub tokens_since: i64,
}

/// Revoke a whole family: every refresh token and every access token it produced.
///
/// A rotation racing this (PostgreSQL, READ COMMITTED) may hold the parent's row lock: the
/// first UPDATE then waits for it, revokes the parent, but cannot see the child the rotation
/// inserted, because the child was not committed when the statement began. So the refresh
/// tokens are revoked again until a pass finds none left alive; a pass that waited for a
/// rotation is followed by one that sees its child. (A rotation that comes after a pass locked
/// the parent finds it revoked and inserts nothing.) Its access tokens carry the family's id
/// as `grant_id`: one revocation row ends them all.
pub fn revoke_family(conn: &mut DbConn, family_id: &str, r: GrantRevocation) -> StoreResult<()> {
    for _ in 0..REVOKE_PASSES {
        let n = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::family_id.eq(family_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(r.now))
        .execute(conn)?;
        if n == 0 {
            break;
        }
    }
    revocations::insert(conn, Kind::Grant, family_id, r.now, r.until)
}

/// Revoke everything a code produced (the code was replayed): its own grant (the family it
/// started has the code's id) and, for families started before grants were named after their
/// code, every family holding a refresh token it produced.
/// Several passes for the reason [`revoke_family`] gives.
pub fn revoke_by_code(conn: &mut DbConn, code_id: &str, r: GrantRevocation) -> StoreResult<()> {
    for _ in 0..REVOKE_PASSES {
        let n = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::code_id.eq(code_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(r.now))
        .execute(conn)?;
        if n == 0 {
            break;
        }
    }
    let families: Vec<String> = refresh_tokens::table
        .filter(refresh_tokens::code_id.eq(code_id))
        .select(refresh_tokens::family_id)
        .distinct()
        .load(conn)?;
    revocations::insert(conn, Kind::Grant, code_id, r.now, r.until)?;
    for f in families.iter().filter(|f| *f != code_id) {
        revocations::insert(conn, Kind::Grant, f, r.now, r.until)?;
    }
    Ok(())
}

/// What [`revoke_for_user`] revoked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revoked {
    pub refresh_tokens: usize,
    /// Grants (codes and refresh families) whose access tokens were ended.
    pub grants: usize,
}

/// Revoke every live refresh token and access token one user holds — at one client (consent
/// withdrawn) or at all of them (containment, "sign out everywhere").
pub fn revoke_for_user(
    conn: &mut DbConn,
    user_id: &str,
    client_id: Option<&str>,
    r: GrantRevocation,
) -> StoreResult<Revoked> {
    let mut q = diesel::update(refresh_tokens::table)
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .into_boxed();
    if let Some(c) = client_id {
        q = q.filter(refresh_tokens::client_id.eq(c));
    }
    let refresh = q.set(refresh_tokens::revoked_at.eq(r.now)).execute(conn)?;
    // Every grant that may have issued a token still alive: families that had not ended by
    // then, and codes exchanged since.
    let mut fq = refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::family_expires_at.gt(r.tokens_since))
        .select(refresh_tokens::family_id)
        .distinct()
        .into_boxed();
    let mut cq = auth_codes::table
        .filter(auth_codes::user_id.eq(user_id))
        .filter(auth_codes::used_at.gt(r.tokens_since))
        .select(auth_codes::id)
        .into_boxed();
    if let Some(c) = client_id {
        fq = fq.filter(refresh_tokens::client_id.eq(c));
        cq = cq.filter(auth_codes::client_id.eq(c));
    }
    let mut grants: Vec<String> = fq.load(conn)?;
    grants.extend(cq.load::<String>(conn)?);
    grants.sort();
    grants.dedup();
    for g in &grants {
        revocations::insert(conn, Kind::Grant, g, r.now, r.until)?;
    }
    Ok(Revoked {
        refresh_tokens: refresh,
        grants: grants.len(),
    })
}

/// Re-point the refresh tokens of session `from` to session `to` (the session that replaced it
/// in the same browser for the same user), so a refresh is refused only when the session really
/// ended.
pub fn move_to_session(conn: &mut DbConn, from: &str, to: &str) -> StoreResult<usize> {
    Ok(
        diesel::update(refresh_tokens::table.filter(refresh_tokens::session_id.eq(from)))
            .set(refresh_tokens::session_id.eq(to))
            .execute(conn)?,
    )
}
