//! Containment and account risk: what happens when a compromise is known, in one operation.
//!
//! ```text
//!            high-risk sign-in got in / failed step-up        report / attack verdict
//!   none ───────────────────────────────────────► at_risk ─────────────────────────► compromised
//!    ▲  ▲                                                                                 │
//!    │  └──── remediated: password changed with a second factor, or an admin reset ──────┤
//!    └─────── dismissed: an admin                                                         │
//! ```
//! [`contain`] runs inside the caller's transaction: every session ends (but the one kept when
//! the user changes their own password), every refresh family and access token of the account is
//! revoked, and for a reported sign-in the factors added since then are suspended until the
//! owner confirms them. After the commit, [`notify`] tells every application that had a session
//! or token for the account (back-channel logout, retried and audited). The report, the attack verdict, lock/disable (console
//! and CLI), an admin reset, a password change and "end all sessions" all call it.

use super::accounts::Actor;
use super::enforce::AccountRisk;
use super::Services;
use crate::audit::Auditor;
use crate::clock::Timestamp;
use crate::store::sessions::{self, Session};
use crate::store::{factors, tokens, users, DbConn, StoreResult};

/// Why the account is being contained (goes into the audit entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The user said a sign-in at `signin_at` was not them.
    Reported {
        signin_at: i64,
    },
    /// An admin judged a sign-in at `signin_at` an attack.
    AttackVerdict {
        signin_at: i64,
    },
    Disabled,
    AdminReset,
    /// The user changed their own password; their current session stays.
    PasswordChanged,
    /// An admin ended every session of the account.
    EndSessions,
    /// The password was reset through a mailed link: every session ends.
    PasswordReset,
}

impl Cause {
    fn name(self) -> &'static str {
        match self {
            Cause::Reported { .. } => "reported",
            Cause::AttackVerdict { .. } => "attack_verdict",
            Cause::Disabled => "disabled",
            Cause::AdminReset => "admin_reset",
            Cause::PasswordChanged => "password_changed",
            Cause::EndSessions => "end_sessions",
            Cause::PasswordReset => "password_reset",
        }
    }
    /// Since when factors are suspect (a reported or judged sign-in).
    fn since(self) -> Option<i64> {
        match self {
            Cause::Reported { signin_at } | Cause::AttackVerdict { signin_at } => Some(signin_at),
            _ => None,
        }
    }
}

/// What containment did.
#[derive(Debug, Clone, Default)]
pub struct Contained {
    /// The account contained (None: nothing was, e.g. an enable rather than a disable).
    pub user_id: Option<String>,
    /// The sessions it ended, for the back-channel logout after the commit.
    pub sessions: Vec<Session>,
    pub tokens_revoked: usize,
    pub factors_suspended: usize,
}

/// End everything the account holds, in the caller's transaction, and audit it.
pub fn contain(
    conn: &mut DbConn,
    auditor: &Auditor,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
    cause: Cause,
    keep_session: Option<&str>,
) -> StoreResult<Contained> {
    let ended = sessions::revoke_all_returning(conn, user_id, keep_session, now.micros())?;
    let revoked = tokens::revoke_for_user(conn, user_id, None, crate::oidc::grant_revocation(now))?;
    let tokens_revoked = revoked.refresh_tokens + revoked.grants;
    let factors_suspended = match cause.since() {
        Some(since) => factors::suspend_added_since(conn, user_id, since, now.micros())?,
        None => 0,
    };
    auditor.record(
        conn,
        now,
        actor
            .event("account.contained")
            .target(user_id.to_owned())
            .details(serde_json::json!({
                "cause": cause.name(),
                "sessions_ended": ended.len(),
                "tokens_revoked": tokens_revoked,
                "factors_suspended": factors_suspended,
            })),
    )?;
    Ok(Contained {
        user_id: Some(user_id.to_owned()),
        sessions: ended,
        tokens_revoked,
        factors_suspended,
    })
}

/// Move the account's risk state, audited. `at_risk` never downgrades `compromised`; `none`
/// records how it was left (`remediated` or `dismissed`). Returns whether it changed.
pub fn set_risk(
    conn: &mut DbConn,
    auditor: &Auditor,
    actor: &Actor,
    now: Timestamp,
    user_id: &str,
    to: AccountRisk,
    why: &str,
) -> StoreResult<bool> {
    let Some(user) = users::find(conn, user_id)? else {
        return Ok(false);
    };
    let from = AccountRisk::parse(&user.risk_state);
    let only_from: &[&str] = match to {
        AccountRisk::AtRisk => &["none"],
        AccountRisk::Compromised => &["none", "at_risk"],
        AccountRisk::None => &["at_risk", "compromised"],
    };
    if !users::set_risk_state(conn, user_id, to.as_str(), Some(only_from), now.micros())? {
        return Ok(false);
    }
    if to == AccountRisk::Compromised {
        // The password is known to someone else: the next sign-in must replace it.
        users::require_password_change(conn, user_id, now.micros())?;
    }
    auditor.record(
        conn,
        now,
        actor
            .event("account.risk_changed")
            .target(user_id.to_owned())
            .details(serde_json::json!({
                "from": from.as_str(),
                "to": to.as_str(),
                "why": why,
            })),
    )?;
    if to != AccountRisk::None {
        // Least privilege under risk: the account's privileged access goes to review at once.
        super::campaigns::open_for_risk(conn, auditor, now, user_id, to, why)?;
    }
    Ok(true)
}

/// After the commit: tell every application that had a session or token for the account
/// (back-channel logout with `sub`: all of the user's sessions there end). Delivery goes on in
/// the background with retries; the tasks are returned for a short-lived caller (the CLI) to
/// await.
pub async fn notify(
    svc: &Services,
    now: Timestamp,
    contained: &Contained,
) -> crate::oidc::logout::Deliveries {
    match &contained.user_id {
        Some(uid) => crate::oidc::logout::backchannel_user(svc, now, uid).await,
        None => Vec::new(),
    }
}

/// [`notify`], waiting for the deliveries to finish (for the CLI, which exits right after).
pub async fn notify_and_wait(svc: &Services, now: Timestamp, contained: &Contained) {
    for task in notify(svc, now, contained).await {
        let _ = task.await;
    }
}
