//! Storage: the only module that speaks SQL (diesel). One `DbConn` over SQLite and PostgreSQL,
//! an r2d2 pool whose manager picks the backend from the URL scheme, migrations embedded per
//! backend, and one file per aggregate with plain functions over `&mut DbConn`.
//!
//! Callers outside `store` never see diesel: they hand a closure to [`Db::run`], which runs it on
//! the blocking pool so no async worker waits on the database.

pub mod access;
pub mod audit;
pub mod authz;
pub mod campaigns;
pub mod clients;
pub mod consents;
pub mod directory;
pub mod factors;
pub mod flows;
pub mod housekeeping;
pub mod keys;
pub mod mail;
pub mod outage;
pub mod retention;
pub mod reviews;
pub mod revocations;
pub mod risk;
pub mod schema;
pub mod secrets;
pub mod sessions;
pub mod signin_log;
pub mod signins;
pub mod stats;
pub mod throttle;
pub mod tokens;
pub mod usage;
pub mod users;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::DatabaseUrl;

/// One connection to whichever backend the URL named.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Storage failures, as the layers above need to tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("the database is busy")]
    Busy,
    #[error("database error: {0}")]
    Db(DieselError),
    #[error("database connection: {0}")]
    Pool(String),
    /// The database cannot be reached (down, restarting, the connection died): worth trying
    /// again in a moment, and not vigil's fault — 503, not 500.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        if outage::is_unavailable(&e) {
            return StoreError::Unavailable(e.to_string());
        }
        match e {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Conflict(info.message().to_owned())
            }
            DieselError::DatabaseError(_, ref info)
                if info.message().contains("database is locked") =>
            {
                StoreError::Busy
            }
            other => StoreError::Db(other),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Opens connections for r2d2 and prepares each SQLite one (WAL, busy timeout, foreign keys).
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
    commits: Arc<AtomicU64>,
    health: Arc<outage::Health>,
}

/// Counts durable commits on one connection: a transaction that wrote, or a write statement
/// outside any transaction (which commits on its own). The figure the load tool divides by
/// operations; read-only transactions cost no fsync and are not counted.
struct CommitCounter {
    commits: Arc<AtomicU64>,
    in_transaction: bool,
    wrote: bool,
}

/// The first few bytes of a statement's SQL, without formatting the rest of it.
struct Head {
    buf: [u8; 8],
    len: usize,
}

impl std::fmt::Write for Head {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for b in s.bytes() {
            if self.len == 0 && b.is_ascii_whitespace() {
                continue;
            }
            if self.len == self.buf.len() {
                // Enough: stop the formatting early.
                return Err(std::fmt::Error);
            }
            self.buf[self.len] = b.to_ascii_uppercase();
            self.len += 1;
        }
        Ok(())
    }
}

fn writes(query: &dyn std::fmt::Display) -> bool {
    use std::fmt::Write as _;
    let mut head = Head {
        buf: [0; 8],
        len: 0,
    };
    let _ = write!(head, "{query}");
    let h = &head.buf[..head.len];
    [
        &b"INSERT"[..],
        b"UPDATE",
        b"DELETE",
        b"CREATE",
        b"DROP",
        b"ALTER",
    ]
    .iter()
    .any(|w| h.starts_with(w))
}

impl diesel::connection::Instrumentation for CommitCounter {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent as E;
        match event {
            E::BeginTransaction { depth, .. } if depth.get() == 1 => {
                self.in_transaction = true;
                self.wrote = false;
            }
            // Once a transaction has written, its other statements change nothing here: not
            // classifying them spares rendering their SQL a second time.
            E::StartQuery { .. } if self.in_transaction && self.wrote => {}
            E::StartQuery { query, .. } if writes(query) => {
                if self.in_transaction {
                    self.wrote = true;
                } else {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                }
            }
            E::CommitTransaction { depth, .. } if depth.get() == 1 => {
                if self.wrote {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                }
                self.in_transaction = false;
            }
            E::RollbackTransaction { depth, .. } if depth.get() == 1 => {
                self.in_transaction = false;
            }
            _ => {}
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConn, ConnectionError> {
        let opened = self.open();
        self.health.connect_result(&opened);
        opened
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ConnectionError> {
        conn.batch_execute("SELECT 1")
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        outage::has_broken(conn)
    }
}

impl Manager {
    fn open(&self) -> Result<DbConn, ConnectionError> {
        let counter = || {
            outage::Watched::new(
                CommitCounter {
                    commits: self.commits.clone(),
                    in_transaction: false,
                    wrote: false,
                },
                self.health.clone(),
                matches!(self.url, DatabaseUrl::Sqlite(_)),
            )
        };
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let mut c = diesel::PgConnection::establish(&outage::with_connect_timeout(url))?;
                c.set_instrumentation(counter());
                Ok(DbConn::Postgres(c))
            }
            DatabaseUrl::Sqlite(path) => {
                let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy())?;
                // busy_timeout first, so that switching to WAL waits rather than fails when
                // another connection is opening the same file.
                c.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                c.set_instrumentation(counter());
                Ok(DbConn::Sqlite(c))
            }
        }
    }
}

/// The shared handle to the database: a pool plus the backend's name.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: &'static str,
    /// Bumped after each `run` whose closure wrote a revocation (see `store::revocations`).
    revocation_epoch: Arc<AtomicU64>,
    commits: Arc<AtomicU64>,
    health: Arc<outage::Health>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

/// Create a new SQLite database file readable and writable by vigil's user only (0600): it
/// holds password hashes, sealed secrets and the audit log. SQLite gives its `-wal` and `-shm`
/// files the database file's permissions. An existing file is left as the operator made it,
/// with a warning when others may read it.
fn create_private(path: &std::path::Path) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    if path.as_os_str() == ":memory:" {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(m) = std::fs::metadata(path) {
                if m.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format!("{:o}", m.permissions().mode() & 0o777),
                        "the database file can be read by other users than vigil's; chmod 600 it"
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(StoreError::Pool(format!(
            "cannot create the database file {}: {e}",
            path.display()
        ))),
    }
}

/// Copy this SQLite database into the new file `out` (`VACUUM INTO`, consistent while others
/// write); returns its size. The file is created 0600 first (SQLite accepts an empty file).
pub fn backup_into(conn: &mut DbConn, out: &std::path::Path) -> StoreResult<u64> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let DbConn::Sqlite(c) = conn else {
        return Err(StoreError::Pool("backup_into is for SQLite".into()));
    };
    let target = out
        .to_str()
        .ok_or_else(|| StoreError::Pool("the backup path is not UTF-8".into()))?
        .to_owned();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| StoreError::Pool(format!("cannot create {}: {e}", out.display())))?;
    let done = diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(&target)
        .execute(c);
    if let Err(e) = done {
        let _ = std::fs::remove_file(out);
        return Err(e.into());
    }
    Ok(std::fs::metadata(out).map(|m| m.len()).unwrap_or(0))
}

impl Db {
    /// Connect (creating the SQLite file if needed, 0600). Fails fast when the database is unreachable.
    pub fn connect(url: &DatabaseUrl) -> StoreResult<Self> {
        let (size, backend) = match url {
            DatabaseUrl::Sqlite(path) => {
                create_private(path)?;
                (8, "sqlite")
            }
            DatabaseUrl::Postgres(_) => (16, "postgres"),
        };
        let commits = Arc::new(AtomicU64::new(0));
        let health = Arc::new(outage::Health::default());
        let pool = Pool::builder()
            .max_size(size)
            // No background replenishing: a connection still being opened on r2d2's thread when
            // a CLI process exits can crash libpq/OpenSSL's exit handlers. Connections are
            // opened on demand and kept while idle.
            .min_idle(Some(0))
            // Bounded waits and dead connections dropped: see `outage`. No ping per checkout.
            .connection_timeout(outage::CHECKOUT_TIMEOUT)
            .test_on_check_out(false)
            // The manager logs when the database goes and comes back, not every retry.
            .error_handler(Box::new(diesel::r2d2::NopErrorHandler))
            .build(Manager {
                url: url.clone(),
                commits: commits.clone(),
                health: health.clone(),
            })
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        Ok(Db {
            pool,
            backend,
            revocation_epoch: Default::default(),
            commits,
            health,
        })
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Changes after every revocation this node (this `Db`) has committed.
    pub fn revocation_epoch(&self) -> u64 {
        self.revocation_epoch.load(Ordering::Acquire)
    }

    /// Connections open in the pool: (idle, in use, the most it may open).
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let s = self.pool.state();
        (
            s.idle_connections,
            s.connections.saturating_sub(s.idle_connections),
            self.pool.max_size(),
        )
    }

    /// Durable commits this node has made (write transactions and lone write statements).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// A connection for synchronous callers (the CLI, start-up).
    pub fn get(&self) -> StoreResult<PooledConnection<Manager>> {
        outage::checkout(&self.pool, &self.health, outage::BUSY_WAIT)
    }

    /// Whether the last attempt to connect failed (and none succeeded since).
    pub fn is_down(&self) -> bool {
        self.health.is_down()
    }

    /// Run `f` with a connection on the blocking pool. Never holds a connection across `.await`.
    pub async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut DbConn) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_within(outage::BUSY_WAIT, f).await
    }

    /// [`Db::run`], waiting at most `within` for a connection.
    pub async fn run_within<T, F>(&self, within: Duration, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut DbConn) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let health = self.health.clone();
        let epoch = self.revocation_epoch.clone();
        tokio::task::spawn_blocking(move || {
            let asked = std::time::Instant::now();
            let got = outage::checkout(&pool, &health, within);
            let metrics = &crate::telemetry::METRICS;
            metrics.db_pool_wait.observe(asked.elapsed().as_secs_f64());
            let mut conn = got.inspect_err(|_| metrics.db_unavailable.inc())?;
            revocations::take_written();
            crate::telemetry::take_noted(false);
            let out = f(&mut conn);
            // Sign-ins the closure logged are counted once they are committed.
            crate::telemetry::take_noted(out.is_ok());
            // A connection that failed this way is not handed to anyone else (a closure may
            // have seen the error through a path the instrumentation does not).
            if let Err(e @ StoreError::Unavailable(_)) = &out {
                outage::lose(&mut conn, e);
            }
            // Whatever `f` revoked is committed (or rolled back) by now: let this node's
            // revocation cache know before the caller answers anyone.
            if revocations::take_written() {
                epoch.fetch_add(1, Ordering::AcqRel);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Pool(format!("blocking task failed: {e}")))?
    }

    /// Apply pending migrations; returns how many ran. Idempotent.
    pub fn migrate(&self) -> StoreResult<usize> {
        self.exclusively(migrate_on)?
    }

    /// Run start-up work (migrations, the first secrets and signing keys) on one connection
    /// while no other node does: on PostgreSQL under a session advisory lock, so that nodes
    /// started together on a new database take turns instead of racing to create the same
    /// tables and keys (the lock goes with the connection if the process dies). One SQLite file
    /// serves one node, and SQLite's write lock serialises the rest.
    /// The outer error is the lock's (no connection), the inner one `f`'s.
    pub fn exclusively<T, E>(
        &self,
        f: impl FnOnce(&mut DbConn) -> Result<T, E>,
    ) -> StoreResult<Result<T, E>> {
        let mut conn = self.get()?;
        let pg = matches!(*conn, DbConn::Postgres(_));
        if pg {
            conn.batch_execute(&format!("SELECT pg_advisory_lock({STARTUP_LOCK})"))
                .map_err(StoreError::from)?;
        }
        let out = f(&mut conn);
        if pg {
            if let Err(e) =
                conn.batch_execute(&format!("SELECT pg_advisory_unlock({STARTUP_LOCK})"))
            {
                // Never hand out a connection that may still hold the lock: the server
                // releases it when the connection goes.
                outage::lose(&mut conn, &e);
            }
        }
        Ok(out)
    }

    /// Whether the database answers within `within` (for /healthz and /readyz).
    pub async fn ping(&self, within: Duration) -> bool {
        self.run_within(within, |c| {
            c.batch_execute("SELECT 1").map_err(StoreError::from)
        })
        .await
        .is_ok()
    }
}

/// [`migrate`] on a pooled connection: a failure because the connection died is
/// [`StoreError::Unavailable`] (migrations report diesel's errors as text; the connection knows
/// whether it died).
pub fn migrate_on(conn: &mut DbConn) -> StoreResult<usize> {
    match migrate(conn) {
        Err(StoreError::Migration(m)) if outage::is_lost(conn) => Err(StoreError::Unavailable(m)),
        other => other,
    }
}

/// The advisory lock key nodes take turns on at start-up ("vigil" in ASCII).
const STARTUP_LOCK: i64 = 0x0076_6967_696c;

pub fn migrate(conn: &mut DbConn) -> StoreResult<usize> {
    let ran = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    };
    ran.map_err(|e| StoreError::Migration(e.to_string()))
}

/// Revert the newest migration (the upgrade tests go one step back, write what an older vigil
/// wrote, and migrate again).
pub fn revert_last(conn: &mut DbConn) -> StoreResult<()> {
    let r = match conn {
        DbConn::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS).map(|_| ()),
        DbConn::Postgres(c) => c.revert_last_migration(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    r.map_err(|e| StoreError::Migration(e.to_string()))
}

/// Revert every migration (used by the migration round-trip test).
pub fn revert_all(conn: &mut DbConn) -> StoreResult<()> {
    let r = match conn {
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConn::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    r.map_err(|e| StoreError::Migration(e.to_string()))
}

/// Run `f` in a transaction; any error rolls it back.
///
/// On SQLite the outermost transaction begins `IMMEDIATE`: it takes the write lock at once,
/// waiting up to the busy timeout for it. A deferred transaction that reads first and writes
/// later fails at once with "database is locked" when another connection wrote in between (the
/// upgrade cannot wait), which the load tool saw as 500s on logout at 20 sign-ins/s.
pub fn transaction<T, F>(conn: &mut DbConn, f: F) -> StoreResult<T>
where
    F: FnOnce(&mut DbConn) -> StoreResult<T>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let outermost_sqlite = match conn {
        DbConn::Sqlite(c) => matches!(
            <AnsiTransactionManager as TransactionManager<diesel::SqliteConnection>>::transaction_manager_status_mut(c)
                .transaction_depth(),
            Ok(None)
        ),
        DbConn::Postgres(_) => false,
    };
    if !outermost_sqlite {
        return conn.transaction::<T, StoreError, _>(|c| f(c));
    }
    if let DbConn::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
    }
    let out = f(conn);
    if let DbConn::Sqlite(c) = conn {
        let ended = match &out {
            Ok(_) => {
                <AnsiTransactionManager as TransactionManager<diesel::SqliteConnection>>::commit_transaction(c)
            }
            Err(_) => {
                <AnsiTransactionManager as TransactionManager<diesel::SqliteConnection>>::rollback_transaction(c)
            }
        };
        if let Err(e) = ended {
            if out.is_ok() {
                // The commit failed: leave no transaction open behind it.
                let _ = <AnsiTransactionManager as TransactionManager<diesel::SqliteConnection>>::rollback_transaction(c);
                return Err(e.into());
            }
        }
    }
    out
}

/// A fresh, time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Hex SHA-256 of a secret token: what the database holds instead of the token itself.
pub fn token_digest(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Store JSON lists in TEXT columns (both backends share TEXT, not arrays or jsonb).
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Create a fresh PostgreSQL database next to the one `admin_url` names and return its URL
/// (tests and tooling; each test gets its own database).
pub fn create_pg_database(admin_url: &str, name: &str) -> StoreResult<String> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Pool(format!("unsafe database name `{name}`")));
    }
    let mut conn =
        diesel::PgConnection::establish(admin_url).map_err(|e| StoreError::Pool(e.to_string()))?;
    conn.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let mut url = url::Url::parse(admin_url).map_err(|e| StoreError::Pool(e.to_string()))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Drop a database made by [`create_pg_database`], ending its connections first.
pub fn drop_pg_database(admin_url: &str, name: &str) -> StoreResult<()> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Pool(format!("unsafe database name `{name}`")));
    }
    let mut conn =
        diesel::PgConnection::establish(admin_url).map_err(|e| StoreError::Pool(e.to_string()))?;
    conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    Ok(())
}

/// `?` placeholders as PostgreSQL's `$1`, `$2`, … for raw SQL shared by both backends (the
/// queries hold no `?` in literals).
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}
