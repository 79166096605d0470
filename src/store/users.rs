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
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// An admin reset the password or the user reported a sign-in that was not theirs: the next
    /// sign-in must choose a new password before anything else.
    pub must_change_password: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("is_admin", &self.is_admin)
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
    pub is_admin: bool,
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

/// Grant or withdraw the admin role.
pub fn set_admin(conn: &mut DbConn, id: &str, admin: bool, now: i64) -> StoreResult<()> {
    let n = diesel::update(users::table.find(id))
        .set((users::is_admin.eq(admin), users::updated_at.eq(now)))
        .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// How many active admins there are (the last one cannot be demoted or disabled).
pub fn count_active_admins(conn: &mut DbConn) -> StoreResult<i64> {
    Ok(users::table
        .filter(users::is_admin.eq(true))
        .filter(users::disabled.eq(false))
        .count()
        .get_result(conn)?)
}
