//! Signing keys. Private parts arrive already encrypted (oidc::keys seals them); this table
//! only stores and lists them, so every node signs with the same keys.

use diesel::prelude::*;

use super::schema::signing_keys;
use super::{DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = signing_keys)]
pub struct KeyRow {
    pub id: String,
    pub alg: String,
    pub private_enc: String,
    pub public_jwk: String,
    pub created_at: i64,
    /// When a newer key took over; the key still verifies until `publish_until`.
    pub rotated_at: Option<i64>,
    pub publish_until: Option<i64>,
}

pub fn insert(conn: &mut DbConn, k: &KeyRow) -> StoreResult<()> {
    diesel::insert_into(signing_keys::table)
        .values(k)
        .execute(conn)?;
    Ok(())
}

/// Keys that are active or still published at `now`, newest first.
pub fn published(conn: &mut DbConn, now: i64) -> StoreResult<Vec<KeyRow>> {
    Ok(signing_keys::table
        .filter(
            signing_keys::publish_until
                .is_null()
                .or(signing_keys::publish_until.gt(now)),
        )
        .order(signing_keys::created_at.desc())
        .select(KeyRow::as_select())
        .load(conn)?)
}

pub fn all(conn: &mut DbConn) -> StoreResult<Vec<KeyRow>> {
    Ok(signing_keys::table
        .order(signing_keys::created_at.desc())
        .select(KeyRow::as_select())
        .load(conn)?)
}

/// Mark every active key of `alg` as rotated: published until `publish_until`, then retired.
pub fn retire_active(
    conn: &mut DbConn,
    alg: &str,
    now: i64,
    publish_until: i64,
) -> StoreResult<usize> {
    Ok(diesel::update(
        signing_keys::table
            .filter(signing_keys::alg.eq(alg))
            .filter(signing_keys::rotated_at.is_null()),
    )
    .set((
        signing_keys::rotated_at.eq(now),
        signing_keys::publish_until.eq(publish_until),
    ))
    .execute(conn)?)
}
