//! Access control under the risk engine: groups of users, an application's own roles, and who
//! holds them. A user's effective roles for a client are the direct grants plus the grants to
//! the user's groups. Tokens carry them (scope `roles`, `groups`); a client can admit only
//! holders of one of its roles; a privileged role is released only as `flow/enforce.rs`
//! allows (a recent sign-in with a second factor, an account not at risk).

use std::ops::RangeInclusive;

use super::accounts::Actor;
use super::enforce::{require, AccountView, Action, ConsoleRoles, Facts, Requirement, RoleFacts};
use super::{FlowError, Services};
use crate::clock::Timestamp;
use crate::domain::{ClientId, GroupName, RoleName, Username};
use crate::risk::AvailableFactors;
use crate::store::access::{self, Group, Held, Holder, Role};
use crate::store::clients::Client;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{self, new_id, users, DbConn, StoreError, StoreResult};

/// How old a sign-in may be, by default, for a token that carries a privileged role.
pub const PRIVILEGED_MAX_AGE_SECS: i64 = 3600;
/// What a client may set instead: a minute to thirty days.
pub const PRIVILEGED_MAX_AGE_RANGE: RangeInclusive<i64> = 60..=30 * 86_400;

/// The scopes that release the claims (RFC 9068 §2.2.3.1 names both claims).
pub const SCOPE_ROLES: &str = "roles";
pub const SCOPE_GROUPS: &str = "groups";

/// What a user holds for one client, read once per token or code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// The client's roles the user holds, by name, each once (direct or through a group).
    pub roles: Vec<(String, bool)>,
    /// The names of the user's groups.
    pub groups: Vec<String>,
}

impl Access {
    pub fn holds_any(&self) -> bool {
        !self.roles.is_empty()
    }
    pub fn holds_privileged(&self) -> bool {
        self.roles.iter().any(|(_, p)| *p)
    }
    /// The `roles` claim: the names, the privileged ones only when released.
    pub fn role_claim(&self, release_privileged: bool) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(_, p)| release_privileged || !*p)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// The account's console roles (the built-in client `vigil`'s roles it holds, directly or
/// through a group): one indexed query.
pub fn console_of(conn: &mut DbConn, user_id: &str) -> StoreResult<ConsoleRoles> {
    let held = access::held_for_token(conn, user_id, access::CONSOLE_CLIENT)?;
    Ok(ConsoleRoles::from_names(
        held.iter()
            .filter(|h| h.kind == "role")
            .map(|h| h.name.as_str()),
    ))
}

pub async fn console(svc: &Services, user_id: &str) -> Result<ConsoleRoles, FlowError> {
    let uid = user_id.to_owned();
    Ok(svc.db.run(move |c| console_of(c, &uid)).await?)
}

/// (user id, console role) for these users, for the user list.
pub async fn console_holders(
    svc: &Services,
    user_ids: Vec<String>,
) -> Result<Vec<(String, String)>, FlowError> {
    Ok(svc
        .db
        .run(move |c| access::console_holders(c, &user_ids))
        .await?)
}

/// Make a change that may take the console's `admin` role from someone (a revocation, a member
/// leaving, a group removed, an account disabled or deleted): refuse it — and so roll back — if
/// it leaves no active admin where there was one. Counted before and after the write, in the
/// same transaction, under a lock that serialises such changes (a deployment that never had an
/// admin is not stopped by it).
pub(crate) fn keeping_an_admin<T>(
    c: &mut DbConn,
    change: impl FnOnce(&mut DbConn) -> StoreResult<T>,
) -> StoreResult<T> {
    users::lock_admins(c)?;
    let before = users::count_active_admins(c)?;
    let out = change(c)?;
    if before > 0 && users::count_active_admins(c)? < 1 {
        return Err(StoreError::Conflict(
            "This is the last active administrator; promote someone else first.".into(),
        ));
    }
    Ok(out)
}

/// The console's roles are built in: they can be granted, not created or removed.
fn not_console(client_id: &str) -> StoreResult<()> {
    if client_id == access::CONSOLE_CLIENT {
        return Err(StoreError::Conflict(
            "the console's roles (admin, helpdesk, auditor) are built in: grant them, they cannot be added or removed".into(),
        ));
    }
    Ok(())
}

/// Whether a request with these scopes needs the user's access read at all.
pub fn wanted(scopes: &[String], client_requires_role: bool) -> bool {
    client_requires_role || scopes.iter().any(|s| s == SCOPE_ROLES || s == SCOPE_GROUPS)
}

/// The user's roles of `client_id` and groups, in one indexed query.
pub fn for_token(conn: &mut DbConn, user_id: &str, client_id: &str) -> StoreResult<Access> {
    let held = access::held_for_token(conn, user_id, client_id)?;
    Ok(fold(held))
}

fn fold(held: Vec<Held>) -> Access {
    let mut a = Access::default();
    for h in held {
        if h.kind == "group" {
            a.groups.push(h.name);
        } else if !a.roles.iter().any(|(n, _)| *n == h.name) {
            a.roles.push((h.name, h.privileged));
        }
    }
    a.roles.sort();
    a.groups.sort();
    a.groups.dedup();
    a
}

/// The sign-in behind a code or token, as the privileged-role rule weighs it.
pub struct GrantView<'a> {
    pub user_id: &'a str,
    pub acr: &'a str,
    pub amr: &'a str,
    pub auth_time: i64,
    /// The `risk` claim of the sign-in (JSON), for its level.
    pub risk: Option<String>,
}

/// Whether a token for `client` from this grant may carry the user's privileged roles:
/// `flow/enforce.rs` decides (`ReleasePrivileged`: the account not at risk, a second factor —
/// a passkey after a high-risk sign-in — no older than the client's maximum age).
pub fn release_privileged(user: &User, client: &Client, g: &GrantView<'_>, now: i64) -> bool {
    let as_session = Session {
        id: String::new(),
        token_hash: String::new(),
        user_id: g.user_id.to_owned(),
        created_at: g.auth_time,
        last_seen_at: g.auth_time,
        idle_expires_at: i64::MAX,
        expires_at: i64::MAX,
        auth_time: g.auth_time,
        acr: g.acr.to_owned(),
        amr: g.amr.to_owned(),
        device_id: None,
        ip: None,
        user_agent: None,
        revoked_at: None,
        risk: g.risk.clone(),
    };
    let facts = Facts {
        now,
        roles: Some(RoleFacts {
            lacks_required: false,
            privileged: true,
            privileged_max_age_secs: client
                .privileged_max_age_secs
                .unwrap_or(PRIVILEGED_MAX_AGE_SECS),
        }),
        ..Facts::default()
    };
    let account = AccountView {
        user,
        factors: AvailableFactors::default(),
    };
    require(
        &account,
        Some(&as_session),
        &facts,
        Action::ReleasePrivileged,
    ) == Requirement::Allow
}

/// The `roles` and `groups` claims a token with these scopes carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub roles: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
}

impl Claims {
    /// Both claims, for the scopes asked; privileged roles only when released.
    pub fn of(a: &Access, scopes: &[String], release_privileged: bool) -> Claims {
        let has = |x: &str| scopes.iter().any(|s| s == x);
        Claims {
            roles: has(SCOPE_ROLES).then(|| a.role_claim(release_privileged)),
            groups: has(SCOPE_GROUPS).then(|| a.groups.clone()),
        }
    }
    /// Into a JSON object's members (ID token, userinfo, introspection).
    pub fn extend(&self, m: &mut serde_json::Map<String, serde_json::Value>) {
        if let Some(r) = &self.roles {
            m.insert("roles".into(), serde_json::json!(r));
        }
        if let Some(g) = &self.groups {
            m.insert("groups".into(), serde_json::json!(g));
        }
    }
}

/// The claims for a token of `client` from grant `g`: one read of the user's access (or the
/// one the caller already made), and enforcement's word on the privileged roles.
pub fn claims_for(
    conn: &mut DbConn,
    user: &User,
    client: &Client,
    scopes: &[String],
    g: &GrantView<'_>,
    now: i64,
    read: Option<Access>,
) -> StoreResult<Claims> {
    if !scopes.iter().any(|s| s == SCOPE_ROLES || s == SCOPE_GROUPS) {
        return Ok(Claims::default());
    }
    let a = match read {
        Some(a) => a,
        None => for_token(conn, &user.id, &client.id)?,
    };
    let release = a.holds_privileged() && release_privileged(user, client, g, now);
    Ok(Claims::of(&a, scopes, release))
}

/// Least-privilege findings for the whole directory (`vigil access report`, access reviews):
/// a snapshot of who holds what and what was used, through the pure miners of `src/access/`.
pub async fn least_privilege(
    svc: &Services,
    now: Timestamp,
    params: crate::access::Params,
) -> Result<Vec<crate::access::Finding>, FlowError> {
    Ok(svc
        .db
        .run(move |c| {
            let snap = store::usage::snapshot(c, now.micros())?;
            Ok(crate::access::analyse(&snap, &params))
        })
        .await?)
}

// --- groups -------------------------------------------------------------------------------------

fn not_found(what: String) -> impl FnOnce(StoreError) -> FlowError {
    move |e| match e {
        StoreError::NotFound => FlowError::NotFound(what),
        StoreError::Conflict(m) => FlowError::Conflict(m),
        other => FlowError::Store(other),
    }
}

fn group_by_name(c: &mut DbConn, name: &str) -> StoreResult<Group> {
    access::find_group(c, name)?.ok_or(StoreError::NotFound)
}

fn user_by_name(c: &mut DbConn, username: &str) -> StoreResult<users::User> {
    let u = Username::parse(username).map_err(|_| StoreError::NotFound)?;
    users::find_by_username(c, u.as_str())?.ok_or(StoreError::NotFound)
}

pub async fn create_group(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    name: &str,
    description: &str,
) -> Result<Group, FlowError> {
    let name = GroupName::parse(name).map_err(FlowError::Invalid)?;
    let g = Group {
        id: new_id(),
        name: name.as_str().to_owned(),
        description: description.trim().chars().take(500).collect(),
        created_at: now.micros(),
        updated_at: now.micros(),
    };
    let (auditor, actor, g2) = (svc.auditor.clone(), actor.clone(), g.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                access::insert_group(c, &g2)?;
                auditor.record(
                    c,
                    now,
                    actor.event("group.created").target(g2.id.clone()).details(
                        serde_json::json!({ "name": g2.name, "description": g2.description }),
                    ),
                )
            })
        })
        .await
        .map_err(not_found(String::new()))?;
    Ok(g)
}

pub async fn remove_group(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    name: &str,
) -> Result<(), FlowError> {
    let (auditor, actor, n) = (svc.auditor.clone(), actor.clone(), name.to_owned());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let g = group_by_name(c, &n)?;
                keeping_an_admin(c, |c| access::delete_group(c, &g.id))?;
                auditor.record(
                    c,
                    now,
                    actor
                        .event("group.removed")
                        .target(g.id.clone())
                        .details(serde_json::json!({ "name": g.name })),
                )
            })
        })
        .await
        .map_err(not_found(format!("group `{name}`")))
}

/// Add (`add = true`) or remove a member. `Ok(false)`: nothing to do (already so).
pub async fn set_member(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    group: &str,
    username: &str,
    add: bool,
) -> Result<bool, FlowError> {
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    let (gname, uname) = (group.to_owned(), username.to_owned());
    let group_missing = format!("group `{group}` or user `{username}`");
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let u = user_by_name(c, &uname)?;
                change_member(c, &auditor, &actor, now, &gname, &u, add)
            })
        })
        .await
        .map_err(not_found(group_missing))
}

/// [`set_member`] inside the caller's transaction.
pub(crate) fn change_member(
    c: &mut DbConn,
    auditor: &crate::audit::Auditor,
    actor: &Actor,
    now: Timestamp,
    group: &str,
    u: &User,
    add: bool,
) -> StoreResult<bool> {
    let g = group_by_name(c, group)?;
    let changed = if add {
        access::add_member(c, &g.id, &u.id, now.micros())?
    } else {
        keeping_an_admin(c, |c| access::remove_member(c, &g.id, &u.id))?
    };
    if changed {
        let what = if add {
            "group.member_added"
        } else {
            "group.member_removed"
        };
        auditor.record(
            c,
            now,
            actor.event(what).target(g.id.clone()).details(
                serde_json::json!({ "group": g.name, "user": u.id, "username": u.username }),
            ),
        )?;
    }
    Ok(changed)
}

pub async fn list_groups(svc: &Services) -> Result<Vec<(Group, i64)>, FlowError> {
    Ok(svc.db.run(access::list_groups).await?)
}

/// A group, its members (id, username) and the roles granted to it (client id, role).
pub struct GroupView {
    pub group: Group,
    pub members: Vec<(String, String)>,
    pub roles: Vec<(String, String)>,
}

pub async fn group(svc: &Services, id: &str) -> Result<GroupView, FlowError> {
    let id2 = id.to_owned();
    svc.db
        .run(move |c| {
            let group = access::find_group_by_id(c, &id2)?.ok_or(StoreError::NotFound)?;
            let members = access::members(c, &group.id)?;
            let roles = access::roles_of_group(c, &group.id)?;
            Ok(GroupView {
                group,
                members,
                roles,
            })
        })
        .await
        .map_err(not_found("group".into()))
}

// --- roles ------------------------------------------------------------------------------------

pub async fn create_role(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    client_id: &str,
    name: &str,
    privileged: bool,
    description: &str,
) -> Result<Role, FlowError> {
    let client = ClientId::parse(client_id).map_err(FlowError::Invalid)?;
    let name = RoleName::parse(name).map_err(FlowError::Invalid)?;
    let r = Role {
        id: new_id(),
        client_id: client.as_str().to_owned(),
        name: name.as_str().to_owned(),
        description: description.trim().chars().take(500).collect(),
        privileged,
        created_at: now.micros(),
    };
    let (auditor, actor, r2) = (svc.auditor.clone(), actor.clone(), r.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                if !access::client_exists(c, &r2.client_id)? {
                    return Err(StoreError::NotFound);
                }
                not_console(&r2.client_id)?;
                access::insert_role(c, &r2)?;
                auditor.record(
                    c,
                    now,
                    actor.event("role.created").target(r2.client_id.clone()).details(
                        serde_json::json!({ "role": r2.name, "privileged": r2.privileged, "description": r2.description }),
                    ),
                )
            })
        })
        .await
        .map_err(not_found(format!("client `{client_id}`")))?;
    Ok(r)
}

pub async fn remove_role(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    client_id: &str,
    name: &str,
) -> Result<(), FlowError> {
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    let (cid, n) = (client_id.to_owned(), name.to_owned());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let r = access::find_role(c, &cid, &n)?.ok_or(StoreError::NotFound)?;
                not_console(&r.client_id)?;
                access::delete_role(c, &r.id)?;
                auditor.record(
                    c,
                    now,
                    actor
                        .event("role.removed")
                        .target(r.client_id.clone())
                        .details(serde_json::json!({ "role": r.name })),
                )
            })
        })
        .await
        .map_err(not_found(format!("role `{name}` of client `{client_id}`")))
}

/// Who a grant goes to, as an operator names them.
#[derive(Debug, Clone)]
pub enum Grantee {
    User(String),
    Group(String),
    /// A user by id (access reviews hold ids; a rename does not lose the item).
    UserId(String),
}

/// Grant (`grant = true`) or revoke a role. `Ok(false)`: nothing to do (already so).
pub async fn set_grant(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    client_id: &str,
    role: &str,
    to: Grantee,
    grant: bool,
) -> Result<bool, FlowError> {
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    let (cid, rname) = (client_id.to_owned(), role.to_owned());
    let missing = match &to {
        Grantee::User(u) | Grantee::UserId(u) => {
            format!("role `{role}` of client `{client_id}`, or user `{u}`")
        }
        Grantee::Group(g) => format!("role `{role}` of client `{client_id}`, or group `{g}`"),
    };
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                change_grant(c, &auditor, &actor, now, &cid, &rname, &to, grant)
            })
        })
        .await
        .map_err(not_found(missing))
}

/// [`set_grant`] inside the caller's transaction (access reviews apply many at once). A user is
/// named by username or, with `Grantee::UserId`, by id.
#[allow(clippy::too_many_arguments)]
pub(crate) fn change_grant(
    c: &mut DbConn,
    auditor: &crate::audit::Auditor,
    actor: &Actor,
    now: Timestamp,
    client_id: &str,
    role: &str,
    to: &Grantee,
    grant: bool,
) -> StoreResult<bool> {
    let r = access::find_role(c, client_id, role)?.ok_or(StoreError::NotFound)?;
    let grant_id = new_id();
    let (changed, holder) = match to {
        Grantee::User(_) | Grantee::UserId(_) => {
            let u = match to {
                Grantee::UserId(id) => users::find(c, id)?.ok_or(StoreError::NotFound)?,
                Grantee::User(u) | Grantee::Group(u) => user_by_name(c, u)?,
            };
            let changed = if grant {
                access::grant_to_user(c, &grant_id, &r.id, &u.id, now.micros())?
            } else {
                keeping_an_admin(c, |c| access::revoke_from_user(c, &r.id, &u.id))?
            };
            (
                changed,
                serde_json::json!({ "user": u.id, "username": u.username }),
            )
        }
        Grantee::Group(g) => {
            let g = group_by_name(c, g)?;
            let changed = if grant {
                access::grant_to_group(c, &grant_id, &r.id, &g.id, now.micros())?
            } else {
                keeping_an_admin(c, |c| access::revoke_from_group(c, &r.id, &g.id))?
            };
            (
                changed,
                serde_json::json!({ "group": g.id, "group_name": g.name }),
            )
        }
    };
    if changed {
        let what = if grant {
            "role.granted"
        } else {
            "role.revoked"
        };
        let mut details = serde_json::json!({ "role": r.name, "privileged": r.privileged });
        if let (Some(d), Some(h)) = (details.as_object_mut(), holder.as_object()) {
            d.extend(h.clone());
        }
        auditor.record(
            c,
            now,
            actor
                .event(what)
                .target(r.client_id.clone())
                .details(details),
        )?;
    }
    Ok(changed)
}

pub async fn list_roles(svc: &Services, client_id: Option<&str>) -> Result<Vec<Role>, FlowError> {
    let cid = client_id.map(str::to_owned);
    Ok(svc
        .db
        .run(move |c| access::list_roles(c, cid.as_deref()))
        .await?)
}

/// A client's roles, each with its direct holders (users and groups).
pub async fn client_roles(
    svc: &Services,
    client_id: &str,
) -> Result<Vec<(Role, Vec<Holder>)>, FlowError> {
    let cid = client_id.to_owned();
    let (roles, holders) = svc
        .db
        .run(move |c| {
            Ok((
                access::list_roles(c, Some(&cid))?,
                access::holders(c, &cid)?,
            ))
        })
        .await?;
    Ok(roles
        .into_iter()
        .map(|r| {
            let h = holders
                .iter()
                .filter(|(n, _)| *n == r.name)
                .map(|(_, h)| h.clone())
                .collect();
            (r, h)
        })
        .collect())
}

/// A user's groups and effective roles of every client, with where each comes from.
pub struct UserAccess {
    pub groups: Vec<Group>,
    /// (client id, role, the group it comes through; None: granted directly).
    pub roles: Vec<(String, Role, Option<String>)>,
}

pub async fn of_user(svc: &Services, user_id: &str) -> Result<UserAccess, FlowError> {
    let uid = user_id.to_owned();
    Ok(svc
        .db
        .run(move |c| {
            Ok(UserAccess {
                groups: access::groups_of(c, &uid)?,
                roles: access::effective_roles(c, &uid)?,
            })
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(kind: &str, name: &str, privileged: bool, via: Option<&str>) -> Held {
        Held {
            kind: kind.into(),
            name: name.into(),
            privileged,
            via: via.map(str::to_owned),
        }
    }

    #[test]
    fn a_role_held_twice_is_claimed_once_and_privileged_ones_wait_for_release() {
        let a = fold(vec![
            held("role", "reader", false, None),
            held("role", "reader", false, Some("staff")),
            held("role", "approver", true, Some("finance")),
            held("group", "staff", false, None),
            held("group", "finance", false, None),
        ]);
        assert_eq!(
            a.roles,
            vec![("approver".into(), true), ("reader".into(), false)]
        );
        assert_eq!(a.groups, vec!["finance".to_owned(), "staff".to_owned()]);
        assert!(a.holds_any() && a.holds_privileged());
        assert_eq!(a.role_claim(false), vec!["reader".to_owned()]);
        assert_eq!(
            a.role_claim(true),
            vec!["approver".to_owned(), "reader".to_owned()]
        );
    }
}
