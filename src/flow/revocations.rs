//! Whether an access token was ended early, answered from memory.
//!
//! Access tokens are self-contained JWTs; the database holds only revocations (a token id, or a
//! grant: a code's tokens and its refresh family's). Every node keeps them in two hash sets and
//! re-reads only the rows it has not seen, so a check is two hash lookups. Before it answers, a
//! check makes sure the sets are fresh:
//!
//! - read at most [`FRESHNESS`] ago — a revocation made on another node is honoured here within
//!   that bound (plus one query), the figure the README states;
//! - and read after the last revocation this node made itself, so a revocation is honoured on
//!   its own node at once (`Db::revocation_epoch`).
//!
//! One request refreshes while the others wait for it, so a busy node reads the table about
//! once per `FRESHNESS`, usually finding nothing new. When the database cannot be read the check
//! fails (the caller answers with an error) rather than trusting a stale set.
//!
//! Rows are read by `seq`. On PostgreSQL a lower `seq` can commit after a higher one (two
//! transactions take numbers, the later one commits first), so the high-water mark stops at a
//! hole and waits up to [`GAP_WAIT`] for it to fill before stepping over it (a rolled-back
//! insert leaves a hole forever); every [`FULL_RELOAD`] the whole live set is read again, which
//! also catches a revocation whose transaction outlived the wait.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::clock::Timestamp;
use crate::store::clients::{self, Client};
use crate::store::revocations::{self, Kind, Revocation};
use crate::store::{Db, StoreError, StoreResult};

/// The oldest revocation state a check may use.
pub const FRESHNESS: Duration = Duration::from_secs(1);
/// How long a hole in the sequence is waited for.
pub const GAP_WAIT: Duration = Duration::from_secs(10);
/// How often the whole live set is read again (and expired entries dropped).
pub const FULL_RELOAD: Duration = Duration::from_secs(60);
/// Rows per incremental read.
const PAGE: i64 = 10_000;

#[derive(Debug, Default)]
struct Sets {
    jtis: HashMap<String, i64>,
    grants: HashMap<String, i64>,
    /// Bumped whenever a client change is read (or everything is re-read): cached clients
    /// loaded under an older value are stale.
    clients_epoch: u64,
}

impl Sets {
    fn add(&mut self, r: Revocation) {
        let set = match r.kind {
            Kind::Jti => &mut self.jtis,
            Kind::Grant => &mut self.grants,
            Kind::Client => {
                self.clients_epoch += 1;
                return;
            }
        };
        set.insert(r.value, r.expires_at);
    }
}

#[derive(Debug, Default)]
struct State {
    sets: Sets,
    /// When the last successful read began.
    read_at: Option<Instant>,
    /// The node's own revocation epoch that read had seen.
    epoch: u64,
}

/// What only the refreshing request touches.
#[derive(Debug, Default)]
struct Reader {
    /// Every row up to here has been read.
    watermark: i64,
    /// Holes above the watermark, with when each was first seen.
    gaps: BTreeMap<i64, Instant>,
    full_at: Option<Instant>,
}

/// The node's view of what has been revoked.
///
/// It also carries the clients: read on every token request, changed rarely. A client change
/// writes a row of kind `client` that every node reads like a revocation, dropping its copies.
#[derive(Debug, Default)]
pub struct RevocationCache {
    state: RwLock<State>,
    reader: tokio::sync::Mutex<Reader>,
    /// Clients by id, with the `clients_epoch` they were read under.
    clients: RwLock<HashMap<String, (Arc<Client>, u64)>>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Pool("revocation cache poisoned".into())
}

impl RevocationCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn fresh(&self, epoch: u64) -> bool {
        match self.state.read() {
            Ok(s) => s.epoch == epoch && s.read_at.is_some_and(|t| t.elapsed() < FRESHNESS),
            Err(_) => false,
        }
    }

    /// Whether a token with this `jti` and `grant_id` was revoked. Reads the database first
    /// when the node's view is older than [`FRESHNESS`] or predates its own last revocation.
    pub async fn is_revoked(
        &self,
        db: &Db,
        now: Timestamp,
        jti: &str,
        grant: Option<&str>,
    ) -> StoreResult<bool> {
        self.ensure_fresh(db, now).await?;
        let s = self.state.read().map_err(poisoned)?;
        Ok(s.sets.jtis.contains_key(jti) || grant.is_some_and(|g| s.sets.grants.contains_key(g)))
    }

    /// A client, from memory when no change to any client has been read since it was loaded.
    /// Unknown ids are not remembered (anyone can send them).
    pub async fn client(&self, db: &Db, now: Timestamp, id: &str) -> StoreResult<Option<Client>> {
        self.ensure_fresh(db, now).await?;
        let epoch = self.state.read().map_err(poisoned)?.sets.clients_epoch;
        if let Some((c, e)) = self.clients.read().map_err(poisoned)?.get(id) {
            if *e == epoch {
                return Ok(Some(Client::clone(c)));
            }
        }
        let lookup = id.to_owned();
        let found = db.run(move |c| clients::find(c, &lookup)).await?;
        let mut cache = self.clients.write().map_err(poisoned)?;
        match &found {
            Some(c) => {
                cache.insert(id.to_owned(), (Arc::new(c.clone()), epoch));
            }
            None => {
                cache.remove(id);
            }
        }
        Ok(found)
    }

    /// How old the node's view is (for operators; `None` before the first read).
    pub fn age(&self) -> Option<Duration> {
        self.state.read().ok()?.read_at.map(|t| t.elapsed())
    }

    async fn ensure_fresh(&self, db: &Db, now: Timestamp) -> StoreResult<()> {
        if self.fresh(db.revocation_epoch()) {
            return Ok(());
        }
        let mut reader = self.reader.lock().await;
        // Read the epoch before the table: a revocation published after this is read next time.
        let epoch = db.revocation_epoch();
        if self.fresh(epoch) {
            return Ok(());
        }
        let started = Instant::now();
        let full = reader.full_at.is_none_or(|t| t.elapsed() >= FULL_RELOAD);
        if full {
            let first = reader.full_at.is_none();
            let rows = db.run(move |c| revocations::live(c, now.micros())).await?;
            let mut sets = Sets::default();
            let top = rows.iter().map(|r| r.seq).max().unwrap_or(0);
            for r in rows {
                sets.add(r);
            }
            if first {
                reader.watermark = top;
            }
            reader.full_at = Some(started);
            {
                let mut s = self.state.write().map_err(poisoned)?;
                sets.clients_epoch = s.sets.clients_epoch + 1;
                s.sets = sets;
                s.read_at = Some(started);
                s.epoch = epoch;
            }
            if !first {
                // Rows committed above the watermark since: the incremental read below.
                return self.read_new(db, &mut reader, epoch, started).await;
            }
            return Ok(());
        }
        self.read_new(db, &mut reader, epoch, started).await
    }

    async fn read_new(
        &self,
        db: &Db,
        reader: &mut Reader,
        epoch: u64,
        started: Instant,
    ) -> StoreResult<()> {
        let mut rows: Vec<Revocation> = Vec::new();
        let mut after = reader.watermark;
        loop {
            let page = db.run(move |c| revocations::since(c, after, PAGE)).await?;
            let short = (page.len() as i64) < PAGE;
            if let Some(last) = page.last() {
                after = last.seq;
            }
            rows.extend(page);
            if short {
                break;
            }
        }
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        reader.watermark = advance(reader.watermark, &seqs, &mut reader.gaps, started, GAP_WAIT);
        let mut s = self.state.write().map_err(poisoned)?;
        for r in rows {
            s.sets.add(r);
        }
        s.read_at = Some(started);
        s.epoch = epoch;
        Ok(())
    }
}

/// The new high-water mark after reading `seqs` (ascending, all above `watermark`): it moves
/// over every number read and stops at the first hole, unless that hole's first number was first
/// seen missing at least `wait` before `now` (then the whole hole is stepped over; the periodic
/// full reload catches anything that commits later still). Holes at or below the result are
/// forgotten.
pub fn advance(
    watermark: i64,
    seqs: &[i64],
    gaps: &mut BTreeMap<i64, Instant>,
    now: Instant,
    wait: Duration,
) -> i64 {
    let mut w = watermark;
    let mut it = seqs.iter().copied().filter(|s| *s > watermark).peekable();
    while let Some(&next) = it.peek() {
        if next == w + 1 {
            w = next;
            it.next();
            continue;
        }
        if next <= w {
            it.next();
            continue;
        }
        // A hole from w + 1 up to next - 1, aged by when its start was first missing.
        let first = *gaps.entry(w + 1).or_insert(now);
        if now.saturating_duration_since(first) >= wait {
            w = next - 1;
        } else {
            break;
        }
    }
    gaps.retain(|k, _| *k > w);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn contiguous_rows_move_the_mark_to_the_last() {
        let mut gaps = BTreeMap::new();
        assert_eq!(advance(3, &[4, 5, 6], &mut gaps, Instant::now(), WAIT), 6);
        assert!(gaps.is_empty());
        assert_eq!(advance(6, &[], &mut gaps, Instant::now(), WAIT), 6);
    }

    #[test]
    fn a_hole_holds_the_mark_until_it_fills() {
        let mut gaps = BTreeMap::new();
        let t0 = Instant::now();
        // 5 was taken by a transaction that has not committed yet.
        assert_eq!(advance(3, &[4, 6, 7], &mut gaps, t0, WAIT), 4);
        assert_eq!(gaps.len(), 1);
        // It commits: the next read (from 4) sees it, and the mark moves over everything.
        assert_eq!(
            advance(4, &[5, 6, 7], &mut gaps, t0 + Duration::from_secs(1), WAIT),
            7
        );
        assert!(gaps.is_empty());
    }

    #[test]
    fn a_hole_that_never_fills_is_stepped_over_after_the_wait() {
        let mut gaps = BTreeMap::new();
        let t0 = Instant::now();
        assert_eq!(advance(0, &[1, 4], &mut gaps, t0, WAIT), 1);
        assert_eq!(
            advance(1, &[4], &mut gaps, t0 + Duration::from_secs(5), WAIT),
            1
        );
        // 2 and 3 were rolled back: both were first seen at t0 + 5 s or earlier.
        assert_eq!(
            advance(1, &[4], &mut gaps, t0 + Duration::from_secs(16), WAIT),
            4
        );
        assert!(gaps.is_empty());
    }
}
