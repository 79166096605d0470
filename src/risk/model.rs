//! The scoring model ("freeman-hier-3"; the versions are in `config::VERSIONS`): `assess` and
//! the `Assessment` it returns. The state it
//! reads is in `state.rs`, its numbers in `config.rs`. Pure: no I/O, no clock, and `assess`
//! takes everything by `&` — only `learn` and `mark_attack` (in `state.rs`) change state.
//!
//! Score, in the style of Freeman et al. (NDSS 2016): for each feature chain
//! (network: country → ASN → city → IP /24 or /48; device: type → OS → browser → fingerprint,
//! or a known device cookie in place of the fingerprint; and hour of day) the contribution of
//! each level is `w · ln(P_attacker(x | parent) / P_user(x | parent))`, where
//!
//! ```text
//!   P_attacker(x | parent) = p_g = (G(x) + β) / (G(parent) + β·V)        global frequency
//!   P_user(x | parent)          = (c(x) + α·p_g) / (c(parent) + α)      Dirichlet back-off
//! ```
//!
//! `G` are global counts, `c` the user's verified counts, `V` the expected number of values per
//! parent. Keys are whole paths (`DE|AS3320|Berlin`), so a value the user never showed under
//! its parent backs off to the global distribution: a new country is charged once, at the
//! country level, and its ASN/city/prefix then contribute 0. With no history (`c = 0`) every
//! term is exactly 0 — a new user is not an attacker for being new. The sum over a chain is the
//! Freeman LLR of the finest value; with α non-decreasing down the chain (enforced) it is
//! largest for a never-seen top value, so switching to a never-seen country never lowers the
//! score. Familiarity is capped (`floors.levels`: −1 nat per level in freeman-hier-2, −3 for
//! the ISP and city and none for the /24 since freeman-hier-3; freeman-hier-1 floored each
//! chain's sum instead, which let a familiar country, ISP and city swallow a new network), each
//! level has a weight (`weights.levels`, what `vigil risk
//! fit` fits), and a chain is bounded by what a never-seen top value would add, so caps and
//! weights cannot make partial novelty outscore total novelty.
//!
//! Rules add hard evidence: deny list (+6, at least high), impossible travel (+3, at least
//! medium), failure bursts (+1.5, at least medium); failures and admin-marked attack values add
//! capped `ln(1 + n)` terms. `raw` (nats) maps to 0–100 by a logistic:
//! `score = 100 / (1 + exp(-(raw - center) / scale))`, defaults center 3.0, scale 2.5, so a
//! neutral sign-in (raw 0) scores 23, medium (≥ 35) starts at raw ≈ 1.45 and high (≥ 70) at
//! raw ≈ 5.1. A rule's minimum level also lifts the score to that level's threshold.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::{model_version, RiskConfig, Thresholds};
use super::state::{
    hour_of, ip_prefix, keys, GlobalStats, Keys, UserProfile, DEVICE, FEATURES, FINGERPRINT,
    MISSING, NETWORK, REPUTATION_CAP, REPUTATION_HALF_LIFE_DAYS,
};
use super::travel::impossible_travel;
use super::{SignInFeatures, Signal};
use crate::clock::Timestamp;

const SIGNALS: [Option<Signal>; 8] = [
    Some(Signal::NewCountry),
    Some(Signal::NewAsn),
    Some(Signal::NewCity),
    None, // a new /24 inside a known network is everyday DHCP churn, not a contract signal
    Some(Signal::NewDevice),
    Some(Signal::NewUserAgent),
    Some(Signal::NewUserAgent),
    Some(Signal::NewDevice),
];

// ---------------------------------------------------------------------------------------------
// Assessment

/// Risk level. Serialises lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

/// One term of `raw`: `llr` is what it added (weighted, in nats; negative = familiar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    pub value: String,
    /// The user's (decayed) count of this value under its parent.
    pub seen_for_user: u32,
    pub seen_globally: u64,
    pub llr: f64,
    /// The contract signal this term is reported as, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
}

/// The outcome of `assess`. The contributions add up to `raw`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub score: u8,
    pub level: Level,
    /// Signals that pushed the score up, strongest first.
    pub reasons: Vec<Signal>,
    pub contributions: Vec<Contribution>,
    /// The strongest hard rule that fired: `deny_list`, `impossible_travel` or `failure_burst`.
    pub rule: Option<String>,
    pub raw: f64,
    /// `model_version(cfg)`.
    pub model: String,
}

/// Rule names, as they appear in `Assessment::rule`.
pub const RULE_DENY_LIST: &str = "deny_list";
pub const RULE_IMPOSSIBLE_TRAVEL: &str = "impossible_travel";
pub const RULE_FAILURE_BURST: &str = "failure_burst";

fn term(feature: &str, value: String, llr: f64, signal: Option<Signal>) -> Contribution {
    Contribution {
        feature: feature.to_owned(),
        value,
        seen_for_user: 0,
        seen_globally: 0,
        llr,
        signal,
    }
}

/// Score one sign-in. Reads the profile and the global statistics; changes nothing.
pub fn assess(
    f: &SignInFeatures,
    profile: &UserProfile,
    global: &GlobalStats,
    cfg: &RiskConfig,
) -> Assessment {
    let k = keys(f);
    let mut out: Vec<Contribution> = Vec::with_capacity(16);
    let known_cookie = f
        .device
        .cookie_id
        .as_deref()
        .is_some_and(|c| profile.knows_cookie(c));

    let w = &cfg.weights;
    let start = out.len();
    let top = chain(
        &k, NETWORK, profile, global, cfg, w.network, false, &mut out,
    );
    bound(&mut out, start, "network", cfg.floors.network, top);
    let start = out.len();
    let top = chain(
        &k,
        DEVICE,
        profile,
        global,
        cfg,
        w.device,
        known_cookie,
        &mut out,
    );
    bound(&mut out, start, "device", cfg.floors.device, top);
    let start = out.len();
    out.push(hour_term(f.at, profile, cfg));
    bound(&mut out, start, "hour", cfg.floors.hour, f64::INFINITY);

    // Admin-marked attack values make the attacker likelier: w · ln(1 + marks), the marks
    // halved every REPUTATION_HALF_LIFE_DAYS since the value was last marked.
    let rep = &global.reputation;
    for (name, map, value) in [
        ("reputation_ip_prefix", &rep.ip_prefix, f.ip.map(ip_prefix)),
        (
            "reputation_asn",
            &rep.asn,
            f.geo.asn.map(|a| format!("AS{a}")),
        ),
        (
            "reputation_fingerprint",
            &rep.fingerprint,
            f.device.fingerprint.clone(),
        ),
    ] {
        let marks = value
            .as_deref()
            .map_or(0, |v| map.count(v))
            .min(REPUTATION_CAP);
        let age_days = value
            .as_deref()
            .and_then(|v| map.last_seen(v))
            .map_or(0.0, |t| (f.at.secs() - t).max(0) as f64 / 86_400.0);
        let weight = f64::from(marks) * 0.5f64.powf(age_days / REPUTATION_HALF_LIFE_DAYS);
        if marks > 0 && weight >= 0.01 {
            let mut c = term(
                name,
                value.unwrap_or_default(),
                w.reputation * weight.ln_1p(),
                None,
            );
            c.seen_globally = u64::from(marks);
            out.push(c);
        }
    }

    let fc = &f.failures;
    for (name, n, weight) in [
        (
            "failed_attempts_account",
            fc.account_recent,
            w.failed_account,
        ),
        ("failed_attempts_ip", fc.ip_recent, w.failed_ip),
        (
            "spraying_accounts_from_ip",
            fc.ip_distinct_accounts,
            w.spraying,
        ),
    ] {
        if n > 0 {
            let llr = weight * f64::from(n).ln_1p();
            out.push(term(name, n.to_string(), llr, Some(Signal::FailedAttempts)));
        }
    }

    // Hard rules, weakest first; the last to fire is the strongest.
    let r = &cfg.rules;
    let mut rule: Option<(&str, Level)> = None;
    if fc.account_recent >= r.burst_account_failures
        || fc.ip_distinct_accounts >= r.burst_ip_accounts
    {
        let v = format!(
            "{} for the account, {} accounts from the IP",
            fc.account_recent, fc.ip_distinct_accounts
        );
        out.push(term(
            RULE_FAILURE_BURST,
            v,
            r.burst_weight,
            Some(Signal::FailedAttempts),
        ));
        rule = Some((RULE_FAILURE_BURST, Level::Medium));
    }
    if let Some(ev) = travel(f, profile, cfg) {
        let v = format!(
            "{:.0} km in {:.2} h = {:.0} km/h",
            ev.km, ev.hours, ev.speed_kmh
        );
        out.push(term(
            RULE_IMPOSSIBLE_TRAVEL,
            v,
            r.travel_weight,
            Some(Signal::ImpossibleTravel),
        ));
        rule = Some((RULE_IMPOSSIBLE_TRAVEL, Level::Medium));
    }
    // A deny-listed address an admin vouched for (this user, this device) is scored like any
    // other network.
    if f.deny_listed && !profile.is_vouched(f) {
        let v = f.ip.map_or_else(|| MISSING.to_owned(), |ip| ip.to_string());
        out.push(term(
            RULE_DENY_LIST,
            v,
            r.deny_list_weight,
            Some(Signal::AnonymousIp),
        ));
        rule = Some((RULE_DENY_LIST, Level::High));
    }

    let raw: f64 = out.iter().map(|c| c.llr).sum();
    let mut score = to_score(raw, cfg);
    let mut level = level_of(score, &cfg.thresholds);
    if let Some((_, min_level)) = rule {
        if min_level > level {
            level = min_level;
            score = score.max(threshold(min_level, &cfg.thresholds));
        }
    }
    // A device that is neither a known cookie nor a known fingerprint is a new device even when
    // the novelty was charged higher up its chain (a new browser implies a new fingerprint).
    let new_device = !known_cookie
        && profile.n > 0
        && profile.counts.fingerprint.count(&k.path[FINGERPRINT]) == 0;
    let device_novelty: f64 = out
        .iter()
        .filter(|c| c.llr > 0.0 && FEATURES[DEVICE].contains(&c.feature.as_str()))
        .map(|c| c.llr)
        .sum();
    let implied = new_device.then_some((Signal::NewDevice, device_novelty));
    Assessment {
        score,
        level,
        reasons: reasons(&out, implied, cfg.reason_min_llr),
        contributions: out,
        rule: rule.map(|(name, _)| name.to_owned()),
        raw,
        model: model_version(cfg),
    }
}

/// The terms of one chain. `known_cookie` replaces the fingerprint level by the cookie.
/// Each level's log ratio is capped below at `floors.levels` (familiarity credit) and weighted
/// by `weight · weights.levels`. Returns what a never-seen top value would add — the most the
/// chain may add, since nothing is stranger than a never-seen country or device type.
#[allow(clippy::too_many_arguments)]
fn chain(
    k: &Keys,
    levels: std::ops::Range<usize>,
    profile: &UserProfile,
    global: &GlobalStats,
    cfg: &RiskConfig,
    weight: f64,
    known_cookie: bool,
    out: &mut Vec<Contribution>,
) -> f64 {
    let s = &cfg.smoothing;
    let (wl, cap) = (&cfg.weights.levels, &cfg.floors.levels);
    let top = {
        let a = s.alpha.get(levels.start).max(1e-3);
        let n = f64::from(profile.n);
        weight * wl.get(levels.start) * ((n + a) / a).ln()
    };
    let (mut user_parent, mut global_parent) = (f64::from(profile.n), f64::from(global.n));
    let mut alpha = 1e-3_f64;
    for i in levels {
        if i == FINGERPRINT && known_cookie {
            let llr = weight * wl.get(i) * s.known_cookie_llr.max(cap.get(i));
            out.push(term(
                "device_cookie",
                "known".to_owned(),
                llr,
                Some(Signal::NewDevice),
            ));
            continue;
        }
        // α non-decreasing down the chain keeps "never seen at the top" the maximum.
        alpha = alpha.max(s.alpha.get(i));
        let g = global.counts.level(i).count(&k.path[i]);
        let u = profile.counts.level(i).count(&k.path[i]);
        let uf = f64::from(u).min(user_parent);
        let beta = s.beta.max(1e-9);
        let p_g = ((f64::from(g) + beta) / (global_parent + beta * s.vocab.get(i).max(1.0)))
            .clamp(1e-12, 1.0);
        let p_u = (uf + alpha * p_g) / (user_parent + alpha);
        out.push(Contribution {
            feature: FEATURES[i].to_owned(),
            value: k.leaf[i].clone(),
            seen_for_user: u,
            seen_globally: u64::from(g),
            llr: weight * wl.get(i) * (p_g.ln() - p_u.ln()).max(cap.get(i)),
            signal: SIGNALS[i],
        });
        user_parent = uf;
        global_parent = f64::from(g);
    }
    top
}

/// Keep the terms from `start` on between `min` (familiarity floor) and `max` (what a
/// never-seen top value adds), adding the difference as its own term: capped familiarity and
/// per-level weights must not let partial novelty outscore total novelty.
fn bound(out: &mut Vec<Contribution>, start: usize, group: &str, min: f64, max: f64) {
    let sum: f64 = out.iter().skip(start).map(|c| c.llr).sum();
    if sum < min {
        let value = format!("familiarity capped at {min}");
        out.push(term(&format!("{group}_floor"), value, min - sum, None));
        return;
    }
    if sum > max {
        let value = format!("novelty capped at {max:.3}");
        out.push(term(
            &format!("{group}_novelty_cap"),
            value,
            max - sum,
            None,
        ));
    }
}

/// Hour of day (UTC): the user's histogram, each hour also credited half of its neighbours',
/// against a uniform attacker; the user side starts uniform (`hour_alpha`).
fn hour_term(at: Timestamp, profile: &UserProfile, cfg: &RiskConfig) -> Contribution {
    let h = hour_of(at);
    let c = |i: usize| f64::from(profile.hours[i % 24]);
    let near = c(h) + 0.5 * (c(h + 23) + c(h + 1));
    let total = 2.0 * profile.hours.iter().map(|&x| f64::from(x)).sum::<f64>();
    let a = cfg.smoothing.hour_alpha.max(1e-3);
    let p_u = (near + a / 24.0) / (total + a);
    Contribution {
        feature: "hour".to_owned(),
        value: format!("{h:02}h UTC"),
        seen_for_user: profile.hours[h],
        seen_globally: 0,
        llr: cfg.weights.hour * ((1.0_f64 / 24.0).ln() - p_u.ln()),
        signal: Some(Signal::UnusualHour),
    }
}

fn travel(
    f: &SignInFeatures,
    profile: &UserProfile,
    cfg: &RiskConfig,
) -> Option<super::TravelEvidence> {
    let last = profile.last_location?;
    let (lat, lon) = (f.geo.latitude?, f.geo.longitude?);
    let radius = |r: Option<u16>| r.map_or(cfg.rules.default_accuracy_radius_km, f64::from);
    impossible_travel(
        (
            last.latitude,
            last.longitude,
            radius(last.accuracy_radius_km),
            last.at,
        ),
        (lat, lon, radius(f.geo.accuracy_radius_km), f.at),
        &cfg.rules.travel,
    )
}

/// The score and level of a raw value, before any rule's minimum level (for a comparison
/// model scored through the same map and thresholds).
pub(crate) fn score_level(raw: f64, cfg: &RiskConfig) -> (u8, Level) {
    let score = to_score(raw, cfg);
    (score, level_of(score, &cfg.thresholds))
}

fn to_score(raw: f64, cfg: &RiskConfig) -> u8 {
    let x = (raw - cfg.score.center) / cfg.score.scale.max(1e-6);
    let s = 100.0 / (1.0 + (-x).exp());
    if s.is_nan() {
        return 100; // fail closed
    }
    s.round().clamp(0.0, 100.0) as u8
}

fn level_of(score: u8, t: &Thresholds) -> Level {
    if score >= t.high {
        Level::High
    } else if score >= t.medium {
        Level::Medium
    } else {
        Level::Low
    }
}

fn threshold(level: Level, t: &Thresholds) -> u8 {
    match level {
        Level::Low => 0,
        Level::Medium => t.medium,
        Level::High => t.high,
    }
}

/// Signals whose positive terms add at least `min`, strongest first (ties: declaration order).
/// `implied` is a signal with the strength of terms already attributed to another signal.
fn reasons(out: &[Contribution], implied: Option<(Signal, f64)>, min: f64) -> Vec<Signal> {
    let mut by: BTreeMap<Signal, f64> = BTreeMap::new();
    for c in out.iter().filter(|c| c.llr > 0.0) {
        if let Some(s) = c.signal {
            *by.entry(s).or_default() += c.llr;
        }
    }
    if let Some((s, x)) = implied {
        let e = by.entry(s).or_default();
        *e = e.max(x);
    }
    let mut v: Vec<(Signal, f64)> = by.into_iter().filter(|&(_, x)| x >= min).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter().map(|(s, _)| s).collect()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use proptest::prelude::*;

    use super::*;
    use crate::risk::state::*;
    use crate::risk::{
        decide, AvailableFactors, BlockReason, Decision, DeviceType, FailureCounts, Geo, Policy,
        UaInfo,
    };

    const T0: Timestamp = Timestamp::from_secs(1_767_225_600); // 2026-01-01 00:00 UTC

    /// (country, city, ASN, /24 base, lat, lon)
    #[allow(clippy::type_complexity)]
    const NETS: [(&str, &str, u32, [u8; 3], f64, f64); 5] = [
        ("DE", "Berlin", 64496, [192, 0, 2], 52.52, 13.405),
        ("DE", "Munich", 64499, [192, 0, 3], 48.14, 11.58),
        ("AU", "Sydney", 64497, [198, 51, 100], -33.87, 151.21),
        ("US", "New York", 64498, [203, 0, 113], 40.71, -74.01),
        ("GB", "London", 64510, [81, 2, 69], 51.51, -0.09),
    ];
    /// (device type, OS, browser, fingerprint, cookie)
    const DEVS: [(DeviceType, &str, &str, &str, &str); 4] = [
        (
            DeviceType::Desktop,
            "Windows",
            "Chrome",
            "fp-win-chrome",
            "cookie-a",
        ),
        (
            DeviceType::Desktop,
            "Linux",
            "Firefox",
            "fp-linux-ff",
            "cookie-b",
        ),
        (
            DeviceType::Mobile,
            "iOS",
            "Mobile Safari",
            "fp-iphone",
            "cookie-c",
        ),
        (
            DeviceType::Mobile,
            "Android",
            "Chrome Mobile",
            "fp-android",
            "cookie-d",
        ),
    ];

    fn feat(net: usize, dev: usize, at: Timestamp) -> SignInFeatures {
        let mut f = SignInFeatures::at(at);
        if let Some(&(cc, city, asn, p, lat, lon)) = NETS.get(net) {
            f.ip = Some(IpAddr::from([p[0], p[1], p[2], 10]));
            f.geo = Geo {
                country: Some(cc.to_owned()),
                city: Some(city.to_owned()),
                latitude: Some(lat),
                longitude: Some(lon),
                accuracy_radius_km: Some(20),
                asn: Some(asn),
                asn_org: None,
            };
        }
        let (kind, os, browser, fp, cookie) = DEVS[dev % DEVS.len()];
        f.ua = UaInfo {
            browser_family: browser.to_owned(),
            browser_major: Some("124".to_owned()),
            os_family: os.to_owned(),
            device_type: kind,
        };
        f.device.fingerprint = Some(fp.to_owned());
        f.device.cookie_id = Some(cookie.to_owned());
        f
    }

    /// A population: 400 sign-ins spread over all networks and devices.
    fn population() -> GlobalStats {
        let mut g = GlobalStats::default();
        for i in 0..400_usize {
            g.learn(&feat(i % 5, (i / 5) % 4, T0.plus_secs(i as i64 * 600)));
        }
        g
    }

    /// 20 verified sign-ins from Berlin on the Windows/Chrome device, 08:00–17:00 UTC, daily.
    fn trained() -> UserProfile {
        let mut p = UserProfile::default();
        for day in 0..20 {
            p.learn(&feat(
                0,
                0,
                T0.plus_secs(day * 86_400 + (8 + day % 10) * 3_600),
            ));
        }
        p
    }

    fn last(p: &UserProfile) -> Timestamp {
        p.last_verified_at.unwrap()
    }

    fn score(f: &SignInFeatures, p: &UserProfile, g: &GlobalStats) -> Assessment {
        assess(f, p, g, &RiskConfig::default())
    }

    #[test]
    fn a_new_user_is_low_and_exactly_neutral() {
        let cfg = RiskConfig::default();
        for g in [GlobalStats::default(), population()] {
            for (net, dev) in [(0, 0), (2, 3), (9, 1)] {
                let a = assess(&feat(net, dev, T0), &UserProfile::default(), &g, &cfg);
                assert_eq!(a.level, Level::Low, "{a:#?}");
                assert!(a.raw.abs() < 1e-9 && a.reasons.is_empty(), "{a:#?}");
                assert_eq!(
                    decide(&a, &Policy::default(), AvailableFactors::default(), None),
                    Decision::Allow
                );
            }
        }
    }

    #[test]
    fn a_familiar_device_at_home_is_low() {
        let (p, g) = (trained(), population());
        let a = score(&feat(0, 0, last(&p).plus_secs(86_400)), &p, &g);
        assert_eq!(a.level, Level::Low, "{a:#?}");
        assert!(a.reasons.is_empty() && a.raw < 0.0, "{a:#?}");
        // Without the cookie the fingerprint still recognises the device.
        let mut f = feat(0, 0, last(&p).plus_secs(86_400));
        f.device.cookie_id = None;
        assert_eq!(score(&f, &p, &g).level, Level::Low);
    }

    #[test]
    fn a_new_device_in_a_new_country_is_at_least_medium() {
        let (p, g) = (trained(), population());
        let three_days = last(&p).plus_secs(3 * 86_400);
        for dev in 1..4 {
            let a = score(&feat(4, dev, three_days), &p, &g);
            assert!(a.level >= Level::Medium, "{a:#?}");
            assert!(a.rule.is_none(), "three days is time enough to fly: {a:#?}");
            assert!(a.reasons.contains(&Signal::NewCountry), "{a:#?}");
            assert!(a.reasons.contains(&Signal::NewDevice), "{a:#?}");
        }
        // A new country alone (the known device, cookie and all, travelling) is reported but
        // no longer steps up by itself since freeman-hier-2: the device's familiarity counts
        // per level (capped), not as one capped chain. With freeman-hier-1 it stepped up.
        let a = score(&feat(4, 0, three_days), &p, &g);
        assert_eq!(a.level, Level::Low, "{a:#?}");
        assert_eq!(a.reasons, vec![Signal::NewCountry]);
        let v1 = assess(&feat(4, 0, three_days), &p, &g, &RiskConfig::v1());
        assert_eq!(v1.level, Level::Medium, "{v1:#?}");
        let home = score(&feat(0, 0, three_days), &p, &g);
        assert!(a.raw > home.raw + 3.0, "{a:#?}");
        // …and a new network in the home country is milder than a new country.
        let munich = score(&feat(1, 0, three_days), &p, &g);
        assert!(munich.raw < a.raw, "{munich:#?}");
    }

    #[test]
    fn familiarity_is_capped_per_level_so_a_new_network_shows_through() {
        let (p, g) = (trained(), population());
        let later = last(&p).plus_secs(86_400);
        let home = feat(0, 0, later);
        // Same country, ASN and city, another /24: what a very targeted attacker looks like.
        let mut new_net = feat(0, 0, later);
        new_net.ip = Some(IpAddr::from([192, 0, 9, 10]));
        // freeman-hier-2: each level's familiarity is capped at 1 nat.
        let cfg = RiskConfig::v2();
        let (a, h) = (assess(&new_net, &p, &g, &cfg), assess(&home, &p, &g, &cfg));
        let levels = a
            .contributions
            .iter()
            .filter(|c| FEATURES.contains(&c.feature.as_str()) || c.feature == "device_cookie");
        for c in levels {
            assert!(c.llr >= -1.0 - 1e-9, "{c:#?}");
        }
        assert!(a.raw > h.raw + 0.5, "{a:#?}");
        // freeman-hier-1: the network chain's floor absorbed the new /24 entirely.
        let v1 = RiskConfig::v1();
        let (a1, h1) = (assess(&new_net, &p, &g, &v1), assess(&home, &p, &g, &v1));
        assert!((a1.raw - h1.raw).abs() < 1e-9, "{a1:#?}");
        // freeman-hier-3: the familiar /24 earns more than 1 nat, so the new one stands further
        // above home.
        let v3 = RiskConfig::v3();
        let (a3, h3) = (assess(&new_net, &p, &g, &v3), assess(&home, &p, &g, &v3));
        assert!(a3.raw - h3.raw > a.raw - h.raw, "{a3:#?} {h3:#?}");
    }

    #[test]
    fn impossible_travel_is_at_least_medium() {
        let (p, g) = (trained(), population());
        // Sydney on the known device 30 minutes after the last Berlin sign-in.
        let a = score(&feat(2, 0, last(&p).plus_secs(1_800)), &p, &g);
        assert!(a.level >= Level::Medium, "{a:#?}");
        assert_eq!(a.rule.as_deref(), Some(RULE_IMPOSSIBLE_TRAVEL));
        assert!(a.reasons.contains(&Signal::ImpossibleTravel));
        // Unknown location: no travel rule.
        let mut f = feat(2, 0, last(&p).plus_secs(1_800));
        f.geo.latitude = None;
        assert!(score(&f, &p, &g).rule.is_none());
    }

    #[test]
    fn deny_listed_is_blocked_by_the_default_policy() {
        let all = AvailableFactors {
            webauthn: true,
            totp: true,
            recovery: true,
        };
        for p in [UserProfile::default(), trained()] {
            let mut f = feat(0, 0, T0.plus_secs(30 * 86_400));
            f.deny_listed = true;
            let a = score(&f, &p, &population());
            assert_eq!(
                (a.level, a.rule.as_deref()),
                (Level::High, Some(RULE_DENY_LIST))
            );
            assert_eq!(a.reasons.first(), Some(&Signal::AnonymousIp));
            let d = decide(&a, &Policy::default(), all, None);
            assert_eq!(
                d,
                Decision::Block {
                    reason: BlockReason::DenyListed
                }
            );
        }
    }

    #[test]
    fn a_vouched_deny_listed_address_is_scored_like_any_other_for_that_device_only() {
        let mut p = trained();
        let mut f = feat(0, 0, T0.plus_secs(30 * 86_400));
        f.deny_listed = true;
        f.ip = "203.0.113.5".parse().ok();
        f.device.cookie_id = Some("the-vouched-laptop".into());
        p.vouch(&f);
        let a = score(&f, &p, &population());
        assert_ne!(a.rule.as_deref(), Some(RULE_DENY_LIST));
        assert!(!a.reasons.contains(&Signal::AnonymousIp));
        // Another device on the same address, or the device on another listed address: held.
        let mut other = f.clone();
        other.device.cookie_id = Some("someone-else".into());
        assert_eq!(
            score(&other, &p, &population()).rule.as_deref(),
            Some(RULE_DENY_LIST)
        );
        let mut moved = f.clone();
        moved.ip = "203.0.113.6".parse().ok();
        assert_eq!(
            score(&moved, &p, &population()).rule.as_deref(),
            Some(RULE_DENY_LIST)
        );
    }

    #[test]
    fn failures_and_bursts() {
        let g = population();
        let mut f = feat(0, 0, T0);
        f.failures = FailureCounts {
            account_recent: 2,
            ip_recent: 2,
            ip_distinct_accounts: 1,
        };
        let a = score(&f, &UserProfile::default(), &g);
        assert_eq!(a.level, Level::Low, "a few typos: {a:#?}");
        f.failures = FailureCounts {
            account_recent: 1,
            ip_recent: 40,
            ip_distinct_accounts: 30,
        };
        let a = score(&f, &UserProfile::default(), &g);
        assert!(a.level >= Level::Medium, "spraying: {a:#?}");
        assert_eq!(a.rule.as_deref(), Some(RULE_FAILURE_BURST));
        assert_eq!(a.reasons, vec![Signal::FailedAttempts]);
    }

    #[test]
    fn attack_reputation_raises_the_score() {
        let (p, mut g) = (trained(), population());
        let f = feat(3, 1, last(&p).plus_secs(5 * 86_400));
        let before = score(&f, &p, &g);
        g.mark_attack(&f);
        g.mark_attack(&f);
        let after = score(&f, &p, &g);
        assert!(after.raw > before.raw + 2.0, "{after:#?}");
        assert!(after
            .contributions
            .iter()
            .any(|c| c.feature == "reputation_asn"));
        for _ in 0..100 {
            g.mark_attack(&f);
        }
        assert_eq!(g.reputation.asn.count("AS64498"), REPUTATION_CAP);
    }

    #[test]
    fn attack_reputation_decays() {
        let (p, mut g) = (trained(), population());
        let f = feat(3, 1, last(&p).plus_secs(5 * 86_400));
        let clean = score(&f, &p, &g).raw;
        g.mark_attack(&f);
        g.mark_attack(&f);
        let fresh = score(&f, &p, &g).raw - clean;
        // The same sign-in context 90 days later: three half-lives, an eighth of the marks.
        let later = feat(3, 1, last(&p).plus_secs(95 * 86_400));
        let mut g2 = population();
        let clean_later = score(&later, &p, &g2).raw;
        g2.mark_attack(&f);
        g2.mark_attack(&f);
        let old = score(&later, &p, &g2).raw - clean_later;
        assert!(fresh > 0.0 && old > 0.0, "{fresh} {old}");
        assert!(old < fresh / 2.0, "decayed: {old} vs {fresh}");
    }

    #[test]
    fn only_learn_changes_state() {
        let (mut p, mut g) = (trained(), population());
        let (p0, g0) = (p.clone(), g.clone());
        let f = feat(2, 2, last(&p).plus_secs(600));
        let a = score(&f, &p, &g);
        assert_eq!((&p, &g), (&p0, &g0), "assess takes & and changes nothing");
        assert!(a.level >= Level::Medium);
        // An unverified attempt is not learned; a verified one is.
        p.learn(&f);
        g.learn(&f);
        assert_eq!(p.n, p0.n + 1);
        assert_eq!(p.counts.country.count("AU"), 1);
        assert_eq!(g.n, g0.n + 1);
    }

    #[test]
    fn profiles_are_bounded_and_serialisable() {
        let mut p = UserProfile::default();
        let mut g = GlobalStats::default();
        for i in 0..10_000_i64 {
            let mut f = feat((i % 5) as usize, (i % 4) as usize, T0.plus_secs(i * 3_700));
            f.geo.city = Some(format!("city-{i}"));
            f.device.fingerprint = Some(format!("fp-{i}"));
            f.device.cookie_id = Some(format!("cookie-{i}"));
            p.learn(&f);
            g.learn(&f);
        }
        assert!(p.n < USER_HISTORY_CAP && p.lifetime == 10_000);
        assert!(p.counts.city.len() <= USER_VALUES_PER_FEATURE);
        assert!(p.counts.fingerprint.len() <= USER_VALUES_PER_FEATURE);
        assert!(p.cookies.len() <= USER_VALUES_PER_FEATURE);
        assert!(g.counts.city.len() <= GLOBAL_VALUES_PER_FEATURE);
        // The most frequent values survive eviction.
        assert!(p.counts.country.count("DE") > 0 && p.counts.device_type.count("desktop") > 0);
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.len() < 32 * 1024, "{} bytes", json.len());
        assert_eq!(serde_json::from_str::<UserProfile>(&json).unwrap(), p);
        let global_json = serde_json::to_string(&g).unwrap();
        println!(
            "JSON: profile {} bytes, global {} bytes",
            json.len(),
            global_json.len()
        );
        let json = global_json;
        assert_eq!(serde_json::from_str::<GlobalStats>(&json).unwrap(), g);
        // Old JSON without new fields still loads.
        assert_eq!(
            serde_json::from_str::<UserProfile>("{}").unwrap(),
            UserProfile::default()
        );
    }

    #[test]
    fn assessment_shape_and_model_version() {
        let (p, g) = (trained(), population());
        let a = score(&feat(4, 2, last(&p).plus_secs(3 * 86_400)), &p, &g);
        let sum: f64 = a.contributions.iter().map(|c| c.llr).sum();
        assert!((sum - a.raw).abs() < 1e-9);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["level"], a.level.as_str());
        assert!(json["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.as_str().unwrap().starts_with("new_")));
        let cfg = RiskConfig::default();
        let v = model_version(&cfg);
        assert_eq!((v.len(), v.clone()), (12, a.model.clone()));
        assert!(v.chars().all(|c| c.is_ascii_hexdigit()));
        let mut other = cfg;
        other.thresholds.medium = 40;
        assert_ne!(model_version(&other), v);
        let round: RiskConfig =
            serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(model_version(&round), v);
        let partial: RiskConfig = serde_json::from_str(r#"{"thresholds":{"high":80}}"#).unwrap();
        assert_eq!(
            (partial.thresholds.medium, partial.thresholds.high),
            (35, 80)
        );
    }

    #[test]
    fn the_default_is_the_last_version() {
        use crate::risk::config::{preset, previous_version, VERSIONS};
        let last = VERSIONS.last().map(|v| v.0);
        assert_eq!(last, Some(crate::risk::MODEL_CODE_VERSION));
        assert_eq!(
            preset(crate::risk::MODEL_CODE_VERSION),
            Some(RiskConfig::default())
        );
        assert_eq!(previous_version("freeman-hier-3"), Some("freeman-hier-2"));
        assert_eq!(previous_version("freeman-hier-2"), Some("freeman-hier-1"));
        assert_eq!(previous_version("freeman-hier-1"), None);
        assert_eq!(preset("no-such-version"), None);
    }

    /// Raw value of the scenarios that set the defaults (run with --nocapture to see).
    #[test]
    fn scenario_table() {
        let (p, g) = (trained(), population());
        let later = last(&p).plus_secs(3 * 86_400);
        let rows = [
            ("new user", feat(0, 0, T0), UserProfile::default()),
            ("familiar", feat(0, 0, later), p.clone()),
            ("new network, home country", feat(1, 0, later), p.clone()),
            ("new device (same type), home", feat(0, 1, later), p.clone()),
            ("new phone, home", feat(0, 2, later), p.clone()),
            ("new country, known device", feat(4, 0, later), p.clone()),
            ("new country + new device", feat(4, 1, later), p.clone()),
            ("new country + new phone", feat(4, 2, later), p.clone()),
        ];
        for (name, f, prof) in rows {
            let a = score(&f, &prof, &g);
            println!(
                "{name:32} raw {:+6.2} score {:3} {:?} {:?}",
                a.raw, a.score, a.level, a.reasons
            );
        }
    }

    fn arb_features() -> impl Strategy<Value = SignInFeatures> {
        (
            0..6_usize,
            0..4_usize,
            any::<bool>(),
            0..(60 * 24 * 40_i64),
            (0..30_u32, 0..30_u32, 0..30_u32),
            any::<bool>(),
        )
            .prop_map(|(net, dev, cookie, minutes, (a, i, d), deny)| {
                let mut f = feat(net, dev, T0.plus_secs(minutes * 60));
                if !cookie {
                    f.device.cookie_id = None;
                }
                f.failures = FailureCounts {
                    account_recent: a,
                    ip_recent: i,
                    ip_distinct_accounts: d,
                };
                f.deny_listed = deny;
                f
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// An extra unusual signal never lowers the score (or the level).
        #[test]
        fn an_extra_unusual_signal_never_lowers_the_score(
            history in prop::collection::vec(arb_features(), 0..40),
            population in prop::collection::vec(arb_features(), 0..60),
            attacks in prop::collection::vec(arb_features(), 0..3),
            mut f in arb_features(),
            soon in prop::option::of(0..600_i64),
            more in (0..50_u32, 0..50_u32, 0..50_u32),
        ) {
            let mut p = UserProfile::default();
            history.iter().for_each(|h| p.learn(h));
            let mut g = GlobalStats::default();
            population.iter().for_each(|h| g.learn(h));
            attacks.iter().for_each(|h| g.mark_attack(h));
            if let (Some(m), Some(t)) = (soon, p.last_verified_at) {
                f.at = t.plus_secs(m * 60); // close in time, so travel can fire
            }
            let cfg = RiskConfig::default();
            let base = assess(&f, &p, &g, &cfg);
            prop_assert!(base.score <= 100);
            let sum: f64 = base.contributions.iter().map(|c| c.llr).sum();
            prop_assert!((sum - base.raw).abs() < 1e-6);

            let mut variants = Vec::new();
            let mut v = f.clone();
            v.deny_listed = true;
            variants.push(("deny_listed", v));
            let mut v = f.clone();
            v.failures.account_recent += more.0;
            v.failures.ip_recent += more.1;
            v.failures.ip_distinct_accounts += more.2;
            variants.push(("failures", v));
            let mut v = f.clone();
            v.geo.country = Some("ZZ".to_owned()); // never in any pool
            variants.push(("never-seen country", v));
            if let Some(l) = p.last_location {
                let mut v = f.clone();
                v.geo.latitude = Some(-l.latitude);
                v.geo.longitude = Some(if l.longitude > 0.0 { l.longitude - 180.0 } else { l.longitude + 180.0 });
                variants.push(("antipode (impossible travel)", v));
            }
            for (what, v) in variants {
                let a = assess(&v, &p, &g, &cfg);
                prop_assert!(a.score <= 100);
                prop_assert!(a.score >= base.score && a.level >= base.level,
                    "{what}: {} -> {} ({:+.3} -> {:+.3})", base.score, a.score, base.raw, a.raw);
            }
        }
    }
}
