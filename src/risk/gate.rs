//! The shipping gate of a model version (`vigil risk compare`): a candidate replaces the
//! previous version only if, on the same replayed log with the same simulated attacks, its
//! ROC AUC is not lower against any attacker model and higher against the targeted and
//! very-targeted ones, and no fairness group's legitimate step-up rate (by country, device
//! type, history length, and overall) rises by more than 10 % relative. Groups with fewer
//! than `MIN_GROUP` legitimate sign-ins are too small to judge and are listed but not gated.
//! Pure: it compares two `replay` reports.

use serde_json::{json, Value};

use super::replay::ATTACKERS;

/// Attacker models whose AUC must strictly improve.
pub const MUST_IMPROVE: [&str; 2] = ["targeted", "very_targeted"];
/// Largest allowed relative rise of a group's legitimate step-up rate.
pub const MAX_STEP_UP_RISE: f64 = 0.10;
/// Legitimate sign-ins a fairness group needs to be gated.
pub const MIN_GROUP: u64 = 30;

/// One check of the gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub what: String,
    pub previous: Option<f64>,
    pub candidate: Option<f64>,
    pub pass: bool,
}

/// Every check; the candidate ships if all pass.
pub fn gate(previous: &Value, candidate: &Value) -> Vec<Check> {
    let mut out = Vec::new();
    for m in ATTACKERS {
        let p = previous["by_attacker"][m]["auc"].as_f64();
        let c = candidate["by_attacker"][m]["auc"].as_f64();
        let strict = MUST_IMPROVE.contains(&m);
        let pass = match (p, c) {
            (Some(p), Some(c)) => {
                if strict {
                    c > p
                } else {
                    c >= p
                }
            }
            _ => false,
        };
        let rel = if strict { ">" } else { "≥" };
        out.push(Check {
            what: format!("AUC {m} (candidate {rel} previous)"),
            previous: p,
            candidate: c,
            pass,
        });
    }
    // Not in the rule, but a version must not buy its fairness by stopping fewer
    // attacks at the configured policy.
    let stop = |r: &Value| r["policy"]["attack_stop_rate"].as_f64();
    out.push(Check {
        what: "attack stop rate at the policy (candidate ≥ previous)".into(),
        previous: stop(previous),
        candidate: stop(candidate),
        pass: matches!((stop(previous), stop(candidate)), (Some(p), Some(c)) if c >= p),
    });
    let step = |r: &Value| r["policy"]["legit_step_up_rate"].as_f64();
    out.push(step_check(
        "legit step-up rate, overall".into(),
        step(previous),
        step(candidate),
    ));
    let groups = |r: &Value| r["fairness"]["groups"].as_object().cloned();
    if let (Some(pg), Some(cg)) = (groups(previous), groups(candidate)) {
        for (dim, g) in &cg {
            for (name, c) in g.as_object().into_iter().flatten() {
                let n = c["n"].as_u64().unwrap_or(0);
                if n < MIN_GROUP {
                    continue;
                }
                let p = &pg[dim][name];
                out.push(step_check(
                    format!("legit step-up rate, {dim}={name} (n {n})"),
                    p["step_up_rate"].as_f64(),
                    c["step_up_rate"].as_f64(),
                ));
            }
        }
    }
    out
}

fn step_check(what: String, p: Option<f64>, c: Option<f64>) -> Check {
    let pass = match (p, c) {
        (Some(p), Some(c)) => c <= p * (1.0 + MAX_STEP_UP_RISE) + 1e-12,
        (None, Some(_)) => true, // a group the previous run did not see
        _ => false,
    };
    Check {
        what,
        previous: p,
        candidate: c,
        pass,
    }
}

/// The gate's verdict as JSON: `{ "ship": bool, "checks": [...] }`.
pub fn verdict_json(checks: &[Check]) -> Value {
    json!({
        "ship": checks.iter().all(|c| c.pass),
        "checks": checks.iter().map(|c| json!({
            "what": c.what,
            "previous": c.previous,
            "candidate": c.candidate,
            "pass": c.pass,
        })).collect::<Vec<_>>(),
    })
}

/// The gate as text, failed checks marked.
pub fn verdict_table(checks: &[Check]) -> String {
    let f = |v: Option<f64>| v.map_or("—".to_owned(), |x| format!("{x:.4}"));
    let mut s = String::new();
    for c in checks {
        s.push_str(&format!(
            "{} {:<60} {:>8} → {:>8}\n",
            if c.pass { "ok  " } else { "FAIL" },
            c.what,
            f(c.previous),
            f(c.candidate)
        ));
    }
    let ship = checks.iter().all(|c| c.pass);
    s.push_str(if ship {
        "verdict: SHIP (the candidate beats the previous version)\n"
    } else {
        "verdict: REJECT (see FAIL above)\n"
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(aucs: [f64; 4], step: f64, group_step: f64) -> Value {
        let mut by = serde_json::Map::new();
        for (m, a) in ATTACKERS.iter().zip(aucs) {
            by.insert((*m).to_owned(), json!({ "auc": a }));
        }
        json!({
            "by_attacker": by,
            "policy": { "legit_step_up_rate": step, "attack_stop_rate": 0.3 },
            "fairness": { "groups": { "country": {
                "NO": { "n": 100, "step_up_rate": group_step },
                "tiny": { "n": 3, "step_up_rate": 1.0 },
            } } },
        })
    }

    #[test]
    fn a_better_and_no_less_fair_candidate_ships() {
        let prev = report([0.9, 0.9, 0.8, 0.5], 0.02, 0.02);
        let cand = report([0.9, 0.91, 0.85, 0.7], 0.021, 0.022);
        let checks = gate(&prev, &cand);
        assert!(checks.iter().all(|c| c.pass), "{checks:#?}");
        assert!(verdict_table(&checks).contains("SHIP"));
        assert_eq!(verdict_json(&checks)["ship"], true);
    }

    #[test]
    fn worse_auc_or_a_group_stepped_up_more_is_rejected() {
        let prev = report([0.9, 0.9, 0.8, 0.5], 0.02, 0.02);
        // Lower naive AUC.
        let c = gate(&prev, &report([0.89, 0.9, 0.85, 0.7], 0.02, 0.02));
        assert!(!c[0].pass && c[1..].iter().all(|c| c.pass), "{c:#?}");
        // Targeted merely equal.
        let c = gate(&prev, &report([0.9, 0.9, 0.8, 0.7], 0.02, 0.02));
        assert!(!c[2].pass);
        // A group up 15 % relative (0.02 → 0.023) fails; the tiny group is not gated.
        let c = gate(&prev, &report([0.9, 0.9, 0.85, 0.7], 0.02, 0.023));
        let failed: Vec<&str> = c
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(failed, vec!["legit step-up rate, country=NO (n 100)"]);
        assert!(verdict_table(&c).contains("REJECT"));
    }
}
