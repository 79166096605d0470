//! Least privilege from what is really used: a token records which client and roles a user
//! used (batched with the issuance log), a verified sign-in records itself, and the miners turn
//! that into findings — through the flow and through `vigil access report --json`.

use diesel::prelude::*;
use serde_json::Value;
use vigil::access::{Action, Kind, Params};
use vigil::flow::access;
use vigil::store::schema::{role_grants, users};

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::oidc::{add_client, rp, tokens_for, ClientSpec};
use crate::on_both_backends;

const DAY: i64 = 86_400;

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let db = app._db.url_string();
    crate::cli::run_with_env(args, None, &[("VIGIL_DATABASE_URL", &db)])
}

fn ok(app: &TestApp, args: &[&str]) -> String {
    let o = cli(app, args);
    assert!(
        o.status.success(),
        "vigil {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn set_up(app: &TestApp) {
    app.add_user("alice", false).await;
    app.add_user("bob", false).await;
    add_client(app, ClientSpec::default()).await;
    for r in ["reader", "writer", "auditor"] {
        ok(app, &["role", "add", "rp", r]);
    }
    ok(app, &["role", "grant", "rp", "reader", "--user", "alice"]);
    ok(app, &["role", "grant", "rp", "writer", "--user", "alice"]);
    ok(app, &["role", "grant", "rp", "auditor", "--user", "bob"]);
}

async fn findings_at(app: &TestApp) -> Vec<vigil::access::Finding> {
    access::least_privilege(&app.svc, app.svc.clock.now(), Params::default())
        .await
        .unwrap()
}

fn about<'a>(
    f: &'a [vigil::access::Finding],
    user: &str,
    role: Option<&str>,
) -> Vec<&'a vigil::access::Finding> {
    f.iter()
        .filter(|x| x.username.as_deref() == Some(user) && x.role.as_deref() == role)
        .collect()
}

async fn usage_follows_tokens_and_sign_ins(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    set_up(&app).await;
    let rp = rp(&app, "rp", false).await;
    // alice signs in and her token carries both roles; the usage is written with the batch.
    tokens_for(&app, &rp, &["roles"]).await;
    app.svc.token_log.flush().await;
    assert!(
        findings_at(&app).await.is_empty(),
        "everything is fresh: nothing to say"
    );

    // 100 days on (the window is 90): neither has signed in or had a token since — both are
    // dormant, and a dormant account's grants are not listed one by one.
    app.clock.advance_secs(100 * DAY);
    let f = findings_at(&app).await;
    assert_eq!(f.len(), 2, "{f:#?}");
    let alice = about(&f, "alice", None);
    assert_eq!(alice[0].kind, Kind::DormantAccount);
    assert_eq!(alice[0].action, Action::Disable);
    assert_eq!(
        alice[0].evidence,
        "last verified sign-in 100 days ago; last token 100 days ago"
    );
    let bob = about(&f, "bob", None);
    assert_eq!(bob[0].kind, Kind::DormantAccount);
    assert!(
        bob[0].evidence.starts_with("never signed in"),
        "{}",
        bob[0].evidence
    );

    // alice signs in to an application that does not ask for roles: she is active again, but
    // neither role has been in a token for 100 days.
    tokens_for(&app, &rp, &[]).await;
    app.svc.token_log.flush().await;
    let f = findings_at(&app).await;
    assert!(about(&f, "alice", None).is_empty(), "{f:#?}");
    for role in ["reader", "writer"] {
        let r = about(&f, "alice", Some(role));
        assert_eq!(r.len(), 1, "{f:#?}");
        assert_eq!(r[0].kind, Kind::UnusedGrant);
        assert_eq!(r[0].action, Action::Remove);
        assert_eq!(
            r[0].evidence,
            "not used for 100 days; no group to compare with"
        );
    }
    assert_eq!(about(&f, "bob", None).len(), 1);

    // With the `roles` scope both roles are in the token again: used, nothing left on alice.
    tokens_for(&app, &rp, &["roles"]).await;
    app.svc.token_log.flush().await;
    let f = findings_at(&app).await;
    assert!(
        f.iter().all(|x| x.username.as_deref() != Some("alice")),
        "{f:#?}"
    );
}

on_both_backends!(
    usage_follows_tokens_and_sign_ins_on,
    super::usage_follows_tokens_and_sign_ins
);

/// Age the directory by `days` (the CLI runs on the wall clock).
async fn age(app: &TestApp, days: i64) {
    let by = days * DAY * 1_000_000;
    app.svc
        .db
        .run(move |c| {
            diesel::update(users::table)
                .set(users::created_at.eq(users::created_at - by))
                .execute(c)?;
            diesel::update(role_grants::table)
                .set(role_grants::granted_at.eq(role_grants::granted_at - by))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn the_report_prints_one_json_object_per_finding(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    set_up(&app).await;
    let text = ok(&app, &["access", "report"]);
    assert!(text.starts_with("no findings"), "{text}");
    age(&app, 120).await;
    let lines = ok(&app, &["access", "report", "--json"]);
    let rows: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Neither signed in: both dormant, and that is all (their grants go with the account).
    assert_eq!(rows.len(), 2, "{lines}");
    for (row, user) in rows.iter().zip(["alice", "bob"]) {
        for key in [
            "kind",
            "action",
            "username",
            "client_id",
            "role",
            "evidence",
        ] {
            assert!(row.get(key).is_some(), "{key} missing: {row}");
        }
        assert_eq!(row["kind"], "dormant_account");
        assert_eq!(row["action"], "disable");
        assert_eq!(row["username"], user);
        assert_eq!(row["client_id"], Value::Null);
        assert_eq!(row["role"], Value::Null);
    }
    // A narrower window sees the same; a window wider than the age sees nothing.
    let wide = ok(
        &app,
        &["access", "report", "--json", "--unused-days", "365"],
    );
    assert!(wide.trim().is_empty(), "{wide}");
    let o = cli(&app, &["access", "report", "--unused-days", "0"]);
    assert_eq!(o.status.code(), Some(2), "0 days is refused");
}

on_both_backends!(
    the_report_prints_one_json_object_per_finding_on,
    super::the_report_prints_one_json_object_per_finding
);

#[test]
fn synth_and_evaluate_measure_the_miners_on_planted_excess() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("org.json");
    let f = file.to_str().unwrap();
    let o = crate::cli::run_with_env(
        &[
            "access", "synth", "--users", "1500", "--seed", "5", "--out", f,
        ],
        None,
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = crate::cli::run_with_env(&["access", "evaluate", "--input", f, "--json"], None, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["users"], 1500);
    assert!(e["remove_precision"].as_f64().unwrap() >= 0.8, "{e}");
    assert!(e["remove_recall"].as_f64().unwrap() >= 0.95, "{e}");
    assert!(e["dormant_recall"].as_f64().unwrap() >= 0.99, "{e}");
    let o = crate::cli::run_with_env(
        &["access", "evaluate", "--input", "/nonexistent"],
        None,
        &[],
    );
    assert!(!o.status.success());
}
