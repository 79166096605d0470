//! The tamper-evident log: every security-relevant action and risk decision becomes one entry
//! whose hash covers its content and the previous entry's hash (SHA-256 over a canonical JSON
//! array). Changing, deleting or reordering any entry breaks the chain at that point.
//!
//! ```text
//!  entry n: [seq, at, actor, action, target, ip_digest, details, prev_hash = hash(n-1)] ─SHA-256─► hash(n)
//!  audit_head: (seq, hash) of the last entry  ─► catches a cut tail
//!  anchor SEQ:HASH kept outside the database  ─► catches a rewrite that recomputed the hashes
//! ```
//!
//! Raw client IPs may be dropped after a retention period, so the hash covers a keyed digest of
//! the IP (HMAC-SHA-256 with a server secret), never the IP itself: the chain stays verifiable
//! after the IP column is cleared, and the digest alone does not reveal the address. For the
//! same reason the sealed details of a risk decision never carry the address (see
//! [`risk_details`]).

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::store::audit::{self as rows, AuditRow};
use crate::store::{DbConn, StoreResult};

/// The hash that precedes the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One thing that happened, before it is sealed into the chain.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who did it: a user id, `cli`, or `system`.
    pub actor: Option<String>,
    /// Dotted verb, e.g. `login.succeeded`, `user.created`, `client.removed`.
    pub action: &'static str,
    /// What it was done to (a user id, a client id…).
    pub target: Option<String>,
    pub ip: Option<IpAddr>,
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(action: &'static str) -> Self {
        AuditEvent {
            actor: None,
            action,
            target: None,
            ip: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }
    pub fn actor(mut self, a: impl Into<String>) -> Self {
        self.actor = Some(a.into());
        self
    }
    pub fn target(mut self, t: impl Into<String>) -> Self {
        self.target = Some(t.into());
        self
    }
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }
    pub fn details(mut self, d: serde_json::Value) -> Self {
        self.details = d;
        self
    }
}

/// Seals events into the chain. Holds the key for IP digests (shared by all nodes via the DB).
#[derive(Clone)]
pub struct Auditor {
    ip_key: Vec<u8>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auditor")
    }
}

/// The outcome of walking the chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry checks out; `head` is the last entry's hash (`GENESIS` when empty), the
    /// value an operator records outside the database to anchor the chain.
    Ok {
        entries: u64,
        head: String,
    },
    Broken {
        seq: i64,
        reason: String,
    },
}

/// A `(seq, hash)` pair recorded outside the database (`vigil audit head`), checked by
/// `vigil audit verify --anchor SEQ:HASH`. A chain is only as trustworthy as its last anchor:
/// anyone who can write to the database can recompute every hash after the point they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

impl std::str::FromStr for Anchor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not SEQ:HASH (as printed by `vigil audit head`)");
        let (seq, hash) = s.split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.trim().parse().map_err(|_| bad())?;
        let hash = hash.trim().to_ascii_lowercase();
        if seq < 0 || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Anchor { seq, hash })
    }
}

impl Auditor {
    pub fn new(ip_key: Vec<u8>) -> Self {
        Auditor { ip_key }
    }

    fn ip_digest(&self, ip: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail; fall back to a plain hash anyway.
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.ip_key) {
            Ok(mut mac) => {
                mac.update(ip.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            Err(_) => hex::encode(Sha256::digest(ip.as_bytes())),
        }
    }

    /// Append `event` at `at`. Call inside the transaction of the change it records.
    pub fn record(&self, conn: &mut DbConn, at: Timestamp, event: AuditEvent) -> StoreResult<()> {
        let ip = event.ip.map(|i| i.to_string());
        let row = AuditRow {
            seq: 0,
            at: at.micros(),
            actor: event.actor,
            action: event.action.to_owned(),
            target: event.target,
            ip_digest: ip.as_deref().map(|i| self.ip_digest(i)),
            ip,
            details: event.details.to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        // Atomic on its own too (a savepoint inside the caller's transaction): the head and the
        // entry must never be seen apart, or a reader would take the gap for a cut tail.
        let started = std::time::Instant::now();
        crate::store::transaction(conn, |c| rows::append(c, row, |r| r.hash = entry_hash(r)))?;
        crate::telemetry::METRICS
            .audit_append
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Walk the whole chain, page by page, and report the first broken link.
    pub fn verify(&self, conn: &mut DbConn) -> StoreResult<Verdict> {
        self.verify_anchored(conn, &[])
    }

    /// [`Auditor::verify`], also checking that each anchor's entry still has the recorded hash
    /// (which catches a rewrite that recomputed the hashes after it, or cut the tail and the
    /// head together).
    pub fn verify_anchored(&self, conn: &mut DbConn, anchors: &[Anchor]) -> StoreResult<Verdict> {
        let mut expected_prev = GENESIS.to_owned();
        let mut expected_seq = 1i64;
        let mut count = 0u64;
        // The server may append while we walk (each statement sees the latest commit), so a
        // head ahead of the walk is only tampering if no further entries exist; re-walk then.
        let mut rewalks = 0;
        let last = loop {
            loop {
                let page = rows::page(conn, expected_seq - 1, 1000)?;
                if page.is_empty() {
                    break;
                }
                for row in page {
                    if let Some(broken) = self.check(&row, expected_seq, &expected_prev) {
                        return Ok(broken);
                    }
                    expected_prev = row.hash;
                    expected_seq += 1;
                    count += 1;
                }
            }
            let last = expected_seq - 1;
            let Some((head_seq, head_hash)) = rows::head(conn)? else {
                return Ok(Verdict::Broken {
                    seq: expected_seq,
                    reason: "the head row (audit_head) is missing".into(),
                });
            };
            if head_seq > last {
                rewalks += 1;
                if rewalks < 100 && !rows::page(conn, last, 1)?.is_empty() {
                    continue;
                }
                return Ok(Verdict::Broken {
                    seq: expected_seq,
                    reason: format!(
                        "the chain ends at entry {last} but the head says {head_seq} \
                         (entries were removed from the end)"
                    ),
                });
            }
            // The head only moves forward and moves with each append, so behind or different
            // from an entry the walk has seen means it was edited (or the tail was re-forged).
            if head_seq != last || head_hash != expected_prev {
                return Ok(Verdict::Broken {
                    seq: head_seq.clamp(1, last.max(1)),
                    reason: format!(
                        "the head (entry {head_seq}) does not match the last entry {last} \
                         (the head row or the end of the chain was changed)"
                    ),
                });
            }
            break last;
        };
        // Rows the walk cannot reach (a seq of 0 or below) were planted; rows after `last`
        // may be appends that landed since, and are left to the next verification.
        let stored = rows::count_upto(conn, last)?;
        if u64::try_from(stored).unwrap_or(u64::MAX) != count {
            return Ok(Verdict::Broken {
                seq: expected_seq,
                reason: format!(
                    "the table holds {stored} rows up to entry {last} but the chain links \
                     {count} (rows were added outside the chain)"
                ),
            });
        }
        for a in anchors {
            if a.seq == 0 {
                if a.hash != GENESIS {
                    return Ok(Verdict::Broken {
                        seq: 1,
                        reason: "anchor 0 must be the genesis hash".into(),
                    });
                }
                continue;
            }
            let found = if a.seq <= last {
                rows::at_seq(conn, a.seq)?
            } else {
                None
            };
            match found {
                None => {
                    return Ok(Verdict::Broken {
                        seq: a.seq,
                        reason: format!(
                            "anchored entry {} is gone: the chain now ends at {last} \
                             (it was cut and its head rewritten)",
                            a.seq
                        ),
                    })
                }
                Some(row) if row.hash != a.hash => {
                    return Ok(Verdict::Broken {
                        seq: a.seq,
                        reason: format!(
                            "entry {} no longer has the anchored hash (the chain was rewritten \
                             up to or before it)",
                            a.seq
                        ),
                    })
                }
                Some(_) => {}
            }
        }
        Ok(Verdict::Ok {
            entries: count,
            head: expected_prev,
        })
    }

    /// Clear raw IPs older than `days` days everywhere vigil keeps them, in one transaction,
    /// and audit the purge (only when it cleared something, so the hourly run adds no noise).
    /// The chain stays verifiable: the hash covers the digest, not the address.
    pub fn purge_ips(
        &self,
        conn: &mut DbConn,
        now: Timestamp,
        days: u32,
        actor: &str,
    ) -> StoreResult<crate::store::retention::Purged> {
        let cutoff = now.minus_secs(i64::from(days) * 86_400);
        crate::store::transaction(conn, |c| {
            let p = crate::store::retention::purge_ips(c, cutoff.micros(), now.micros())?;
            if p.total() > 0 {
                self.record(
                    c,
                    now,
                    AuditEvent::new("audit.ips_purged")
                        .actor(actor)
                        .details(serde_json::json!({
                            "retention_days": days,
                            "before": cutoff.micros(),
                            "audit_log": p.audit_log,
                            "signins": p.signins,
                            "signin_features": p.signin_features,
                            "login_failures": p.login_failures,
                            "sessions": p.sessions,
                            "mfa_flows": p.mfa_flows,
                        })),
                )?;
            }
            Ok(p)
        })
    }

    /// One entry against its expected position; `None` when it is intact.
    fn check(&self, row: &AuditRow, expected_seq: i64, expected_prev: &str) -> Option<Verdict> {
        let broken = |seq: i64, reason: String| Some(Verdict::Broken { seq, reason });
        if row.seq != expected_seq {
            return broken(
                expected_seq,
                format!("entry {expected_seq} is missing (next is {})", row.seq),
            );
        }
        if row.prev_hash != expected_prev {
            return broken(
                row.seq,
                "its previous-hash does not match the entry before it (entries were removed, \
                 inserted or reordered)"
                    .into(),
            );
        }
        if entry_hash(row) != row.hash {
            return broken(
                row.seq,
                "its content does not match its hash (the entry was changed)".into(),
            );
        }
        match (&row.ip, &row.ip_digest) {
            (Some(ip), Some(d)) if &self.ip_digest(ip) != d => broken(
                row.seq,
                "its IP address does not match the sealed digest".into(),
            ),
            // The hash says no address was recorded; one has appeared since.
            (Some(_), None) => broken(
                row.seq,
                "it has an IP address but none was sealed with it".into(),
            ),
            // (None, Some(_)) is a raw IP dropped by retention: the digest still verifies.
            _ => None,
        }
    }
}

/// SHA-256 over a canonical encoding of everything but the hash itself (and the raw IP).
pub fn entry_hash(r: &AuditRow) -> String {
    let canonical = serde_json::json!([
        r.seq,
        r.at,
        r.actor,
        r.action,
        r.target,
        r.ip_digest,
        r.details,
        r.prev_hash
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// What the audit keeps of one risk decision: the score, level, decision, reasons, the rule that
/// fired, the per-signal contributions, the model version and the GeoIP build — enough to show
/// an auditor why the engine decided as it did — and the request's coarse context.
///
/// Never the raw IP, its /24 prefix or the device cookie: the entry's hash covers these details
/// forever, so anything here outlives the IP retention period.
pub fn risk_details(
    features: &crate::risk::SignInFeatures,
    assessment: &crate::risk::Assessment,
    decision: &crate::risk::Decision,
    candidate: Option<&crate::risk::Decision>,
    geoip_build: Option<i64>,
) -> serde_json::Value {
    use crate::risk::{Decision, Signal};
    let mut risk = serde_json::json!({
        "score": assessment.score,
        "level": assessment.level.as_str(),
        "decision": decision.as_str(),
        "reasons": assessment.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "rule": assessment.rule,
        "model": assessment.model,
        "geoip_build": geoip_build,
        "contributions": assessment
            .contributions
            .iter()
            .map(|c| {
                // The network prefix is derived from the raw IP; keep only that it counted.
                let value = if c.feature == "ip_prefix" { "(withheld)" } else { c.value.as_str() };
                serde_json::json!({
                    "feature": c.feature,
                    "value": value,
                    "seen_for_user": c.seen_for_user,
                    "seen_globally": c.seen_globally,
                    "llr": (c.llr * 1000.0).round() / 1000.0,
                })
            })
            .collect::<Vec<_>>(),
    });
    if let Some(obj) = risk.as_object_mut() {
        match decision {
            Decision::StepUp { phishing_resistant } => {
                obj.insert("phishing_resistant".into(), (*phishing_resistant).into());
            }
            Decision::Block { reason } => {
                obj.insert(
                    "block_reason".into(),
                    serde_json::to_value(reason).unwrap_or_default(),
                );
            }
            Decision::Allow => {}
        }
        if let Some(c) = candidate {
            obj.insert("candidate_decision".into(), c.as_str().into());
        }
    }
    // A device is new when the model charged it as such (neither its cookie nor its
    // fingerprint known for this user).
    let new_device = assessment.reasons.contains(&Signal::NewDevice);
    serde_json::json!({
        "risk": risk,
        "context": {
            "country": features.geo.country,
            "asn": features.geo.asn,
            "asn_org": features.geo.asn_org,
            "device_type": features.ua.device_type.as_str(),
            "browser_family": features.ua.browser_family,
            "os_family": features.ua.os_family,
            "new_device": new_device,
            "deny_listed": features.deny_listed,
            "failures": {
                "account_recent": features.failures.account_recent,
                "ip_recent": features.failures.ip_recent,
                "ip_distinct_accounts": features.failures.ip_distinct_accounts,
            },
        },
    })
}

/// Merge `extra` (an object) into `base` (an object): the call sites' own fields beside the
/// risk details.
pub fn with(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(b), serde_json::Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// One exported entry (a JSON line for a SIEM): `at` in RFC 3339, `details` as an object, the
/// raw `ip` while retention keeps it (null after), and everything the hash covers, so the chain
/// can be re-checked outside vigil.
#[derive(Debug, serde::Serialize)]
pub struct ExportLine {
    pub seq: i64,
    pub at: String,
    /// The same instant in unix microseconds, the form the hash covers.
    pub at_micros: i64,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub ip_digest: Option<String>,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditRow> for ExportLine {
    fn from(r: AuditRow) -> Self {
        let at = chrono::DateTime::from_timestamp_micros(r.at)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default();
        // Details are stored as JSON text; a row that is not JSON (tampered) is kept as text.
        let details = serde_json::from_str(&r.details)
            .unwrap_or_else(|_| serde_json::Value::String(r.details.clone()));
        ExportLine {
            seq: r.seq,
            at,
            at_micros: r.at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            ip: r.ip,
            ip_digest: r.ip_digest,
            details,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse_seq_colon_hash_only() {
        let h = "AB".repeat(32);
        let a: Anchor = format!("12:{h}").parse().unwrap();
        assert_eq!((a.seq, a.hash), (12, "ab".repeat(32)));
        for bad in [
            "",
            "12",
            "x:ab",
            "-1:00",
            &format!("1:{}", "g".repeat(64)),
            "1:abcd",
        ] {
            assert!(bad.parse::<Anchor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn export_line_has_rfc3339_time_and_object_details() {
        let row = AuditRow {
            seq: 1,
            at: 1_790_000_003_000_001,
            actor: Some("cli".into()),
            action: "keys.rotated".into(),
            target: None,
            ip: None,
            ip_digest: None,
            details: "{\"new\":[\"k1\"]}".into(),
            prev_hash: GENESIS.into(),
            hash: "h".into(),
        };
        let line = serde_json::to_value(ExportLine::from(row.clone())).unwrap();
        assert_eq!(line["at"], "2026-09-21T14:13:23.000001Z");
        assert_eq!(line["details"]["new"][0], "k1");
        let tampered = AuditRow {
            details: "not json".into(),
            ..row
        };
        let line = serde_json::to_value(ExportLine::from(tampered)).unwrap();
        assert_eq!(line["details"], "not json");
    }

    #[test]
    fn the_hash_covers_the_digest_not_the_raw_ip() {
        let a = Auditor::new(b"k".to_vec());
        let mut row = AuditRow {
            seq: 1,
            at: 0,
            actor: None,
            action: "x".into(),
            target: None,
            ip: Some("192.0.2.1".into()),
            ip_digest: Some(a.ip_digest("192.0.2.1")),
            details: "{}".into(),
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        row.hash = entry_hash(&row);
        assert_eq!(a.check(&row, 1, GENESIS), None);
        row.ip = None;
        assert_eq!(
            a.check(&row, 1, GENESIS),
            None,
            "a purged IP still verifies"
        );
        row.ip = Some("192.0.2.2".into());
        assert!(a.check(&row, 1, GENESIS).is_some(), "a changed IP does not");
    }
}
