//! A password sign-in, start to finish.
//!
//! ```text
//!  attempt ──> throttled? ──yes──> Throttled (no hash computed: guessing costs us nothing)
//!                 │no
//!                 v
//!            verify (argon2id off the async workers; dummy hash for unknown users)
//!                 │
//!        ok & enabled ──> new session (old one revoked), failures cleared ──> SignedIn
//!        otherwise    ──> failure counted for account and IP ──────────────> Refused
//! ```

use secrecy::SecretString;

use super::session::{self, Established, ACR_PASSWORD};
use super::{FlowError, RequestContext, Services};
use crate::audit::AuditEvent;
use crate::clock::Timestamp;
use crate::store::users::{self, User};
use crate::store::{self, throttle, token_digest};

/// What someone typed into the login form, and where they are.
pub struct PasswordAttempt {
    pub username: String,
    pub password: SecretString,
    pub ctx: RequestContext,
    /// The cookie of a session this browser already had; it is replaced, never reused.
    pub previous_session: Option<String>,
}

pub enum Outcome {
    SignedIn {
        user: Box<User>,
        established: Box<Established>,
    },
    /// Wrong username or password, or a disabled account: one answer for all.
    Refused,
    Throttled {
        retry_after_secs: i64,
    },
}

/// The key failures are counted under: what was typed, normalised, bounded in length.
fn account_key(username: &str) -> String {
    username.trim().to_lowercase().chars().take(128).collect()
}

pub async fn password(
    svc: &Services,
    now: Timestamp,
    attempt: PasswordAttempt,
) -> Result<Outcome, FlowError> {
    let account = account_key(&attempt.username);
    let ip = attempt.ctx.ip.to_string();
    let limits = svc.settings.throttle;
    let since = now.minus_secs(limits.window_secs).micros();

    // 1. Throttle before any hashing, and load the account in the same round trip.
    let (acct, ip_key) = (account.clone(), ip.clone());
    let (counts, oldest, user) = svc
        .db
        .run(move |c| {
            let counts = throttle::counts(c, &acct, &ip_key, since)?;
            let oldest = throttle::oldest_in_window(c, &acct, &ip_key, since)?;
            let user = users::find_by_username(c, &acct)?;
            Ok((counts, oldest, user))
        })
        .await?;
    let (by_account, by_ip) = counts;
    if by_account >= i64::from(limits.account_failures) || by_ip >= i64::from(limits.ip_failures) {
        let lifts_at = oldest.unwrap_or(now.micros()) + limits.window_secs * 1_000_000;
        let retry_after_secs = ((lifts_at - now.micros()) / 1_000_000).max(1);
        tracing::warn!(client.ip = %ip, by_account, by_ip, "sign-in throttled");
        return Ok(Outcome::Throttled { retry_after_secs });
    }

    // 2. Verify. Unknown users are checked against the dummy hash: same time, same answer.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let checked = svc.hasher.verify(stored, attempt.password.clone()).await?;
    let user = match user {
        Some(u) if checked.ok && !u.disabled => u,
        other => {
            let auditor = svc.auditor.clone();
            let (acct, ip_key, ip_addr) = (account.clone(), ip.clone(), attempt.ctx.ip);
            let user_id = other.map(|u| u.id);
            svc.db
                .run(move |c| {
                    store::transaction(c, |c| {
                        throttle::record(c, &acct, &ip_key, now.micros())?;
                        let mut ev = AuditEvent::new("login.failed")
                            .ip(ip_addr)
                            .details(serde_json::json!({ "method": "password" }));
                        if let Some(id) = user_id {
                            ev = ev.target(id);
                        }
                        auditor.record(c, now, ev)
                    })
                })
                .await?;
            tracing::info!(client.ip = %ip, "sign-in refused");
            return Ok(Outcome::Refused);
        }
    };

    // 3. Upgrade the stored hash if the configured cost changed since it was made.
    let new_hash = if checked.needs_rehash {
        Some(svc.hasher.hash(attempt.password).await?)
    } else {
        None
    };

    // 4. A fresh session; the browser's previous one (if any) ends here.
    let cfg = svc.settings.session;
    let auditor = svc.auditor.clone();
    let ctx = attempt.ctx.clone();
    let previous = attempt.previous_session.map(|t| token_digest(&t));
    let uid = user.id.clone();
    let established = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                if let Some(h) = new_hash {
                    users::set_password_hash(c, &uid, &h, now.micros())?;
                }
                if let Some(prev) = previous {
                    if let Some(s) = store::sessions::find_live(c, &prev, now.micros())? {
                        store::sessions::revoke(c, &s.id, now.micros())?;
                    }
                }
                throttle::clear_account(c, &account)?;
                let est = session::create(c, &cfg, &uid, now, ACR_PASSWORD, &["pwd"], &ctx)?;
                auditor.record(
                    c,
                    now,
                    AuditEvent::new("login.succeeded")
                        .actor(uid.clone())
                        .target(est.session.id.clone())
                        .ip(ctx.ip)
                        .details(serde_json::json!({ "method": "password", "acr": ACR_PASSWORD })),
                )?;
                Ok(est)
            })
        })
        .await?;
    tracing::info!(user.id = %user.id, client.ip = %ip, "signed in");
    Ok(Outcome::SignedIn {
        user: Box::new(user),
        established: Box::new(established),
    })
}
