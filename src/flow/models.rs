//! The risk model in force and its shadow. Stored in the database (`risk_state` row `models`)
//! beside the policy, so every node scores with the same model and a promotion reaches all of
//! them with the next sign-in:
//!
//! ```text
//!  risk fit / retraining ─► shadow (scored beside the live model on every sign-in, logged in
//!                           signins.shadow, never enforced)
//!  admin: promote ─► export the labelled log ─► replay live and shadow ─► risk::gate
//!                    ship: shadow becomes live (audited with the numbers)
//!                    reject: nothing changes (audited with the numbers)
//! ```
//!
//! Without a stored live model the shipped version (`RiskConfig::default()`) is live, so an
//! upgrade that ships a new version changes the model of deployments that never promoted one,
//! and leaves alone those that did: their model changes only through this gate.

use std::io::{BufReader, Seek, Write};

use serde::{Deserialize, Serialize};

use super::accounts::Actor;
use super::policy::RuntimePolicy;
use super::reports::{export_labelled, Exported};
use super::risk::RiskEngine;
use super::{FlowError, Services};
use crate::clock::Timestamp;
use crate::risk::gate::{self, Check};
use crate::risk::replay::{self, ReplayOptions};
use crate::risk::{self, RiskConfig};
use crate::store::{self, DbConn, StoreError, StoreResult};

const ROW: &str = "models";
const DAY: i64 = 86_400_000_000;

/// The fewest legitimate labelled sign-ins the gate judges on: below it the attacker models'
/// AUCs rest on a handful of users and a promotion would be a coin toss.
pub const MIN_LEGITIMATE: u64 = 200;

/// The seed of the simulated attacks the gate injects (the same for both models).
const GATE_SEED: u64 = 1;

/// The actor retraining acts as, in the audit log and on the policy page.
pub const RETRAINING: &str = "vigil (retraining)";

/// A model configuration under the name people know it by, and who put it where when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedModel {
    pub name: String,
    pub config: RiskConfig,
    /// Since when it holds its place (µs).
    pub since: i64,
    pub by: String,
}

/// The stored models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Models {
    /// None: the shipped version.
    #[serde(default)]
    pub live: Option<NamedModel>,
    #[serde(default)]
    pub shadow: Option<NamedModel>,
    /// When retraining last looked (µs): it proposes a candidate every
    /// `VIGIL_RISK_RETRAIN_DAYS` from then.
    #[serde(default)]
    pub retrained_at: Option<i64>,
}

impl Models {
    /// The live model's configuration before the policy's thresholds and travel speed.
    pub fn live_config(&self, engine: &RiskEngine) -> RiskConfig {
        self.live.as_ref().map_or(engine.cfg, |m| m.config)
    }

    /// The live model's name.
    pub fn live_name(&self) -> String {
        self.live
            .as_ref()
            .map_or_else(|| risk::MODEL_CODE_VERSION.to_owned(), |m| m.name.clone())
    }
}

/// The stored models (the default when none were stored or the row does not parse).
pub fn stored(conn: &mut DbConn) -> StoreResult<Models> {
    Ok(store::risk::state(conn, ROW)?
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default())
}

pub async fn current(svc: &Services) -> Result<Models, FlowError> {
    Ok(svc.db.run(stored).await?)
}

/// A model by version name (`risk::config::VERSIONS`) or as the JSON `vigil risk fit` prints;
/// refused when it could make scores meaningless.
pub fn parse_config(text: &str) -> Result<(Option<&'static str>, RiskConfig), FlowError> {
    let t = text.trim();
    if let Some((name, f)) = risk::config::VERSIONS.iter().find(|(n, _)| *n == t) {
        return Ok((Some(name), f()));
    }
    let cfg: RiskConfig = serde_json::from_str(t).map_err(|e| {
        FlowError::Invalid(format!(
            "Give a model version name or the JSON `vigil risk fit` prints ({e})."
        ))
    })?;
    let w = &cfg.weights;
    let numbers = [
        w.network,
        w.device,
        w.hour,
        w.reputation,
        w.failed_account,
        w.failed_ip,
        w.spraying,
        cfg.score.center,
    ];
    let levels = (0..8).map(|i| w.levels.get(i));
    if numbers.iter().any(|x| !x.is_finite())
        || levels.clone().any(|x| !x.is_finite() || x < 0.0)
        || !(cfg.score.scale.is_finite() && cfg.score.scale > 0.0)
    {
        return Err(FlowError::Invalid(
            "The model's weights must be finite and not negative, and its score scale above 0."
                .into(),
        ));
    }
    Ok((None, cfg))
}

fn write(
    conn: &mut DbConn,
    now: Timestamp,
    f: &mut dyn FnMut(&mut Models) -> Result<(), String>,
) -> StoreResult<Result<Models, String>> {
    let mut outcome: Result<Models, String> = Err(String::new());
    store::risk::update_state(conn, ROW, now.micros(), &mut |cur| {
        let mut m: Models = cur
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        let before = cur.map(str::to_owned);
        match f(&mut m) {
            Ok(()) => {
                outcome = Ok(m.clone());
                serde_json::to_string(&m).unwrap_or_default()
            }
            Err(e) => {
                outcome = Err(e);
                // Unchanged (an equal write only moves `updated_at`).
                before.unwrap_or_else(|| {
                    serde_json::to_string(&Models::default()).unwrap_or_default()
                })
            }
        }
    })?;
    Ok(outcome)
}

/// Put a model in shadow (replacing any other), audited.
pub async fn set_shadow(
    svc: &Services,
    actor: &Actor,
    by: &str,
    now: Timestamp,
    name: &str,
    config: RiskConfig,
) -> Result<(), FlowError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(FlowError::Invalid(
            "Name the model (up to 80 characters).".into(),
        ));
    }
    let model = NamedModel {
        name: name.to_owned(),
        config,
        since: now.micros(),
        by: by.to_owned(),
    };
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let m2 = model.clone();
                write(c, now, &mut |m| {
                    m.shadow = Some(m2.clone());
                    Ok(())
                })?
                .map_err(StoreError::Conflict)?;
                auditor.record(
                    c,
                    now,
                    actor.event("model.shadow_set").target(ROW).details(
                        serde_json::json!({ "name": model.name, "version": risk::model_version(&model.config), "config": model.config }),
                    ),
                )
            })
        })
        .await
        .map_err(conflict)?;
    Ok(())
}

fn conflict(e: StoreError) -> FlowError {
    match e {
        StoreError::Conflict(m) => FlowError::Conflict(m),
        e => e.into(),
    }
}

/// Stop scoring the shadow model, audited.
pub async fn clear_shadow(svc: &Services, actor: &Actor, now: Timestamp) -> Result<(), FlowError> {
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let mut was = None;
                write(c, now, &mut |m| {
                    was = m.shadow.take().map(|s| s.name);
                    Ok(())
                })?
                .map_err(StoreError::Conflict)?;
                auditor.record(
                    c,
                    now,
                    actor
                        .event("model.shadow_cleared")
                        .target(ROW)
                        .details(serde_json::json!({ "name": was })),
                )
            })
        })
        .await
        .map_err(conflict)?;
    Ok(())
}

/// The gate's verdict on the shadow model against the live one, on vigil's own labelled log.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub live: String,
    pub shadow: String,
    pub exported: Exported,
    pub checks: Vec<Check>,
    pub ship: bool,
}

/// Export the labelled log of the last `days` to a temporary file (the log can be large; the
/// replays stream it).
async fn export_window(
    svc: &Services,
    now: Timestamp,
    days: u32,
) -> Result<(std::fs::File, Exported), FlowError> {
    let mut file = tempfile_in_tmp()?;
    let since = now.micros() - i64::from(days) * DAY;
    let exported = {
        let mut w = std::io::BufWriter::new(&mut file);
        let n = export_labelled(svc, since, &mut w).await?;
        w.flush()
            .map_err(|e| FlowError::Internal(format!("exporting the log: {e}")))?;
        n
    };
    Ok((file, exported))
}

fn tempfile_in_tmp() -> Result<std::fs::File, FlowError> {
    // An unlinked file: nothing is left behind whatever happens to the process.
    let path = std::env::temp_dir().join(format!("vigil-gate-{}.csv", store::new_id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| FlowError::Internal(format!("{}: {e}", path.display())))?;
    let _ = std::fs::remove_file(&path);
    Ok(file)
}

fn too_few(n: &Exported) -> Option<FlowError> {
    (n.legitimate < MIN_LEGITIMATE).then(|| {
        FlowError::Invalid(format!(
            "The log holds {} labelled legitimate sign-ins; the gate needs at least {MIN_LEGITIMATE} to judge a model.",
            n.legitimate
        ))
    })
}

fn replay_opts(svc: &Services) -> ReplayOptions {
    ReplayOptions {
        inject: true,
        skip_malformed: true,
        seed: GATE_SEED,
        failure_window_secs: svc.settings.throttle.window_secs,
    }
}

/// `risk compare` of the shadow against the live model on the labelled log of the last `days`,
/// under the policy in force. Pure computation off the async workers.
pub async fn judge(
    svc: &Services,
    now: Timestamp,
    days: u32,
) -> Result<(Models, Judgement), FlowError> {
    let models = current(svc).await?;
    let Some(shadow) = models.shadow.clone() else {
        return Err(FlowError::Invalid(
            "There is no shadow model to promote.".into(),
        ));
    };
    let policy = super::policy::current(svc).await?;
    let (file, exported) = export_window(svc, now, days).await?;
    if let Some(e) = too_few(&exported) {
        return Err(e);
    }
    let live_cfg = policy.config(&models.live_config(&svc.risk), None);
    let shadow_cfg = policy.config(&shadow.config, None);
    let opts = replay_opts(svc);
    let checks =
        tokio::task::spawn_blocking(move || compare(file, &opts, &live_cfg, &shadow_cfg, &policy))
            .await
            .map_err(|e| FlowError::Internal(format!("the gate stopped: {e}")))??;
    let ship = checks.iter().all(|c| c.pass);
    Ok((
        models.clone(),
        Judgement {
            live: models.live_name(),
            shadow: shadow.name,
            exported,
            checks,
            ship,
        },
    ))
}

fn compare(
    mut file: std::fs::File,
    opts: &ReplayOptions,
    live: &RiskConfig,
    shadow: &RiskConfig,
    policy: &RuntimePolicy,
) -> Result<Vec<Check>, FlowError> {
    let mut reports = Vec::with_capacity(2);
    for cfg in [live, shadow] {
        file.rewind()
            .map_err(|e| FlowError::Internal(format!("re-reading the log: {e}")))?;
        let r = replay::replay(BufReader::new(&file), opts, cfg, &policy.actions, None)
            .map_err(|e| FlowError::Internal(format!("replaying the log: {e}")))?;
        reports.push(r);
    }
    Ok(gate::gate(&reports[0], &reports[1]))
}

/// Promote the shadow model if the gate passes on the labelled log of the last `days`; either
/// way the verdict is audited with its numbers. Returns the judgement (`ship` says which).
pub async fn promote(
    svc: &Services,
    actor: &Actor,
    by: &str,
    now: Timestamp,
    days: u32,
) -> Result<Judgement, FlowError> {
    let (judged_models, j) = judge(svc, now, days).await?;
    let (auditor, actor2, j2) = (svc.auditor.clone(), actor.clone(), j.clone());
    let label = by.to_owned();
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let details = serde_json::json!({
                    "live": j2.live,
                    "shadow": j2.shadow,
                    "log": j2.exported,
                    "gate": gate::verdict_json(&j2.checks),
                });
                if !j2.ship {
                    return auditor.record(
                        c,
                        now,
                        actor2
                            .event("model.promotion_refused")
                            .target(ROW)
                            .details(details),
                    );
                }
                let judged_shadow = judged_models.shadow.clone();
                write(c, now, &mut |m| {
                    // Another admin changed the shadow while the gate ran: what passed is not
                    // what would be promoted.
                    if m.shadow.as_ref().map(|s| s.config)
                        != judged_shadow.as_ref().map(|s| s.config)
                    {
                        return Err(
                            "The shadow model changed while it was being judged; judge it again."
                                .into(),
                        );
                    }
                    let mut promoted = m
                        .shadow
                        .take()
                        .ok_or("There is no shadow model to promote.")?;
                    promoted.since = now.micros();
                    promoted.by = label.clone();
                    m.live = Some(promoted);
                    Ok(())
                })?
                .map_err(StoreError::Conflict)?;
                auditor.record(
                    c,
                    now,
                    actor2.event("model.promoted").target(ROW).details(details),
                )
            })
        })
        .await
        .map_err(conflict)?;
    Ok(j)
}

/// What retraining did.
#[derive(Debug, Clone, PartialEq)]
pub enum Retrained {
    /// Retraining is off, or not due yet.
    NotDue,
    /// Due, but the log was too small or a person's shadow model is being evaluated.
    Skipped(String),
    /// A fitted candidate is in shadow under this name.
    Proposed(String),
}

/// Every `VIGIL_RISK_RETRAIN_DAYS` (hourly housekeeping asks): fit the live model's weights on
/// the labelled log of that many days and put the result in shadow for a person to promote.
/// The first call only starts the clock. A shadow model a person set is never replaced.
pub async fn retrain_if_due(svc: &Services, now: Timestamp) -> Result<Retrained, FlowError> {
    let days = svc.settings.risk_retrain_days;
    if days == 0 {
        return Ok(Retrained::NotDue);
    }
    let models = current(svc).await?;
    let due = match models.retrained_at {
        None => false,
        Some(t) => now.micros() - t >= i64::from(days) * DAY,
    };
    if !due {
        if models.retrained_at.is_none() {
            stamp(svc, now).await?;
        }
        return Ok(Retrained::NotDue);
    }
    if models.shadow.as_ref().is_some_and(|s| s.by != RETRAINING) {
        stamp(svc, now).await?;
        return Ok(Retrained::Skipped(
            "a shadow model an administrator set is being evaluated".into(),
        ));
    }
    // Stamped once the log is read: a database that is down now is retried next hour.
    let (file, exported) = export_window(svc, now, days).await?;
    stamp(svc, now).await?;
    if let Some(FlowError::Invalid(m)) = too_few(&exported) {
        return Ok(Retrained::Skipped(m));
    }
    let policy = super::policy::current(svc).await?;
    let base = policy.config(&models.live_config(&svc.risk), None);
    let opts = replay_opts(svc);
    let fitted = tokio::task::spawn_blocking(move || {
        let open = || {
            file.try_clone()
                .and_then(|mut f| f.rewind().map(|()| f))
                .map(BufReader::new)
                .map_err(|e| replay::ReplayError::Io(e.to_string()))
        };
        risk::fit::fit(
            open,
            &opts,
            &base,
            &base,
            &policy.actions,
            0.01,
            risk::fit::Shape::Levels,
        )
    })
    .await
    .map_err(|e| FlowError::Internal(format!("retraining stopped: {e}")))?;
    let fitted = match fitted {
        Ok(f) => f,
        Err(e) => return Ok(Retrained::Skipped(format!("the fit failed: {e}"))),
    };
    let name = format!("fitted {}", now.display());
    let model = NamedModel {
        name: name.clone(),
        config: fitted.config,
        since: now.micros(),
        by: RETRAINING.into(),
    };
    let auditor = svc.auditor.clone();
    let details = serde_json::json!({
        "name": name,
        "version": risk::model_version(&model.config),
        "log": exported,
        "samples": fitted.samples,
        "attacks": fitted.attacks,
        "log_loss": fitted.fit.loss,
        "config": model.config,
    });
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                write(c, now, &mut |m| {
                    if m.shadow.as_ref().is_some_and(|s| s.by != RETRAINING) {
                        return Err("an administrator set a shadow model meanwhile".into());
                    }
                    m.shadow = Some(model.clone());
                    Ok(())
                })?
                .map_err(StoreError::Conflict)?;
                auditor.record(
                    c,
                    now,
                    Actor::new("system")
                        .event("model.retrained")
                        .target(ROW)
                        .details(details.clone()),
                )
            })
        })
        .await
        .map_err(conflict)?;
    Ok(Retrained::Proposed(name))
}

async fn stamp(svc: &Services, now: Timestamp) -> Result<(), FlowError> {
    svc.db
        .run(move |c| {
            write(c, now, &mut |m| {
                m.retrained_at = Some(now.micros());
                Ok(())
            })
            .map(|_| ())
        })
        .await?;
    Ok(())
}
