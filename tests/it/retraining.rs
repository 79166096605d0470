//! Retraining on what vigil saw: `vigil risk export` writes the sign-in log in the replay format,
//! labelled from vigil's own evidence — verified sign-ins legitimate, a user's report an attack —
//! and `risk replay` reads it back.

use reqwest::StatusCode;

use crate::helpers::{csrf_in, spawn_app, Backend};
use crate::mfa::sign_out;
use crate::oidc::{add_client, rp, tokens_for_user, ClientSpec};
use crate::on_both_backends;

async fn the_export_is_labelled_from_vigils_evidence(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    tokens_for_user(&app, &rp, "alice", &[]).await;
    let first = crate::enforcement::latest_signin(&app, "alice").await;
    sign_out(&app).await;
    app.clock.advance_secs(3600);
    tokens_for_user(&app, &rp, "alice", &[]).await;
    let second = crate::enforcement::latest_signin(&app, "alice").await;
    assert_ne!(first, second);
    // alice says the second one was not her.
    let token = csrf_in(&app.get("/account").await.text().await.unwrap());
    let r = app
        .http
        .post(app.url("/account/signins/report"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("signin_id", second.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log.csv");
    let db = app._db.url_string();
    let env = [("VIGIL_DATABASE_URL", db.as_str())];
    let o = crate::cli::run_with_env(
        &["risk", "export", "--out", file.to_str().unwrap()],
        None,
        &env,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("1 legitimate, 1 attacks"), "{said}");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), vigil::risk::replay::HEADER.join(","));
    let rows: Vec<_> = lines
        .map(|l| vigil::risk::replay::parse_row(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    let by_id = |id: &str| rows.iter().find(|r| r.index == id).unwrap();
    let alice = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    assert_eq!(by_id(&first).user, alice.id, "the opaque id, not the name");
    assert!(by_id(&first).success && !by_id(&first).takeover);
    assert!(by_id(&second).success && by_id(&second).takeover);

    // `risk replay` reads it (its own attackers injected on top of the labelled ones).
    let o = crate::cli::run_with_env(
        &[
            "risk",
            "replay",
            "--input",
            file.to_str().unwrap(),
            "--json",
        ],
        None,
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A date in the future leaves nothing; a bad date is a usage error.
    let o = crate::cli::run_with_env(
        &[
            "risk",
            "export",
            "--since",
            "2999-01-01",
            "--out",
            file.to_str().unwrap(),
        ],
        None,
        &env,
    );
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1);
    let o = crate::cli::run_with_env(
        &[
            "risk",
            "export",
            "--since",
            "yesterday",
            "--out",
            file.to_str().unwrap(),
        ],
        None,
        &env,
    );
    assert_eq!(o.status.code(), Some(2));
}

on_both_backends!(
    the_export_is_labelled_from_vigils_evidence,
    super::the_export_is_labelled_from_vigils_evidence
);
