//! A password sign-in, start to finish.
//!
//! ```text
//!  attempt ──> throttled? ──yes──> Throttled (no hash computed: guessing costs us nothing)
//!                 │no
//!                 v
//!            verify (argon2id off the async workers; dummy hash for unknown users)
//!                 │
//!        wrong / disabled ──> failure counted for account and IP ──────────> Refused
//!        ok, second factor enrolled ──> pending step-up (mfa.rs) ──────────> SecondFactor
//!        ok, no second factor ──> new session (old one revoked) ───────────> SignedIn
//! ```

use secrecy::SecretString;

use super::session::{self, Established};
use super::{mfa, FlowError, RequestContext, Services};
use crate::audit::AuditEvent;
use crate::clock::Timestamp;
use crate::oidc::ACR_PWD;
use crate::store::signins::{self, SigninRow};
use crate::store::users::{self, User};
use crate::store::{self, factors, new_id, throttle, token_digest, DbConn, StoreResult};

/// What someone typed into the login form, and where they are.
pub struct PasswordAttempt {
    pub username: String,
    pub password: SecretString,
    pub ctx: RequestContext,
    /// The cookie of a session this browser already had; it is replaced, never reused.
    pub previous_session: Option<String>,
    /// The authorization request this sign-in serves, if any.
    pub tx: Option<String>,
}

pub enum Outcome {
    SignedIn {
        user: Box<User>,
        established: Box<Established>,
    },
    /// The password was right; a second factor is needed. `pending` goes into a cookie.
    SecondFactor {
        pending: SecretString,
    },
    /// Wrong username or password, or a disabled account: one answer for all.
    Refused,
    Throttled {
        retry_after_secs: i64,
    },
}

/// The key failures are counted under: what was typed, normalised, bounded in length.
pub fn account_key(username: &str) -> String {
    username.trim().to_lowercase().chars().take(128).collect()
}

/// `Some(retry_after_secs)` when the account or the IP has used up its failures.
pub async fn throttled(
    svc: &Services,
    now: Timestamp,
    account: &str,
    ip: &str,
) -> Result<Option<i64>, FlowError> {
    let limits = svc.settings.throttle;
    let since = now.minus_secs(limits.window_secs).micros();
    let (acct, ip_key) = (account.to_owned(), ip.to_owned());
    let ((by_account, by_ip), oldest) = svc
        .db
        .run(move |c| {
            Ok((
                throttle::counts(c, &acct, &ip_key, since)?,
                throttle::oldest_in_window(c, &acct, &ip_key, since)?,
            ))
        })
        .await?;
    if by_account >= i64::from(limits.account_failures) || by_ip >= i64::from(limits.ip_failures) {
        let lifts_at = oldest.unwrap_or(now.micros()) + limits.window_secs * 1_000_000;
        tracing::warn!(client.ip = %ip, by_account, by_ip, "sign-in throttled");
        return Ok(Some(((lifts_at - now.micros()) / 1_000_000).max(1)));
    }
    Ok(None)
}

/// One row of the sign-in log.
pub fn log_signin(
    conn: &mut DbConn,
    now: Timestamp,
    user_id: Option<&str>,
    method: &str,
    outcome: &str,
    ctx: &RequestContext,
    session: Option<(&str, &str, &str)>,
) -> StoreResult<()> {
    signins::insert(
        conn,
        &SigninRow {
            id: new_id(),
            at: now.micros(),
            user_id: user_id.map(str::to_owned),
            method: method.to_owned(),
            outcome: outcome.to_owned(),
            ip: Some(ctx.ip.to_string()),
            user_agent: ctx
                .user_agent
                .as_ref()
                .map(|u| u.chars().take(512).collect()),
            device_id: ctx.device_id.clone(),
            client_id: None,
            session_id: session.map(|s| s.0.to_owned()),
            acr: session.map(|s| s.1.to_owned()),
            amr: session.map(|s| s.2.to_owned()),
        },
    )
}

/// Count a failed factor for the account and IP, log it and audit it.
pub async fn record_failure(
    svc: &Services,
    now: Timestamp,
    account: &str,
    user_id: Option<String>,
    method: &'static str,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let (auditor, acct, ctx) = (svc.auditor.clone(), account.to_owned(), ctx.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                throttle::record(c, &acct, &ctx.ip.to_string(), now.micros())?;
                let outcome = if method == "password" {
                    "failure"
                } else {
                    "step_up_failed"
                };
                log_signin(c, now, user_id.as_deref(), method, outcome, &ctx, None)?;
                let mut ev = AuditEvent::new("login.failed")
                    .ip(ctx.ip)
                    .details(serde_json::json!({ "method": method }));
                if let Some(id) = user_id {
                    ev = ev.target(id);
                }
                auditor.record(c, now, ev)
            })
        })
        .await?;
    Ok(())
}

/// What a sign-in proved: how (for the log) and the resulting `acr`/`amr`.
pub struct Proof {
    pub method: &'static str,
    pub acr: String,
    pub amr: Vec<String>,
}

/// Count a failure against the account and IP without another log row (the caller logged it).
pub async fn record_failure_counter_only(
    svc: &Services,
    now: Timestamp,
    account: &str,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let (acct, ip) = (account_key(account), ctx.ip.to_string());
    svc.db
        .run(move |c| throttle::record(c, &acct, &ip, now.micros()))
        .await?;
    Ok(())
}

/// Everything verified: a fresh session (the browser's previous one ends), failures cleared,
/// the sign-in logged and audited.
pub async fn establish(
    svc: &Services,
    now: Timestamp,
    user: &User,
    proof: Proof,
    ctx: &RequestContext,
    previous_digest: Option<String>,
) -> Result<Established, FlowError> {
    let cfg = svc.settings.session;
    let Proof { method, acr, amr } = proof;
    let (auditor, ctx, uid, username) = (
        svc.auditor.clone(),
        ctx.clone(),
        user.id.clone(),
        user.username.clone(),
    );
    let previous = previous_digest;
    let est = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                if let Some(prev) = previous {
                    if let Some(s) = store::sessions::find_live(c, &prev, now.micros())? {
                        store::sessions::revoke(c, &s.id, now.micros())?;
                    }
                }
                throttle::clear_account(c, &username)?;
                let amr_refs: Vec<&str> = amr.iter().map(String::as_str).collect();
                let est = session::create(c, &cfg, &uid, now, &acr, &amr_refs, &ctx)?;
                let outcome = if method == "password" || method == "passkey" {
                    "success"
                } else {
                    "step_up_passed"
                };
                log_signin(
                    c,
                    now,
                    Some(&uid),
                    method,
                    outcome,
                    &ctx,
                    Some((&est.session.id, &acr, &est.session.amr)),
                )?;
                auditor.record(
                    c,
                    now,
                    AuditEvent::new("login.succeeded")
                        .actor(uid.clone())
                        .target(est.session.id.clone())
                        .ip(ctx.ip)
                        .details(serde_json::json!({ "method": method, "acr": acr, "amr": amr })),
                )?;
                Ok(est)
            })
        })
        .await?;
    tracing::info!(user.id = %user.id, client.ip = %est.session.ip.as_deref().unwrap_or("-"), method, "signed in");
    Ok(est)
}

pub async fn password(
    svc: &Services,
    now: Timestamp,
    attempt: PasswordAttempt,
) -> Result<Outcome, FlowError> {
    let account = account_key(&attempt.username);
    let ip = attempt.ctx.ip.to_string();

    // 1. Throttle before any hashing.
    if let Some(retry_after_secs) = throttled(svc, now, &account, &ip).await? {
        return Ok(Outcome::Throttled { retry_after_secs });
    }
    let acct = account.clone();
    let user = svc
        .db
        .run(move |c| users::find_by_username(c, &acct))
        .await?;

    // 2. Verify. Unknown users are checked against the dummy hash: same time, same answer.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let checked = svc.hasher.verify(stored, attempt.password.clone()).await?;
    let user = match user {
        Some(u) if checked.ok && !u.disabled => u,
        other => {
            record_failure(
                svc,
                now,
                &account,
                other.map(|u| u.id),
                "password",
                &attempt.ctx,
            )
            .await?;
            tracing::info!(client.ip = %ip, "sign-in refused");
            return Ok(Outcome::Refused);
        }
    };

    // 3. Upgrade the stored hash if the configured cost changed since it was made.
    if checked.needs_rehash {
        let hash = svc.hasher.hash(attempt.password).await?;
        let uid = user.id.clone();
        svc.db
            .run(move |c| users::set_password_hash(c, &uid, &hash, now.micros()))
            .await?;
    }

    // 4. A second factor when the account has one (until the risk engine decides per sign-in,
    //    every password sign-in of such an account steps up).
    let uid = user.id.clone();
    let enrolled = svc.db.run(move |c| factors::enrolled(c, &uid)).await?;
    if enrolled.any() {
        let previous = attempt.previous_session.map(|t| token_digest(&t));
        let pending =
            mfa::begin_step_up(svc, now, &user, vec!["pwd".into()], attempt.tx, previous).await?;
        return Ok(Outcome::SecondFactor { pending });
    }

    // 5. A fresh session.
    let previous = attempt.previous_session.map(|t| token_digest(&t));
    let established = establish(
        svc,
        now,
        &user,
        Proof {
            method: "password",
            acr: ACR_PWD.into(),
            amr: vec!["pwd".into()],
        },
        &attempt.ctx,
        previous,
    )
    .await?;
    Ok(Outcome::SignedIn {
        user: Box::new(user),
        established: Box::new(established),
    })
}
