//! Provisioning: an HR system or directory (a client marked `--provisioning`, with its own
//! `client_credentials` token carrying the `scim` scope) creates, changes, deactivates and
//! deletes accounts and groups. Every operation asks the one enforcement point
//! (`enforce::require` with the client as subject and `Action::Provision(kind)`) inside the
//! transaction that makes the change, with the target's facts read there too; every change is
//! audited with the client as actor (`client:ID`).
//!
//! ```text
//!  deactivate / delete ──► Provision(Deprovision): allowed for any account (access shrinks);
//!                          containment ends sessions and tokens, apps are told; the last
//!                          active admin stays
//!  create / change ──────► Provision(Change): refused for staff (console roles) and for
//!                          groups that carry a console role — only admins change those
//! ```

use secrecy::{ExposeSecret, SecretString};

use super::accounts::Actor;
use super::containment::{contain, notify_and_wait, Cause, Contained};
use super::enforce::{self, ClientView, Facts, Provision, Refusal, Requirement};
use super::{FlowError, Services};
use crate::auth::password::check_policy;
use crate::clock::Timestamp;
use crate::domain::{Email, GroupName, Username};
use crate::scim::resource::{self, GroupInput, UserInput};
use crate::scim::{patch, ScimError, SCHEMA_GROUP, SCHEMA_USER};
use crate::store::access::{self, Group};
use crate::store::directory::{
    self, Criterion, DirectoryGroup, DirectoryUser, GroupField, Page, Profile, UserField,
};
use crate::store::users::{self, NewUser};
use crate::store::{self, new_id, DbConn, StoreError, StoreResult};

/// What a password hash column holds for an account created without a password: not a PHC
/// string, so no password verifies against it (and the check still costs a full hash).
pub const NO_PASSWORD: &str = "!provisioned-without-password";

/// A client allowed to provision, as established by [`authorize`].
#[derive(Debug, Clone)]
pub struct Provisioner {
    pub client_id: String,
    actor: Actor,
}

/// Why a provisioning request fails.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{}", .0.message())]
    Refused(Refusal),
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// A PATCH that does not apply to the resource as it is now.
    #[error("{}", .0.detail)]
    Invalid(ScimError),
}

/// What replaces a resource: a whole one (PUT), or PATCH operations, applied to the resource as
/// it is inside the transaction that stores the result — so two PATCHes at once never undo each
/// other (a concurrent rename cannot re-enable an account another PATCH just deactivated).
pub enum Replacement<I> {
    Put(I),
    Patch {
        ops: serde_json::Value,
        /// The SCIM base URL the rendered document's references use.
        base: String,
    },
}

impl From<StoreError> for ProvisionError {
    fn from(e: StoreError) -> Self {
        ProvisionError::Flow(match e {
            StoreError::NotFound => FlowError::NotFound("resource".into()),
            StoreError::Conflict(m) => FlowError::Conflict(m),
            other => FlowError::Store(other),
        })
    }
}

type Outcome<T> = Result<T, ProvisionError>;

fn decide(p: &Provisioner, kind: Provision, target_is_staff: bool) -> Outcome<()> {
    let facts = Facts {
        scim_token: true,
        target_is_staff,
        ..Facts::default()
    };
    match enforce::require(
        ClientView {
            id: &p.client_id,
            provisioning: true,
        },
        None,
        &facts,
        action(kind),
    ) {
        Requirement::Allow => Ok(()),
        Requirement::Deny(r) => Err(ProvisionError::Refused(r)),
        _ => Err(ProvisionError::Refused(Refusal::NotPermitted)),
    }
}

fn action(kind: Provision) -> enforce::Action {
    enforce::Action::Provision(kind)
}

/// The client behind a verified access token: still registered, marked for provisioning, and
/// the token its own with the `scim` scope — or refused.
pub async fn authorize(
    svc: &Services,
    now: Timestamp,
    client_id: &str,
    scim_token: bool,
    ip: std::net::IpAddr,
) -> Outcome<Provisioner> {
    let client = svc
        .revocations
        .client(&svc.db, now, client_id)
        .await?
        .ok_or(ProvisionError::Refused(Refusal::Revoked))?;
    let facts = Facts {
        scim_token,
        ..Facts::default()
    };
    let view = ClientView {
        id: &client.id,
        provisioning: client.provisioning,
    };
    match enforce::require(view, None, &facts, action(Provision::Read)) {
        Requirement::Allow => Ok(Provisioner {
            client_id: client.id.clone(),
            actor: Actor {
                id: format!("client:{}", client.id),
                ip: Some(ip),
            },
        }),
        Requirement::Deny(r) => Err(ProvisionError::Refused(r)),
        _ => Err(ProvisionError::Refused(Refusal::NotPermitted)),
    }
}

/// Run `f` in one transaction. A refusal or invalid input it returns is decided before any
/// write, so committing what came before it stores nothing.
async fn in_transaction<T, F>(svc: &Services, f: F) -> Outcome<T>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> StoreResult<Outcome<T>> + Send + 'static,
{
    svc.db.run(move |c| store::transaction(c, f)).await?
}

fn is_staff(c: &mut DbConn, user_id: &str) -> StoreResult<bool> {
    Ok(super::access::console_of(c, user_id)?.any())
}

fn is_console_group(c: &mut DbConn, group_id: &str) -> StoreResult<bool> {
    Ok(access::roles_of_group(c, group_id)?
        .iter()
        .any(|(client, _)| client == access::CONSOLE_CLIENT))
}

// --- users ----------------------------------------------------------------------------------

/// A user with their groups (id, name).
pub type UserView = (DirectoryUser, Vec<(String, String)>);

fn with_groups(c: &mut DbConn, users: Vec<DirectoryUser>) -> StoreResult<Vec<UserView>> {
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let mut memberships = directory::groups_of_users(c, &ids)?;
    Ok(users
        .into_iter()
        .map(|u| {
            let mut mine = Vec::new();
            memberships.retain(|(uid, gid, name)| {
                if *uid == u.id {
                    mine.push((gid.clone(), name.clone()));
                    false
                } else {
                    true
                }
            });
            (u, mine)
        })
        .collect())
}

pub async fn list_users(
    svc: &Services,
    _p: &Provisioner,
    filter: Criterion<UserField>,
    offset: i64,
    limit: i64,
) -> Outcome<Page<UserView>> {
    Ok(svc
        .db
        .run(move |c| {
            let page = directory::find_users(c, &filter, offset, limit)?;
            Ok(Page {
                total: page.total,
                items: with_groups(c, page.items)?,
            })
        })
        .await?)
}

pub async fn user(svc: &Services, _p: &Provisioner, id: &str) -> Outcome<UserView> {
    let id = id.to_owned();
    Ok(svc
        .db
        .run(move |c| {
            let u = directory::user(c, &id)?.ok_or(StoreError::NotFound)?;
            Ok(with_groups(c, vec![u])?.remove(0))
        })
        .await?)
}

/// The profile an input describes, validated like every other way of naming an account.
fn profile(input: &UserInput) -> Result<Profile, FlowError> {
    let username = Username::parse(&input.username).map_err(FlowError::Invalid)?;
    let email = match &input.email {
        Some(e) => Email::parse(e)
            .map_err(FlowError::Invalid)?
            .as_str()
            .to_owned(),
        None => String::new(),
    };
    // Not derived from the given and family names: what a client removes stays removed.
    let name = input.display_name.clone().unwrap_or_default();
    Ok(Profile {
        username: username.as_str().to_owned(),
        email,
        name,
        external_id: input.external_id.clone(),
        given_name: input.given_name.clone(),
        family_name: input.family_name.clone(),
    })
}

/// Check and hash a password a provisioning client sets (the same policy as everywhere).
async fn hash(
    svc: &Services,
    password: Option<SecretString>,
    username: &str,
) -> Result<Option<String>, FlowError> {
    match password {
        None => Ok(None),
        Some(p) => {
            check_policy(p.expose_secret(), username)?;
            super::breached::refuse_breached(svc, p.expose_secret()).await?;
            Ok(Some(svc.hasher.hash(p).await?))
        }
    }
}

pub async fn create_user(
    svc: &Services,
    p: &Provisioner,
    now: Timestamp,
    input: UserInput,
) -> Outcome<UserView> {
    let prof = profile(&input)?;
    let hash = hash(svc, input.password, &prof.username).await?;
    let (auditor, who, p2) = (svc.auditor.clone(), p.actor.clone(), p.clone());
    let active = input.active.unwrap_or(true);
    let id = new_id();
    let id2 = id.clone();
    in_transaction(svc, move |c| {
        if let Err(e) = decide(&p2, Provision::Change, false) {
            return Ok(Err(e));
        }
        users::insert(
            c,
            &NewUser {
                id: &id2,
                username: &prof.username,
                email: &prof.email,
                name: &prof.name,
                password_hash: hash.as_deref().unwrap_or(NO_PASSWORD),
                disabled: !active,
                created_at: now.micros(),
                updated_at: now.micros(),
                must_change_password: false,
            },
        )?;
        directory::set_profile(c, &id2, &prof, now.micros())?;
        auditor.record(
            c,
            now,
            who.event("user.created")
                .target(id2.clone())
                .details(serde_json::json!({
                    "username": prof.username, "external_id": prof.external_id,
                    "active": active, "password_set": hash.is_some(), "via": "scim",
                })),
        )?;
        Ok(Ok(()))
    })
    .await?;
    user(svc, p, &id).await
}

/// Replace a user with a whole resource (PUT) or apply a PATCH to them. Only turning the
/// account inactive is a de-provisioning; anything else is a change.
pub async fn replace_user(
    svc: &Services,
    p: &Provisioner,
    now: Timestamp,
    id: &str,
    mut with: Replacement<UserInput>,
) -> Outcome<UserView> {
    // The password is hashed before the transaction (it is slow); a PATCH's comes from its
    // operations only (the document never holds one), so a first application finds it.
    let (password, username) = match &mut with {
        Replacement::Put(input) => (input.password.take(), input.username.clone()),
        Replacement::Patch { ops, base } => {
            let (u, groups) = user(svc, p, id).await?;
            let input = patched(base, &u, &groups, ops)?;
            (input.password, input.username)
        }
    };
    let hash = hash(svc, password, &username.to_lowercase()).await?;
    let (auditor, who, p2, id2) = (
        svc.auditor.clone(),
        p.actor.clone(),
        p.clone(),
        id.to_owned(),
    );
    let contained =
        in_transaction(svc, move |c| {
            let before = directory::user(c, &id2)?.ok_or(StoreError::NotFound)?;
            let input = match with {
                Replacement::Put(input) => input,
                Replacement::Patch { ops, base } => {
                    let (_, groups) = with_groups(c, vec![before.clone()])?.remove(0);
                    match patched(&base, &before, &groups, &ops) {
                        Ok(i) => i,
                        Err(e) => return Ok(Err(e)),
                    }
                }
            };
            let prof = match profile(&input) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e.into())),
            };
            // A replace that leaves `active` out keeps the account's state: it must not re-enable
            // a de-provisioned account by omission.
            let active = input.active.unwrap_or(!before.disabled);
            let same_profile = before.username == prof.username
                && before.email == prof.email
                && before.name == prof.name
                && before.external_id == prof.external_id
                && before.given_name == prof.given_name
                && before.family_name == prof.family_name;
            let enabling = active && before.disabled;
            let disabling = !active && !before.disabled;
            let kind = if !same_profile || hash.is_some() || enabling {
                Provision::Change
            } else if disabling {
                Provision::Deprovision
            } else {
                Provision::Read
            };
            if let Err(e) = decide(&p2, kind, is_staff(c, &id2)?) {
                return Ok(Err(e));
            }
            let mut contained = Contained::default();
            if !same_profile {
                directory::set_profile(c, &id2, &prof, now.micros())?;
                auditor.record(
                c,
                now,
                who.event("user.updated").target(id2.clone()).details(serde_json::json!({
                    "username": prof.username, "external_id": prof.external_id, "via": "scim",
                })),
            )?;
            }
            if let Some(h) = &hash {
                users::set_password(c, &id2, h, false, now.micros())?;
                contained = contain(c, &auditor, &who, now, &id2, Cause::AdminReset, None)?;
                store::throttle::clear_account(c, &prof.username)?;
                auditor.record(
                    c,
                    now,
                    who.event("user.password_changed").target(id2.clone()),
                )?;
            }
            if enabling || disabling {
                super::access::keeping_an_admin(c, |c| {
                    users::set_disabled(c, &id2, !active, now.micros())
                })?;
                if disabling {
                    contained = contain(c, &auditor, &who, now, &id2, Cause::Disabled, None)?;
                }
                let action = if active {
                    "user.enabled"
                } else {
                    "user.disabled"
                };
                auditor.record(c, now, who.event(action).target(id2.clone()))?;
            }
            Ok(Ok(contained))
        })
        .await?;
    notify_and_wait(svc, now, &contained).await;
    user(svc, p, id).await
}

/// A PATCH applied to the user as SCIM renders them, read back like a PUT.
fn patched(
    base: &str,
    u: &DirectoryUser,
    groups: &[(String, String)],
    ops: &serde_json::Value,
) -> Outcome<UserInput> {
    let mut doc = resource::user(base, u, groups);
    patch::apply(&mut doc, ops, SCHEMA_USER).map_err(ProvisionError::Invalid)?;
    resource::patched_user_input(&doc).map_err(ProvisionError::Invalid)
}

/// Delete an account (containment first: its grants are revoked, apps are told).
pub async fn delete_user(svc: &Services, p: &Provisioner, now: Timestamp, id: &str) -> Outcome<()> {
    let (auditor, who, p2, id2) = (
        svc.auditor.clone(),
        p.actor.clone(),
        p.clone(),
        id.to_owned(),
    );
    let contained = in_transaction(svc, move |c| {
        let u = directory::user(c, &id2)?.ok_or(StoreError::NotFound)?;
        if let Err(e) = decide(&p2, Provision::Deprovision, is_staff(c, &id2)?) {
            return Ok(Err(e));
        }
        let contained = contain(c, &auditor, &who, now, &id2, Cause::Disabled, None)?;
        super::access::keeping_an_admin(c, |c| users::delete(c, &id2))?;
        auditor.record(
            c,
            now,
            who.event("user.deleted")
                .target(id2.clone())
                .details(serde_json::json!({
                    "username": u.username, "email": u.email, "via": "scim",
                })),
        )?;
        Ok(Ok(contained))
    })
    .await?;
    notify_and_wait(svc, now, &contained).await;
    Ok(())
}

// --- groups ---------------------------------------------------------------------------------

/// A group with its members (user id, username) when they were asked for.
pub type GroupView = (DirectoryGroup, Option<Vec<(String, String)>>);

fn with_members(
    c: &mut DbConn,
    groups: Vec<DirectoryGroup>,
    members: bool,
) -> StoreResult<Vec<GroupView>> {
    if !members {
        return Ok(groups.into_iter().map(|g| (g, None)).collect());
    }
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let all = directory::members_of_groups(c, &ids)?;
    Ok(groups
        .into_iter()
        .map(|g| {
            let ms = all
                .iter()
                .filter(|(gid, _, _)| *gid == g.id)
                .map(|(_, uid, name)| (uid.clone(), name.clone()))
                .collect();
            (g, Some(ms))
        })
        .collect())
}

pub async fn list_groups(
    svc: &Services,
    _p: &Provisioner,
    filter: Criterion<GroupField>,
    offset: i64,
    limit: i64,
    members: bool,
) -> Outcome<Page<GroupView>> {
    Ok(svc
        .db
        .run(move |c| {
            let page = directory::find_groups(c, &filter, offset, limit)?;
            Ok(Page {
                total: page.total,
                items: with_members(c, page.items, members)?,
            })
        })
        .await?)
}

pub async fn group(
    svc: &Services,
    _p: &Provisioner,
    id: &str,
    members: bool,
) -> Outcome<GroupView> {
    let id = id.to_owned();
    Ok(svc
        .db
        .run(move |c| {
            let g = directory::group(c, &id)?.ok_or(StoreError::NotFound)?;
            Ok(with_members(c, vec![g], members)?.remove(0))
        })
        .await?)
}

/// Refuse member ids that name no user (a 400 the client can act on, not a silent drop).
fn check_members(c: &mut DbConn, ids: &[String]) -> StoreResult<Result<(), String>> {
    let found = directory::existing_users(c, ids)?;
    Ok(match ids.iter().find(|i| !found.contains(i)) {
        Some(missing) => Err(missing.clone()),
        None => Ok(()),
    })
}

fn unknown_member(id: &str) -> ProvisionError {
    ProvisionError::Flow(FlowError::Invalid(format!("no user has the id `{id}`")))
}

pub async fn create_group(
    svc: &Services,
    p: &Provisioner,
    now: Timestamp,
    input: GroupInput,
) -> Outcome<GroupView> {
    let name = GroupName::parse(&input.display_name).map_err(FlowError::Invalid)?;
    let (auditor, who, p2) = (svc.auditor.clone(), p.actor.clone(), p.clone());
    let id = new_id();
    let id2 = id.clone();
    in_transaction(svc, move |c| {
        if let Err(e) = decide(&p2, Provision::Change, false) {
            return Ok(Err(e));
        }
        if let Err(m) = check_members(c, &input.members)? {
            return Ok(Err(unknown_member(&m)));
        }
        access::insert_group(
            c,
            &Group {
                id: id2.clone(),
                name: name.as_str().to_owned(),
                description: String::new(),
                created_at: now.micros(),
                updated_at: now.micros(),
            },
        )?;
        directory::set_group(
            c,
            &id2,
            name.as_str(),
            input.external_id.as_deref(),
            now.micros(),
        )?;
        for uid in &input.members {
            access::add_member(c, &id2, uid, now.micros())?;
        }
        auditor.record(
            c,
            now,
            who.event("group.created")
                .target(id2.clone())
                .details(serde_json::json!({
                    "name": name.as_str(), "external_id": input.external_id,
                    "members": input.members, "via": "scim",
                })),
        )?;
        Ok(Ok(()))
    })
    .await?;
    group(svc, p, &id, true).await
}

/// Replace a group (PUT) or apply a PATCH to it: name, external id, and members — the
/// difference is applied, each member added or removed audited.
pub async fn replace_group(
    svc: &Services,
    p: &Provisioner,
    now: Timestamp,
    id: &str,
    with: Replacement<GroupInput>,
) -> Outcome<GroupView> {
    let (auditor, who, p2, id2) = (
        svc.auditor.clone(),
        p.actor.clone(),
        p.clone(),
        id.to_owned(),
    );
    in_transaction(svc, move |c| {
        let before = directory::group(c, &id2)?.ok_or(StoreError::NotFound)?;
        let had: Vec<(String, String)> =
            directory::members_of_groups(c, std::slice::from_ref(&id2))?
                .into_iter()
                .map(|(_, uid, name)| (uid, name))
                .collect();
        let input = match with {
            Replacement::Put(input) => input,
            Replacement::Patch { ops, base } => {
                let mut doc = resource::group(&base, &before, Some(&had));
                let read = patch::apply(&mut doc, &ops, SCHEMA_GROUP)
                    .and_then(|()| resource::group_input(&doc));
                match read {
                    Ok(i) => i,
                    Err(e) => return Ok(Err(ProvisionError::Invalid(e))),
                }
            }
        };
        let name = match GroupName::parse(&input.display_name) {
            Ok(n) => n,
            Err(m) => return Ok(Err(FlowError::Invalid(m).into())),
        };
        let had: Vec<String> = had.into_iter().map(|(uid, _)| uid).collect();
        let added: Vec<String> = input
            .members
            .iter()
            .filter(|m| !had.contains(m))
            .cloned()
            .collect();
        let removed: Vec<String> = had
            .iter()
            .filter(|m| !input.members.contains(m))
            .cloned()
            .collect();
        let renamed = before.name != name.as_str() || before.external_id != input.external_id;
        // A console group is the admins' alone to change, removals included (they can lock
        // the console out).
        let kind = if !renamed && added.is_empty() && removed.is_empty() {
            Provision::Read
        } else {
            Provision::Change
        };
        if let Err(e) = decide(&p2, kind, is_console_group(c, &id2)?) {
            return Ok(Err(e));
        }
        if let Err(m) = check_members(c, &added)? {
            return Ok(Err(unknown_member(&m)));
        }
        if renamed {
            directory::set_group(
                c,
                &id2,
                name.as_str(),
                input.external_id.as_deref(),
                now.micros(),
            )?;
            auditor.record(
                c,
                now,
                who.event("group.renamed")
                    .target(id2.clone())
                    .details(serde_json::json!({
                        "from": before.name, "name": name.as_str(),
                        "external_id": input.external_id, "via": "scim",
                    })),
            )?;
        }
        for (uids, action) in [
            (&added, "group.member_added"),
            (&removed, "group.member_removed"),
        ] {
            for uid in uids {
                if action == "group.member_added" {
                    access::add_member(c, &id2, uid, now.micros())?;
                } else {
                    access::remove_member(c, &id2, uid)?;
                }
                auditor.record(
                    c,
                    now,
                    who.event(action).target(id2.clone()).details(
                        serde_json::json!({ "group": name.as_str(), "user": uid, "via": "scim" }),
                    ),
                )?;
            }
        }
        let members_changed = !added.is_empty() || !removed.is_empty();
        if members_changed && !renamed {
            directory::touch_group(c, &id2, now.micros())?;
        }
        Ok(Ok(()))
    })
    .await?;
    group(svc, p, id, true).await
}

pub async fn delete_group(
    svc: &Services,
    p: &Provisioner,
    now: Timestamp,
    id: &str,
) -> Outcome<()> {
    let (auditor, who, p2, id2) = (
        svc.auditor.clone(),
        p.actor.clone(),
        p.clone(),
        id.to_owned(),
    );
    in_transaction(svc, move |c| {
        let g = directory::group(c, &id2)?.ok_or(StoreError::NotFound)?;
        // Deleting a console group could take the console from its admins: theirs to do.
        let console = is_console_group(c, &id2)?;
        let kind = if console {
            Provision::Change
        } else {
            Provision::Deprovision
        };
        if let Err(e) = decide(&p2, kind, console) {
            return Ok(Err(e));
        }
        access::delete_group(c, &id2)?;
        auditor.record(
            c,
            now,
            who.event("group.removed")
                .target(id2.clone())
                .details(serde_json::json!({ "name": g.name, "via": "scim" })),
        )?;
        Ok(Ok(()))
    })
    .await
}
