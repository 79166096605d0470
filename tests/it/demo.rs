//! `vigil demo`'s story (`src/demo.rs`), seeded into a real server on both backends: the
//! console has something to show on first start.

use crate::helpers::{spawn_app_with, Backend};
use crate::on_both_backends;

async fn the_demo_tells_its_story(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("deny.txt");
    std::fs::write(&deny, format!("{}/32\n", vigil::demo::DENY_LISTED)).unwrap();
    let env = [
        ("VIGIL_IP_DENYLIST", deny.to_str().unwrap()),
        ("VIGIL_GEOIP_CITY", "geoip/vigil-test-city.mmdb"),
        ("VIGIL_GEOIP_ASN", "geoip/vigil-test-asn.mmdb"),
    ];
    let Some(app) = spawn_app_with(b, &env).await else {
        return;
    };
    let story = vigil::demo::seed(&app.svc, "vigil-demo-user-pass")
        .await
        .unwrap()
        .expect("seeded the first time");
    assert!(story.history > 100, "{}", story.history);
    assert_eq!(story.events.len(), 3, "{:?}", story.events);
    assert!(
        story.events[0].contains("asked for a second factor"),
        "{:?}",
        story.events
    );
    assert!(story.events[1].contains("blocked"), "{:?}", story.events);

    // The console's pages have material: sign-ins by decision, reasons, a review queue with
    // the blocked attempt waiting, and the report (already judged an attack by its user).
    let now = app.svc.clock.now();
    let d = vigil::flow::reports::dashboard(&app.svc, now)
        .await
        .unwrap();
    assert!(d.review_open >= 1, "{}", d.review_open);
    let reported = app
        .svc
        .db
        .run(|c| vigil::store::reviews::reported_since(c, 0))
        .await
        .unwrap();
    assert_eq!(reported, 1, "dana's report, judged an attack by her");
    assert!(!d.top_reasons.is_empty());
    let amira = vigil::flow::accounts::find(&app.svc, "amira")
        .await
        .unwrap();
    let uid = amira.id.clone();
    let rows = app
        .svc
        .db
        .run(move |c| vigil::store::signins::recent_for_user(c, &uid, 3))
        .await
        .unwrap();
    assert_eq!(rows[0].outcome, "step_up_required");
    assert!(
        rows[0]
            .assessment
            .as_deref()
            .is_some_and(|r| r.contains("impossible_travel")),
        "{:?}\n{:?}",
        rows[0].assessment,
        rows.iter()
            .map(|r| (&r.outcome, &r.ip, r.at, &r.assessment, &r.decision))
            .collect::<Vec<_>>()
    );
    let dana = vigil::flow::accounts::find(&app.svc, "dana").await.unwrap();
    assert_eq!(dana.risk_state, "compromised");
    // Once.
    assert!(vigil::demo::seed(&app.svc, "vigil-demo-user-pass")
        .await
        .unwrap()
        .is_none());
}

on_both_backends!(the_demo_tells_its_story, super::the_demo_tells_its_story);
