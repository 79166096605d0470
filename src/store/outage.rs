//! Surviving a database outage: telling "the database cannot be reached" from a real failure,
//! keeping dead connections out of the pool, and bounding how long a request waits.
//!
//! ```text
//!   a connect fails ───────────> down: logged once; checkouts give up after CHECKOUT_SLICE
//!   a connect succeeds ────────> up: logged once (r2d2 keeps retrying, at most every 1 s)
//!   a query sees the connection ─> that connection is lost: dropped when it goes back to the pool,
//!   die (or its transaction          and the epoch moves on: an idle connection older than the
//!   manager break)                   epoch is pinged once before it is handed out again
//! ```
//!
//! Nothing here adds a round trip to a request while the database is healthy: a connection is
//! checked only after some connection was seen to die, and only once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::r2d2::{Pool, PooledConnection, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::Connection as _;

use super::{CommitCounter, DbConn, Manager, StoreError, StoreResult};

/// The longest a request waits for a connection: a load balancer sees a 503 after this,
/// never a hang. Also r2d2's default timeout, whose half (1 s) caps its reconnect backoff.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a request waits for a connection while the database is up and every connection
/// is busy (a burst of sign-ins): queueing is better than shedding here, and an outage is told
/// apart by failed connects (`Health::is_down`), which end the wait after one
/// [`CHECKOUT_SLICE`]. With [`CHECKOUT_TIMEOUT`] here, 20 of 200 simultaneous sign-ins on a
/// 16-connection pool were refused with 503 on a slow CI machine while PostgreSQL was fine.
pub const BUSY_WAIT: Duration = Duration::from_secs(10);
/// A checkout waits in slices this long, and gives up after the first slice that ends with the
/// last connect failed: a request that finds no idle connection while the database refuses
/// connections answers 503 in about this time, not [`CHECKOUT_TIMEOUT`].
pub const CHECKOUT_SLICE: Duration = Duration::from_millis(100);
/// libpq's `connect_timeout` (seconds) unless the URL sets one: a server that accepts TCP but
/// never answers (a black-holed route) fails a connect in this time instead of never.
pub const CONNECT_TIMEOUT_SECS: u32 = 2;

/// What this node knows about the database's reachability, shared by the pool's manager and
/// every checkout.
#[derive(Debug, Default)]
pub struct Health {
    /// Moves on whenever a connection is seen to die.
    epoch: AtomicU64,
    /// The last connect failed (and none has succeeded since).
    down: AtomicBool,
    /// A connect was refused for want of connection slots (logged once until one succeeds).
    saturated: AtomicBool,
    since: Mutex<Option<Instant>>,
    /// A write failed because the database cannot be written ([`cannot_write`]), and none has
    /// succeeded since.
    write_failing: AtomicBool,
}

impl Health {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// A connect attempt ended: log the transitions only (r2d2 retries every second or so, and
    /// a line per attempt would bury everything else during an outage).
    pub(super) fn connect_result<E: std::fmt::Display>(&self, r: &Result<DbConn, E>) {
        match r {
            Ok(_) => {
                self.saturated.store(false, Ordering::Release);
                if self.down.swap(false, Ordering::AcqRel) {
                    let since = self.since.lock().ok().and_then(|mut s| s.take());
                    tracing::info!(
                        down_ms = since.map_or(0, |s| s.elapsed().as_millis() as u64),
                        "the database is reachable again"
                    );
                }
            }
            Err(e) if is_saturated(&e.to_string()) => {
                // The server is up and refusing only *more* connections: the ones this node
                // holds keep working, so a request waits for one of them (up to BUSY_WAIT)
                // instead of being answered 503 as in an outage.
                if !self.saturated.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        error = %e,
                        "the database refuses more connections (max_connections reached): requests wait for this node's open ones; raise max_connections or lower the number of nodes"
                    );
                }
            }
            Err(e) => {
                if !self.down.swap(true, Ordering::AcqRel) {
                    if let Ok(mut s) = self.since.lock() {
                        *s = Some(Instant::now());
                    }
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(
                        error = %e,
                        "cannot connect to the database: requests that need it answer 503 until it is back"
                    );
                }
            }
        }
    }
}

/// Whether `e` says the database cannot be used now, rather than that the statement was wrong:
/// the connection (or the server behind it) is gone — libpq reports that as `ClosedConnection`
/// (the connection's status is bad after the failed statement) or `UnableToSendCommand`, and a
/// broken transaction manager means a COMMIT or ROLLBACK could not be sent — or the database
/// cannot be written ([`cannot_write`]). Either way the connection is replaced and the request
/// answered 503.
pub fn is_unavailable(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            // PostgreSQL: connected to a standby (a failover left this connection behind).
            | DatabaseErrorKind::ReadOnlyTransaction,
            _,
        ) => true,
        DieselError::DatabaseError(_, info) => {
            // The server says it is going away (57P01-57P03) before libpq notices.
            let m = info.message();
            m.contains("terminating connection")
                || m.contains("the database system is shutting down")
                || m.contains("the database system is starting up")
                || m.contains("server closed the connection unexpectedly")
                || m.contains("no connection to the server")
                || cannot_write(m)
        }
        DieselError::BrokenTransactionManager => true,
        DieselError::RollbackErrorOnCommit { commit_error, .. } => is_unavailable(commit_error),
        _ => false,
    }
}

/// PostgreSQL refused a new connection because every slot is taken (SQLSTATE 53300: the
/// server's `max_connections`, the slots left reserved for superusers, or a `CONNECTION LIMIT`
/// of the role or the database): the server is up, this is not an outage.
pub fn is_saturated(message: &str) -> bool {
    message.contains("too many clients already")
        || message.contains("remaining connection slots are reserved")
        || message.contains("too many connections for")
}

/// SQLite cannot write the database file: it (or its directory, its `-wal` or `-shm`) is
/// read-only, the disk is full, or writing failed. A connection that opened a read-only file
/// stays read-only even after the file is made writable again, so it must be replaced (which
/// `is_unavailable` makes happen) for writes to resume.
pub fn cannot_write(message: &str) -> bool {
    message.contains("attempt to write a readonly database")
        || message.contains("database or disk is full")
        || message.contains("disk I/O error")
}

impl Health {
    /// Say once, clearly, that writes fail and why (until one succeeds again).
    fn write_failed(&self, why: &str) {
        if !self.write_failing.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error = %why,
                "cannot write to the database (a read-only database file or directory, or a full disk?): requests that write answer 503 until it is fixed; reads keep working"
            );
        }
    }

    fn wrote(&self) {
        if self.write_failing.swap(false, Ordering::AcqRel) {
            tracing::info!("the database accepts writes again");
        }
    }
}

/// Whether a statement that succeeded made a write durable: a COMMIT, or a write outside any
/// transaction (checked only while writes are failing; inside a transaction SQLite may accept
/// a statement in memory and fail at the commit).
fn is_durable_write<Q: std::fmt::Display + ?Sized>(query: &Q, in_transaction: bool) -> bool {
    let q = query.to_string();
    let head = q.trim_start().get(..6).unwrap_or("").to_ascii_uppercase();
    head == "COMMIT" || (!in_transaction && ["INSERT", "UPDATE", "DELETE"].contains(&head.as_str()))
}

/// The pool's instrumentation around [`CommitCounter`]: remembers, for this one connection,
/// whether it died and which epoch it was last known good in.
pub(super) struct Watched {
    pub(super) commits: CommitCounter,
    health: Arc<Health>,
    good_in: u64,
    lost: bool,
    /// Not handed out yet.
    fresh: bool,
    /// SQLite: a connection costs a file open, cheaper than a question to it.
    sqlite: bool,
}

impl Watched {
    pub(super) fn new(commits: CommitCounter, health: Arc<Health>, sqlite: bool) -> Self {
        let good_in = health.epoch();
        Watched {
            commits,
            health,
            good_in,
            lost: false,
            fresh: true,
            sqlite,
        }
    }

    fn lose(&mut self, why: &dyn std::fmt::Display) {
        if self.lost {
            return;
        }
        self.lost = true;
        let before = self.health.epoch.fetch_add(1, Ordering::AcqRel);
        let text = why.to_string();
        if cannot_write(&text) {
            self.health.write_failed(&text);
        } else if self.good_in == before {
            // The first connection to find out says so; the others it makes suspect follow.
            tracing::warn!(error = %text, "lost a database connection; it will not be reused");
        } else {
            tracing::debug!(error = %text, "lost a database connection; it will not be reused");
        }
    }
}

impl Instrumentation for Watched {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::FinishQuery { error: Some(e), .. } if is_unavailable(e) => {
                self.lose(e);
            }
            InstrumentationEvent::FinishQuery {
                query, error: None, ..
            } if self.health.write_failing.load(Ordering::Acquire)
                && is_durable_write(*query, self.commits.in_transaction) =>
            {
                self.health.wrote();
            }
            _ => {}
        }
        self.commits.on_connection_event(event);
    }
}

fn watched(conn: &mut DbConn) -> Option<&mut Watched> {
    conn.instrumentation().downcast_mut::<Watched>()
}

/// r2d2's question when a connection comes back: drop it if it died, if its transaction
/// manager is broken or a transaction was left open (diesel's own test), or on a panic.
pub(super) fn has_broken(conn: &mut DbConn) -> bool {
    std::thread::panicking()
        || R2D2Connection::is_broken(conn)
        || watched(conn).is_some_and(|w| w.lost)
}

/// Mark a checked-out connection as dead (its caller saw [`StoreError::Unavailable`]), so the
/// pool drops it instead of handing it to the next request.
pub(super) fn lose(conn: &mut DbConn, why: &dyn std::fmt::Display) {
    if let Some(w) = watched(conn) {
        w.lose(why);
    }
}

/// Whether this connection was seen to die.
pub(super) fn is_lost(conn: &mut DbConn) -> bool {
    watched(conn).is_some_and(|w| w.lost)
}

/// A connection within `within`, or [`StoreError::Unavailable`]. A connection idle since before
/// the last one died is pinged once first (it may have died with the others); on SQLite it is
/// replaced instead, and so is every used connection while writes are failing, since one that
/// opened a read-only file stays read-only after the file is fixed.
pub(super) fn checkout(
    pool: &Pool<Manager>,
    health: &Health,
    within: Duration,
) -> StoreResult<PooledConnection<Manager>> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut conn = match pool.get_timeout(left.min(CHECKOUT_SLICE)) {
            Ok(c) => c,
            Err(e) => {
                if health.is_down() || Instant::now() >= deadline {
                    return Err(StoreError::Unavailable(e.to_string()));
                }
                continue;
            }
        };
        let epoch = health.epoch();
        let writes_failing = health.write_failing.load(Ordering::Acquire);
        let Some(w) = watched(&mut conn) else {
            return Ok(conn);
        };
        let fresh = std::mem::replace(&mut w.fresh, false);
        if w.sqlite && !fresh && (writes_failing || w.good_in < epoch) {
            // Dropped on return, quietly: nothing is wrong with it that is news.
            w.lost = true;
            continue;
        }
        if w.good_in >= epoch {
            return Ok(conn);
        }
        match conn.batch_execute("SELECT 1") {
            Ok(()) => {
                if let Some(w) = watched(&mut conn) {
                    w.good_in = epoch;
                }
                return Ok(conn);
            }
            // Dropped on return (the ping's error marked it, or mark it now); try the next.
            Err(e) => lose(&mut conn, &e),
        }
    }
}

/// `url` with libpq's `connect_timeout` unless it names one.
pub(super) fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={CONNECT_TIMEOUT_SECS}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_timeout_is_added_once() {
        assert_eq!(
            with_connect_timeout("postgres://u@h/db"),
            "postgres://u@h/db?connect_timeout=2"
        );
        assert_eq!(
            with_connect_timeout("postgres://u@h/db?sslmode=disable"),
            "postgres://u@h/db?sslmode=disable&connect_timeout=2"
        );
        assert_eq!(
            with_connect_timeout("postgres://u@h/db?connect_timeout=9"),
            "postgres://u@h/db?connect_timeout=9"
        );
    }

    #[test]
    fn connection_errors_are_unavailable_and_statement_errors_are_not() {
        let closed = DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("server closed the connection unexpectedly".to_owned()),
        );
        assert!(is_unavailable(&closed));
        assert!(is_unavailable(&DieselError::BrokenTransactionManager));
        let unique = DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("duplicate key".to_owned()),
        );
        assert!(!is_unavailable(&unique));
        assert!(!is_unavailable(&DieselError::NotFound));
        let full = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("database or disk is full".to_owned()),
        );
        assert!(is_unavailable(&full));
        let read_only = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("attempt to write a readonly database".to_owned()),
        );
        assert!(is_unavailable(&read_only));
    }

    #[test]
    fn a_full_server_is_saturated_not_down() {
        assert!(is_saturated("FATAL:  sorry, too many clients already"));
        assert!(is_saturated(
            "FATAL:  too many connections for role \"vigil\""
        ));
        assert!(is_saturated(
            "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute"
        ));
        assert!(!is_saturated("connection refused"));
        assert!(!is_saturated("the database system is starting up"));
    }
}
