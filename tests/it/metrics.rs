//! `/metrics` as an operator reads it: what people did (sign-ins by decision, level and outcome,
//! step-ups by factor, blocks by reason, throttled guesses, requests per route) moves the
//! counters, and every series the Grafana dashboard of the compose cluster plots exists.
//!
//! The counters are the process's (one process is one node), and the tests of this binary run
//! in one process: each assertion is "went up by at least", which other tests cannot break.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use vigil::auth::totp;

use crate::helpers::{spawn_app_with, Backend, TestApp, ALWAYS_STEP_UP, PASSWORD};
use crate::mfa::{enrol_totp, sign_out, submit_code};
use crate::oidc::location;
use crate::on_both_backends;

async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    r.text().await.unwrap()
}

/// The sum of the samples of `name` whose labels include all of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, want)| rest.split(',').any(|p| p == format!("{k}=\"{want}\"")));
            all.then(|| v.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// One password sign-in stepped up with TOTP, one wrong code, one wrong password, a throttled
/// guess and a sign-in blocked by policy: each shows in its own series.
async fn what_people_do_moves_the_counters(b: Backend) {
    let app = spawn_app_with(
        b,
        &[ALWAYS_STEP_UP[0], ("VIGIL_THROTTLE_ACCOUNT_FAILURES", "2")],
    )
    .await
    .unwrap();
    app.add_user("alice", false).await;
    app.add_user("bob", false).await;
    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (secret, _) = enrol_totp(&app).await;
    sign_out(&app).await;
    let before = scrape(&app).await;

    app.clock.advance_secs(30);
    assert_eq!(location(&app.login("alice", PASSWORD).await), "/login/mfa");
    let r = submit_code(&app, "/login/mfa/totp", "000000").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    assert_eq!(
        location(&submit_code(&app, "/login/mfa/totp", &code).await),
        "/account"
    );
    sign_out(&app).await;
    for _ in 0..3 {
        app.login("bob", "not the password").await;
    }
    let after = scrape(&app).await;
    let went_up = |name: &str, labels: &[(&str, &str)]| {
        let (b, a) = (value(&before, name, labels), value(&after, name, labels));
        assert!(a >= b + 1.0, "{name}{labels:?}: {b} -> {a}\n{after}");
    };
    went_up(
        "vigil_signins_total",
        &[("method", "password"), ("outcome", "step_up_required")],
    );
    went_up(
        "vigil_signins_total",
        &[
            ("method", "totp"),
            ("outcome", "step_up_passed"),
            ("decision", "step_up"),
        ],
    );
    went_up(
        "vigil_signins_total",
        &[
            ("method", "password"),
            ("outcome", "failure"),
            ("decision", "none"),
        ],
    );
    went_up(
        "vigil_step_ups_total",
        &[("factor", "totp"), ("result", "passed")],
    );
    went_up(
        "vigil_step_ups_total",
        &[("factor", "totp"), ("result", "failed")],
    );
    went_up("vigil_throttled_total", &[("budget", "shared")]);
    went_up(
        "vigil_http_requests_total",
        &[("route", "/login"), ("method", "POST"), ("status", "303")],
    );
    went_up(
        "vigil_http_requests_total",
        &[("route", "/login"), ("method", "POST"), ("status", "429")],
    );
    went_up(
        "vigil_http_request_duration_seconds_count",
        &[("route", "/login/mfa/totp"), ("method", "POST")],
    );
    went_up("vigil_password_hash_wait_seconds_count", &[]);
    went_up("vigil_audit_append_seconds_count", &[]);
    went_up("vigil_db_pool_wait_seconds_count", &[]);
    assert!(
        value(&after, "vigil_db_pool_connections", &[("state", "max")]) >= 1.0,
        "{after}"
    );
    // A path that matched no route is counted under one label, not one per path.
    app.get("/no/such/page/4711").await;
    let later = scrape(&app).await;
    // (The path, not its number: a sample value such as a duration sum may contain "4711".)
    assert!(
        !later.contains("no/such/page"),
        "raw paths never become labels"
    );
    assert!(
        value(
            &later,
            "vigil_http_requests_total",
            &[("route", "unmatched")]
        ) >= 1.0
    );

    // A policy that blocks every sign-in: the block is counted with its reason.
    let blocking = spawn_app_with(b, &[("VIGIL_RISK_POLICY", "low=block")])
        .await
        .unwrap();
    blocking.add_user("carol", false).await;
    let before = scrape(&blocking).await;
    let r = blocking.login("carol", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let after = scrape(&blocking).await;
    let (b0, a0) = (
        value(&before, "vigil_blocks_total", &[("reason", "policy")]),
        value(&after, "vigil_blocks_total", &[("reason", "policy")]),
    );
    assert!(a0 >= b0 + 1.0, "{b0} -> {a0}");
    assert!(
        value(
            &after,
            "vigil_signins_total",
            &[("outcome", "blocked"), ("decision", "block")]
        ) >= 1.0
    );
}
on_both_backends!(
    what_people_do_moves_the_counters,
    super::what_people_do_moves_the_counters
);

/// Every series the compose cluster's Grafana dashboard plots is one vigil exports: a renamed
/// metric would otherwise leave an empty panel that nobody notices until an incident.
#[actix_web::test]
async fn the_dashboard_plots_only_exported_series() {
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/dashboards/vigil.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut plotted = BTreeSet::new();
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("vigil_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                plotted.insert(name);
            }
        }
    }
    assert!(plotted.len() >= 10, "{plotted:?}");

    // The series a freshly started node exports once it has answered a request or two.
    let app = spawn_app_with(Backend::Sqlite, &[]).await.unwrap();
    app.add_user("dora", false).await;
    app.login("dora", PASSWORD).await;
    let text = scrape(&app).await;
    let mut exported: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    // Histograms are plotted through their `_bucket`, `_sum` and `_count` series; counter
    // vectors a node has not used yet (no block so far, say) are declared all the same.
    for n in exported.clone() {
        for suffix in ["_bucket", "_sum", "_count"] {
            exported.insert(format!("{n}{suffix}"));
        }
    }
    exported.extend(
        vigil::telemetry::declared()
            .into_iter()
            .flat_map(|n| ["", "_bucket", "_sum", "_count"].map(|s| format!("{n}{s}"))),
    );
    let missing: Vec<_> = plotted.difference(&exported).collect();
    assert!(missing.is_empty(), "plotted but not exported: {missing:?}");
}
