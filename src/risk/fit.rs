//! `vigil risk fit`: the per-level weights of the model by L2-regularised logistic regression on
//! a labelled (replayed) log. The features of an event are its per-level log ratios as
//! `assess` computes them with unit weights and the candidate's familiarity caps — the same
//! numbers the model adds up, so a fitted weight is "how much to trust this level". Weights are
//! kept non-negative (a familiar value must never raise the score, a novel one never lower
//! it), the intercept is not regularised and not used for scoring (ranking does not need it;
//! the score map calibrates). Failure counts and rules are hard evidence the simulated
//! attackers do not exercise, so they enter as a fixed offset with the candidate's weights.
//!
//! The solver is Newton's method (a dozen features: the Hessian is tiny) with an active set for
//! the non-negativity bound: fit, pin the most negative weight at 0, refit.

use std::io::BufRead;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{Floors, PerLevel, RiskConfig};
use super::replay::{replay_observed, ReplayError, ReplayOptions};
use super::{Assessment, Policy};

/// The fitted features, in order: the eight hierarchy levels, then the hour of day.
pub const FEATURES: [&str; 9] = [
    "country",
    "asn",
    "city",
    "ip_prefix",
    "device_type",
    "os",
    "browser",
    "fingerprint",
    "hour",
];
const N: usize = FEATURES.len();
/// Features kept at the candidate's weight, not fitted. The country: the simulated attackers
/// but the naive one sit in the victim's country, so the data would teach that a new country
/// hardly matters — against a deliberate rule (a new country steps up) that the synthetic
/// attack mix cannot judge.
pub const PINNED: [&str; 1] = ["country"];
/// Events kept for the fit (a uniform reservoir sample beyond this), so memory stays bounded.
pub const MAX_SAMPLES: usize = 400_000;

/// A logistic-regression result.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// Mean weighted log loss on the training data (without the penalty).
    pub loss: f64,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Solve `a · x = b` by Gaussian elimination with partial pivoting (`a` is small and, with
/// the L2 term, positive definite). `None` if singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[p][c].abs() < 1e-12 {
            return None;
        }
        a.swap(c, p);
        b.swap(c, p);
        let (top, rest) = a.split_at_mut(c + 1);
        let pivot = &top[c];
        for (r, row) in rest.iter_mut().enumerate() {
            let f = row[c] / pivot[c];
            for (x, p) in row.iter_mut().zip(pivot).skip(c) {
                *x -= f * p;
            }
            b[c + 1 + r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

/// Minimise `Σ s_i · logloss(y_i, b + w·x_i + offset_i) / Σ s_i + l2/2 · |w|²` over `w ≥ 0`
/// (if `nonneg`) and `b`. `x` rows must all have the same length.
pub fn logistic(
    x: &[Vec<f64>],
    y: &[bool],
    offset: &[f64],
    sample_weight: &[f64],
    l2: f64,
    nonneg: bool,
) -> Logistic {
    let d = x.first().map_or(0, Vec::len);
    let mut free: Vec<bool> = vec![true; d];
    loop {
        let (w, b) = newton(x, y, offset, sample_weight, l2, &free);
        let worst = (0..d)
            .filter(|&j| free[j] && w[j] < 0.0)
            .min_by(|&i, &j| w[i].total_cmp(&w[j]));
        match worst {
            Some(j) if nonneg => free[j] = false,
            _ => {
                let loss = mean_loss(x, y, offset, sample_weight, &w, b);
                return Logistic {
                    weights: w,
                    intercept: b,
                    loss,
                };
            }
        }
    }
}

fn mean_loss(x: &[Vec<f64>], y: &[bool], off: &[f64], s: &[f64], w: &[f64], b: f64) -> f64 {
    let (mut l, mut t) = (0.0, 0.0);
    for i in 0..x.len() {
        let z = b + off.get(i).copied().unwrap_or(0.0) + dot(w, &x[i]);
        let m = if y[i] { z } else { -z };
        // log(1 + e^-m), stable.
        l += s[i]
            * (if m > 0.0 {
                (-m).exp().ln_1p()
            } else {
                -m + m.exp().ln_1p()
            });
        t += s[i];
    }
    if t > 0.0 {
        l / t
    } else {
        0.0
    }
}

fn dot(w: &[f64], x: &[f64]) -> f64 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

/// Newton iterations on the free coordinates (the others stay 0); the intercept is last.
fn newton(
    x: &[Vec<f64>],
    y: &[bool],
    off: &[f64],
    s: &[f64],
    l2: f64,
    free: &[bool],
) -> (Vec<f64>, f64) {
    let d = free.len();
    let idx: Vec<usize> = (0..d).filter(|&j| free[j]).collect();
    let k = idx.len() + 1;
    let total: f64 = s.iter().sum::<f64>().max(1e-12);
    let (mut w, mut b) = (vec![0.0; d], 0.0);
    for _ in 0..50 {
        let mut g = vec![0.0; k];
        let mut h = vec![vec![0.0; k]; k];
        for i in 0..x.len() {
            let z = b + off.get(i).copied().unwrap_or(0.0) + dot(&w, &x[i]);
            let p = sigmoid(z);
            let r = s[i] * (p - f64::from(u8::from(y[i]))) / total;
            let v = s[i] * p * (1.0 - p) / total;
            let xi: Vec<f64> = idx.iter().map(|&j| x[i][j]).chain([1.0]).collect();
            for (a, (ga, ha)) in g.iter_mut().zip(h.iter_mut()).enumerate() {
                *ga += r * xi[a];
                for (hac, xc) in ha.iter_mut().zip(&xi) {
                    *hac += v * xi[a] * xc;
                }
            }
        }
        for (a, &j) in idx.iter().enumerate() {
            g[a] += l2 * w[j];
            h[a][a] += l2;
        }
        h[k - 1][k - 1] += 1e-9;
        let Some(step) = solve(h, g) else { break };
        for (a, &j) in idx.iter().enumerate() {
            w[j] -= step[a];
        }
        b -= step[k - 1];
        if step.iter().map(|v| v.abs()).fold(0.0, f64::max) < 1e-9 {
            break;
        }
    }
    (w, b)
}

/// The configuration whose `assess` contributions are the unweighted features: every weight
/// 1, no chain floors, the candidate's per-level caps and smoothing.
pub fn unit_config(cfg: &RiskConfig) -> RiskConfig {
    let mut u = *cfg;
    u.weights.network = 1.0;
    u.weights.device = 1.0;
    u.weights.hour = 1.0;
    u.weights.levels = PerLevel::all(1.0);
    u.floors = Floors {
        network: -1e6,
        device: -1e6,
        hour: -1e6,
        levels: cfg.floors.levels,
    };
    u
}

/// The weight of each feature in `cfg` (chain weight × level weight; the hour's).
fn current_weights(cfg: &RiskConfig) -> [f64; N] {
    let w = &cfg.weights;
    let mut out = [0.0; N];
    for (j, o) in out.iter_mut().enumerate().take(8) {
        let chain = if j < 4 { w.network } else { w.device };
        *o = chain * w.levels.get(j);
    }
    out[8] = w.hour;
    out
}

/// The feature vector of an assessment under `unit_config`, and the rest of `raw` (failures,
/// rules, reputation) weighted as in `cfg`.
pub fn features(a: &Assessment, cfg: &RiskConfig) -> ([f64; N], f64) {
    let mut x = [0.0; N];
    let mut offset = 0.0;
    let w = &cfg.weights;
    for c in &a.contributions {
        let name = if c.feature == "device_cookie" {
            "fingerprint"
        } else {
            c.feature.as_str()
        };
        if let Some(j) = FEATURES.iter().position(|f| *f == name) {
            x[j] += c.llr;
        } else {
            offset += match name {
                "failed_attempts_account" => w.failed_account * c.llr,
                "failed_attempts_ip" => w.failed_ip * c.llr,
                "spraying_accounts_from_ip" => w.spraying * c.llr,
                n if n.starts_with("reputation_") => w.reputation * c.llr,
                n if n.ends_with("_novelty_cap") || n.ends_with("_floor") => 0.0,
                _ => c.llr, // rules: fixed weights already
            };
        }
    }
    (x, offset)
}

/// Which weights to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One weight per hierarchy level and the hour; the country kept (`PINNED`).
    Levels,
    /// One weight per chain (network, device) and the hour: three numbers, so less room to
    /// learn the simulated attackers' quirks; the country moves with its chain.
    Chains,
}

/// What `fit` found, and the configuration with the fitted weights.
#[derive(Debug, Clone)]
pub struct FitReport {
    pub config: RiskConfig,
    pub fit: Logistic,
    pub samples: usize,
    pub attacks: usize,
}

/// Replay `input` with `cfg`'s caps and smoothing and fit the per-level weights. Legitimate
/// sign-ins and attacks weigh the same in total, and each attacker model a quarter of that.
///
/// The score map's `center` is then set so that, on this same log, the fitted model steps up
/// as many legitimate sign-ins as `friction_of` (the version it would replace) does: a version is compared at equal friction, and
/// its gain shows as attacks stopped. `open` opens the log (it is read three times).
pub fn fit<R: BufRead>(
    open: impl Fn() -> Result<R, ReplayError>,
    opts: &ReplayOptions,
    cfg: &RiskConfig,
    friction_of: &RiskConfig,
    policy: &Policy,
    l2: f64,
    shape: Shape,
) -> Result<FitReport, ReplayError> {
    let unit = unit_config(cfg);
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x05ee_df17);
    let mut rows: Vec<([f64; N], f64, Option<&'static str>)> = Vec::new();
    let mut seen = 0usize;
    let pinned: Vec<usize> = match shape {
        Shape::Levels => (0..N).filter(|j| PINNED.contains(&FEATURES[*j])).collect(),
        Shape::Chains => Vec::new(),
    };
    let w0 = current_weights(cfg);
    let mut observe = |a: &Assessment, model: Option<&'static str>| {
        let (mut x, mut off) = features(a, cfg);
        for &j in &pinned {
            off += w0[j] * x[j];
            x[j] = 0.0;
        }
        seen += 1;
        if rows.len() < MAX_SAMPLES {
            rows.push((x, off, model));
        } else {
            let i = rng.gen_range(0..seen);
            if i < MAX_SAMPLES {
                rows[i] = (x, off, model);
            }
        }
    };
    replay_observed(open()?, opts, &unit, policy, None, Some(&mut observe))?;
    let mut per: std::collections::BTreeMap<Option<&str>, f64> = Default::default();
    for r in &rows {
        *per.entry(r.2).or_default() += 1.0;
    }
    let attackers = per.keys().filter(|k| k.is_some()).count().max(1) as f64;
    let weight = |m: Option<&str>| {
        let n = per.get(&m).copied().unwrap_or(1.0);
        if m.is_some() {
            0.5 / attackers / n
        } else {
            0.5 / n
        }
    };
    let x: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| match shape {
            Shape::Levels => r.0.to_vec(),
            Shape::Chains => vec![r.0[..4].iter().sum(), r.0[4..8].iter().sum(), r.0[8]],
        })
        .collect();
    let y: Vec<bool> = rows.iter().map(|r| r.2.is_some()).collect();
    let off: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let s: Vec<f64> = rows.iter().map(|r| weight(r.2)).collect();
    let f = logistic(&x, &y, &off, &s, l2, true);
    let mut out = *cfg;
    let fitted = |j: usize| f.weights.get(j).copied().unwrap_or(0.0);
    let wv = |j: usize| match shape {
        Shape::Levels if pinned.contains(&j) => w0[j],
        Shape::Levels => fitted(j),
        Shape::Chains => 1.0,
    };
    let (network, device) = match shape {
        Shape::Levels => (1.0, 1.0),
        Shape::Chains => (fitted(0), fitted(1)),
    };
    out.weights.network = network;
    out.weights.device = device;
    out.weights.levels = PerLevel {
        country: wv(0),
        asn: wv(1),
        city: wv(2),
        ip_prefix: wv(3),
        device_type: wv(4),
        os: wv(5),
        browser: wv(6),
        fingerprint: wv(7),
    };
    out.weights.hour = match shape {
        Shape::Levels => fitted(8),
        Shape::Chains => fitted(2),
    };
    out.floors = unit.floors;
    out.score.center = calibrate(&open, opts, friction_of, &out, policy)?;
    Ok(FitReport {
        config: out,
        attacks: y.iter().filter(|v| **v).count(),
        samples: rows.len(),
        fit: f,
    })
}

/// The `center` at which `new` flags (medium or above) the same share of legitimate sign-ins
/// as `old` on the log.
fn calibrate<R: BufRead>(
    open: &impl Fn() -> Result<R, ReplayError>,
    opts: &ReplayOptions,
    old: &RiskConfig,
    new: &RiskConfig,
    policy: &Policy,
) -> Result<f64, ReplayError> {
    let flagged = |a: &Assessment| a.level >= super::Level::Medium;
    let (mut n, mut hit) = (0u64, 0u64);
    let mut count = |a: &Assessment, m: Option<&'static str>| {
        if m.is_none() {
            n += 1;
            hit += u64::from(flagged(a));
        }
    };
    replay_observed(open()?, opts, old, policy, None, Some(&mut count))?;
    let target = if n > 0 { hit as f64 / n as f64 } else { 0.0 };
    // Legitimate raws under the new weights; a rule's minimum level flags whatever the raw.
    let mut raws: Vec<f64> = Vec::new();
    let mut by_rule = 0usize;
    let mut collect = |a: &Assessment, m: Option<&'static str>| {
        if m.is_none() {
            if a.rule.is_some() {
                by_rule += 1;
            } else {
                raws.push(a.raw);
            }
        }
    };
    replay_observed(open()?, opts, new, policy, None, Some(&mut collect))?;
    raws.sort_by(|a, b| b.total_cmp(a));
    let total = (raws.len() + by_rule) as f64;
    let want = ((target * total).round() as usize).saturating_sub(by_rule);
    // The medium boundary sits halfway between the `want`-th highest raw and the next.
    let t = match (
        want.checked_sub(1).and_then(|i| raws.get(i)),
        raws.get(want),
    ) {
        (Some(a), Some(b)) => (a + b) / 2.0,
        (None, Some(b)) => b + 1e-3,
        (Some(a), None) => a - 1e-3,
        (None, None) => return Ok(new.score.center),
    };
    let p = (f64::from(new.thresholds.medium) - 0.5) / 100.0;
    Ok(t - new.score.scale * (p / (1.0 - p)).ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = 1 when x0 is large, whatever x1 (noise): a positive weight on x0, ~0 on x1.
    fn toy() -> (Vec<Vec<f64>>, Vec<bool>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let a = f64::from(i % 20) / 10.0 - 1.0; // -1 … 0.9
            let noise = f64::from((i * 7) % 13) / 13.0 - 0.5;
            x.push(vec![a, noise]);
            y.push(a + 0.05 * noise > 0.0);
        }
        (x, y)
    }

    #[test]
    fn the_fit_finds_the_sign_and_the_separating_feature() {
        let (x, y) = toy();
        let n = x.len();
        let f = logistic(&x, &y, &vec![0.0; n], &vec![1.0; n], 1e-3, false);
        assert!(f.weights[0] > 5.0, "{f:?}");
        assert!(f.weights[0] > 5.0 * f.weights[1].abs(), "{f:?}");
        // Flip the labels: the weight flips too (unconstrained)…
        let flipped: Vec<bool> = y.iter().map(|v| !v).collect();
        let g = logistic(&x, &flipped, &vec![0.0; n], &vec![1.0; n], 1e-3, false);
        assert!(g.weights[0] < -5.0, "{g:?}");
        // …and with the bound it is pinned at 0.
        let h = logistic(&x, &flipped, &vec![0.0; n], &vec![1.0; n], 1e-3, true);
        assert!(h.weights.iter().all(|w| *w >= 0.0), "{h:?}");
        assert_eq!(h.weights[0], 0.0);
    }

    #[test]
    fn regularisation_shrinks_the_weights() {
        let (x, y) = toy();
        let n = x.len();
        let norm = |l2: f64| {
            let f = logistic(&x, &y, &vec![0.0; n], &vec![1.0; n], l2, false);
            f.weights.iter().map(|w| w * w).sum::<f64>().sqrt()
        };
        let (a, b, c) = (norm(1e-3), norm(0.1), norm(10.0));
        assert!(a > b && b > c, "{a} {b} {c}");
        assert!(c < 0.1, "{c}");
    }

    #[test]
    fn the_fit_matches_a_known_optimum() {
        // One feature, no penalty, balanced: x = ±1 with P(y | x) = 0.75 / 0.25 → w = ln 3 / 1
        // (the log odds change by 2w between x = -1 and x = 1, i.e. 2 ln 3).
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (v, ones) in [(1.0, 3), (-1.0, 1)] {
            for i in 0..4 {
                x.push(vec![v]);
                y.push(i < ones);
            }
        }
        let n = x.len();
        let f = logistic(&x, &y, &vec![0.0; n], &vec![1.0; n], 0.0, false);
        assert!((f.weights[0] - 3f64.ln()).abs() < 1e-6, "{f:?}");
        assert!(f.intercept.abs() < 1e-6, "{f:?}");
        // An offset that already explains the data leaves nothing to fit.
        let off: Vec<f64> = x.iter().map(|r| r[0] * 3f64.ln()).collect();
        let g = logistic(&x, &y, &off, &vec![1.0; n], 0.0, false);
        assert!(g.weights[0].abs() < 1e-6, "{g:?}");
    }
}
