//! Groups, client roles and their grants (the model of `flow::access`).

use diesel::prelude::*;
use diesel::sql_query;
use diesel::sql_types::{Bool, Nullable, Text};

use super::schema::{clients, group_members, groups, role_grants, roles, users};
use super::{numbered, DbConn, StoreError, StoreResult};

/// vigil's own console: a built-in client (migration `console_roles`) whose roles are granted
/// like any application's.
pub const CONSOLE_CLIENT: &str = "vigil";
pub const CONSOLE_ADMIN_ROLE_ID: &str = "vigil-console-admin";

#[derive(Queryable, Selectable, Insertable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = groups)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = roles)]
pub struct Role {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub description: String,
    pub privileged: bool,
    pub created_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = role_grants)]
struct NewGrant<'a> {
    id: &'a str,
    role_id: &'a str,
    user_id: Option<&'a str>,
    group_id: Option<&'a str>,
    granted_at: i64,
}

/// Who holds a role: a user directly, or a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    User { id: String, username: String },
    Group { id: String, name: String },
}

fn conflict(what: String) -> impl FnOnce(diesel::result::Error) -> StoreError {
    move |e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(what),
        other => other,
    }
}

// --- groups -------------------------------------------------------------------------------------

pub fn insert_group(conn: &mut DbConn, g: &Group) -> StoreResult<()> {
    diesel::insert_into(groups::table)
        .values(g)
        .execute(conn)
        .map_err(conflict(format!("group `{}` already exists", g.name)))?;
    Ok(())
}

pub fn find_group(conn: &mut DbConn, name: &str) -> StoreResult<Option<Group>> {
    Ok(groups::table
        .filter(groups::name.eq(name))
        .select(Group::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_group_by_id(conn: &mut DbConn, id: &str) -> StoreResult<Option<Group>> {
    Ok(groups::table
        .find(id)
        .select(Group::as_select())
        .first(conn)
        .optional()?)
}

/// Every group with its number of members, by name.
pub fn list_groups(conn: &mut DbConn) -> StoreResult<Vec<(Group, i64)>> {
    let all: Vec<Group> = groups::table
        .order(groups::name.asc())
        .select(Group::as_select())
        .load(conn)?;
    let counts: Vec<(String, i64)> = group_members::table
        .group_by(group_members::group_id)
        .select((group_members::group_id, diesel::dsl::count_star()))
        .load(conn)?;
    let counts: std::collections::HashMap<String, i64> = counts.into_iter().collect();
    Ok(all
        .into_iter()
        .map(|g| {
            let n = counts.get(&g.id).copied().unwrap_or(0);
            (g, n)
        })
        .collect())
}

/// Remove a group: its memberships and grants go with it (foreign keys cascade).
pub fn delete_group(conn: &mut DbConn, id: &str) -> StoreResult<()> {
    // SQLite enforces the cascade only with foreign keys on; delete the dependants explicitly
    // so both backends behave the same whatever the connection's settings.
    diesel::delete(group_members::table.filter(group_members::group_id.eq(id))).execute(conn)?;
    diesel::delete(role_grants::table.filter(role_grants::group_id.eq(id))).execute(conn)?;
    match diesel::delete(groups::table.find(id)).execute(conn)? {
        1 => Ok(()),
        _ => Err(StoreError::NotFound),
    }
}

pub fn rename_group(
    conn: &mut DbConn,
    id: &str,
    name: &str,
    description: &str,
    now: i64,
) -> StoreResult<()> {
    let n = diesel::update(groups::table.find(id))
        .set((
            groups::name.eq(name),
            groups::description.eq(description),
            groups::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(conflict(format!("group `{name}` already exists")))?;
    match n {
        1 => Ok(()),
        _ => Err(StoreError::NotFound),
    }
}

/// Add a member; `false` when the user already was one.
pub fn add_member(conn: &mut DbConn, group_id: &str, user_id: &str, now: i64) -> StoreResult<bool> {
    let exists = group_members::table
        .find((group_id, user_id))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if exists {
        return Ok(false);
    }
    diesel::insert_into(group_members::table)
        .values((
            group_members::group_id.eq(group_id),
            group_members::user_id.eq(user_id),
            group_members::added_at.eq(now),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Remove a member; `false` when the user was not one.
pub fn remove_member(conn: &mut DbConn, group_id: &str, user_id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(group_members::table.find((group_id, user_id))).execute(conn)? == 1)
}

/// The members of a group as (user id, username), by username.
pub fn members(conn: &mut DbConn, group_id: &str) -> StoreResult<Vec<(String, String)>> {
    Ok(group_members::table
        .inner_join(users::table)
        .filter(group_members::group_id.eq(group_id))
        .order(users::username.asc())
        .select((users::id, users::username))
        .load(conn)?)
}

/// The groups a user belongs to, by name.
pub fn groups_of(conn: &mut DbConn, user_id: &str) -> StoreResult<Vec<Group>> {
    Ok(group_members::table
        .inner_join(groups::table)
        .filter(group_members::user_id.eq(user_id))
        .order(groups::name.asc())
        .select(Group::as_select())
        .load(conn)?)
}

// --- roles ------------------------------------------------------------------------------------

pub fn insert_role(conn: &mut DbConn, r: &Role) -> StoreResult<()> {
    diesel::insert_into(roles::table)
        .values(r)
        .execute(conn)
        .map_err(conflict(format!(
            "client `{}` already has a role `{}`",
            r.client_id, r.name
        )))?;
    Ok(())
}

pub fn find_role(conn: &mut DbConn, client_id: &str, name: &str) -> StoreResult<Option<Role>> {
    Ok(roles::table
        .filter(roles::client_id.eq(client_id))
        .filter(roles::name.eq(name))
        .select(Role::as_select())
        .first(conn)
        .optional()?)
}

/// A client's roles by name, or every client's (by client, then name).
pub fn list_roles(conn: &mut DbConn, client_id: Option<&str>) -> StoreResult<Vec<Role>> {
    let mut q = roles::table.into_boxed();
    if let Some(c) = client_id {
        q = q.filter(roles::client_id.eq(c.to_owned()));
    }
    Ok(q.order((roles::client_id.asc(), roles::name.asc()))
        .select(Role::as_select())
        .load(conn)?)
}

pub fn delete_role(conn: &mut DbConn, id: &str) -> StoreResult<()> {
    diesel::delete(role_grants::table.filter(role_grants::role_id.eq(id))).execute(conn)?;
    if let Some(r) = roles::table
        .find(id)
        .select(Role::as_select())
        .first(conn)
        .optional()?
    {
        // A role made again under the same name starts unused.
        super::usage::forget_role(conn, &r.client_id, &r.name)?;
    }
    match diesel::delete(roles::table.find(id)).execute(conn)? {
        1 => Ok(()),
        _ => Err(StoreError::NotFound),
    }
}

/// Grant a role to a user (`Ok(true)`) unless they already hold it directly (`Ok(false)`).
pub fn grant_to_user(
    conn: &mut DbConn,
    id: &str,
    role_id: &str,
    user_id: &str,
    now: i64,
) -> StoreResult<bool> {
    insert_grant(
        conn,
        NewGrant {
            id,
            role_id,
            user_id: Some(user_id),
            group_id: None,
            granted_at: now,
        },
    )
}

/// Grant a role to a group (`Ok(true)`) unless it already holds it (`Ok(false)`).
pub fn grant_to_group(
    conn: &mut DbConn,
    id: &str,
    role_id: &str,
    group_id: &str,
    now: i64,
) -> StoreResult<bool> {
    insert_grant(
        conn,
        NewGrant {
            id,
            role_id,
            user_id: None,
            group_id: Some(group_id),
            granted_at: now,
        },
    )
}

/// Insert a grant unless its holder (the one of user and group that is set) already has it.
fn insert_grant(conn: &mut DbConn, g: NewGrant<'_>) -> StoreResult<bool> {
    let mut q = role_grants::table
        .filter(role_grants::role_id.eq(g.role_id))
        .into_boxed();
    q = match (g.user_id, g.group_id) {
        (Some(u), _) => q.filter(role_grants::user_id.eq(u.to_owned())),
        (None, Some(gr)) => q.filter(role_grants::group_id.eq(gr.to_owned())),
        (None, None) => return Err(StoreError::Conflict("a grant needs a holder".into())),
    };
    if q.count().get_result::<i64>(conn)? > 0 {
        return Ok(false);
    }
    diesel::insert_into(role_grants::table)
        .values(g)
        .execute(conn)?;
    Ok(true)
}

pub fn revoke_from_user(conn: &mut DbConn, role_id: &str, user_id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(
        role_grants::table
            .filter(role_grants::role_id.eq(role_id))
            .filter(role_grants::user_id.eq(user_id)),
    )
    .execute(conn)?
        > 0)
}

pub fn revoke_from_group(conn: &mut DbConn, role_id: &str, group_id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(
        role_grants::table
            .filter(role_grants::role_id.eq(role_id))
            .filter(role_grants::group_id.eq(group_id)),
    )
    .execute(conn)?
        > 0)
}

/// The roles granted to a group: (client id, role name), by client and role.
pub fn roles_of_group(conn: &mut DbConn, group_id: &str) -> StoreResult<Vec<(String, String)>> {
    Ok(role_grants::table
        .inner_join(roles::table)
        .filter(role_grants::group_id.eq(group_id))
        .order((roles::client_id.asc(), roles::name.asc()))
        .select((roles::client_id, roles::name))
        .load(conn)?)
}

/// The direct holders of each of a client's roles: (role name, holder), by role.
pub fn holders(conn: &mut DbConn, client_id: &str) -> StoreResult<Vec<(String, Holder)>> {
    let direct: Vec<(String, String, String)> = role_grants::table
        .inner_join(roles::table)
        .inner_join(users::table.on(users::id.nullable().eq(role_grants::user_id)))
        .filter(roles::client_id.eq(client_id))
        .select((roles::name, users::id, users::username))
        .load(conn)?;
    let through: Vec<(String, String, String)> = role_grants::table
        .inner_join(roles::table)
        .inner_join(groups::table.on(groups::id.nullable().eq(role_grants::group_id)))
        .filter(roles::client_id.eq(client_id))
        .select((roles::name, groups::id, groups::name))
        .load(conn)?;
    let mut all: Vec<(String, Holder)> = direct
        .into_iter()
        .map(|(r, id, username)| (r, Holder::User { id, username }))
        .chain(
            through
                .into_iter()
                .map(|(r, id, name)| (r, Holder::Group { id, name })),
        )
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(all)
}

/// One role a user holds for a client, and through which group (None: granted directly).
#[derive(QueryableByName, Clone, Debug, PartialEq, Eq)]
pub struct Held {
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Bool)]
    pub privileged: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub via: Option<String>,
}

/// A user's roles of one client (direct and through groups, `kind` = `role`) and the names of
/// the user's groups (`kind` = `group`), in one query: what a token carries is computed at
/// every issuance, so it is one round trip driven by the user's own index entries (a role
/// granted to 10,000 users is never scanned for one of them).
pub fn held_for_token(conn: &mut DbConn, user_id: &str, client_id: &str) -> StoreResult<Vec<Held>> {
    const SQL: &str = "\
        SELECT 'role' AS kind, r.name AS name, r.privileged AS privileged, NULL AS via \
          FROM role_grants rg JOIN roles r ON r.id = rg.role_id \
         WHERE rg.user_id = ? AND r.client_id = ? \
        UNION ALL \
        SELECT 'role', r.name, r.privileged, g.name \
          FROM group_members m JOIN groups g ON g.id = m.group_id \
          JOIN role_grants rg ON rg.group_id = m.group_id JOIN roles r ON r.id = rg.role_id \
         WHERE m.user_id = ? AND r.client_id = ? \
        UNION ALL \
        SELECT 'group', g.name, FALSE, NULL \
          FROM group_members m JOIN groups g ON g.id = m.group_id \
         WHERE m.user_id = ?";
    Ok(match conn {
        DbConn::Sqlite(c) => sql_query(SQL)
            .bind::<Text, _>(user_id)
            .bind::<Text, _>(client_id)
            .bind::<Text, _>(user_id)
            .bind::<Text, _>(client_id)
            .bind::<Text, _>(user_id)
            .load(c)?,
        DbConn::Postgres(c) => sql_query(numbered(SQL))
            .bind::<Text, _>(user_id)
            .bind::<Text, _>(client_id)
            .bind::<Text, _>(user_id)
            .bind::<Text, _>(client_id)
            .bind::<Text, _>(user_id)
            .load(c)?,
    })
}

/// Every role a user holds, of every client: (client id, role, where from), for the console
/// and the CLI (not on a hot path).
pub fn effective_roles(
    conn: &mut DbConn,
    user_id: &str,
) -> StoreResult<Vec<(String, Role, Option<String>)>> {
    let direct: Vec<Role> = role_grants::table
        .inner_join(roles::table)
        .filter(role_grants::user_id.eq(user_id))
        .select(Role::as_select())
        .load(conn)?;
    let through: Vec<(Role, String)> = group_members::table
        .inner_join(groups::table)
        .inner_join(
            role_grants::table.on(role_grants::group_id.eq(group_members::group_id.nullable())),
        )
        .inner_join(roles::table.on(roles::id.eq(role_grants::role_id)))
        .filter(group_members::user_id.eq(user_id))
        .select((Role::as_select(), groups::name))
        .load(conn)?;
    let mut all: Vec<(String, Role, Option<String>)> = direct
        .into_iter()
        .map(|r| (r.client_id.clone(), r, None))
        .chain(
            through
                .into_iter()
                .map(|(r, g)| (r.client_id.clone(), r, Some(g))),
        )
        .collect();
    all.sort_by(|a, b| (&a.0, &a.1.name, &a.2).cmp(&(&b.0, &b.1.name, &b.2)));
    Ok(all)
}

/// Which of these users hold which console role (directly or through a group): (user id, role
/// name), for the user list.
pub fn console_holders(
    conn: &mut DbConn,
    user_ids: &[String],
) -> StoreResult<Vec<(String, String)>> {
    let mut direct: Vec<(Option<String>, String)> = role_grants::table
        .inner_join(roles::table)
        .filter(roles::client_id.eq(CONSOLE_CLIENT))
        .filter(role_grants::user_id.eq_any(user_ids))
        .select((role_grants::user_id, roles::name))
        .load(conn)?;
    let through: Vec<(String, String)> = group_members::table
        .inner_join(
            role_grants::table.on(role_grants::group_id.eq(group_members::group_id.nullable())),
        )
        .inner_join(roles::table.on(roles::id.eq(role_grants::role_id)))
        .filter(roles::client_id.eq(CONSOLE_CLIENT))
        .filter(group_members::user_id.eq_any(user_ids))
        .select((group_members::user_id, roles::name))
        .load(conn)?;
    direct.extend(through.into_iter().map(|(u, r)| (Some(u), r)));
    let mut all: Vec<(String, String)> = direct
        .into_iter()
        .filter_map(|(u, r)| u.map(|u| (u, r)))
        .collect();
    all.sort();
    all.dedup();
    Ok(all)
}

/// Whether the client exists (roles can only be made for one).
pub fn client_exists(conn: &mut DbConn, client_id: &str) -> StoreResult<bool> {
    Ok(clients::table
        .find(client_id)
        .count()
        .get_result::<i64>(conn)?
        > 0)
}
