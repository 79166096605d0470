//! The comparison model for `vigil risk replay`: a plain Freeman et al. (NDSS 2016) IP + UA
//! model with hierarchical smoothing, nothing else (no device cookie, no hour, no rules). Two
//! chains, coarse to fine: network `country → ASN → IP /24 (or /48)` and user agent
//! `OS → browser → full UA string` (the OS and browser from `device::parse_user_agent`, cached).
//! For each level, with `G` global counts over every sign-in and `c` the user's counts over
//! legitimate successful sign-ins (paths as keys, so a child is counted under its parent):
//!
//! ```text
//!   p_A(x | parent) = (G(x) + 1) / (G(parent) + V(parent))        V = distinct children + 1
//!   p_U(x | parent) = (c(x) + α·p_A(x | parent)) / (c(parent) + α)
//!   score = Σ_levels ln p_A(x | parent) − ln p_U(x | parent)
//! ```
//!
//! i.e. the log of Freeman's `p(x | attack) / p(x | user)` for the finest value of each chain,
//! backing off to the population where the user has no data. Honest, not a strawman: it is the
//! published model with the smoothing Wiefling et al. re-ran on the real dataset. Its global
//! counts grow with the distinct networks and user agents seen (vigil's `GlobalStats` are
//! capped instead); user counts are capped at 64 paths.

use std::collections::HashMap;
use std::net::IpAddr;

use super::device::parse_user_agent;
use super::replay::Row;
use super::state::ip_prefix;

/// The name in reports.
pub const MODEL: &str = "freeman-ip-ua";
/// Smoothing weight of the population back-off.
const ALPHA: f64 = 1.0;
/// Distinct paths a user keeps (least used evicted).
const USER_VALUES: usize = 64;
/// Parsed user agents cached (cleared when full).
const UA_CACHE: usize = 50_000;

/// One user's counts per path (bounded).
#[derive(Debug, Default, Clone)]
pub struct UserCounts {
    n: u64,
    counts: HashMap<String, u64>,
}

/// Global counts per path and the number of distinct children per parent.
#[derive(Debug, Default)]
pub struct Baseline {
    n: u64,
    counts: HashMap<String, u64>,
    children: HashMap<String, u64>,
    ua: HashMap<String, (String, String)>,
}

fn paths(os_browser: &(String, String), r: &Row) -> [String; 6] {
    let c = r.country.as_deref().unwrap_or("-");
    let asn = r.asn.map_or("-".to_owned(), |a| a.to_string());
    let ip = r.ip.map_or("-".to_owned(), |ip: IpAddr| ip_prefix(ip));
    let n1 = format!("n|{c}");
    let n2 = format!("{n1}|{asn}");
    let n3 = format!("{n2}|{ip}");
    let u1 = format!("u|{}", os_browser.0);
    let u2 = format!("{u1}|{}", os_browser.1);
    let u3 = format!("{u2}|{}", r.user_agent);
    [n1, n2, n3, u1, u2, u3]
}

fn parent(i: usize, p: &[String; 6]) -> Option<&str> {
    (i % 3 != 0).then(|| p[i - 1].as_str())
}

impl Baseline {
    fn ua(&mut self, ua: &str) -> (String, String) {
        if self.ua.len() >= UA_CACHE {
            self.ua.clear();
        }
        self.ua
            .entry(ua.to_owned())
            .or_insert_with(|| {
                let p = parse_user_agent(ua);
                let browser = match p.browser_major {
                    Some(m) => format!("{} {m}", p.browser_family),
                    None => p.browser_family,
                };
                (p.os_family, browser)
            })
            .clone()
    }

    fn g(&self, key: Option<&str>) -> u64 {
        key.map_or(self.n, |k| self.counts.get(k).copied().unwrap_or(0))
    }

    /// Count a sign-in (any outcome) in the population.
    pub fn learn_global(&mut self, r: &Row) {
        let ob = self.ua(&r.user_agent);
        let p = paths(&ob, r);
        self.n += 1;
        for (i, k) in p.iter().enumerate() {
            let e = self.counts.entry(k.clone()).or_insert(0);
            *e += 1;
            if *e == 1 {
                let parent = parent(i, &p).unwrap_or(if i < 3 { "n" } else { "u" });
                *self.children.entry(parent.to_owned()).or_insert(0) += 1;
            }
        }
    }

    /// Count a legitimate sign-in in the user's counts.
    pub fn learn_user(&mut self, u: &mut UserCounts, r: &Row) {
        let ob = self.ua(&r.user_agent);
        u.n += 1;
        for k in paths(&ob, r) {
            if !u.counts.contains_key(&k) && u.counts.len() >= USER_VALUES {
                if let Some(min) = u
                    .counts
                    .iter()
                    .min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)))
                    .map(|(k, _)| k.clone())
                {
                    u.counts.remove(&min);
                }
            }
            *u.counts.entry(k).or_insert(0) += 1;
        }
    }

    /// `ln p(x | attack) − ln p(x | user)` over both chains (higher = riskier).
    pub fn score(&mut self, u: &UserCounts, r: &Row) -> f64 {
        let ob = self.ua(&r.user_agent);
        let p = paths(&ob, r);
        let mut s = 0.0;
        for (i, k) in p.iter().enumerate() {
            let par = parent(i, &p);
            let vkey = par.unwrap_or(if i < 3 { "n" } else { "u" });
            let v = self.children.get(vkey).copied().unwrap_or(0) as f64 + 1.0;
            let pa = (self.g(Some(k)) as f64 + 1.0) / (self.g(par) as f64 + v);
            let cu = u.counts.get(k).copied().unwrap_or(0) as f64;
            // An evicted parent must not make p_U exceed 1.
            let cp = (par.map_or(u.n, |q| u.counts.get(q).copied().unwrap_or(0)) as f64).max(cu);
            let pu = (cu + ALPHA * pa) / (cp + ALPHA);
            s += pa.ln() - pu.ln();
        }
        s
    }
}
