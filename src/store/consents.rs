//! Remembered consent: which scopes a user granted to a third-party client.

use diesel::prelude::*;

use super::schema::consents;
use super::{DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = consents)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub granted_at: i64,
}

pub fn find(conn: &mut DbConn, user_id: &str, client_id: &str) -> StoreResult<Option<Consent>> {
    Ok(consents::table
        .find((user_id, client_id))
        .select(Consent::as_select())
        .first(conn)
        .optional()?)
}

/// Record a grant, replacing an earlier one (delete + insert: the same SQL on both backends).
pub fn grant(conn: &mut DbConn, c: &Consent) -> StoreResult<()> {
    revoke(conn, &c.user_id, &c.client_id)?;
    diesel::insert_into(consents::table)
        .values(c)
        .execute(conn)?;
    Ok(())
}

pub fn revoke(conn: &mut DbConn, user_id: &str, client_id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(consents::table.find((user_id, client_id))).execute(conn)? == 1)
}

pub fn for_user(conn: &mut DbConn, user_id: &str) -> StoreResult<Vec<Consent>> {
    Ok(consents::table
        .filter(consents::user_id.eq(user_id))
        .order(consents::granted_at.desc())
        .select(Consent::as_select())
        .load(conn)?)
}
