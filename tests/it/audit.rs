//! The audit chain, proven from the outside: entries made by a real server or recorded directly,
//! then `vigil audit verify` (the real binary) after each kind of tampering a database writer
//! could attempt; raw-IP retention; the export format; risk decisions carried in the details.

use std::process::{Command, Output, Stdio};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use vigil::audit::{AuditEvent, Auditor};
use vigil::clock::Timestamp;
use vigil::store::schema::{audit_log, login_failures, sessions, signins};
use vigil::store::{self, Db, DbConn};

use crate::helpers::{client, csrf_in, spawn_app_with, Backend, TestDb, ALWAYS_STEP_UP, PASSWORD};
use crate::on_both_backends;

const DAY: i64 = 86_400;

/// Run the real binary against `db`.
fn vigil(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.args(args)
        .env_remove("VIGIL_CONFIG")
        .env_remove("VIGIL_IP_RETENTION_DAYS")
        .env("VIGIL_DATABASE_URL", db.url_string())
        .env("VIGIL_ARGON2_MEMORY_KIB", "1024")
        .env("VIGIL_ARGON2_ITERATIONS", "1")
        .env("VIGIL_GEOIP_CITY", "")
        .env("VIGIL_GEOIP_ASN", "")
        .env("VIGIL_MASTER_KEY", crate::helpers::TEST_MASTER_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run vigil")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `vigil audit verify` must fail with exit 1 naming entry `seq` as the first broken one.
fn assert_broken_at(db: &TestDb, seq: i64, what: &str) {
    let o = vigil(db, &["audit", "verify"], &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: verify must fail; stdout {} stderr {}",
        stdout(&o),
        stderr(&o)
    );
    let e = stderr(&o);
    assert!(
        e.contains(&format!("broken at entry {seq}:")),
        "{what}: expected entry {seq} named, got: {e}"
    );
}

fn assert_ok(db: &TestDb, entries: u64) -> String {
    let o = vigil(db, &["audit", "verify"], &[]);
    assert_eq!(o.status.code(), Some(0), "verify: {}", stderr(&o));
    let line = stdout(&o);
    assert!(
        line.starts_with(&format!("ok {entries} entries")),
        "expected ok {entries} entries, got {line}"
    );
    line
}

/// A migrated database with the CLI's IP-digest key, and an auditor holding the same key.
struct Chain {
    db: TestDb,
    pool: Db,
    auditor: Auditor,
}

impl Chain {
    fn new(b: Backend) -> Option<Chain> {
        let db = TestDb::new(b)?;
        let pool = Db::connect(&db.url).unwrap();
        let mut c = pool.get().unwrap();
        store::migrate(&mut c).unwrap();
        let key =
            store::secrets::get_or_create(&mut c, "audit_ip_key", 0, || "test-audit-ip-key".into())
                .unwrap();
        drop(c);
        Some(Chain {
            db,
            pool,
            auditor: Auditor::new(key.into_bytes()),
        })
    }

    fn conn(&self) -> diesel::r2d2::PooledConnection<store::Manager> {
        self.pool.get().unwrap()
    }

    fn record(&self, at: Timestamp, ev: AuditEvent) {
        self.auditor.record(&mut self.conn(), at, ev).unwrap();
    }

    /// Six entries: odd ones with an IP, entry 3 with a target and details.
    fn seed(&self) {
        let base = Timestamp::from_secs(1_790_000_000);
        for i in 1..=6i64 {
            let mut ev = AuditEvent::new("test.event")
                .actor(format!("user-{i}"))
                .details(serde_json::json!({ "n": i }));
            if i % 2 == 1 {
                ev = ev.ip(format!("192.0.2.{i}").parse().unwrap());
            }
            if i == 3 {
                ev = ev.target("victim");
            }
            self.record(base.plus_secs(i), ev);
        }
    }

    fn sql(&self, sql: &str) {
        self.conn().batch_execute(sql).unwrap();
    }

    fn hash_of(&self, seq: i64) -> String {
        audit_log::table
            .find(seq)
            .select(audit_log::hash)
            .first(&mut *self.conn())
            .unwrap()
    }
}

/// Every kind of change to a six-entry chain, each on a fresh copy, names the right entry.
fn tampering_is_detected(b: Backend) {
    let cases: &[(&str, &str, i64)] = &[
        (
            "details changed",
            "UPDATE audit_log SET details = '{\"n\":33}' WHERE seq = 3",
            3,
        ),
        (
            "actor changed",
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3",
            3,
        ),
        (
            "time changed",
            "UPDATE audit_log SET at = at - 1000000 WHERE seq = 3",
            3,
        ),
        (
            "action changed",
            "UPDATE audit_log SET action = 'test.nothing' WHERE seq = 3",
            3,
        ),
        (
            "target changed",
            "UPDATE audit_log SET target = 'someone-else' WHERE seq = 3",
            3,
        ),
        (
            "target removed",
            "UPDATE audit_log SET target = NULL WHERE seq = 3",
            3,
        ),
        ("middle row deleted", "DELETE FROM audit_log WHERE seq = 3", 3),
        (
            "last rows deleted",
            "DELETE FROM audit_log WHERE seq >= 5",
            5,
        ),
        (
            // Reordering: entries 3 and 4 trade places.
            "rows reordered",
            "UPDATE audit_log SET seq = -3 WHERE seq = 3; \
             UPDATE audit_log SET seq = 3 WHERE seq = 4; \
             UPDATE audit_log SET seq = 4 WHERE seq = -3",
            3,
        ),
        (
            "raw IP changed",
            "UPDATE audit_log SET ip = '203.0.113.9' WHERE seq = 3",
            3,
        ),
        (
            "raw IP added where none was recorded",
            "UPDATE audit_log SET ip = '203.0.113.9' WHERE seq = 4",
            4,
        ),
        (
            "IP digest changed",
            "UPDATE audit_log SET ip_digest = NULL, ip = NULL WHERE seq = 5",
            5,
        ),
        (
            "stored hash changed",
            "UPDATE audit_log SET hash = prev_hash WHERE seq = 6",
            6,
        ),
        (
            "head row changed",
            "UPDATE audit_head SET hash = '0000000000000000000000000000000000000000000000000000000000000001'",
            6,
        ),
        ("head row deleted", "DELETE FROM audit_head", 7),
        (
            "row planted outside the chain",
            "INSERT INTO audit_log (seq, at, action, details, prev_hash, hash) \
             VALUES (0, 0, 'test.planted', '{}', 'x', 'y')",
            7,
        ),
    ];
    for (what, sql, seq) in cases {
        let Some(chain) = Chain::new(b) else { return };
        chain.seed();
        assert_ok(&chain.db, 6);
        chain.sql(sql);
        assert_broken_at(&chain.db, *seq, what);
    }
}
crate::sync_on_both_backends!(tampering, tampering_is_detected);

/// A writer who recomputes hashes can rewrite an entry and everything after it; only an anchor
/// recorded outside the database catches that. The same for cutting the tail and the head.
fn rewrites_need_an_anchor(b: Backend) {
    let Some(chain) = Chain::new(b) else { return };
    chain.seed();
    let line = assert_ok(&chain.db, 6);
    let head = vigil(&chain.db, &["audit", "head"], &[]);
    assert!(head.status.success(), "{}", stderr(&head));
    let anchor = stdout(&head).trim().to_owned();
    assert_eq!(anchor, format!("6:{}", chain.hash_of(6)));
    assert!(
        line.trim().ends_with(&anchor),
        "verify prints the head: {line}"
    );
    let anchored = |c: &Chain| vigil(&c.db, &["audit", "verify", "--anchor", &anchor], &[]);
    assert!(anchored(&chain).status.success());

    // Changing entry 3 and re-sealing only it breaks the link to entry 4.
    let mut row: vigil::store::audit::AuditRow = audit_log::table
        .find(3i64)
        .select(vigil::store::audit::AuditRow::as_select())
        .first(&mut *chain.conn())
        .unwrap();
    row.details = "{\"n\":333}".into();
    let resealed = vigil::audit::entry_hash(&row);
    chain.sql(&format!(
        "UPDATE audit_log SET details = '{{\"n\":333}}', hash = '{resealed}' WHERE seq = 3"
    ));
    assert_broken_at(&chain.db, 4, "one entry re-sealed");

    // Cutting the last two entries and moving the head back to entry 4 leaves a consistent
    // (shorter) chain: plain verify cannot tell. The anchor can.
    let Some(chain) = Chain::new(b) else { return };
    chain.seed();
    let anchor = stdout(&vigil(&chain.db, &["audit", "head"], &[]))
        .trim()
        .to_owned();
    let h4 = chain.hash_of(4);
    chain.sql(&format!(
        "DELETE FROM audit_log WHERE seq >= 5; UPDATE audit_head SET seq = 4, hash = '{h4}'"
    ));
    assert_ok(&chain.db, 4);
    let o = vigil(&chain.db, &["audit", "verify", "--anchor", &anchor], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("broken at entry 6:"), "{}", stderr(&o));

    // A malformed anchor is a usage error.
    let o = vigil(&chain.db, &["audit", "verify", "--anchor", "six"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
crate::sync_on_both_backends!(anchors, rewrites_need_an_anchor);

/// Old raw IPs go from every table; recent ones stay; the chain still verifies.
fn purge_ips_keeps_the_chain(b: Backend) {
    let Some(chain) = Chain::new(b) else { return };
    // The CLI reads the wall clock, so "old" and "recent" are relative to now.
    let now = vigil::clock::Clock::now(&vigil::clock::SystemClock);
    let old = now.minus_secs(40 * DAY);
    let recent = now.minus_secs(DAY);
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    chain.record(old, AuditEvent::new("test.old").ip(ip("192.0.2.1")));
    chain.record(old, AuditEvent::new("test.old_no_ip"));
    chain.record(recent, AuditEvent::new("test.recent").ip(ip("192.0.2.2")));
    let (o, r) = (old.micros(), recent.micros());
    let far = now.plus_secs(DAY).micros();
    chain.sql(&format!(
        "INSERT INTO users (id, username, email, name, password_hash, disabled, created_at, updated_at) \
           VALUES ('u1', 'ann', 'ann@example.com', '', 'x', FALSE, {o}, {o});
         INSERT INTO signins (id, at, method, outcome, ip, features) VALUES
           ('s-old', {o}, 'password', 'success', '192.0.2.1', '{{\"ip\":\"192.0.2.1\",\"deny_listed\":false}}'),
           ('s-new', {r}, 'password', 'success', '192.0.2.2', '{{\"ip\":\"192.0.2.2\",\"deny_listed\":false}}');
         INSERT INTO login_failures (id, at, account, ip) VALUES
           ('f-old', {o}, 'ann', '192.0.2.1'), ('f-new', {r}, 'ann', '192.0.2.2');
         INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, idle_expires_at, expires_at, auth_time, acr, amr, ip, revoked_at) VALUES
           ('ended', 'h1', 'u1', {o}, {o}, {o}, {o}, {o}, 'pwd', '[]', '192.0.2.1', {o}),
           ('live-old', 'h2', 'u1', {o}, {r}, {far}, {far}, {o}, 'pwd', '[]', '192.0.2.3', NULL),
           ('ended-recently', 'h3', 'u1', {r}, {r}, {r}, {r}, {r}, 'pwd', '[]', '192.0.2.2', {r});"
    ));
    assert_ok(&chain.db, 3);

    let purge = vigil(&chain.db, &["audit", "purge-ips"], &[]);
    assert!(purge.status.success(), "{}", stderr(&purge));
    let said = stdout(&purge);
    assert!(
        said.contains("older than 30 days: 1 audit entries, 1 sign-ins"),
        "{said}"
    );

    let mut c = chain.conn();
    let audit_ips: Vec<(String, Option<String>, Option<String>)> = audit_log::table
        .order(audit_log::seq)
        .select((audit_log::action, audit_log::ip, audit_log::ip_digest))
        .load(&mut *c)
        .unwrap();
    assert_eq!(audit_ips[0].1, None, "old raw IP cleared");
    assert!(audit_ips[0].2.is_some(), "its digest stays");
    assert_eq!(
        audit_ips[2].1.as_deref(),
        Some("192.0.2.2"),
        "recent IP kept"
    );
    assert_eq!(
        audit_ips[3].0, "audit.ips_purged",
        "the purge is itself audited"
    );
    let signin_ips: Vec<(String, Option<String>, Option<String>)> = signins::table
        .order(signins::id)
        .select((signins::id, signins::ip, signins::features))
        .load(&mut *c)
        .unwrap();
    assert_eq!(signin_ips[0].0, "s-new");
    assert_eq!(signin_ips[0].1.as_deref(), Some("192.0.2.2"));
    assert!(signin_ips[0].2.as_deref().unwrap().contains("192.0.2.2"));
    assert_eq!(signin_ips[1].1, None);
    let f: serde_json::Value = serde_json::from_str(signin_ips[1].2.as_deref().unwrap()).unwrap();
    assert_eq!(
        f,
        serde_json::json!({ "ip": null, "deny_listed": false }),
        "the features keep everything but the address"
    );
    let failures: Vec<String> = login_failures::table
        .select(login_failures::id)
        .load(&mut *c)
        .unwrap();
    assert_eq!(failures, vec!["f-new".to_owned()]);
    let sess: Vec<(String, Option<String>)> = sessions::table
        .order(sessions::id)
        .select((sessions::id, sessions::ip))
        .load(&mut *c)
        .unwrap();
    assert_eq!(
        sess,
        vec![
            ("ended".to_owned(), None),
            ("ended-recently".to_owned(), Some("192.0.2.2".to_owned())),
            ("live-old".to_owned(), Some("192.0.2.3".to_owned())),
        ],
        "only ended sessions older than the period lose their address"
    );
    drop(c);

    // The chain still verifies with the address gone, and a second purge changes nothing.
    assert_ok(&chain.db, 4);
    let again = vigil(&chain.db, &["audit", "purge-ips"], &[]);
    assert!(stdout(&again).contains("0 audit entries, 0 sign-ins"));
    assert_ok(&chain.db, 4);

    // 0 keeps raw IPs forever; --days overrides the period.
    let off = vigil(
        &chain.db,
        &["audit", "purge-ips"],
        &[("VIGIL_IP_RETENTION_DAYS", "0")],
    );
    assert!(off.status.success());
    assert!(stdout(&off).contains("kept forever"), "{}", stdout(&off));
    let all = vigil(&chain.db, &["audit", "purge-ips", "--days", "0"], &[]);
    assert!(all.status.success(), "{}", stderr(&all));
    let remaining: i64 = audit_log::table
        .filter(audit_log::ip.is_not_null())
        .count()
        .get_result(&mut *chain.conn())
        .unwrap();
    assert_eq!(remaining, 0);
    assert_ok(&chain.db, 5);
    let bad = vigil(
        &chain.db,
        &["audit", "purge-ips"],
        &[("VIGIL_IP_RETENTION_DAYS", "forever")],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("VIGIL_IP_RETENTION_DAYS"));
}
crate::sync_on_both_backends!(ip_retention, purge_ips_keeps_the_chain);

/// JSON lines with every field the hash covers, `at` in RFC 3339, details as an object.
fn export_writes_json_lines(b: Backend) {
    let Some(chain) = Chain::new(b) else { return };
    chain.seed();
    let out = vigil(&chain.db, &["audit", "export"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    let third = &lines[2];
    assert_eq!(third["seq"], 3);
    assert_eq!(third["at"], "2026-09-21T14:13:23.000000Z");
    assert_eq!(third["actor"], "user-3");
    assert_eq!(third["action"], "test.event");
    assert_eq!(third["target"], "victim");
    assert_eq!(third["ip"], "192.0.2.3");
    assert_eq!(third["ip_digest"].as_str().unwrap().len(), 64);
    assert_eq!(third["details"], serde_json::json!({ "n": 3 }));
    assert_eq!(third["prev_hash"], lines[1]["hash"]);
    assert_eq!(third["hash"], chain.hash_of(3));
    assert!(lines[3]["ip"].is_null() && lines[3]["ip_digest"].is_null());
    assert_eq!(lines[0]["prev_hash"], vigil::audit::GENESIS);

    // --since is inclusive, by date or by instant; a bad date is a usage error.
    let since = |s: &str| {
        let o = vigil(&chain.db, &["audit", "export", "--since", s], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().count()
    };
    assert_eq!(since("2026-09-21T14:13:23Z"), 4);
    assert_eq!(since("2026-09-22"), 0);
    assert_eq!(since("2000-01-01"), 6);
    let bad = vigil(&chain.db, &["audit", "export", "--since", "yesterday"], &[]);
    assert_eq!(bad.status.code(), Some(2));
}
crate::sync_on_both_backends!(export, export_writes_json_lines);

async fn form_login(http: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let page = http
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .post(format!("{base}/login"))
        .form(&[
            ("username", user),
            ("password", password),
            ("csrf_token", &csrf_in(&page)),
        ])
        .send()
        .await
        .unwrap();
    r.headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A real server's sign-ins: each risk decision is audited with its context and model, never
/// with the raw address in the sealed details; the chain verifies, and tampering shows.
async fn real_sign_ins_carry_their_risk(b: Backend) {
    let Some(app) = spawn_app_with(b, ALWAYS_STEP_UP).await else {
        return;
    };
    app.add_user("ann", false).await;
    app.add_user("ben", false).await;
    let ann = vigil::flow::accounts::find(&app.svc, "ann").await.unwrap();
    let uri = vigil::flow::factors::totp_provision(&app.svc, app.svc.clock.now(), &ann)
        .await
        .unwrap();
    let b32 = url::Url::parse(&uri)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .unwrap()
        .1
        .into_owned();
    let secret = totp_rs::Secret::try_from_base32(&b32)
        .unwrap()
        .as_bytes()
        .to_vec();

    // ben: a wrong password, then a sign-in (no factor: allowed at low risk).
    let browser = client(app.port);
    form_login(&browser, &app.base, "ben", "not the password").await;
    assert_eq!(
        form_login(&browser, &app.base, "ben", PASSWORD).await,
        "/account"
    );
    // ann: the policy steps her up; a wrong code, then the right one.
    let browser = client(app.port);
    assert_eq!(
        form_login(&browser, &app.base, "ann", PASSWORD).await,
        "/login/mfa"
    );
    let submit = |code: String| {
        let browser = browser.clone();
        let base = app.base.clone();
        async move {
            let page = browser
                .get(format!("{base}/login/mfa"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            browser
                .post(format!("{base}/login/mfa/totp"))
                .form(&[("csrf_token", csrf_in(&page)), ("code", code)])
                .send()
                .await
                .unwrap()
        }
    };
    submit("000000".into()).await;
    let code = vigil::auth::totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let done = submit(code).await;
    assert_eq!(done.headers()["location"], "/account");

    let db = &app._db;
    let out = vigil(db, &["audit", "export"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let entries: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in ["login.failed", "login.succeeded", "login.step_up_required"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let mut decisions = 0;
    for e in &entries {
        let action = e["action"].as_str().unwrap();
        let details = &e["details"];
        assert!(details.is_object(), "{e}");
        assert!(
            !details.to_string().contains("127.0.0.1"),
            "the raw IP never enters the sealed details: {e}"
        );
        if action.starts_with("login.") {
            assert_eq!(e["ip"], "127.0.0.1", "{e}");
            assert_eq!(e["ip_digest"].as_str().unwrap().len(), 64);
        }
        if action == "login.failed" {
            continue;
        }
        if !action.starts_with("login.") {
            continue;
        }
        decisions += 1;
        let risk = &details["risk"];
        assert!(risk["score"].as_u64().unwrap() <= 100, "{e}");
        for key in ["level", "decision", "model"] {
            assert!(risk[key].is_string(), "risk.{key} in {e}");
        }
        assert!(risk["reasons"].is_array(), "{e}");
        assert!(risk.get("geoip_build").is_some(), "{e}");
        assert!(risk["contributions"].as_array().unwrap().len() > 1, "{e}");
        let ctx = &details["context"];
        for key in [
            "country",
            "asn",
            "device_type",
            "browser_family",
            "new_device",
        ] {
            assert!(ctx.get(key).is_some(), "context.{key} in {e}");
        }
        assert!(ctx["new_device"].is_boolean());
    }
    assert!(decisions >= 3, "{actions:?}");
    let step_up = entries
        .iter()
        .find(|e| e["action"] == "login.step_up_required")
        .unwrap();
    assert_eq!(step_up["details"]["risk"]["decision"], "step_up");
    let passed = entries
        .iter()
        .find(|e| e["action"] == "login.succeeded" && e["details"]["method"] == "totp")
        .unwrap();
    assert_eq!(passed["details"]["risk"]["decision"], "step_up");
    assert_eq!(passed["actor"], ann.id.as_str());

    let n = entries.len() as u64;
    assert_ok(db, n);
    let seq = passed["seq"].as_i64().unwrap();
    let mut c = app.svc.db.get().unwrap();
    let c: &mut DbConn = &mut c;
    diesel::update(audit_log::table.find(seq))
        .set(audit_log::details.eq("{\"method\":\"totp\",\"risk\":{\"score\":0}}"))
        .execute(c)
        .unwrap();
    assert_broken_at(db, seq, "a real decision rewritten");
}
on_both_backends!(real_sign_ins, super::real_sign_ins_carry_their_risk);

/// The cost of `vigil audit verify` on a long chain (SQLite). Run on demand:
/// `cargo test --test it audit::verify_timing -- --ignored --nocapture` (set
/// `VIGIL_AUDIT_TIMING_ENTRIES` for another size; the database file stays in
/// `VIGIL_AUDIT_TIMING_DB` if that is set, to time another build of the binary on it).
#[test]
#[ignore]
fn verify_timing() {
    let n: i64 = std::env::var("VIGIL_AUDIT_TIMING_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let chain = Chain::new(Backend::Sqlite).unwrap();
    let started = std::time::Instant::now();
    let base = Timestamp::from_secs(1_790_000_000);
    let mut c = chain.conn();
    store::transaction(&mut c, |c| {
        for i in 0..n {
            chain.auditor.record(
                c,
                base.plus_secs(i),
                AuditEvent::new("login.succeeded")
                    .actor("01a21571-b4bd-7182-8827-de6803998856")
                    .target("01a21571-b590-7128-b210-1806e279508a")
                    .ip(format!("198.51.100.{}", i % 250).parse().unwrap())
                    .details(serde_json::json!({
                        "method": "password", "acr": "urn:vigil:acr:pwd",
                        "risk": { "score": 23, "level": "low", "decision": "allow", "reasons": [],
                                  "model": "d9fcf45801cb", "geoip_build": null },
                        "context": { "country": "DE", "asn": 3320, "browser_family": "Firefox",
                                     "device_type": "desktop", "new_device": false },
                    })),
            )?;
        }
        Ok(())
    })
    .unwrap();
    drop(c);
    eprintln!("recorded {n} entries in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    assert_ok(&chain.db, u64::try_from(n).unwrap());
    eprintln!(
        "vigil audit verify ({} build) over {n} entries: {:?}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        started.elapsed()
    );
    if let Ok(keep) = std::env::var("VIGIL_AUDIT_TIMING_DB") {
        chain.sql("PRAGMA wal_checkpoint(TRUNCATE)");
        if let vigil::config::DatabaseUrl::Sqlite(p) = &chain.db.url {
            std::fs::copy(p, keep).unwrap();
        }
    }
}

/// Verification while the server appends never reports a false break (the head may run ahead
/// of the walk; the verifier walks on instead of crying truncation).
fn verify_while_appending(b: Backend) {
    let Some(chain) = Chain::new(b) else { return };
    chain.seed();
    let (pool, auditor) = (chain.pool.clone(), chain.auditor.clone());
    let writer = std::thread::spawn(move || {
        for i in 0..300 {
            let mut c = pool.get().unwrap();
            auditor
                .record(
                    &mut c,
                    Timestamp::from_secs(1_790_001_000 + i),
                    AuditEvent::new("test.concurrent").ip("192.0.2.9".parse().unwrap()),
                )
                .unwrap();
        }
    });
    let mut runs = 0;
    while !writer.is_finished() {
        let v = chain.auditor.verify(&mut chain.conn()).unwrap();
        assert!(matches!(v, vigil::audit::Verdict::Ok { .. }), "{v:?}");
        runs += 1;
    }
    writer.join().unwrap();
    assert_ok(&chain.db, 306);
    eprintln!("{runs} verifications raced the writer");
}
crate::sync_on_both_backends!(concurrent, verify_while_appending);
