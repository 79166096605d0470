//! The storage layer on both backends: migrations round-trip, every table round-trips a row,
//! single-use and chain invariants hold.

use vigil::audit::{AuditEvent, Auditor, Verdict};
use vigil::clock::Timestamp;
use vigil::store::clients::Client;
use vigil::store::sessions::Session;
use vigil::store::users::NewUser;
use vigil::store::{self, Db};

use crate::helpers::{Backend, TestDb};

fn db(b: Backend) -> Option<(TestDb, Db)> {
    let t = TestDb::new(b)?;
    let db = Db::connect(&t.url).unwrap();
    Some((t, db))
}

fn migrations_go_up_down_up(b: Backend) {
    let Some((_t, db)) = db(b) else { return };
    let mut c = db.get().unwrap();
    assert!(store::migrate(&mut c).unwrap() >= 1);
    assert_eq!(store::migrate(&mut c).unwrap(), 0, "idempotent");
    store::revert_all(&mut c).unwrap();
    assert!(store::migrate(&mut c).unwrap() >= 1);
}

/// How many migrations came after `console_roles` (`scim`, `access_usage`, `access_reviews`,
/// `shadow_model`, `email`):
/// reverted first to get back to it.
const MIGRATIONS_AFTER_CONSOLE_ROLES: usize = 7;

/// Upgrading a deployment whose admins had the old flag: they hold the console's `admin`
/// role afterwards (and only they do), and going back restores the flag.
fn admins_become_the_console_admin_role(b: Backend) {
    use diesel::connection::SimpleConnection as _;
    let Some((_t, db)) = db(b) else { return };
    let mut c = db.get().unwrap();
    store::migrate(&mut c).unwrap();
    // Back to before `console_roles` (the migrations after it first).
    for _ in 0..MIGRATIONS_AFTER_CONSOLE_ROLES + 1 {
        store::revert_last(&mut c).unwrap();
    }
    let sql = "INSERT INTO users (id, username, email, name, password_hash, is_admin, disabled, \
               created_at, updated_at) VALUES \
               ('a1', 'root', 'root@example.com', '', 'x', TRUE, FALSE, 1, 1), \
               ('u1', 'ann', 'ann@example.com', '', 'x', FALSE, FALSE, 1, 1)";
    match &mut *c {
        store::DbConn::Sqlite(s) => s.batch_execute(sql).unwrap(),
        store::DbConn::Postgres(p) => p.batch_execute(sql).unwrap(),
    }
    assert_eq!(
        store::migrate(&mut c).unwrap(),
        MIGRATIONS_AFTER_CONSOLE_ROLES + 1
    );
    assert!(vigil::flow::access::console_of(&mut c, "a1").unwrap().admin);
    assert!(!vigil::flow::access::console_of(&mut c, "u1").unwrap().any());
    assert_eq!(store::users::count_active_admins(&mut c).unwrap(), 1);
    for _ in 0..MIGRATIONS_AFTER_CONSOLE_ROLES + 1 {
        store::revert_last(&mut c).unwrap();
    }
    let admins: i64 = match &mut *c {
        store::DbConn::Sqlite(s) => {
            use diesel::prelude::*;
            diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "SELECT COUNT(*) FROM users WHERE is_admin",
            )
            .get_result(s)
            .unwrap()
        }
        store::DbConn::Postgres(p) => {
            use diesel::prelude::*;
            diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "SELECT COUNT(*) FROM users WHERE is_admin",
            )
            .get_result(p)
            .unwrap()
        }
    };
    assert_eq!(admins, 1, "the flag comes back with the down migration");
}

fn every_table_round_trips(b: Backend) {
    let Some((_t, db)) = db(b) else { return };
    let mut c = db.get().unwrap();
    store::migrate(&mut c).unwrap();
    let now = 1_700_000_000_000_000i64;
    store::users::insert(
        &mut c,
        &NewUser {
            id: "u1",
            username: "ann",
            email: "ann@example.com",
            name: "Ann",
            password_hash: "$argon2id$x",
            disabled: false,
            created_at: now,
            updated_at: now,
            must_change_password: false,
        },
    )
    .unwrap();
    let u = store::users::find_by_username(&mut c, "ann")
        .unwrap()
        .unwrap();
    assert_eq!(
        (u.id.as_str(), u.email.as_str(), u.disabled),
        ("u1", "ann@example.com", false)
    );
    assert!(matches!(
        store::users::insert(
            &mut c,
            &NewUser {
                id: "u2",
                username: "ann",
                email: "x@example.com",
                name: "",
                password_hash: "h",
                disabled: false,
                created_at: now,
                updated_at: now,
                must_change_password: false,
            }
        ),
        Err(store::StoreError::Conflict(_))
    ));

    let s = Session {
        id: "s1".into(),
        token_hash: store::token_digest("tok"),
        user_id: "u1".into(),
        created_at: now,
        last_seen_at: now,
        idle_expires_at: now + 10,
        expires_at: now + 20,
        auth_time: now,
        acr: "urn:vigil:acr:pwd".into(),
        amr: "[\"pwd\"]".into(),
        device_id: Some("d".into()),
        ip: Some("192.0.2.1".into()),
        user_agent: None,
        revoked_at: None,
        risk: None,
    };
    store::sessions::insert(&mut c, &s).unwrap();
    assert!(
        store::sessions::find_live(&mut c, &store::token_digest("tok"), now + 5)
            .unwrap()
            .is_some()
    );
    assert!(
        store::sessions::find_live(&mut c, &store::token_digest("tok"), now + 15)
            .unwrap()
            .is_none(),
        "idle expiry"
    );
    assert!(store::sessions::revoke(&mut c, "s1", now).unwrap());
    assert!(
        !store::sessions::revoke(&mut c, "s1", now).unwrap(),
        "single use"
    );

    let client = Client {
        id: "app".into(),
        name: "App".into(),
        secret_hash: Some("h".into()),
        public: false,
        first_party: true,
        redirect_uris: vec!["https://app.example.com/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into()],
        require_pkce: true,
        created_at: now,
        backchannel_logout_uri: Some("https://app.example.com/bc".into()),
        id_token_alg: "ES256".into(),
        access_token_alg: "EdDSA".into(),
        min_acr: None,
        risk_thresholds: Some((40, 75)),
        require_role: true,
        privileged_max_age_secs: Some(600),
        provisioning: true,
    };
    store::clients::insert(&mut c, &client, now).unwrap();
    let back = store::clients::find(&mut c, "app").unwrap().unwrap();
    assert_eq!(back.redirect_uris, client.redirect_uris);
    assert_eq!(back.id_token_alg, "ES256");
    assert!(back.require_role);
    assert_eq!(back.privileged_max_age_secs, Some(600));
    assert!(back.provisioning);
    assert_eq!(back.access_token_alg, "EdDSA");

    // OIDC tables: request -> code (single use) -> tokens (rotation) -> consent.
    let req = store::authz::AuthzRequest {
        id: "tx1".into(),
        client_id: "app".into(),
        redirect_uri: "https://app.example.com/cb".into(),
        scope: "openid".into(),
        state: Some("s".into()),
        nonce: None,
        code_challenge: None,
        response_mode: "query".into(),
        prompt: String::new(),
        max_age: Some(60),
        acr_values: None,
        login_hint: None,
        created_at: now,
        expires_at: now + 100,
        device_id: None,
        assessed_session: None,
    };
    store::authz::insert_request(&mut c, &req).unwrap();
    assert_eq!(
        store::authz::find_request(&mut c, "tx1", now)
            .unwrap()
            .unwrap()
            .max_age,
        Some(60)
    );
    assert!(
        store::authz::find_request(&mut c, "tx1", now + 100)
            .unwrap()
            .is_none(),
        "expired"
    );
    let code = store::authz::AuthCode {
        id: "c1".into(),
        code_hash: "h1".into(),
        client_id: "app".into(),
        user_id: "u1".into(),
        session_id: "s1".into(),
        redirect_uri: "https://app.example.com/cb".into(),
        scope: "openid".into(),
        nonce: None,
        code_challenge: None,
        auth_time: now,
        acr: "urn:vigil:acr:pwd".into(),
        amr: "[]".into(),
        risk: "{}".into(),
        created_at: now,
        expires_at: now + 10,
        used_at: None,
    };
    store::authz::insert_code(&mut c, &code).unwrap();
    assert!(store::authz::consume_code(&mut c, "c1", now).unwrap());
    assert!(
        !store::authz::consume_code(&mut c, "c1", now).unwrap(),
        "a code is single use"
    );
    let rt = store::tokens::RefreshTokenRow {
        id: "r1".into(),
        token_hash: "rh1".into(),
        family_id: "f1".into(),
        client_id: "app".into(),
        user_id: "u1".into(),
        session_id: None,
        code_id: Some("c1".into()),
        scope: "openid".into(),
        auth_time: now,
        acr: "a".into(),
        amr: "[]".into(),
        risk: "{}".into(),
        created_at: now,
        expires_at: now + 10,
        family_expires_at: now + 20,
        used_at: None,
        revoked_at: None,
    };
    store::tokens::insert_refresh(&mut c, &rt).unwrap();
    store::tokens::insert_access_batch(
        &mut c,
        &[store::tokens::AccessTokenRow {
            jti: "j1".into(),
            client_id: "app".into(),
            user_id: Some("u1".into()),
            code_id: Some("c1".into()),
            family_id: Some("f1".into()),
            expires_at: now + 5,
            issued_at: now,
            grant_type: "authorization_code".into(),
        }],
    )
    .unwrap();
    assert!(store::tokens::find_access(&mut c, "j1").unwrap().is_some());
    assert!(store::tokens::mark_refresh_used(&mut c, "r1", now).unwrap());
    assert!(
        !store::tokens::mark_refresh_used(&mut c, "r1", now).unwrap(),
        "rotation is single use"
    );
    let grant = store::tokens::GrantRevocation {
        now,
        until: now + 100,
        tokens_since: now - 10,
    };
    store::tokens::revoke_family(&mut c, "f1", grant).unwrap();
    // Twice is once.
    store::tokens::revoke_family(&mut c, "f1", grant).unwrap();
    let revoked = store::revocations::since(&mut c, 0, 10).unwrap();
    let kinds: Vec<_> = revoked.iter().map(|r| (r.kind, r.value.as_str())).collect();
    // The client's creation told the other nodes too.
    assert_eq!(
        kinds,
        [
            (store::revocations::Kind::Client, "app"),
            (store::revocations::Kind::Grant, "f1")
        ]
    );
    let live = store::revocations::live(&mut c, now + 100).unwrap();
    assert!(live
        .iter()
        .all(|r| r.kind == store::revocations::Kind::Client));
    assert_eq!(store::revocations::purge(&mut c, now + 100, 10).unwrap(), 1);
    store::consents::grant(
        &mut c,
        &store::consents::Consent {
            user_id: "u1".into(),
            client_id: "app".into(),
            scope: "openid".into(),
            granted_at: now,
        },
    )
    .unwrap();
    store::consents::grant(
        &mut c,
        &store::consents::Consent {
            user_id: "u1".into(),
            client_id: "app".into(),
            scope: "openid email".into(),
            granted_at: now,
        },
    )
    .unwrap();
    assert_eq!(
        store::consents::find(&mut c, "u1", "app")
            .unwrap()
            .unwrap()
            .scope,
        "openid email"
    );
    store::keys::insert(
        &mut c,
        &store::keys::KeyRow {
            id: "k1".into(),
            alg: "RS256".into(),
            private_enc: "x".into(),
            public_jwk: "{}".into(),
            created_at: now,
            rotated_at: None,
            publish_until: None,
        },
    )
    .unwrap();
    assert_eq!(
        store::keys::retire_active(&mut c, "RS256", now, now + 5).unwrap(),
        1
    );
    assert_eq!(store::keys::published(&mut c, now + 1).unwrap().len(), 1);
    assert_eq!(
        store::keys::published(&mut c, now + 6).unwrap().len(),
        0,
        "retired after its grace period"
    );

    store::throttle::record(&mut c, "ann", "192.0.2.1", now).unwrap();
    assert_eq!(
        store::throttle::counts(&mut c, "ann", "192.0.2.1", now - 1, None).unwrap(),
        (1, 1)
    );
    assert_eq!(
        store::throttle::counts(&mut c, "ann", "192.0.2.1", now, None).unwrap(),
        (0, 0),
        "outside the window"
    );

    let v = store::secrets::get_or_create(&mut c, "k", now, || "first".into()).unwrap();
    let w = store::secrets::get_or_create(&mut c, "k", now, || "second".into()).unwrap();
    assert_eq!((v.as_str(), w.as_str()), ("first", "first"));

    // The outbox: one sender claims a message; a second claim of the same version fails.
    store::mail::enqueue(
        &mut c,
        &store::mail::OutboxRow {
            id: "m1".into(),
            kind: "verify_email".into(),
            to_addr: "ann@example.com".into(),
            subject: "s".into(),
            text_body: "t".into(),
            html_body: "h".into(),
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            sent_at: None,
            failed_at: None,
            last_error: None,
        },
    )
    .unwrap();
    assert_eq!(store::mail::due(&mut c, now, 10).unwrap().len(), 1);
    assert!(store::mail::claim(&mut c, "m1", now, now + 120).unwrap());
    assert!(!store::mail::claim(&mut c, "m1", now, now + 120).unwrap());
    assert!(
        store::mail::due(&mut c, now, 10).unwrap().is_empty(),
        "leased"
    );
    store::mail::attempt_failed(&mut c, "m1", now, Some(now + 30), "down").unwrap();
    let m = store::mail::due(&mut c, now + 30, 10).unwrap().remove(0);
    assert_eq!((m.attempts, m.last_error.as_deref()), (1, Some("down")));
    store::mail::sent(&mut c, "m1", now + 31).unwrap();
    assert!(store::mail::due(&mut c, now + 1_000, 10)
        .unwrap()
        .is_empty());
    assert_eq!(store::mail::purge(&mut c, now + 1).unwrap(), 1);
    // A link works once, and not after it expired.
    store::mail::insert_link(
        &mut c,
        &store::mail::LinkRow {
            digest: "d1".into(),
            user_id: "u1".into(),
            purpose: "verify".into(),
            email: "ann@example.com".into(),
            created_at: now,
            expires_at: now + 10,
            used_at: None,
            device_id: None,
            subject: None,
        },
    )
    .unwrap();
    assert!(
        !store::mail::use_link(&mut c, "d1", now + 10).unwrap(),
        "expired"
    );
    assert!(store::mail::use_link(&mut c, "d1", now + 9).unwrap());
    assert!(
        !store::mail::use_link(&mut c, "d1", now + 9).unwrap(),
        "once"
    );
    assert_eq!(
        store::mail::links_since(&mut c, "u1", "verify", now).unwrap(),
        1
    );

    let auditor = Auditor::new(b"key".to_vec());
    for i in 0..3 {
        auditor
            .record(
                &mut c,
                Timestamp(now + i),
                AuditEvent::new("test.event")
                    .actor("u1")
                    .ip("192.0.2.1".parse().unwrap()),
            )
            .unwrap();
    }
    assert!(matches!(
        auditor.verify(&mut c).unwrap(),
        Verdict::Ok { entries: 3, .. }
    ));
}

crate::sync_on_both_backends!(migrations, migrations_go_up_down_up);
crate::sync_on_both_backends!(console_admin_upgrade, admins_become_the_console_admin_role);
crate::sync_on_both_backends!(round_trip, every_table_round_trips);

/// Nodes started at the same moment on a new PostgreSQL database (a compose cluster's first
/// `up`) all start: they take turns creating the tables, and the first signing keys are made
/// once, not once per node (before, the losers failed with "relation already exists" or a
/// duplicate migration row, and the winners each published a key of their own).
#[test]
fn nodes_starting_together_on_a_new_database_all_start_with_one_set_of_keys() {
    let Some(t) = TestDb::new(Backend::Postgres) else {
        eprintln!("VIGIL_TEST_DATABASE_URL not set: skipped");
        return;
    };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let settings = crate::helpers::test_settings(&t, 1, &[]);
            std::thread::spawn(move || vigil::flow::Services::start(settings, None).map(|_| ()))
        })
        .collect();
    for s in starts {
        if let Err(e) = s.join().unwrap() {
            panic!("a node failed to start: {e}");
        }
    }
    let db = Db::connect(&t.url).unwrap();
    let mut c = db.get().unwrap();
    let keys = store::keys::all(&mut c).unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k.alg.as_str()).collect();
    let n = algs.len();
    algs.sort_unstable();
    algs.dedup();
    assert_eq!(n, algs.len(), "one active key per algorithm: {algs:?}");
}

/// The bundled SQLite keeps one plan per statement (`.cargo/config.toml` builds it with
/// `SQLITE_ENABLE_QPSG`). Without it, every statement with a bound LIMIT — each `.first()` —
/// was parsed and planned again on every execution, and the statement cache saved nothing on
/// them (about 3 % of the server's CPU under sign-in load). A build without the repository's
/// cargo configuration fails here instead of silently getting slower.
#[test]
fn sqlite_reuses_its_prepared_statements() {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }
    let Some((_t, db)) = db(Backend::Sqlite) else {
        return;
    };
    let mut c = db.get().unwrap();
    let store::DbConn::Sqlite(s) = &mut *c else {
        unreachable!("an SQLite test database")
    };
    let options: Vec<CompileOption> = diesel::sql_query("PRAGMA compile_options").load(s).unwrap();
    assert!(
        options.iter().any(|o| o.compile_options == "ENABLE_QPSG"),
        "SQLite was built without SQLITE_ENABLE_QPSG: build vigil from its repository \
         (.cargo/config.toml sets LIBSQLITE3_FLAGS)"
    );
}
