//! Accounts.

use diesel::prelude::*;

use super::schema::users;
use super::{DbConn, StoreError, StoreResult};

#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// An admin reset the password or the user reported a sign-in that was not theirs: the next
    /// sign-in must choose a new password before anything else.
    pub must_change_password: bool,
    /// `none`, `at_risk` or `compromised` (see `flow::account_risk`).
    pub risk_state: String,
    /// When the account entered its risk state.
    pub risk_state_at: Option<i64>,
    /// The address was confirmed through a link mailed to it (`flow::email`).
    pub email_verified: bool,
    /// A self-registered account not yet usable: `unverified` (its address is not confirmed)
    /// or `held` (an administrator reviews it). `None` for every usable account.
    pub registration: Option<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub must_change_password: bool,
}

/// Insert an account; a taken username is `Conflict`.
pub fn insert(conn: &mut DbConn, user: &NewUser<'_>) -> StoreResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map(|_| ())
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("user `{}` already exists", user.username))
            }
            other => other,
        })
}

pub fn find_by_username(conn: &mut DbConn, username: &str) -> StoreResult<Option<User>> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut DbConn, id: &str) -> StoreResult<Option<User>> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut DbConn) -> StoreResult<Vec<User>> {
    Ok(users::table
        .order(users::username.asc())
        .select(User::as_select())
        .load(conn)?)
}

/// Enable or disable an account. Returns `NotFound` for an unknown id.
pub fn set_disabled(conn: &mut DbConn, id: &str, disabled: bool, now: i64) -> StoreResult<()> {
    let n = diesel::update(users::table.find(id))
        .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
        .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Store a new password hash. `must_change` is true for a temporary password an admin set.
pub fn set_password_hash(conn: &mut DbConn, id: &str, hash: &str, now: i64) -> StoreResult<()> {
    set_password(conn, id, hash, false, now)
}

/// Store a new password hash and whether the user must replace it at the next sign-in.
pub fn set_password(
    conn: &mut DbConn,
    id: &str,
    hash: &str,
    must_change: bool,
    now: i64,
) -> StoreResult<()> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::must_change_password.eq(must_change),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Ask the user to choose a new password at their next sign-in.
pub fn require_password_change(conn: &mut DbConn, id: &str, now: i64) -> StoreResult<()> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::must_change_password.eq(true),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Move the account to risk state `state` (`none`, `at_risk`, `compromised`) at `now`. With
/// `only_from`, only an account currently in that state moves (so `at_risk` never downgrades a
/// compromised account). Returns whether the row changed.
pub fn set_risk_state(
    conn: &mut DbConn,
    id: &str,
    state: &str,
    only_from: Option<&[&str]>,
    now: i64,
) -> StoreResult<bool> {
    let at = (state != "none").then_some(now);
    let q = users::table.find(id).into_boxed();
    let q = match only_from {
        Some(from) => q.filter(users::risk_state.eq_any(from.to_vec())),
        None => q,
    };
    let ids: Vec<String> = q.select(users::id).load(conn)?;
    if ids.is_empty() {
        return Ok(false);
    }
    let n = diesel::update(users::table.find(id))
        .set((
            users::risk_state.eq(state),
            users::risk_state_at.eq(at),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Set or clear the forced password change.
pub fn set_must_change_password(
    conn: &mut DbConn,
    id: &str,
    must: bool,
    now: i64,
) -> StoreResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::must_change_password.eq(must),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Serialise every change that may take the console's `admin` role away (PostgreSQL: a
/// transaction-scoped advisory lock; SQLite's writers are serialised already), so that two
/// admins removing each other at the same instant cannot both see "another admin remains".
pub fn lock_admins(conn: &mut DbConn) -> StoreResult<()> {
    /// "vigil-admins" in ASCII, a key no other lock uses.
    const KEY: i64 = 0x7669_6769_6c61;
    if let DbConn::Postgres(c) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(KEY)
            .execute(c)?;
    }
    Ok(())
}

/// How many active (not disabled) accounts hold the console's `admin` role, directly or
/// through a group (the last one cannot lose it, be disabled, locked or deleted).
pub fn count_active_admins(conn: &mut DbConn) -> StoreResult<i64> {
    use super::schema::{group_members, role_grants};
    let direct = role_grants::table
        .filter(role_grants::user_id.eq(users::id.nullable()))
        .filter(role_grants::role_id.eq(super::access::CONSOLE_ADMIN_ROLE_ID));
    let through_group = group_members::table
        .inner_join(
            role_grants::table.on(role_grants::group_id.eq(group_members::group_id.nullable())),
        )
        .filter(group_members::user_id.eq(users::id))
        .filter(role_grants::role_id.eq(super::access::CONSOLE_ADMIN_ROLE_ID));
    Ok(users::table
        .filter(users::disabled.eq(false))
        .filter(diesel::dsl::exists(direct).or(diesel::dsl::exists(through_group)))
        .count()
        .get_result(conn)?)
}

diesel::define_sql_function! {
    /// `lower(text)`, the same on SQLite and PostgreSQL (LIKE's case rules differ between them).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Accounts whose username, e-mail or name contains `q` (case-insensitive), by username; at most
/// `limit`. `%` and `_` in `q` are matched literally.
pub fn search(conn: &mut DbConn, q: &str, limit: i64) -> StoreResult<Vec<User>> {
    let escaped: String = q
        .trim()
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let pattern = format!("%{escaped}%");
    Ok(users::table
        .filter(
            lower(users::username)
                .like(&pattern)
                .escape('\\')
                .or(lower(users::email).like(&pattern).escape('\\'))
                .or(lower(users::name).like(&pattern).escape('\\')),
        )
        .order(users::username.asc())
        .limit(limit)
        .select(User::as_select())
        .load(conn)?)
}

/// Delete an account and everything that hangs off it. Most tables cascade on both backends,
/// but the rows without a foreign key (access tokens, review-queue entries) would not, and
/// deleting explicitly does not depend on SQLite's `foreign_keys` pragma. `NotFound` when absent.
/// Username → id for every account (access reviews name people by username).
pub fn id_by_username(conn: &mut DbConn) -> StoreResult<std::collections::HashMap<String, String>> {
    Ok(users::table
        .select((users::username, users::id))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

pub fn delete(conn: &mut DbConn, id: &str) -> StoreResult<()> {
    use super::schema::{
        access_tokens, auth_codes, consents, group_members, mfa_flows, recovery_codes,
        refresh_tokens, reviews, risk_profiles, role_grants, sessions, signins, totp_credentials,
        webauthn_credentials,
    };
    diesel::delete(reviews::table.filter(reviews::user_id.eq(id))).execute(conn)?;
    diesel::delete(
        super::schema::email_links::table.filter(super::schema::email_links::user_id.eq(id)),
    )
    .execute(conn)?;
    super::usage::forget_user(conn, id)?;
    {
        use super::schema::access_review_items;
        diesel::delete(access_review_items::table.filter(access_review_items::user_id.eq(id)))
            .execute(conn)?;
    }
    diesel::delete(group_members::table.filter(group_members::user_id.eq(id))).execute(conn)?;
    diesel::delete(role_grants::table.filter(role_grants::user_id.eq(id))).execute(conn)?;
    diesel::delete(access_tokens::table.filter(access_tokens::user_id.eq(id))).execute(conn)?;
    diesel::delete(refresh_tokens::table.filter(refresh_tokens::user_id.eq(id))).execute(conn)?;
    diesel::delete(auth_codes::table.filter(auth_codes::user_id.eq(id))).execute(conn)?;
    diesel::delete(consents::table.filter(consents::user_id.eq(id))).execute(conn)?;
    diesel::delete(totp_credentials::table.filter(totp_credentials::user_id.eq(id)))
        .execute(conn)?;
    diesel::delete(webauthn_credentials::table.filter(webauthn_credentials::user_id.eq(id)))
        .execute(conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(id))).execute(conn)?;
    diesel::delete(mfa_flows::table.filter(mfa_flows::user_id.eq(id))).execute(conn)?;
    diesel::delete(risk_profiles::table.filter(risk_profiles::user_id.eq(id))).execute(conn)?;
    diesel::delete(signins::table.filter(signins::user_id.eq(id))).execute(conn)?;
    diesel::delete(sessions::table.filter(sessions::user_id.eq(id))).execute(conn)?;
    let n = diesel::delete(users::table.find(id)).execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Mark the address verified, if it is still `email` (a link for an old address verifies
/// nothing). Returns whether it was.
pub fn verify_email(conn: &mut DbConn, id: &str, email: &str, now: i64) -> StoreResult<bool> {
    let n = diesel::update(users::table.find(id).filter(users::email.eq(email)))
        .set((users::email_verified.eq(true), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// The one account whose address is `email` (compared without case), if exactly one has it: an
/// address two accounts share names neither.
pub fn find_by_email(conn: &mut DbConn, email: &str) -> StoreResult<Option<User>> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let lower = email.to_lowercase();
    let mut found: Vec<User> = users::table
        .filter(users::email.eq(email).or(users::email.eq(&lower)))
        .select(User::as_select())
        .limit(2)
        .load(conn)?;
    Ok(if found.len() == 1 { found.pop() } else { None })
}

/// Create a self-registered account in `state` (`unverified` or `held`), or usable (`None`).
pub fn set_registration(
    conn: &mut DbConn,
    id: &str,
    state: Option<&str>,
    only_from: Option<&str>,
    now: i64,
) -> StoreResult<bool> {
    let target = users::table.find(id);
    let n = match only_from {
        Some(from) => diesel::update(target.filter(users::registration.eq(from)))
            .set((users::registration.eq(state), users::updated_at.eq(now)))
            .execute(conn)?,
        None => diesel::update(target)
            .set((users::registration.eq(state), users::updated_at.eq(now)))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Accounts waiting for an administrator's review of their registration.
pub fn held_registrations(conn: &mut DbConn) -> StoreResult<Vec<User>> {
    Ok(users::table
        .filter(users::registration.eq("held"))
        .order(users::created_at.asc())
        .limit(200)
        .select(User::as_select())
        .load(conn)?)
}

/// Enabled console administrators (directly or through a group) whose address is confirmed:
/// who gets the high-risk digest.
pub fn admins_to_mail(conn: &mut DbConn) -> StoreResult<Vec<User>> {
    use super::schema::{group_members, role_grants};
    let direct = role_grants::table
        .filter(role_grants::user_id.eq(users::id.nullable()))
        .filter(role_grants::role_id.eq(super::access::CONSOLE_ADMIN_ROLE_ID));
    let through_group = group_members::table
        .inner_join(
            role_grants::table.on(role_grants::group_id.eq(group_members::group_id.nullable())),
        )
        .filter(group_members::user_id.eq(users::id))
        .filter(role_grants::role_id.eq(super::access::CONSOLE_ADMIN_ROLE_ID));
    Ok(users::table
        .filter(users::disabled.eq(false))
        .filter(users::email_verified.eq(true))
        .filter(diesel::dsl::exists(direct).or(diesel::dsl::exists(through_group)))
        .select(User::as_select())
        .load(conn)?)
}

/// Accounts that entered `at_risk` or `compromised` since `since` (newest first).
pub fn entered_risk_since(conn: &mut DbConn, since: i64, limit: i64) -> StoreResult<Vec<User>> {
    Ok(users::table
        .filter(users::risk_state.ne("none"))
        .filter(users::risk_state_at.ge(since))
        .order(users::risk_state_at.desc())
        .limit(limit)
        .select(User::as_select())
        .load(conn)?)
}
