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
            is_admin: true,
            disabled: false,
            created_at: now,
            updated_at: now,
        },
    )
    .unwrap();
    let u = store::users::find_by_username(&mut c, "ann")
        .unwrap()
        .unwrap();
    assert_eq!(
        (u.id.as_str(), u.email.as_str(), u.is_admin),
        ("u1", "ann@example.com", true)
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
                is_admin: false,
                disabled: false,
                created_at: now,
                updated_at: now
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
    };
    store::clients::insert(&mut c, &client, now).unwrap();
    let back = store::clients::find(&mut c, "app").unwrap().unwrap();
    assert_eq!(back.redirect_uris, client.redirect_uris);

    store::throttle::record(&mut c, "ann", "192.0.2.1", now).unwrap();
    assert_eq!(
        store::throttle::counts(&mut c, "ann", "192.0.2.1", now - 1).unwrap(),
        (1, 1)
    );
    assert_eq!(
        store::throttle::counts(&mut c, "ann", "192.0.2.1", now).unwrap(),
        (0, 0),
        "outside the window"
    );

    let v = store::secrets::get_or_create(&mut c, "k", now, || "first".into()).unwrap();
    let w = store::secrets::get_or_create(&mut c, "k", now, || "second".into()).unwrap();
    assert_eq!((v.as_str(), w.as_str()), ("first", "first"));

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
    assert_eq!(auditor.verify(&mut c).unwrap(), Verdict::Ok { entries: 3 });
}

crate::sync_on_both_backends!(migrations, migrations_go_up_down_up);
crate::sync_on_both_backends!(round_trip, every_table_round_trips);
