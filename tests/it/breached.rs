//! Breached passwords through a Pwned Passwords range API started in the test: only five hex
//! digits of the SHA-1 leave vigil; a breached password is refused when set and, at sign-in,
//! makes the account choose a new one; an API that does not answer fails open.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use reqwest::StatusCode;
use sha1::{Digest, Sha1};

use crate::admin_users::audited;
use crate::helpers::{csrf_in, spawn_app_with, Backend, TestApp, PASSWORD};
use crate::oidc::location;
use crate::on_both_backends;

const BREACHED: &str = "Tr0ub4dor&3 is everywhere";

/// The range API: every suffix of the requested prefix among `breached` (with its count), plus
/// padding lines, as api.pwnedpasswords.com answers with `Add-Padding: true`.
#[derive(Clone, Default)]
struct RangeApi {
    breached: Arc<Mutex<Vec<String>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl RangeApi {
    fn start() -> (Self, String) {
        let api = RangeApi::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::new(api.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route(
                "/range/{prefix}",
                web::get().to(
                    |api: web::Data<RangeApi>, path: web::Path<String>| async move {
                        let prefix = path.into_inner();
                        api.asked.lock().unwrap().push(prefix.clone());
                        let mut body = String::from("0000000000000000000000000000000000A:0\r\n");
                        for p in api.breached.lock().unwrap().iter() {
                            let hex = hex::encode_upper(Sha1::digest(p.as_bytes()));
                            if hex.starts_with(&prefix) {
                                body.push_str(&format!("{}:4242\r\n", &hex[5..]));
                            }
                        }
                        HttpResponse::Ok().body(body)
                    },
                ),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        (api, format!("http://127.0.0.1:{port}/range/"))
    }

    fn breach(&self, password: &str) {
        self.breached.lock().unwrap().push(password.to_owned());
    }
}

async fn change_password(app: &TestApp, current: &str, new: &str) -> reqwest::Response {
    let html = app.get("/account/password").await.text().await.unwrap();
    app.http
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", csrf_in(&html).as_str()),
            ("current_password", current),
            ("new_password", new),
        ])
        .send()
        .await
        .unwrap()
}

/// Setting a breached password is refused with a reason; the API only ever saw five hex digits.
async fn a_breached_password_is_refused_when_set(b: Backend) {
    let (api, url) = RangeApi::start();
    api.breach(BREACHED);
    let Some(app) = spawn_app_with(b, &[("VIGIL_PWNED_PASSWORDS_URL", url.as_str())]).await else {
        return;
    };
    app.add_user("alice", false).await;
    assert_eq!(location(&app.login("alice", PASSWORD).await), "/account");
    let r = change_password(&app, PASSWORD, BREACHED).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("appears in 4242 known data breaches"));
    let r = change_password(&app, PASSWORD, "a fresh and unbreached passphrase").await;
    assert_eq!(location(&r), "/account?notice=password");
    // k-anonymity: five hex digits per lookup, never more.
    let asked = api.asked.lock().unwrap().clone();
    assert!(asked.len() >= 3, "{asked:?}");
    assert!(asked
        .iter()
        .all(|p| p.len() == 5 && p.chars().all(|c| c.is_ascii_hexdigit())));
    // Creating an account with it (CLI, console, SCIM share the rule) is refused too.
    let r = vigil::flow::accounts::create(
        &app.svc,
        &vigil::flow::accounts::Actor::new("test"),
        app.svc.clock.now(),
        vigil::flow::accounts::NewAccount {
            username: "bob".into(),
            email: "bob@example.com".into(),
            name: String::new(),
            is_admin: false,
            password: secrecy::SecretString::from(BREACHED.to_owned()),
        },
    )
    .await;
    assert!(matches!(r, Err(vigil::flow::FlowError::Invalid(m)) if m.contains("data breaches")));
}

on_both_backends!(
    a_breached_password_is_refused_when_set,
    super::a_breached_password_is_refused_when_set
);

/// A password that turns up in a breach after it was chosen: the next sign-in with it must
/// choose a new one before anything else, and it is audited.
async fn a_breached_password_at_sign_in_must_be_changed(b: Backend) {
    let (api, url) = RangeApi::start();
    let Some(app) = spawn_app_with(b, &[("VIGIL_PWNED_PASSWORDS_URL", url.as_str())]).await else {
        return;
    };
    app.add_user("carol", false).await;
    api.breach(PASSWORD);
    let r = app.login("carol", PASSWORD).await;
    assert_eq!(location(&r), "/account/password", "a new password first");
    assert_eq!(audited(&app, "user.password_breached").await.len(), 1);
    let r = change_password(&app, PASSWORD, "a fresh and unbreached passphrase").await;
    assert_eq!(location(&r), "/account?notice=password");
    crate::mfa::sign_out(&app).await;
    let r = app
        .login("carol", "a fresh and unbreached passphrase")
        .await;
    assert_eq!(location(&r), "/account");
}

on_both_backends!(
    a_breached_password_at_sign_in_must_be_changed,
    super::a_breached_password_at_sign_in_must_be_changed
);

/// The API does not answer: sign-in and password changes go on (fail open), counted.
async fn an_unreachable_api_fails_open(b: Backend) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/range/");
    let Some(app) = spawn_app_with(b, &[("VIGIL_PWNED_PASSWORDS_URL", url.as_str())]).await else {
        return;
    };
    app.add_user("dave", false).await;
    assert_eq!(location(&app.login("dave", PASSWORD).await), "/account");
    let r = change_password(&app, PASSWORD, "a fresh and unbreached passphrase").await;
    assert_eq!(location(&r), "/account?notice=password");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("vigil_breached_password_checks_total{result=\"unavailable\"}"))
        .expect("counted");
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 2.0, "{line}");
}

on_both_backends!(
    an_unreachable_api_fails_open,
    super::an_unreachable_api_fails_open
);
