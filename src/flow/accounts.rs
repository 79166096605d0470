//! Account administration shared by the CLI and the admin pages: create, list, disable, set a
//! password, and (admin console) reset, unlock, remove factors, end sessions, change the role,
//! delete. Each change is audited in the same transaction, with the admin as actor.

use secrecy::{ExposeSecret, SecretString};

use super::access::keeping_an_admin;
use super::containment::{contain, notify, notify_and_wait, set_risk, Cause, Contained};
use super::enforce::AccountRisk;
use super::{FlowError, Services};
use crate::audit::AuditEvent;
use crate::auth::password::check_policy;
use crate::clock::Timestamp;
use crate::domain::{Email, Username};
use crate::store::users::{self, NewUser, User};
use crate::store::{self, new_id, DbConn, StoreError, StoreResult};

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
    /// A signed-in person acting on their own account (recorded as an admin's action is).
    pub fn user(user_id: impl Into<String>, ip: std::net::IpAddr) -> Self {
        Actor::admin(user_id, ip)
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
    create_with(svc, actor, now, a, false).await
}

/// `create`, optionally with a temporary password the user must replace at first sign-in.
async fn create_with(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    a: NewAccount,
    must_change_password: bool,
) -> Result<User, FlowError> {
    let username = Username::parse(&a.username).map_err(FlowError::Invalid)?;
    let email = Email::parse(&a.email).map_err(FlowError::Invalid)?;
    check_policy(a.password.expose_secret(), username.as_str()).map_err(weak)?;
    super::breached::refuse_breached(svc, a.password.expose_secret())
        .await
        .map_err(weak)?;
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
                        disabled: false,
                        created_at: now.micros(),
                        updated_at: now.micros(),
                        must_change_password,
                    },
                )?;
                if is_admin {
                    // The console's admin role, as `vigil role grant vigil admin` would give it.
                    store::access::grant_to_user(
                        c,
                        &new_id(),
                        store::access::CONSOLE_ADMIN_ROLE_ID,
                        &id,
                        now.micros(),
                    )?;
                }
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
    let uid = user.id.clone();
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    let contained = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                set_disabled_in(c, &auditor, &actor, now, &user.id, disabled)
            })
        })
        .await?;
    notify_and_wait(svc, now, &contained).await;
    if disabled {
        super::notices::send(svc, now, &uid, super::notices::Notice::Locked).await;
    }
    Ok(())
}

/// [`set_disabled`] inside the caller's transaction (access reviews disable dormant accounts);
/// the caller notifies the applications after the commit.
pub(crate) fn set_disabled_in(
    c: &mut DbConn,
    auditor: &crate::audit::Auditor,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
    disabled: bool,
) -> StoreResult<Contained> {
    users::set_disabled(c, user_id, disabled, now.micros())?;
    let contained = if disabled {
        contain(c, auditor, actor, now, user_id, Cause::Disabled, None)?
    } else {
        Contained::default()
    };
    let action = if disabled {
        "user.disabled"
    } else {
        "user.enabled"
    };
    auditor.record(c, now, actor.event(action).target(user_id.to_owned()))?;
    Ok(contained)
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
    super::breached::refuse_breached(svc, password.expose_secret()).await?;
    let hash = svc.hasher.hash(password).await?;
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    let contained = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                // The operator chose this password for the user: no forced change follows.
                users::set_password(c, &user.id, &hash, false, now.micros())?;
                let contained =
                    contain(c, &auditor, &actor, now, &user.id, Cause::AdminReset, None)?;
                set_risk(
                    c,
                    &auditor,
                    &actor,
                    now,
                    &user.id,
                    AccountRisk::None,
                    "remediated",
                )?;
                store::throttle::clear_account(c, &user.username)?;
                auditor.record(
                    c,
                    now,
                    actor.event("user.password_changed").target(user.id.clone()),
                )?;
                Ok(contained)
            })
        })
        .await?;
    notify_and_wait(svc, now, &contained).await;
    Ok(())
}

/// A signed-in user changes their own password: the current one is checked (a borrowed session
/// cannot lock the owner out), the new one must pass the policy, and containment ends every
/// other session and every token. Changed from a session that proved a second factor, it also
/// remediates an account at risk or compromised. (The web layer has asked enforcement first.)
pub async fn change_own_password(
    svc: &Services,
    now: Timestamp,
    user: &User,
    session: &crate::store::sessions::Session,
    current: SecretString,
    new: SecretString,
    ctx: &super::RequestContext,
) -> Result<(), FlowError> {
    let keep_session = session.id.as_str();
    let proven = crate::oidc::acr_rank(&session.acr) >= crate::oidc::acr_rank(crate::oidc::ACR_MFA);
    use super::throttle::{self, Gate};
    use crate::auth::AuthError;
    // The current password is a secret like any other: a stolen session must not become an
    // unthrottled password oracle.
    let account = super::login::account_key(&user.username);
    let r = match throttle::reserve(svc, now, &account, Some(&user.id), ctx).await? {
        Gate::Proceed(r) => r,
        Gate::Throttled {
            retry_after_secs, ..
        } => return Err(AuthError::Throttled { retry_after_secs }.into()),
    };
    let checked = match svc
        .hasher
        .verify(Some(user.password_hash.clone()), current)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            throttle::release(svc, r).await?;
            return Err(e.into());
        }
    };
    if !checked.ok {
        // The reservation stays: it is this failure's record.
        tracing::info!(user.id = %user.id, client.ip = %ctx.ip, "current password refused");
        return Err(FlowError::Invalid(
            "Your current password is not right.".into(),
        ));
    }
    throttle::release(svc, r).await?;
    let ip = ctx.ip;
    check_policy(new.expose_secret(), &user.username)?;
    super::breached::refuse_breached(svc, new.expose_secret()).await?;
    let hash = svc.hasher.hash(new).await?;
    let (auditor, uid, keep) = (
        svc.auditor.clone(),
        user.id.clone(),
        keep_session.to_owned(),
    );
    let contained = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                users::set_password(c, &uid, &hash, false, now.micros())?;
                let actor = Actor::admin(uid.clone(), ip);
                let contained = contain(
                    c,
                    &auditor,
                    &actor,
                    now,
                    &uid,
                    Cause::PasswordChanged,
                    Some(&keep),
                )?;
                if proven {
                    set_risk(
                        c,
                        &auditor,
                        &actor,
                        now,
                        &uid,
                        AccountRisk::None,
                        "remediated",
                    )?;
                }
                auditor.record(
                    c,
                    now,
                    AuditEvent::new("user.password_changed")
                        .actor(uid.clone())
                        .target(uid.clone())
                        .ip(ip)
                        .details(serde_json::json!({
                            "self_service": true,
                            "sessions_ended": contained.sessions.len(),
                            "second_factor": proven,
                        })),
                )?;
                Ok(contained)
            })
        })
        .await?;
    let _ = notify(svc, now, &contained).await;
    super::notices::send(svc, now, &user.id, super::notices::Notice::PasswordChanged).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The admin console's user operations. Each takes the account by id (the page's address), is
// audited with the admin as actor, and refuses what would lock the console out: an admin
// cannot disable, demote or delete themselves, and the last active admin stays one.
// ---------------------------------------------------------------------------------------------

/// A weak password is the person's to fix: a readable message, not an internal error.
pub(crate) fn weak(e: crate::auth::AuthError) -> FlowError {
    match e {
        crate::auth::AuthError::WeakPassword(m) => FlowError::Invalid(format!("Password: {m}.")),
        other => FlowError::Auth(other),
    }
}

/// A temporary password an admin can read out or paste: 16 characters from an alphabet
/// without look-alikes (≈79 bits), in groups of four.
pub fn temporary_password() -> SecretString {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let mut s = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            s.push('-');
        }
        let c = ALPHABET[rng.gen_range(0..ALPHABET.len())];
        s.push(char::from(c));
    }
    SecretString::from(s)
}

/// The account with this id, or `NotFound`.
pub async fn by_id(svc: &Services, id: &str) -> Result<User, FlowError> {
    let id2 = id.to_owned();
    svc.db
        .run(move |c| users::find(c, &id2))
        .await?
        .ok_or_else(|| FlowError::NotFound("user".into()))
}

/// Accounts matching `q` in username, e-mail or name (all when `q` is empty), at most `limit`.
pub async fn search(svc: &Services, q: &str, limit: i64) -> Result<Vec<User>, FlowError> {
    let q = q.chars().take(100).collect::<String>();
    Ok(svc.db.run(move |c| users::search(c, &q, limit)).await?)
}

/// An account an admin creates on `/admin/users`.
pub struct AdminNewAccount {
    pub username: String,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    /// What the admin typed; `None` to generate one.
    pub password: Option<SecretString>,
}

/// Create an account with a temporary password (typed or generated) that must be changed at
/// the first sign-in. Returns the account and the generated password, to show once.
pub async fn admin_create(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    a: AdminNewAccount,
) -> Result<(User, Option<SecretString>), FlowError> {
    let (password, generated) = match a.password {
        Some(p) => (p, None),
        None => {
            let p = temporary_password();
            (p.clone(), Some(p))
        }
    };
    let user = create_with(
        svc,
        actor,
        now,
        NewAccount {
            username: a.username,
            email: a.email,
            name: a.name,
            is_admin: a.is_admin,
            password,
        },
        true,
    )
    .await?;
    Ok((user, generated))
}

/// Conflicts are refusals a person can read; the rest stays a store error.
fn refused(e: StoreError) -> FlowError {
    match e {
        StoreError::Conflict(m) => FlowError::Conflict(m),
        StoreError::NotFound => FlowError::NotFound("user".into()),
        other => FlowError::Store(other),
    }
}

/// Run `f` on the account in one transaction that also records `action`.
async fn audited<T, F>(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
    action: &'static str,
    f: F,
) -> Result<T, FlowError>
where
    T: Send + 'static,
    F: FnOnce(&mut store::DbConn, &User) -> Result<(T, serde_json::Value), StoreError>
        + Send
        + 'static,
{
    let (auditor, actor, uid) = (svc.auditor.clone(), actor.clone(), user_id.to_owned());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let user = users::find(c, &uid)?.ok_or(StoreError::NotFound)?;
                let (out, mut details) = f(c, &user)?;
                if let Some(m) = details.as_object_mut() {
                    m.insert("username".into(), user.username.clone().into());
                }
                auditor.record(
                    c,
                    now,
                    actor.event(action).target(user.id.clone()).details(details),
                )?;
                Ok(out)
            })
        })
        .await
        .map_err(refused)
}

/// Disable (ending every session and token) or enable an account. Not oneself, and not the
/// last active admin.
pub async fn admin_set_disabled(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
    disabled: bool,
) -> Result<(), FlowError> {
    if disabled && actor.id == user_id {
        return Err(FlowError::Invalid(
            "You cannot disable your own account.".into(),
        ));
    }
    let action = if disabled {
        "user.disabled"
    } else {
        "user.enabled"
    };
    let (auditor, who) = (svc.auditor.clone(), actor.clone());
    let contained = audited(svc, actor, now, user_id, action, move |c, u| {
        keeping_an_admin(c, |c| users::set_disabled(c, &u.id, disabled, now.micros()))?;
        let mut contained = Contained::default();
        if disabled {
            contained = contain(c, &auditor, &who, now, &u.id, Cause::Disabled, None)?;
        }
        let ended = contained.sessions.len();
        Ok((contained, serde_json::json!({ "sessions_ended": ended })))
    })
    .await?;
    let _ = notify(svc, now, &contained).await;
    if disabled {
        super::notices::send(svc, now, user_id, super::notices::Notice::Locked).await;
    }
    Ok(())
}

/// Set a temporary password (typed, or generated and returned to show once). The user must
/// choose a new one at the next sign-in; sessions and tokens end and failed attempts are
/// forgotten.
pub async fn reset_password(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
    typed: Option<SecretString>,
) -> Result<Option<SecretString>, FlowError> {
    let user = by_id(svc, user_id).await?;
    let (password, generated) = match typed {
        Some(p) => {
            check_policy(p.expose_secret(), &user.username).map_err(weak)?;
            super::breached::refuse_breached(svc, p.expose_secret())
                .await
                .map_err(weak)?;
            (p, None)
        }
        None => {
            let p = temporary_password();
            (p.clone(), Some(p))
        }
    };
    let hash = svc.hasher.hash(password).await?;
    let was_generated = generated.is_some();
    let (auditor, who) = (svc.auditor.clone(), actor.clone());
    let contained = audited(
        svc,
        actor,
        now,
        user_id,
        "user.password_reset",
        move |c, u| {
            users::set_password(c, &u.id, &hash, true, now.micros())?;
            let contained = contain(c, &auditor, &who, now, &u.id, Cause::AdminReset, None)?;
            set_risk(
                c,
                &auditor,
                &who,
                now,
                &u.id,
                AccountRisk::None,
                "remediated",
            )?;
            store::throttle::clear_account(c, &super::login::account_key(&u.username))?;
            let ended = contained.sessions.len();
            Ok((
                contained,
                serde_json::json!({ "sessions_ended": ended, "generated": was_generated }),
            ))
        },
    )
    .await?;
    let _ = notify(svc, now, &contained).await;
    Ok(generated)
}

/// Which second factor an admin removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorChoice {
    /// TOTP, every passkey and the recovery codes.
    All,
    Totp,
    RecoveryCodes,
    /// One passkey, by its row id.
    Passkey(String),
}

impl FactorChoice {
    /// `all`, `totp`, `recovery` or `passkey:<id>` (the form's values).
    pub fn parse(s: &str) -> Result<Self, FlowError> {
        Ok(match s {
            "all" => FactorChoice::All,
            "totp" => FactorChoice::Totp,
            "recovery" => FactorChoice::RecoveryCodes,
            other => match other.strip_prefix("passkey:") {
                Some(id) if !id.is_empty() => FactorChoice::Passkey(id.to_owned()),
                _ => return Err(FlowError::Invalid("Choose a factor to remove.".into())),
            },
        })
    }
}

/// Remove second factors (a lost phone, a departed key). `Invalid` when there was nothing of
/// that kind to remove.
pub async fn remove_factors(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
    which: FactorChoice,
) -> Result<(), FlowError> {
    use store::factors;
    audited(svc, actor, now, user_id, "factor.removed", move |c, u| {
        let (what, removed) = match &which {
            FactorChoice::All => {
                let t = usize::from(factors::delete_totp(c, &u.id)?);
                let p = factors::delete_all_passkeys(c, &u.id)?;
                let r = factors::delete_recovery_codes(c, &u.id)?;
                (
                    serde_json::json!({ "factor": "all", "totp": t, "passkeys": p, "recovery_codes": r }),
                    t + p + r,
                )
            }
            FactorChoice::Totp => (
                serde_json::json!({ "factor": "totp" }),
                usize::from(factors::delete_totp(c, &u.id)?),
            ),
            FactorChoice::RecoveryCodes => (
                serde_json::json!({ "factor": "recovery_codes" }),
                factors::delete_recovery_codes(c, &u.id)?,
            ),
            FactorChoice::Passkey(id) => (
                serde_json::json!({ "factor": "webauthn", "id": id }),
                usize::from(factors::delete_passkey(c, &u.id, id)?),
            ),
        };
        if removed == 0 {
            return Err(StoreError::Conflict(
                "The account has no such factor (it may have been removed already).".into(),
            ));
        }
        let mut details = what;
        if let Some(m) = details.as_object_mut() {
            m.insert("by_admin".into(), true.into());
        }
        Ok(((), details))
    })
    .await
}

/// Forget the account's failed sign-in attempts, lifting its throttle at once.
pub async fn unlock(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
) -> Result<(), FlowError> {
    audited(svc, actor, now, user_id, "user.unlocked", move |c, u| {
        store::throttle::clear_account(c, &super::login::account_key(&u.username))?;
        Ok(((), serde_json::json!({})))
    })
    .await
}

/// End every session of the account and revoke the tokens its applications hold.
pub async fn end_sessions(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
) -> Result<usize, FlowError> {
    let (auditor, who) = (svc.auditor.clone(), actor.clone());
    let contained = audited(
        svc,
        actor,
        now,
        user_id,
        "user.sessions_revoked",
        move |c, u| {
            let contained = contain(c, &auditor, &who, now, &u.id, Cause::EndSessions, None)?;
            let (n, t) = (contained.sessions.len(), contained.tokens_revoked);
            Ok((
                contained,
                serde_json::json!({ "sessions_ended": n, "tokens_revoked": t }),
            ))
        },
    )
    .await?;
    let _ = notify(svc, now, &contained).await;
    Ok(contained.sessions.len())
}

/// An admin dismisses the account's risk state (a false alarm): back to `none`, audited.
pub async fn dismiss_risk(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
) -> Result<bool, FlowError> {
    let (auditor, who) = (svc.auditor.clone(), actor.clone());
    audited(
        svc,
        actor,
        now,
        user_id,
        "user.risk_dismissed",
        move |c, u| {
            let changed = set_risk(
                c,
                &auditor,
                &who,
                now,
                &u.id,
                AccountRisk::None,
                "dismissed",
            )?;
            // A compromise's forced password change is part of the state being dismissed.
            if changed && u.risk_state == "compromised" {
                users::set_must_change_password(c, &u.id, false, now.micros())?;
            }
            Ok((changed, serde_json::json!({ "from": u.risk_state })))
        },
    )
    .await
}

/// Grant or withdraw the console's `admin` role (a direct grant; one held through a group goes
/// with the group). An admin cannot demote themselves, and the last active admin cannot be
/// demoted.
pub async fn set_role(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
    admin: bool,
) -> Result<(), FlowError> {
    if !admin && actor.id == user_id {
        return Err(FlowError::Invalid(
            "You cannot remove your own administrator role.".into(),
        ));
    }
    let action = if admin {
        "user.promoted"
    } else {
        "user.demoted"
    };
    audited(svc, actor, now, user_id, action, move |c, u| {
        let role = store::access::CONSOLE_ADMIN_ROLE_ID;
        if admin {
            store::access::grant_to_user(c, &new_id(), role, &u.id, now.micros())?;
        } else {
            keeping_an_admin(c, |c| store::access::revoke_from_user(c, role, &u.id))?;
        }
        Ok(((), serde_json::json!({})))
    })
    .await
}

/// Delete an account with its sessions, tokens, factors, consents, risk profile and sign-in
/// history (the audit log keeps the record that it existed). Not oneself; not the last admin.
pub async fn delete(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
) -> Result<(), FlowError> {
    if actor.id == user_id {
        return Err(FlowError::Invalid(
            "You cannot delete your own account.".into(),
        ));
    }
    audited(svc, actor, now, user_id, "user.deleted", move |c, u| {
        keeping_an_admin(c, |c| users::delete(c, &u.id))?;
        Ok(((), serde_json::json!({ "email": u.email })))
    })
    .await
}
