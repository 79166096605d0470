//! The risk engine: pure functions from what was observed about one sign-in
//! (`SignInFeatures`), the user's verified history (`UserProfile`) and the population
//! (`GlobalStats`) to an explainable `Assessment`, and from an assessment and a `Policy` to a
//! `Decision`. No HTTP, no database, no wall clock: time arrives in `SignInFeatures::at`, state
//! arrives and leaves as serde-serialisable structs that the caller loads and stores (the
//! server in the sign-in transaction, `vigil risk replay` in memory).
//!
//! ```text
//!  request ──► geo::GeoDb::lookup, device::observe, DenyList::contains, failure counts
//!                 │
//!                 ▼
//!          SignInFeatures ──► assess(&f, &profile, &global, &cfg) ──► Assessment
//!                                                                     │
//!                                   decide(&a, &policy, factors, min) ▼
//!                                                        Allow | StepUp | Block
//!  verified sign-in ──► profile.learn(&f)      every sign-in ──► global.learn(&f)
//!  admin "attack"   ──► global.mark_attack(&f)  admin "legitimate" ──► profile.learn(&f)
//! ```

pub mod baseline;
pub mod config;
pub mod denylist;
pub mod device;
pub mod explain;
pub mod export;
pub mod fit;
pub mod gate;
pub mod geo;
pub mod model;
pub mod policy;
pub mod replay;
pub mod signals;
pub mod state;
pub mod synth;
pub mod travel;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

pub use config::{model_version, RiskConfig, MODEL_CODE_VERSION};
pub use denylist::{DenyList, DenyListError};
pub use device::{DeviceHints, DeviceType};
pub use explain::{explain, user_message};
pub use geo::{GeoDb, GeoError};
pub use model::{assess, Assessment, Contribution, Level};
pub use policy::{decide, Action, AvailableFactors, BlockReason, Decision, Policy};
pub use signals::Signal;
pub use state::{AttackerReputation, GlobalStats, UserProfile};
pub use travel::{haversine_km, impossible_travel, TravelConfig, TravelEvidence};

/// Everything observed about one sign-in attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignInFeatures {
    /// When it happened (the request's clock reading).
    pub at: Timestamp,
    /// The client address (through the trusted-proxy extractor), if known.
    pub ip: Option<IpAddr>,
    pub geo: Geo,
    pub device: Device,
    pub ua: UaInfo,
    /// The address is on the deny list (`anonymous_ip`).
    pub deny_listed: bool,
    pub failures: FailureCounts,
}

impl SignInFeatures {
    /// An attempt with nothing known but its time.
    pub fn at(at: Timestamp) -> Self {
        SignInFeatures {
            at,
            ip: None,
            geo: Geo::default(),
            device: Device::default(),
            ua: UaInfo::default(),
            deny_listed: false,
            failures: FailureCounts::default(),
        }
    }
}

/// What GeoIP says about the address. Every field may be missing ("no location").
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Geo {
    /// ISO 3166-1 alpha-2, e.g. "DE".
    pub country: Option<String>,
    /// English city name.
    pub city: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub accuracy_radius_km: Option<u16>,
    /// Autonomous system number and organisation (needs an ASN database).
    pub asn: Option<u32>,
    pub asn_org: Option<String>,
}

/// The device: the first-party device cookie and the fingerprint from `device::observe`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Device {
    /// The raw device-cookie value; profiles store only a hash of it.
    pub cookie_id: Option<String>,
    pub fingerprint: Option<String>,
}

/// The parsed User-Agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UaInfo {
    pub browser_family: String,
    pub browser_major: Option<String>,
    pub os_family: String,
    pub device_type: DeviceType,
}

impl Default for UaInfo {
    fn default() -> Self {
        UaInfo {
            browser_family: "Other".to_owned(),
            browser_major: None,
            os_family: "Other".to_owned(),
            device_type: DeviceType::Other,
        }
    }
}

/// Failed password attempts in a sliding window the caller chose (e.g. the last hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailureCounts {
    /// Failures for this account, from anywhere (guessing).
    pub account_recent: u32,
    /// Failures from this IP, for any account.
    pub ip_recent: u32,
    /// Distinct accounts that failed from this IP (password spraying).
    pub ip_distinct_accounts: u32,
}
