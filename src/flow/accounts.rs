//! Account administration shared by the CLI and (later) the admin pages: create, list, disable,
//! set a password. Each change is audited in the same transaction.

use secrecy::{ExposeSecret, SecretString};

use super::{FlowError, Services};
use crate::audit::AuditEvent;
use crate::auth::password::check_policy;
use crate::clock::Timestamp;
use crate::domain::{Email, Username};
use crate::store::users::{self, NewUser, User};
use crate::store::{self, new_id, StoreError};

pub struct NewAccount {
    pub username: String,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub password: SecretString,
}

/// Who is making a change, and from where, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// A user id, or `cli` / `system`.
    pub id: String,
    pub ip: Option<std::net::IpAddr>,
}

impl Actor {
    /// An operator at the command line, or a test.
    pub fn new(id: impl Into<String>) -> Self {
        Actor {
            id: id.into(),
            ip: None,
        }
    }
    /// A signed-in admin acting through the web console.
    pub fn admin(user_id: impl Into<String>, ip: std::net::IpAddr) -> Self {
        Actor {
            id: user_id.into(),
            ip: Some(ip),
        }
    }
    /// An audit event done by this actor: who and from where.
    pub fn event(&self, action: &'static str) -> AuditEvent {
        let e = AuditEvent::new(action).actor(self.id.clone());
        match self.ip {
            Some(ip) => e.ip(ip),
            None => e,
        }
    }
}

pub async fn create(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    a: NewAccount,
) -> Result<User, FlowError> {
    let username = Username::parse(&a.username).map_err(FlowError::Invalid)?;
    let email = Email::parse(&a.email).map_err(FlowError::Invalid)?;
    check_policy(a.password.expose_secret(), username.as_str())?;
    let hash = svc.hasher.hash(a.password).await?;
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    let name = a.name.trim().chars().take(200).collect::<String>();
    let is_admin = a.is_admin;
    let user = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let id = new_id();
                users::insert(
                    c,
                    &NewUser {
                        id: &id,
                        username: username.as_str(),
                        email: email.as_str(),
                        name: &name,
                        password_hash: &hash,
                        is_admin,
                        disabled: false,
                        created_at: now.micros(),
                        updated_at: now.micros(),
                        must_change_password: false,
                    },
                )?;
                auditor.record(
                    c,
                    now,
                    actor.event("user.created").target(id.clone()).details(
                        serde_json::json!({ "username": username.as_str(), "admin": is_admin }),
                    ),
                )?;
                users::find(c, &id)?.ok_or(StoreError::NotFound)
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => FlowError::Conflict(m),
            other => FlowError::Store(other),
        })?;
    Ok(user)
}

pub async fn list(svc: &Services) -> Result<Vec<User>, FlowError> {
    Ok(svc.db.run(users::list).await?)
}

/// The account called `username`, or `NotFound`.
pub async fn find(svc: &Services, username: &str) -> Result<User, FlowError> {
    let name = Username::parse(username).map_err(FlowError::Invalid)?;
    let shown = name.as_str().to_owned();
    svc.db
        .run(move |c| users::find_by_username(c, name.as_str()))
        .await?
        .ok_or_else(|| FlowError::NotFound(format!("user `{shown}`")))
}

/// Disable (or re-enable) an account; disabling also ends its sessions.
pub async fn set_disabled(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    username: &str,
    disabled: bool,
) -> Result<(), FlowError> {
    let user = find(svc, username).await?;
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                users::set_disabled(c, &user.id, disabled, now.micros())?;
                if disabled {
                    store::sessions::revoke_all_for_user(c, &user.id, now.micros())?;
                }
                let action = if disabled {
                    "user.disabled"
                } else {
                    "user.enabled"
                };
                auditor.record(c, now, actor.event(action).target(user.id.clone()))
            })
        })
        .await?;
    Ok(())
}

/// Set a new password (policy-checked); every session of the account ends.
pub async fn set_password(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    username: &str,
    password: SecretString,
) -> Result<(), FlowError> {
    let user = find(svc, username).await?;
    check_policy(password.expose_secret(), &user.username)?;
    let hash = svc.hasher.hash(password).await?;
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                users::set_password_hash(c, &user.id, &hash, now.micros())?;
                store::sessions::revoke_all_for_user(c, &user.id, now.micros())?;
                store::throttle::clear_account(c, &user.username)?;
                auditor.record(
                    c,
                    now,
                    actor.event("user.password_changed").target(user.id.clone()),
                )
            })
        })
        .await?;
    Ok(())
}

/// A signed-in user changes their own password: the current one is checked (a borrowed session
/// cannot lock the owner out), the new one must pass the policy, and every other session ends.
pub async fn change_own_password(
    svc: &Services,
    now: Timestamp,
    user: &User,
    keep_session: &str,
    current: SecretString,
    new: SecretString,
    ip: std::net::IpAddr,
) -> Result<(), FlowError> {
    let checked = svc
        .hasher
        .verify(Some(user.password_hash.clone()), current)
        .await?;
    if !checked.ok {
        return Err(FlowError::Invalid(
            "Your current password is not right.".into(),
        ));
    }
    check_policy(new.expose_secret(), &user.username)?;
    let hash = svc.hasher.hash(new).await?;
    let (auditor, uid, keep) = (
        svc.auditor.clone(),
        user.id.clone(),
        keep_session.to_owned(),
    );
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                users::set_password(c, &uid, &hash, false, now.micros())?;
                let ended = store::sessions::revoke_others_for_user(c, &uid, &keep, now.micros())?;
                auditor.record(
                    c,
                    now,
                    AuditEvent::new("user.password_changed")
                        .actor(uid.clone())
                        .target(uid.clone())
                        .ip(ip)
                        .details(
                            serde_json::json!({ "self_service": true, "sessions_ended": ended }),
                        ),
                )
            })
        })
        .await?;
    Ok(())
}
