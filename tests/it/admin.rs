//! The admin console through real pages: who may enter, the second factor and re-authentication
//! an admin needs, and the dashboard, policy, fairness and keys pages used through their forms.

use reqwest::StatusCode;
use vigil::auth::totp;

use crate::helpers::{csrf_in, spawn_app, spawn_app_with, Backend, TestApp, PASSWORD};
use crate::mfa::{enrol_totp, sign_out, submit_code};
use crate::oidc::location;
use crate::on_both_backends;

/// An app whose admin `root` has TOTP and is signed in with it (acr mfa). Returns the TOTP
/// secret, for re-authentication later.
pub async fn admin_app(b: Backend) -> Option<(TestApp, Vec<u8>)> {
    admin_app_with(b, &[]).await
}

pub async fn admin_app_with(b: Backend, extra: &[(&str, &str)]) -> Option<(TestApp, Vec<u8>)> {
    let app = spawn_app_with(b, extra).await?;
    let secret = make_admin(&app).await;
    Some((app, secret))
}

/// Create the admin `root` with TOTP in the app's browser and sign it in (the browser's earlier
/// session, if any, is replaced). Returns the TOTP secret.
pub async fn make_admin(app: &TestApp) -> Vec<u8> {
    app.add_user("root", true).await;
    let r = app.login("root", PASSWORD).await;
    assert_eq!(
        location(&r),
        "/account",
        "an admin without a factor signs in"
    );
    let (secret, _) = enrol_totp(app).await;
    sign_out(app).await;
    admin_sign_in(app, &secret).await;
    secret
}

/// Sign `root` in again with password and TOTP (also how an admin re-authenticates).
pub async fn admin_sign_in(app: &TestApp, secret: &[u8]) {
    app.clock.advance_secs(30); // a fresh TOTP step: each one is accepted once
                                // `reauth=1` shows the form even to a browser that is still signed in.
    let html = app.get("/login?reauth=1").await.text().await.unwrap();
    let r = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "root"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&r),
        "/login/mfa",
        "an admin with a factor always uses it"
    );
    let code = totp::code_at(secret, app.svc.clock.now()).unwrap();
    let r = submit_code(app, "/login/mfa/totp", &code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// GET `page`, then POST `fields` (plus the page's CSRF token) to `action`, like a browser
/// submitting the form on that page.
pub async fn submit(
    app: &TestApp,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = app.get(page).await.text().await.unwrap();
    let token = csrf_in(&html);
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf_token", &token));
    app.http
        .post(app.url(action))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Every admin page: anonymous visitors are sent to sign in and come back; non-admins get 403.
pub const PAGES: &[&str] = &[
    "/admin",
    "/admin/users",
    "/admin/clients",
    "/admin/signins",
    "/admin/review",
    "/admin/policy",
    "/admin/fairness",
    "/admin/keys",
];

/// Every admin form action (a POST).
pub const ACTIONS: &[&str] = &[
    "/admin/users",
    "/admin/clients",
    "/admin/review",
    "/admin/policy",
    "/admin/policy/denylist/reload",
    "/admin/policy/model/shadow",
    "/admin/policy/model/shadow/clear",
    "/admin/policy/model/promote",
    "/admin/keys/rotate",
];

async fn who_may_enter(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    for page in PAGES {
        let r = app.get(page).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{page}");
        let to = location(&r);
        assert!(to.starts_with("/login?next="), "{page} -> {to}");
    }
    for action in ACTIONS {
        let r = app
            .http
            .post(app.url(action))
            .form(&[("csrf_token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "anonymous POST {action}");
        assert!(location(&r).starts_with("/login"));
    }
    // The login page brings the admin back to the page they asked for.
    app.add_user("boss", true).await;
    app.get("/login?next=/admin/keys").await;
    let r = app.login("boss", PASSWORD).await;
    assert_eq!(location(&r), "/admin/keys");
    // A next= that leaves the admin and account pages is ignored (no open redirect).
    sign_out(&app).await;
    app.get("/login?next=//evil.example/admin").await;
    let r = app.login("boss", PASSWORD).await;
    assert_eq!(location(&r), "/account");
    sign_out(&app).await;

    app.add_user("ann", false).await;
    app.login("ann", PASSWORD).await;
    for page in PAGES {
        let r = app.get(page).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "non-admin GET {page}");
        assert!(r.text().await.unwrap().contains("administrators"));
    }
    let token = csrf_in(&app.get("/account").await.text().await.unwrap());
    for action in ACTIONS {
        let r = app
            .http
            .post(app.url(action))
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "non-admin POST {action}");
    }
}
on_both_backends!(who_may_enter, super::who_may_enter);

async fn admin_needs_second_factor_and_csrf(b: Backend) {
    let Some((app, secret)) = admin_app(b).await else {
        return;
    };
    for page in PAGES {
        let r = app.get(page).await;
        assert_eq!(r.status(), StatusCode::OK, "admin GET {page}");
        let html = r.text().await.unwrap();
        assert!(html.contains("csrf_token"), "{page} carries a CSRF token");
    }
    for action in ACTIONS {
        let r = app
            .http
            .post(app.url(action))
            .form(&[("medium", "50")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "POST {action} without CSRF"
        );
        let r = app
            .http
            .post(app.url(action))
            .form(&[("csrf_token", "forged")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "POST {action}, forged CSRF"
        );
    }

    // A password-only session of an admin who has a factor is sent to sign in with it.
    sign_out(&app).await;
    app.clock.advance_secs(30);
    let r = app.login("root", PASSWORD).await;
    assert_eq!(location(&r), "/login/mfa");
    let r = app.get("/admin").await;
    assert!(location(&r).starts_with("/login?next="), "no session yet");
    admin_sign_in(&app, &secret).await;
    assert_eq!(app.get("/admin").await.status(), StatusCode::OK);
}
on_both_backends!(
    admin_needs_second_factor_and_csrf,
    super::admin_needs_second_factor_and_csrf
);

async fn keys_rotate_needs_recent_sign_in(b: Backend) {
    let Some((app, secret)) = admin_app(b).await else {
        return;
    };
    let before = app.get("/admin/keys").await.text().await.unwrap();
    // Keys exist once anything was signed; the page lists what there is.
    let active_before = before.matches(">active<").count();

    // Ten minutes later, rotating asks the admin to sign in again first.
    app.clock.advance_secs(600);
    let r = submit(&app, "/admin/keys", "/admin/keys/rotate", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&r).starts_with("/login?reauth=1&next="),
        "{}",
        location(&r)
    );
    let login = app.get(&location(&r)).await.text().await.unwrap();
    assert!(login.contains("confirm it"), "the login page says why");
    admin_sign_in(&app, &secret).await;

    let r = submit(&app, "/admin/keys", "/admin/keys/rotate", &[]).await;
    assert_eq!(location(&r), "/admin/keys?notice=rotated");
    let after = app.get("/admin/keys").await.text().await.unwrap();
    assert!(after.matches(">active<").count() >= active_before.max(1));
    assert!(
        after.contains("rotated"),
        "the old keys are shown as rotated"
    );

    let log = app
        .svc
        .db
        .run(|c| vigil::store::audit::page(c, 0, 1000))
        .await
        .unwrap();
    let e = log
        .iter()
        .find(|e| e.action == "keys.rotated")
        .expect("rotation audited");
    assert!(e.actor.is_some() && e.ip.is_some(), "who and from where");
}
on_both_backends!(
    keys_rotate_needs_recent_sign_in,
    super::keys_rotate_needs_recent_sign_in
);

async fn policy_edit_changes_decisions_and_backtests_candidate(b: Backend) {
    let Some((app, _)) = admin_app(b).await else {
        return;
    };
    let page = app.get("/admin/policy").await.text().await.unwrap();
    assert!(page.contains("name=\"medium\"") && page.contains("value=\"35\""));

    // Bad input is a readable error, not a 400 from the extractor or a 500.
    let r = submit(
        &app,
        "/admin/policy",
        "/admin/policy",
        &[
            ("medium", "80"),
            ("high", "20"),
            ("low_action", "allow"),
            ("medium_action", "step_up"),
            ("high_action", "block"),
            ("deny_listed_action", "block"),
            ("travel_speed_kmh", "900"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("medium must be below high"));

    // A user signs in frictionlessly under the default policy.
    app.add_user("ann", false).await;
    let ann = crate::helpers::client(app.port);
    let login = |c: reqwest::Client| {
        let app = &app;
        async move {
            let html = c
                .get(app.url("/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            c.post(app.url("/login"))
                .form(&[
                    ("username", "ann"),
                    ("password", PASSWORD),
                    ("csrf_token", &csrf_in(&html)),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(location(&login(ann.clone()).await), "/account");

    // The admin blocks every level (with a candidate that would allow low risk).
    let r = submit(
        &app,
        "/admin/policy",
        "/admin/policy",
        &[
            ("medium", "40"),
            ("high", "75"),
            ("low_action", "block"),
            ("medium_action", "block"),
            ("high_action", "block"),
            ("deny_listed_action", "block"),
            ("travel_speed_kmh", "1000"),
            ("candidate_enabled", "on"),
            ("candidate_medium", "40"),
            ("candidate_high", "75"),
            ("candidate_low_action", "allow"),
            ("candidate_medium_action", "step_up"),
            ("candidate_high_action", "block"),
            ("candidate_deny_listed_action", "block"),
        ],
    )
    .await;
    assert_eq!(location(&r), "/admin/policy?notice=saved");
    let page = app.get("/admin/policy").await.text().await.unwrap();
    assert!(page.contains("value=\"40\"") && page.contains("value=\"1000\""));
    assert!(page.contains("id=\"backtest-candidate\""));

    // The next sign-in is refused by the new policy, on this node at once.
    let r = login(crate::helpers::client(app.port)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The backtest replays stored sign-ins through the candidate: it would have allowed the
    // blocked low-risk sign-in.
    let page = app.get("/admin/policy").await.text().await.unwrap();
    let doc = scraper::Html::parse_document(&page);
    let cell = |sel: &str| {
        doc.select(&scraper::Selector::parse(sel).unwrap())
            .next()
            .map(|e| e.text().collect::<String>())
            .unwrap_or_default()
    };
    let changed: u64 = cell("#backtest-changed").trim().parse().unwrap();
    assert!(
        changed >= 1,
        "the candidate differs on at least one sign-in"
    );

    let log = app
        .svc
        .db
        .run(|c| vigil::store::audit::page(c, 0, 1000))
        .await
        .unwrap();
    let e = log
        .iter()
        .find(|e| e.action == "policy.changed")
        .expect("audited");
    assert!(e.details.contains("\"before\"") && e.details.contains("\"after\""));
}
on_both_backends!(
    policy_edit,
    super::policy_edit_changes_decisions_and_backtests_candidate
);

async fn dashboard_and_fairness_count_sign_ins(b: Backend) {
    let Some((app, _)) = admin_app(b).await else {
        return;
    };
    app.add_user("ann", false).await;
    let ann = crate::helpers::client(app.port);
    for password in ["wrong-password-1", PASSWORD] {
        let html = ann
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        ann.post(app.url("/login"))
            .form(&[
                ("username", "ann"),
                ("password", password),
                ("csrf_token", &csrf_in(&html)),
            ])
            .send()
            .await
            .unwrap();
    }
    let html = app.get("/admin").await.text().await.unwrap();
    assert!(html.contains("<svg"), "charts are inline SVG");
    assert!(!html.contains("<script"), "no scripts on the dashboard");
    let doc = scraper::Html::parse_document(&html);
    let row: Vec<String> = doc
        .select(&scraper::Selector::parse("#totals tbody tr:first-child td").unwrap())
        .map(|e| e.text().collect())
        .collect();
    // root: allowed once then stepped up once; ann: failed once, allowed once.
    let n = |i: usize| row[i].trim().parse::<u64>().unwrap();
    assert!(n(0) >= 2, "allowed {row:?}");
    assert!(n(1) >= 1, "stepped up {row:?}");
    assert!(n(3) >= 1, "failed {row:?}");
    assert!(html.contains("id=\"review-open\""));

    let html = app.get("/admin/fairness").await.text().await.unwrap();
    for dim in [
        "country",
        "continent",
        "device type",
        "browser family",
        "history length",
    ] {
        assert!(html.contains(&format!("By {dim}")), "{dim}");
    }
    let doc = scraper::Html::parse_document(&html);
    let total: u64 = doc
        .select(&scraper::Selector::parse("#legit-total").unwrap())
        .next()
        .map(|e| e.text().collect::<String>())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(total >= 3, "verified sign-ins of root and ann: {total}");
    assert!(html.contains("id=\"over-time\""));
}
on_both_backends!(
    dashboard_and_fairness,
    super::dashboard_and_fairness_count_sign_ins
);

async fn failed_step_up_waits_for_review(b: Backend) {
    let Some((app, _)) = admin_app(b).await else {
        return;
    };
    // Someone with root's password but not the second factor, from another browser.
    let thief = crate::helpers::client(app.port);
    let html = thief
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = thief
        .post(app.url("/login"))
        .form(&[
            ("username", "root"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/login/mfa");
    let page = thief
        .get(app.url("/login/mfa"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for _ in 0..2 {
        let r = thief
            .post(app.url("/login/mfa/totp"))
            .form(&[("csrf_token", csrf_in(&page).as_str()), ("code", "000000")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // One review for the step-up (not one per wrong code), recommending "attack".
    let html = app.get("/admin/review").await.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let items: Vec<_> = doc
        .select(&scraper::Selector::parse("article.review-item[data-kind=step_up_failed]").unwrap())
        .collect();
    assert_eq!(items.len(), 1, "{html}");
    assert_eq!(items[0].value().attr("data-recommended"), Some("attack"));
}
on_both_backends!(
    failed_step_up_waits_for_review,
    super::failed_step_up_waits_for_review
);

async fn deny_list_status_and_reload(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("deny.txt");
    std::fs::write(&list, "# Tor exits\n198.51.100.7\n").unwrap();
    let path = list.to_str().unwrap().to_owned();
    let Some((app, _)) = admin_app_with(b, &[("VIGIL_IP_DENYLIST", &path)]).await else {
        return;
    };
    let entries = |html: &str| {
        let doc = scraper::Html::parse_document(html);
        doc.select(&scraper::Selector::parse("#deny-entries").unwrap())
            .next()
            .map(|e| e.text().collect::<String>())
            .unwrap_or_default()
    };
    let html = app.get("/admin/policy").await.text().await.unwrap();
    assert_eq!(entries(&html), "1");
    assert!(html.contains("deny.txt"));

    std::fs::write(&list, "198.51.100.7\n203.0.113.0/24\n192.0.2.9\n").unwrap();
    let r = submit(&app, "/admin/policy", "/admin/policy/denylist/reload", &[]).await;
    assert_eq!(location(&r), "/admin/policy?notice=saved");
    let html = app.get("/admin/policy").await.text().await.unwrap();
    assert_eq!(entries(&html), "3");

    // An unreadable file is a readable error, and the list in force stays.
    std::fs::remove_file(&list).unwrap();
    let r = submit(&app, "/admin/policy", "/admin/policy/denylist/reload", &[]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("could not be read"));
    let html = app.get("/admin/policy").await.text().await.unwrap();
    assert_eq!(entries(&html), "3");
}
on_both_backends!(
    deny_list_status_and_reload,
    super::deny_list_status_and_reload
);

/// The dashboard's counts come from the database's GROUP BY (not from rows loaded into vigil):
/// known sign-ins at known ages land in the right hour and day, scores in their buckets, and
/// reasons are counted once per evaluated attempt (a step-up's ending is not counted again).
async fn dashboard_aggregates_exactly(b: Backend) {
    let Some((app, _)) = admin_app(b).await else {
        return;
    };
    let now = app.svc.clock.now();
    let hour: i64 = 3_600_000_000;
    let row = |age_us: i64, outcome: &str, score: Option<i64>, reasons: &[&str]| {
        vigil::store::signins::SigninRow {
            id: vigil::store::new_id(),
            at: now.micros() - age_us,
            user_id: None,
            method: "password".into(),
            outcome: outcome.into(),
            ip: None,
            user_agent: None,
            device_id: None,
            client_id: None,
            session_id: None,
            acr: None,
            amr: None,
            features: None,
            score,
            level: None,
            decision: None,
            reasons: (!reasons.is_empty()).then(|| serde_json::to_string(reasons).unwrap()),
            assessment: None,
            model: None,
            geoip_build: None,
            candidate_decision: None,
            shadow: None,
        }
    };
    let rows = vec![
        row(10, "success", Some(5), &["new_device"]),
        row(
            hour + 10,
            "step_up_required",
            Some(95),
            &["new_device", "new_country"],
        ),
        // The ending of that step-up: not scored again, its reasons not counted again.
        row(
            hour + 5,
            "step_up_passed",
            Some(95),
            &["new_device", "new_country"],
        ),
        row(30 * hour, "blocked", Some(100), &["impossible_travel"]),
        row(6 * 24 * hour + hour, "failure", None, &[]),
        // Outside the week, and in the future: not counted.
        row(7 * 24 * hour + 1, "success", Some(50), &["new_asn"]),
        row(-hour, "success", Some(50), &["new_asn"]),
    ];
    // The admin's own set-up sign-ins are in the log already: compare before and after.
    let d0 = vigil::flow::reports::dashboard(&app.svc, now)
        .await
        .unwrap();
    app.svc
        .db
        .run(move |c| {
            for r in &rows {
                vigil::store::signins::insert(c, r)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let d = vigil::flow::reports::dashboard(&app.svc, now)
        .await
        .unwrap();
    let delta = |f: fn(&vigil::flow::reports::Dashboard) -> u64| f(&d) - f(&d0);
    assert_eq!(delta(|d| d.last_7d.allowed), 1);
    assert_eq!(delta(|d| d.last_7d.stepped_up), 1);
    assert_eq!(delta(|d| d.last_7d.blocked), 1);
    assert_eq!(delta(|d| d.last_7d.failed), 1);
    assert_eq!(
        delta(|d| d.last_24h.blocked),
        0,
        "30 hours ago is yesterday"
    );
    assert_eq!(delta(|d| d.last_24h.stepped_up), 1);
    assert_eq!(
        delta(|d| d.hours[22].stepped_up),
        1,
        "an hour ago: the second-newest hour"
    );
    assert_eq!(
        delta(|d| d.days[5].blocked),
        1,
        "30 hours ago: the day before today"
    );
    assert_eq!(
        delta(|d| d.days[0].failed),
        1,
        "six days and an hour ago: the oldest day"
    );
    assert_eq!(
        delta(|d| d.score_histogram[9]),
        2,
        "95 and 100, not the step-up's ending"
    );
    assert_eq!(delta(|d| d.score_histogram[0]), 1);
    assert_eq!(delta(|d| d.score_histogram[5]), 0, "outside the week");
    let count = |d: &vigil::flow::reports::Dashboard, reason: &str| {
        d.top_reasons
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(count(&d, "new_device") - count(&d0, "new_device"), 2);
    assert_eq!(count(&d, "new_country") - count(&d0, "new_country"), 1);
    assert_eq!(
        count(&d, "impossible_travel") - count(&d0, "impossible_travel"),
        1
    );
    assert_eq!(
        count(&d, "new_asn"),
        count(&d0, "new_asn"),
        "outside the week"
    );
    let ranked: Vec<u64> = d.top_reasons.iter().map(|(_, n)| *n).collect();
    assert!(
        ranked.windows(2).all(|w| w[0] >= w[1]),
        "most frequent first: {ranked:?}"
    );
}
on_both_backends!(
    dashboard_aggregates_exactly,
    super::dashboard_aggregates_exactly
);
