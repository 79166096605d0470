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

pub fn set_password_hash(conn: &mut DbConn, id: &str, hash: &str, now: i64) -> StoreResult<()> {
    let n = diesel::update(users::table.find(id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
        .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}
