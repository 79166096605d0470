//! The audit chain's rows. Appending is serialised by first updating the single `audit_head`
//! row: on SQLite that statement takes the write lock before anything is read, on PostgreSQL it
//! takes the row lock, so two writers can never chain onto the same predecessor.

use diesel::prelude::*;

use super::schema::{audit_head, audit_log};
use super::{DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone, Debug, serde::Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub ip_digest: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Append one entry. `seal(seq, prev_hash)` fills in `seq`, `prev_hash` and `hash`.
/// Call inside the transaction of the change being recorded.
pub fn append(
    conn: &mut DbConn,
    mut row: AuditRow,
    seal: impl FnOnce(&mut AuditRow),
) -> StoreResult<AuditRow> {
    diesel::update(audit_head::table.find(1))
        .set(audit_head::seq.eq(audit_head::seq + 1))
        .execute(conn)?;
    let (seq, prev_hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(conn)?;
    row.seq = seq;
    row.prev_hash = prev_hash;
    seal(&mut row);
    diesel::insert_into(audit_log::table)
        .values(&row)
        .execute(conn)?;
    diesel::update(audit_head::table.find(1))
        .set(audit_head::hash.eq(&row.hash))
        .execute(conn)?;
    Ok(row)
}

/// A page of entries in chain order, starting after `after_seq`.
pub fn page(conn: &mut DbConn, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
    Ok(audit_log::table
        .filter(audit_log::seq.gt(after_seq))
        .order(audit_log::seq.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}

/// The head as recorded (seq, hash): lets verification notice truncation of the tail.
/// `None` when the head row itself is gone (which verification reports as tampering).
pub fn head(conn: &mut DbConn) -> StoreResult<Option<(i64, String)>> {
    Ok(audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(conn)
        .optional()?)
}

/// How many rows have `seq <= upto`, chained or not: more than the walk linked means rows were
/// planted outside the chain (a seq of 0 or below).
pub fn count_upto(conn: &mut DbConn, upto: i64) -> StoreResult<i64> {
    Ok(audit_log::table
        .filter(audit_log::seq.le(upto))
        .count()
        .get_result(conn)?)
}

/// The entry at `seq`, if any (anchors are checked against it).
pub fn at_seq(conn: &mut DbConn, seq: i64) -> StoreResult<Option<AuditRow>> {
    Ok(audit_log::table
        .find(seq)
        .select(AuditRow::as_select())
        .first(conn)
        .optional()?)
}

/// Entries at or after `since`, for export.
pub fn since(
    conn: &mut DbConn,
    since: i64,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<AuditRow>> {
    Ok(audit_log::table
        .filter(audit_log::at.ge(since))
        .filter(audit_log::seq.gt(after_seq))
        .order(audit_log::seq.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}
