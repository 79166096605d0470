//! `vigil risk replay`: stream a labelled sign-in log in the column format of the public RBA
//! dataset (das-group, "Login Data Set for Risk-Based Authentication", CC BY 4.0) through the
//! same `assess`/`decide` code the server runs, inject simulated attackers as Wiefling et al.
//! did (ACM TOPS 2022, "Pump Up Password Security!"), and measure detection, friction and
//! fairness beside a plain Freeman IP+UA baseline (`baseline.rs`). Pure: no HTTP, no database.
//!
//! Choices (documented in the README):
//! - The file must be in time order (the real dataset is); a row that goes back in time is a
//!   malformed row (line + reason), like a bad field. `skip_malformed` skips and counts them.
//! - Features: country, ASN from their columns; the city key is `Region/City` (`-` → absent);
//!   no GeoIP, so no latitude/longitude and no impossible travel; the device comes from the
//!   User-Agent string through `device::observe` (the server's parser and fingerprint, no
//!   hints, no language, no device cookie). Failure counts are rebuilt from the failed rows
//!   (`Login Successful` false) as the server counts them: failures for the account and from
//!   the IP, and distinct accounts failing from the IP, in the throttle window before the
//!   event (`failure_window_secs`, the server's default 15 minutes).
//! - Scored: legitimate successful sign-ins (`Login Successful` and not `Is Account Takeover`)
//!   and real account takeovers. Failed sign-ins only feed `GlobalStats`, which learns from
//!   every row; a profile learns only from legitimate successful sign-ins. Each event is
//!   scored before anything learns from it (no leakage).
//! - Metrics compare legitimate sign-ins of users with history (≥ 1 earlier legitimate
//!   sign-in, the population attacks are injected for) against each attacker model. History
//!   buckets for the step-up rate at TPR 0.99: "12" = 10–14 prior sign-ins, "40" = 35–45.
//! - Scores for the ROC are vigil's `raw` (nats), quantised to 0.01 in a histogram, so memory
//!   stays bounded by users and distinct values, not rows.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::baseline::Baseline;
use super::{
    assess, decide, device, model_version, Assessment, AvailableFactors, Decision, FailureCounts,
    Geo, GlobalStats, Policy, RiskConfig, SignInFeatures, UserProfile,
};
use crate::clock::Timestamp;

/// The dataset's header, column for column.
pub const HEADER: [&str; 16] = [
    "index",
    "Login Timestamp",
    "User ID",
    "Round-Trip Time [ms]",
    "IP Address",
    "Country",
    "Region",
    "City",
    "ASN",
    "User Agent String",
    "Browser Name and Version",
    "OS Name and Version",
    "Device Type",
    "Login Successful",
    "Is Attack IP",
    "Is Account Takeover",
];

/// The attacker models, in report order.
pub const ATTACKERS: [&str; 4] = ["naive", "vpn", "targeted", "very_targeted"];
/// The name under which real `Is Account Takeover` rows are reported.
pub const REAL_ATO: &str = "real_ato";
/// A fairness group is flagged above this ratio to the overall rate…
const FAIRNESS_RATIO: f64 = 1.5;
/// …if it has at least this many legitimate sign-ins.
const FAIRNESS_MIN_N: u64 = 30;
/// Recent legitimate sign-ins kept as material for the naive attacker.
const POOL: usize = 1024;
/// Distinct values kept per user for the attacker models' "most used" lookups.
const TOP_VALUES: usize = 8;
/// Parsed User-Agents cached (cleared when full).
const UA_CACHE: usize = 50_000;
/// The server's default throttle window (`throttle_window_minutes` = 15).
pub const DEFAULT_FAILURE_WINDOW_SECS: i64 = 900;
/// Rows between sweeps of stale failure windows (keeps memory bounded by the active set).
const SWEEP_EVERY: u64 = 100_000;

/// One row of the log.
#[derive(Debug, Clone)]
pub struct Row {
    pub index: String,
    pub at: Timestamp,
    pub user: String,
    pub ip: Option<IpAddr>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub asn: Option<u32>,
    pub user_agent: String,
    pub success: bool,
    pub attack_ip: bool,
    pub takeover: bool,
}

/// Why replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("line {line}: {reason}")]
    Malformed { line: u64, reason: String },
    #[error("{0}")]
    Io(String),
}

/// Split one CSV line (RFC 4180 quoting, `""` inside quotes).
pub fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(16);
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("text after a closing quote".into());
                    }
                }
            } else {
                cur.push(c);
            }
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
            at_start = true;
            continue;
        } else if c == '"' && at_start {
            quoted = true;
        } else {
            cur.push(c);
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    Ok(out)
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s != "-").then(|| s.to_owned())
}

fn flag(s: &str, name: &str) -> Result<bool, String> {
    match s.trim() {
        "True" | "true" | "1" => Ok(true),
        "False" | "false" | "0" => Ok(false),
        other => Err(format!("{name}: expected True or False, got {other:?}")),
    }
}

/// Parse `2020-02-03 12:43:30.772` (UTC).
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| Timestamp(t.and_utc().timestamp_micros()))
        .map_err(|e| format!("Login Timestamp {s:?}: {e}"))
}

/// Parse one data line into a `Row`.
pub fn parse_row(line: &str) -> Result<Row, String> {
    let f = split_csv(line)?;
    if f.len() != HEADER.len() {
        return Err(format!(
            "expected {} fields, found {}",
            HEADER.len(),
            f.len()
        ));
    }
    let user = f[2].trim().to_owned();
    if user.is_empty() {
        return Err("empty User ID".into());
    }
    let ip = match opt(&f[4]) {
        Some(s) => Some(
            s.parse::<IpAddr>()
                .map_err(|_| format!("IP Address {s:?} is not an address"))?,
        ),
        None => None,
    };
    let asn = match opt(&f[8]) {
        Some(s) => Some(
            s.parse::<u32>()
                .map_err(|_| format!("ASN {s:?} is not a number"))?,
        ),
        None => None,
    };
    if let Some(rtt) = opt(&f[3]) {
        rtt.parse::<f64>()
            .map_err(|_| format!("Round-Trip Time {rtt:?} is not a number"))?;
    }
    Ok(Row {
        index: f[0].trim().to_owned(),
        at: parse_time(&f[1])?,
        user,
        ip,
        country: opt(&f[5]),
        region: opt(&f[6]),
        city: opt(&f[7]),
        asn,
        user_agent: f[9].clone(),
        success: flag(&f[13], "Login Successful")?,
        attack_ip: flag(&f[14], "Is Attack IP")?,
        takeover: flag(&f[15], "Is Account Takeover")?,
    })
}

/// Rows in file order with their line numbers; checks the header and time order.
pub struct Rows<R> {
    input: R,
    line: u64,
    last: Option<Timestamp>,
    buf: Vec<u8>,
}

impl<R: BufRead> Rows<R> {
    pub fn new(input: R) -> Self {
        Rows {
            input,
            line: 0,
            last: None,
            buf: Vec::new(),
        }
    }
}

impl<R: BufRead> Iterator for Rows<R> {
    /// `Err((line, reason))` for a bad row; `line` 0 for an I/O error.
    type Item = Result<Row, (u64, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err((0, e.to_string()))),
            }
            self.line += 1;
            // A line that is not UTF-8 is a malformed row with its number (it once stopped the
            // replay as an I/O error, even with `skip_malformed`, and shifted later numbers).
            let Ok(text) = std::str::from_utf8(&self.buf) else {
                return Some(Err((self.line, "not UTF-8".into())));
            };
            let text = text.trim_end_matches(['\n', '\r']);
            if self.line == 1 {
                let ok = split_csv(text.trim_start_matches('\u{feff}'))
                    .is_ok_and(|h| h.iter().map(|s| s.trim()).eq(HEADER));
                if !ok {
                    return Some(Err((1, "the header is not the RBA dataset's".into())));
                }
                continue;
            }
            if text.trim().is_empty() {
                continue;
            }
            let row = parse_row(text).and_then(|r| match self.last {
                Some(last) if r.at < last => {
                    Err("goes back in time (the file must be sorted by Login Timestamp)".into())
                }
                _ => Ok(r),
            });
            return Some(match row {
                Ok(r) => {
                    self.last = Some(r.at);
                    Ok(r)
                }
                Err(reason) => Err((self.line, reason)),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics on score histograms

/// Scores quantised to 1/100, counted: bounded by distinct values, not events.
#[derive(Debug, Clone, Default)]
pub struct Hist(BTreeMap<i64, u64>);

impl Hist {
    pub fn add(&mut self, score: f64) {
        *self.0.entry((score * 100.0).round() as i64).or_insert(0) += 1;
    }
    pub fn from_scores(scores: &[f64]) -> Self {
        let mut h = Hist::default();
        scores.iter().for_each(|s| h.add(*s));
        h
    }
    pub fn n(&self) -> u64 {
        self.0.values().sum()
    }
}

/// ROC AUC: P(attack score > legit score) + ½ P(equal). `None` if either side is empty.
pub fn auc(legit: &Hist, attack: &Hist) -> Option<f64> {
    let (nl, na) = (legit.n(), attack.n());
    if nl == 0 || na == 0 {
        return None;
    }
    let mut below = 0u64; // legit events strictly below the current score
    let mut wins = 0f64;
    let mut keys: Vec<i64> = legit.0.keys().chain(attack.0.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    for k in keys {
        let l = legit.0.get(&k).copied().unwrap_or(0);
        let a = attack.0.get(&k).copied().unwrap_or(0);
        wins += a as f64 * (below as f64 + 0.5 * l as f64);
        below += l;
    }
    Some(wins / (nl as f64 * na as f64))
}

/// The best TPR at a threshold "score ≥ t" whose FPR is at most `max_fpr`.
pub fn tpr_at_fpr(legit: &Hist, attack: &Hist, max_fpr: f64) -> Option<f64> {
    let (nl, na) = (legit.n(), attack.n());
    if nl == 0 || na == 0 {
        return None;
    }
    let mut keys: Vec<i64> = legit.0.keys().chain(attack.0.keys()).copied().collect();
    keys.sort_unstable_by(|a, b| b.cmp(a));
    keys.dedup();
    // Lower the threshold one distinct score at a time while the FPR stays within bounds.
    let (mut fp, mut tp, mut best) = (0u64, 0u64, 0.0f64);
    for k in keys {
        fp += legit.0.get(&k).copied().unwrap_or(0);
        tp += attack.0.get(&k).copied().unwrap_or(0);
        if fp as f64 / nl as f64 > max_fpr {
            break;
        }
        best = tp as f64 / na as f64;
    }
    Some(best)
}

/// The highest threshold `t` with TPR(score ≥ t) ≥ `tpr`.
pub fn threshold_for_tpr(attack: &Hist, tpr: f64) -> Option<i64> {
    let na = attack.n();
    if na == 0 {
        return None;
    }
    let need = (tpr * na as f64).ceil() as u64;
    let mut seen = 0;
    for (k, c) in attack.0.iter().rev() {
        seen += c;
        if seen >= need {
            return Some(*k);
        }
    }
    attack.0.keys().next().copied()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn percentile_us(h: &BTreeMap<u64, u64>, p: f64) -> f64 {
    let n: u64 = h.values().sum();
    let need = ((p * n as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (k, c) in h {
        seen += c;
        if seen >= need {
            return *k as f64 / 10.0;
        }
    }
    0.0
}

const BUCKETS: [(&str, u32, u32); 2] = [("12", 10, 14), ("40", 35, 45)];

fn history_bucket(prior: u32) -> &'static str {
    match prior {
        0 => "0",
        1..=4 => "1-4",
        5..=9 => "5-9",
        10..=19 => "10-19",
        20..=49 => "20-49",
        _ => "50+",
    }
}

// ---------------------------------------------------------------------------------------------
// Per-model accumulators

#[derive(Debug, Default, Clone, Copy)]
struct Rates {
    n: u64,
    step_up: u64,
    block: u64,
}

impl Rates {
    fn add(&mut self, d: Option<Decision>) {
        self.n += 1;
        match d {
            Some(Decision::StepUp { .. }) => self.step_up += 1,
            Some(Decision::Block { .. }) => self.block += 1,
            _ => {}
        }
    }
    fn rate(x: u64, n: u64) -> Option<f64> {
        (n > 0).then(|| x as f64 / n as f64)
    }
}

/// Everything measured for one model (vigil's or the baseline).
#[derive(Default)]
struct Acc {
    legit: Hist,
    attack: BTreeMap<&'static str, Hist>,
    legit_policy: Rates,
    attack_policy: BTreeMap<&'static str, Rates>,
    fairness: BTreeMap<&'static str, BTreeMap<String, Rates>>,
    /// Per user and bucket, the quantised scores of legitimate sign-ins in that bucket.
    per_user: HashMap<String, [Vec<i64>; 2]>,
    latency: BTreeMap<u64, u64>,
}

impl Acc {
    fn legit(
        &mut self,
        user: &str,
        prior: u32,
        score: f64,
        d: Option<Decision>,
        groups: [&str; 3],
    ) {
        self.legit.add(score);
        if d.is_some() {
            self.legit_policy.add(d);
            for (dim, g) in ["country", "device_type", "history"]
                .into_iter()
                .zip(groups)
            {
                self.fairness
                    .entry(dim)
                    .or_default()
                    .entry(g.to_owned())
                    .or_default()
                    .add(d);
            }
        }
        for (i, (_, lo, hi)) in BUCKETS.iter().enumerate() {
            if (*lo..=*hi).contains(&prior) {
                self.per_user.entry(user.to_owned()).or_default()[i]
                    .push((score * 100.0).round() as i64);
            }
        }
    }

    fn attack(&mut self, model: &'static str, score: f64, d: Option<Decision>) {
        self.attack.entry(model).or_default().add(score);
        if d.is_some() {
            self.attack_policy.entry(model).or_default().add(d);
        }
    }

    fn time(&mut self, started: Instant) {
        let tenths = (started.elapsed().as_nanos() / 100) as u64;
        *self.latency.entry(tenths).or_insert(0) += 1;
    }

    fn report(&self, model: String) -> Value {
        let mut by = serde_json::Map::new();
        for (name, att) in &self.attack {
            let mut steps = serde_json::Map::new();
            for (i, (key, _, _)) in BUCKETS.iter().enumerate() {
                let rate = threshold_for_tpr(att, 0.99).and_then(|t| {
                    median(
                        self.per_user
                            .values()
                            .filter(|v| !v[i].is_empty())
                            .map(|v| {
                                v[i].iter().filter(|s| **s >= t).count() as f64 / v[i].len() as f64
                            })
                            .collect(),
                    )
                });
                steps.insert((*key).to_owned(), json!(rate));
            }
            let users: serde_json::Map<String, Value> = BUCKETS
                .iter()
                .enumerate()
                .map(|(i, (key, _, _))| {
                    let n = self.per_user.values().filter(|v| !v[i].is_empty()).count();
                    ((*key).to_owned(), json!(n))
                })
                .collect();
            let mut m = json!({
                "attempts": att.n(),
                "step_up_users": users,
                "auc": auc(&self.legit, att),
                "tpr_at_fpr_1pct": tpr_at_fpr(&self.legit, att, 0.01),
                "tpr_at_fpr_0_1pct": tpr_at_fpr(&self.legit, att, 0.001),
                "step_up_rate_at_tpr_99": steps,
            });
            if let (Some(p), Some(obj)) = (self.attack_policy.get(name), m.as_object_mut()) {
                obj.insert("attack_block_rate".into(), json!(Rates::rate(p.block, p.n)));
                obj.insert(
                    "attack_stop_rate".into(),
                    json!(Rates::rate(p.block + p.step_up, p.n)),
                );
            }
            by.insert((*name).to_owned(), m);
        }
        let injected = self
            .attack_policy
            .iter()
            .filter(|(k, _)| **k != REAL_ATO)
            .fold(Rates::default(), |a, (_, r)| Rates {
                n: a.n + r.n,
                step_up: a.step_up + r.step_up,
                block: a.block + r.block,
            });
        let injected = if injected.n > 0 {
            injected
        } else {
            self.attack_policy
                .get(REAL_ATO)
                .copied()
                .unwrap_or_default()
        };
        let lp = self.legit_policy;
        let policy = Some({
            json!({
                "legit_step_up_rate": Rates::rate(lp.step_up, lp.n),
                "legit_block_rate": Rates::rate(lp.block, lp.n),
                "attack_block_rate": Rates::rate(injected.block, injected.n),
                "attack_stop_rate": Rates::rate(injected.block + injected.step_up, injected.n),
            })
        });
        let fairness = self.fairness_report();
        json!({
            "model": model,
            "legit": self.legit.n(),
            "by_attacker": by,
            "policy": policy,
            "fairness": fairness,
            "latency_us": {
                "p50": percentile_us(&self.latency, 0.5),
                "p99": percentile_us(&self.latency, 0.99),
            },
        })
    }

    fn fairness_report(&self) -> Value {
        let lp = self.legit_policy;
        let overall_step = Rates::rate(lp.step_up, lp.n).unwrap_or(0.0);
        let overall_block = Rates::rate(lp.block, lp.n).unwrap_or(0.0);
        let mut out = serde_json::Map::new();
        for (dim, groups) in &self.fairness {
            let mut g = serde_json::Map::new();
            for (name, r) in groups {
                let step = Rates::rate(r.step_up, r.n).unwrap_or(0.0);
                let block = Rates::rate(r.block, r.n).unwrap_or(0.0);
                let ratio = |x: f64, o: f64| {
                    if o > 0.0 {
                        x / o
                    } else if x > 0.0 {
                        f64::INFINITY
                    } else {
                        1.0
                    }
                };
                let (rs, rb) = (ratio(step, overall_step), ratio(block, overall_block));
                let flagged = r.n >= FAIRNESS_MIN_N && (rs > FAIRNESS_RATIO || rb > FAIRNESS_RATIO);
                g.insert(
                    name.clone(),
                    json!({
                        "n": r.n,
                        "step_up_rate": step,
                        "step_up_ratio": if rs.is_finite() { json!(rs) } else { json!(null) },
                        "block_rate": block,
                        "block_ratio": if rb.is_finite() { json!(rb) } else { json!(null) },
                        "flagged": flagged,
                    }),
                );
            }
            out.insert((*dim).to_owned(), Value::Object(g));
        }
        json!({
            "overall_step_up_rate": overall_step,
            "overall_block_rate": overall_block,
            "flag_ratio": FAIRNESS_RATIO,
            "min_samples": FAIRNESS_MIN_N,
            "groups": out,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Per-user state for the attacker models

/// Small most-used counter (at most `TOP_VALUES` values; the least used is evicted).
#[derive(Debug, Default, Clone)]
struct Top(Vec<(String, u32)>);

impl Top {
    fn add(&mut self, v: &str) {
        if let Some(e) = self.0.iter_mut().find(|(k, _)| k == v) {
            e.1 += 1;
        } else {
            if self.0.len() >= TOP_VALUES {
                if let Some(i) = (0..self.0.len()).min_by_key(|i| self.0[*i].1) {
                    self.0.swap_remove(i);
                }
            }
            self.0.push((v.to_owned(), 1));
        }
    }
    fn most(&self) -> Option<&str> {
        self.0
            .iter()
            .max_by_key(|(_, c)| *c)
            .map(|(k, _)| k.as_str())
    }
}

#[derive(Default)]
struct UserState {
    profile: UserProfile,
    baseline: super::baseline::UserCounts,
    prior: u32,
    country: Top,
    asn: Top,
    region: Top,
    user_agent: Top,
}

/// A recent legitimate sign-in, material for attackers.
#[derive(Clone)]
struct Seen {
    user: String,
    row: Row,
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Inject the four simulated attackers (else: real takeovers are the attacks).
    pub inject: bool,
    pub skip_malformed: bool,
    pub seed: u64,
    /// The failure-count window in seconds; 0 = `DEFAULT_FAILURE_WINDOW_SECS`.
    pub failure_window_secs: i64,
}

/// Sees every event that enters the metrics: its assessment and its attacker model (`None`
/// for a legitimate sign-in of a user with history). `vigil risk fit` learns from these.
pub type Observer<'a> = &'a mut dyn FnMut(&Assessment, Option<&'static str>);

/// One IP's failures in the window: (time, account) in order, and the count per account.
type IpFailures = (VecDeque<(i64, String)>, HashMap<String, u32>);

/// Failed attempts in the throttle window, per account and per IP, as the server counts them.
#[derive(Default)]
struct Failures {
    window_us: i64,
    account: HashMap<String, VecDeque<i64>>,
    /// Per IP key (IPv6 by /64, as the server keys them): failure times with the account, and
    /// failures per account in the window.
    ip: HashMap<String, IpFailures>,
}

impl Failures {
    fn prune(&mut self, now: i64) {
        let since = now - self.window_us;
        for q in self.account.values_mut() {
            while q.front().is_some_and(|t| *t <= since) {
                q.pop_front();
            }
        }
        for (q, per) in self.ip.values_mut() {
            Self::prune_ip(q, per, since);
        }
        self.account.retain(|_, q| !q.is_empty());
        self.ip.retain(|_, (q, _)| !q.is_empty());
    }

    fn prune_ip(q: &mut VecDeque<(i64, String)>, per: &mut HashMap<String, u32>, since: i64) {
        while let Some((t, a)) = q.front() {
            if *t > since {
                break;
            }
            if let Some(n) = per.get_mut(a) {
                *n -= 1;
                if *n == 0 {
                    per.remove(a);
                }
            }
            q.pop_front();
        }
    }

    /// The counts for an attempt on `account` from `ip` at `now` (failures strictly inside
    /// the window, as the server's `at > now - window`).
    fn counts(&mut self, account: &str, ip: Option<IpAddr>, now: i64) -> FailureCounts {
        let since = now - self.window_us;
        let account_recent = self.account.get_mut(account).map_or(0, |q| {
            while q.front().is_some_and(|t| *t <= since) {
                q.pop_front();
            }
            q.len()
        });
        let (ip_recent, distinct) = match ip.and_then(|ip| self.ip.get_mut(&crate::net::ip_key(ip)))
        {
            Some((q, per)) => {
                Self::prune_ip(q, per, since);
                (q.len(), per.len())
            }
            None => (0, 0),
        };
        let c = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        FailureCounts {
            account_recent: c(account_recent),
            ip_recent: c(ip_recent),
            ip_distinct_accounts: c(distinct),
        }
    }

    fn record(&mut self, account: &str, ip: Option<IpAddr>, now: i64) {
        self.account
            .entry(account.to_owned())
            .or_default()
            .push_back(now);
        if let Some(ip) = ip {
            let (q, per) = self.ip.entry(crate::net::ip_key(ip)).or_default();
            q.push_back((now, account.to_owned()));
            *per.entry(account.to_owned()).or_insert(0) += 1;
        }
    }
}

/// What the log says about a row, as the server would have observed it (`ua` and `device`
/// from `device::observe` of its User-Agent); no failure counts. Region and city become one
/// value, `region/city`, so two cities of one name stay apart.
pub fn row_features(r: &Row, ua: super::UaInfo, device: super::Device) -> SignInFeatures {
    let city = match (&r.region, &r.city) {
        (None, None) => None,
        (reg, city) => Some(format!(
            "{}/{}",
            reg.as_deref().unwrap_or("-"),
            city.as_deref().unwrap_or("-")
        )),
    };
    let mut f = SignInFeatures::at(r.at);
    f.ip = r.ip;
    f.geo = Geo {
        country: r.country.clone(),
        city,
        asn: r.asn,
        ..Geo::default()
    };
    f.ua = ua;
    f.device = device;
    f
}

struct Engine<'a> {
    cfg: &'a RiskConfig,
    policy: &'a Policy,
    global: GlobalStats,
    base: Baseline,
    users: HashMap<String, UserState>,
    ua_cache: HashMap<String, (super::UaInfo, super::Device)>,
    vigil: Acc,
    baseline: Acc,
    scores_out: Option<&'a mut dyn Write>,
    failures: Failures,
    observer: Option<Observer<'a>>,
}

impl Engine<'_> {
    fn features(&mut self, r: &Row) -> SignInFeatures {
        if self.ua_cache.len() >= UA_CACHE {
            self.ua_cache.clear();
        }
        let (ua, device) = self
            .ua_cache
            .entry(r.user_agent.clone())
            .or_insert_with(|| device::observe(&r.user_agent, None, None, None))
            .clone();
        let mut f = row_features(r, ua, device);
        // An attempt on `user` (the victim for injected attacks) from the row's IP.
        f.failures = self.failures.counts(&r.user, r.ip, r.at.0);
        f
    }

    /// Score `r` for `user` against the current state; record it under `model` (None = legit).
    fn score(
        &mut self,
        user: &str,
        r: &Row,
        model: Option<&'static str>,
    ) -> Result<(), ReplayError> {
        let f = self.features(r);
        let empty = UserState::default();
        let st = self.users.get(user).unwrap_or(&empty);
        let started = Instant::now();
        let a = assess(&f, &st.profile, &self.global, self.cfg);
        self.vigil.time(started);
        let started = Instant::now();
        let b = self.base.score(&st.baseline, r);
        self.baseline.time(started);
        let totp = AvailableFactors {
            totp: true,
            ..AvailableFactors::default()
        };
        let d = decide(&a, self.policy, totp, None);
        // The baseline's LLR through the same score map, thresholds and policy.
        let (score, level) = super::model::score_level(b, self.cfg);
        let bd = decide(
            &Assessment {
                score,
                level,
                reasons: Vec::new(),
                contributions: Vec::new(),
                rule: None,
                raw: b,
                model: String::new(),
            },
            self.policy,
            totp,
            None,
        );
        let prior = st.prior;
        if let Some(obs) = self.observer.as_mut() {
            if model.is_some() || prior > 0 {
                obs(&a, model);
            }
        }
        match model {
            None => {
                let country = r.country.clone().unwrap_or_else(|| "-".into());
                let groups = [
                    country.as_str(),
                    f.ua.device_type.as_str(),
                    history_bucket(prior),
                ];
                // The comparison population: users with history (attacks need history).
                if prior > 0 {
                    self.vigil.legit(user, prior, a.raw, Some(d), groups);
                    self.baseline.legit(user, prior, b, Some(bd), groups);
                }
            }
            Some(m) => {
                self.vigil.attack(m, a.raw, Some(d));
                self.baseline.attack(m, b, Some(bd));
            }
        }
        if let Some(w) = self.scores_out.as_mut() {
            let index = if model.is_some() && model != Some(REAL_ATO) {
                "-"
            } else {
                r.index.as_str()
            };
            let label = model.unwrap_or("");
            writeln!(w, "{index},{},{},{label}", a.score, d.as_str())
                .map_err(|e| ReplayError::Io(format!("--scores-out: {e}")))?;
        }
        Ok(())
    }
}

fn pick<'p>(pool: &'p [Seen], victim: &str, rng: &mut StdRng) -> Option<&'p Seen> {
    for _ in 0..8 {
        let s = pool.get(rng.gen_range(0..pool.len().max(1)))?;
        if s.user != victim {
            return Some(s);
        }
    }
    None
}

/// The attack attempt of one model against `victim` at the time of `legit`.
fn forge(model: &str, victim: &UserState, legit: &Row, other: &Row) -> Row {
    let mut r = other.clone();
    r.index = "-".into();
    r.at = legit.at;
    r.user = legit.user.clone();
    r.success = true;
    r.takeover = true;
    if model == "naive" {
        return r;
    }
    // From here on the attacker sits in the victim's country behind another network.
    r.country = victim.country.most().map(str::to_owned);
    r.region = None;
    r.city = None;
    if r.asn.is_some() && r.asn.map(|a| a.to_string()).as_deref() == victim.asn.most() {
        r.asn = r.asn.map(|a| a.wrapping_add(1));
    }
    if model == "vpn" {
        return r;
    }
    if let Some(ua) = victim.user_agent.most() {
        r.user_agent = ua.to_owned();
    }
    if model == "targeted" {
        return r;
    }
    r.asn = victim.asn.most().and_then(|a| a.parse().ok());
    if let Some((reg, city)) = victim.region.most().and_then(|s| s.split_once('\u{1f}')) {
        r.region = opt(reg);
        r.city = opt(city);
    }
    r
}

/// Replay `input` and return the report (one JSON object; see the README for its keys).
pub fn replay<'a, R: BufRead>(
    input: R,
    opts: &ReplayOptions,
    cfg: &'a RiskConfig,
    policy: &'a Policy,
    scores_out: Option<&'a mut dyn Write>,
) -> Result<Value, ReplayError> {
    replay_observed(input, opts, cfg, policy, scores_out, None)
}

/// `replay`, with every scored event also shown to `observer`.
pub fn replay_observed<'a, R: BufRead>(
    input: R,
    opts: &ReplayOptions,
    cfg: &'a RiskConfig,
    policy: &'a Policy,
    scores_out: Option<&'a mut dyn Write>,
    observer: Option<Observer<'a>>,
) -> Result<Value, ReplayError> {
    let window = if opts.failure_window_secs > 0 {
        opts.failure_window_secs
    } else {
        DEFAULT_FAILURE_WINDOW_SECS
    };
    let mut e = Engine {
        failures: Failures {
            window_us: window.saturating_mul(1_000_000),
            ..Failures::default()
        },
        observer,
        cfg,
        policy,
        global: GlobalStats::default(),
        base: Baseline::default(),
        users: HashMap::new(),
        ua_cache: HashMap::new(),
        vigil: Acc::default(),
        baseline: Acc::default(),
        scores_out,
    };
    if let Some(w) = e.scores_out.as_mut() {
        writeln!(w, "index,score,decision,attack_model")
            .map_err(|x| ReplayError::Io(x.to_string()))?;
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut pool: Vec<Seen> = Vec::with_capacity(POOL);
    let (mut rows, mut malformed, mut scored, mut legit_rows, mut takeovers) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for item in Rows::new(input) {
        let r = match item {
            Ok(r) => r,
            Err((0, reason)) => return Err(ReplayError::Io(reason)),
            Err((line, reason)) if !opts.skip_malformed || line == 1 => {
                return Err(ReplayError::Malformed { line, reason })
            }
            Err(_) => {
                malformed += 1;
                continue;
            }
        };
        rows += 1;
        if rows % SWEEP_EVERY == 0 {
            e.failures.prune(r.at.0);
        }
        let legit = r.success && !r.takeover;
        if legit {
            legit_rows += 1;
            scored += 1;
            e.score(&r.user, &r, None)?;
            let has_history = e.users.get(&r.user).is_some_and(|u| u.prior > 0);
            if opts.inject && has_history && !pool.is_empty() {
                if let Some(other) = pick(&pool, &r.user, &mut rng).cloned() {
                    for model in ATTACKERS {
                        let forged = match e.users.get(&r.user) {
                            Some(v) => forge(model, v, &r, &other.row),
                            None => continue,
                        };
                        scored += 1;
                        e.score(&r.user, &forged, Some(model))?;
                    }
                }
            }
        } else if r.takeover {
            takeovers += 1;
            scored += 1;
            e.score(&r.user, &r, Some(REAL_ATO))?;
        }
        // Learn only after scoring.
        let f = e.features(&r);
        if !r.success {
            e.failures.record(&r.user, r.ip, r.at.0);
        }
        e.global.learn(&f);
        e.base.learn_global(&r);
        if legit {
            let st = e.users.entry(r.user.clone()).or_default();
            st.profile.learn(&f);
            e.base.learn_user(&mut st.baseline, &r);
            st.prior = st.prior.saturating_add(1);
            st.country.add(r.country.as_deref().unwrap_or("-"));
            st.asn
                .add(&r.asn.map(|a| a.to_string()).unwrap_or_default());
            st.region.add(&format!(
                "{}\u{1f}{}",
                r.region.as_deref().unwrap_or("-"),
                r.city.as_deref().unwrap_or("-")
            ));
            st.user_agent.add(&r.user_agent);
            let seen = Seen {
                user: r.user.clone(),
                row: r,
            };
            if pool.len() < POOL {
                pool.push(seen);
            } else {
                let i = rng.gen_range(0..POOL);
                pool[i] = seen;
            }
        }
    }
    let mut report = e.vigil.report(model_version(cfg));
    let baseline = e.baseline.report(super::baseline::MODEL.to_owned());
    if let Some(obj) = report.as_object_mut() {
        obj.insert(
            "events".into(),
            json!({
                "rows": rows,
                "malformed_skipped": malformed,
                "legit_rows": legit_rows,
                "real_takeovers": takeovers,
                "scored": scored,
                "users": e.users.len(),
                "injected": opts.inject,
            }),
        );
        obj.insert("baseline".into(), baseline);
    }
    Ok(report)
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or("—".into(), |x| format!("{:.1}%", 100.0 * x))
}

fn num(v: &Value) -> String {
    v.as_f64().map_or("—".into(), |x| format!("{x:.3}"))
}

/// The readable table for a report from `replay`.
pub fn table(report: &Value) -> String {
    let mut s = String::new();
    let ev = &report["events"];
    s.push_str(&format!(
        "rows {}  users {}  legit (with history) {}  real takeovers {}  skipped {}\n",
        ev["rows"], ev["users"], report["legit"], ev["real_takeovers"], ev["malformed_skipped"]
    ));
    s.push_str(&format!(
        "{:<28} {:<14} {:>6} {:>9} {:>10} {:>9} {:>9}\n",
        "model", "attacker", "AUC", "TPR@1%", "TPR@0.1%", "SU@99 h12", "SU@99 h40"
    ));
    for (name, m) in [("vigil", report), ("freeman baseline", &report["baseline"])] {
        if let Some(by) = m["by_attacker"].as_object() {
            for (att, x) in by {
                s.push_str(&format!(
                    "{:<28} {:<14} {:>6} {:>9} {:>10} {:>9} {:>9}\n",
                    format!("{name} {}", m["model"].as_str().unwrap_or("")),
                    att,
                    num(&x["auc"]),
                    pct(&x["tpr_at_fpr_1pct"]),
                    pct(&x["tpr_at_fpr_0_1pct"]),
                    pct(&x["step_up_rate_at_tpr_99"]["12"]),
                    pct(&x["step_up_rate_at_tpr_99"]["40"]),
                ));
            }
        }
    }
    let p = &report["policy"];
    s.push_str(&format!(
        "policy (TOTP available): legit step-up {}  legit block {}  attack block {}  attack stopped {}\n",
        pct(&p["legit_step_up_rate"]),
        pct(&p["legit_block_rate"]),
        pct(&p["attack_block_rate"]),
        pct(&p["attack_stop_rate"])
    ));
    let b = &report["baseline"]["policy"];
    s.push_str(&format!(
        "baseline at the same score map and policy: legit step-up {}  legit block {}  attack stopped {}\n",
        pct(&b["legit_step_up_rate"]),
        pct(&b["legit_block_rate"]),
        pct(&b["attack_stop_rate"])
    ));
    s.push_str(&format!(
        "latency µs: vigil p50 {} p99 {}; baseline p50 {} p99 {}\n",
        report["latency_us"]["p50"],
        report["latency_us"]["p99"],
        report["baseline"]["latency_us"]["p50"],
        report["baseline"]["latency_us"]["p99"]
    ));
    if let Some(groups) = report["fairness"]["groups"].as_object() {
        for (dim, g) in groups {
            for (name, x) in g.as_object().into_iter().flatten() {
                if x["flagged"].as_bool() == Some(true) {
                    s.push_str(&format!(
                        "fairness: {dim}={name} (n {}) step-up {} ({}×) block {} ({}×) — above {}× overall\n",
                        x["n"],
                        pct(&x["step_up_rate"]),
                        num(&x["step_up_ratio"]),
                        pct(&x["block_rate"]),
                        num(&x["block_ratio"]),
                        FAIRNESS_RATIO
                    ));
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_not_utf8_is_a_malformed_row_with_its_number() {
        // Found writing the replay-CSV fuzz target (fuzz/): such a line was an I/O error (line 0)
        // that stopped even a `skip_malformed` replay, and later line numbers were off by one.
        let good = "1,2020-02-03 12:43:30.772,u1,,10.0.0.1,NO,-,-,1,Mozilla,,,,True,False,False\n";
        let mut input = HEADER.join(",").into_bytes();
        input.push(b'\n');
        input.extend_from_slice(b"2,\xff\xfe,u2\n");
        input.extend_from_slice(good.as_bytes());
        input.extend_from_slice(b"\xc3\n");
        let got: Vec<_> = Rows::new(&input[..]).collect();
        assert_eq!(got.len(), 3);
        assert!(matches!(&got[0], Err((2, r)) if r == "not UTF-8"));
        assert!(got[1].as_ref().is_ok_and(|r| r.user == "u1"));
        assert!(matches!(&got[2], Err((4, _))));
    }
}
