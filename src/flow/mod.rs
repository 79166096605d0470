//! The sign-in state machine and the account operations built on it. Nothing here knows HTTP:
//! `web/` and the CLI call these functions with plain values and render what they return.
//!
//! ```text
//!   identify ──> verify password ──> (assess risk) ──> (step-up) ──> issue session / code
//!       │               │
//!       └─ throttled ───┴─ refused (one answer for unknown user and wrong password)
//! ```
//!
//! Read top to bottom: `enforce.rs` (the one function that decides who may proceed),
//! `login.rs` (a password sign-in), `mfa.rs` (its step-up), `session.rs` (the SSO session it
//! creates), `authorize.rs` (from a request to a code), `containment.rs` (what a known
//! compromise ends), `recovery.rs` (a password reset by e-mail), `notices.rs` (what the owner
//! is told, with its "this wasn't me" link), `accounts.rs` and `clients.rs` (what operators do).

pub mod access;
pub mod accounts;
pub mod authorize;
pub mod breached;
pub mod campaigns;
pub mod clients;
pub mod consents;
pub mod containment;
pub mod digest;
pub mod email;
pub mod enforce;
pub mod factors;
pub mod history;
pub mod housekeeping;
pub mod keys;
pub mod login;
pub mod mail;
pub mod mfa;
pub mod models;
pub mod notices;
pub mod passkeys;
pub mod policy;
pub mod provision;
pub mod recovery;
pub mod registration;
pub mod reports;
pub mod review;
pub mod revocations;
pub mod risk;
pub mod session;
pub mod signin_log;
pub mod throttle;
pub mod token_log;

use std::net::IpAddr;
use std::sync::Arc;

use crate::audit::Auditor;
use crate::auth::password::Hasher;
use crate::auth::AuthError;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::oidc::keys::Keys;
use crate::sealing::MasterKey;
use crate::store::{self, Db, StoreError};

/// Everything the flows need, shared by every request (and by the CLI).
#[derive(Clone, Debug)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub hasher: Hasher,
    pub auditor: Auditor,
    pub clock: Arc<dyn Clock>,
    /// Encrypts private keys and TOTP secrets at rest.
    pub master: Arc<MasterKey>,
    pub keys: Arc<Keys>,
    /// WebAuthn, when the issuer has a domain name (browsers refuse IP addresses).
    pub passkeys: Option<Arc<crate::auth::webauthn::Passkeys>>,
    pub risk: Arc<risk::RiskEngine>,
    /// What this node knows has been revoked (access tokens are checked against it).
    pub revocations: Arc<revocations::RevocationCache>,
    /// The batched access-token issuance log.
    pub token_log: Arc<token_log::TokenLog>,
    /// Outgoing e-mail: the channel and the templates (`flow::mail` queues and drains).
    pub mailer: Arc<crate::mail::Mailer>,
}

/// Failures of a flow, for the web layer to map to a page or an OAuth error.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Input a person can fix; the message is safe to show.
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Something on vigil's side failed outside the database (a temporary file, a worker
    /// thread): the server's error, never shown in detail.
    #[error("{0}")]
    Internal(String),
}

impl StartError {
    /// The database could not be reached: `serve` waits and tries again.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StartError::Database {
                source: StoreError::Unavailable(_),
                ..
            }
        )
    }
}

/// Start-up failures of the core services.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database {url}: {source}")]
    Database { url: String, source: StoreError },
    #[error("{0}")]
    Other(String),
}

impl Services {
    /// Connect, migrate and load the shared secrets. Used by `serve`, `demo`, the CLI and tests.
    pub fn start(settings: Settings, clock: Option<Arc<dyn Clock>>) -> Result<Self, StartError> {
        let db = Db::connect(&settings.database_url).map_err(|source| StartError::Database {
            url: settings.database_url.redacted(),
            source,
        })?;
        Self::start_on(db, settings, clock)
    }

    /// [`Services::start`] on a pool the caller made (and keeps across attempts while the
    /// database is down: `app::start_when_ready`).
    pub fn start_on(
        db: Db,
        settings: Settings,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<Self, StartError> {
        let db_err = |source| StartError::Database {
            url: settings.database_url.redacted(),
            source,
        };
        let clock: Arc<dyn Clock> = clock.unwrap_or_else(|| Arc::new(SystemClock));
        let now = clock.now();
        let master = Arc::new(load_master_key(&settings)?);
        let keys = Arc::new(Keys::new(master.clone(), db.clone()));
        // Nodes started together on a new database take turns here: one creates the tables,
        // the audit IP key and the signing keys, the others find them.
        let ip_key = db
            .exclusively(|conn| {
                store::migrate_on(conn).map_err(db_err)?;
                let ip_key =
                    store::secrets::get_or_create(conn, "audit_ip_key", now.micros(), random_token)
                        .map_err(db_err)?;
                keys.ensure(conn, now).map_err(|e| match e {
                    crate::oidc::keys::KeyError::Store(s) => db_err(s),
                    e => StartError::Other(e.to_string()),
                })?;
                Ok::<_, StartError>(ip_key)
            })
            .map_err(db_err)??;
        let passkeys = match crate::auth::webauthn::Passkeys::new(settings.issuer.as_str()) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                tracing::warn!(error = %e, "passkeys are unavailable with this issuer");
                None
            }
        };
        let risk = Arc::new(risk::RiskEngine::load(&settings)?);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let queue = settings.hash_queue.unwrap_or(32 * cores);
        let hasher = Hasher::new(settings.password, cores, queue)
            .map_err(|e| StartError::Other(e.to_string()))?;
        let mailer = Arc::new(crate::mail::Mailer::new(&settings.mail).map_err(StartError::Other)?);
        Ok(Services {
            mailer,
            settings: Arc::new(settings),
            revocations: Arc::new(revocations::RevocationCache::new()),
            token_log: token_log::TokenLog::new(db.clone()),
            db,
            hasher,
            auditor: Auditor::new(ip_key.into_bytes()),
            clock,
            master,
            keys,
            passkeys,
            risk,
        })
    }
}

/// The master key: `VIGIL_MASTER_KEY`, else `VIGIL_MASTER_KEY_FILE`, else `vigil.key` in the
/// working directory (created on first start, mode 0600). Several nodes must share one key.
fn load_master_key(settings: &Settings) -> Result<MasterKey, StartError> {
    let bad = |e: crate::sealing::SealError| StartError::Other(format!("master key: {e}"));
    if let Some(k) = &settings.master_key {
        return MasterKey::from_base64(k).map_err(bad);
    }
    let path = settings
        .master_key_file
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("vigil.key"));
    if settings.master_key_file.is_none() && !path.exists() {
        tracing::warn!(path = %path.display(), "no master key configured; creating one (back it up, and share it between nodes)");
    }
    MasterKey::load_or_create(&path).map_err(bad)
}

/// Where a request came from, as far as vigil can tell (the web layer fills it in).
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
    pub device_id: Option<String>,
    pub accept_language: Option<String>,
    /// The login page's device hints (time zone, screen, platform), as posted.
    pub hints: Option<String>,
}

/// 256 bits from the OS, base64url: session tokens, secrets, device ids.
pub fn random_token() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
