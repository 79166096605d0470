//! Second factors: TOTP secrets (sealed), WebAuthn credentials, recovery-code digests.
//! Single-use checks are conditional updates, so two requests can never spend one code/step.

use diesel::prelude::*;

use super::schema::{recovery_codes, totp_credentials, webauthn_credentials};
use super::{new_id, DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = totp_credentials)]
pub struct TotpRow {
    pub id: String,
    pub user_id: String,
    pub secret_enc: String,
    pub last_used_step: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Set when the factor was added after a reported sign-in: unusable until confirmed.
    pub suspended_at: Option<i64>,
}

/// The user's usable TOTP credential (a suspended one is not usable).
pub fn totp_for(conn: &mut DbConn, user_id: &str) -> StoreResult<Option<TotpRow>> {
    Ok(totp_credentials::table
        .filter(totp_credentials::user_id.eq(user_id))
        .filter(totp_credentials::suspended_at.is_null())
        .select(TotpRow::as_select())
        .first(conn)
        .optional()?)
}

/// The user's TOTP credential, suspended or not (for the account page).
pub fn totp_any_for(conn: &mut DbConn, user_id: &str) -> StoreResult<Option<TotpRow>> {
    Ok(totp_credentials::table
        .filter(totp_credentials::user_id.eq(user_id))
        .select(TotpRow::as_select())
        .first(conn)
        .optional()?)
}

/// Store a confirmed TOTP credential, replacing any earlier one.
pub fn put_totp(conn: &mut DbConn, row: &TotpRow) -> StoreResult<()> {
    diesel::delete(totp_credentials::table.filter(totp_credentials::user_id.eq(&row.user_id)))
        .execute(conn)?;
    diesel::insert_into(totp_credentials::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Accept time step `step` once: true only if it is newer than the last step used.
pub fn use_totp_step(conn: &mut DbConn, id: &str, step: i64, now: i64) -> StoreResult<bool> {
    let n = diesel::update(
        totp_credentials::table.find(id).filter(
            totp_credentials::last_used_step
                .is_null()
                .or(totp_credentials::last_used_step.lt(step)),
        ),
    )
    .set((
        totp_credentials::last_used_step.eq(step),
        totp_credentials::last_used_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn delete_totp(conn: &mut DbConn, user_id: &str) -> StoreResult<bool> {
    Ok(
        diesel::delete(totp_credentials::table.filter(totp_credentials::user_id.eq(user_id)))
            .execute(conn)?
            > 0,
    )
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = webauthn_credentials)]
pub struct WebauthnRow {
    pub id: String,
    pub user_id: String,
    pub cred_id: String,
    pub name: String,
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Set when the passkey was added after a reported sign-in: unusable until confirmed.
    pub suspended_at: Option<i64>,
}

/// The user's usable passkeys (suspended ones cannot sign in).
pub fn passkeys_for(conn: &mut DbConn, user_id: &str) -> StoreResult<Vec<WebauthnRow>> {
    Ok(webauthn_credentials::table
        .filter(webauthn_credentials::user_id.eq(user_id))
        .filter(webauthn_credentials::suspended_at.is_null())
        .order(webauthn_credentials::created_at.asc())
        .select(WebauthnRow::as_select())
        .load(conn)?)
}

/// Every passkey of the user, suspended or not (the account page; registration's exclude list).
pub fn passkeys_all_for(conn: &mut DbConn, user_id: &str) -> StoreResult<Vec<WebauthnRow>> {
    Ok(webauthn_credentials::table
        .filter(webauthn_credentials::user_id.eq(user_id))
        .order(webauthn_credentials::created_at.asc())
        .select(WebauthnRow::as_select())
        .load(conn)?)
}

pub fn insert_passkey(conn: &mut DbConn, row: &WebauthnRow) -> StoreResult<()> {
    diesel::insert_into(webauthn_credentials::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Record a use; store the updated credential (new counter) when webauthn-rs produced one.
pub fn touch_passkey(
    conn: &mut DbConn,
    user_id: &str,
    cred_id: &str,
    updated: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let target = webauthn_credentials::table
        .filter(webauthn_credentials::user_id.eq(user_id))
        .filter(webauthn_credentials::cred_id.eq(cred_id));
    match updated {
        Some(p) => diesel::update(target)
            .set((
                webauthn_credentials::passkey.eq(p),
                webauthn_credentials::last_used_at.eq(now),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set(webauthn_credentials::last_used_at.eq(now))
            .execute(conn)?,
    };
    Ok(())
}

pub fn delete_passkey(conn: &mut DbConn, user_id: &str, id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(
        webauthn_credentials::table
            .filter(webauthn_credentials::user_id.eq(user_id))
            .filter(webauthn_credentials::id.eq(id)),
    )
    .execute(conn)?
        == 1)
}

pub fn delete_all_passkeys(conn: &mut DbConn, user_id: &str) -> StoreResult<usize> {
    Ok(diesel::delete(
        webauthn_credentials::table.filter(webauthn_credentials::user_id.eq(user_id)),
    )
    .execute(conn)?)
}

/// Replace a user's recovery codes with these digests.
pub fn replace_recovery_codes(
    conn: &mut DbConn,
    user_id: &str,
    digests: &[String],
    now: i64,
) -> StoreResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    for d in digests {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::id.eq(new_id()),
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(d),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Spend a recovery code: true only for the one caller that marks it used.
pub fn use_recovery_code(
    conn: &mut DbConn,
    user_id: &str,
    digest: &str,
    now: i64,
) -> StoreResult<bool> {
    let n = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(digest))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn recovery_codes_left(conn: &mut DbConn, user_id: &str) -> StoreResult<i64> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}

pub fn delete_recovery_codes(conn: &mut DbConn, user_id: &str) -> StoreResult<usize> {
    Ok(
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
            .execute(conn)?,
    )
}

/// Which factors a user has (for choosing the step-up method).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enrolled {
    pub webauthn: bool,
    pub totp: bool,
    pub recovery: bool,
}

impl Enrolled {
    pub fn any(&self) -> bool {
        self.webauthn || self.totp
    }
}

pub fn enrolled(conn: &mut DbConn, user_id: &str) -> StoreResult<Enrolled> {
    let webauthn: i64 = webauthn_credentials::table
        .filter(webauthn_credentials::user_id.eq(user_id))
        .filter(webauthn_credentials::suspended_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(Enrolled {
        webauthn: webauthn > 0,
        totp: totp_for(conn, user_id)?.is_some(),
        recovery: recovery_codes_left(conn, user_id)? > 0,
    })
}

/// Containment: suspend the factors added since `since` (the reported sign-in), and drop
/// recovery codes generated since then (whoever generated them has seen them). Returns how
/// many factors were suspended.
pub fn suspend_added_since(
    conn: &mut DbConn,
    user_id: &str,
    since: i64,
    now: i64,
) -> StoreResult<usize> {
    let t = diesel::update(
        totp_credentials::table
            .filter(totp_credentials::user_id.eq(user_id))
            .filter(totp_credentials::created_at.ge(since))
            .filter(totp_credentials::suspended_at.is_null()),
    )
    .set(totp_credentials::suspended_at.eq(now))
    .execute(conn)?;
    let p = diesel::update(
        webauthn_credentials::table
            .filter(webauthn_credentials::user_id.eq(user_id))
            .filter(webauthn_credentials::created_at.ge(since))
            .filter(webauthn_credentials::suspended_at.is_null()),
    )
    .set(webauthn_credentials::suspended_at.eq(now))
    .execute(conn)?;
    diesel::delete(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::created_at.ge(since)),
    )
    .execute(conn)?;
    Ok(t + p)
}

/// The owner confirms a suspended factor (`totp`, or a passkey's row id): usable again.
pub fn confirm_suspended(conn: &mut DbConn, user_id: &str, which: &str) -> StoreResult<bool> {
    let n = if which == "totp" {
        diesel::update(
            totp_credentials::table
                .filter(totp_credentials::user_id.eq(user_id))
                .filter(totp_credentials::suspended_at.is_not_null()),
        )
        .set(totp_credentials::suspended_at.eq(None::<i64>))
        .execute(conn)?
    } else {
        diesel::update(
            webauthn_credentials::table
                .filter(webauthn_credentials::user_id.eq(user_id))
                .filter(webauthn_credentials::id.eq(which))
                .filter(webauthn_credentials::suspended_at.is_not_null()),
        )
        .set(webauthn_credentials::suspended_at.eq(None::<i64>))
        .execute(conn)?
    };
    Ok(n == 1)
}
