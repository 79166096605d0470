//! The risk engine inside the sign-in: collect the signals of a request, score them against the
//! user's profile and the population, decide, and — only for verified sign-ins — learn.
//!
//! ```text
//!  request ─► observe (GeoIP, UA + hints + device cookie, deny list, failure counts)
//!          ─► evaluate: assess(features, profile, global) ─► decide(policy, enrolled factors)
//!  verified sign-in ─► profile.learn (same transaction as the sign-in row) + global.learn
//!  refused / blocked ─► global.learn only: an attacker holding a password trains nothing
//! ```
//!
//! The population statistics (`global`) are one row every sign-in would otherwise read, parse
//! and rewrite — a hotspot that serialises sign-ins. Each node keeps them in memory
//! ([`GlobalCache`]) and merges what it learned into the row at most every [`GLOBAL_SYNC`], with
//! a compare-and-set so two nodes never lose each other's counts.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{FlowError, RequestContext, Services, StartError};
use crate::clock::Timestamp;
use crate::config::Settings;
use crate::oidc::RiskClaim;
use crate::risk::{
    self, assess, decide, Assessment, AvailableFactors, Decision, DenyList, FailureCounts, GeoDb,
    GlobalStats, Level, Policy, RiskConfig, SignInFeatures, UserProfile,
};
use crate::store::{self, factors, Db, DbConn, StoreResult};

const GLOBAL: &str = "global";

/// How stale a node's population statistics may get, and how long its own learning waits to be
/// merged into the shared row.
pub const GLOBAL_SYNC: Duration = Duration::from_secs(2);

/// This node's copy of the population statistics, plus what it learned since its last merge.
#[derive(Debug, Default)]
pub struct GlobalCache {
    current: RwLock<(Arc<GlobalStats>, Option<Instant>)>,
    pending: Mutex<Vec<SignInFeatures>>,
    merging: tokio::sync::Mutex<()>,
}

fn parse_global(json: Option<&str>) -> GlobalStats {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

impl GlobalCache {
    /// Count a sign-in attempt; merged into the shared row with the next sync.
    pub fn learn(&self, f: &SignInFeatures) {
        if let Ok(mut p) = self.pending.lock() {
            p.push(f.clone());
        }
    }

    /// The statistics to score with: this node's copy, merged and re-read first when it is
    /// older than [`GLOBAL_SYNC`] (one request merges while the others wait).
    pub async fn snapshot(&self, db: &Db, now: Timestamp) -> StoreResult<Arc<GlobalStats>> {
        if let Some(g) = self.fresh() {
            return Ok(g);
        }
        let _merging = self.merging.lock().await;
        if let Some(g) = self.fresh() {
            return Ok(g);
        }
        self.merge(db, now).await
    }

    fn fresh(&self) -> Option<Arc<GlobalStats>> {
        let c = self.current.read().ok()?;
        c.1.is_some_and(|t| t.elapsed() < GLOBAL_SYNC)
            .then(|| c.0.clone())
    }

    /// Merge what this node learned into the shared row and take the result as the new copy.
    /// On failure the learning is kept for the next attempt.
    pub async fn merge(&self, db: &Db, now: Timestamp) -> StoreResult<Arc<GlobalStats>> {
        let batch = self
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        let started = Instant::now();
        let b2 = batch.clone();
        let written = db
            .run(move |c| {
                store::risk::update_state(c, GLOBAL, now.micros(), &mut |cur| {
                    let mut g = parse_global(cur);
                    for f in &b2 {
                        g.learn(f);
                    }
                    serde_json::to_string(&g).unwrap_or_default()
                })
            })
            .await;
        match written {
            Ok(json) => {
                let g = Arc::new(parse_global(Some(&json)));
                if let Ok(mut c) = self.current.write() {
                    *c = (g.clone(), Some(started));
                }
                Ok(g)
            }
            Err(e) => {
                if let Ok(mut p) = self.pending.lock() {
                    p.extend(batch);
                }
                Err(e)
            }
        }
    }

    /// Forget the copy (an admin's verdict changed the row): the next snapshot re-reads it.
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.current.write() {
            c.1 = None;
        }
    }
}

/// The engine's configuration and the data it reads on every sign-in.
pub struct RiskEngine {
    geo: Option<GeoDb>,
    geoip_build: Option<i64>,
    deny: RwLock<Arc<DenyList>>,
    deny_path: Option<PathBuf>,
    pub cfg: RiskConfig,
    pub policy: Policy,
    /// A report-only candidate: evaluated and logged beside the enforced decision.
    pub candidate: Option<Policy>,
    pub model: String,
    /// The population statistics as this node sees them.
    pub global: GlobalCache,
}

impl std::fmt::Debug for RiskEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskEngine")
            .field("model", &self.model)
            .field("geoip_build", &self.geoip_build)
            .finish()
    }
}

impl RiskEngine {
    pub fn load(settings: &Settings) -> Result<Self, StartError> {
        let geo = match &settings.geoip_city {
            Some(city) => Some(
                GeoDb::open(city, settings.geoip_asn.as_deref())
                    .map_err(|e| StartError::Other(format!("GeoIP: {e}")))?,
            ),
            None => None,
        };
        let geoip_build = geo
            .as_ref()
            .map(|g| i64::try_from(g.city_build_epoch()).unwrap_or(0));
        let deny = match &settings.ip_denylist {
            Some(p) => DenyList::from_file(p)
                .map_err(|e| StartError::Other(format!("VIGIL_IP_DENYLIST: {e}")))?,
            None => DenyList::default(),
        };
        let mut cfg = RiskConfig::default();
        cfg.thresholds.medium = settings.risk_threshold_medium;
        cfg.thresholds.high = settings.risk_threshold_high;
        cfg.rules.travel.max_speed_kmh = f64::from(settings.risk_travel_speed_kmh);
        Ok(RiskEngine {
            geo,
            geoip_build,
            deny: RwLock::new(Arc::new(deny)),
            deny_path: settings.ip_denylist.clone(),
            model: risk::model_version(&cfg),
            cfg,
            policy: settings.risk_policy,
            candidate: settings.risk_candidate_policy,
            global: GlobalCache::default(),
        })
    }

    /// Re-read the deny list file (e.g. on SIGHUP or by an admin); returns its size.
    pub fn reload_denylist(&self) -> Result<usize, String> {
        let Some(p) = &self.deny_path else {
            return Ok(0);
        };
        let list = DenyList::from_file(p).map_err(|e| e.to_string())?;
        let n = list.len();
        if let Ok(mut d) = self.deny.write() {
            *d = Arc::new(list);
        }
        Ok(n)
    }

    /// The deny list's file (if configured) and how many ranges it holds now.
    pub fn denylist_status(&self) -> (Option<PathBuf>, usize) {
        let n = self.deny.read().map(|d| d.len()).unwrap_or(0);
        (self.deny_path.clone(), n)
    }

    /// Whether `ip` is on the deny list (sign-ins from it are blocked; registrations held).
    pub fn deny_listed(&self, ip: IpAddr) -> bool {
        self.deny.read().map(|d| d.contains(ip)).unwrap_or(false)
    }

    pub fn geoip_build(&self) -> Option<i64> {
        self.geoip_build
    }

    /// "City, CC" for an address, for people reading their own sign-ins (coarse on purpose).
    pub fn place(&self, ip: &str) -> Option<String> {
        let geo = self.geo.as_ref()?.lookup(ip.parse().ok()?).ok()?;
        match (geo.city, geo.country) {
            (Some(city), Some(cc)) => Some(format!("{city}, {cc}")),
            (None, Some(cc)) => Some(cc),
            _ => None,
        }
    }
}

/// One evaluated sign-in: what was seen, what the model said, what policy decided.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub features: SignInFeatures,
    pub assessment: Assessment,
    pub decision: Decision,
    pub candidate: Option<Decision>,
    /// What the shadow model would have said, if one is set.
    #[serde(default)]
    pub shadow: Option<ShadowVerdict>,
    pub geoip_build: Option<i64>,
    /// The second factors the user could be asked for when this was decided.
    #[serde(default)]
    pub available: AvailableFactors,
}

/// The shadow model's opinion of a sign-in (`signins.shadow`, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowVerdict {
    /// `model_version` of the shadow configuration as scored (thresholds applied).
    pub model: String,
    pub score: u8,
    pub level: String,
    /// `allow`, `step_up` or `block`.
    pub decision: String,
}

impl Verdict {
    /// The `risk` claim (contract). `decision` is what happened to this sign-in.
    pub fn claim(&self) -> RiskClaim {
        RiskClaim {
            score: self.assessment.score,
            level: level_name(self.assessment.level).into(),
            decision: self.decision.as_str().into(),
            reasons: self
                .assessment
                .reasons
                .iter()
                .map(|r| r.to_string())
                .collect(),
            model: self.assessment.model.clone(),
        }
    }
}

pub fn level_name(l: Level) -> &'static str {
    match l {
        Level::Low => "low",
        Level::Medium => "medium",
        Level::High => "high",
    }
}

/// Collect the signals of this request. `own_attempt` is the throttle reservation this attempt
/// holds, if any: it is not one of the failures the signals count.
pub async fn observe(
    svc: &Services,
    now: Timestamp,
    ctx: &RequestContext,
    account: &str,
    user_id: Option<&str>,
    own_attempt: Option<&str>,
) -> Result<SignInFeatures, FlowError> {
    let mut f = request_signals(svc, now, ctx);
    let failures = Failures::of(svc, now, ctx, account, user_id, own_attempt);
    f.failures = svc.db.run(move |c| failures.count(c)).await?;
    Ok(f)
}

/// The signals the request itself carries: place, browser, device, deny-list.
fn request_signals(svc: &Services, now: Timestamp, ctx: &RequestContext) -> SignInFeatures {
    let engine = &svc.risk;
    let mut f = SignInFeatures::at(now);
    f.ip = Some(ctx.ip);
    if let Some(geo) = &engine.geo {
        f.geo = geo.lookup(ctx.ip).unwrap_or_default();
    }
    let (ua, device) = risk::device::observe(
        ctx.user_agent.as_deref().unwrap_or(""),
        ctx.accept_language.as_deref(),
        ctx.hints.as_deref(),
        ctx.device_id.as_deref(),
    );
    f.ua = ua;
    f.device = device;
    f.deny_listed = engine.deny_listed(ctx.ip);
    f
}

/// The recent failures a sign-in is judged beside, as a query to run on a connection (alone
/// or with the other reads of an evaluation).
struct Failures {
    account: String,
    ip: String,
    since: i64,
    user_id: Option<String>,
    ctx: RequestContext,
    own: Option<String>,
}

impl Failures {
    fn of(
        svc: &Services,
        now: Timestamp,
        ctx: &RequestContext,
        account: &str,
        user_id: Option<&str>,
        own_attempt: Option<&str>,
    ) -> Self {
        Failures {
            account: account.to_owned(),
            ip: crate::net::ip_key(ctx.ip),
            since: now.minus_secs(svc.settings.throttle.window_secs).micros(),
            user_id: user_id.map(str::to_owned),
            ctx: ctx.clone(),
            own: own_attempt.map(str::to_owned),
        }
    }

    fn count(&self, c: &mut DbConn) -> StoreResult<FailureCounts> {
        let own = self.own.as_deref();
        let (a, i) = store::throttle::counts(c, &self.account, &self.ip, self.since, own)?;
        // The owner's own browser is not judged by what strangers behind the same address
        // (a NAT, a campus) get wrong: without this, one spraying run there raises every
        // sign-in to medium risk and blocks users who have no second factor.
        let (i, d) = if super::throttle::is_known_device(c, self.user_id.as_deref(), &self.ctx)? {
            (0, 0)
        } else {
            (
                i,
                store::throttle::distinct_accounts(c, &self.ip, self.since, own)?,
            )
        };
        Ok(FailureCounts {
            account_recent: u32::try_from(a).unwrap_or(u32::MAX),
            ip_recent: u32::try_from(i).unwrap_or(u32::MAX),
            ip_distinct_accounts: u32::try_from(d).unwrap_or(u32::MAX),
        })
    }
}

fn load_profile(conn: &mut DbConn, user_id: &str) -> StoreResult<UserProfile> {
    Ok(store::risk::profile(conn, user_id)?
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default())
}

/// Score and decide a sign-in by `user_id`, under the policy in force (the admins' saved
/// policy, else the configured one) and, for a sign-in into `client_id`, that client's own
/// thresholds if it has them. `own_attempt`: see [`observe`].
pub async fn evaluate(
    svc: &Services,
    now: Timestamp,
    user_id: &str,
    ctx: &RequestContext,
    account: &str,
    client_id: Option<&str>,
    own_attempt: Option<&str>,
) -> Result<Verdict, FlowError> {
    let mut features = request_signals(svc, now, ctx);
    let failures = Failures::of(svc, now, ctx, account, Some(user_id), own_attempt);
    let (uid, cid) = (user_id.to_owned(), client_id.map(str::to_owned));
    let global = svc.risk.global.snapshot(&svc.db, now).await?;
    // Everything an evaluation reads, in one visit to the database.
    let (counts, profile, enrolled, saved, models, client_thresholds) = svc
        .db
        .run(move |c| {
            let counts = failures.count(c)?;
            let p = load_profile(c, &uid)?;
            let client = match cid {
                Some(id) => store::clients::find(c, &id)?.and_then(|cl| cl.risk_thresholds),
                None => None,
            };
            Ok((
                counts,
                p,
                factors::enrolled(c, &uid)?,
                super::policy::stored(c)?,
                super::models::stored(c)?,
                client,
            ))
        })
        .await?;
    features.failures = counts;
    let engine = &svc.risk;
    let policy = saved.unwrap_or_else(|| super::policy::configured(engine));
    let cfg = policy.config(&models.live_config(engine), client_thresholds);
    let assessment = assess(&features, &profile, &global, &cfg);
    let available = AvailableFactors {
        webauthn: enrolled.webauthn && svc.passkeys.is_some(),
        totp: enrolled.totp,
        recovery: enrolled.recovery,
    };
    let decision = decide(&assessment, &policy.actions, available, None);
    let candidate = policy
        .candidate
        .map(|c| super::policy::decide_with(&assessment, c.medium, c.high, &c.actions, available));
    // The shadow model sees exactly what the live one saw, under the same policy; what it says
    // is logged and never acted on.
    let shadow = models.shadow.map(|m| {
        let a = assess(
            &features,
            &profile,
            &global,
            &policy.config(&m.config, client_thresholds),
        );
        ShadowVerdict {
            decision: decide(&a, &policy.actions, available, None)
                .as_str()
                .to_owned(),
            model: a.model,
            score: a.score,
            level: level_name(a.level).to_owned(),
        }
    });
    Ok(Verdict {
        features,
        assessment,
        decision,
        candidate,
        shadow,
        geoip_build: engine.geoip_build,
        available,
    })
}

/// Learn from a sign-in inside its transaction: the user's profile only when `verified`; the
/// population statistics always (merged later, see [`GlobalCache`]).
pub fn learn(
    conn: &mut DbConn,
    engine: &RiskEngine,
    user_id: Option<&str>,
    v: &Verdict,
    verified: bool,
    now: Timestamp,
) -> StoreResult<()> {
    engine.global.learn(&v.features);
    if let (Some(uid), true) = (user_id, verified) {
        let mut profile = load_profile(conn, uid)?;
        profile.learn(&v.features);
        store::risk::put_profile(
            conn,
            uid,
            &serde_json::to_string(&profile).unwrap_or_default(),
            now.micros(),
        )?;
    }
    Ok(())
}

/// An admin's verdict on a logged sign-in (the review queue's hook): "legitimate" teaches the
/// user's profile; "attack" counts its network and device against (globally).
pub fn apply_verdict(
    conn: &mut DbConn,
    user_id: &str,
    features: &SignInFeatures,
    legitimate: bool,
    now: Timestamp,
) -> StoreResult<()> {
    if legitimate {
        let mut profile = load_profile(conn, user_id)?;
        profile.learn(features);
        if features.deny_listed {
            profile.vouch(features);
        }
        store::risk::put_profile(
            conn,
            user_id,
            &serde_json::to_string(&profile).unwrap_or_default(),
            now.micros(),
        )
    } else {
        // Ending the account's sessions and tokens is containment's job (the caller's).
        store::risk::update_state(conn, GLOBAL, now.micros(), &mut |cur| {
            let mut g = parse_global(cur);
            g.mark_attack(features);
            serde_json::to_string(&g).unwrap_or_default()
        })
        .map(|_| ())
    }
}

/// Re-read the deny list at an admin's request; audited with the new size.
pub async fn reload_denylist_audited(
    svc: &Services,
    actor: &super::accounts::Actor,
    now: Timestamp,
) -> Result<usize, FlowError> {
    let n = svc
        .risk
        .reload_denylist()
        .map_err(|e| FlowError::Invalid(format!("The deny list could not be read: {e}")))?;
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    svc.db
        .run(move |c| {
            auditor.record(
                c,
                now,
                actor
                    .event("denylist.reloaded")
                    .details(serde_json::json!({ "entries": n })),
            )
        })
        .await?;
    Ok(n)
}
