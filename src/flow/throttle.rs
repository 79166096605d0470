//! Throttling of guessed secrets (passwords, TOTP and recovery codes, the current password on a
//! change). Every check of a secret first takes a reservation; the limit is enforced when the
//! reservation is taken, so parallel guesses cannot all pass a count made before any of them
//! failed.
//!
//! ```text
//!  reserve ──> over the limit? ──yes──> Throttled (nothing written, no hash computed)
//!     │no: one row written, counting as a failure
//!     v
//!  check the secret ──right──> release (the row goes; sign-in clears the account's rows)
//!                   └─wrong──> failed (the row stays as the failure; log + audit)
//! ```
//!
//! Budgets: the account (by typed name) and the client's IP key (IPv4 address, IPv6 /64) share
//! one each. A browser whose device cookie has completed a verified sign-in as the user spends
//! its own budget instead, so strangers failing against the account, or behind the same NAT,
//! cannot lock the owner out; the owner's own guessing is still limited.

use super::login::log_signin;
use super::{FlowError, RequestContext, Services};
use crate::audit::AuditEvent;
use crate::clock::Timestamp;
use crate::net::ip_key;
use crate::store::throttle::{self, Budget, Reserved};
use crate::store::{self, signins};

/// A granted attempt: check the secret, then [`release`] it (right) or [`failed`] (wrong).
#[derive(Debug)]
#[must_use = "a reservation is released when the secret was right, kept as a failure otherwise"]
pub struct Reservation {
    id: String,
    /// The attempt came from a browser that has signed in as this user before.
    pub known_device: bool,
}

impl Reservation {
    /// The reservation's row, for the risk signals to leave out of the failures they count.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret was right and the caller deletes the reservation inside its own transaction
    /// (`store::throttle::release`), saving a commit of its own.
    pub fn into_release(self) -> String {
        self.id
    }
}

/// Whether an attempt may go ahead.
#[derive(Debug)]
pub enum Gate {
    Proceed(Reservation),
    Throttled {
        retry_after_secs: i64,
        /// Refused on the device's own budget (the owner, or someone with their device cookie).
        known_device: bool,
    },
}

/// Whether this request's device cookie has a verified sign-in as `user_id`.
pub fn is_known_device(
    conn: &mut store::DbConn,
    user_id: Option<&str>,
    ctx: &RequestContext,
) -> store::StoreResult<bool> {
    match (user_id, ctx.device_id.as_deref()) {
        (Some(uid), Some(dev)) if !dev.is_empty() => signins::verified_on_device(conn, uid, dev),
        _ => Ok(false),
    }
}

/// Take one attempt at a secret of `account` (see [`super::login::account_key`]); `user_id`
/// when the account exists, for the known-device test.
pub async fn reserve(
    svc: &Services,
    now: Timestamp,
    account: &str,
    user_id: Option<&str>,
    ctx: &RequestContext,
) -> Result<Gate, FlowError> {
    let limits = svc.settings.throttle;
    let (account, uid, ctx2) = (account.to_owned(), user_id.map(str::to_owned), ctx.clone());
    let taken = svc
        .db
        .run(move |c| reserve_on(c, limits, now, account, uid.as_deref(), &ctx2))
        .await?;
    Ok(gate(now, limits, ctx, taken))
}

/// [`reserve`] for a password sign-in, which first looks the account up: both in one visit to
/// the database (the reservation is still taken before any hashing).
pub async fn reserve_for(
    svc: &Services,
    now: Timestamp,
    account: &str,
    ctx: &RequestContext,
) -> Result<(Option<store::users::User>, Gate), FlowError> {
    let limits = svc.settings.throttle;
    let (account, ctx2) = (account.to_owned(), ctx.clone());
    let (user, taken) = svc
        .db
        .run(move |c| {
            let user = store::users::find_by_username(c, &account)?;
            let uid = user.as_ref().map(|u| u.id.clone());
            let taken = reserve_on(c, limits, now, account, uid.as_deref(), &ctx2)?;
            Ok((user, taken))
        })
        .await?;
    Ok((user, gate(now, limits, ctx, taken)))
}

/// The reservation itself, on a connection: whether the device is known, and the answer.
fn reserve_on(
    c: &mut store::DbConn,
    limits: crate::config::ThrottleSettings,
    now: Timestamp,
    account: String,
    user_id: Option<&str>,
    ctx: &RequestContext,
) -> store::StoreResult<(bool, Reserved)> {
    let since = now.minus_secs(limits.window_secs).micros();
    let known = is_known_device(c, user_id, ctx)?;
    let budget = match (&ctx.device_id, known) {
        (Some(device), true) => Budget::Device {
            account,
            device: device.clone(),
            limit: i64::from(limits.account_failures),
        },
        _ => Budget::Shared {
            account,
            ip: ip_key(ctx.ip),
            account_limit: i64::from(limits.account_failures),
            ip_limit: i64::from(limits.ip_failures),
        },
    };
    Ok((known, throttle::reserve(c, &budget, now.micros(), since)?))
}

fn gate(
    now: Timestamp,
    limits: crate::config::ThrottleSettings,
    ctx: &RequestContext,
    (known_device, reserved): (bool, Reserved),
) -> Gate {
    match reserved {
        Reserved::Granted { id } => Gate::Proceed(Reservation { id, known_device }),
        Reserved::Refused { oldest } => {
            let lifts_at = oldest.unwrap_or(now.micros()) + limits.window_secs * 1_000_000;
            tracing::warn!(client.ip = %ctx.ip, known_device, "attempt throttled");
            crate::telemetry::METRICS
                .throttled
                .with_label_values(&[if known_device { "device" } else { "shared" }])
                .inc();
            Gate::Throttled {
                retry_after_secs: ((lifts_at - now.micros()) / 1_000_000).max(1),
                known_device,
            }
        }
    }
}

/// The secret was right (or was never checked, e.g. the hasher was busy): the attempt does not
/// count.
pub async fn release(svc: &Services, r: Reservation) -> Result<(), FlowError> {
    svc.db.run(move |c| throttle::release(c, &r.id)).await?;
    Ok(())
}

/// The secret was wrong: the reservation stays as the failure record (no second row); the
/// sign-in log and the audit log say so.
pub async fn failed(
    svc: &Services,
    now: Timestamp,
    _kept: Reservation,
    user_id: Option<String>,
    method: &'static str,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let (auditor, ctx) = (svc.auditor.clone(), ctx.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let outcome = if method == "password" {
                    "failure"
                } else {
                    "step_up_failed"
                };
                log_signin(
                    c,
                    now,
                    user_id.as_deref(),
                    method,
                    outcome,
                    &ctx,
                    None,
                    None,
                )?;
                let mut ev = AuditEvent::new("login.failed")
                    .ip(ctx.ip)
                    .details(serde_json::json!({ "method": method }));
                if let Some(id) = &user_id {
                    ev = ev.target(id.clone());
                }
                auditor.record(c, now, ev)?;
                match user_id {
                    // The password was right but the second factor was not: someone may hold
                    // the password. The account is at risk until remediated or dismissed.
                    Some(uid) if method != "password" => {
                        let actor = super::accounts::Actor::admin("system", ctx.ip);
                        super::containment::set_risk(
                            c,
                            &auditor,
                            &actor,
                            now,
                            &uid,
                            super::enforce::AccountRisk::AtRisk,
                            "step_up_failed",
                        )
                        .map(|_| ())
                    }
                    _ => Ok(()),
                }
            })
        })
        .await?;
    Ok(())
}

/// Count a failure that had no reservation (a passkey assertion that did not verify: there is
/// nothing to guess, but a run of them is still a signal for the risk engine).
pub async fn record_unreserved(
    svc: &Services,
    now: Timestamp,
    username: &str,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let (acct, ip) = (super::login::account_key(username), ip_key(ctx.ip));
    svc.db
        .run(move |c| throttle::record(c, &acct, &ip, now.micros()))
        .await?;
    Ok(())
}
