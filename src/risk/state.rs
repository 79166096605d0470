//! The model's state: `UserProfile` (one user's verified history), `GlobalStats` (everyone's
//! sign-ins: the attacker's distribution) and `AttackerReputation` (admin verdicts). All bounded
//! and serde-serialisable: the caller loads them as JSON, `learn`s, and stores them back in the
//! sign-in's transaction. Owns counting and eviction; it does not score.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SignInFeatures;
use crate::clock::Timestamp;

/// Distinct values a profile keeps per feature (least used, then oldest, is evicted).
pub const USER_VALUES_PER_FEATURE: usize = 32;
/// When a profile's (decayed) count reaches this, all its counts are halved (rounding up).
pub const USER_HISTORY_CAP: u32 = 256;
/// Distinct values the global statistics keep per feature.
pub const GLOBAL_VALUES_PER_FEATURE: usize = 256;
/// When the global count reaches this, all global counts are halved.
pub const GLOBAL_HISTORY_CAP: u32 = 1 << 24;
/// An attack-marked value counts at most this often.
pub const REPUTATION_CAP: u32 = 20;
/// An attack mark loses half its weight every this many days: a network judged hostile once is
/// not held against everyone behind it forever (addresses change hands).
pub const REPUTATION_HALF_LIFE_DAYS: f64 = 30.0;

pub(crate) const FEATURES: [&str; 8] = [
    "country",
    "asn",
    "city",
    "ip_prefix",
    "device_type",
    "os",
    "browser",
    "fingerprint",
];

pub(crate) const NETWORK: std::ops::Range<usize> = 0..4;
pub(crate) const DEVICE: std::ops::Range<usize> = 4..8;
pub(crate) const FINGERPRINT: usize = 7;
pub(crate) const MISSING: &str = "-";

/// Counts per value with the time each was last seen (unix seconds), bounded in size.
/// Serialises as `{"value": [count, last_seen]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CountMap(BTreeMap<String, (u32, i64)>);

impl CountMap {
    /// The count of `key` (0 if absent).
    pub fn count(&self, key: &str) -> u32 {
        self.0.get(key).map_or(0, |e| e.0)
    }

    /// When `key` was last counted (unix seconds), if it is held.
    pub fn last_seen(&self, key: &str) -> Option<i64> {
        self.0.get(key).map(|e| e.1)
    }

    /// Number of distinct values held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Add one sighting, saturating at `max_count`; when full, evict the least used value
    /// (ties: the oldest). O(cap) only when evicting, and `cap` is a small constant.
    fn add(&mut self, key: &str, now: i64, cap: usize, max_count: u32) {
        if let Some(e) = self.0.get_mut(key) {
            e.0 = e.0.saturating_add(1).min(max_count);
            e.1 = e.1.max(now);
            return;
        }
        if self.0.len() >= cap {
            let victim = self
                .0
                .iter()
                .min_by_key(|(_, &(n, t))| (n, t))
                .map(|(k, _)| k.clone());
            if let Some(v) = victim {
                self.0.remove(&v);
            }
        }
        self.0.insert(key.to_owned(), (1, now));
    }

    /// Halve every count, rounding up, so nothing is forgotten by ageing alone and a child
    /// never exceeds its parent.
    fn halve(&mut self) {
        for e in self.0.values_mut() {
            e.0 = e.0.div_ceil(2);
        }
    }
}

/// The eight hierarchy levels, keyed by path (`DE`, `DE|AS3320`, `DE|AS3320|Berlin`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    pub country: CountMap,
    pub asn: CountMap,
    pub city: CountMap,
    pub ip_prefix: CountMap,
    pub device_type: CountMap,
    pub os: CountMap,
    pub browser: CountMap,
    pub fingerprint: CountMap,
}

impl Counts {
    pub(crate) fn level(&self, i: usize) -> &CountMap {
        [
            &self.country,
            &self.asn,
            &self.city,
            &self.ip_prefix,
            &self.device_type,
            &self.os,
            &self.browser,
            &self.fingerprint,
        ][i]
    }

    fn levels_mut(&mut self) -> [&mut CountMap; 8] {
        [
            &mut self.country,
            &mut self.asn,
            &mut self.city,
            &mut self.ip_prefix,
            &mut self.device_type,
            &mut self.os,
            &mut self.browser,
            &mut self.fingerprint,
        ]
    }

    fn add(&mut self, keys: &Keys, now: i64, cap: usize) {
        for (map, key) in self.levels_mut().into_iter().zip(&keys.path) {
            map.add(key, now, cap, u32::MAX);
        }
    }

    fn halve(&mut self) {
        self.levels_mut().into_iter().for_each(CountMap::halve);
    }
}

/// Where and when the last located verified sign-in happened (for impossible travel).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LastLocation {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_radius_km: Option<u16>,
    pub at: Timestamp,
}

/// One user's verified history. Bounded (≤ 32 values per level, counts halved at 256), so
/// reading and updating it is O(1) whatever the number of sign-ins. Store it as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserProfile {
    /// Verified sign-ins, decayed (halved when it reaches `USER_HISTORY_CAP`).
    pub n: u32,
    /// Verified sign-ins ever.
    pub lifetime: u64,
    pub counts: Counts,
    /// Verified sign-ins per UTC hour of day (decayed with `n`).
    pub hours: [u32; 24],
    /// Device cookies (first 16 hex digits of their SHA-256) that completed a verified sign-in.
    pub cookies: CountMap,
    pub last_location: Option<LastLocation>,
    pub last_verified_at: Option<Timestamp>,
    /// Deny-listed addresses an admin judged legitimate for this user, each with the device
    /// it was judged for (`<cookie hash>@<ip>`, newest last, at most [`VOUCHED_CAP`]).
    pub vouched: Vec<String>,
}

/// Deny-listed address and device pairs remembered per user from "legitimate" verdicts.
pub const VOUCHED_CAP: usize = 8;

impl UserProfile {
    /// Learn from a **verified** sign-in (password and any step-up passed, or an admin's
    /// "legitimate" verdict). Never call it for an unverified attempt: an attacker holding only
    /// the password must not be able to train the profile.
    pub fn learn(&mut self, f: &SignInFeatures) {
        let now = f.at.secs();
        self.n = self.n.saturating_add(1);
        self.lifetime = self.lifetime.saturating_add(1);
        self.counts.add(&keys(f), now, USER_VALUES_PER_FEATURE);
        self.hours[hour_of(f.at)] += 1;
        if let Some(c) = f.device.cookie_id.as_deref() {
            self.cookies
                .add(&cookie_hash(c), now, USER_VALUES_PER_FEATURE, u32::MAX);
        }
        if let (Some(lat), Some(lon)) = (f.geo.latitude, f.geo.longitude) {
            if self.last_location.is_none_or(|l| l.at <= f.at) {
                self.last_location = Some(LastLocation {
                    latitude: lat,
                    longitude: lon,
                    accuracy_radius_km: f.geo.accuracy_radius_km,
                    at: f.at,
                });
            }
        }
        self.last_verified_at = self.last_verified_at.max(Some(f.at));
        if self.n >= USER_HISTORY_CAP {
            self.n = self.n.div_ceil(2);
            self.counts.halve();
            self.cookies.halve();
            self.hours.iter_mut().for_each(|h| *h = h.div_ceil(2));
        }
    }

    /// An admin judged this deny-listed sign-in legitimate: the same device from the same
    /// address is no longer held by the deny list for this user (the rest of the score still
    /// applies). A new device or another listed address stays blocked.
    pub fn vouch(&mut self, f: &SignInFeatures) {
        let Some(key) = vouch_key(f) else { return };
        self.vouched.retain(|k| *k != key);
        self.vouched.push(key);
        if self.vouched.len() > VOUCHED_CAP {
            self.vouched.remove(0);
        }
    }

    /// Whether an admin vouched for this sign-in's deny-listed address and device.
    pub fn is_vouched(&self, f: &SignInFeatures) -> bool {
        vouch_key(f).is_some_and(|k| self.vouched.contains(&k))
    }

    /// Is this device cookie known (verified before) for the user?
    pub fn knows_cookie(&self, cookie_id: &str) -> bool {
        self.cookies.count(&cookie_hash(cookie_id)) > 0
    }
}

fn vouch_key(f: &SignInFeatures) -> Option<String> {
    Some(format!(
        "{}@{}",
        cookie_hash(f.device.cookie_id.as_deref()?),
        f.ip?
    ))
}

/// Capped counts of network and device values that admins marked as attacks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttackerReputation {
    pub ip_prefix: CountMap,
    pub asn: CountMap,
    pub fingerprint: CountMap,
}

impl AttackerReputation {
    /// Add the sign-in's IP prefix, ASN and fingerprint (each capped at `REPUTATION_CAP`).
    pub fn mark_attack(&mut self, f: &SignInFeatures) {
        let now = f.at.secs();
        for (map, value) in [
            (&mut self.ip_prefix, f.ip.map(ip_prefix)),
            (&mut self.asn, f.geo.asn.map(|a| format!("AS{a}"))),
            (&mut self.fingerprint, f.device.fingerprint.clone()),
        ] {
            if let Some(v) = value {
                map.add(&v, now, GLOBAL_VALUES_PER_FEATURE, REPUTATION_CAP);
            }
        }
    }
}

/// Global frequencies over all sign-ins (the attacker's distribution) plus the attacker
/// reputation. Bounded like profiles (256 values per level); store it as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GlobalStats {
    /// Sign-ins counted (decayed at `GLOBAL_HISTORY_CAP`).
    pub n: u32,
    pub counts: Counts,
    pub reputation: AttackerReputation,
}

impl GlobalStats {
    /// Count a sign-in attempt that reached the risk engine (whatever its outcome).
    pub fn learn(&mut self, f: &SignInFeatures) {
        self.n = self.n.saturating_add(1);
        self.counts
            .add(&keys(f), f.at.secs(), GLOBAL_VALUES_PER_FEATURE);
        if self.n >= GLOBAL_HISTORY_CAP {
            self.n = self.n.div_ceil(2);
            self.counts.halve();
        }
    }

    /// An admin's "attack" verdict: the sign-in's network and device values gain reputation.
    pub fn mark_attack(&mut self, f: &SignInFeatures) {
        self.reputation.mark_attack(f);
    }
}

// ---------------------------------------------------------------------------------------------
// Features → keys

/// The /24 (IPv4) or /48 (IPv6) network of an address, as text.
pub fn ip_prefix(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(a) => {
            let [o1, o2, o3, _] = a.octets();
            format!("{o1}.{o2}.{o3}.0/24")
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            format!(
                "{}/48",
                std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0)
            )
        }
    }
}

pub(crate) fn cookie_hash(cookie: &str) -> String {
    hex::encode(&Sha256::digest(cookie.as_bytes())[..8])
}

pub(crate) fn hour_of(at: Timestamp) -> usize {
    (at.secs().rem_euclid(86_400) / 3_600) as usize
}

pub(crate) struct Keys {
    pub(crate) leaf: [String; 8],
    pub(crate) path: [String; 8],
}

pub(crate) fn keys(f: &SignInFeatures) -> Keys {
    let or_missing = |v: Option<String>| v.unwrap_or_else(|| MISSING.to_owned());
    let leaf = [
        or_missing(f.geo.country.clone()),
        or_missing(f.geo.asn.map(|a| format!("AS{a}"))),
        or_missing(f.geo.city.clone()),
        or_missing(f.ip.map(ip_prefix)),
        f.ua.device_type.as_str().to_owned(),
        f.ua.os_family.clone(),
        f.ua.browser_family.clone(),
        or_missing(f.device.fingerprint.clone()),
    ];
    let mut path: [String; 8] = Default::default();
    for i in 0..8 {
        path[i] = if i == NETWORK.start || i == DEVICE.start {
            leaf[i].clone()
        } else {
            format!("{}|{}", path[i - 1], leaf[i])
        };
    }
    Keys { leaf, path }
}
