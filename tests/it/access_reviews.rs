//! Access reviews end to end through the console: an admin opens a campaign, each item shows
//! the miners' recommendation and evidence, decisions are carried out through the normal
//! revocation (the role is gone from the next token), every decision is audited with the
//! recommendation it followed or overrode, the CSV export is what auditors get — and an account
//! reported compromised gets a review of its privileged access without anyone asking.

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::json;
use vigil::flow::access::{self, Grantee};
use vigil::flow::accounts::Actor;
use vigil::store::schema::{audit_log, role_grants, role_usage, users};

use crate::admin::{make_admin, submit};
use crate::helpers::{csrf_in, spawn_app, Backend, TestApp};
use crate::mfa::sign_out;
use crate::oidc::{add_client, location, payload, rp, tokens_for_user, ClientSpec};
use crate::on_both_backends;

const DAY: i64 = 86_400 * 1_000_000;

async fn grant(app: &TestApp, role: &str, user: &str) {
    access::set_grant(
        &app.svc,
        &Actor::new("test"),
        app.svc.clock.now(),
        "rp",
        role,
        Grantee::User(user.into()),
        true,
    )
    .await
    .unwrap();
}

async fn set_up(app: &TestApp, privileged_writer: bool) {
    app.add_user("alice", false).await;
    app.add_user("bob", false).await;
    add_client(app, ClientSpec::default()).await;
    let now = app.svc.clock.now();
    let test = Actor::new("test");
    access::create_role(&app.svc, &test, now, "rp", "reader", false, "")
        .await
        .unwrap();
    access::create_role(&app.svc, &test, now, "rp", "writer", privileged_writer, "")
        .await
        .unwrap();
    grant(app, "reader", "alice").await;
    grant(app, "writer", "alice").await;
    grant(app, "writer", "bob").await;
}

/// The checkboxes of the campaign page: aria-label ("Select alice: rp / writer") → item id.
fn items(html: &str) -> Vec<(String, String)> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("input[name=item]").unwrap();
    doc.select(&sel)
        .map(|e| {
            (
                e.value().attr("aria-label").unwrap_or_default().to_owned(),
                e.value().attr("value").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn item<'a>(items: &'a [(String, String)], label: &str) -> &'a str {
    items
        .iter()
        .find(|(l, _)| l == label)
        .map(|(_, id)| id.as_str())
        .unwrap_or_else(|| panic!("no item {label} in {items:?}"))
}

async fn decide(app: &TestApp, page: &str, picked: &[&str], decision: &str) -> reqwest::Response {
    let token = csrf_in(&app.get(page).await.text().await.unwrap());
    let mut form: Vec<(&str, &str)> = vec![("csrf_token", &token), ("decision", decision)];
    form.extend(picked.iter().map(|i| ("item", *i)));
    app.http
        .post(app.url(page))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn a_campaign_decided_in_the_console_takes_the_role_out_of_the_next_token(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    set_up(&app, false).await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for_user(&app, &rp, "alice", &["roles"]).await;
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["roles"],
        json!(["reader", "writer"])
    );
    app.svc.token_log.flush().await;
    sign_out(&app).await;
    // Make the history: every grant and account is 200 days old; alice used `writer` last 100
    // days ago (`reader` just now); bob never signed in.
    app.svc
        .db
        .run(|c| {
            diesel::update(role_grants::table)
                .set(role_grants::granted_at.eq(role_grants::granted_at - 200 * DAY))
                .execute(c)?;
            diesel::update(users::table.filter(users::username.ne("root")))
                .set(users::created_at.eq(users::created_at - 200 * DAY))
                .execute(c)?;
            diesel::update(role_usage::table.filter(role_usage::role.eq("writer")))
                .set(role_usage::last_used_at.eq(role_usage::last_used_at - 100 * DAY))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    let secret = make_admin(&app).await;

    let r = submit(
        &app,
        "/admin/reviews",
        "/admin/reviews",
        &[
            ("name", "Q4 review of rp"),
            ("scope", "client_roles"),
            ("target", "rp"),
            ("reviewers", "admin"),
            ("deadline_days", "14"),
            ("undecided", "keep"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = location(&r).split('?').next().unwrap().to_owned();
    assert!(page.starts_with("/admin/reviews/"), "{page}");
    let html = app.get(&page).await.text().await.unwrap();
    assert!(html.contains("0 of 3 decided"), "{html}");
    assert!(
        html.contains("not used for 100 days; no group to compare with"),
        "alice's writer: the evidence"
    );
    assert!(
        html.contains("the account is dormant: never signed in"),
        "bob: {html}"
    );
    let list = items(&html);
    let (a_reader, a_writer, b_writer) = (
        item(&list, "Select alice: rp / reader").to_owned(),
        item(&list, "Select alice: rp / writer").to_owned(),
        item(&list, "Select bob: rp / writer").to_owned(),
    );

    // Follow the recommendation for alice's writer (remove); override it for bob's (keep).
    let r = decide(&app, &page, &[&a_writer], "recommended").await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let r = decide(&app, &page, &[&b_writer], "keep").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = app.get(&page).await.text().await.unwrap();
    assert!(html.contains("2 of 3 decided"), "{html}");
    assert!(html.contains("keep (overrode)"), "{html}");
    // A decided item cannot be decided again (a second reviewer, a replayed form).
    let r = decide(&app, &page, &[&a_writer], "keep").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // An item of another campaign, or none, is refused.
    let r = decide(&app, &page, &["nosuch"], "remove").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = decide(&app, &page, &[&a_reader], "maybe").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The auditors' export: every item, decided or not, with what was recommended and done.
    let r = app.get(&format!("{page}/export.csv")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(rows[0].starts_with("campaign,campaign_name,username,client_id,role"));
    let alice_writer = rows
        .iter()
        .find(|l| l.contains(",alice,rp,writer,"))
        .unwrap();
    assert!(
        alice_writer.contains(",remove,true,") && alice_writer.ends_with(",true"),
        "{alice_writer}"
    );
    let bob_writer = rows.iter().find(|l| l.contains(",bob,rp,writer,")).unwrap();
    assert!(bob_writer.contains(",keep,false,"), "{bob_writer}");

    // Every decision is in the audit log with the recommendation it followed or overrode.
    let audited: Vec<String> = app
        .svc
        .db
        .run(|c| {
            Ok(audit_log::table
                .filter(audit_log::action.eq("access_review.decided"))
                .select(audit_log::details)
                .load::<String>(c)?)
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 2);
    assert!(audited.iter().any(|d| d.contains("\"followed\":false")));

    // Closing keeps the undecided (the campaign's default); decisions after it are refused.
    let r = submit(&app, &page, &format!("{page}/close"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = app.get(&page).await.text().await.unwrap();
    assert!(
        html.contains("3 of 3 decided") && html.contains("closed"),
        "{html}"
    );
    let _ = secret;

    // alice's next token carries only what the review left her.
    sign_out(&app).await;
    let (t, _) = tokens_for_user(&app, &rp, "alice", &["roles"]).await;
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["roles"],
        json!(["reader"])
    );
}

on_both_backends!(
    a_campaign_decided_in_the_console_takes_the_role_out_of_the_next_token,
    super::a_campaign_decided_in_the_console_takes_the_role_out_of_the_next_token
);

/// Who may open and decide: an admin opens; a campaign for admins only is closed to the
/// helpdesk, one naming the helpdesk is open to it; an auditor never.
async fn reviewers_are_the_campaigns(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    set_up(&app, false).await;
    make_admin(&app).await;
    let open = |reviewers: &'static str| {
        let app = &app;
        async move {
            let r = submit(
                app,
                "/admin/reviews",
                "/admin/reviews",
                &[
                    ("name", reviewers),
                    ("scope", "dormant"),
                    ("reviewers", reviewers),
                    ("deadline_days", "7"),
                    ("undecided", "keep"),
                ],
            )
            .await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            location(&r).split('?').next().unwrap().to_owned()
        }
    };
    let admins_only = open("admin").await;
    let with_helpdesk = open("helpdesk").await;
    let r = submit(
        &app,
        "/admin/reviews",
        "/admin/reviews",
        &[
            ("name", "console roles"),
            ("scope", "client_roles"),
            ("target", "vigil"),
            ("reviewers", "helpdesk"),
            ("deadline_days", "7"),
            ("undecided", "keep"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let console = location(&r).split('?').next().unwrap().to_owned();
    // Bad input is a readable page, not a 500.
    let r = submit(
        &app,
        "/admin/reviews",
        "/admin/reviews",
        &[
            ("name", "x"),
            ("scope", "client_roles"),
            ("target", "nosuch"),
            ("deadline_days", "7"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = submit(
        &app,
        "/admin/reviews",
        "/admin/reviews",
        &[("name", "x"), ("scope", "dormant"), ("deadline_days", "0")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // hana of the helpdesk.
    sign_out(&app).await;
    app.add_user("hana", false).await;
    access::set_grant(
        &app.svc,
        &Actor::new("test"),
        app.svc.clock.now(),
        "vigil",
        "helpdesk",
        Grantee::User("hana".into()),
        true,
    )
    .await
    .unwrap();
    app.login("hana", crate::helpers::PASSWORD).await;
    let (hana_secret, _) = crate::mfa::enrol_totp(&app).await;
    sign_out(&app).await;
    crate::console_roles::staff_sign_in(&app, "hana", &hana_secret).await;
    let list = app.get("/admin/reviews").await;
    assert_eq!(list.status(), StatusCode::OK);
    let list = list.text().await.unwrap();
    let id = |path: &str| path.rsplit('/').next().unwrap().to_owned();
    assert!(
        list.contains(&id(&with_helpdesk)) && !list.contains(&id(&admins_only)),
        "the helpdesk's list shows only its campaigns"
    );
    assert_eq!(app.get(&with_helpdesk).await.status(), StatusCode::OK);
    assert_eq!(app.get(&admins_only).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&format!("{admins_only}/export.csv")).await.status(),
        StatusCode::FORBIDDEN
    );
    // Nor decide its items (the form posted anyway, with a valid CSRF token).
    let token = csrf_in(&app.get("/account").await.text().await.unwrap());
    let r = app
        .http
        .post(app.url(&admins_only))
        .form(&[
            ("csrf_token", token.as_str()),
            ("decision", "keep"),
            ("item", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // In a campaign the helpdesk reviews, it may not take an administrator's access away
    // (only an admin acts on staff), and nothing of that submission is applied.
    let html = app.get(&console).await.text().await.unwrap();
    let list = items(&html);
    let root_admin = item(&list, "Select root: vigil / admin").to_owned();
    let r = decide(&app, &console, &[&root_admin], "remove").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("only an administrator"));
    let r = decide(&app, &console, &[&root_admin], "keep").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The helpdesk neither opens nor closes a campaign.
    let r = submit(
        &app,
        "/admin/reviews",
        "/admin/reviews",
        &[
            ("name", "mine"),
            ("scope", "dormant"),
            ("deadline_days", "7"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = submit(
        &app,
        "/admin/reviews",
        &format!("{with_helpdesk}/close"),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

on_both_backends!(
    reviewers_are_the_campaigns,
    super::reviewers_are_the_campaigns
);

/// A user reports a sign-in that was not theirs: the account is compromised, and its
/// privileged access is under review at once — removed at the deadline unless someone keeps it.
async fn a_report_opens_a_review_of_the_accounts_privileged_access(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    set_up(&app, true).await;
    let rp = rp(&app, "rp", false).await;
    tokens_for_user(&app, &rp, "alice", &["roles"]).await;
    let id = crate::enforcement::latest_signin(&app, "alice").await;
    let token = csrf_in(&app.get("/account").await.text().await.unwrap());
    let r = app
        .http
        .post(app.url("/account/signins/report"))
        .form(&[("csrf_token", token.as_str()), ("signin_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let list = vigil::flow::campaigns::list(&app.svc).await.unwrap();
    assert_eq!(list.len(), 1, "one review, opened by the report");
    let (c, n, decided) = &list[0];
    assert_eq!(c.scope, "account_privileged");
    assert_eq!(c.undecided, "remove");
    assert_eq!(
        (*n, *decided),
        (1, 0),
        "writer is privileged; reader is not"
    );
    let v = vigil::flow::campaigns::view(&app.svc, &c.id).await.unwrap();
    assert_eq!(v.items[0].role.as_deref(), Some("writer"));
    assert_eq!(v.items[0].recommendation, "remove");
    assert!(
        v.items[0]
            .evidence
            .starts_with("the account entered compromised"),
        "{}",
        v.items[0].evidence
    );
    // Reporting again opens no second review.
    let again = vigil::flow::campaigns::list(&app.svc).await.unwrap();
    assert_eq!(again.len(), 1);

    // Nobody decides; at the deadline the housekeeping closes it and the role goes.
    app.clock.advance_secs(8 * 86_400);
    let closed = vigil::flow::campaigns::close_overdue(&app.svc, app.svc.clock.now())
        .await
        .unwrap();
    assert_eq!(closed, 1);
    let held = access::of_user(
        &app.svc,
        &vigil::flow::accounts::find(&app.svc, "alice")
            .await
            .unwrap()
            .id,
    )
    .await
    .unwrap();
    let names: Vec<&str> = held.roles.iter().map(|(_, r, _)| r.name.as_str()).collect();
    assert_eq!(names, ["reader"], "writer removed at the deadline");
}

on_both_backends!(
    a_report_opens_a_review_of_the_accounts_privileged_access,
    super::a_report_opens_a_review_of_the_accounts_privileged_access
);
