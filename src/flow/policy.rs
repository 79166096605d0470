//! The risk policy admins edit at run time: thresholds, the action per level, the impossible
//! travel speed, and a report-only candidate. Stored in the database (`risk_state` row
//! `policy`) so every node enforces the same policy; the configuration file only supplies the
//! values used until an admin saves one.

use serde::{Deserialize, Serialize};

use super::accounts::Actor;
use super::risk::RiskEngine;
use super::{FlowError, Services};
use crate::clock::Timestamp;
use crate::risk::{decide, Assessment, AvailableFactors, Decision, Level, Policy, RiskConfig};
use crate::store::{self, DbConn, StoreResult};

const ROW: &str = "policy";

/// A candidate policy evaluated beside the enforced one and only logged ("report-only").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub medium: u8,
    pub high: u8,
    pub actions: Policy,
}

/// The policy in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimePolicy {
    /// Score (0–100) from which a sign-in is medium risk.
    pub medium: u8,
    /// Score from which it is high risk.
    pub high: u8,
    pub actions: Policy,
    pub travel_speed_kmh: u32,
    #[serde(default)]
    pub candidate: Option<Candidate>,
}

impl RuntimePolicy {
    /// Refuse what would make the engine misbehave: thresholds must be 1–100 and ordered, and
    /// the travel speed plausible for aircraft.
    pub fn validate(&self) -> Result<(), FlowError> {
        let ordered = |m: u8, h: u8| (1..=100).contains(&m) && (1..=100).contains(&h) && m < h;
        if !ordered(self.medium, self.high) {
            return Err(FlowError::Invalid(
                "Thresholds must be between 1 and 100, and medium must be below high.".into(),
            ));
        }
        if let Some(c) = &self.candidate {
            if !ordered(c.medium, c.high) {
                return Err(FlowError::Invalid(
                    "The candidate's thresholds must be between 1 and 100, and medium must be below high.".into(),
                ));
            }
        }
        if !(100..=5000).contains(&self.travel_speed_kmh) {
            return Err(FlowError::Invalid(
                "The impossible-travel speed must be between 100 and 5000 km/h.".into(),
            ));
        }
        Ok(())
    }

    /// The model configuration this policy implies (thresholds and travel speed). A client's
    /// own thresholds can only make its sign-ins stricter: the request names the client, so an
    /// attacker would otherwise pick the laxest one for the session they create.
    pub fn config(&self, base: &RiskConfig, client: Option<(i64, i64)>) -> RiskConfig {
        let mut cfg = *base;
        cfg.thresholds.medium = self.medium;
        cfg.thresholds.high = self.high;
        if let Some((m, h)) = client {
            if let (Ok(m), Ok(h)) = (u8::try_from(m), u8::try_from(h)) {
                cfg.thresholds.medium = m.min(self.medium);
                cfg.thresholds.high = h
                    .min(self.high)
                    .max(cfg.thresholds.medium.saturating_add(1));
            }
        }
        cfg.rules.travel.max_speed_kmh = f64::from(self.travel_speed_kmh);
        cfg
    }
}

/// The policy from the configuration, before any admin saved one.
pub fn configured(engine: &RiskEngine) -> RuntimePolicy {
    RuntimePolicy {
        medium: engine.cfg.thresholds.medium,
        high: engine.cfg.thresholds.high,
        actions: engine.policy,
        // The engine's configured speed is a whole number of km/h (from the config key).
        travel_speed_kmh: engine
            .cfg
            .rules
            .travel
            .max_speed_kmh
            .round()
            .clamp(0.0, 1e6) as u32,
        candidate: engine.candidate.map(|p| Candidate {
            medium: engine.cfg.thresholds.medium,
            high: engine.cfg.thresholds.high,
            actions: p,
        }),
    }
}

/// The saved policy, if an admin saved one.
pub fn stored(conn: &mut DbConn) -> StoreResult<Option<RuntimePolicy>> {
    Ok(store::risk::state(conn, ROW)?.and_then(|j| serde_json::from_str(&j).ok()))
}

/// The policy in force now.
pub async fn current(svc: &Services) -> Result<RuntimePolicy, FlowError> {
    let saved = svc.db.run(stored).await?;
    Ok(saved.unwrap_or_else(|| configured(&svc.risk)))
}

/// Save a new policy (an admin's change), audited with the old and new values.
pub async fn save(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    new: RuntimePolicy,
) -> Result<(), FlowError> {
    new.validate()?;
    let (auditor, actor, configured) = (svc.auditor.clone(), actor.clone(), configured(&svc.risk));
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                let old = stored(c)?.unwrap_or(configured);
                store::risk::put_state(
                    c,
                    ROW,
                    &serde_json::to_string(&new).unwrap_or_default(),
                    now.micros(),
                )?;
                auditor.record(
                    c,
                    now,
                    actor
                        .event("policy.changed")
                        .target(ROW)
                        .details(serde_json::json!({ "before": old, "after": new })),
                )
            })
        })
        .await?;
    Ok(())
}

/// The level of a stored score under other thresholds.
pub fn level_at(score: u8, medium: u8, high: u8) -> Level {
    if score >= high {
        Level::High
    } else if score >= medium {
        Level::Medium
    } else {
        Level::Low
    }
}

/// What `actions` with thresholds `medium`/`high` decide for an assessment made under other
/// thresholds: the score is re-levelled, but a hard rule's minimum level is kept.
pub fn decide_with(
    a: &Assessment,
    medium: u8,
    high: u8,
    actions: &Policy,
    available: AvailableFactors,
) -> Decision {
    let mut a = a.clone();
    let level = level_at(a.score, medium, high);
    a.level = if a.rule.is_some() {
        a.level.max(level)
    } else {
        level
    };
    decide(&a, actions, available, None)
}

/// [`decide_with`] for a stored assessment. The factors a user had then are not stored, so the
/// backtest assumes every factor was available: it counts what the policy asks for, not whether
/// the user could answer.
pub fn would_decide(a: &Assessment, medium: u8, high: u8, actions: &Policy) -> Decision {
    let all = AvailableFactors {
        webauthn: true,
        totp: true,
        recovery: true,
    };
    decide_with(a, medium, high, actions, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(medium: u8, high: u8) -> RuntimePolicy {
        RuntimePolicy {
            medium,
            high,
            actions: Policy::default(),
            travel_speed_kmh: 900,
            candidate: None,
        }
    }

    #[test]
    fn a_client_can_only_tighten_the_thresholds() {
        let base = RiskConfig::default();
        let p = policy(40, 70);
        // Stricter: taken as is.
        let c = p.config(&base, Some((20, 50)));
        assert_eq!((c.thresholds.medium, c.thresholds.high), (20, 50));
        // Laxer: the global thresholds stay (an attacker picks the request's client).
        let c = p.config(&base, Some((90, 99)));
        assert_eq!((c.thresholds.medium, c.thresholds.high), (40, 70));
        // Mixed: each threshold is the stricter one, and high stays above medium.
        let c = p.config(&base, Some((10, 100)));
        assert_eq!((c.thresholds.medium, c.thresholds.high), (10, 70));
    }
}
