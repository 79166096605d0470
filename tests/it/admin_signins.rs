//! The sign-in log through the admin console: filters, keyset pages, the detail view with its
//! contributions, and the CSV / JSON-lines exports parsed back.

use std::sync::Arc;

use reqwest::StatusCode;
use vigil::flow::signin_log::CSV_HEADER;
use vigil::store::signins::SigninRow;

use crate::admin::{admin_app_with, admin_sign_in};
use crate::helpers::{Backend, TestApp, PASSWORD};
use crate::oidc::location;
use crate::on_both_backends;
use crate::risk::{baseline, browser, login, BERLIN, SYDNEY};

/// Trusted proxy and the test GeoIP databases, so sign-ins have places.
pub const GEO: &[(&str, &str)] = &[
    ("VIGIL_TRUSTED_PROXIES", "127.0.0.1/32"),
    ("VIGIL_GEOIP_CITY", "geoip/vigil-test-city.mmdb"),
    ("VIGIL_GEOIP_ASN", "geoip/vigil-test-asn.mmdb"),
];

/// One row of the log table as the page shows it.
#[derive(Debug)]
pub struct Row {
    pub id: String,
    pub user: String,
    pub outcome: String,
    pub decision: String,
    pub text: String,
}

pub fn rows(html: &str) -> Vec<Row> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("#signins tbody tr").unwrap();
    doc.select(&sel)
        .map(|tr| {
            let a = |k: &str| tr.value().attr(k).unwrap_or_default().to_owned();
            Row {
                id: a("data-id"),
                user: a("data-user"),
                outcome: a("data-outcome"),
                decision: a("data-decision"),
                text: tr.text().collect(),
            }
        })
        .collect()
}

async fn page(app: &TestApp, path: &str) -> (StatusCode, String) {
    let r = app.get(path).await;
    (r.status(), r.text().await.unwrap())
}

fn day(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

async fn log_filters_detail_and_export(b: Backend) {
    let Some((app, secret)) = admin_app_with(b, GEO).await else {
        return;
    };
    app.add_user("ann", false).await;
    app.add_user("bob", false).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let home = browser(&app, &jar, BERLIN);
    baseline(&app, &home, "ann", 2).await;
    // A wrong password for ann, and bob's first sign-in from Sydney.
    let page_html = home
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = home
        .post(app.url("/login"))
        .form(&[
            ("username", "ann"),
            ("password", "not the password"),
            ("csrf_token", &crate::helpers::csrf_in(&page_html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let bob_jar = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(
        location(&login(&app, &browser(&app, &bob_jar, SYDNEY), "bob", None).await),
        "/account"
    );
    admin_sign_in(&app, &secret).await;

    // Everything, newest first, with place and device.
    let (status, html) = page(&app, "/admin/signins").await;
    assert_eq!(status, StatusCode::OK);
    let all = rows(&html);
    assert!(all.len() >= 5, "{all:?}");
    assert!(all
        .iter()
        .any(|r| r.user == "ann" && r.outcome == "failure"));
    assert!(all
        .iter()
        .any(|r| r.user == "ann" && r.text.contains("Berlin") && r.text.contains("DE")));
    assert!(all
        .iter()
        .any(|r| r.user == "bob" && r.text.contains("Sydney") && r.text.contains("AS64497")));
    assert!(
        html.contains("href=\"/admin/users/"),
        "users link to their page"
    );
    assert!(
        all.iter().any(|r| r.text.contains("192.0.2.10")),
        "IPs are shown"
    );

    // Filters: by user, decision, outcome, date.
    let ann = rows(&page(&app, "/admin/signins?user=ann").await.1);
    assert_eq!(ann.len(), 3, "{ann:?}");
    assert!(ann.iter().all(|r| r.user == "ann"));
    let ann_upper = rows(&page(&app, "/admin/signins?user=ANN").await.1);
    assert_eq!(ann_upper.len(), 3, "usernames are case-insensitive");
    let nobody = page(&app, "/admin/signins?user=nobody").await;
    assert_eq!(nobody.0, StatusCode::OK);
    assert!(rows(&nobody.1).is_empty() && nobody.1.contains("id=\"no-signins\""));
    let failures = rows(&page(&app, "/admin/signins?outcome=failure").await.1);
    assert!(!failures.is_empty() && failures.iter().all(|r| r.outcome == "failure"));
    let allowed = rows(&page(&app, "/admin/signins?decision=allow").await.1);
    assert!(allowed.len() >= 3 && allowed.iter().all(|r| r.decision == "allow"));
    let both = rows(&page(&app, "/admin/signins?user=ann&decision=allow").await.1);
    assert_eq!(both.len(), 2, "{both:?}");
    let now = app.svc.clock.now().micros();
    let (from, to) = (day(now - 2 * 86_400_000_000), day(now));
    let in_range = rows(
        &page(&app, &format!("/admin/signins?from={from}&to={to}"))
            .await
            .1,
    );
    assert_eq!(in_range.len(), all.len());
    let long_ago = rows(
        &page(&app, "/admin/signins?from=2001-01-01&to=2001-01-31")
            .await
            .1,
    );
    assert!(long_ago.is_empty());
    let high = rows(&page(&app, "/admin/signins?level=high").await.1);
    assert!(high.iter().all(|r| r.text.contains("high")));
    // Bad filter values are a readable 400, never a 500.
    for bad in [
        "decision=maybe",
        "from=yesterday",
        "to=2026-13-45",
        "from=2026-02-02&to=2026-02-01",
        "outcome=%00",
        "reason=%25",
        "after=garbage",
    ] {
        let (status, html) = page(&app, &format!("/admin/signins?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(html.contains("alert-error"), "{bad}");
    }

    // Whatever the extractor makes of a mangled query, the answer is an HTML page, not a 500.
    for odd in ["decision=allow&decision=block", "user=%FF%FE", "from[]=1"] {
        let r = app.get(&format!("/admin/signins?{odd}")).await;
        assert!(
            r.status() == StatusCode::OK || r.status() == StatusCode::BAD_REQUEST,
            "{odd}: {}",
            r.status()
        );
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }

    // The detail view explains one scored sign-in.
    let first = &ann.iter().find(|r| r.outcome == "success").unwrap().id;
    let (status, html) = page(&app, &format!("/admin/signins/{first}")).await;
    assert_eq!(status, StatusCode::OK);
    let doc = scraper::Html::parse_document(&html);
    let text = |sel: &str| {
        doc.select(&scraper::Selector::parse(sel).unwrap())
            .next()
            .map(|e| e.text().collect::<String>())
            .unwrap_or_default()
    };
    let contributions = doc
        .select(&scraper::Selector::parse("#contributions tbody tr").unwrap())
        .count();
    assert!(contributions >= 3, "{html}");
    assert!(html.contains("Seen for this user") && html.contains("Seen globally"));
    let id = first.clone();
    let stored = app
        .svc
        .db
        .run(move |c| vigil::store::signins::find(c, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text("#model").trim(), stored.model.unwrap());
    assert_eq!(text("#geoip-build").trim(), "2026-01-01");
    assert!(html.contains("id=\"features\""));
    assert!(
        !html.contains(stored.device_id.as_deref().unwrap()),
        "the device cookie is not shown"
    );
    assert_eq!(
        app.get("/admin/signins/no-such-id").await.status(),
        StatusCode::NOT_FOUND
    );

    // CSV export with the page's filters: a header row, one record per row, properly quoted.
    let r = app.get("/admin/signins/export.csv?user=ann").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment;") && disposition.contains(".csv"));
    let body = r.text().await.unwrap();
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header, CSV_HEADER);
    let records: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), ann.len());
    let col = |name: &str| CSV_HEADER.iter().position(|h| *h == name).unwrap();
    assert!(records.iter().all(|r| &r[col("username")] == "ann"));
    assert!(records
        .iter()
        .any(|r| &r[col("city")] == "Berlin" && &r[col("country")] == "DE"));

    // JSON lines, filtered by outcome.
    let r = app.get("/admin/signins/export.jsonl?outcome=failure").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".jsonl"));
    let body = r.text().await.unwrap();
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), failures.len());
    assert!(lines.iter().all(|l| l["outcome"] == "failure"));
    let r = app.get("/admin/signins/export.jsonl?user=bob").await;
    let bob: Vec<serde_json::Value> = r
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0]["features"]["geo"]["city"], "Sydney");
    assert!(bob[0]["assessment"]["contributions"].is_array());
    assert_eq!(bob[0]["features"]["device"]["cookie_id"], "(present)");
    let r = app.get("/admin/signins/export.csv?level=extreme").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Exports are admin-only like the pages.
    let stranger = crate::helpers::client(app.port);
    for path in [
        "/admin/signins/export.csv",
        "/admin/signins/export.jsonl",
        "/admin/signins/x",
    ] {
        let r = stranger.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&r).starts_with("/login?next="));
    }
    app.add_user("cat", false).await;
    let cat = crate::helpers::client(app.port);
    let html = cat
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = cat
        .post(app.url("/login"))
        .form(&[
            ("username", "cat"),
            ("password", PASSWORD),
            ("csrf_token", &crate::helpers::csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/account");
    for path in ["/admin/signins/export.csv", "/admin/signins/export.jsonl"] {
        let r = cat.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
}
on_both_backends!(
    sign_in_log_filters_detail_and_export,
    super::log_filters_detail_and_export
);

async fn log_pages_with_a_cursor(b: Backend) {
    let Some((app, _)) = admin_app_with(b, &[]).await else {
        return;
    };
    app.add_user("zed", false).await;
    let zed = vigil::flow::accounts::find(&app.svc, "zed").await.unwrap();
    let base = app.svc.clock.now().micros() - 3_600_000_000;
    // 120 rows, some sharing a timestamp: the cursor must neither skip nor repeat them.
    let rows_in: Vec<SigninRow> = (0..120)
        .map(|i| SigninRow {
            id: vigil::store::new_id(),
            at: base + (i / 3) * 1_000_000,
            user_id: Some(zed.id.clone()),
            method: "password".into(),
            outcome: if i % 2 == 0 { "success" } else { "failure" }.into(),
            ip: if i % 10 == 0 {
                None
            } else {
                Some("10.0.0.1".into())
            },
            user_agent: Some("=cmd|' /C calc'!A0, \"quoted\"".into()),
            device_id: None,
            client_id: None,
            session_id: None,
            acr: None,
            amr: None,
            features: None,
            score: Some(i),
            level: Some("low".into()),
            decision: Some("allow".into()),
            reasons: Some("[\"new_asn\"]".into()),
            assessment: Some("not json".into()),
            model: Some("m".into()),
            geoip_build: None,
            candidate_decision: None,
            shadow: None,
        })
        .collect();
    app.svc
        .db
        .run(move |c| {
            for r in &rows_in {
                vigil::store::signins::insert(c, r)?;
            }
            Ok(())
        })
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut path = "/admin/signins?user=zed".to_owned();
    let mut pages = 0;
    loop {
        let (status, html) = page(&app, &path).await;
        assert_eq!(status, StatusCode::OK);
        let got = rows(&html);
        assert!(got.len() <= 50);
        seen.extend(got.into_iter().map(|r| r.id));
        pages += 1;
        let doc = scraper::Html::parse_document(&html);
        match doc
            .select(&scraper::Selector::parse("#older").unwrap())
            .next()
        {
            Some(a) => path = a.value().attr("href").unwrap().replace("&amp;", "&"),
            None => break,
        }
        assert!(path.contains("user=zed"), "filters carry over: {path}");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 120, "no row twice");
    // Rows whose IP retention dropped show a dash.
    let html = page(&app, "/admin/signins?user=zed&reason=new_asn").await.1;
    assert_eq!(rows(&html).len(), 50);
    assert!(rows(&html).iter().any(|r| r.text.contains('—')));
    assert!(rows(&page(&app, "/admin/signins?reason=new_city").await.1).is_empty());

    // The export is not paged, and a spreadsheet will not run the user agent as a formula.
    let body = app
        .get("/admin/signins/export.csv?user=zed&outcome=success")
        .await
        .text()
        .await
        .unwrap();
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    let records: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 60);
    let ua = CSV_HEADER.iter().position(|h| *h == "user_agent").unwrap();
    assert_eq!(&records[0][ua], "'=cmd|' /C calc'!A0, \"quoted\"");
}
on_both_backends!(log_pages_with_a_cursor, super::log_pages_with_a_cursor);
