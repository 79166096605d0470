//! Storage: the only module that speaks SQL (diesel). One `DbConn` over SQLite and PostgreSQL,
//! an r2d2 pool whose manager picks the backend from the URL scheme, migrations embedded per
//! backend, and one file per aggregate with plain functions over `&mut DbConn`.
//!
//! Callers outside `store` never see diesel: they hand a closure to [`Db::run`], which runs it on
//! the blocking pool so no async worker waits on the database.

pub mod audit;
pub mod authz;
pub mod clients;
pub mod consents;
pub mod factors;
pub mod flows;
pub mod housekeeping;
pub mod keys;
pub mod retention;
pub mod reviews;
pub mod risk;
pub mod schema;
pub mod secrets;
pub mod sessions;
pub mod signin_log;
pub mod signins;
pub mod stats;
pub mod throttle;
pub mod tokens;
pub mod users;

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
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
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
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConn, ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                Ok(DbConn::Postgres(diesel::PgConnection::establish(url)?))
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
                Ok(DbConn::Sqlite(c))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ConnectionError> {
        conn.batch_execute("SELECT 1")
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

/// The shared handle to the database: a pool plus the backend's name.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: &'static str,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Db {
    /// Connect (creating the SQLite file if needed). Fails fast when the database is unreachable.
    pub fn connect(url: &DatabaseUrl) -> StoreResult<Self> {
        let (size, backend) = match url {
            DatabaseUrl::Sqlite(_) => (8, "sqlite"),
            DatabaseUrl::Postgres(_) => (16, "postgres"),
        };
        let pool = Pool::builder()
            .max_size(size)
            // No background replenishing: a connection still being opened on r2d2's thread when
            // a CLI process exits can crash libpq/OpenSSL's exit handlers. Connections are
            // opened on demand and kept while idle.
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(10))
            .test_on_check_out(false)
            .build(Manager { url: url.clone() })
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        Ok(Db { pool, backend })
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// A connection for synchronous callers (the CLI, start-up).
    pub fn get(&self) -> StoreResult<PooledConnection<Manager>> {
        self.pool.get().map_err(|e| StoreError::Pool(e.to_string()))
    }

    /// Run `f` with a connection on the blocking pool. Never holds a connection across `.await`.
    pub async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut DbConn) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| StoreError::Pool(e.to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Pool(format!("blocking task failed: {e}")))?
    }

    /// Apply pending migrations; returns how many ran. Idempotent.
    pub fn migrate(&self) -> StoreResult<usize> {
        let mut conn = self.get()?;
        migrate(&mut conn)
    }

    /// Whether the database answers (for /healthz).
    pub async fn ping(&self) -> bool {
        self.run(|c| c.batch_execute("SELECT 1").map_err(StoreError::from))
            .await
            .is_ok()
    }
}

pub fn migrate(conn: &mut DbConn) -> StoreResult<usize> {
    let ran = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    };
    ran.map_err(|e| StoreError::Migration(e.to_string()))
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
pub fn transaction<T, F>(conn: &mut DbConn, f: F) -> StoreResult<T>
where
    F: FnOnce(&mut DbConn) -> StoreResult<T>,
{
    conn.transaction::<T, StoreError, _>(|c| f(c))
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
