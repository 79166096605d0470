//! Throttling over real HTTP on both backends: parallel guesses count one each (a reservation
//! is taken before the hash), an IPv6 client is one client per /64, the owner's known device
//! and passkeys are not locked out by strangers, the current-password check is throttled, a
//! full hash queue answers 503, and the client IP cannot be spoofed through X-Forwarded-For.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{client, csrf_in, spawn_app_with, Backend, TestApp, PASSWORD};
use crate::oidc::location;
use crate::on_both_backends;
use crate::passkeys::{assertion, post_json, register};
use crate::risk::{browser, login as login_as};

/// One wrong-password POST from a fresh browser (own cookies, own CSRF token).
async fn wrong_from_fresh(app: &TestApp, username: &str) -> StatusCode {
    let http = client(app.port);
    post_login(app, &http, username, "not the password").await
}

async fn post_login(
    app: &TestApp,
    http: &reqwest::Client,
    username: &str,
    password: &str,
) -> StatusCode {
    let page = http
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    http.post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &csrf_in(&page)),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

/// Sign-in log rows of `username` with outcome `failure`: one per password actually checked.
async fn checked_failures(app: &TestApp, username: &str) -> usize {
    let user = vigil::flow::accounts::find(&app.svc, username)
        .await
        .unwrap();
    let uid = user.id.clone();
    app.svc
        .db
        .run(move |c| vigil::store::signins::recent_for_user(c, &uid, 10_000))
        .await
        .unwrap()
        .iter()
        .filter(|r| r.outcome == "failure")
        .count()
}

async fn parallel_wrong_passwords(backend: Backend, n: usize) {
    let app = spawn_app_with(backend, &[]).await.unwrap();
    app.add_user("alice", false).await;
    let app = Arc::new(app);
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let app = app.clone();
            actix_web::rt::spawn(async move { wrong_from_fresh(&app, "alice").await })
        })
        .collect();
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.unwrap());
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        statuses.iter().all(|s| !s.is_server_error()),
        "no 5xx: {statuses:?}"
    );
    let limit = app.svc.settings.throttle.account_failures as usize;
    assert_eq!(
        refused, limit,
        "exactly the limit was checked: {statuses:?}"
    );
    assert_eq!(throttled, n - limit);
    assert_eq!(checked_failures(&app, "alice").await, limit);
    eprintln!("{n} parallel wrong passwords: {refused} checked, {throttled} answered 429");
}

async fn forty_parallel_wrong_passwords_check_five(backend: Backend) {
    parallel_wrong_passwords(backend, 40).await;
}
on_both_backends!(
    forty_parallel_wrong_passwords_check_five,
    super::forty_parallel_wrong_passwords_check_five
);

async fn two_hundred_parallel_wrong_passwords_check_five(backend: Backend) {
    parallel_wrong_passwords(backend, 200).await;
}
on_both_backends!(
    two_hundred_parallel_wrong_passwords_check_five,
    super::two_hundred_parallel_wrong_passwords_check_five
);

/// Behind a trusted proxy, a client rotating through the addresses of one IPv6 /64 spends one
/// budget; the next /64 has its own.
async fn ipv6_client_is_throttled_per_slash_64(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("VIGIL_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("VIGIL_THROTTLE_IP_FAILURES", "5"),
        ],
    )
    .await
    .unwrap();
    for i in 1..=8u32 {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let b = browser(&app, &jar, &format!("2001:db8:1:2:{i:x}::{i:x}"));
        // A different (unknown) account each time: only the IP budget can stop this.
        let status = post_login(&app, &b, &format!("nobody{i}"), "guess").await;
        if i <= 5 {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "attempt {i}");
        }
    }
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let other = browser(&app, &jar, "2001:db8:1:3::1");
    assert_eq!(
        post_login(&app, &other, "nobody", "guess").await,
        StatusCode::UNAUTHORIZED,
        "another /64 is another client"
    );
}
on_both_backends!(
    ipv6_client_is_throttled_per_slash_64,
    super::ipv6_client_is_throttled_per_slash_64
);

/// A stranger uses up the account's budget; the owner, on the browser they signed in with
/// before, still signs in. Their own guessing on that browser is throttled by its own budget.
async fn strangers_do_not_lock_out_the_known_device(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await.unwrap();
    app.add_user("alice", false).await;
    let owner = client(app.port);
    assert_eq!(
        post_login(&app, &owner, "alice", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    sign_out(&app, &owner).await;

    for _ in 0..5 {
        assert_eq!(
            wrong_from_fresh(&app, "alice").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        wrong_from_fresh(&app, "alice").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the stranger is throttled"
    );
    let r = login_with(&app, &owner, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account", "the owner signs in");
    sign_out(&app, &owner).await;

    // The owner's browser guessing on its own is still limited.
    for _ in 0..5 {
        assert_eq!(
            post_login(&app, &owner, "alice", "wrong").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        post_login(&app, &owner, "alice", "wrong").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
on_both_backends!(
    strangers_do_not_lock_out_the_known_device,
    super::strangers_do_not_lock_out_the_known_device
);

async fn login_with(
    app: &TestApp,
    http: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let page = http
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    http.post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &csrf_in(&page)),
        ])
        .send()
        .await
        .unwrap()
}

async fn sign_out(app: &TestApp, http: &reqwest::Client) {
    let account = http
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    http.post(app.url("/logout/session"))
        .form(&[("csrf_token", csrf_in(&account))])
        .send()
        .await
        .unwrap();
}

/// Wrong passwords against the account do not refuse a passkey: it cannot be guessed.
async fn strangers_do_not_lock_out_a_passkey(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await.unwrap();
    app.add_user("carol", false).await;
    assert_eq!(location(&app.login("carol", PASSWORD).await), "/account");
    let mut key = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
    assert_eq!(register(&app, &mut key, "Phone").await.0, StatusCode::OK);
    let user = vigil::flow::accounts::find(&app.svc, "carol")
        .await
        .unwrap();
    let uid = user.id.clone();
    let creds = app
        .svc
        .db
        .run(move |c| vigil::store::factors::passkeys_for(c, &uid))
        .await
        .unwrap();
    sign_out(&app, &app.http).await;

    for _ in 0..5 {
        wrong_from_fresh(&app, "carol").await;
    }
    assert_eq!(
        wrong_from_fresh(&app, "carol").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // A passwordless sign-in: the account's password budget is spent, the passkey still works.
    let page = app.get("/login").await.text().await.unwrap();
    let doc = scraper::Html::parse_document(&page);
    let button = doc
        .select(&scraper::Selector::parse("button[data-webauthn=authenticate]").unwrap())
        .next()
        .expect("Sign in with a passkey");
    let (csrf, finish) = (
        button.value().attr("data-csrf").unwrap().to_owned(),
        button.value().attr("data-finish").unwrap().to_owned(),
    );
    let (status, begun) = post_json(&app, "/login/passkey/begin", &csrf, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let mut options = begun["options"].clone();
    options["publicKey"]["allowCredentials"] =
        json!([{ "type": "public-key", "id": creds[0].cred_id }]);
    let mut cred = assertion(&app, &mut key, options);
    cred.response.user_handle = Some(uuid::Uuid::parse_str(&user.id).unwrap().as_bytes().to_vec());
    let (status, done) = post_json(
        &app,
        &finish,
        &csrf,
        json!({ "flow": begun["flow"], "credential": cred }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["redirect"].is_string(), "{done}");
}
on_both_backends!(
    strangers_do_not_lock_out_a_passkey,
    super::strangers_do_not_lock_out_a_passkey
);

/// Thirty failures from one address (a NAT) throttle that address, but not the owner's known
/// browser behind it, whose sign-in is also not raised to a risky one by the strangers.
async fn ip_failures_do_not_lock_out_a_known_device(backend: Backend) {
    const NAT: &str = "192.0.2.50";
    let app = spawn_app_with(backend, &[("VIGIL_TRUSTED_PROXIES", "127.0.0.1/32")])
        .await
        .unwrap();
    app.add_user("alice", false).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let owner = browser(&app, &jar, NAT);
    assert_eq!(
        location(&login_as(&app, &owner, "alice", None).await),
        "/account"
    );
    sign_out(&app, &owner).await;

    let limit = app.svc.settings.throttle.ip_failures;
    for i in 0..limit {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let stranger = browser(&app, &jar, NAT);
        assert_eq!(
            post_login(&app, &stranger, &format!("user{i}"), "guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    let jar2 = Arc::new(reqwest::cookie::Jar::default());
    let stranger = browser(&app, &jar2, NAT);
    assert_eq!(
        post_login(&app, &stranger, "alice", "guess").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is throttled"
    );
    let r = login_as(&app, &owner, "alice", None).await;
    assert_eq!(location(&r), "/account", "the owner's browser signs in");
}
on_both_backends!(
    ip_failures_do_not_lock_out_a_known_device,
    super::ip_failures_do_not_lock_out_a_known_device
);

/// A signed-in session is not an unthrottled oracle for the current password.
async fn current_password_check_is_throttled(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await.unwrap();
    app.add_user("alice", false).await;
    assert_eq!(location(&app.login("alice", PASSWORD).await), "/account");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let token = app.csrf_from("/account/password").await;
        let r = app
            .http
            .post(app.url("/account/password"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("current_password", "a wrong guess"),
                ("new_password", "a brand new long passphrase"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
    }
    assert_eq!(
        &statuses[..5],
        &[StatusCode::BAD_REQUEST; 5],
        "{statuses:?}"
    );
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}
on_both_backends!(
    current_password_check_is_throttled,
    super::current_password_check_is_throttled
);

/// A hash queue of zero: parallel sign-ins beyond the hashing threads get 503 with
/// Retry-After at once, never a 500.
async fn full_hash_queue_answers_503(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("VIGIL_HASH_QUEUE", "0"),
            ("VIGIL_ARGON2_MEMORY_KIB", "32768"),
            ("VIGIL_ARGON2_ITERATIONS", "3"),
            ("VIGIL_THROTTLE_IP_FAILURES", "10000"),
        ],
    )
    .await
    .unwrap();
    let app = Arc::new(app);
    let handles: Vec<_> = (0..24)
        .map(|i| {
            let app = app.clone();
            actix_web::rt::spawn(async move {
                let http = client(app.port);
                let page = http
                    .get(app.url("/login"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let r = http
                    .post(app.url("/login"))
                    .form(&[
                        ("username", format!("nobody{i}")),
                        ("password", "guess".to_owned()),
                        ("csrf_token", csrf_in(&page)),
                    ])
                    .send()
                    .await
                    .unwrap();
                (r.status(), r.headers().get("retry-after").is_some())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for h in handles {
        answers.push(h.await.unwrap());
    }
    assert!(
        answers
            .iter()
            .all(|(s, _)| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::SERVICE_UNAVAILABLE),
        "{answers:?}"
    );
    let busy: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    eprintln!(
        "hash queue 0: {} of {} answered 503",
        busy.len(),
        answers.len()
    );
    assert!(!busy.is_empty(), "some were refused as busy: {answers:?}");
    assert!(
        busy.iter().all(|(_, retry)| *retry),
        "503 says when to retry"
    );
    // A busy answer is not a failure: nothing was checked, so nothing is counted for it.
    let checked = answers.len() - busy.len();
    let rows = app
        .svc
        .db
        .run(|c| vigil::store::throttle::counts(c, "nobody0", "127.0.0.1", 0, None))
        .await
        .unwrap();
    assert_eq!(rows.1 as usize, checked, "one failure per checked password");
}
on_both_backends!(
    full_hash_queue_answers_503,
    super::full_hash_queue_answers_503
);

/// `X-Forwarded-For: <spoofed>, junk, <real>` through a trusted proxy is the real address
/// (here deny-listed); `<spoofed>, junk` alone is the proxy itself, never the spoofed address.
async fn forwarded_for_junk_cannot_spoof_the_client(backend: Backend) {
    const DENIED: &str = "203.0.113.5";
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("deny.txt");
    std::fs::write(&deny, format!("{DENIED}\n")).unwrap();
    let app = spawn_app_with(
        backend,
        &[
            ("VIGIL_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("VIGIL_IP_DENYLIST", deny.to_str().unwrap()),
        ],
    )
    .await
    .unwrap();
    app.add_user("alice", false).await;

    let jar = Arc::new(reqwest::cookie::Jar::default());
    let denied = browser(&app, &jar, &format!("198.51.100.7, junk, {DENIED}"));
    let r = login_as(&app, &denied, "alice", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "the deny list holds");
    app.clock.advance_secs(60);

    let jar = Arc::new(reqwest::cookie::Jar::default());
    let spoofing = browser(&app, &jar, "198.51.100.7, junk");
    let r = login_as(&app, &spoofing, "alice", None).await;
    assert_eq!(location(&r), "/account");
    let user = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    let rows = app
        .svc
        .db
        .run(move |c| vigil::store::signins::recent_for_user(c, &user.id, 10))
        .await
        .unwrap();
    let ips: Vec<_> = rows
        .iter()
        .map(|r| r.ip.clone().unwrap_or_default())
        .collect();
    assert!(
        ips.contains(&"127.0.0.1".to_owned()) && ips.contains(&DENIED.to_owned()),
        "{ips:?}"
    );
    assert!(!ips.contains(&"198.51.100.7".to_owned()), "{ips:?}");
}
on_both_backends!(
    forwarded_for_junk_cannot_spoof_the_client,
    super::forwarded_for_junk_cannot_spoof_the_client
);
