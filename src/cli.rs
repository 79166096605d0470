//! The command line (contract: ../shared/ARCHITECTURE.md §4). Parsing only; each verb calls the
//! same flows the web pages use. Secrets come from stdin, never from argv.

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version,
    about = "An OpenID Connect identity provider that scores every sign-in for risk"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the server (the default); migrates the database first.
    Serve,
    /// Like `serve`, but first seeds a demo admin, user and client and prints their credentials.
    Demo,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OIDC clients (relying parties).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage groups of users (roles granted to a group are held by its members).
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage an application's roles and who holds them.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Manage token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Verify, anchor or export the tamper-evident audit log; purge old raw IPs.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Measure the risk model on labelled sign-in logs (no database needed).
    #[command(subcommand)]
    Risk(RiskCommand),
    /// Least privilege: unused grants, peer outliers, dormant accounts and candidate roles.
    #[command(subcommand)]
    Access(AccessCommand),
    /// Create the load-test data set (keycloak-benchmark's): users `user-K` and clients
    /// `client-K` with fixed, public credentials. Idempotent. Never on a real deployment.
    Seed(SeedArgs),
    /// Copy the SQLite database to a new file, consistently, while vigil serves (PostgreSQL:
    /// use pg_dump, see the README).
    Backup(BackupArgs),
}

/// `vigil backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The new file (must not exist); created readable by this user only.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

/// `vigil seed`: what `vigil-load` expects to find (see load/README.md).
#[derive(Args, Debug)]
pub struct SeedArgs {
    /// Users `user-1`..`user-N`, password `user-K-password`, e-mail `user-K@load.example`.
    #[arg(long, default_value_t = 0)]
    pub users: u32,
    /// Confidential first-party clients `client-1`..`client-M` with every grant, secret
    /// `client-K-secret-vigil-load-testing` (vigil's minimum secret length is 32).
    #[arg(long, default_value_t = 0)]
    pub clients: u32,
    /// Give each user a TOTP factor whose secret is derived from the username
    /// (`commands::seed_totp_secret`), so the load tool can compute codes.
    #[arg(long)]
    pub totp: bool,
    /// The seeded clients' access-token algorithm: RS256 (default), ES256 or EdDSA.
    #[arg(long, value_name = "ALG")]
    pub access_token_alg: Option<String>,
    /// The seeded clients' ID-token algorithm: RS256 (default), ES256 or EdDSA.
    #[arg(long, value_name = "ALG")]
    pub id_token_alg: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// The findings for the live database, with their evidence.
    Report {
        /// One JSON object per line and finding (the contract in docs/ARCHITECTURE.md).
        #[arg(long)]
        json: bool,
        /// A direct grant not in a token for this many days is unused; an account without a
        /// sign-in or a token for this long is dormant.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
        unused_days: u32,
    },
    /// Write a synthetic organisation with planted excess and its ground truth (no database).
    Synth {
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        users: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Run the miners on a synthetic organisation and measure them against its ground truth.
    Evaluate {
        #[arg(long)]
        input: std::path::PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RiskCommand {
    /// Replay a log in the RBA dataset's CSV format through the model, with simulated
    /// attackers; report detection, friction, fairness and a Freeman baseline.
    Replay {
        #[arg(long)]
        input: std::path::PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Score only the file's rows (rows with Is Account Takeover true are the attacks).
        #[arg(long)]
        no_inject: bool,
        /// Skip malformed rows (and count them) instead of stopping at the first.
        #[arg(long)]
        skip_malformed: bool,
        /// Write `index,score,decision,attack_model` per scored event to this file.
        #[arg(long)]
        scores_out: Option<std::path::PathBuf>,
        /// Seed of the attack simulation.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The shipping gate: replay a log with two model versions (same simulated attacks) and
    /// pass only if the candidate's AUC is not lower for any attacker, higher for targeted and
    /// very targeted, and no fairness group's step-up rate rises by more than 10 %.
    /// Exit code 1 if the candidate must not ship.
    Compare {
        #[arg(long)]
        input: std::path::PathBuf,
        /// A model version name (see the README's model versions) or a JSON config file;
        /// default: the shipped version.
        #[arg(long)]
        candidate: Option<String>,
        /// Same; default: the version before the candidate.
        #[arg(long)]
        previous: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        skip_malformed: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Fit the model's per-level weights by L2-regularised logistic regression on a labelled
    /// log (train on one synthetic seed, compare on another); prints the config as JSON.
    Fit {
        #[arg(long)]
        input: std::path::PathBuf,
        /// The version (or JSON config file) whose caps and smoothing to fit weights for.
        #[arg(long)]
        from: Option<String>,
        /// Set the score map so the result steps up as many legitimate sign-ins on the log
        /// as this version (name or JSON file) does; default: `--from`.
        #[arg(long)]
        calibrate_to: Option<String>,
        /// L2 penalty on the weights.
        #[arg(long, default_value_t = 0.01)]
        l2: f64,
        /// Fit one weight per chain (network, device) and the hour instead of one per level.
        #[arg(long)]
        chains: bool,
        #[arg(long)]
        skip_malformed: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write a synthetic log in the same format, deterministic for a seed.
    Synth {
        #[arg(long)]
        users: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Write vigil's own sign-in log in the same format, labelled from vigil's evidence
    /// (verified sign-ins legitimate; attack verdicts and user reports attacks; blocked
    /// sign-ins judged legitimate, legitimate). Needs the database.
    Export {
        /// `YYYY-MM-DD` or RFC 3339; default: the whole log.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Seed vigil's sign-in history from a log in the same format (a previous identity
    /// provider's, or `risk synth` for a demonstration): each row is scored by the live model
    /// and logged, successful ones teach the user's profile. Rows marked as takeovers are left
    /// out. Needs the database.
    Import {
        #[arg(long)]
        input: std::path::PathBuf,
        /// Create the log's users vigil does not know (without a password, as SCIM
        /// provisioning does); otherwise their rows are left out.
        #[arg(long)]
        create_users: bool,
        /// Move every time forward so that the last row is now (a synthetic history then
        /// looks recent, and falls in the windows the console and the gate read).
        #[arg(long)]
        shift_to_now: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make new signing keys active; old ones stay published until their tokens expire.
    Rotate,
    /// List signing keys and their state.
    List,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account; the password is read from stdin.
    Add {
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Disable an account and end its sessions.
    Disable { username: String },
    /// Re-enable a disabled account.
    Enable { username: String },
    /// Provision a TOTP factor and print its otpauth:// URI (replaces an existing one).
    TotpEnroll { username: String },
    /// Set a new password, read from stdin; ends every session of the account.
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Args, Debug)]
pub struct ClientAdd {
    pub client_id: String,
    /// A redirect URI (repeat for several); matched exactly at /authorize.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Where /logout may send the browser afterwards (repeatable).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (SPA, native app): no secret, PKCE required.
    #[arg(long)]
    pub public: bool,
    /// A first-party client skips the consent page.
    #[arg(long)]
    pub first_party: bool,
    /// Restrict grants (authorization_code, refresh_token, client_credentials); repeatable.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// Read the client secret from stdin instead of generating one.
    #[arg(long)]
    pub secret_stdin: bool,
    /// Receive OpenID back-channel logout tokens at this URI.
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// Sign this client's ID tokens with RS256 (default), ES256 or EdDSA.
    #[arg(long)]
    pub id_token_alg: Option<String>,
    /// Sign this client's access tokens with RS256 (default), ES256 or EdDSA.
    #[arg(long, value_name = "ALG")]
    pub access_token_alg: Option<String>,
    /// Let a confidential client omit PKCE (public clients always need it).
    #[arg(long)]
    pub pkce_optional: bool,
    /// The least assurance the client accepts: urn:vigil:acr:mfa or phr.
    #[arg(long)]
    pub min_acr: Option<String>,
    /// Admit only users who hold at least one of this client's roles.
    #[arg(long)]
    pub require_role: bool,
    /// The oldest sign-in (seconds) that may receive one of this client's privileged roles
    /// (default 3600).
    #[arg(long, value_name = "SECS")]
    pub privileged_max_age: Option<i64>,
    /// Allow the `scim` scope: the client provisions users and groups through `/scim/v2` with
    /// a `client_credentials` token.
    #[arg(long)]
    pub provisioning: bool,
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group.
    Add {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List groups with their number of members.
    List,
    /// Remove a group (its memberships and role grants go with it).
    Remove { name: String },
    /// Add a user to a group.
    AddMember { group: String, username: String },
    /// Remove a user from a group.
    RemoveMember { group: String, username: String },
}

/// Exactly one holder of a grant.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Grantee {
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub group: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Create a role of a client.
    Add {
        client_id: String,
        role: String,
        /// Released only to a recent sign-in with a second factor, never to an account at risk.
        #[arg(long)]
        privileged: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove a role of a client (its grants go with it).
    Remove { client_id: String, role: String },
    /// Grant a role to a user or to a group.
    Grant {
        client_id: String,
        role: String,
        #[command(flatten)]
        to: Grantee,
    },
    /// Revoke a role from a user or a group.
    Revoke {
        client_id: String,
        role: String,
        #[command(flatten)]
        to: Grantee,
    },
    /// List the roles of a client (or of every client) and who holds them.
    List { client_id: Option<String> },
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a client; a confidential client without --secret-stdin gets a generated secret.
    Add(Box<ClientAdd>),
    /// List clients.
    List,
    /// Remove a client.
    Remove { client_id: String },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain: "ok N entries, head N:HASH" (exit 0) or the first broken link (exit 1).
    Verify {
        /// A `SEQ:HASH` recorded earlier by `vigil audit head`; that entry must still have that
        /// hash (catches a rewritten or cut chain). Repeatable.
        #[arg(long = "anchor")]
        anchors: Vec<String>,
    },
    /// Print the stored head as `SEQ:HASH`, to record outside the database as an anchor
    /// (unverified and instant; `verify` prints the same value after checking the chain).
    Head,
    /// Write entries as JSON lines (for a SIEM).
    Export {
        /// Only entries at or after this date (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        since: Option<String>,
    },
    /// Clear raw client IPs older than the retention period (VIGIL_IP_RETENTION_DAYS) from the
    /// audit log, the sign-in log, failure counters and ended sessions. `serve` does it hourly.
    PurgeIps {
        /// Use this many days instead of the configured period (0 clears every raw IP).
        #[arg(long)]
        days: Option<u32>,
    },
}
