//! The review queue end to end: a blocked sign-in waits with a recommendation, an admin's
//! verdict changes what the risk engine decides next (or locks the account), a second verdict
//! is refused; and "this wasn't me" on /account.

use std::sync::Arc;

use reqwest::StatusCode;

use crate::admin::{admin_app_with, admin_sign_in, submit};
use crate::admin_signins::GEO;
use crate::helpers::{csrf_in, Backend, TestApp, PASSWORD};
use crate::oidc::location;
use crate::on_both_backends;
use crate::risk::{baseline, browser, login, login_with_password, BERLIN, SYDNEY};

/// An open item of the queue: (review id, kind, recommended verdict, sign-in id).
async fn open_item(app: &TestApp, user: &str) -> Option<(String, String, String, String)> {
    let html = app.get("/admin/review").await.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let sel =
        scraper::Selector::parse(&format!("article.review-item[data-user=\"{user}\"]")).unwrap();
    let item = doc.select(&sel).next()?;
    let a = |k: &str| item.value().attr(k).unwrap_or_default().to_owned();
    Some((
        a("data-review"),
        a("data-kind"),
        a("data-recommended"),
        a("data-signin"),
    ))
}

/// The admin's verdict on a review item, through the queue's form.
async fn judge(app: &TestApp, review: &str, verdict: &str) -> reqwest::Response {
    submit(
        app,
        "/admin/review",
        "/admin/review",
        &[("review_id", review), ("verdict", verdict)],
    )
    .await
}

async fn audit_actions(app: &TestApp) -> Vec<vigil::store::audit::AuditRow> {
    app.svc
        .db
        .run(|c| vigil::store::audit::page(c, 0, 10_000))
        .await
        .unwrap()
}

/// A user with a week of Berlin history signs in from Sydney with another device: blocked (no
/// second factor). Returns the Sydney cookie jar.
async fn blocked_from_sydney(app: &TestApp, user: &str) -> Arc<reqwest::cookie::Jar> {
    app.add_user(user, false).await;
    let home = Arc::new(reqwest::cookie::Jar::default());
    baseline(app, &browser(app, &home, BERLIN), user, 6).await;
    app.clock.advance_secs(600);
    let travel = Arc::new(reqwest::cookie::Jar::default());
    let r = login(app, &browser(app, &travel, SYDNEY), user, None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    travel
}

async fn legitimate_verdict_changes_the_next_decision(b: Backend) {
    let Some((app, secret)) = admin_app_with(b, GEO).await else {
        return;
    };
    let travel = blocked_from_sydney(&app, "dora").await;
    admin_sign_in(&app, &secret).await;

    // It waits in the queue, with its explanation and a recommendation.
    let (review, kind, recommended, signin) = open_item(&app, "dora").await.expect("queued");
    assert_eq!(kind, "blocked");
    assert!(recommended == "legitimate" || recommended == "attack");
    let html = app.get("/admin/review").await.text().await.unwrap();
    assert!(
        html.contains("Sydney") && html.contains("new_country"),
        "{html}"
    );
    assert!(html.contains("Recommended verdict"));

    // Still blocked before any verdict.
    app.clock.advance_secs(3600);
    let r = login(&app, &browser(&app, &travel, SYDNEY), "dora", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no verdict yet");
    admin_sign_in(&app, &secret).await;

    // A bad verdict is a readable 400.
    let r = judge(&app, &review, "maybe").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = submit(
        &app,
        "/admin/review",
        "/admin/review",
        &[
            ("review_id", &review),
            ("verdict", "legitimate"),
            ("note", "she is travelling"),
        ],
    )
    .await;
    assert_eq!(location(&r), "/admin/review?notice=verdict");
    let html = app
        .get("/admin/review?notice=verdict")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Verdict recorded."));
    let doc = scraper::Html::parse_document(&html);
    let row = doc
        .select(
            &scraper::Selector::parse(&format!("#decided tr[data-review=\"{review}\"]")).unwrap(),
        )
        .next()
        .expect("listed as decided");
    assert_eq!(row.value().attr("data-status"), Some("legitimate"));
    let text: String = row.text().collect();
    assert!(
        text.contains("root") && text.contains("she is travelling"),
        "{text}"
    );
    // The detail view links the review.
    let detail = app
        .get(&format!("/admin/signins/{signin}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(detail.contains(&format!("#review-{review}")) && detail.contains("legitimate"));

    // Deciding twice is refused, readably.
    let r = submit(
        &app,
        "/admin/review",
        "/admin/review",
        &[("review_id", &review), ("verdict", "attack")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("already judged legitimate by root"));
    let r = submit(
        &app,
        "/admin/review",
        "/admin/review",
        &[("review_id", "no-such-review"), ("verdict", "attack")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The risk engine learned: the same place and device is now let through.
    let r = login(&app, &browser(&app, &travel, SYDNEY), "dora", None).await;
    assert_eq!(
        location(&r),
        "/account",
        "the verdict changed the next decision"
    );

    let log = audit_actions(&app).await;
    let e = log
        .iter()
        .find(|e| e.action == "review.verdict")
        .expect("audited");
    assert_eq!(e.target.as_deref(), Some(signin.as_str()));
    assert!(e.details.contains("\"legitimate\"") && e.details.contains("\"blocked\""));
    assert!(e.actor.is_some() && e.ip.is_some());
}
on_both_backends!(
    legitimate_verdict_changes_the_next_decision,
    super::legitimate_verdict_changes_the_next_decision
);

/// A "legitimate" verdict on a deny-listed sign-in vouches for that user's device at that
/// address, and for nothing wider. The attacks: another browser at the vouched address, the
/// vouched browser at another listed address, and another account in the vouched browser at
/// the vouched address — each still blocked.
async fn a_vouch_lifts_the_deny_list_for_one_device_at_one_address(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("deny.txt");
    std::fs::write(&deny, "# test deny list\n203.0.113.0/24\n").unwrap();
    let mut env = GEO.to_vec();
    env.push(("VIGIL_IP_DENYLIST", deny.to_str().unwrap()));
    let Some((app, _secret)) = admin_app_with(b, &env).await else {
        return;
    };
    let (listed, other_listed) = ("203.0.113.5", "203.0.113.77");
    app.add_user("vera", false).await;
    app.add_user("walt", false).await;
    let laptop = Arc::new(reqwest::cookie::Jar::default());
    let r = login(&app, &browser(&app, &laptop, listed), "vera", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "the deny list blocks");
    let (review, kind, _, _) = open_item(&app, "vera").await.expect("queued");
    assert_eq!(kind, "blocked");
    let r = judge(&app, &review, "legitimate").await;
    assert_eq!(location(&r), "/admin/review?notice=verdict");
    app.clock.advance_secs(600);

    // Another browser at the vouched address: still the deny list.
    let other = Arc::new(reqwest::cookie::Jar::default());
    let r = login(&app, &browser(&app, &other, listed), "vera", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "another device");
    // The vouched browser at another listed address: still the deny list.
    let r = login(&app, &browser(&app, &laptop, other_listed), "vera", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "another listed address");
    // Another account in the vouched browser at the vouched address: vera's vouch is hers.
    let r = login(&app, &browser(&app, &laptop, listed), "walt", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "another account");

    // What the admin vouched for gets in.
    let r = login(&app, &browser(&app, &laptop, listed), "vera", None).await;
    assert_eq!(location(&r), "/account", "the vouched device and address");
}
on_both_backends!(
    a_vouch_lifts_the_deny_list_for_one_device_at_one_address,
    super::a_vouch_lifts_the_deny_list_for_one_device_at_one_address
);

async fn attack_verdict_with_lock(b: Backend) {
    let Some((app, secret)) = admin_app_with(b, GEO).await else {
        return;
    };
    let _travel = blocked_from_sydney(&app, "erin").await;
    // Erin is signed in at home.
    let home_jar = Arc::new(reqwest::cookie::Jar::default());
    let home = browser(&app, &home_jar, BERLIN);
    app.clock.advance_secs(60);
    assert_eq!(
        location(&login(&app, &home, "erin", None).await),
        "/account"
    );
    admin_sign_in(&app, &secret).await;

    let (review, _, recommended, _) = open_item(&app, "erin").await.expect("queued");
    assert!(!recommended.is_empty());
    let r = submit(
        &app,
        "/admin/review",
        "/admin/review",
        &[
            ("review_id", &review),
            ("verdict", "attack"),
            ("lock", "on"),
        ],
    )
    .await;
    assert_eq!(location(&r), "/admin/review?notice=verdict");

    // Her sessions ended and the account is disabled.
    let r = home.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/login"));
    let r = login(&app, &home, "erin", None).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a locked account cannot sign in"
    );
    let erin = vigil::flow::accounts::find(&app.svc, "erin").await.unwrap();
    assert!(erin.disabled);

    // The verdict is final.
    let r = submit(
        &app,
        "/admin/review",
        "/admin/review",
        &[("review_id", &review), ("verdict", "legitimate")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("already judged attack"));
    let log = audit_actions(&app).await;
    let e = log
        .iter()
        .find(|e| e.action == "review.verdict")
        .expect("audited");
    assert!(e.details.contains("\"attack\"") && e.details.contains("\"lock\":true"));
}
on_both_backends!(attack_verdict_with_lock, super::attack_verdict_with_lock);

async fn this_wasnt_me(b: Backend) {
    let Some((app, secret)) = admin_app_with(b, GEO).await else {
        return;
    };
    app.add_user("fay", false).await;
    app.add_user("gus", false).await;
    let home_jar = Arc::new(reqwest::cookie::Jar::default());
    let home = browser(&app, &home_jar, BERLIN);
    baseline(&app, &home, "fay", 3).await;
    // Someone else signs in as fay with her password, from her city, in another browser.
    let thief_jar = Arc::new(reqwest::cookie::Jar::default());
    let thief = browser(&app, &thief_jar, "192.0.2.99");
    assert_eq!(
        location(&login(&app, &thief, "fay", None).await),
        "/account"
    );
    let fay = vigil::flow::accounts::find(&app.svc, "fay").await.unwrap();
    let uid = fay.id.clone();
    let stolen = app
        .svc
        .db
        .run(move |c| vigil::store::signins::recent_for_user(c, &uid, 1))
        .await
        .unwrap()
        .remove(0)
        .id;
    app.clock.advance_secs(600);
    assert_eq!(location(&login(&app, &home, "fay", None).await), "/account");

    // Fay sees it on her account page, with the button.
    let account = home
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains(&format!("data-signin=\"{stolen}\"")));
    assert!(account.contains("This wasn't me"));

    // Gus cannot report fay's sign-in.
    let gus = crate::helpers::client(app.port);
    let html = gus
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    gus.post(app.url("/login"))
        .form(&[
            ("username", "gus"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    let token = csrf_in(
        &gus.get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let r = gus
        .post(app.url("/account/signins/report"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("signin_id", stolen.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        gus.get(app.url("/account")).send().await.unwrap().status(),
        StatusCode::OK,
        "nothing happened to gus"
    );
    // Without the CSRF token, nothing happens either.
    let r = home
        .post(app.url("/account/signins/report"))
        .form(&[("signin_id", stolen.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Fay reports it.
    let r = home
        .post(app.url("/account/signins/report"))
        .form(&[
            ("csrf_token", csrf_in(&account).as_str()),
            ("signin_id", stolen.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("id=\"reported\"") && body.contains("new password"),
        "{body}"
    );

    // Every session ended: hers and the thief's.
    for b in [&home, &thief] {
        let r = b.get(app.url("/account")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(location(&r).starts_with("/login"));
    }
    // It is in the review queue, already judged an attack by fay.
    admin_sign_in(&app, &secret).await;
    let html = app.get("/admin/review").await.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let row = doc
        .select(&scraper::Selector::parse("#decided tr[data-kind=\"reported\"]").unwrap())
        .next()
        .expect("the report is in the queue");
    assert_eq!(row.value().attr("data-status"), Some("attack"));
    assert!(row.text().collect::<String>().contains("fay"));
    let log = audit_actions(&app).await;
    let e = log
        .iter()
        .find(|e| e.action == "signin.reported")
        .expect("audited");
    assert_eq!(e.target.as_deref(), Some(stolen.as_str()));

    // The account is compromised and fay has no second factor: the old password alone never
    // signs in again (the thief could be first), until an admin resets it.
    app.clock.advance_secs(60);
    let r = login(&app, &home, "fay", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("administrator"));
    let fay = vigil::flow::accounts::find(&app.svc, "fay").await.unwrap();
    assert_eq!(fay.risk_state, "compromised");
    let temp = vigil::flow::accounts::reset_password(
        &app.svc,
        &vigil::flow::accounts::Actor::new("test"),
        app.svc.clock.now(),
        &fay.id,
        None,
    )
    .await
    .unwrap()
    .unwrap();
    let fay = vigil::flow::accounts::find(&app.svc, "fay").await.unwrap();
    assert_eq!(fay.risk_state, "none", "an admin reset remediates");
    // Her next sign-in must choose a new password first.
    use secrecy::ExposeSecret as _;
    let r = login_with_password(&app, &home, "fay", temp.expose_secret()).await;
    assert_eq!(location(&r), "/account/password");
}
on_both_backends!(this_wasnt_me, super::this_wasnt_me);

/// A queue longer than a page: the admin pages through every open item exactly once (newest
/// first), the count says how many wait, a forged cursor is just the first page, and the
/// decided list stays on the first page.
async fn the_queue_pages_past_its_first_items(b: Backend) {
    let Some((app, secret)) = admin_app_with(b, &[]).await else {
        return;
    };
    app.add_user("erin", false).await;
    let now = app.svc.clock.now();
    let ctx = vigil::flow::RequestContext {
        ip: "203.0.113.5".parse().unwrap(),
        user_agent: None,
        device_id: None,
        accept_language: None,
        hints: None,
    };
    let total = 2 * vigil::flow::review::OPEN_PAGE as usize + 17;
    app.svc
        .db
        .run(move |c| {
            let uid = vigil::store::users::find_by_username(c, "erin")?
                .unwrap()
                .id;
            for i in 0..total {
                // Some share a timestamp: the cursor must not skip or repeat them.
                let at = now.plus_secs(i64::try_from(i / 3).unwrap());
                vigil::flow::login::log_signin(
                    c,
                    at,
                    Some(&uid),
                    "password",
                    "blocked",
                    &ctx,
                    None,
                    None,
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    admin_sign_in(&app, &secret).await;

    let items = |html: &str| -> Vec<String> {
        let doc = scraper::Html::parse_document(html);
        let sel = scraper::Selector::parse("article.review-item").unwrap();
        doc.select(&sel)
            .map(|e| e.value().attr("data-review").unwrap().to_owned())
            .collect()
    };
    let older = |html: &str| -> Option<String> {
        let doc = scraper::Html::parse_document(html);
        let sel = scraper::Selector::parse("#queue-older").unwrap();
        doc.select(&sel)
            .next()
            .map(|e| e.value().attr("href").unwrap().to_owned())
    };
    let first = app.get("/admin/review").await.text().await.unwrap();
    assert!(first.contains(&format!("<span id=\"open-count\">{total}</span>")));
    assert!(
        first.contains("id=\"decided-heading\""),
        "verdicts below the first page"
    );
    let mut seen = items(&first);
    assert_eq!(seen.len(), vigil::flow::review::OPEN_PAGE as usize);
    let mut next = older(&first);
    let mut pages = 1;
    while let Some(href) = next {
        let html = app.get(&href).await.text().await.unwrap();
        assert!(!html.contains("id=\"decided-heading\""));
        assert!(html.contains("id=\"queue-newest\""));
        seen.extend(items(&html));
        next = older(&html);
        pages += 1;
    }
    assert_eq!(pages, 3);
    let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), total, "every open item once");
    assert_eq!(distinct.len(), total, "no item twice");

    for forged in ["x", "1.'--", "99999999999999999999.a", ".", "1."] {
        let r = app
            .get(&format!(
                "/admin/review?after={}",
                crate::oidc::urlencode(forged)
            ))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{forged}");
        let html = r.text().await.unwrap();
        assert_eq!(items(&html), items(&first), "{forged}: the first page");
    }
}
on_both_backends!(
    the_queue_pages_past_its_first_items,
    super::the_queue_pages_past_its_first_items
);
