//! Authorization requests in flight (between `/authorize` and the code) and authorization codes.
//! A code is consumed with one conditional update, so two redemptions can never both succeed.

use diesel::prelude::*;

use super::schema::{auth_codes, authz_requests, refresh_tokens};
use super::{DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = authz_requests)]
pub struct AuthzRequest {
    pub id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub response_mode: String,
    pub prompt: String,
    pub max_age: Option<i64>,
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The device cookie of the browser that started the request: only it may continue it.
    pub device_id: Option<String>,
    /// The session already assessed for this request (the sign-in made for it); any other
    /// session is re-scored before it may receive a code.
    pub assessed_session: Option<String>,
}

pub fn insert_request(conn: &mut DbConn, r: &AuthzRequest) -> StoreResult<()> {
    diesel::insert_into(authz_requests::table)
        .values(r)
        .execute(conn)?;
    Ok(())
}

pub fn find_request(conn: &mut DbConn, id: &str, now: i64) -> StoreResult<Option<AuthzRequest>> {
    Ok(authz_requests::table
        .find(id)
        .filter(authz_requests::expires_at.gt(now))
        .select(AuthzRequest::as_select())
        .first(conn)
        .optional()?)
}

/// Consume a request: true only for the one caller whose delete removed it.
pub fn take_request(conn: &mut DbConn, id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(authz_requests::table.find(id)).execute(conn)? == 1)
}

/// Record the session assessed for a request (the sign-in made for it, or a kept SSO reuse).
pub fn set_assessed_session(conn: &mut DbConn, id: &str, session_id: &str) -> StoreResult<()> {
    diesel::update(authz_requests::table.find(id))
        .set(authz_requests::assessed_session.eq(session_id))
        .execute(conn)?;
    Ok(())
}

pub fn delete_request(conn: &mut DbConn, id: &str) -> StoreResult<()> {
    diesel::delete(authz_requests::table.find(id)).execute(conn)?;
    Ok(())
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = auth_codes)]
pub struct AuthCode {
    pub id: String,
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub acr: String,
    pub amr: String,
    pub risk: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub fn insert_code(conn: &mut DbConn, c: &AuthCode) -> StoreResult<()> {
    diesel::insert_into(auth_codes::table)
        .values(c)
        .execute(conn)?;
    Ok(())
}

pub fn find_code(conn: &mut DbConn, code_hash: &str) -> StoreResult<Option<AuthCode>> {
    Ok(auth_codes::table
        .filter(auth_codes::code_hash.eq(code_hash))
        .select(AuthCode::as_select())
        .first(conn)
        .optional()?)
}

/// Consume a code: true only for the one caller that flips `used_at`.
pub fn consume_code(conn: &mut DbConn, id: &str, now: i64) -> StoreResult<bool> {
    let n = diesel::update(
        auth_codes::table
            .find(id)
            .filter(auth_codes::used_at.is_null()),
    )
    .set(auth_codes::used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Clients that received a code in this session (for back-channel logout).
pub fn clients_of_session(conn: &mut DbConn, session_id: &str) -> StoreResult<Vec<String>> {
    Ok(auth_codes::table
        .filter(auth_codes::session_id.eq(session_id))
        .select(auth_codes::client_id)
        .distinct()
        .load(conn)?)
}

/// Clients that issued `user_id` a code or a refresh token created after `since` (unix µs):
/// those that may still hold a session or tokens for the user (back-channel logout of a user).
pub fn clients_of_user(conn: &mut DbConn, user_id: &str, since: i64) -> StoreResult<Vec<String>> {
    let mut ids: Vec<String> = auth_codes::table
        .filter(auth_codes::user_id.eq(user_id))
        .filter(auth_codes::created_at.gt(since))
        .select(auth_codes::client_id)
        .distinct()
        .load(conn)?;
    ids.extend(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::created_at.gt(since))
            .select(refresh_tokens::client_id)
            .distinct()
            .load::<String>(conn)?,
    );
    ids.sort();
    ids.dedup();
    Ok(ids)
}
