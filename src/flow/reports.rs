//! What the admin dashboard, the fairness report and the policy backtest compute from the
//! sign-in log. Plain data out; the web layer draws it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::policy::{would_decide, RuntimePolicy};
use super::{FlowError, Services};
use crate::clock::Timestamp;
use crate::risk::{Assessment, SignInFeatures};
use crate::store::{self, stats};

/// Sign-ins a report reads per query: it keeps counts, never the rows, so a report of a
/// million sign-ins holds one page at a time, and each page is its own short query (other
/// requests get connections in between).
pub const PAGE_ROWS: i64 = 2_000;
/// A group needs this many legitimate sign-ins before its rate is flagged.
pub const MIN_GROUP: u64 = 20;
/// A group is flagged when its rate exceeds the overall rate by this factor.
pub const FLAG_RATIO: f64 = 1.5;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// The four ways a sign-in ends, as the dashboard counts them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Split {
    pub allowed: u64,
    pub stepped_up: u64,
    pub blocked: u64,
    pub failed: u64,
}

impl Split {
    fn add(&mut self, outcome: &str, n: u64) {
        match outcome {
            "success" => self.allowed += n,
            // A step-up counts once, when it was asked for (`step_up_passed` is its ending).
            "step_up_required" => self.stepped_up += n,
            "blocked" => self.blocked += n,
            "failure" | "step_up_failed" => self.failed += n,
            _ => {}
        }
    }
    pub fn total(&self) -> u64 {
        self.allowed + self.stepped_up + self.blocked + self.failed
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// 24 hourly buckets, oldest first.
    pub hours: Vec<Split>,
    /// 7 daily buckets, oldest first.
    pub days: Vec<Split>,
    pub last_24h: Split,
    pub last_7d: Split,
    /// Scores of the last 7 days in ten buckets of ten (0–9, 10–19, … 90–100).
    pub score_histogram: [u64; 10],
    /// Reasons of the last 7 days, most frequent first.
    pub top_reasons: Vec<(String, u64)>,
    pub review_open: i64,
}

pub async fn dashboard(svc: &Services, now: Timestamp) -> Result<Dashboard, FlowError> {
    let now_us = now.micros();
    let (week, review_open) = svc
        .db
        .run(move |c| {
            Ok((
                stats::week(c, now_us, 7 * 24, 8)?,
                store::reviews::count_open(c)?,
            ))
        })
        .await?;
    let mut d = Dashboard {
        hours: vec![Split::default(); 24],
        days: vec![Split::default(); 7],
        last_24h: Split::default(),
        last_7d: Split::default(),
        score_histogram: [0; 10],
        top_reasons: Vec::new(),
        review_open,
    };
    for h in &week.hourly {
        let (age, n) = (h.age_hours, u64::try_from(h.n).unwrap_or(0));
        if !(0..7 * 24).contains(&age) {
            continue;
        }
        d.last_7d.add(&h.outcome, n);
        let day = usize::try_from(6 - age / 24).unwrap_or(0).min(6);
        d.days[day].add(&h.outcome, n);
        if age < 24 {
            d.last_24h.add(&h.outcome, n);
            let hour = usize::try_from(23 - age).unwrap_or(0).min(23);
            d.hours[hour].add(&h.outcome, n);
        }
    }
    for b in &week.scores {
        let i = usize::try_from(b.bucket).unwrap_or(0).min(9);
        d.score_histogram[i] += u64::try_from(b.n).unwrap_or(0);
    }
    d.top_reasons = week
        .reasons
        .into_iter()
        .map(|r| (r.reason, u64::try_from(r.n).unwrap_or(0)))
        .collect();
    Ok(d)
}

// ---------------------------------------------------------------------------------------------
// Fairness

/// One group's friction for legitimate sign-ins.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRate {
    pub group: String,
    pub legit: u64,
    pub step_up_rate: f64,
    pub block_rate: f64,
    pub step_up_ratio: f64,
    pub block_ratio: f64,
    /// Above `FLAG_RATIO` × the overall rate with at least `MIN_GROUP` sign-ins.
    pub flagged: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dimension {
    pub name: &'static str,
    pub groups: Vec<GroupRate>,
}

/// One week's overall rates and how many groups were flagged.
#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub week_starting: i64,
    pub legit: u64,
    pub step_up_rate: f64,
    pub block_rate: f64,
    pub flagged_groups: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fairness {
    pub days: i64,
    pub legit: u64,
    pub step_up_rate: f64,
    pub block_rate: f64,
    pub dimensions: Vec<Dimension>,
    pub over_time: Vec<Period>,
}

/// A legitimate sign-in, reduced to the groups it belongs to and what happened to it.
struct Legit {
    groups: [String; 5],
    stepped_up: bool,
    blocked: bool,
}

/// Counts of legitimate sign-ins: overall and per group of each dimension.
#[derive(Default)]
struct Counts {
    overall: Tally,
    by: [BTreeMap<String, Tally>; 5],
}

impl Counts {
    fn add(&mut self, l: &Legit) {
        self.overall.add(l);
        for (by, g) in self.by.iter_mut().zip(&l.groups) {
            by.entry(g.clone()).or_default().add(l);
        }
    }
}

const DIMENSIONS: [&str; 5] = [
    "country",
    "continent",
    "device type",
    "browser family",
    "history length",
];

fn history_bucket(n: u64) -> &'static str {
    match n {
        0 => "0 (first sign-in)",
        1..=4 => "1–4",
        5..=19 => "5–19",
        20..=49 => "20–49",
        _ => "50+",
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    n: u64,
    step_up: u64,
    block: u64,
}

impl Tally {
    fn add(&mut self, l: &Legit) {
        self.n += 1;
        self.step_up += u64::from(l.stepped_up);
        self.block += u64::from(l.blocked);
    }
    fn rates(&self) -> (f64, f64) {
        if self.n == 0 {
            return (0.0, 0.0);
        }
        let n = self.n as f64;
        (self.step_up as f64 / n, self.block as f64 / n)
    }
}

fn ratio(rate: f64, overall: f64) -> f64 {
    if overall > 0.0 {
        rate / overall
    } else if rate > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

fn dimensions(counts: &Counts) -> Vec<Dimension> {
    let (o_step, o_block) = counts.overall.rates();
    DIMENSIONS
        .iter()
        .zip(&counts.by)
        .map(|(name, by)| {
            let mut groups: Vec<GroupRate> = by
                .iter()
                .map(|(g, t)| {
                    let (s, b) = t.rates();
                    let (sr, br) = (ratio(s, o_step), ratio(b, o_block));
                    GroupRate {
                        group: g.clone(),
                        legit: t.n,
                        step_up_rate: s,
                        block_rate: b,
                        step_up_ratio: sr,
                        block_ratio: br,
                        flagged: t.n >= MIN_GROUP
                            && ((s > 0.0 && sr > FLAG_RATIO) || (b > 0.0 && br > FLAG_RATIO)),
                    }
                })
                .collect();
            groups.sort_by(|a, b| b.legit.cmp(&a.legit).then(a.group.cmp(&b.group)));
            Dimension { name, groups }
        })
        .collect()
}

/// Feed every scored sign-in with one of `outcomes` since `since` to `f`, oldest first, a page
/// of [`PAGE_ROWS`] at a time: a report keeps its counts, never the rows.
async fn for_each_scored(
    svc: &Services,
    since: i64,
    outcomes: &'static [&'static str],
    mut f: impl FnMut(&stats::Scored),
) -> Result<(), FlowError> {
    let mut after: Option<(i64, String)> = None;
    loop {
        let cursor = after.take();
        let page = svc
            .db
            .run(move |c| stats::scored_page(c, since, outcomes, cursor.as_ref(), PAGE_ROWS))
            .await?;
        page.iter().for_each(&mut f);
        match page.last() {
            Some(last) if page.len() as i64 == PAGE_ROWS => {
                after = Some((last.at, last.id.clone()));
            }
            _ => return Ok(()),
        }
    }
}

/// Step-up and block rates of legitimate sign-ins over the last `days`: a sign-in is
/// legitimate when it was verified (signed in, or passed its step-up) or when an admin judged
/// a blocked one legitimate. Stepped up = it needed a second factor; blocked = it was refused.
pub async fn fairness(svc: &Services, now: Timestamp, days: i64) -> Result<Fairness, FlowError> {
    let since = now.micros() - days * DAY;
    let (judged, prior) = svc
        .db
        .run(move |c| {
            Ok((
                stats::judged_legitimate(c, since)?,
                stats::verified_counts_before(c, since)?,
            ))
        })
        .await?;
    let judged: HashSet<String> = judged.into_iter().collect();
    let mut history: HashMap<String, u64> = prior
        .into_iter()
        .map(|(u, n)| (u, u64::try_from(n).unwrap_or(0)))
        .collect();
    let week = 7 * DAY;
    let mut all = Counts::default();
    let mut weeks: Vec<Counts> = Vec::new();
    weeks.resize_with(
        usize::try_from((now.micros() - since + week - 1) / week).unwrap_or(0),
        Counts::default,
    );
    // Oldest first, so each sign-in sees the history its user had at that moment.
    for_each_scored(svc, since, &["success", "step_up_passed", "blocked"], |r| {
        let verified = r.outcome != "blocked";
        if !verified && !judged.contains(&r.id) {
            return;
        }
        let Some(f) = r
            .features
            .as_deref()
            .and_then(|j| serde_json::from_str::<SignInFeatures>(j).ok())
        else {
            return;
        };
        let seen = r
            .user_id
            .as_ref()
            .map(|u| history.get(u).copied().unwrap_or(0))
            .unwrap_or(0);
        let country = f.geo.country.clone().unwrap_or_else(|| "unknown".into());
        let continent = continent_of(&country).to_owned();
        let legit = Legit {
            groups: [
                country,
                continent,
                f.ua.device_type.as_str().to_owned(),
                f.ua.browser_family.clone(),
                history_bucket(seen).to_owned(),
            ],
            stepped_up: r.outcome == "step_up_passed",
            blocked: !verified,
        };
        all.add(&legit);
        if let Some(w) = usize::try_from((r.at - since) / week)
            .ok()
            .and_then(|i| weeks.get_mut(i))
        {
            w.add(&legit);
        }
        if verified {
            if let Some(u) = &r.user_id {
                *history.entry(u.clone()).or_default() += 1;
            }
        }
    })
    .await?;
    let (step_up_rate, block_rate) = all.overall.rates();
    let over_time = weeks
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let flagged = dimensions(w)
                .iter()
                .flat_map(|d| d.groups.iter())
                .filter(|g| g.flagged)
                .count() as u64;
            let (s, b) = w.overall.rates();
            Period {
                week_starting: since + i as i64 * week,
                legit: w.overall.n,
                step_up_rate: s,
                block_rate: b,
                flagged_groups: flagged,
            }
        })
        .collect();
    Ok(Fairness {
        days,
        legit: all.overall.n,
        step_up_rate,
        block_rate,
        dimensions: dimensions(&all),
        over_time,
    })
}

/// The continent of an ISO 3166-1 country code (`unknown` when not known).
pub fn continent_of(cc: &str) -> &'static str {
    const TABLE: [(&str, &str); 7] = [
        ("Africa", "DZ AO BJ BW BF BI CM CV CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR LY MG MW ML MR MU YT MA MZ NA NE NG RE RW SH ST SN SC SL SO ZA SS SD TZ TG TN UG EH ZM ZW"),
        ("Asia", "AF AM AZ BH BD BT BN KH CN CY GE HK IN ID IR IQ IL JP JO KZ KW KG LA LB MO MY MV MN MM NP KP OM PK PS PH QA SA SG KR LK SY TW TJ TH TL TR TM AE UZ VN YE IO"),
        ("Europe", "AL AD AT BY BE BA BG HR CZ DK EE FO FI FR DE GI GR GG HU IS IE IM IT JE XK LV LI LT LU MT MD MC ME NL MK NO PL PT RO RU SM RS SK SI ES SJ SE CH UA GB VA AX"),
        ("North America", "AI AG AW BS BB BZ BM BQ VG CA KY CR CU CW DM DO SV GL GD GP GT HT HN JM MQ MX MS NI PA PR BL KN LC MF PM VC SX TT TC US VI UM"),
        ("South America", "AR BO BR CL CO EC FK GF GY PY PE SR UY VE"),
        ("Oceania", "AS AU CK FJ PF GU KI MH FM NR NC NZ NU NF MP PW PG PN WS SB TK TO TV VU WF"),
        ("Antarctica", "AQ BV GS HM TF"),
    ];
    let cc = cc.to_ascii_uppercase();
    TABLE
        .iter()
        .find(|(_, list)| cc.len() == 2 && list.split(' ').any(|c| c == cc))
        .map(|(name, _)| *name)
        .unwrap_or("unknown")
}

// ---------------------------------------------------------------------------------------------
// Policy backtest

/// How many stored sign-ins each decision would have had.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Decisions {
    pub allow: u64,
    pub step_up: u64,
    pub block: u64,
}

impl Decisions {
    fn add(&mut self, d: &str) {
        match d {
            "allow" => self.allow += 1,
            "step_up" => self.step_up += 1,
            "block" => self.block += 1,
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    pub days: i64,
    pub evaluated: u64,
    /// What was decided then.
    pub actual: Decisions,
    /// What the policy in force now would decide.
    pub current: Decisions,
    /// What the candidate would decide (absent without a candidate).
    pub candidate: Option<Decisions>,
    /// Sign-ins whose decision the candidate changes.
    pub changed: u64,
}

/// Replay the stored assessments of the last `days` through the policy in force and the
/// candidate: the scores are the ones recorded then, so this tests policy, not the model.
pub async fn backtest(
    svc: &Services,
    now: Timestamp,
    days: i64,
    policy: &RuntimePolicy,
) -> Result<Backtest, FlowError> {
    let since = now.micros() - days * DAY;
    let mut b = Backtest {
        days,
        evaluated: 0,
        actual: Decisions::default(),
        current: Decisions::default(),
        candidate: policy.candidate.map(|_| Decisions::default()),
        changed: 0,
    };
    for_each_scored(
        svc,
        since,
        &["success", "step_up_required", "blocked"],
        |r| {
            let Some(a) = r
                .assessment
                .as_deref()
                .and_then(|j| serde_json::from_str::<Assessment>(j).ok())
            else {
                return;
            };
            b.evaluated += 1;
            b.actual.add(r.decision.as_deref().unwrap_or(""));
            let now_d = would_decide(&a, policy.medium, policy.high, &policy.actions);
            b.current.add(now_d.as_str());
            if let (Some(c), Some(counts)) = (&policy.candidate, b.candidate.as_mut()) {
                let cand = would_decide(&a, c.medium, c.high, &c.actions);
                counts.add(cand.as_str());
                if cand.as_str() != now_d.as_str() {
                    b.changed += 1;
                }
            }
        },
    )
    .await?;
    Ok(b)
}

/// How the live and the shadow model decided the same sign-ins over the last `days`, and what
/// each would have done to the sign-ins vigil has evidence about (`risk::export`'s labels).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShadowComparison {
    pub days: i64,
    /// Sign-ins both models scored.
    pub compared: u64,
    pub live: Decisions,
    pub shadow: Decisions,
    /// Decided differently by the shadow model: in all, more strictly, less strictly.
    pub changed: u64,
    pub stricter: u64,
    pub laxer: u64,
    /// Judged attacks (an admin's verdict, a user's report) and how many each would have stopped.
    pub attacks: u64,
    pub attacks_stopped_live: u64,
    pub attacks_stopped_shadow: u64,
    /// Verified sign-ins and how many each would have challenged (stepped up or blocked).
    pub legitimate: u64,
    pub legitimate_challenged_live: u64,
    pub legitimate_challenged_shadow: u64,
    pub mean_score_live: f64,
    pub mean_score_shadow: f64,
    /// The shadow versions seen in the window.
    pub models: Vec<String>,
}

fn strictness(d: &str) -> u8 {
    match d {
        "allow" => 0,
        "step_up" => 1,
        _ => 2,
    }
}

/// Compare what the live model decided with what the shadow model logged beside it, over the
/// last `days` but not before `not_before` (µs: when the current shadow model was set).
pub async fn shadow_comparison(
    svc: &Services,
    now: Timestamp,
    days: i64,
    not_before: i64,
) -> Result<ShadowComparison, FlowError> {
    use crate::risk::export::{label, Label};
    let since = (now.micros() - days * DAY).max(not_before);
    let verdicts = svc.db.run(move |c| stats::verdicts(c, since)).await?;
    let mut judged: HashMap<String, Vec<String>> = HashMap::new();
    for (id, status) in verdicts {
        judged.entry(id).or_default().push(status);
    }
    let mut c = ShadowComparison {
        days,
        ..ShadowComparison::default()
    };
    let (mut live_sum, mut shadow_sum) = (0u64, 0u64);
    const OUTCOMES: &[&str] = &["success", "step_up_required", "blocked"];
    for_each_scored(svc, since, OUTCOMES, |r| {
        let Some(s) = r
            .shadow
            .as_deref()
            .and_then(|j| serde_json::from_str::<super::risk::ShadowVerdict>(j).ok())
        else {
            return;
        };
        let Some(live) = r.decision.as_deref() else {
            return;
        };
        c.compared += 1;
        c.live.add(live);
        c.shadow.add(&s.decision);
        live_sum += r
            .assessment
            .as_deref()
            .and_then(|j| serde_json::from_str::<Assessment>(j).ok())
            .map_or(0, |a| u64::from(a.score));
        shadow_sum += u64::from(s.score);
        let (l, sh) = (strictness(live), strictness(&s.decision));
        if l != sh {
            c.changed += 1;
            if sh > l {
                c.stricter += 1;
            } else {
                c.laxer += 1;
            }
        }
        let v: Vec<&str> = judged
            .get(&r.id)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        match label(&r.outcome, &v) {
            Some(Label::Attack) => {
                c.attacks += 1;
                c.attacks_stopped_live += u64::from(l > 0);
                c.attacks_stopped_shadow += u64::from(sh > 0);
            }
            Some(Label::Legitimate) => {
                c.legitimate += 1;
                c.legitimate_challenged_live += u64::from(l > 0);
                c.legitimate_challenged_shadow += u64::from(sh > 0);
            }
            _ => {}
        }
        if !c.models.contains(&s.model) {
            c.models.push(s.model);
        }
    })
    .await?;
    if c.compared > 0 {
        c.mean_score_live = live_sum as f64 / c.compared as f64;
        c.mean_score_shadow = shadow_sum as f64 / c.compared as f64;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continents() {
        assert_eq!(continent_of("DE"), "Europe");
        assert_eq!(continent_of("br"), "South America");
        assert_eq!(continent_of("IN"), "Asia");
        assert_eq!(continent_of("ZZ"), "unknown");
        assert_eq!(continent_of(""), "unknown");
    }

    #[test]
    fn ratios_flag_only_with_enough_samples() {
        let mk = |g: &str, stepped_up: bool| Legit {
            groups: [g.into(), g.into(), g.into(), g.into(), g.into()],
            stepped_up,
            blocked: false,
        };
        // 100 in "a" with 5 % step-up, 30 in "b" with 30 %, 5 in "c" all stepped up.
        let mut v = Vec::new();
        v.extend((0..100).map(|i| mk("a", i < 5)));
        v.extend((0..30).map(|i| mk("b", i < 9)));
        v.extend((0..5).map(|_| mk("c", true)));
        let mut counts = Counts::default();
        for l in &v {
            counts.add(l);
        }
        let d = &dimensions(&counts)[0];
        let get = |g: &str| d.groups.iter().find(|x| x.group == g).cloned();
        let (a, b, c) = (get("a"), get("b"), get("c"));
        assert!(!a.is_some_and(|g| g.flagged));
        assert!(b.is_some_and(|g| g.flagged && (g.step_up_rate - 0.3).abs() < 1e-9));
        assert!(!c.is_some_and(|g| g.flagged), "too few sign-ins to flag");
    }
}

/// What `vigil risk export` wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Exported {
    pub legitimate: u64,
    pub attacks: u64,
    pub failed_attempts: u64,
    /// Scored sign-ins left out: nobody judged them (blocked, failed step-ups), or they are a
    /// step of another sign-in.
    pub unlabelled: u64,
}

/// The sign-in log since `since` (µs) as a labelled training set in the replay format
/// (`risk::export` says how each row is labelled), oldest first, a page at a time.
pub async fn export_labelled(
    svc: &Services,
    since: i64,
    out: &mut (dyn std::io::Write + Send),
) -> Result<Exported, FlowError> {
    use crate::risk::export::{header, label, row, Label};
    let verdicts = svc.db.run(move |c| stats::verdicts(c, since)).await?;
    let mut judged: HashMap<String, Vec<String>> = HashMap::new();
    for (id, status) in verdicts {
        judged.entry(id).or_default().push(status);
    }
    header(out).map_err(|e| FlowError::Invalid(e.to_string()))?;
    let mut n = Exported::default();
    let mut failed: Option<std::io::Error> = None;
    const OUTCOMES: &[&str] = &[
        "success",
        "step_up_passed",
        "step_up_required",
        "step_up_failed",
        "blocked",
        "failure",
    ];
    for_each_scored(svc, since, OUTCOMES, |r| {
        if failed.is_some() {
            return;
        }
        let v: Vec<&str> = judged
            .get(&r.id)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let features = r
            .features
            .as_deref()
            .and_then(|j| serde_json::from_str::<SignInFeatures>(j).ok());
        let (Some(l), Some(user), Some(f)) = (label(&r.outcome, &v), &r.user_id, features) else {
            n.unlabelled += 1;
            return;
        };
        match l {
            Label::Legitimate => n.legitimate += 1,
            Label::Attack => n.attacks += 1,
            Label::FailedAttempt => n.failed_attempts += 1,
        }
        let ua = r.user_agent.as_deref().unwrap_or("");
        if let Err(e) = row(out, &r.id, user, &f, ua, l) {
            failed = Some(e);
        }
    })
    .await?;
    match failed {
        Some(e) => Err(FlowError::Invalid(e.to_string())),
        None => Ok(n),
    }
}
