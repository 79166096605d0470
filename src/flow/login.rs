//! A password sign-in, start to finish.
//!
//! ```text
//!  attempt ──> reserve (throttle.rs) ──over the limit──> Throttled (no hash computed)
//!                 │granted: the attempt counts as a failure until proven right
//!                 v
//!            verify (argon2id off the async workers; dummy hash for unknown users)
//!                 │
//!        wrong / disabled ──> the reservation stays as the failure ────────> Refused
//!        ok, second factor enrolled ──> pending step-up (mfa.rs) ──────────> SecondFactor
//!        ok, no second factor ──> new session (old one revoked) ───────────> SignedIn
//! ```

use secrecy::{ExposeSecret, SecretString};

use super::containment::set_risk;
use super::enforce::{self, AccountRisk, AccountView, Action, Facts, Method, Refusal, Requirement};
use super::risk::{evaluate, level_name, Verdict};
use super::session::{self, Established};
use super::{mfa, throttle, FlowError, RequestContext, Services};
use crate::audit::AuditEvent;
use crate::clock::Timestamp;
use crate::oidc::ACR_PWD;
use crate::risk::{BlockReason, Decision, Level};
use crate::store::signins::{self, SigninRow};
use crate::store::users::{self, User};
use crate::store::{self, new_id, token_digest, DbConn, StoreResult};

/// What someone typed into the login form, and where they are.
pub struct PasswordAttempt {
    pub username: String,
    pub password: SecretString,
    pub ctx: RequestContext,
    /// The cookie of a session this browser already had; it is replaced, never reused.
    pub previous_session: Option<String>,
    /// The authorization request this sign-in serves, if any.
    pub tx: Option<String>,
    /// The browser asked to prove a second factor too (re-authentication before a change).
    pub want_mfa: bool,
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
    /// Refused by risk policy; the message says what the user can do. Enters the review queue.
    Blocked {
        message: String,
    },
    /// The password was right but the account is not usable yet (a self-registration waiting
    /// for its address to be confirmed or for an administrator).
    NotYet {
        message: String,
    },
}

/// The key failures are counted under: what was typed, normalised, bounded in length.
pub fn account_key(username: &str) -> String {
    username.trim().to_lowercase().chars().take(128).collect()
}

/// One row of the sign-in log; returns its id.
#[allow(clippy::too_many_arguments)] // a log row has many columns; every call names them in order
pub fn log_signin(
    conn: &mut DbConn,
    now: Timestamp,
    user_id: Option<&str>,
    method: &str,
    outcome: &str,
    ctx: &RequestContext,
    session: Option<(&str, &str, &str)>,
    verdict: Option<&Verdict>,
) -> StoreResult<String> {
    log_signin_row(
        conn, now, user_id, method, outcome, ctx, session, verdict, None,
    )
}

/// A signed-in user refused by `client_id`'s access rule (it admits only holders of its
/// roles): a row of its own in the sign-in log, naming the application.
pub fn log_access_denied(
    conn: &mut DbConn,
    now: Timestamp,
    user_id: &str,
    client_id: &str,
    ctx: &RequestContext,
    session: (&str, &str, &str),
) -> StoreResult<()> {
    log_signin_row(
        conn,
        now,
        Some(user_id),
        "sso",
        "access_denied",
        ctx,
        Some(session),
        None,
        Some(client_id),
    )
    .map(|_| ())
}

#[allow(clippy::too_many_arguments)]
fn log_signin_row(
    conn: &mut DbConn,
    now: Timestamp,
    user_id: Option<&str>,
    method: &str,
    outcome: &str,
    ctx: &RequestContext,
    session: Option<(&str, &str, &str)>,
    verdict: Option<&Verdict>,
    client_id: Option<&str>,
) -> StoreResult<String> {
    let json = |v: &dyn erased::Json| v.json();
    let id = new_id();
    crate::telemetry::note_signin(crate::telemetry::SigninNote {
        method: known(&super::signin_log::METHODS, method),
        outcome: known(&super::signin_log::OUTCOMES, outcome),
        decision: verdict.map_or("none", |v| v.decision.as_str()),
        level: verdict.map_or("none", |v| level_name(v.assessment.level)),
        block_reason: verdict.and_then(|v| match v.decision {
            Decision::Block { reason } => Some(reason.as_str()),
            _ => None,
        }),
    });
    signins::insert(
        conn,
        &SigninRow {
            id: id.clone(),
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
            client_id: client_id.map(str::to_owned),
            session_id: session.map(|s| s.0.to_owned()),
            acr: session.map(|s| s.1.to_owned()),
            amr: session.map(|s| s.2.to_owned()),
            features: verdict.map(|v| json(&v.features)),
            score: verdict.map(|v| i64::from(v.assessment.score)),
            level: verdict.map(|v| level_name(v.assessment.level).to_owned()),
            decision: verdict.map(|v| v.decision.as_str().to_owned()),
            reasons: verdict.map(|v| json(&v.assessment.reasons)),
            assessment: verdict.map(|v| json(&v.assessment)),
            model: verdict.map(|v| v.assessment.model.clone()),
            geoip_build: verdict.and_then(|v| v.geoip_build),
            candidate_decision: verdict.and_then(|v| v.candidate.map(|d| d.as_str().to_owned())),
            shadow: verdict.and_then(|v| v.shadow.as_ref().map(|s| json(s))),
        },
    )?;
    enqueue_for_review(conn, now, &id, user_id, outcome, verdict)?;
    Ok(id)
}

/// `value` as the static name of a closed vocabulary, for counter labels (`other` otherwise).
fn known(names: &[&'static str], value: &str) -> &'static str {
    names
        .iter()
        .find(|n| **n == value)
        .copied()
        .unwrap_or("other")
}

/// Put the sign-in in the admin review queue when a person should look at it: blocked, a
/// failed step-up (reviewed on the sign-in that asked for it, which holds the features), or a
/// high-risk sign-in that got in. Same transaction as the log row; no admin is waited for.
fn enqueue_for_review(
    conn: &mut DbConn,
    now: Timestamp,
    signin_id: &str,
    user_id: Option<&str>,
    outcome: &str,
    verdict: Option<&Verdict>,
) -> StoreResult<()> {
    use store::reviews::{self, ATTACK, LEGITIMATE};
    let hard_evidence =
        verdict.is_some_and(|v| v.assessment.rule.is_some() || v.assessment.level == Level::High);
    match (outcome, user_id) {
        ("blocked", _) => {
            let recommended = if hard_evidence { ATTACK } else { LEGITIMATE };
            reviews::enqueue(
                conn,
                signin_id,
                user_id,
                reviews::KIND_BLOCKED,
                recommended,
                now.micros(),
            )
        }
        ("step_up_failed", Some(uid)) => {
            let target = signins::latest_step_up_required(conn, uid)?
                .map(|r| r.id)
                .unwrap_or_else(|| signin_id.to_owned());
            reviews::enqueue(
                conn,
                &target,
                Some(uid),
                reviews::KIND_STEP_UP_FAILED,
                ATTACK,
                now.micros(),
            )
        }
        ("success" | "step_up_passed", _)
            if verdict.is_some_and(|v| v.assessment.level == Level::High) =>
        {
            let recommended = if outcome == "step_up_passed" {
                LEGITIMATE
            } else {
                ATTACK
            };
            reviews::enqueue(
                conn,
                signin_id,
                user_id,
                reviews::KIND_HIGH_RISK,
                recommended,
                now.micros(),
            )
        }
        _ => Ok(()),
    }
}

pub(super) mod erased {
    /// Serialise anything for a TEXT column without caring about its type at the call site.
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

/// A risk decision that stops a sign-in for now (`step_up_required` or `blocked`): one row of
/// the sign-in log (which queues a block for review) and one audit entry with the risk details,
/// in one transaction. A block is also counted in the global statistics.
pub async fn record_decision(
    svc: &Services,
    now: Timestamp,
    user_id: &str,
    method: &'static str,
    outcome: &'static str,
    ctx: &RequestContext,
    verdict: &Verdict,
) -> Result<(), FlowError> {
    let (auditor, uid, ctx, v) = (
        svc.auditor.clone(),
        user_id.to_owned(),
        ctx.clone(),
        verdict.clone(),
    );
    let action = if outcome == "blocked" {
        "login.blocked"
    } else {
        "login.step_up_required"
    };
    let engine = svc.risk.clone();
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                log_signin(c, now, Some(&uid), method, outcome, &ctx, None, Some(&v))?;
                if outcome == "blocked" {
                    super::risk::learn(c, &engine, Some(&uid), &v, false, now)?;
                }
                let details = crate::audit::with(
                    serde_json::json!({ "method": method }),
                    crate::audit::risk_details(
                        &v.features,
                        &v.assessment,
                        &v.decision,
                        v.candidate.as_ref(),
                        v.geoip_build,
                    ),
                );
                auditor.record(
                    c,
                    now,
                    AuditEvent::new(action)
                        .target(uid.clone())
                        .ip(ctx.ip)
                        .details(details),
                )
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
    /// The risk engine's verdict on this sign-in; the profile learns from it (verified).
    pub verdict: Option<Verdict>,
    /// The authorization request this sign-in was made for: the new session counts as assessed
    /// for it (and only for it; any other request re-scores the session).
    pub tx: Option<String>,
    /// The throttle reservation of the password that was right, released in the session's
    /// transaction (one commit fewer per sign-in).
    pub reservation: Option<String>,
    /// The caller answers `tx` itself with [`super::authorize::after_sign_in`], so the sign-in's
    /// transaction may mint the code (a caller that sends the browser to `/authorize/resume`
    /// instead leaves the request for that).
    pub answers_tx: bool,
}

/// This sign-in as the log saw it: its row, and whether its browser was new to the account.
#[derive(Clone, Copy)]
struct SignInSeen<'a> {
    new_device: bool,
    signin_id: &'a str,
}

/// What a verified sign-in tells beyond itself, in its transaction: a sign-in from a new
/// device or country (after the account's first) mails its owner a notice with a "this wasn't
/// me" link; an account left `at_risk` without a second factor (a reset by e-mail) that signs in
/// with its password at low risk, as the risk engine judges, is no longer at risk.
#[allow(clippy::too_many_arguments)] // the sign-in's transaction hands over what it holds
fn after_verified_sign_in(
    c: &mut DbConn,
    auditor: &crate::audit::Auditor,
    mailer: &crate::mail::Mailer,
    issuer: &str,
    now: Timestamp,
    account: &User,
    method: &str,
    v: &Verdict,
    ctx: &RequestContext,
    seen: SignInSeen<'_>,
) -> StoreResult<()> {
    use super::notices::{self, Notice, Origin};
    use crate::risk::signals::Signal;
    let signin_id = seen.signin_id;
    let somewhere_new = seen.new_device || v.assessment.reasons.contains(&Signal::NewCountry);
    if somewhere_new && signins::has_success_before(c, &account.id, now.micros())? {
        notices::queue(
            c,
            mailer,
            issuer,
            now,
            account,
            Notice::NewSignIn,
            Some(signin_id),
            &Origin::of(ctx, Some(v)),
        )?;
    }
    let no_factor = !(v.available.webauthn || v.available.totp);
    if method == "password"
        && no_factor
        && AccountRisk::parse(&account.risk_state) == AccountRisk::AtRisk
        && v.decision == Decision::Allow
        && v.assessment.level == Level::Low
    {
        let actor = super::accounts::Actor::admin("system", ctx.ip);
        set_risk(
            c,
            auditor,
            &actor,
            now,
            &account.id,
            AccountRisk::None,
            "verified_sign_in",
        )?;
    }
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
    let Proof {
        method,
        acr,
        amr,
        verdict,
        tx,
        reservation,
        answers_tx,
    } = proof;
    let (auditor, ctx, uid, username) = (
        svc.auditor.clone(),
        ctx.clone(),
        user.id.clone(),
        user.username.clone(),
    );
    let previous = previous_digest;
    let engine = svc.risk.clone();
    let (issuer, webauthn, account) = (
        svc.settings.issuer.as_str().to_owned(),
        svc.passkeys.is_some(),
        user.clone(),
    );
    let mailer = svc.mailer.clone();
    let est = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                // The account's rows first, then this attempt's own (usually gone by then):
                // the other way round, two concurrent sign-ins of one account each held its own
                // reservation row and waited for the other's (PostgreSQL: deadlock, a 500).
                store::throttle::clear_account(c, &username)?;
                if let Some(id) = &reservation {
                    store::throttle::release(c, id)?;
                }
                let amr_refs: Vec<&str> = amr.iter().map(String::as_str).collect();
                let mut est = session::create(c, &cfg, &uid, now, &acr, &amr_refs, &ctx)?;
                if let Some(prev) = previous {
                    if let Some(s) = store::sessions::find_live(c, &prev, now.micros())? {
                        store::sessions::revoke(c, &s.id, now.micros())?;
                        // The same person continuing in the same browser (a step-up, a second
                        // sign-in): their applications' refresh tokens follow the new session
                        // instead of dying with the replaced one. Another account's do not.
                        if s.user_id == uid {
                            store::tokens::move_to_session(c, &s.id, &est.session.id)?;
                        }
                    }
                }
                let request = match &tx {
                    Some(t) => store::authz::find_request(c, t, now.micros())?
                        .filter(|r| r.device_id == ctx.device_id),
                    None => None,
                };
                if let Some(r) = &request {
                    store::authz::set_assessed_session(c, &r.id, &est.session.id)?;
                }
                if let Some(v) = &verdict {
                    let claim = serde_json::to_string(&v.claim()).unwrap_or_default();
                    store::sessions::set_risk(c, &est.session.id, &claim)?;
                    est.session.risk = Some(claim);
                    super::risk::learn(c, &engine, Some(&uid), v, true, now)?;
                    if v.assessment.level == Level::High {
                        // A high-risk sign-in got in: from now on every sign-in steps up.
                        let actor = super::accounts::Actor::admin("system", ctx.ip);
                        set_risk(
                            c,
                            &auditor,
                            &actor,
                            now,
                            &uid,
                            AccountRisk::AtRisk,
                            "high_risk_sign_in",
                        )?;
                    }
                }
                let outcome = if method == "password" || method == "passkey" {
                    "success"
                } else {
                    "step_up_passed"
                };
                // Before this sign-in's own row: has this browser signed in as the user before?
                let new_device = match &ctx.device_id {
                    Some(d) => !signins::verified_on_device(c, &uid, d)?,
                    None => true,
                };
                let signin_id = log_signin(
                    c,
                    now,
                    Some(&uid),
                    method,
                    outcome,
                    &ctx,
                    Some((&est.session.id, &acr, &est.session.amr)),
                    verdict.as_ref(),
                )?;
                if let Some(v) = &verdict {
                    let seen = SignInSeen {
                        new_device,
                        signin_id: &signin_id,
                    };
                    after_verified_sign_in(
                        c, &auditor, &mailer, &issuer, now, &account, method, v, &ctx, seen,
                    )?;
                }
                let mut details = serde_json::json!({ "method": method, "acr": acr, "amr": amr });
                if let Some(v) = &verdict {
                    details = crate::audit::with(
                        details,
                        crate::audit::risk_details(
                            &v.features,
                            &v.assessment,
                            &v.decision,
                            v.candidate.as_ref(),
                            v.geoip_build,
                        ),
                    );
                }
                auditor.record(
                    c,
                    now,
                    AuditEvent::new("login.succeeded")
                        .actor(uid.clone())
                        .target(est.session.id.clone())
                        .ip(ctx.ip)
                        .details(details),
                )?;
                // The request this sign-in was for gets its code in the same commit when the
                // new session is all it needs (the same decision `authorize::resume` makes).
                // Judged on the account as the sign-in was (as `authorize::resume` judges it):
                // a high-risk sign-in the policy let through gets its code, and the `at_risk`
                // it set applies from the next use of the session on.
                if let Some(r) = request.as_ref().filter(|_| answers_tx) {
                    est.code = super::authorize::mint_in_sign_in(
                        c,
                        now,
                        &issuer,
                        webauthn,
                        r,
                        &est.session,
                        &account,
                    )?;
                }
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

    // 1. Reserve an attempt before any hashing (see throttle.rs): over the limit, no hash.
    let (user, gate) = throttle::reserve_for(svc, now, &account, &attempt.ctx).await?;
    let reservation = match gate {
        throttle::Gate::Proceed(r) => r,
        throttle::Gate::Throttled {
            retry_after_secs, ..
        } => return Ok(Outcome::Throttled { retry_after_secs }),
    };

    // 2. Verify. Unknown users are checked against the dummy hash: same time, same answer.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let checked = match svc.hasher.verify(stored, attempt.password.clone()).await {
        Ok(c) => c,
        Err(e) => {
            // Not checked (the hasher was busy): not a failure.
            throttle::release(svc, reservation).await?;
            return Err(e.into());
        }
    };
    let user = match user {
        Some(u) if checked.ok && !u.disabled => u,
        other => {
            throttle::failed(
                svc,
                now,
                reservation,
                other.map(|u| u.id),
                "password",
                &attempt.ctx,
            )
            .await?;
            tracing::info!(client.ip = %attempt.ctx.ip, "sign-in refused");
            return Ok(Outcome::Refused);
        }
    };
    // The reservation is released with what the sign-in writes next (below): one commit.

    // 2b. A password known from breaches: a new one is required (after the second factor when
    //     the account has one). Only when the range API is configured.
    let user = match super::breached::check(svc, attempt.password.expose_secret()).await {
        super::breached::Breach::Breached(n) => {
            super::breached::flag_signin(svc, now, &user, n).await?
        }
        _ => user,
    };

    // 3. Upgrade the stored hash if the configured cost changed since it was made.
    if checked.needs_rehash {
        let hash = svc.hasher.hash(attempt.password).await?;
        let uid = user.id.clone();
        svc.db
            .run(move |c| users::set_password_hash(c, &uid, &hash, now.micros()))
            .await?;
    }

    // 4. Score the sign-in and let policy decide: frictionless, step-up, or block.
    // The application this sign-in is for may have its own risk thresholds.
    let client_id = match attempt.tx.clone() {
        Some(tx) => svc
            .db
            .run(move |c| store::authz::find_request(c, &tx, now.micros()))
            .await?
            .map(|r| r.client_id),
        None => None,
    };
    let mut verdict = evaluate(
        svc,
        now,
        &user.id,
        &attempt.ctx,
        &account,
        client_id.as_deref(),
        Some(reservation.id()),
    )
    .await?;
    let previous = attempt.previous_session.map(|t| token_digest(&t));
    // 5. The one enforcement point turns the risk decision and the account's state into what
    //    this sign-in needs: nothing more, a second factor, or a refusal.
    // Staff with a factor always use it: their console roles matter only then.
    let console = if verdict.available.webauthn || verdict.available.totp {
        super::access::console(svc, &user.id).await?
    } else {
        super::enforce::ConsoleRoles::default()
    };
    let facts = Facts {
        now: now.micros(),
        device_id: attempt.ctx.device_id.as_deref(),
        decision: Some((verdict.decision, verdict.assessment.level)),
        want_mfa: attempt.want_mfa,
        console,
        ..Facts::default()
    };
    let account = AccountView {
        user: &user,
        factors: verdict.available,
    };
    match enforce::require(&account, None, &facts, Action::SignIn(Method::Password)) {
        Requirement::Allow => {
            // What happened is an allow (also when policy asked for a factor the account cannot
            // have yet at low risk): the log, the session and the tokens must say so.
            verdict.decision = Decision::Allow;
        }
        Requirement::StepUp { phishing_resistant } => {
            throttle::release(svc, reservation).await?;
            verdict.decision = Decision::StepUp { phishing_resistant };
            record_decision(
                svc,
                now,
                &user.id,
                "password",
                "step_up_required",
                &attempt.ctx,
                &verdict,
            )
            .await?;
            let pending = mfa::begin_step_up(
                svc,
                now,
                mfa::StepUpStart {
                    user: &user,
                    amr: vec!["pwd".into()],
                    tx: attempt.tx,
                    previous_digest: previous,
                    verdict: Some(verdict),
                    requirement: Requirement::StepUp { phishing_resistant },
                    device_id: attempt.ctx.device_id.clone(),
                    reset: false,
                },
            )
            .await?;
            return Ok(Outcome::SecondFactor { pending });
        }
        Requirement::Deny(refusal @ (Refusal::Unverified | Refusal::HeldForReview)) => {
            // A registration not complete yet: not an attack, nothing for the review queue.
            throttle::release(svc, reservation).await?;
            return Ok(Outcome::NotYet {
                message: refusal.message().to_owned(),
            });
        }
        Requirement::Deny(refusal) => {
            throttle::release(svc, reservation).await?;
            verdict.decision = match refusal {
                Refusal::Blocked(reason) => Decision::Block { reason },
                _ => Decision::Block {
                    reason: BlockReason::Policy,
                },
            };
            record_decision(
                svc,
                now,
                &user.id,
                "password",
                "blocked",
                &attempt.ctx,
                &verdict,
            )
            .await?;
            tracing::warn!(user.id = %user.id, score = verdict.assessment.score, "sign-in blocked");
            return Ok(Outcome::Blocked {
                message: refusal.message().to_owned(),
            });
        }
        // A sign-in that creates a session never needs these; treat them as a step-up refusal.
        Requirement::Reauthenticate { .. }
        | Requirement::ChangePassword
        | Requirement::EnrolFactor => {
            throttle::release(svc, reservation).await?;
            return Ok(Outcome::Refused);
        }
    }

    // 6. Frictionless: the risk engine vouched for this password-only sign-in (amr `rba`).
    let proof = Proof {
        method: "password",
        acr: ACR_PWD.into(),
        amr: vec!["pwd".into(), "rba".into()],
        verdict: Some(verdict),
        tx: attempt.tx.clone(),
        reservation: Some(reservation.into_release()),
        answers_tx: true,
    };
    let established = establish(svc, now, &user, proof, &attempt.ctx, previous).await?;
    Ok(Outcome::SignedIn {
        user: Box::new(user),
        established: Box::new(established),
    })
}
