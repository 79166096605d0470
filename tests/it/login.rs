//! Password sign-in, SSO session, sign-out, CSRF, throttling and headers, through real HTTP.

use reqwest::StatusCode;

use crate::helpers::{csrf_in, spawn_app, spawn_app_with, Backend, PASSWORD};
use crate::on_both_backends;

fn set_cookie<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

async fn sign_in_and_be_recognised(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;

    let resp = app.login("Alice", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/account");
    let cookie = set_cookie(&resp, "vigil_session")
        .expect("session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "http issuer: no Secure flag ({cookie})"
    );

    let account = app.get("/account").await;
    assert_eq!(account.status(), StatusCode::OK);
    let body = account.text().await.unwrap();
    assert!(body.contains("alice@example.com"), "{body}");

    // Next visit to the login page: already signed in.
    let again = app.get("/login").await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(again.headers()["location"], "/account");
}
on_both_backends!(sign_in_and_be_recognised, super::sign_in_and_be_recognised);

async fn wrong_password_and_unknown_user_get_the_same_answer(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("bob", false).await;
    let wrong = app.login("bob", "not the password").await;
    let unknown = app.login("nobody", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "vigil_session").is_none());
    let (w, u) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert!(w.contains("Wrong username or password."));
    assert!(u.contains("Wrong username or password."));
    // The pages differ only in the echoed username and the fresh CSRF token.
    let scrub = |s: &str, name: &str| s.replace(&csrf_in(s), "TOKEN").replace(name, "NAME");
    assert_eq!(scrub(&w, "bob"), scrub(&u, "nobody"));
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);
}
on_both_backends!(
    wrong_password_and_unknown_user_get_the_same_answer,
    super::wrong_password_and_unknown_user_get_the_same_answer
);

async fn forms_without_a_valid_csrf_token_are_refused(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("carol", false).await;
    let _ = app.get("/login").await; // has the CSRF cookie, but the form lacks the token
    let missing = app
        .http
        .post(app.url("/login"))
        .form(&[("username", "carol"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    assert!(missing.text().await.unwrap().contains("reload the page"));
    let forged = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "carol"),
            ("password", PASSWORD),
            ("csrf_token", "AAAA"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // A token from another browser does not pair with this browser's cookie.
    let other = crate::helpers::client(app.port);
    let foreign = csrf_in(
        &other
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let cross = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "carol"),
            ("password", PASSWORD),
            ("csrf_token", foreign.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);
}
on_both_backends!(
    forms_without_a_valid_csrf_token_are_refused,
    super::forms_without_a_valid_csrf_token_are_refused
);

async fn signing_out_ends_the_session(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("dave", false).await;
    let resp = app.login("dave", PASSWORD).await;
    let cookie = set_cookie(&resp, "vigil_session").unwrap();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("vigil_session=")
        .to_owned();

    let token_on_account = csrf_in(&app.get("/account").await.text().await.unwrap());
    let out = app
        .http
        .post(app.url("/logout/session"))
        .form(&[("csrf_token", token_on_account.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    assert!(out.text().await.unwrap().contains("signed out"));
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);

    // Replaying the old cookie from another client does not bring the session back.
    let replay = crate::helpers::client(app.port)
        .get(app.url("/account"))
        .header("cookie", format!("vigil_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
}
on_both_backends!(
    signing_out_ends_the_session,
    super::signing_out_ends_the_session
);

async fn a_new_sign_in_replaces_the_session_id(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("erin", false).await;
    let first = app.login("erin", PASSWORD).await;
    let first_cookie = set_cookie(&first, "vigil_session")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // Signing in again from the same browser (e.g. prompt=login later) issues a new id and
    // ends the old session: no fixation.
    let token = csrf_in(&app.get("/account").await.text().await.unwrap());
    let second = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "erin"),
            ("password", PASSWORD),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let second_cookie = set_cookie(&second, "vigil_session")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(first_cookie, second_cookie);
    let old = crate::helpers::client(app.port)
        .get(app.url("/account"))
        .header("cookie", first_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::SEE_OTHER);
}
on_both_backends!(
    a_new_sign_in_replaces_the_session_id,
    super::a_new_sign_in_replaces_the_session_id
);

async fn guessing_is_throttled_before_hashing(b: Backend) {
    let app = spawn_app_with(b, &[("VIGIL_THROTTLE_ACCOUNT_FAILURES", "3")])
        .await
        .unwrap();
    app.add_user("frank", false).await;
    for _ in 0..3 {
        assert_eq!(
            app.login("frank", "wrong guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password is refused now, with a try-later page and Retry-After.
    let t = app.login("frank", PASSWORD).await;
    assert_eq!(t.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = t.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    assert!(t.text().await.unwrap().contains("Too many attempts"));
    // After the window, the account can sign in again.
    app.clock.advance_secs(15 * 60 + 1);
    assert_eq!(
        app.login("frank", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}
on_both_backends!(
    guessing_is_throttled_before_hashing,
    super::guessing_is_throttled_before_hashing
);

async fn per_ip_throttle_believes_forwarded_for_only_from_trusted_proxies(b: Backend) {
    let app = spawn_app_with(
        b,
        &[
            ("VIGIL_THROTTLE_IP_FAILURES", "2"),
            ("VIGIL_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    )
    .await
    .unwrap();
    app.add_user("gina", false).await;
    let attempt = |xff: &'static str, user: &'static str| {
        let app = &app;
        async move {
            let token = app.csrf_from("/login").await;
            app.http
                .post(app.url("/login"))
                .header("x-forwarded-for", xff)
                .form(&[
                    ("username", user),
                    ("password", "wrong guess"),
                    ("csrf_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Spraying two different accounts from one client address trips the IP limit…
    assert_eq!(attempt("203.0.113.7", "u1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("203.0.113.7", "u2").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        attempt("203.0.113.7", "u3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // …while another client behind the same proxy is unaffected.
    assert_eq!(
        attempt("198.51.100.9", "u4").await,
        StatusCode::UNAUTHORIZED
    );
}
on_both_backends!(
    per_ip_throttle_believes_forwarded_for_only_from_trusted_proxies,
    super::per_ip_throttle_believes_forwarded_for_only_from_trusted_proxies
);

#[actix_web::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app_with(Backend::Sqlite, &[("VIGIL_THROTTLE_IP_FAILURES", "2")])
        .await
        .unwrap();
    for (i, xff) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .iter()
        .enumerate()
    {
        let token = app.csrf_from("/login").await;
        let status = app
            .http
            .post(app.url("/login"))
            .header("x-forwarded-for", *xff)
            .form(&[
                ("username", format!("x{i}")),
                ("password", "wrong guess".into()),
                ("csrf_token", token),
            ])
            .send()
            .await
            .unwrap()
            .status();
        // A forged header does not give each attempt a fresh IP budget.
        let expected = if i < 2 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(status, expected);
    }
}

#[actix_web::test]
async fn disabled_accounts_cannot_sign_in() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.add_user("hank", false).await;
    vigil::flow::accounts::set_disabled(
        &app.svc,
        &vigil::flow::accounts::Actor::new("t"),
        app.svc.clock.now(),
        "hank",
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        app.login("hank", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn every_page_carries_security_headers_and_errors_are_pages() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    for path in ["/login", "/no/such/page", "/account"] {
        let r = app.get(path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
    }
    let nf = app.get("/no/such/page").await;
    assert_eq!(nf.status(), StatusCode::NOT_FOUND);
    assert!(nf.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(nf.text().await.unwrap().contains("Page not found"));
    // A malformed form body is a readable 400, not a 500.
    let token = app.csrf_from("/login").await;
    let bad = app
        .http
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={token}&username=%ZZ"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn first_visit_gets_a_long_lived_device_cookie() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let r = app.get("/login").await;
    let c = set_cookie(&r, "vigil_device")
        .expect("device cookie")
        .to_owned();
    assert!(c.contains("HttpOnly") && c.contains("Max-Age="), "{c}");
    // The browser keeps it: no new one on the next visit.
    let r2 = app.get("/login").await;
    assert!(set_cookie(&r2, "vigil_device").is_none());
}

#[actix_web::test]
async fn healthz_reports_the_database() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["database"]["reachable"], true);
    assert_eq!(v["database"]["backend"], "sqlite");
}
