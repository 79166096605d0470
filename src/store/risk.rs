//! Risk-engine state: one JSON profile per user and named shared values (global frequencies).
//! Read and written inside the sign-in's transaction, so scoring never scans history.

use diesel::prelude::*;

use super::schema::{risk_profiles, risk_state};
use super::{DbConn, StoreError, StoreResult};

pub fn profile(conn: &mut DbConn, user_id: &str) -> StoreResult<Option<String>> {
    Ok(risk_profiles::table
        .find(user_id)
        .select(risk_profiles::profile)
        .first(conn)
        .optional()?)
}

/// Insert or replace (update first; insert when there was nothing to update).
pub fn put_profile(conn: &mut DbConn, user_id: &str, json: &str, now: i64) -> StoreResult<()> {
    let n = diesel::update(risk_profiles::table.find(user_id))
        .set((
            risk_profiles::profile.eq(json),
            risk_profiles::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(risk_profiles::table)
            .values((
                risk_profiles::user_id.eq(user_id),
                risk_profiles::profile.eq(json),
                risk_profiles::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn state(conn: &mut DbConn, name: &str) -> StoreResult<Option<String>> {
    Ok(risk_state::table
        .find(name)
        .select(risk_state::value)
        .first(conn)
        .optional()?)
}

/// Read-modify-write a named value without losing another node's concurrent write: `f` maps the
/// current value (if any) to the new one, and the write succeeds only if nobody wrote since the
/// read (its `updated_at` is the version; each write stamps a strictly later one), else it is
/// re-read and `f` runs again. Returns what was written. Each statement commits on its own, so
/// SQLite never has to upgrade a read transaction.
pub fn update_state(
    conn: &mut DbConn,
    name: &str,
    now: i64,
    f: &mut dyn FnMut(Option<&str>) -> String,
) -> StoreResult<String> {
    for _ in 0..16 {
        let current: Option<(String, i64)> = risk_state::table
            .find(name)
            .select((risk_state::value, risk_state::updated_at))
            .first(conn)
            .optional()?;
        let new = f(current.as_ref().map(|c| c.0.as_str()));
        match current {
            Some((_, version)) => {
                let n = diesel::update(
                    risk_state::table
                        .find(name)
                        .filter(risk_state::updated_at.eq(version)),
                )
                .set((
                    risk_state::value.eq(&new),
                    risk_state::updated_at.eq(now.max(version.saturating_add(1))),
                ))
                .execute(conn)?;
                if n == 1 {
                    return Ok(new);
                }
            }
            None => {
                match diesel::insert_into(risk_state::table)
                    .values((
                        risk_state::name.eq(name),
                        risk_state::value.eq(&new),
                        risk_state::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .map_err(StoreError::from)
                {
                    Ok(_) => return Ok(new),
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Err(StoreError::Busy)
}

pub fn put_state(conn: &mut DbConn, name: &str, json: &str, now: i64) -> StoreResult<()> {
    let n = diesel::update(risk_state::table.find(name))
        .set((risk_state::value.eq(json), risk_state::updated_at.eq(now)))
        .execute(conn)?;
    if n == 0 {
        match diesel::insert_into(risk_state::table)
            .values((
                risk_state::name.eq(name),
                risk_state::value.eq(json),
                risk_state::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(StoreError::from)
        {
            // Another node created it first: last writer wins, as for the update.
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
