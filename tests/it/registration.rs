//! Self-registration (`VIGIL_REGISTRATION`) over real pages and real SMTP: open registration
//! needs the address confirmed before the first sign-in; a burst from one network is held for
//! an administrator; an invitation proves the address and works once; off means off.

use reqwest::StatusCode;

use crate::admin_users::{audited, text_of};
use crate::email::{decoded, link_in, Received, SmtpServer};
use crate::helpers::{csrf_in, spawn_app_with, Backend, TestApp};
use crate::mfa::select;
use crate::oidc::location;
use crate::on_both_backends;

const PASS: &str = "correct horse battery staple 9";

async fn app_with(b: Backend, smtp: &SmtpServer, mode: &str) -> Option<TestApp> {
    spawn_app_with(
        b,
        &[
            ("VIGIL_SMTP_URL", &smtp.url()),
            ("VIGIL_MAIL_FROM", "id@example.com"),
            ("VIGIL_REGISTRATION", mode),
        ],
    )
    .await
}

async fn register(app: &TestApp, path: &str, username: &str, email: &str) -> reqwest::Response {
    let page = app.get(path).await.text().await.unwrap();
    let invite = select(&page, "input[name=invite]").unwrap_or_default();
    app.http
        .post(app.url("/register"))
        .form(&[
            ("csrf_token", csrf_in(&page).as_str()),
            ("username", username),
            ("email", email),
            ("name", ""),
            ("password", PASS),
            ("invite", invite.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

async fn confirm(app: &TestApp, m: &Received) {
    let link = link_in(m);
    let html = app.get(&link).await.text().await.unwrap();
    let r = app
        .http
        .post(app.url("/email/verify"))
        .form(&[
            ("csrf_token", csrf_in(&html)),
            ("token", select(&html, "input[name=token]").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn registration_of(app: &TestApp, username: &str) -> Option<String> {
    vigil::flow::accounts::find(&app.svc, username)
        .await
        .unwrap()
        .registration
}

/// Open registration: the account exists at once but signs in only after its address is
/// confirmed; a taken username is said plainly; the fourth registration within an hour from one
/// network is held until an administrator approves it.
async fn open_registration_confirms_the_address_and_holds_bursts(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = app_with(b, &smtp, "open").await else {
        return;
    };
    let login = app.get("/login").await.text().await.unwrap();
    assert!(login.contains("id=\"register-link\""));
    let r = register(&app, "/register", "carl", "carl@example.com").await;
    let status = r.status();
    let html = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(text_of(&html, "#registered")
        .unwrap()
        .contains("mailed a link"));
    assert_eq!(
        registration_of(&app, "carl").await.as_deref(),
        Some("unverified")
    );

    // Not before the address is confirmed (and not as an attack: nothing in the review queue).
    let r = app.login("carl", PASS).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("not confirmed"));
    let mail = smtp.wait_for("carl@example.com", 1).await.remove(0);
    // Nor a password reset: an unproven address (anyone's, typed by anyone) gets no reset link.
    let token = app.csrf_from("/login/forgot").await;
    let r = app
        .http
        .post(app.url("/login/forgot"))
        .form(&[("csrf_token", token.as_str()), ("identifier", "carl")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(smtp.wait_for("carl@example.com", 1).await.len(), 1);
    assert!(decoded(&mail.raw).contains("/email/verify?token="));
    confirm(&app, &mail).await;
    assert_eq!(registration_of(&app, "carl").await, None);
    assert_eq!(location(&app.login("carl", PASS).await), "/account");

    // A taken username.
    let other = crate::helpers::another_browser(&app);
    let r = register(&other, "/register", "carl", "carl2@example.com").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("taken"));

    // A burst from one network: the 2nd and 3rd pass, the 4th is held (the taken name counted).
    let r = register(&other, "/register", "dora", "dora@example.com").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = register(&other, "/register", "emil", "emil@example.com").await;
    let html = r.text().await.unwrap();
    assert!(
        text_of(&html, "#registered")
            .unwrap()
            .contains("administrator"),
        "{html}"
    );
    assert_eq!(registration_of(&app, "emil").await.as_deref(), Some("held"));
    let mail = smtp.wait_for("emil@example.com", 1).await.remove(0);
    confirm(&other, &mail).await;
    assert_eq!(registration_of(&app, "emil").await.as_deref(), Some("held"));
    let r = other.login("emil", PASS).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("approve"));
    app.add_user("root", true).await;
    let root = vigil::flow::accounts::find(&app.svc, "root").await.unwrap();
    let emil = vigil::flow::accounts::find(&app.svc, "emil").await.unwrap();
    let actor =
        vigil::flow::accounts::Actor::admin(root.id, std::net::IpAddr::from([127, 0, 0, 1]));
    vigil::flow::registration::approve(&app.svc, &actor, app.svc.clock.now(), &emil.id)
        .await
        .unwrap();
    assert_eq!(location(&other.login("emil", PASS).await), "/account");
    assert_eq!(audited(&app, "user.registered").await.len(), 3);
    assert_eq!(audited(&app, "user.registration_approved").await.len(), 1);
}

on_both_backends!(
    open_registration_confirms_the_address_and_holds_bursts,
    super::open_registration_confirms_the_address_and_holds_bursts
);

/// Invitation only: no invitation, no registration; an administrator's invitation names the
/// address, proves it, and works once.
async fn an_invitation_proves_the_address_and_works_once(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = app_with(b, &smtp, "invite").await else {
        return;
    };
    assert_eq!(app.get("/register").await.status(), StatusCode::NOT_FOUND);
    app.add_user("root", true).await;
    let root = vigil::flow::accounts::find(&app.svc, "root").await.unwrap();
    let actor =
        vigil::flow::accounts::Actor::admin(root.id, std::net::IpAddr::from([127, 0, 0, 1]));
    vigil::flow::registration::invite(&app.svc, &actor, app.svc.clock.now(), "gus@example.com")
        .await
        .unwrap();
    let mail = smtp.wait_for("gus@example.com", 1).await.remove(0);
    assert!(
        mail.raw.contains("Subject: You are invited"),
        "{}",
        mail.raw
    );
    let text = decoded(&mail.raw);
    let start = text.find("/register?invite=").unwrap();
    let link: String = text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_owned();
    let page = app.get(&link).await.text().await.unwrap();
    assert_eq!(
        select(&page, "input[name=email]").as_deref(),
        Some("gus@example.com")
    );
    // The typed address is ignored: the invitation's is the one proven.
    let r = register(&app, &link, "gus", "someone-else@example.com").await;
    let html = r.text().await.unwrap();
    assert!(
        text_of(&html, "#registered").unwrap().contains("ready"),
        "{html}"
    );
    let gus = vigil::flow::accounts::find(&app.svc, "gus").await.unwrap();
    assert_eq!(gus.email, "gus@example.com");
    assert!(gus.email_verified);
    assert_eq!(gus.registration, None);
    assert_eq!(location(&app.login("gus", PASS).await), "/account");
    // Once only.
    let r = app.get(&link).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

on_both_backends!(
    an_invitation_proves_the_address_and_works_once,
    super::an_invitation_proves_the_address_and_works_once
);

/// Off (the default): no page, no registration, whatever is posted.
async fn registration_off_is_off(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = app_with(b, &smtp, "off").await else {
        return;
    };
    assert_eq!(app.get("/register").await.status(), StatusCode::NOT_FOUND);
    let login = app.get("/login").await.text().await.unwrap();
    assert!(!login.contains("id=\"register-link\""));
    let token = app.csrf_from("/login").await;
    let r = app
        .http
        .post(app.url("/register"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "mallory"),
            ("email", "m@example.com"),
            ("password", PASS),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(vigil::flow::accounts::find(&app.svc, "mallory")
        .await
        .is_err());
}

on_both_backends!(registration_off_is_off, super::registration_off_is_off);
