//! Named random server secrets (the CSRF key, the IP-digest key) shared by every node.

use diesel::prelude::*;

use super::schema::server_secrets;
use super::{DbConn, StoreError, StoreResult};

/// The secret called `name`, created with `make` by whichever node asks first.
pub fn get_or_create(
    conn: &mut DbConn,
    name: &str,
    now: i64,
    make: impl FnOnce() -> String,
) -> StoreResult<String> {
    if let Some(v) = find(conn, name)? {
        return Ok(v);
    }
    let inserted = diesel::insert_into(server_secrets::table)
        .values((
            server_secrets::name.eq(name),
            server_secrets::value.eq(make()),
            server_secrets::created_at.eq(now),
        ))
        .execute(conn);
    match inserted.map_err(StoreError::from) {
        // another node won the race: use its value
        Ok(_) | Err(StoreError::Conflict(_)) => find(conn, name)?.ok_or(StoreError::NotFound),
        Err(e) => Err(e),
    }
}

fn find(conn: &mut DbConn, name: &str) -> StoreResult<Option<String>> {
    Ok(server_secrets::table
        .find(name)
        .select(server_secrets::value)
        .first(conn)
        .optional()?)
}
