//! The command line, run as the real binary: every verb, its happy path, its errors, exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::helpers::{Backend, TestDb};

struct Cli {
    db: TestDb,
}

impl Cli {
    fn new(b: Backend) -> Option<Cli> {
        Some(Cli {
            db: TestDb::new(b)?,
        })
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_with_env(
            args,
            stdin,
            &[("VIGIL_DATABASE_URL", &self.db.url_string())],
        )
    }
}

pub fn run_with_env(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.args(args)
        .env_remove("VIGIL_CONFIG")
        .env("VIGIL_ARGON2_MEMORY_KIB", "1024")
        .env("VIGIL_ARGON2_ITERATIONS", "1")
        .env("VIGIL_GEOIP_CITY", "")
        .env("VIGIL_GEOIP_ASN", "")
        .env("VIGIL_MASTER_KEY", crate::helpers::TEST_MASTER_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run vigil");
    if let Some(input) = stdin {
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    if o.status.code().is_none() {
        use std::os::unix::process::ExitStatusExt;
        eprintln!(
            "vigil {args:?} killed by signal {:?}; stderr: {}",
            o.status.signal(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    o
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn users_verbs(b: Backend) {
    let Some(cli) = Cli::new(b) else { return };
    let ok = cli.run(
        &[
            "user",
            "add",
            "Alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice A",
            "--password-stdin",
        ],
        Some("correct horse battery staple\n"),
    );
    assert!(ok.status.success(), "{}", err(&ok));
    assert!(out(&ok).contains("created user alice"));

    let dup = cli.run(
        &[
            "user",
            "add",
            "alice",
            "--email",
            "a2@example.com",
            "--password-stdin",
        ],
        Some("another fine passphrase\n"),
    );
    assert_eq!(dup.status.code(), Some(1));
    assert!(err(&dup).contains("already exists"), "{}", err(&dup));

    let weak = cli.run(
        &[
            "user",
            "add",
            "bob",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        Some("password1\n"),
    );
    assert_eq!(weak.status.code(), Some(1));
    assert!(err(&weak).contains("commonly used"), "{}", err(&weak));

    let short = cli.run(
        &[
            "user",
            "add",
            "bob",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        Some("k7#q\n"),
    );
    assert_eq!(short.status.code(), Some(1));
    assert!(err(&short).contains("too short"), "{}", err(&short));

    let no_stdin_flag = cli.run(&["user", "add", "bob", "--email", "bob@example.com"], None);
    assert_eq!(no_stdin_flag.status.code(), Some(2));
    assert!(err(&no_stdin_flag).contains("--password-stdin"));

    let bad_email = cli.run(
        &["user", "add", "bob", "--email", "bob", "--password-stdin"],
        Some("correct horse battery staple\n"),
    );
    assert_eq!(bad_email.status.code(), Some(1));
    assert!(err(&bad_email).contains("not an e-mail address"));

    let list = cli.run(&["user", "list"], None);
    assert!(list.status.success());
    assert!(
        out(&list).contains("alice")
            && out(&list).contains("alice@example.com")
            && out(&list).contains("active")
    );

    let dis = cli.run(&["user", "disable", "alice"], None);
    assert!(dis.status.success(), "{}", err(&dis));
    assert!(out(&cli.run(&["user", "list"], None)).contains("disabled"));
    assert!(cli.run(&["user", "enable", "alice"], None).status.success());

    let unknown = cli.run(&["user", "disable", "nobody"], None);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        err(&unknown).contains("user `nobody` not found"),
        "{}",
        err(&unknown)
    );

    let setpw = cli.run(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("a whole new passphrase\n"),
    );
    assert!(setpw.status.success(), "{}", err(&setpw));
    let setweak = cli.run(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("qwerty123\n"),
    );
    assert_eq!(setweak.status.code(), Some(1));
    let setunknown = cli.run(
        &["user", "set-password", "nobody", "--password-stdin"],
        Some("a whole new passphrase\n"),
    );
    assert_eq!(setunknown.status.code(), Some(1));
}

fn clients_verbs(b: Backend) {
    let Some(cli) = Cli::new(b) else { return };
    let add = cli.run(
        &[
            "client",
            "add",
            "shop",
            "--redirect-uri",
            "https://shop.example.com/cb",
            "--name",
            "Shop",
        ],
        None,
    );
    assert!(add.status.success(), "{}", err(&add));
    let text = out(&add);
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("client secret (shown once, store it now): "))
        .expect("secret printed");
    assert!(secret.len() >= 43, "256-bit secret: {secret}");

    let public = cli.run(
        &[
            "client",
            "add",
            "spa",
            "--public",
            "--first-party",
            "--redirect-uri",
            "http://localhost:3000/cb",
        ],
        None,
    );
    assert!(public.status.success(), "{}", err(&public));
    assert!(!out(&public).contains("secret"));

    let chosen = cli.run(
        &[
            "client",
            "add",
            "api",
            "--grant",
            "client_credentials",
            "--secret-stdin",
        ],
        Some("an-operator-chosen-secret-of-sufficient-length\n"),
    );
    assert!(chosen.status.success(), "{}", err(&chosen));
    assert!(!out(&chosen).contains("an-operator-chosen"));

    for (uri, why) in [
        ("http://shop.example.com/cb", "https"),
        ("https://shop.example.com/cb#frag", "fragment"),
        ("/relative", "absolute"),
    ] {
        let bad = cli.run(&["client", "add", "bad", "--redirect-uri", uri], None);
        assert_eq!(bad.status.code(), Some(1), "{uri}");
        assert!(err(&bad).contains(why), "{uri}: {}", err(&bad));
    }
    // The access-token algorithm is one of the three the keys support; a typo is refused with
    // the choices, nothing is created.
    let alg = cli.run(
        &[
            "client",
            "add",
            "fast",
            "--grant",
            "client_credentials",
            "--access-token-alg",
            "ES256",
        ],
        None,
    );
    assert!(alg.status.success(), "{}", err(&alg));
    let typo = cli.run(
        &[
            "client",
            "add",
            "typo",
            "--grant",
            "client_credentials",
            "--access-token-alg",
            "HS256",
        ],
        None,
    );
    assert_eq!(typo.status.code(), Some(1), "{}", err(&typo));
    assert!(
        err(&typo).contains("RS256") && err(&typo).contains("EdDSA"),
        "{}",
        err(&typo)
    );
    assert!(!out(&cli.run(&["client", "list"], None)).contains("typo"));

    let pub_cc = cli.run(
        &[
            "client",
            "add",
            "bad",
            "--public",
            "--grant",
            "client_credentials",
        ],
        None,
    );
    assert_eq!(pub_cc.status.code(), Some(1));

    let dup = cli.run(
        &[
            "client",
            "add",
            "shop",
            "--redirect-uri",
            "https://shop.example.com/cb",
        ],
        None,
    );
    assert_eq!(dup.status.code(), Some(1));
    assert!(err(&dup).contains("already exists"));

    let list = out(&cli.run(&["client", "list"], None));
    assert!(
        list.contains("shop")
            && list.contains("spa")
            && list.contains("public")
            && list.contains("https://shop.example.com/cb")
    );
    assert!(cli
        .run(&["client", "remove", "shop"], None)
        .status
        .success());
    assert!(!out(&cli.run(&["client", "list"], None)).contains("shop.example.com"));
    let gone = cli.run(&["client", "remove", "shop"], None);
    assert_eq!(gone.status.code(), Some(1));
    assert!(err(&gone).contains("not found"));
}

fn migrate_and_audit(b: Backend) {
    let Some(cli) = Cli::new(b) else { return };
    let first = cli.run(&["migrate"], None);
    assert!(first.status.success(), "{}", err(&first));
    let second = cli.run(&["migrate"], None);
    assert!(
        second.status.success(),
        "migrate is idempotent: {}",
        err(&second)
    );
    cli.run(
        &[
            "user",
            "add",
            "zed",
            "--email",
            "zed@example.com",
            "--password-stdin",
        ],
        Some("correct horse battery staple\n"),
    );
    let verify = cli.run(&["audit", "verify"], None);
    assert!(verify.status.success(), "{}", err(&verify));
    assert!(out(&verify).starts_with("ok 1 entries"), "{}", out(&verify));
    let export = cli.run(&["audit", "export", "--since", "2000-01-01"], None);
    assert!(export.status.success());
    let line: serde_json::Value =
        serde_json::from_str(out(&export).lines().next().unwrap()).unwrap();
    assert_eq!(line["action"], "user.created");
}

crate::sync_on_both_backends!(user_verbs, users_verbs);
crate::sync_on_both_backends!(client_verbs, clients_verbs);
crate::sync_on_both_backends!(migrate_audit, migrate_and_audit);

#[test]
fn bad_configuration_exits_2_with_one_line() {
    for (key, value, expect) in [
        ("VIGIL_ISSUER", "not a url", "VIGIL_ISSUER"),
        (
            "VIGIL_TRUSTED_PROXIES",
            "10.0.0.0/33",
            "VIGIL_TRUSTED_PROXIES",
        ),
        (
            "VIGIL_DATABASE_URL",
            "mysql://localhost/x",
            "VIGIL_DATABASE_URL",
        ),
        (
            "VIGIL_GEOIP_CITY",
            "/nonexistent/city.mmdb",
            "VIGIL_GEOIP_CITY",
        ),
        ("VIGIL_BIND", "localhost", "VIGIL_BIND"),
    ] {
        let o = run_with_env(&["migrate"], None, &[(key, value)]);
        assert_eq!(o.status.code(), Some(2), "{key}={value}");
        let e = err(&o);
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
        assert!(e.contains(expect), "{e}");
        assert!(!e.contains("panicked") && !e.contains("backtrace"), "{e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vigil.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:8080\"\nfavourite_colour = \"blue\"\n",
    )
    .unwrap();
    let o = run_with_env(
        &["migrate"],
        None,
        &[("VIGIL_CONFIG", file.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("favourite_colour") && err(&o).contains("unknown key"),
        "{}",
        err(&o)
    );
}

/// Start `vigil serve` on the SQLite file `vigil.db` in `dir` with `env`, wait until it
/// answers, run `during` with its base URL, stop it with `signal`; its stderr.
fn serve_in(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    signal: &str,
    during: impl FnOnce(&str),
) -> String {
    let url = format!("sqlite://{}", dir.join("vigil.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.arg("serve")
        .env_remove("VIGIL_CONFIG")
        .env_remove("VIGIL_LOG_FORMAT")
        .env("VIGIL_DATABASE_URL", &url)
        .env("VIGIL_BIND", &bind)
        .env("VIGIL_ISSUER", format!("http://{bind}"))
        .env("VIGIL_GEOIP_CITY", "")
        .env("VIGIL_GEOIP_ASN", "")
        .env("VIGIL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !env.iter().any(|(k, _)| *k == "VIGIL_MASTER_KEY") {
        cmd.env("VIGIL_MASTER_KEY_FILE", dir.join("vigil.key"));
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let mut up = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if reqwest::blocking::get(format!("http://{bind}/healthz"))
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
    }
    if up {
        during(&format!("http://{bind}"));
    }
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(up, "vigil serve answered /healthz");
    assert!(o.status.success(), "a clean exit on {signal}");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// [`serve_in`] a new directory, doing nothing while it serves; stderr and the directory.
fn serve_briefly(env: &[(&str, &str)]) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let logs = serve_in(dir.path(), env, "-INT", |_| {});
    (logs, dir)
}

/// SIGTERM (what an orchestrator sends) stops vigil cleanly, and the access-token issuance log
/// — batched in memory for up to a second — is written before the process exits: a token
/// issued just before a rolling restart is still on record.
#[test]
fn a_graceful_stop_keeps_the_token_issuance_log() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    let secret = "an-operator-chosen-secret-of-sufficient-length";
    let add = run_with_env(
        &[
            "client",
            "add",
            "api",
            "--grant",
            "client_credentials",
            "--secret-stdin",
        ],
        Some(&format!("{secret}\n")),
        &[("VIGIL_DATABASE_URL", &url)],
    );
    assert!(add.status.success(), "{}", err(&add));
    let mut jti = String::new();
    serve_in(
        dir.path(),
        &[("VIGIL_MASTER_KEY", crate::helpers::TEST_MASTER_KEY)],
        "-TERM",
        |base| {
            let r = reqwest::blocking::Client::new()
                .post(format!("{base}/token"))
                .basic_auth("api", Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::OK);
            let body: serde_json::Value = r.json().unwrap();
            let claims = crate::oidc::payload(body["access_token"].as_str().unwrap());
            jti = claims["jti"].as_str().unwrap().to_owned();
        },
    );
    let db = vigil::store::Db::connect(&vigil::config::DatabaseUrl::Sqlite(
        dir.path().join("vigil.db"),
    ))
    .unwrap();
    let mut conn = db.get().unwrap();
    let row = vigil::store::tokens::find_access(&mut conn, &jti).unwrap();
    assert!(
        row.is_some(),
        "the token issued just before SIGTERM is logged"
    );
}

/// Logs written to a pipe carry no colour codes; `VIGIL_LOG_FORMAT=json` writes one JSON
/// object per line that a collector can parse; a format vigil does not know stops it with
/// one line naming the variable.
#[test]
fn logs_are_plain_in_a_pipe_and_json_on_request() {
    let (text, _dir) = serve_briefly(&[]);
    assert!(text.contains("vigil is serving"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI escapes in a pipe: {text:?}"
    );

    let (json, _dir) = serve_briefly(&[("VIGIL_LOG_FORMAT", "json")]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let serving = lines
        .iter()
        .find(|v| v["fields"]["message"] == "vigil is serving")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(serving["level"], "INFO");
    assert!(serving["timestamp"].is_string() && serving["fields"]["issuer"].is_string());

    let bad = run_with_env(&["user", "list"], None, &[("VIGIL_LOG_FORMAT", "xml")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        err(&bad).contains("VIGIL_LOG_FORMAT") && err(&bad).contains("json"),
        "{}",
        err(&bad)
    );
}

/// The SQLite database vigil creates holds password hashes and sealed secrets: its file (and
/// SQLite's write-ahead log beside it) is readable by vigil's user only, like the key file.
#[test]
fn the_sqlite_file_and_key_file_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_, dir) = serve_briefly(&[]);
    for name in ["vigil.db", "vigil.key"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
    for side in ["vigil.db-wal", "vigil.db-shm"] {
        if let Ok(m) = std::fs::metadata(dir.path().join(side)) {
            assert_eq!(m.permissions().mode() & 0o077, 0, "{side}");
        }
    }
}

#[test]
fn demo_seeds_once_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    for round in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("demo")
            .current_dir(dir.path())
            .env("VIGIL_DATABASE_URL", &url)
            .env("VIGIL_BIND", &bind)
            .env("VIGIL_GEOIP_CITY", "")
            .env("VIGIL_GEOIP_ASN", "")
            .env("VIGIL_ARGON2_MEMORY_KIB", "1024")
            .env("VIGIL_MASTER_KEY_FILE", dir.path().join("vigil.key"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The banner comes once the demo data (and its story) are seeded: wait for it.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut printed = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !printed.contains("demo-app") && std::time::Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
                printed.push_str(&line);
                printed.push('\n');
            }
        }
        let up = reqwest::blocking::get(format!("http://{bind}/healthz"))
            .is_ok_and(|r| r.status().is_success());
        // Ctrl-C stops it cleanly.
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        let _ = reader.join();
        while let Ok(line) = rx.try_recv() {
            printed.push_str(&line);
            printed.push('\n');
        }
        assert!(up, "round {round}: demo server answered /healthz");
        assert!(status.success(), "round {round}: clean exit on SIGINT");
        assert!(
            printed.contains("admin") && printed.contains("demo-app"),
            "{printed}"
        );
        // The story is told once: the first start seeds it, the second finds it.
        assert_eq!(
            printed.contains("a story to look at"),
            round == 0,
            "round {round}: {printed}"
        );
    }
    assert!(
        dir.path().join("vigil.key").exists(),
        "demo created its master key file"
    );
    let key_file = dir.path().join("vigil.key");
    let cli = run_with_env(
        &["user", "list"],
        None,
        &[
            ("VIGIL_DATABASE_URL", &url),
            ("VIGIL_MASTER_KEY_FILE", key_file.to_str().unwrap()),
        ],
    );
    let listed = out(&cli);
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("admin ")).count(),
        1,
        "no duplicate demo data: {listed}"
    );
}

/// `vigil backup --out FILE` while the server is serving: a private copy that is a working
/// vigil database (the user signs in on a server started on it) whose audit chain verifies; the
/// file is never overwritten; on PostgreSQL the verb points to pg_dump.
async fn backup_while_serving(b: Backend) {
    let Some(app) = crate::helpers::spawn_app(b).await else {
        return;
    };
    app.add_user("alice", false).await;
    assert_eq!(
        crate::oidc::location(&app.login("alice", crate::helpers::PASSWORD).await),
        "/account"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.db");
    let out_arg = file.to_str().unwrap().to_owned();
    let url = app._db.url_string();
    let env = [("VIGIL_DATABASE_URL", url.as_str())];
    let o = run_with_env(&["backup", "--out", &out_arg], None, &env);
    if b == Backend::Postgres {
        assert_eq!(o.status.code(), Some(2), "{}", err(&o));
        assert!(err(&o).contains("pg_dump"), "{}", err(&o));
        // The README's recipe: pg_dump while serving, pg_restore into a new database.
        let dump = dir.path().join("vigil.dump");
        let dumped = Command::new("pg_dump")
            .args(["--format=custom", "--no-owner", "--file"])
            .arg(&dump)
            .arg(&url)
            .output()
            .expect("pg_dump is installed beside PostgreSQL");
        assert!(dumped.status.success(), "{}", err(&dumped));
        let fresh = TestDb::new(Backend::Postgres).unwrap();
        let restored = Command::new("pg_restore")
            .args(["--no-owner", "--exit-on-error", "--dbname"])
            .arg(fresh.url_string())
            .arg(&dump)
            .output()
            .expect("pg_restore");
        assert!(restored.status.success(), "{}", err(&restored));
        let verify = run_with_env(
            &["audit", "verify"],
            None,
            &[("VIGIL_DATABASE_URL", fresh.url_string().as_str())],
        );
        assert!(verify.status.success(), "{}{}", out(&verify), err(&verify));
        let node = crate::helpers::spawn_app_on(fresh.url.clone(), &[]).await;
        assert_eq!(
            crate::oidc::location(&node.login("alice", crate::helpers::PASSWORD).await),
            "/account"
        );
        drop(node);
        return;
    }
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("backed up to"), "{}", out(&o));
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // The server carried on meanwhile; a second backup never overwrites the first.
    let account = app.http.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), reqwest::StatusCode::OK);
    let again = run_with_env(&["backup", "--out", &out_arg], None, &env);
    assert_eq!(again.status.code(), Some(1), "{}", err(&again));
    assert!(err(&again).contains("exists"), "{}", err(&again));

    // Restored: the chain verifies and the account signs in.
    let restored = format!("sqlite://{out_arg}");
    let verify = run_with_env(
        &["audit", "verify"],
        None,
        &[("VIGIL_DATABASE_URL", restored.as_str())],
    );
    assert!(verify.status.success(), "{}{}", out(&verify), err(&verify));
    let node =
        crate::helpers::spawn_app_on(vigil::config::DatabaseUrl::Sqlite(file.clone()), &[]).await;
    assert_eq!(
        crate::oidc::location(&node.login("alice", crate::helpers::PASSWORD).await),
        "/account"
    );
}
crate::on_both_backends!(backup, super::backup_while_serving);

/// `vigil seed` (the load-test data set): idempotent, audited, and its users sign in — with the
/// password `user-K-password`, then the TOTP code of the derived secret — through a seeded
/// client, whose secret then redeems the code; another seeded client gets client_credentials.
async fn seed_then_sign_in(b: Backend) {
    use base64::Engine as _;
    use sha2::Digest as _;
    use vigil::clock::Clock as _;

    use crate::helpers::csrf_in;
    use crate::oidc::{location, payload, query};

    let Some(cli) = Cli::new(b) else { return };
    let args = ["seed", "--users", "3", "--clients", "2", "--totp"];
    let first = cli.run(&args, None);
    assert!(first.status.success(), "{}", err(&first));
    assert!(
        out(&first).contains(
            "users: 3 created, 0 already there, 3 TOTP factors added; clients: 2 created, 0 already there"
        ),
        "{}",
        out(&first)
    );
    let again = cli.run(&args, None);
    assert!(again.status.success(), "{}", err(&again));
    assert!(
        out(&again).contains(
            "users: 0 created, 3 already there, 0 TOTP factors added; clients: 0 created, 2 already there"
        ),
        "idempotent: {}",
        out(&again)
    );
    let list = out(&cli.run(&["user", "list"], None));
    assert!(list.contains("user-3@load.example"), "{list}");
    let verify = cli.run(&["audit", "verify"], None);
    assert!(
        out(&verify).starts_with("ok 8 entries"),
        "3 users, 3 factors, 2 clients audited: {}",
        out(&verify)
    );

    // Serve the seeded database. Every sign-in with a second factor is asked for it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let settings = crate::helpers::test_settings(&cli.db, port, crate::helpers::ALWAYS_STEP_UP);
    let svc = vigil::flow::Services::start(settings, None).unwrap();
    let state = vigil::app::build_state(svc.clone()).unwrap();
    actix_web::rt::spawn(vigil::app::run(state, listener, None, Some(1)).unwrap());
    let http = crate::helpers::client(port);
    let url = |p: &str| format!("http://localhost:{port}{p}");

    let verifier = "load-test-verifier-0123456789abcdefghijklmnop";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let r = http
        .get(url(&format!(
            "/authorize?response_type=code&client_id=client-2&scope=openid&state=s1&nonce=n1\
             &redirect_uri=https%3A%2F%2Fload.invalid%2Fcallback\
             &code_challenge={challenge}&code_challenge_method=S256"
        )))
        .send()
        .await
        .unwrap();
    let login = location(&r);
    assert!(login.starts_with("/login?tx="), "{login}");
    let page = http
        .get(url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tx = query(&format!("http://x{login}"))["tx"].clone();
    let r = http
        .post(url("/login"))
        .form(&[
            ("username", "user-2"),
            ("password", "user-2-password"),
            ("csrf_token", &csrf_in(&page)),
            ("tx", &tx),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&r),
        "/login/mfa",
        "the seeded TOTP factor is asked for"
    );
    let page = http
        .get(url("/login/mfa"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let code = vigil::auth::totp::code_at(
        &vigil::commands::seed_totp_secret("user-2"),
        vigil::clock::SystemClock.now(),
    )
    .unwrap();
    let mut r = http
        .post(url("/login/mfa/totp"))
        .form(&[("csrf_token", csrf_in(&page)), ("code", code)])
        .send()
        .await
        .unwrap();
    let mut back = location(&r);
    for _ in 0..3 {
        if back.starts_with("https://load.invalid/callback") {
            break;
        }
        r = http.get(url(&back)).send().await.unwrap();
        back = location(&r);
    }
    assert!(back.starts_with("https://load.invalid/callback?"), "{back}");
    let q = query(&back);
    assert_eq!(q["state"], "s1");
    let r = http
        .post(url("/token"))
        .basic_auth("client-2", Some("client-2-secret-vigil-load-testing"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", "https://load.invalid/callback"),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let t: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        payload(t["id_token"].as_str().unwrap())["acr"],
        "urn:vigil:acr:mfa"
    );
    let r = http
        .post(url("/token"))
        .basic_auth("client-1", Some("client-1-secret-vigil-load-testing"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        reqwest::StatusCode::OK,
        "seeded clients have every grant"
    );
}
crate::on_both_backends!(seed, super::seed_then_sign_in);
