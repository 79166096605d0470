//! Durable commits per flow (issue 14): what each operation costs the database's single writer
//! (SQLite) or its WAL (PostgreSQL), counted by the node itself (`Db::commits`, exported as
//! `vigil_db_commits_total`). Counts, not timings: each is a property of the code path.
//!
//! - a whole authorization-code flow with a password (authorize, login page, password, code,
//!   token exchange): 4 — the request row, the throttle reservation, the sign-in (session, log,
//!   audit, the reservation released, and the code when the session is all the request needs),
//!   the exchange;
//! - a refresh: at most 1;
//! - `client_credentials`: none per token (the issuance log is one batched write per second).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::oidc::{add_client, rp, ClientSpec, SECRET};
use crate::on_both_backends;
use crate::races::{fresh_code, redeem, refresh};

fn commits(app: &TestApp) -> u64 {
    app.svc.db.commits()
}

async fn commits_per_flow(b: Backend) {
    // A permissive policy: every sign-in of the test comes from a fresh browser, and this test
    // is about the path of an allowed sign-in.
    let app = spawn_app_with(
        b,
        &[("VIGIL_RISK_POLICY", "low=allow,medium=allow,high=allow")],
    )
    .await
    .unwrap();
    app.add_user("alice", false).await;
    add_client(
        &app,
        ClientSpec {
            grants: vec![
                "authorization_code".into(),
                "refresh_token".into(),
                "client_credentials".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    let rp = rp(&app, "rp", false).await;
    // Warm up: the first sign-in creates the user's risk profile and the keys' cache.
    let (code, verifier) = fresh_code(&app, &rp).await;
    let (st, _) = redeem(&app.http, &app, &code, &verifier).await;
    assert_eq!(st, StatusCode::OK);
    crate::mfa::sign_out(&app).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    // A whole code flow with a password, as a browser makes it: one GET /authorize, the login
    // page, the password, the redirect with the code; then the exchange.
    let before = commits(&app);
    let s = rp.start(&["offline_access"], &[]);
    let back = crate::oidc::sign_in_via(&app, &s.url, "alice").await;
    let code = crate::oidc::query(&back)["code"].clone();
    let verifier = s.verifier.secret().clone();
    let (st, t) = redeem(&app.http, &app, &code, &verifier).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let flow = commits(&app) - before;

    // Refreshes.
    let mut rt = t["refresh_token"].as_str().unwrap().to_owned();
    let before = commits(&app);
    for _ in 0..10 {
        let (st, t) = refresh(&app.http, &app, &rt).await;
        assert_eq!(st, StatusCode::OK, "{t}");
        rt = t["refresh_token"].as_str().unwrap().to_owned();
    }
    let per_refresh = (commits(&app) - before) as f64 / 10.0;

    // client_credentials: nothing per token; the issuance log is flushed once within a second.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let before = commits(&app);
    for _ in 0..100 {
        let r = app
            .http
            .post(app.url("/token"))
            .basic_auth("rp", Some(SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let _: Value = r.json().await.unwrap();
    }
    let immediate = commits(&app) - before;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let cc_after_flush = commits(&app) - before;
    eprintln!(
        "durable commits ({b:?}): code flow {flow}, refresh {per_refresh}, 100 client_credentials {immediate} (after the log flush {cc_after_flush})"
    );
    assert!(flow <= 4, "a code flow with a password took {flow} commits");
    assert!(per_refresh <= 1.0, "a refresh took {per_refresh} commits");
    assert!(
        immediate <= 1,
        "client_credentials wrote per token: {immediate} commits for 100 tokens"
    );
    assert!(cc_after_flush <= 2, "{cc_after_flush}");
}
on_both_backends!(commits_per_flow, super::commits_per_flow);
