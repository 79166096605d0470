//! What is really used (the raw material of `src/access/`): the last verified sign-in of each
//! account, the last token each user received for each client, and the last time each role was
//! issued in a token. Dormant accounts and unused grants are then queries on these, not scans
//! of the sign-in log.

use std::collections::HashMap;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::schema::{client_usage, group_members, groups, role_grants, role_usage, roles, users};
use super::{DbConn, StoreResult};
use crate::access::{Account, Grant, Snapshot, Use};

/// A user received a token for a client at `at` (µs).
#[derive(Insertable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = client_usage)]
pub struct ClientUse {
    pub user_id: String,
    pub client_id: String,
    pub last_used_at: i64,
}

/// A role was in a token a user received for its client at `at` (µs).
#[derive(Insertable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = role_usage)]
pub struct RoleUse {
    pub user_id: String,
    pub client_id: String,
    pub role: String,
    pub last_used_at: i64,
}

/// Move the usage marks forward (never back: batches of several nodes may arrive out of order).
pub fn touch(conn: &mut DbConn, clients: &[ClientUse], roles: &[RoleUse]) -> StoreResult<()> {
    let (newer_client, newer_role) = match conn {
        DbConn::Sqlite(_) => (
            "MAX(client_usage.last_used_at, excluded.last_used_at)",
            "MAX(role_usage.last_used_at, excluded.last_used_at)",
        ),
        DbConn::Postgres(_) => (
            "GREATEST(client_usage.last_used_at, excluded.last_used_at)",
            "GREATEST(role_usage.last_used_at, excluded.last_used_at)",
        ),
    };
    // PostgreSQL: one multi-row statement per 1,000 rows (3 or 4 binds per row, under its cap).
    // SQLite: diesel has no batch upsert there; a statement per row in the one transaction is
    // in-process and cheap.
    match conn {
        DbConn::Postgres(c) => {
            for chunk in clients.chunks(1_000) {
                diesel::insert_into(client_usage::table)
                    .values(chunk)
                    .on_conflict((client_usage::user_id, client_usage::client_id))
                    .do_update()
                    .set(client_usage::last_used_at.eq(sql::<BigInt>(newer_client)))
                    .execute(c)?;
            }
            for chunk in roles.chunks(1_000) {
                diesel::insert_into(role_usage::table)
                    .values(chunk)
                    .on_conflict((role_usage::user_id, role_usage::client_id, role_usage::role))
                    .do_update()
                    .set(role_usage::last_used_at.eq(sql::<BigInt>(newer_role)))
                    .execute(c)?;
            }
        }
        DbConn::Sqlite(c) => {
            for row in clients {
                diesel::insert_into(client_usage::table)
                    .values(row)
                    .on_conflict((client_usage::user_id, client_usage::client_id))
                    .do_update()
                    .set(client_usage::last_used_at.eq(sql::<BigInt>(newer_client)))
                    .execute(c)?;
            }
            for row in roles {
                diesel::insert_into(role_usage::table)
                    .values(row)
                    .on_conflict((role_usage::user_id, role_usage::client_id, role_usage::role))
                    .do_update()
                    .set(role_usage::last_used_at.eq(sql::<BigInt>(newer_role)))
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// A verified sign-in (in the sign-in's own transaction).
pub fn signed_in(conn: &mut DbConn, user_id: &str, at: i64) -> StoreResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::last_signin_at.eq(at))
        .execute(conn)?;
    Ok(())
}

pub fn forget_user(conn: &mut DbConn, user_id: &str) -> StoreResult<()> {
    diesel::delete(client_usage::table.filter(client_usage::user_id.eq(user_id))).execute(conn)?;
    diesel::delete(role_usage::table.filter(role_usage::user_id.eq(user_id))).execute(conn)?;
    Ok(())
}

pub fn forget_client(conn: &mut DbConn, client_id: &str) -> StoreResult<()> {
    diesel::delete(client_usage::table.filter(client_usage::client_id.eq(client_id)))
        .execute(conn)?;
    diesel::delete(role_usage::table.filter(role_usage::client_id.eq(client_id))).execute(conn)?;
    Ok(())
}

pub fn forget_role(conn: &mut DbConn, client_id: &str, role: &str) -> StoreResult<()> {
    diesel::delete(
        role_usage::table
            .filter(role_usage::client_id.eq(client_id))
            .filter(role_usage::role.eq(role)),
    )
    .execute(conn)?;
    Ok(())
}

/// When the user last received a token for the client (µs), if ever.
pub fn client_last_used(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
) -> StoreResult<Option<i64>> {
    Ok(client_usage::table
        .find((user_id, client_id))
        .select(client_usage::last_used_at)
        .first(conn)
        .optional()?)
}

/// The roles a user received in tokens, with when last (µs): (client, role, at).
pub fn roles_used_by(conn: &mut DbConn, user_id: &str) -> StoreResult<Vec<(String, String, i64)>> {
    Ok(role_usage::table
        .filter(role_usage::user_id.eq(user_id))
        .select((
            role_usage::client_id,
            role_usage::role,
            role_usage::last_used_at,
        ))
        .load(conn)?)
}

fn secs(micros: i64) -> i64 {
    micros.div_euclid(1_000_000)
}

/// Everything the miners read, for the whole directory (`vigil access report`, reviews): a few
/// whole-table reads, not on any request path.
pub fn snapshot(conn: &mut DbConn, now_micros: i64) -> StoreResult<Snapshot> {
    let people: Vec<(String, String, bool, i64, Option<i64>)> = users::table
        .select((
            users::id,
            users::username,
            users::disabled,
            users::created_at,
            users::last_signin_at,
        ))
        .order(users::username)
        .load(conn)?;
    let names: HashMap<String, String> = people
        .iter()
        .map(|(id, name, ..)| (id.clone(), name.clone()))
        .collect();
    let mut active: HashMap<String, i64> = HashMap::new();
    for (u, t) in client_usage::table
        .select((client_usage::user_id, client_usage::last_used_at))
        .load::<(String, i64)>(conn)?
    {
        let e = active.entry(u).or_insert(t);
        *e = (*e).max(t);
    }
    let mut member_of: HashMap<String, Vec<String>> = HashMap::new();
    for (u, g) in group_members::table
        .inner_join(groups::table)
        .select((group_members::user_id, groups::name))
        .order((group_members::user_id, groups::name))
        .load::<(String, String)>(conn)?
    {
        member_of.entry(u).or_default().push(g);
    }
    let accounts = people
        .into_iter()
        .map(|(id, username, disabled, created_at, last)| Account {
            username,
            disabled,
            created_at: secs(created_at),
            last_signin_at: last.map(secs),
            last_active_at: active.get(&id).copied().map(secs),
            groups: member_of.remove(&id).unwrap_or_default(),
        })
        .collect();
    // (user, group, client, role, privileged, granted at): a grant names exactly one holder.
    type GrantRow = (Option<String>, Option<String>, String, String, bool, i64);
    let rows: Vec<GrantRow> = role_grants::table
        .inner_join(roles::table)
        .left_join(groups::table.on(role_grants::group_id.eq(groups::id.nullable())))
        .select((
            role_grants::user_id,
            groups::name.nullable(),
            roles::client_id,
            roles::name,
            roles::privileged,
            role_grants::granted_at,
        ))
        .load(conn)?;
    let grants = rows
        .into_iter()
        .filter_map(|(user, group, client_id, role, privileged, at)| {
            let (holder, to_group) = match (user, group) {
                (Some(u), _) => (names.get(&u)?.clone(), false),
                (None, Some(g)) => (g, true),
                (None, None) => return None,
            };
            Some(Grant {
                holder,
                to_group,
                client_id,
                role,
                privileged,
                granted_at: secs(at),
            })
        })
        .collect();
    let uses = role_usage::table
        .select((
            role_usage::user_id,
            role_usage::client_id,
            role_usage::role,
            role_usage::last_used_at,
        ))
        .load::<(String, String, String, i64)>(conn)?
        .into_iter()
        .filter_map(|(u, client_id, role, at)| {
            Some(Use {
                username: names.get(&u)?.clone(),
                client_id,
                role,
                last_used_at: secs(at),
            })
        })
        .collect();
    Ok(Snapshot {
        now: secs(now_micros),
        accounts,
        grants,
        uses,
    })
}
