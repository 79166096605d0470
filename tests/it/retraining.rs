//! Retraining on what vigil saw: `vigil risk export` writes the sign-in log in the replay format,
//! labelled from vigil's own evidence — verified sign-ins legitimate, a user's report an attack —
//! and `risk replay` reads it back.

use reqwest::StatusCode;

use crate::helpers::{csrf_in, spawn_app, spawn_app_with, Backend};
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

/// The CLI against the test's database.
fn cli(app: &crate::helpers::TestApp, args: &[&str]) -> std::process::Output {
    let db = app._db.url_string();
    crate::cli::run_with_env(
        args,
        None,
        &[
            ("VIGIL_DATABASE_URL", db.as_str()),
            ("VIGIL_MASTER_KEY", crate::helpers::TEST_MASTER_KEY),
        ],
    )
}

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A generated history of 300 people in the database, as if moved from another identity
/// provider, ending now.
fn import_history(app: &crate::helpers::TestApp, dir: &std::path::Path) {
    let synth = dir.join("synth.csv");
    let synth = synth.to_str().unwrap();
    ok(&cli(
        app,
        &[
            "risk", "synth", "--users", "300", "--seed", "3", "--out", synth,
        ],
    ));
    let said = ok(&cli(
        app,
        &[
            "risk",
            "import",
            "--input",
            synth,
            "--create-users",
            "--shift-to-now",
        ],
    ));
    assert!(said.contains("(300 users created)"), "{said}");
    assert!(said.contains("left out: 3 takeovers"), "{said}");
}

/// A deployment whose live model is still freeman-hier-1 (promoted before freeman-hier-2
/// shipped): the stored row every node reads.
async fn live_model_is_hier_1(app: &crate::helpers::TestApp) {
    let models = vigil::flow::models::Models {
        live: Some(vigil::flow::models::NamedModel {
            name: "freeman-hier-1".into(),
            config: vigil::risk::config::preset("freeman-hier-1").unwrap(),
            since: 0,
            by: "earlier admin".into(),
        }),
        ..Default::default()
    };
    let json = serde_json::to_string(&models).unwrap();
    app.svc
        .db
        .run(move |c| vigil::store::risk::put_state(c, "models", &json, 1))
        .await
        .unwrap();
}

fn id_token_model(tokens: &serde_json::Value) -> String {
    let claims = crate::oidc::payload(tokens["id_token"].as_str().unwrap());
    claims["risk"]["model"].as_str().unwrap().to_owned()
}

/// export → fit → shadow → compare → promote, end to end on a generated log: a fitted model
/// is scored in shadow beside the live one on a real sign-in, the console's gate refuses it
/// exactly when `vigil risk compare` does, and a better model passes, goes live on the next
/// sign-in's `risk` claim, and every step is audited.
async fn a_candidate_goes_through_shadow_and_the_gate(b: Backend) {
    use crate::admin::{admin_sign_in, submit};
    use crate::admin_users::{audited, text_of};
    let Some((app, secret)) = crate::admin::admin_app(b).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    import_history(&app, dir.path());
    live_model_is_hier_1(&app).await;
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let said = ok(&cli(&app, &["risk", "export", "--out", &path("log.csv")]));
    // The import's 1,294 sign-ins and root's own.
    let legitimate: u64 = said
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((1294..1300).contains(&legitimate), "{said}");
    let fitted = ok(&cli(
        &app,
        &[
            "risk",
            "fit",
            "--input",
            &path("log.csv"),
            "--from",
            "freeman-hier-1",
        ],
    ));
    std::fs::write(path("fitted.json"), &fitted).unwrap();
    let fitted_ships = cli(
        &app,
        &[
            "risk",
            "compare",
            "--input",
            &path("log.csv"),
            "--previous",
            "freeman-hier-1",
            "--candidate",
            &path("fitted.json"),
        ],
    )
    .status
    .success();

    // Nonsense is a readable error; the fitted model goes into shadow.
    let r = submit(
        &app,
        "/admin/policy",
        "/admin/policy/model/shadow",
        &[
            ("name", "fitted"),
            ("config", "{\"score\": {\"scale\": 0}}"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("score scale above 0"));
    let r = submit(
        &app,
        "/admin/policy",
        "/admin/policy/model/shadow",
        &[("name", "fitted on the import"), ("config", &fitted)],
    )
    .await;
    assert_eq!(
        crate::oidc::location(&r),
        "/admin/policy?notice=shadow_set#model"
    );
    let page = app.get("/admin/policy").await.text().await.unwrap();
    assert_eq!(
        text_of(&page, "#shadow-model").as_deref(),
        Some("fitted on the import")
    );
    let live_before = text_of(&page, "#live-version").unwrap();
    let shadow_version = text_of(&page, "#shadow-version").unwrap();
    assert_ne!(live_before, shadow_version);

    // A real sign-in: the live model decides and names itself in the claim; the shadow model's
    // opinion is only logged.
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    sign_out(&app).await;
    let (tokens, _) = tokens_for_user(&app, &rp, "alice", &[]).await;
    assert_eq!(id_token_model(&tokens), live_before);
    let id = crate::enforcement::latest_signin(&app, "alice").await;
    let row = app
        .svc
        .db
        .run(move |c| vigil::store::signins::find(c, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.model.as_deref(), Some(live_before.as_str()));
    let shadow: serde_json::Value = serde_json::from_str(row.shadow.as_deref().unwrap()).unwrap();
    assert_eq!(shadow["model"], shadow_version.as_str());
    assert!(["allow", "step_up", "block"].contains(&shadow["decision"].as_str().unwrap()));

    // The policy page compares both; the gate judges the fitted model as the CLI did.
    sign_out(&app).await;
    admin_sign_in(&app, &secret).await;
    let page = app.get("/admin/policy").await.text().await.unwrap();
    let compared: u64 = text_of(&page, "#shadow-compared").unwrap().parse().unwrap();
    assert!(compared >= 1, "alice's sign-in was scored by both");
    let r = submit(&app, "/admin/policy", "/admin/policy/model/promote", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"gate\""), "the checks are shown");
    let verdict = text_of(&page, "#gate-verdict").unwrap();
    assert_eq!(verdict.starts_with("Promoted."), fitted_ships, "{verdict}");
    if !fitted_ships {
        assert_eq!(audited(&app, "model.promotion_refused").await.len(), 1);
        assert_eq!(text_of(&page, "#live-version").unwrap(), live_before);
    }

    // freeman-hier-2 beats freeman-hier-1 on this log (the CLI says so) and goes live.
    let fitted_path = path("fitted.json");
    ok(&cli(
        &app,
        &[
            "risk",
            "compare",
            "--input",
            &path("log.csv"),
            "--previous",
            if fitted_ships {
                &fitted_path
            } else {
                "freeman-hier-1"
            },
            "--candidate",
            "freeman-hier-2",
        ],
    ));
    let r = submit(
        &app,
        "/admin/policy",
        "/admin/policy/model/shadow",
        &[("name", ""), ("config", "freeman-hier-2")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = submit(&app, "/admin/policy", "/admin/policy/model/promote", &[]).await;
    let page = r.text().await.unwrap();
    let verdict = text_of(&page, "#gate-verdict").unwrap();
    assert!(verdict.starts_with("Promoted."), "{verdict}");
    assert_eq!(
        text_of(&page, "#live-model").as_deref(),
        Some("freeman-hier-2")
    );
    assert!(page.contains("id=\"no-shadow\""));
    let live_after = text_of(&page, "#live-version").unwrap();
    assert_ne!(live_after, live_before);
    let promoted = audited(&app, "model.promoted").await;
    let details: serde_json::Value =
        serde_json::from_str(&promoted.last().unwrap().details).unwrap();
    assert_eq!(details["gate"]["ship"], true);
    assert_eq!(details["shadow"], "freeman-hier-2");
    assert_eq!(audited(&app, "model.shadow_set").await.len(), 2);

    // The next sign-in is scored by the promoted model.
    sign_out(&app).await;
    let (tokens, _) = tokens_for_user(&app, &rp, "alice", &[]).await;
    assert_eq!(id_token_model(&tokens), live_after);

    // Nothing in shadow: promotion is a readable error.
    admin_sign_in(&app, &secret).await;
    let r = submit(&app, "/admin/policy", "/admin/policy/model/promote", &[]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("no shadow model"));
}

on_both_backends!(
    a_candidate_goes_through_shadow_and_the_gate,
    super::a_candidate_goes_through_shadow_and_the_gate
);

/// `VIGIL_RISK_RETRAIN_DAYS`: the first look starts the clock; when the period is over a model
/// fitted on the period's labelled log goes into shadow for a person to promote; a shadow model
/// an administrator set is never replaced; a log too small to judge proposes nothing.
async fn retraining_proposes_a_fitted_candidate(b: Backend) {
    use vigil::flow::models::{current, retrain_if_due, Retrained, RETRAINING};
    let app = spawn_app_with(b, &[("VIGIL_RISK_RETRAIN_DAYS", "30")])
        .await
        .unwrap();
    let day = 86_400;
    let now = app.svc.clock.now();
    assert_eq!(
        retrain_if_due(&app.svc, now).await.unwrap(),
        Retrained::NotDue
    );
    app.clock.advance_secs(29 * day);
    assert_eq!(
        retrain_if_due(&app.svc, app.svc.clock.now()).await.unwrap(),
        Retrained::NotDue
    );
    // Due, but nothing to learn from.
    app.clock.advance_secs(day);
    let r = retrain_if_due(&app.svc, app.svc.clock.now()).await.unwrap();
    assert!(
        matches!(&r, Retrained::Skipped(why) if why.contains("at least 200")),
        "{r:?}"
    );

    // A month later, with history: a generated log of 89 days imported as ending now (through
    // the library, so that "now" is the test's clock); its last 30 days are the window.
    app.clock.advance_secs(30 * day);
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth.csv");
    ok(&cli(
        &app,
        &[
            "risk",
            "synth",
            "--users",
            "600",
            "--seed",
            "4",
            "--out",
            synth.to_str().unwrap(),
        ],
    ));
    let now = app.svc.clock.now();
    let open = || std::io::BufReader::new(std::fs::File::open(&synth).unwrap());
    let last = vigil::flow::history::last_time(open()).unwrap();
    let n = vigil::flow::history::import_log(
        &app.svc,
        &vigil::flow::accounts::Actor::new("test"),
        now,
        open(),
        true,
        now.micros() - last.micros(),
    )
    .await
    .unwrap();
    assert_eq!(n.users_created, 600);
    let r = retrain_if_due(&app.svc, now).await.unwrap();
    let Retrained::Proposed(name) = r else {
        panic!("expected a proposal, got {r:?}");
    };
    assert!(name.starts_with("fitted "), "{name}");
    let models = current(&app.svc).await.unwrap();
    let shadow = models.shadow.unwrap();
    assert_eq!(
        (shadow.name.as_str(), shadow.by.as_str()),
        (name.as_str(), RETRAINING)
    );
    assert!(
        models.live.is_none(),
        "a person promotes, retraining does not"
    );
    assert_eq!(
        crate::admin_users::audited(&app, "model.retrained")
            .await
            .len(),
        1
    );
    // Not again before the period is over.
    assert_eq!(
        retrain_if_due(&app.svc, now).await.unwrap(),
        Retrained::NotDue
    );

    // An administrator's own shadow model is left alone.
    vigil::flow::models::set_shadow(
        &app.svc,
        &vigil::flow::accounts::Actor::new("test"),
        "root",
        now,
        "mine",
        vigil::risk::config::preset("freeman-hier-1").unwrap(),
    )
    .await
    .unwrap();
    app.clock.advance_secs(30 * day);
    let r = retrain_if_due(&app.svc, app.svc.clock.now()).await.unwrap();
    assert!(matches!(r, Retrained::Skipped(_)), "{r:?}");
    assert_eq!(
        current(&app.svc).await.unwrap().shadow.unwrap().name,
        "mine"
    );
}

on_both_backends!(
    retraining_proposes_a_fitted_candidate,
    super::retraining_proposes_a_fitted_candidate
);

/// Two admins promote the same shadow model at once: it goes live once, and the other
/// promotion is refused with a readable reason instead of promoting twice or a 500.
async fn racing_promotions_promote_once(b: Backend) {
    use vigil::flow::accounts::Actor;
    use vigil::flow::models::{current, promote, set_shadow};
    let app = spawn_app(b).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    import_history(&app, dir.path());
    live_model_is_hier_1(&app).await;
    let (svc, now) = (&app.svc, app.svc.clock.now());
    let cfg = vigil::risk::config::preset("freeman-hier-2").unwrap();
    set_shadow(svc, &Actor::new("a"), "a", now, "freeman-hier-2", cfg)
        .await
        .unwrap();
    let (first, second) = (Actor::new("a"), Actor::new("b"));
    let (a, b2) = tokio::join!(
        promote(svc, &first, "a", now, 90),
        promote(svc, &second, "b", now, 90)
    );
    let shipped = [&a, &b2]
        .iter()
        .filter(|r| matches!(r, Ok(j) if j.ship))
        .count();
    let refused = [&a, &b2]
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(vigil::flow::FlowError::Conflict(_) | vigil::flow::FlowError::Invalid(_))
            )
        })
        .count();
    assert_eq!((shipped, refused), (1, 1), "{a:?} {b2:?}");
    assert_eq!(
        crate::admin_users::audited(&app, "model.promoted")
            .await
            .len(),
        1
    );
    let m = current(svc).await.unwrap();
    assert_eq!(m.live.unwrap().name, "freeman-hier-2");
    assert!(m.shadow.is_none());
}

on_both_backends!(
    racing_promotions_promote_once,
    super::racing_promotions_promote_once
);
