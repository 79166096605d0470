//! State of multi-step interactions (a password accepted and a second factor pending, a WebAuthn
//! ceremony in progress, a TOTP secret awaiting its first code). In the database, not in node
//! memory, so any node can finish what another began. Rows are single use and short-lived.

use diesel::prelude::*;

use super::schema::mfa_flows;
use super::{DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = mfa_flows)]
pub struct FlowRow {
    /// SHA-256 of the token the browser holds.
    pub id: String,
    pub purpose: String,
    pub user_id: Option<String>,
    pub data: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub fn insert(conn: &mut DbConn, row: &FlowRow) -> StoreResult<()> {
    diesel::insert_into(mfa_flows::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConn, id: &str, purpose: &str, now: i64) -> StoreResult<Option<FlowRow>> {
    Ok(mfa_flows::table
        .find(id)
        .filter(mfa_flows::purpose.eq(purpose))
        .filter(mfa_flows::expires_at.gt(now))
        .select(FlowRow::as_select())
        .first(conn)
        .optional()?)
}

/// Take a flow row: found and deleted by this caller only.
pub fn take(conn: &mut DbConn, id: &str, purpose: &str, now: i64) -> StoreResult<Option<FlowRow>> {
    let row = find(conn, id, purpose, now)?;
    if let Some(r) = &row {
        if diesel::delete(mfa_flows::table.find(&r.id)).execute(conn)? != 1 {
            return Ok(None);
        }
    }
    Ok(row)
}

pub fn delete(conn: &mut DbConn, id: &str) -> StoreResult<()> {
    diesel::delete(mfa_flows::table.find(id)).execute(conn)?;
    Ok(())
}

pub fn prune(conn: &mut DbConn, now: i64) -> StoreResult<usize> {
    Ok(diesel::delete(mfa_flows::table.filter(mfa_flows::expires_at.le(now))).execute(conn)?)
}
