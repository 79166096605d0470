//! The tamper-evident log: every security-relevant action and risk decision becomes one entry
//! whose hash covers its content and the previous entry's hash (SHA-256 over a canonical JSON
//! array). Changing, deleting or reordering any entry breaks the chain at that point.
//!
//! Raw client IPs may be dropped after a retention period, so the hash covers a keyed digest of
//! the IP (HMAC-SHA-256 with a server secret), never the IP itself: the chain stays verifiable
//! after the IP column is cleared, and the digest alone does not reveal the address.

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
    Ok { entries: u64 },
    Broken { seq: i64, reason: String },
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
        rows::append(conn, row, |r| r.hash = entry_hash(r))?;
        Ok(())
    }

    /// Walk the whole chain, page by page, and report the first broken link.
    pub fn verify(&self, conn: &mut DbConn) -> StoreResult<Verdict> {
        let mut expected_prev = GENESIS.to_owned();
        let mut expected_seq = 1i64;
        let mut count = 0u64;
        loop {
            let page = rows::page(conn, expected_seq - 1, 1000)?;
            if page.is_empty() {
                break;
            }
            for row in page {
                if row.seq != expected_seq {
                    return Ok(Verdict::Broken {
                        seq: expected_seq,
                        reason: format!("entry {expected_seq} is missing (next is {})", row.seq),
                    });
                }
                if row.prev_hash != expected_prev {
                    return Ok(Verdict::Broken {
                        seq: row.seq,
                        reason: "its previous-hash does not match the entry before it".into(),
                    });
                }
                if entry_hash(&row) != row.hash {
                    return Ok(Verdict::Broken {
                        seq: row.seq,
                        reason: "its content does not match its hash (the entry was changed)"
                            .into(),
                    });
                }
                if let (Some(ip), Some(d)) = (&row.ip, &row.ip_digest) {
                    if &self.ip_digest(ip) != d {
                        return Ok(Verdict::Broken {
                            seq: row.seq,
                            reason: "its IP address does not match the sealed digest".into(),
                        });
                    }
                }
                expected_prev = row.hash;
                expected_seq += 1;
                count += 1;
            }
        }
        let (head_seq, head_hash) = rows::head(conn)?;
        if head_seq != expected_seq - 1 || head_hash != expected_prev {
            return Ok(Verdict::Broken {
                seq: expected_seq,
                reason: format!("the chain ends at entry {} but the head says {head_seq} (entries were removed from the end)", expected_seq - 1),
            });
        }
        Ok(Verdict::Ok { entries: count })
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
