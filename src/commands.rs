//! What each CLI verb does. Exit codes: 0 success, 1 the operation failed (duplicate, weak
//! password, unknown user…), 2 bad configuration or usage.

use std::io::{BufRead, Write};
use std::net::TcpListener;

use secrecy::{ExposeSecret, SecretString};

use crate::audit::{Anchor, ExportLine, Verdict};
use crate::cli::{
    AccessCommand, AuditCommand, ClientAdd, ClientCommand, Command, GroupCommand, KeysCommand,
    RiskCommand, RoleCommand, SeedArgs, UserCommand,
};
use crate::clock::Timestamp;
use crate::config::Settings;
use crate::flow::access;
use crate::flow::accounts::{self, Actor, NewAccount};
use crate::flow::clients::{self, NewClient};
use crate::flow::{FlowError, Services};

/// A failed command: its message (one line) and exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn op(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<FlowError> for Failure {
    fn from(e: FlowError) -> Self {
        Failure::op(e.to_string())
    }
}

pub const DEMO_ADMIN: (&str, &str) = ("admin", "vigil-demo-admin-pass");
pub const DEMO_USER: (&str, &str) = ("demo", "vigil-demo-user-pass");
pub const DEMO_CLIENT: (&str, &str) = ("demo-app", "demo-app-secret-0123456789abcdefghijklmnop");
pub const DEMO_REDIRECT: &str = "http://localhost:9000/callback";

fn cli_actor() -> Actor {
    Actor::new("cli")
}

/// Read one secret line from stdin (the trailing newline is not part of it).
fn read_secret(what: &str) -> Result<SecretString, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::op(format!("cannot read the {what} from stdin: {e}")))?;
    let value = line.trim_end_matches(['\n', '\r']).to_owned();
    if value.is_empty() {
        return Err(Failure::usage(format!("no {what} on stdin")));
    }
    Ok(SecretString::from(value))
}

fn start(settings: Settings) -> Result<Services, Failure> {
    Services::start(settings, None).map_err(|e| Failure::op(e.to_string()))
}

pub async fn run(command: Command, settings: Settings) -> Result<(), Failure> {
    match command {
        Command::Serve => serve(settings, false).await,
        Command::Demo => serve(settings, true).await,
        Command::Migrate => {
            let svc = start(settings)?;
            println!(
                "database {} is up to date",
                svc.settings.database_url.redacted()
            );
            Ok(())
        }
        Command::User(c) => user(start(settings)?, c).await,
        Command::Client(c) => client(start(settings)?, c).await,
        Command::Group(c) => group(start(settings)?, c).await,
        Command::Role(c) => role(start(settings)?, c).await,
        Command::Keys(c) => keys(start(settings)?, c).await,
        Command::Audit(c) => audit(start(settings)?, c).await,
        Command::Risk(RiskCommand::Export { since, out }) => {
            risk_export(start(settings)?, since.as_deref(), &out).await
        }
        Command::Risk(RiskCommand::Import {
            input,
            create_users,
            shift_to_now,
        }) => risk_import(start(settings)?, &input, create_users, shift_to_now).await,
        Command::Risk(c) => risk(c, &settings),
        Command::Access(AccessCommand::Report { json, unused_days }) => {
            access_report(start(settings)?, json, unused_days).await
        }
        Command::Access(c) => access_offline(c),
        Command::Seed(a) => seed(start(settings)?, a).await,
        Command::Backup(a) => backup(start(settings)?, a).await,
    }
}

/// `vigil backup --out FILE`: an online, consistent copy of the SQLite database (SQLite's
/// `VACUUM INTO`: one read transaction, so writers carry on), private like the original.
async fn backup(svc: Services, a: crate::cli::BackupArgs) -> Result<(), Failure> {
    if svc.db.backend() != "sqlite" {
        return Err(Failure::usage(
            "vigil backup copies SQLite databases; for PostgreSQL use pg_dump (README: Backups)",
        ));
    }
    let out = a.out.clone();
    match svc
        .db
        .run(move |c| crate::store::backup_into(c, &out))
        .await
    {
        Ok(bytes) => {
            println!("backed up to {} ({bytes} bytes)", a.out.display());
            Ok(())
        }
        Err(e) => Err(Failure::op(format!("backup failed: {e}"))),
    }
}

/// SIGTERM or SIGINT (Ctrl-C): what ends a node that is still waiting for its database.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Listen first, then start: a node whose database is down at start-up does not exit but
/// answers probes (live, not ready) until it can connect and migrate (`app::start_when_ready`).
async fn serve(mut settings: Settings, demo: bool) -> Result<(), Failure> {
    // The demo shows the mail it would send in its log unless told where to send it.
    if demo && settings.mail.transport == crate::config::MailTransport::Off {
        settings.mail.transport = crate::config::MailTransport::Log;
    }
    // The demo's story blocks a sign-in from a deny-listed address: without a deny list of the
    // operator's, the demo writes one of its own next to its database.
    if demo && settings.ip_denylist.is_none() {
        let path = std::path::PathBuf::from("vigil-demo-denylist.txt");
        std::fs::write(
            &path,
            format!(
                "# vigil demo: one address, blocked in the demo's story\n{}/32\n",
                crate::demo::DENY_LISTED
            ),
        )
        .map_err(|e| Failure::op(format!("cannot write the demo's deny list: {e}")))?;
        settings.ip_denylist = Some(path);
    }
    let bind = settings.bind;
    let issuer = settings.issuer.as_str().to_owned();
    let listener = TcpListener::bind(bind)
        .map_err(|e| Failure::op(format!("cannot listen on {bind}: {e}")))?;
    let Some(crate::app::Ready { svc, state }) =
        crate::app::start_when_ready(settings, &listener, stop_signal())
            .await
            .map_err(|e| Failure::op(e.to_string()))?
    else {
        tracing::info!("vigil stopped while waiting for its database");
        return Ok(());
    };
    if demo {
        seed_demo(&svc).await?;
    }
    // SIGHUP re-reads the deny list (VIGIL_IP_DENYLIST), e.g. after a cron job refreshed it.
    #[cfg(unix)]
    {
        let risk = svc.risk.clone();
        tokio::spawn(async move {
            if let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            {
                while hup.recv().await.is_some() {
                    match risk.reload_denylist() {
                        Ok(n) => tracing::info!(entries = n, "deny list reloaded"),
                        Err(e) => {
                            tracing::warn!(error = %e, "deny list reload failed; keeping the previous list")
                        }
                    }
                }
            }
        });
    }
    spawn_ip_retention(&svc);
    spawn_housekeeping(&svc);
    crate::flow::mail::spawn_sender(&svc);
    let token_log = svc.token_log.clone();
    let drain = std::time::Duration::from_secs(svc.settings.shutdown_drain_secs);
    let draining = state.draining.clone();
    let operator = match svc.settings.metrics_bind {
        Some(addr) => Some(TcpListener::bind(addr).map_err(|e| {
            Failure::op(format!("cannot listen on {addr} (VIGIL_METRICS_BIND): {e}"))
        })?),
        None => None,
    };
    let server =
        crate::app::run(state, listener, operator, None).map_err(|e| Failure::op(e.to_string()))?;
    let handle = server.handle();
    // SIGTERM: first tell the load balancer (readiness 503) and keep answering for the drain
    // period, so that no request is sent to a closed port; then stop accepting and let the
    // requests in flight finish.
    tokio::spawn(async move {
        stop_signal().await;
        draining.store(true, std::sync::atomic::Ordering::Release);
        if !drain.is_zero() {
            tracing::info!(
                seconds = drain.as_secs(),
                "stopping: draining (/readyz answers 503) before closing the listener"
            );
            tokio::time::sleep(drain).await;
        }
        tracing::info!(
            grace_secs = crate::app::SHUTDOWN_GRACE_SECS,
            "stopping: no new connections; requests in flight finish"
        );
        handle.stop(true).await;
    });
    tracing::info!(bind = %bind, issuer = %issuer, "vigil is serving");
    let served = server.await;
    // The requests have finished (or the grace period ran out): write the issuance log's last
    // lines, which would otherwise wait for a timer that dies with the workers.
    token_log.flush().await;
    served.map_err(|e| Failure::op(e.to_string()))?;
    tracing::info!("vigil stopped");
    Ok(())
}

/// Create the demo accounts and client unless they exist, then print how to use them.
async fn seed_demo(svc: &Services) -> Result<(), Failure> {
    let now = svc.clock.now();
    let existing: Vec<String> = accounts::list(svc)
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    for (username, password, admin) in [
        (DEMO_ADMIN.0, DEMO_ADMIN.1, true),
        (DEMO_USER.0, DEMO_USER.1, false),
    ] {
        if !existing.iter().any(|u| u == username) {
            accounts::create(
                svc,
                &cli_actor(),
                now,
                NewAccount {
                    username: username.into(),
                    email: format!("{username}@example.com"),
                    name: if admin {
                        "Demo Admin".into()
                    } else {
                        "Demo User".into()
                    },
                    is_admin: admin,
                    password: SecretString::from(password.to_owned()),
                },
            )
            .await?;
        }
    }
    if !clients::list(svc)
        .await?
        .iter()
        .any(|c| c.id == DEMO_CLIENT.0)
    {
        clients::register(
            svc,
            &cli_actor(),
            now,
            NewClient {
                id: DEMO_CLIENT.0.into(),
                name: Some("Demo application".into()),
                redirect_uris: vec![DEMO_REDIRECT.into()],
                post_logout_redirect_uris: vec!["http://localhost:9000/".into()],
                public: false,
                first_party: true,
                grants: vec![],
                secret: Some(SecretString::from(DEMO_CLIENT.1.to_owned())),
                backchannel_logout_uri: None,
                id_token_alg: None,
                access_token_alg: None,
                pkce_optional: false,
                min_acr: None,
                require_role: false,
                privileged_max_age_secs: None,
                provisioning: false,
            },
        )
        .await?;
    }
    let story = crate::demo::seed(svc, DEMO_USER.1).await?;
    let issuer = svc.settings.issuer.as_str();
    if let Some(story) = &story {
        println!(
            "\nvigil demo — a story to look at in the console: {} sign-ins over three weeks by demo, amira, bruno, chen and dana (password {}), then:",
            story.history, DEMO_USER.1
        );
        for e in &story.events {
            println!("  - {e}");
        }
    }
    println!(
        "\nvigil demo — database {db}\n\n  sign in:    {issuer}/login\n  console:    {issuer}/admin (as the admin)\n  admin:      {a} / {ap}\n  user:       {u} / {up}\n  client:     {c} / secret {cs}\n              redirect URI {r}\n\n(Demo credentials are fixed and public: never use `vigil demo` for real accounts.)\n",
        db = svc.settings.database_url.redacted(),
        a = DEMO_ADMIN.0,
        ap = DEMO_ADMIN.1,
        u = DEMO_USER.0,
        up = DEMO_USER.1,
        c = DEMO_CLIENT.0,
        cs = DEMO_CLIENT.1,
        r = DEMO_REDIRECT,
    );
    let _ = std::io::stdout().flush();
    Ok(())
}

/// The load-test data set's names and credentials (keycloak-benchmark's, see load/README.md).
pub mod load_data {
    /// Where seeded clients send the browser back to; `.invalid` never resolves (RFC 6761),
    /// and the load tool only reads the code from the `Location` header.
    pub const REDIRECT_URI: &str = "https://load.invalid/callback";
    pub const POST_LOGOUT_REDIRECT_URI: &str = "https://load.invalid/";

    pub fn username(k: u32) -> String {
        format!("user-{k}")
    }
    pub fn password(k: u32) -> String {
        format!("user-{k}-password")
    }
    pub fn email(k: u32) -> String {
        format!("user-{k}@load.example")
    }
    pub fn client_id(k: u32) -> String {
        format!("client-{k}")
    }
    /// keycloak-benchmark's `client-K-secret` plus a suffix: vigil refuses secrets shorter
    /// than 32 characters.
    pub fn client_secret(k: u32) -> String {
        format!("client-{k}-secret-vigil-load-testing")
    }
}

/// The TOTP secret `vigil seed --totp` gives `username`: the first 20 bytes of
/// SHA-256("vigil-load-totp:" + username). Public by construction, so that `vigil-load` (which
/// implements the same function) can compute codes; only for load-test data.
pub fn seed_totp_secret(username: &str) -> Vec<u8> {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("vigil-load-totp:{username}").as_bytes());
    digest[..20].to_vec()
}

/// What one seeded user needed.
enum Seeded {
    Created,
    Existed,
}

/// `vigil seed`: users and clients through the same flows as `user add` / `client add` (so the
/// audit log records each), hashing on every core: up to two accounts per core are in flight,
/// and the hasher runs one argon2 per core on the blocking pool.
async fn seed(svc: Services, a: SeedArgs) -> Result<(), Failure> {
    let now = svc.clock.now();
    let existing_users: std::collections::HashSet<String> = accounts::list(&svc)
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    let existing_clients: std::collections::HashSet<String> = clients::list(&svc)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();

    let mut created_clients = 0u32;
    for k in 1..=a.clients {
        let id = load_data::client_id(k);
        if existing_clients.contains(&id) {
            continue;
        }
        clients::register(
            &svc,
            &cli_actor(),
            now,
            NewClient {
                id,
                name: Some(format!("Load client {k}")),
                redirect_uris: vec![load_data::REDIRECT_URI.into()],
                post_logout_redirect_uris: vec![load_data::POST_LOGOUT_REDIRECT_URI.into()],
                public: false,
                first_party: true,
                grants: crate::flow::clients::GRANTS
                    .iter()
                    .map(|g| (*g).to_owned())
                    .collect(),
                secret: Some(SecretString::from(load_data::client_secret(k))),
                backchannel_logout_uri: None,
                id_token_alg: a.id_token_alg.clone(),
                access_token_alg: a.access_token_alg.clone(),
                pkce_optional: false,
                min_acr: None,
                require_role: false,
                privileged_max_age_secs: None,
                provisioning: false,
            },
        )
        .await?;
        created_clients += 1;
    }

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let in_flight = 2 * cores;
    let started = std::time::Instant::now();
    let existing_users = std::sync::Arc::new(existing_users);
    let mut jobs = tokio::task::JoinSet::new();
    let (mut created, mut skipped, mut totp_added) = (0u32, 0u32, 0u32);
    let mut next = 1u32;
    while next <= a.users || !jobs.is_empty() {
        while next <= a.users && jobs.len() < in_flight {
            let (svc, existing, k, totp) = (svc.clone(), existing_users.clone(), next, a.totp);
            jobs.spawn_local(async move { seed_user(&svc, now, &existing, k, totp).await });
            next += 1;
        }
        let Some(done) = jobs.join_next().await else {
            break;
        };
        let (seeded, totp) =
            done.map_err(|e| Failure::op(format!("a seeding task failed: {e}")))??;
        match seeded {
            Seeded::Created => created += 1,
            Seeded::Existed => skipped += 1,
        }
        totp_added += u32::from(totp);
        let n = created + skipped;
        if n % 1000 == 0 && n < a.users {
            eprintln!(
                "seeded {n}/{} users ({:.0} s)",
                a.users,
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "users: {created} created, {skipped} already there{}; clients: {created_clients} created, {} already there ({:.1} s)",
        if a.totp {
            format!(", {totp_added} TOTP factors added")
        } else {
            String::new()
        },
        a.clients - created_clients,
        started.elapsed().as_secs_f64()
    );
    println!("(Seeded credentials are fixed and public: never seed a real deployment.)");
    Ok(())
}

/// Create `user-k` unless it exists; with `totp`, give it the derived TOTP factor unless it
/// has one. Returns whether the account was created and whether a factor was added.
async fn seed_user(
    svc: &Services,
    now: Timestamp,
    existing: &std::collections::HashSet<String>,
    k: u32,
    totp: bool,
) -> Result<(Seeded, bool), Failure> {
    let username = load_data::username(k);
    let seeded = if existing.contains(&username) {
        Seeded::Existed
    } else {
        match accounts::create(
            svc,
            &cli_actor(),
            now,
            NewAccount {
                username: username.clone(),
                email: load_data::email(k),
                name: format!("Load User {k}"),
                is_admin: false,
                password: SecretString::from(load_data::password(k)),
            },
        )
        .await
        {
            Ok(_) => Seeded::Created,
            // Another `vigil seed` got there first: the account is what we wanted.
            Err(FlowError::Conflict(_)) => Seeded::Existed,
            Err(e) => return Err(e.into()),
        }
    };
    let added = if totp {
        seed_totp(svc, now, &username).await?
    } else {
        false
    };
    Ok((seeded, added))
}

/// `flow::factors::totp_provision` with the derived secret instead of a random one: the same
/// store call and the same audit entry. Keeps a factor the user already has.
async fn seed_totp(svc: &Services, now: Timestamp, username: &str) -> Result<bool, Failure> {
    let user = accounts::find(svc, username).await?;
    let uid = user.id.clone();
    let has = svc
        .db
        .run(move |c| crate::store::factors::totp_any_for(c, &uid))
        .await
        .map_err(|e| Failure::op(e.to_string()))?;
    if has.is_some() {
        return Ok(false);
    }
    let secret = seed_totp_secret(&user.username);
    let svc2 = svc.clone();
    // Write first, then the audit entry: the transaction takes SQLite's write lock at its first
    // statement, so concurrent seeders queue instead of failing a read-to-write upgrade.
    svc.db
        .run(move |c| {
            crate::store::transaction(c, |c| {
                crate::flow::mfa::store_totp(&svc2, c, &user.id, &secret, None, now)
                    .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
                svc2.auditor.record(
                    c,
                    now,
                    cli_actor()
                        .event("factor.enrolled")
                        .target(user.id.clone())
                        .details(serde_json::json!({ "factor": "totp", "seeded": true })),
                )
            })
        })
        .await
        .map_err(|e| Failure::op(e.to_string()))?;
    Ok(true)
}

async fn user(svc: Services, c: UserCommand) -> Result<(), Failure> {
    let now = svc.clock.now();
    match c {
        UserCommand::Add {
            username,
            email,
            name,
            admin,
            password_stdin,
        } => {
            if !password_stdin {
                return Err(Failure::usage(
                    "give the password on stdin with --password-stdin",
                ));
            }
            let password = read_secret("password")?;
            let u = accounts::create(
                &svc,
                &cli_actor(),
                now,
                NewAccount {
                    username,
                    email,
                    name,
                    is_admin: admin,
                    password,
                },
            )
            .await?;
            println!("created user {} ({})", u.username, u.id);
        }
        UserCommand::List => {
            println!(
                "{:<24} {:<32} {:<6} {:<8} CREATED",
                "USERNAME", "EMAIL", "ADMIN", "STATUS"
            );
            let users = accounts::list(&svc).await?;
            let staff =
                access::console_holders(&svc, users.iter().map(|u| u.id.clone()).collect()).await?;
            for u in users {
                let admin = staff.iter().any(|(id, r)| *id == u.id && r == "admin");
                println!(
                    "{:<24} {:<32} {:<6} {:<8} {}",
                    u.username,
                    u.email,
                    if admin { "yes" } else { "no" },
                    if u.disabled { "disabled" } else { "active" },
                    Timestamp(u.created_at).display()
                );
            }
        }
        UserCommand::Disable { username } => {
            accounts::set_disabled(&svc, &cli_actor(), now, &username, true).await?;
            println!("disabled {username}; its sessions have ended");
        }
        UserCommand::TotpEnroll { username } => {
            let user = accounts::find(&svc, &username).await?;
            let uri = crate::flow::factors::totp_provision(&svc, now, &user).await?;
            println!("{uri}");
        }
        UserCommand::Enable { username } => {
            accounts::set_disabled(&svc, &cli_actor(), now, &username, false).await?;
            println!("enabled {username}");
        }
        UserCommand::SetPassword {
            username,
            password_stdin,
        } => {
            if !password_stdin {
                return Err(Failure::usage(
                    "give the password on stdin with --password-stdin",
                ));
            }
            let password = read_secret("password")?;
            accounts::set_password(&svc, &cli_actor(), now, &username, password).await?;
            println!("password of {username} changed; its sessions have ended");
        }
    }
    Ok(())
}

async fn client(svc: Services, c: ClientCommand) -> Result<(), Failure> {
    let now = svc.clock.now();
    match c {
        ClientCommand::Add(add) => {
            let ClientAdd {
                client_id,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                first_party,
                grants,
                name,
                secret_stdin,
                backchannel_logout_uri,
                id_token_alg,
                access_token_alg,
                pkce_optional,
                min_acr,
                require_role,
                privileged_max_age,
                provisioning,
            } = *add;
            let secret = if secret_stdin {
                Some(read_secret("client secret")?)
            } else {
                None
            };
            let r = clients::register(
                &svc,
                &cli_actor(),
                now,
                NewClient {
                    id: client_id,
                    name,
                    redirect_uris,
                    post_logout_redirect_uris,
                    public,
                    first_party,
                    grants,
                    secret,
                    backchannel_logout_uri,
                    id_token_alg,
                    access_token_alg,
                    pkce_optional,
                    min_acr,
                    require_role,
                    privileged_max_age_secs: privileged_max_age,
                    provisioning,
                },
            )
            .await?;
            println!("created client {}", r.client.id);
            if let Some(s) = r.generated_secret {
                println!(
                    "client secret (shown once, store it now): {}",
                    s.expose_secret()
                );
            }
        }
        ClientCommand::List => {
            println!(
                "{:<24} {:<12} {:<11} {:<45} REDIRECT URIS",
                "CLIENT ID", "TYPE", "FIRST-PARTY", "GRANTS"
            );
            for cl in clients::list(&svc).await? {
                println!(
                    "{:<24} {:<12} {:<11} {:<45} {}",
                    cl.id,
                    if cl.public { "public" } else { "confidential" },
                    if cl.first_party { "yes" } else { "no" },
                    cl.grant_types.join(","),
                    cl.redirect_uris.join(" ")
                );
            }
        }
        ClientCommand::Remove { client_id } => {
            clients::remove(&svc, &cli_actor(), now, &client_id).await?;
            println!("removed client {client_id}");
        }
    }
    Ok(())
}

async fn group(svc: Services, c: GroupCommand) -> Result<(), Failure> {
    let now = svc.clock.now();
    let actor = cli_actor();
    match c {
        GroupCommand::Add { name, description } => {
            let g = access::create_group(
                &svc,
                &actor,
                now,
                &name,
                description.as_deref().unwrap_or(""),
            )
            .await?;
            println!("created group {}", g.name);
        }
        GroupCommand::List => {
            println!("{:<32} {:>8}  DESCRIPTION", "GROUP", "MEMBERS");
            for (g, n) in access::list_groups(&svc).await? {
                println!("{:<32} {n:>8}  {}", g.name, g.description);
            }
        }
        GroupCommand::Remove { name } => {
            access::remove_group(&svc, &actor, now, &name).await?;
            println!("removed group {name}");
        }
        GroupCommand::AddMember { group, username } => {
            if access::set_member(&svc, &actor, now, &group, &username, true).await? {
                println!("{username} is now a member of {group}");
            } else {
                println!("{username} already was a member of {group}");
            }
        }
        GroupCommand::RemoveMember { group, username } => {
            if access::set_member(&svc, &actor, now, &group, &username, false).await? {
                println!("{username} is no longer a member of {group}");
            } else {
                println!("{username} was not a member of {group}");
            }
        }
    }
    Ok(())
}

fn grantee(g: crate::cli::Grantee) -> Result<(access::Grantee, String), Failure> {
    match (g.user, g.group) {
        (Some(u), None) => Ok((access::Grantee::User(u.clone()), format!("user {u}"))),
        (None, Some(g)) => Ok((access::Grantee::Group(g.clone()), format!("group {g}"))),
        _ => Err(Failure::usage("give exactly one of --user and --group")),
    }
}

async fn role(svc: Services, c: RoleCommand) -> Result<(), Failure> {
    let now = svc.clock.now();
    let actor = cli_actor();
    match c {
        RoleCommand::Add {
            client_id,
            role,
            privileged,
            description,
        } => {
            let r = access::create_role(
                &svc,
                &actor,
                now,
                &client_id,
                &role,
                privileged,
                description.as_deref().unwrap_or(""),
            )
            .await?;
            println!(
                "created {}role {} of client {}",
                if r.privileged { "privileged " } else { "" },
                r.name,
                r.client_id
            );
        }
        RoleCommand::Remove { client_id, role } => {
            access::remove_role(&svc, &actor, now, &client_id, &role).await?;
            println!("removed role {role} of client {client_id}");
        }
        RoleCommand::Grant {
            client_id,
            role,
            to,
        } => {
            let (to, who) = grantee(to)?;
            if access::set_grant(&svc, &actor, now, &client_id, &role, to, true).await? {
                println!("granted {client_id}/{role} to {who}");
            } else {
                println!("{who} already held {client_id}/{role}");
            }
        }
        RoleCommand::Revoke {
            client_id,
            role,
            to,
        } => {
            let (to, who) = grantee(to)?;
            if access::set_grant(&svc, &actor, now, &client_id, &role, to, false).await? {
                println!("revoked {client_id}/{role} from {who}");
            } else {
                println!("{who} did not hold {client_id}/{role}");
            }
        }
        RoleCommand::List { client_id } => {
            let clients: Vec<String> = match client_id {
                Some(c) => vec![c],
                None => {
                    let mut ids: Vec<String> = access::list_roles(&svc, None)
                        .await?
                        .into_iter()
                        .map(|r| r.client_id)
                        .collect();
                    ids.dedup();
                    ids
                }
            };
            println!(
                "{:<24} {:<24} {:<10} HOLDERS",
                "CLIENT", "ROLE", "PRIVILEGED"
            );
            for cid in clients {
                for (r, holders) in access::client_roles(&svc, &cid).await? {
                    let names: Vec<String> = holders
                        .iter()
                        .map(|h| match h {
                            crate::store::access::Holder::User { username, .. } => username.clone(),
                            crate::store::access::Holder::Group { name, .. } => {
                                format!("group:{name}")
                            }
                        })
                        .collect();
                    println!(
                        "{:<24} {:<24} {:<10} {}",
                        r.client_id,
                        r.name,
                        if r.privileged { "yes" } else { "no" },
                        names.join(", ")
                    );
                }
            }
        }
    }
    Ok(())
}

async fn keys(svc: Services, c: KeysCommand) -> Result<(), Failure> {
    let now = svc.clock.now();
    match c {
        KeysCommand::Rotate => {
            let created = crate::flow::keys::rotate(&svc, &cli_actor(), now)
                .await
                .map_err(|e| Failure::op(e.to_string()))?;
            for k in created {
                println!("new active {} key {}", k.alg, k.id);
            }
            println!(
                "previous keys stay published for {} s so tokens they signed still verify",
                crate::oidc::KEY_GRACE_SECS
            );
        }
        KeysCommand::List => {
            let rows = svc
                .db
                .run(crate::store::keys::all)
                .await
                .map_err(|e| Failure::op(e.to_string()))?;
            println!(
                "{:<38} {:<6} {:<9} {:<22} PUBLISHED UNTIL",
                "KID", "ALG", "STATE", "CREATED"
            );
            for r in rows {
                let state = crate::flow::keys::state(&r, now);
                println!(
                    "{:<38} {:<6} {:<9} {:<22} {}",
                    r.id,
                    r.alg,
                    state,
                    Timestamp(r.created_at).display(),
                    r.publish_until
                        .map(|t| Timestamp(t).display())
                        .unwrap_or_else(|| "—".into())
                );
            }
        }
    }
    Ok(())
}

async fn audit(svc: Services, c: AuditCommand) -> Result<(), Failure> {
    match c {
        AuditCommand::Verify { anchors } => {
            let anchors = anchors
                .iter()
                .map(|a| {
                    a.parse::<Anchor>()
                        .map_err(|e| Failure::usage(format!("--anchor {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let auditor = svc.auditor.clone();
            let verdict = svc
                .db
                .run(move |conn| auditor.verify_anchored(conn, &anchors))
                .await
                .map_err(|e| Failure::op(e.to_string()))?;
            match verdict {
                Verdict::Ok { entries, head } => {
                    // "ok N entries" first (the contract); the head after it, to anchor.
                    println!("ok {entries} entries, head {entries}:{head}");
                    Ok(())
                }
                Verdict::Broken { seq, reason } => {
                    Err(Failure::op(format!("broken at entry {seq}: {reason}")))
                }
            }
        }
        AuditCommand::Head => {
            let head = svc
                .db
                .run(crate::store::audit::head)
                .await
                .map_err(|e| Failure::op(e.to_string()))?
                .ok_or_else(|| Failure::op("the audit head row is missing"))?;
            println!("{}:{}", head.0, head.1);
            Ok(())
        }
        AuditCommand::Export { since } => {
            let since = match since {
                None => 0,
                Some(s) => parse_date(&s).ok_or_else(|| {
                    Failure::usage(format!(
                        "--since `{s}` is not a date (YYYY-MM-DD or RFC 3339)"
                    ))
                })?,
            };
            let mut after = 0i64;
            let stdout = std::io::stdout();
            loop {
                let page = svc
                    .db
                    .run(move |c| crate::store::audit::since(c, since, after, 1000))
                    .await
                    .map_err(|e| Failure::op(e.to_string()))?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                let mut out = stdout.lock();
                for row in page {
                    let line = serde_json::to_string(&ExportLine::from(row))
                        .map_err(|e| Failure::op(e.to_string()))?;
                    writeln!(out, "{line}").map_err(|e| Failure::op(e.to_string()))?;
                }
            }
            Ok(())
        }
        AuditCommand::PurgeIps { days } => {
            let days = match days {
                Some(d) => d,
                None if svc.settings.ip_retention_days == 0 => {
                    println!(
                        "raw IPs are kept forever (VIGIL_IP_RETENTION_DAYS=0); nothing purged"
                    );
                    return Ok(());
                }
                None => svc.settings.ip_retention_days,
            };
            let p = purge_ips(&svc, days, "cli")
                .await
                .map_err(|e| Failure::op(e.to_string()))?;
            println!(
                "cleared raw IPs older than {days} days: {} audit entries, {} sign-ins \
                 ({} risk feature records), {} failure counters deleted, {} ended sessions, \
                 {} expired step-ups deleted",
                p.audit_log,
                p.signins,
                p.signin_features,
                p.login_failures,
                p.sessions,
                p.mfa_flows
            );
            Ok(())
        }
    }
}

/// One purge of raw IPs older than `days` (see `Auditor::purge_ips`).
async fn purge_ips(
    svc: &Services,
    days: u32,
    actor: &'static str,
) -> Result<crate::store::retention::Purged, crate::store::StoreError> {
    let (auditor, now) = (svc.auditor.clone(), svc.clock.now());
    svc.db
        .run(move |conn| auditor.purge_ips(conn, now, days, actor))
        .await
}

/// `serve` and `demo` purge raw IPs every hour (first a minute after start), when retention is
/// on. A failure is logged and retried at the next tick; it never stops the server.
fn spawn_ip_retention(svc: &Services) {
    let days = svc.settings.ip_retention_days;
    if days == 0 {
        tracing::info!("IP retention off: raw IPs are kept forever");
        return;
    }
    let svc = svc.clone();
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut tick = tokio::time::interval_at(start, std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match purge_ips(&svc, days, "system").await {
                Ok(p) if p.total() > 0 => tracing::info!(
                    retention_days = days,
                    audit_log = p.audit_log,
                    signins = p.signins,
                    signin_features = p.signin_features,
                    login_failures = p.login_failures,
                    sessions = p.sessions,
                    mfa_flows = p.mfa_flows,
                    "old raw IPs purged"
                ),
                Ok(_) => tracing::debug!(retention_days = days, "no raw IPs old enough to purge"),
                Err(e) => tracing::warn!(error = %e, "IP purge failed; retrying in an hour"),
            }
        }
    });
}

/// `serve` and `demo` delete dead rows every hour (first a minute after start): expired
/// authorization requests and ceremony state, old codes and failure counters (see
/// `flow::housekeeping`). Always on: anonymous requests write these rows. Logged, not audited.
fn spawn_housekeeping(svc: &Services) {
    let svc = svc.clone();
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut tick = tokio::time::interval_at(start, std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = svc.clock.now();
            match crate::flow::housekeeping::sweep(&svc, now).await {
                Ok(s) if s.total() > 0 => tracing::info!(
                    authz_requests = s.authz_requests,
                    mfa_flows = s.mfa_flows,
                    auth_codes = s.auth_codes,
                    login_failures = s.login_failures,
                    "expired rows purged"
                ),
                Ok(_) => tracing::debug!("no expired rows to purge"),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed; retrying in an hour"),
            }
            // Access reviews past their deadline: undecided items get the campaign's default.
            match crate::flow::campaigns::close_overdue(&svc, now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(campaigns = n, "access reviews closed at their deadline"),
                Err(e) => {
                    tracing::warn!(error = %e, "closing overdue access reviews failed; retrying in an hour")
                }
            }
            // Sent mail and expired links hold addresses: gone after a week.
            match svc.db.run(move |c| crate::flow::mail::purge(c, now)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "old mail and expired links purged"),
                Err(e) => {
                    tracing::warn!(error = %e, "purging old mail failed; retrying in an hour")
                }
            }
            // Daily (VIGIL_ADMIN_DIGEST_HOURS) the administrators hear of high-risk events.
            match crate::flow::digest::send_if_due(&svc, now).await {
                Ok(crate::flow::digest::Digest::Sent(n)) => {
                    tracing::info!(admins = n, "high-risk digest queued")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the high-risk digest failed; retrying in an hour")
                }
            }
            // Quarterly (VIGIL_RISK_RETRAIN_DAYS) a fitted candidate model goes into shadow.
            match crate::flow::models::retrain_if_due(&svc, now).await {
                Ok(crate::flow::models::Retrained::NotDue) => {}
                Ok(crate::flow::models::Retrained::Proposed(name)) => {
                    tracing::info!(model = %name, "retraining put a fitted candidate model in shadow")
                }
                Ok(crate::flow::models::Retrained::Skipped(why)) => {
                    tracing::info!(reason = %why, "retraining skipped")
                }
                Err(e) => tracing::warn!(error = %e, "retraining failed; retrying in an hour"),
            }
        }
    });
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339, as unix microseconds.
fn parse_date(s: &str) -> Option<i64> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_micros());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_micros())
}

/// The model as the server configures it (flow::risk::RiskEngine): `base` with the
/// configured thresholds and travel speed.
fn risk_config(base: crate::risk::RiskConfig, settings: &Settings) -> crate::risk::RiskConfig {
    let mut cfg = base;
    cfg.thresholds.medium = settings.risk_threshold_medium;
    cfg.thresholds.high = settings.risk_threshold_high;
    cfg.rules.travel.max_speed_kmh = f64::from(settings.risk_travel_speed_kmh);
    cfg
}

/// A model version by name (`risk::config::VERSIONS`) or a JSON config file.
fn named_config(name: &str) -> Result<crate::risk::RiskConfig, Failure> {
    if let Some(cfg) = crate::risk::config::preset(name) {
        return Ok(cfg);
    }
    let text = std::fs::read_to_string(name).map_err(|e| {
        Failure::usage(format!(
            "{name}: neither a model version nor a readable config file ({e})"
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| Failure::usage(format!("{name}: {e}")))
}

/// `vigil risk export`: the labelled sign-in log, for `risk fit` and `risk compare`.
async fn risk_export(
    svc: Services,
    since: Option<&str>,
    out: &std::path::Path,
) -> Result<(), Failure> {
    let since = match since {
        Some(s) => parse_date(s)
            .ok_or_else(|| Failure::usage(format!("--since {s:?}: use YYYY-MM-DD or RFC 3339")))?,
        None => 0,
    };
    let file =
        std::fs::File::create(out).map_err(|e| Failure::op(format!("{}: {e}", out.display())))?;
    let mut w = std::io::BufWriter::new(file);
    let n = crate::flow::reports::export_labelled(&svc, since, &mut w).await?;
    w.flush()
        .map_err(|e| Failure::op(format!("{}: {e}", out.display())))?;
    println!(
        "wrote {}: {} legitimate, {} attacks, {} failed attempts; {} scored sign-ins left out (nobody judged them)",
        out.display(),
        n.legitimate,
        n.attacks,
        n.failed_attempts,
        n.unlabelled
    );
    Ok(())
}

/// `vigil risk import`: a log in the replay format becomes sign-in history.
async fn risk_import(
    svc: Services,
    input: &std::path::Path,
    create_users: bool,
    shift_to_now: bool,
) -> Result<(), Failure> {
    use crate::flow::history::{import_log, last_time};
    let open = || {
        std::fs::File::open(input)
            .map(std::io::BufReader::new)
            .map_err(|e| Failure::usage(format!("{}: {e}", input.display())))
    };
    let now = svc.clock.now();
    let shift = if shift_to_now {
        last_time(open()?).map_or(0, |t| now.micros() - t.micros())
    } else {
        0
    };
    let n = import_log(&svc, &cli_actor(), now, open()?, create_users, shift).await?;
    println!(
        "imported {} sign-ins and {} failed attempts ({} users created); left out: {} takeovers, {} rows of unknown users, {} malformed rows",
        n.signins, n.failures, n.users_created, n.takeovers_left_out, n.unknown_users_left_out, n.malformed
    );
    Ok(())
}

/// `vigil access report`: the findings for the live directory, as text or JSON lines.
async fn access_report(svc: Services, json: bool, unused_days: u32) -> Result<(), Failure> {
    let params = crate::access::Params {
        unused_days,
        ..Default::default()
    };
    let findings = access::least_privilege(&svc, svc.clock.now(), params).await?;
    let mut out = std::io::stdout().lock();
    let mut w = |line: String| writeln!(out, "{line}").map_err(|e| Failure::op(e.to_string()));
    if json {
        for f in &findings {
            w(serde_json::to_string(f).map_err(|e| Failure::op(e.to_string()))?)?;
        }
        return Ok(());
    }
    if findings.is_empty() {
        return w(
            "no findings: every direct grant was used within the window and no account is dormant"
                .into(),
        );
    }
    for f in &findings {
        let target = match (&f.username, &f.client_id, &f.role) {
            (Some(u), Some(c), Some(r)) => format!("{u} {c}/{r}"),
            (Some(u), _, _) => u.clone(),
            (None, Some(c), Some(r)) => format!("{c}/{r}"),
            _ => String::new(),
        };
        w(format!(
            "{:<16} {:<8} {target}: {}",
            f.kind.as_str(),
            f.action.as_str(),
            f.evidence
        ))?;
    }
    Ok(())
}

/// `vigil access synth` and `evaluate`: files only, no database.
fn access_offline(c: AccessCommand) -> Result<(), Failure> {
    use crate::access::synth;
    match c {
        AccessCommand::Synth { users, seed, out } => {
            let org = synth::synth(users, seed);
            let file = std::fs::File::create(&out)
                .map_err(|e| Failure::op(format!("{}: {e}", out.display())))?;
            serde_json::to_writer(std::io::BufWriter::new(file), &org)
                .map_err(|e| Failure::op(format!("{}: {e}", out.display())))?;
            println!(
                "wrote {} ({} users, {} grants, {} planted excess grants, {} dormant accounts)",
                out.display(),
                org.snapshot.accounts.len(),
                org.snapshot.grants.len(),
                org.truth.excess.len(),
                org.truth.dormant.len()
            );
            Ok(())
        }
        AccessCommand::Evaluate { input, json } => {
            let text = std::fs::read_to_string(&input)
                .map_err(|e| Failure::op(format!("{}: {e}", input.display())))?;
            let org: synth::Organisation = serde_json::from_str(&text)
                .map_err(|e| Failure::usage(format!("{}: {e}", input.display())))?;
            let e = synth::evaluate(&org, &crate::access::Params::default());
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&e).map_err(|e| Failure::op(e.to_string()))?
                );
            } else {
                println!("users {}, direct grants {}", e.users, e.direct_grants);
                println!(
                    "remove:   {} recommended, {} of {} planted excess found; precision {:.3}, recall {:.3}",
                    e.remove_recommended, e.remove_correct, e.planted_excess, e.remove_precision, e.remove_recall
                );
                println!(
                    "dormant:  {} found, {} planted; precision {:.3}, recall {:.3}",
                    e.dormant_found, e.planted_dormant, e.dormant_precision, e.dormant_recall
                );
                println!(
                    "roles:    {} candidate roles replace {} of {} direct grants ({:.1} %)",
                    e.candidate_roles,
                    e.direct_grants_replaced,
                    e.direct_grants,
                    100.0 * e.direct_grants_replaced as f64 / e.direct_grants.max(1) as f64
                );
                println!(
                    "kept:     {} idle grants most peers hold (periodic)",
                    e.kept_as_periodic
                );
            }
            Ok(())
        }
        AccessCommand::Report { .. } => Err(Failure::usage("report needs the database")),
    }
}

/// `vigil risk …`: pure computations on files, no database and no server state.
fn risk(c: RiskCommand, settings: &Settings) -> Result<(), Failure> {
    use crate::risk::replay::{replay, table, ReplayOptions};
    match c {
        RiskCommand::Replay {
            input,
            json,
            no_inject,
            skip_malformed,
            scores_out,
            seed,
        } => {
            let cfg = risk_config(crate::risk::RiskConfig::default(), settings);
            let file = std::fs::File::open(&input)
                .map_err(|e| Failure::op(format!("{}: {e}", input.display())))?;
            let mut out = match &scores_out {
                Some(p) => Some(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .map_err(|e| Failure::op(format!("{}: {e}", p.display())))?,
                )),
                None => None,
            };
            let opts = ReplayOptions {
                inject: !no_inject,
                skip_malformed,
                seed,
                failure_window_secs: settings.throttle.window_secs,
            };
            let report = replay(
                std::io::BufReader::new(file),
                &opts,
                &cfg,
                &settings.risk_policy,
                out.as_mut().map(|w| w as &mut dyn Write),
            )
            .map_err(|e| Failure::op(format!("{}: {e}", input.display())))?;
            if let Some(mut w) = out {
                w.flush()
                    .map_err(|e| Failure::op(format!("--scores-out: {e}")))?;
            }
            if json {
                println!("{report}");
            } else {
                print!("{}", table(&report));
            }
            Ok(())
        }
        RiskCommand::Compare {
            input,
            candidate,
            previous,
            json,
            skip_malformed,
            seed,
        } => {
            use crate::risk::config::{previous_version, MODEL_CODE_VERSION};
            let cand_name = candidate.unwrap_or_else(|| MODEL_CODE_VERSION.to_owned());
            let prev_name = match previous {
                Some(p) => p,
                None => previous_version(&cand_name)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Failure::usage(format!("{cand_name}: no previous version; give --previous"))
                    })?,
            };
            let opts = ReplayOptions {
                inject: true,
                skip_malformed,
                seed,
                failure_window_secs: settings.throttle.window_secs,
            };
            let mut reports = Vec::new();
            for name in [&prev_name, &cand_name] {
                let cfg = risk_config(named_config(name)?, settings);
                // A log that cannot be read is exit 2, so scripts can tell "could not judge"
                // from the gate's "do not ship" (exit 1).
                let file = std::fs::File::open(&input)
                    .map_err(|e| Failure::usage(format!("{}: {e}", input.display())))?;
                let mut r = replay(
                    std::io::BufReader::new(file),
                    &opts,
                    &cfg,
                    &settings.risk_policy,
                    None,
                )
                .map_err(|e| Failure::usage(format!("{}: {e}", input.display())))?;
                r["model_name"] = serde_json::json!(name);
                reports.push(r);
            }
            let checks = crate::risk::gate::gate(&reports[0], &reports[1]);
            let ship = checks.iter().all(|c| c.pass);
            if json {
                let mut v = crate::risk::gate::verdict_json(&checks);
                v["previous"] = reports[0].clone();
                v["candidate"] = reports[1].clone();
                println!("{v}");
            } else {
                for (label, r) in [("previous", &reports[0]), ("candidate", &reports[1])] {
                    println!("== {label}: {}", r["model_name"].as_str().unwrap_or(""));
                    print!("{}", table(r));
                }
                print!("{}", crate::risk::gate::verdict_table(&checks));
            }
            if ship {
                Ok(())
            } else {
                Err(Failure::op(format!(
                    "{cand_name} does not beat {prev_name} on {}: do not ship it",
                    input.display()
                )))
            }
        }
        RiskCommand::Fit {
            input,
            from,
            calibrate_to,
            l2,
            chains,
            skip_malformed,
            seed,
        } => {
            let name = from.unwrap_or_else(|| crate::risk::MODEL_CODE_VERSION.to_owned());
            let cfg = risk_config(named_config(&name)?, settings);
            let open = || {
                std::fs::File::open(&input)
                    .map(std::io::BufReader::new)
                    .map_err(|e| crate::risk::replay::ReplayError::Io(e.to_string()))
            };
            let opts = ReplayOptions {
                inject: true,
                skip_malformed,
                seed,
                failure_window_secs: settings.throttle.window_secs,
            };
            let friction = match &calibrate_to {
                Some(n) => risk_config(named_config(n)?, settings),
                None => cfg,
            };
            let r = crate::risk::fit::fit(
                open,
                &opts,
                &cfg,
                &friction,
                &settings.risk_policy,
                l2,
                if chains {
                    crate::risk::fit::Shape::Chains
                } else {
                    crate::risk::fit::Shape::Levels
                },
            )
            .map_err(|e| Failure::op(format!("{}: {e}", input.display())))?;
            eprintln!(
                "fitted on {} events ({} attacks), l2 {l2}: log loss {:.4}, weights {:?}, intercept {:.3}",
                r.samples, r.attacks, r.fit.loss, r.fit.weights, r.fit.intercept
            );
            let text =
                serde_json::to_string_pretty(&r.config).map_err(|e| Failure::op(e.to_string()))?;
            println!("{text}");
            Ok(())
        }
        RiskCommand::Synth { users, seed, out } => {
            let file = std::fs::File::create(&out)
                .map_err(|e| Failure::op(format!("{}: {e}", out.display())))?;
            let mut w = std::io::BufWriter::new(file);
            crate::risk::synth::synth(users, seed, &mut w)
                .and_then(|()| w.flush())
                .map_err(|e| Failure::op(format!("{}: {e}", out.display())))
        }
        RiskCommand::Export { .. } | RiskCommand::Import { .. } => {
            Err(Failure::usage("this command needs the database"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_totp_secret_is_pinned() {
        // load/src/data.rs pins the same vector: the two must derive the same secret.
        assert_eq!(
            hex::encode(seed_totp_secret("user-1")),
            "339b35ecc4e5e0a1177fdc8565e3855771d59a58"
        );
        assert_eq!(load_data::password(3), "user-3-password");
        assert!(load_data::client_secret(1).len() >= 32);
    }
}
