//! Issued tokens: access-token ids (for revocation and introspection) and refresh tokens.
//!
//! Refresh tokens form families (all descendants of one code):
//! ```text
//!  issued ──use──> used (rotated; a child is issued) ──use again──> REUSE: family revoked
//!     └──revoke / expiry──> dead
//! ```

use diesel::prelude::*;

use super::schema::{access_tokens, refresh_tokens};
use super::{DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = access_tokens)]
pub struct AccessTokenRow {
    pub jti: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub code_id: Option<String>,
    pub family_id: Option<String>,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

pub fn insert_access(conn: &mut DbConn, t: &AccessTokenRow) -> StoreResult<()> {
    diesel::insert_into(access_tokens::table)
        .values(t)
        .execute(conn)?;
    Ok(())
}

pub fn find_access(conn: &mut DbConn, jti: &str) -> StoreResult<Option<AccessTokenRow>> {
    Ok(access_tokens::table
        .find(jti)
        .select(AccessTokenRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn revoke_access(conn: &mut DbConn, jti: &str, now: i64) -> StoreResult<()> {
    diesel::update(
        access_tokens::table
            .find(jti)
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
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

/// Revoke a whole family: every refresh token and every access token it produced.
///
/// A rotation racing this (PostgreSQL, READ COMMITTED) may hold the parent's row lock: the
/// first UPDATE then waits for it, revokes the parent, but cannot see the child the rotation
/// inserted, because the child was not committed when the statement began. So the refresh
/// tokens are revoked again until a pass finds none left alive; a pass that waited for a
/// rotation is followed by one that sees its child. (A rotation that comes after a pass locked
/// the parent finds it revoked and inserts nothing.) The access tokens are revoked last, when
/// every such rotation has committed.
pub fn revoke_family(conn: &mut DbConn, family_id: &str, now: i64) -> StoreResult<()> {
    for _ in 0..REVOKE_PASSES {
        let n = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::family_id.eq(family_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(now))
        .execute(conn)?;
        if n == 0 {
            break;
        }
    }
    diesel::update(
        access_tokens::table
            .filter(access_tokens::family_id.eq(family_id))
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// Revoke everything a code produced (the code was replayed).
/// Several passes for the reason [`revoke_family`] gives.
pub fn revoke_by_code(conn: &mut DbConn, code_id: &str, now: i64) -> StoreResult<()> {
    for _ in 0..REVOKE_PASSES {
        let n = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::code_id.eq(code_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(now))
        .execute(conn)?;
        if n == 0 {
            break;
        }
    }
    diesel::update(
        access_tokens::table
            .filter(access_tokens::code_id.eq(code_id))
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// What [`revoke_for_user_client`] revoked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revoked {
    pub refresh_tokens: usize,
    pub access_tokens: usize,
}

/// Revoke every live refresh and access token one user holds at one client (consent withdrawn).
pub fn revoke_for_user_client(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    now: i64,
) -> StoreResult<Revoked> {
    let refresh_tokens = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::client_id.eq(client_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    let access_tokens = diesel::update(
        access_tokens::table
            .filter(access_tokens::user_id.eq(user_id))
            .filter(access_tokens::client_id.eq(client_id))
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(Revoked {
        refresh_tokens,
        access_tokens,
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
