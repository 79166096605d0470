//! Password reset by e-mail and notices with a one-click "this wasn't me", over real SMTP and
//! real pages. The attacks: a link opened in another browser, a link used twice (and two
//! opens at once), the second factor skipped by calling the new-password page directly, an
//! unknown and a known account told apart by the answer, a flood of requests.

use reqwest::StatusCode;
use serde_json::Value;

use crate::admin_users::{audited, text_of};
use crate::email::{decoded, Received, SmtpServer};
use crate::helpers::{
    another_browser as browser, csrf_in, spawn_app_with, Backend, TestApp, PASSWORD,
};
use crate::mfa::{enrol_totp, select, sign_out};
use crate::oidc::{add_client, location, rp, tokens_for_user, ClientSpec};
use crate::on_both_backends;

const NEW_PASSWORD: &str = "a brand new passphrase 42";

async fn mail_app(b: Backend, smtp: &SmtpServer) -> Option<TestApp> {
    spawn_app_with(
        b,
        &[
            ("VIGIL_SMTP_URL", &smtp.url()),
            ("VIGIL_MAIL_FROM", "id@example.com"),
        ],
    )
    .await
}

/// The first link to `path` in a message, as a path and query.
fn link_to(m: &Received, path: &str) -> String {
    let text = decoded(&m.raw);
    let start = text.find(&format!("{path}?token=")).expect("a link");
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_owned()
}

async fn ask_for_reset(b: &TestApp, typed: &str) -> reqwest::Response {
    let token = b.csrf_from("/login/forgot").await;
    b.http
        .post(b.url("/login/forgot"))
        .form(&[("csrf_token", token.as_str()), ("identifier", typed)])
        .send()
        .await
        .unwrap()
}

/// GET the link's page, then press its button (as a person does; a scanner only GETs).
async fn press(b: &TestApp, link: &str, action: &str) -> reqwest::Response {
    let page = b.get(link).await;
    let status = page.status();
    let html = page.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{link}: {html}");
    b.http
        .post(b.url(action))
        .form(&[
            ("csrf_token", csrf_in(&html)),
            ("token", select(&html, "input[name=token]").unwrap()),
        ])
        .send()
        .await
        .unwrap()
}

async fn choose_password(b: &TestApp, new: &str, again: &str) -> reqwest::Response {
    let mut page = b.get("/login/reset/password").await.text().await.unwrap();
    if !page.contains("name=\"csrf_token\"") {
        // No grant, so no form: an attacker posts one anyway.
        page = b.get("/login/forgot").await.text().await.unwrap();
    }
    b.http
        .post(b.url("/login/reset/password"))
        .form(&[
            ("csrf_token", csrf_in(&page).as_str()),
            ("new_password", new),
            ("confirm_password", again),
        ])
        .send()
        .await
        .unwrap()
}

async fn risk_state(app: &TestApp, username: &str) -> String {
    vigil::flow::accounts::find(&app.svc, username)
        .await
        .unwrap()
        .risk_state
}

async fn userinfo_status(app: &TestApp, tokens: &Value) -> StatusCode {
    app.http
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .status()
}

/// Without a second factor: the mailed link, opened in the browser that asked, lets the user
/// choose a new password; every session and token of the account ends; the account is left
/// at risk; the owner is told, with a "this wasn't me" link; the link works once and only in
/// that browser.
async fn a_reset_without_a_factor_ends_everything_and_leaves_the_account_at_risk(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = mail_app(b, &smtp).await else {
        return;
    };
    app.add_user("bob", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let (tokens, _) = tokens_for_user(&app, &rp, "bob", &["email"]).await;
    assert_eq!(userinfo_status(&app, &tokens).await, StatusCode::OK);

    // The login page offers the reset.
    let login = browser(&app).get("/login").await.text().await.unwrap();
    assert!(login.contains("id=\"forgot-link\""));

    let asker = browser(&app);
    let r = ask_for_reset(&asker, "Bob@Example.com").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text_of(&r.text().await.unwrap(), "#reset-sent").is_some());
    let mail = smtp.wait_for("bob@example.com", 1).await.remove(0);
    assert!(
        mail.raw.contains("Subject: Reset your password"),
        "{}",
        mail.raw
    );
    let link = link_to(&mail, "/login/reset");

    // Another browser cannot use it, and trying does not use it up.
    let stranger = browser(&app);
    let r = stranger.get(&link).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("browser where you asked"));

    // Skipping the link: the new-password page without a grant refuses.
    let r = choose_password(&asker, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = press(&asker, &link, "/login/reset").await;
    assert_eq!(location(&r), "/login/reset/password");
    // The same link again: used.
    let r = asker.get(&link).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Mistakes keep the grant: mismatch, then a weak password.
    let r = choose_password(&asker, NEW_PASSWORD, "something else entirely").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = choose_password(&asker, "bob", "bob").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text_of(&r.text().await.unwrap(), "#reset-error").is_some());
    let r = choose_password(&asker, NEW_PASSWORD, NEW_PASSWORD).await;
    let status = r.status();
    let html = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(text_of(&html, "#reset-done").is_some());
    // The grant is spent.
    let r = choose_password(
        &asker,
        "yet another passphrase 7",
        "yet another passphrase 7",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Containment: the old session and the application's token ended.
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        userinfo_status(&app, &tokens).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(risk_state(&app, "bob").await, "at_risk");
    assert_eq!(audited(&app, "user.password_reset").await.len(), 1);
    assert_eq!(
        audited(&app, "user.password_reset_requested").await.len(),
        1
    );

    // The old password is gone.
    let r = asker.login("bob", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The owner is told, with a report link.
    let mails = smtp.wait_for("bob@example.com", 2).await;
    let notice = &mails[1];
    assert!(
        notice.raw.contains("Subject: Your password was reset"),
        "{}",
        notice.raw
    );
    assert!(decoded(&notice.raw).contains("/report?token="));
}

on_both_backends!(
    a_reset_without_a_factor_ends_everything_and_leaves_the_account_at_risk,
    super::a_reset_without_a_factor_ends_everything_and_leaves_the_account_at_risk
);

/// The page answers alike for an account that exists and one that does not; only the account
/// gets mail; more than three requests per typed name in an hour are refused (429), whether or
/// not it exists.
async fn the_answer_tells_nothing_and_requests_are_throttled(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = mail_app(b, &smtp).await else {
        return;
    };
    app.add_user("carol", false).await;
    let asker = browser(&app);
    let known = ask_for_reset(&asker, "carol").await;
    let unknown = ask_for_reset(&asker, "nobody-here").await;
    assert_eq!(known.status(), unknown.status());
    let strip = |h: String| {
        h.lines()
            .filter(|l| !l.contains("csrf_token") && !l.contains("nonce"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(known.text().await.unwrap()),
        strip(unknown.text().await.unwrap())
    );
    smtp.wait_for("carol@example.com", 1).await;
    for _ in 0..2 {
        assert_eq!(
            ask_for_reset(&asker, "nobody-here").await.status(),
            StatusCode::OK
        );
    }
    let r = ask_for_reset(&asker, "nobody-here").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // An hour later the address may ask again.
    app.clock.advance_secs(3601);
    assert_eq!(
        ask_for_reset(&asker, "nobody-here").await.status(),
        StatusCode::OK
    );
    // Only carol's request produced mail.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(smtp.inbox.lock().unwrap().len(), 1);
}

on_both_backends!(
    the_answer_tells_nothing_and_requests_are_throttled,
    super::the_answer_tells_nothing_and_requests_are_throttled
);

/// With a second factor the reset asks for it before the new password, and a reset so proven
/// is the self-service way out of `compromised`: the owner reported a sign-in, then reset.
async fn a_reset_with_a_factor_needs_it_and_remediates_a_compromise(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = mail_app(b, &smtp).await else {
        return;
    };
    app.add_user("alice", false).await;
    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (secret, _) = enrol_totp(&app).await;
    // A later sign-in, reported on the account page ("this wasn't me"): compromised. (A factor
    // added after the reported sign-in would be suspended, and the reset refused.)
    sign_out(&app).await;
    app.clock.advance_secs(60);
    let r = app.login("alice", PASSWORD).await;
    if location(&r) == "/login/mfa" {
        let code = vigil::auth::totp::code_at(&secret, app.svc.clock.now()).unwrap();
        crate::mfa::submit_code(&app, "/login/mfa/totp", &code).await;
    }
    let account = app.get("/account").await.text().await.unwrap();
    let signin = select(&account, "input[name=signin_id]").expect("a sign-in to report");
    let r = app
        .http
        .post(app.url("/account/signins/report"))
        .form(&[("csrf_token", csrf_in(&account)), ("signin_id", signin)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(risk_state(&app, "alice").await, "compromised");

    let asker = browser(&app);
    ask_for_reset(&asker, "alice").await;
    let mails = smtp.wait_for("alice@example.com", 2).await;
    let reset = mails
        .iter()
        .find(|m| m.raw.contains("Subject: Reset your password"))
        .expect("the reset mail");
    let link = link_to(reset, "/login/reset");
    let r = press(&asker, &link, "/login/reset").await;
    if location(&r).is_empty() {
        panic!("{}", r.text().await.unwrap());
    }
    assert_eq!(location(&r), "/login/mfa", "the second factor first");
    // Skipping the factor: no grant yet.
    let r = choose_password(&asker, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    app.clock.advance_secs(30);
    let code = vigil::auth::totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let r = crate::mfa::submit_code(&asker, "/login/mfa/totp", &code).await;
    assert_eq!(location(&r), "/login/reset/password");
    let r = choose_password(&asker, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(risk_state(&app, "alice").await, "none", "remediated");
    let alice = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    assert!(!alice.must_change_password);

    // The new password, with the factor, signs in (the reset left no session behind).
    assert_eq!(asker.get("/account").await.status(), StatusCode::SEE_OTHER);
    app.clock.advance_secs(30);
    let r = asker.login("alice", NEW_PASSWORD).await;
    assert!(
        matches!(location(&r).as_str(), "/account" | "/login/mfa"),
        "{}",
        location(&r)
    );
}

on_both_backends!(
    a_reset_with_a_factor_needs_it_and_remediates_a_compromise,
    super::a_reset_with_a_factor_needs_it_and_remediates_a_compromise
);

/// Two opens of one link at once (a double click, or a race by whoever holds the link): one
/// is granted, the other finds the link used.
async fn two_concurrent_opens_of_one_link_redeem_it_once(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = mail_app(b, &smtp).await else {
        return;
    };
    app.add_user("dave", false).await;
    let asker = browser(&app);
    ask_for_reset(&asker, "dave").await;
    let mail = smtp.wait_for("dave@example.com", 1).await.remove(0);
    let link = link_to(&mail, "/login/reset");
    let html = asker.get(&link).await.text().await.unwrap();
    let form = [
        ("csrf_token", csrf_in(&html)),
        ("token", select(&html, "input[name=token]").unwrap()),
    ];
    let post = || {
        asker
            .http
            .post(asker.url("/login/reset"))
            .form(&form)
            .send()
    };
    let (a, b2) = tokio::join!(post(), post());
    let (a, b2) = (a.unwrap(), b2.unwrap());
    let mut statuses = [a.status(), b2.status()];
    if statuses.contains(&StatusCode::INTERNAL_SERVER_ERROR) {
        panic!("{}\n{}", a.text().await.unwrap(), b2.text().await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::BAD_REQUEST]);
}

on_both_backends!(
    two_concurrent_opens_of_one_link_redeem_it_once,
    super::two_concurrent_opens_of_one_link_redeem_it_once
);

/// A sign-in from a new browser mails the owner a notice (not the account's first sign-in);
/// its one-click link, opened anywhere without signing in, reports the sign-in: the intruder's
/// session ends and the account is compromised. The link works once. Adding a factor is
/// noticed too.
async fn a_new_sign_in_is_noticed_and_reported_in_one_click(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = mail_app(b, &smtp).await else {
        return;
    };
    app.add_user("erin", false).await;
    assert_eq!(
        app.login("erin", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let intruder = browser(&app);
    app.clock.advance_secs(60);
    assert_eq!(
        intruder.login("erin", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let mail = smtp.wait_for("erin@example.com", 1).await.remove(0);
    assert!(
        mail.raw.contains("Subject: New sign-in to your account"),
        "{}",
        mail.raw
    );
    assert_eq!(
        smtp.inbox.lock().unwrap().len(),
        1,
        "the first sign-in sent nothing"
    );
    let link = link_to(&mail, "/report");

    let owner_elsewhere = browser(&app);
    let r = press(&owner_elsewhere, &link, "/report").await;
    let status = r.status();
    let html = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(text_of(&html, "#reported").is_some());
    assert_eq!(
        intruder.get("/account").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(risk_state(&app, "erin").await, "compromised");
    assert_eq!(audited(&app, "signin.reported").await.len(), 1);
    // Once only.
    let r = owner_elsewhere.get(&link).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A factor added from a signed-in session is noticed.
    app.add_user("fred", false).await;
    let f = browser(&app);
    assert_eq!(
        f.login("fred", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    enrol_totp(&f).await;
    let mail = smtp.wait_for("fred@example.com", 1).await.remove(0);
    assert!(
        mail.raw
            .contains("Subject: A sign-in method was added to your account"),
        "{}",
        mail.raw
    );
    assert!(decoded(&mail.raw).contains("/report?token="));
}

on_both_backends!(
    a_new_sign_in_is_noticed_and_reported_in_one_click,
    super::a_new_sign_in_is_noticed_and_reported_in_one_click
);

/// The administrators' digest: a report makes the next digest due and non-empty; only
/// administrators with a confirmed address get it; one per period; a quiet period sends
/// nothing.
async fn administrators_get_a_digest_of_high_risk_events(b: Backend) {
    use vigil::flow::digest::{send_if_due, Digest};
    let smtp = SmtpServer::start();
    let Some(app) = mail_app(b, &smtp).await else {
        return;
    };
    app.add_user("root", true).await;
    app.add_user("other-admin", true).await;
    let root = vigil::flow::accounts::find(&app.svc, "root").await.unwrap();
    let now = app.svc.clock.now().micros();
    app.svc
        .db
        .run(move |c| vigil::store::users::verify_email(c, &root.id, "root@example.com", now))
        .await
        .unwrap();
    app.add_user("hana", false).await;
    assert_eq!(
        app.login("hana", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let account = app.get("/account").await.text().await.unwrap();
    let r = app
        .http
        .post(app.url("/account/signins/report"))
        .form(&[
            ("csrf_token", csrf_in(&account)),
            (
                "signin_id",
                select(&account, "input[name=signin_id]").unwrap(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let first = send_if_due(&app.svc, app.svc.clock.now()).await.unwrap();
    assert_eq!(
        first,
        Digest::Sent(1),
        "one administrator has a confirmed address"
    );
    let mail = smtp.wait_for("root@example.com", 1).await.remove(0);
    let text = decoded(&mail.raw);
    assert!(mail.raw.contains("Subject: High-risk activity: digest"));
    assert!(text.contains("Sign-ins reported by users:     1"), "{text}");
    assert!(text.contains("hana (compromised)"), "{text}");
    assert_eq!(
        send_if_due(&app.svc, app.svc.clock.now()).await.unwrap(),
        Digest::NotDue
    );
    app.clock.advance_secs(25 * 3600);
    assert_eq!(
        send_if_due(&app.svc, app.svc.clock.now()).await.unwrap(),
        Digest::Quiet
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(smtp
        .inbox
        .lock()
        .unwrap()
        .iter()
        .all(|m| !m.to.iter().any(|t| t == "other-admin@example.com")));
}

on_both_backends!(
    administrators_get_a_digest_of_high_risk_events,
    super::administrators_get_a_digest_of_high_risk_events
);

/// A password changed on `/account` and an account locked by an administrator are noticed: the
/// first with a report link, the second without (the administrator did it).
async fn a_changed_password_and_a_lock_are_noticed(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = mail_app(b, &smtp).await else {
        return;
    };
    app.add_user("ivan", false).await;
    assert_eq!(
        app.login("ivan", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let page = app.get("/account/password").await.text().await.unwrap();
    let r = app
        .http
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", csrf_in(&page).as_str()),
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "{}",
        r.status()
    );
    let mail = smtp.wait_for("ivan@example.com", 1).await.remove(0);
    assert!(
        mail.raw.contains("Subject: Your password was changed"),
        "{}",
        mail.raw
    );
    assert!(decoded(&mail.raw).contains("/report?token="));

    vigil::flow::accounts::set_disabled(
        &app.svc,
        &vigil::flow::accounts::Actor::new("cli"),
        app.svc.clock.now(),
        "ivan",
        true,
    )
    .await
    .unwrap();
    let mails = smtp.wait_for("ivan@example.com", 2).await;
    assert!(
        mails[1].raw.contains("Subject: Your account was locked"),
        "{}",
        mails[1].raw
    );
    assert!(!decoded(&mails[1].raw).contains("/report?token="));
}

on_both_backends!(
    a_changed_password_and_a_lock_are_noticed,
    super::a_changed_password_and_a_lock_are_noticed
);
