//! The risk engine through the real server: a GeoIP test database, `X-Forwarded-For` from a
//! trusted proxy, a baseline of familiar sign-ins, then impossible travel, a deny-listed network
//! and a risky sign-in of an account without a second factor.

use std::sync::Arc;

use openidconnect::{OAuth2TokenResponse, TokenResponse};
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;

use crate::helpers::{csrf_in, spawn_app_with, Backend, TestApp, PASSWORD};
use crate::oidc::{add_client, location, payload, query, rp, ClientSpec};

pub const BERLIN: &str = "192.0.2.10";
pub const SYDNEY: &str = "198.51.100.7";
const DENIED: &str = "203.0.113.5";
pub const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// A browser at a given address (as the trusted proxy reports it), sharing one cookie jar.
pub fn browser(app: &TestApp, jar: &Arc<reqwest::cookie::Jar>, ip: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-forwarded-for", ip.parse().unwrap());
    h.insert("user-agent", UA.parse().unwrap());
    // English first: these tests read the English pages (tests/it/i18n.rs covers German).
    h.insert(
        "accept-language",
        "en-GB,en;q=0.9,de;q=0.8".parse().unwrap(),
    );
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .default_headers(h)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], app.port)),
        )
        .build()
        .unwrap()
}

async fn risky_app() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("deny.txt");
    std::fs::write(&deny, "# test deny list\n203.0.113.0/24\n").unwrap();
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("VIGIL_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("VIGIL_GEOIP_CITY", "geoip/vigil-test-city.mmdb"),
            ("VIGIL_GEOIP_ASN", "geoip/vigil-test-asn.mmdb"),
            ("VIGIL_IP_DENYLIST", deny.to_str().unwrap()),
        ],
    )
    .await
    .unwrap();
    (app, dir)
}

pub async fn login(
    app: &TestApp,
    b: &reqwest::Client,
    user: &str,
    tx: Option<&str>,
) -> reqwest::Response {
    login_as(app, b, user, PASSWORD, tx).await
}

/// [`login`] with another password (a temporary one from an admin reset, a wrong one).
pub async fn login_with_password(
    app: &TestApp,
    b: &reqwest::Client,
    user: &str,
    password: &str,
) -> reqwest::Response {
    login_as(app, b, user, password, None).await
}

async fn login_as(
    app: &TestApp,
    b: &reqwest::Client,
    user: &str,
    password: &str,
    tx: Option<&str>,
) -> reqwest::Response {
    let path = match tx {
        Some(t) => format!("/login?tx={t}"),
        None => "/login".into(),
    };
    let page = b
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut form = vec![
        ("username", user.to_owned()),
        ("password", password.to_owned()),
        ("csrf_token", csrf_in(&page)),
        (
            "device_hints",
            r#"{"tz":"Europe/Berlin","screen":"1920x1080","platform":"Linux x86_64"}"#.into(),
        ),
    ];
    if let Some(t) = tx {
        form.push(("tx", t.to_owned()));
    }
    b.post(app.url("/login")).form(&form).send().await.unwrap()
}

pub async fn sign_out(app: &TestApp, b: &reqwest::Client) {
    let account = b
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    b.post(app.url("/logout/session"))
        .form(&[("csrf_token", csrf_in(&account))])
        .send()
        .await
        .unwrap();
}

/// Familiar sign-ins from Berlin, an hour apart.
pub async fn baseline(app: &TestApp, b: &reqwest::Client, user: &str, n: usize) {
    for _ in 0..n {
        let r = login(app, b, user, None).await;
        assert_eq!(
            location(&r),
            "/account",
            "a familiar sign-in is frictionless"
        );
        sign_out(app, b).await;
        app.clock.advance_secs(3600);
    }
}

#[actix_web::test]
async fn familiar_is_frictionless_and_impossible_travel_steps_up() {
    let (app, _dir) = risky_app().await;
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let berlin = browser(&app, &jar, BERLIN);

    // Alice registers a passkey (her phishing-resistant factor) from home.
    assert_eq!(
        location(&login(&app, &berlin, "alice", None).await),
        "/account"
    );
    let csrf = csrf_in(
        &berlin
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let begun: Value = berlin
        .post(app.url("/account/passkeys/begin"))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut key = SoftPasskey::new(true);
    let ccr: CreationChallengeResponse = serde_json::from_value(begun["options"].clone()).unwrap();
    let cred = key
        .do_registration(Url::parse(&app.base).unwrap(), ccr)
        .unwrap();
    let r = berlin
        .post(app.url("/account/passkeys/finish"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "flow": begun["flow"], "name": "key", "credential": cred }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    sign_out(&app, &berlin).await;
    baseline(&app, &berlin, "alice", 6).await;

    // A familiar sign-in through an application: no second factor, level low, amr rba.
    let rp = rp(&app, "rp", false).await;
    let s = rp.start(&[], &[]);
    let login_url = location(&berlin.get(s.url.as_str()).send().await.unwrap());
    let tx = query(&format!("http://x{login_url}"))["tx"].clone();
    let back = location(&login(&app, &berlin, "alice", Some(&tx)).await);
    let t = rp.redeem(&back, s.verifier).await;
    let claims = payload(&t.id_token().unwrap().to_string());
    assert_eq!(claims["risk"]["level"], "low", "{claims}");
    assert_eq!(claims["risk"]["decision"], "allow");
    assert!(claims["risk"]["model"].as_str().unwrap().len() >= 8);
    assert_eq!(claims["amr"], json!(["pwd", "rba"]));
    assert_eq!(payload(t.access_token().secret())["risk"]["level"], "low");
    let account = berlin
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        account.contains("Berlin, DE"),
        "sessions and sign-ins show a coarse place"
    );
    sign_out(&app, &berlin).await;

    // Ten minutes later, the same password from Sydney: a step-up, and the token says why.
    app.clock.advance_secs(600);
    let sydney = browser(&app, &jar, SYDNEY);
    let s = rp.start(&[], &[]);
    let login_url = location(&sydney.get(s.url.as_str()).send().await.unwrap());
    let tx = query(&format!("http://x{login_url}"))["tx"].clone();
    assert_eq!(
        location(&login(&app, &sydney, "alice", Some(&tx)).await),
        "/login/mfa"
    );
    let page = sydney
        .get(app.url("/login/mfa"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-webauthn=\"authenticate\""));
    let csrf = scraper::Html::parse_document(&page)
        .select(&scraper::Selector::parse("button[data-webauthn]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("data-csrf")
        .unwrap()
        .to_owned();
    let begun: Value = sydney
        .post(app.url("/login/mfa/webauthn/begin"))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rcr: RequestChallengeResponse = serde_json::from_value(begun["options"].clone()).unwrap();
    let assertion = key
        .do_authentication(Url::parse(&app.base).unwrap(), rcr)
        .unwrap();
    let done: Value = sydney
        .post(app.url("/login/mfa/webauthn/finish"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "flow": begun["flow"], "credential": assertion }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let back = location(
        &sydney
            .get(app.url(done["redirect"].as_str().unwrap()))
            .send()
            .await
            .unwrap(),
    );
    let t = rp.redeem(&back, s.verifier).await;
    let claims = payload(&t.id_token().unwrap().to_string());
    assert_eq!(claims["risk"]["decision"], "step_up", "{claims}");
    assert!(
        claims["risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "impossible_travel"),
        "{claims}"
    );
    assert_ne!(claims["risk"]["level"], "low");
    assert_eq!(claims["acr"], "phr");
    assert!(!claims["amr"].as_array().unwrap().iter().any(|a| a == "rba"));
}

#[actix_web::test]
async fn deny_listed_networks_are_blocked() {
    let (app, _dir) = risky_app().await;
    app.add_user("carol", false).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let r = login(&app, &browser(&app, &jar, DENIED), "carol", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Sign-in refused") && body.contains("What you can do"),
        "{body}"
    );
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);
    // The refusal is in the sign-in log with its assessment, ready for review.
    let rows = app
        .svc
        .db
        .run(|c| vigil::store::audit::page(c, 0, 1000))
        .await
        .unwrap();
    assert!(rows.iter().any(|r| r.action == "login.blocked"));
}

#[actix_web::test]
async fn a_risky_sign_in_without_a_second_factor_is_blocked() {
    let (app, _dir) = risky_app().await;
    app.add_user("bob", false).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    baseline(&app, &browser(&app, &jar, BERLIN), "bob", 6).await;
    app.clock.advance_secs(600);
    // Another device (fresh cookie jar) on another continent minutes later.
    let other = Arc::new(reqwest::cookie::Jar::default());
    let r = login(&app, &browser(&app, &other, SYDNEY), "bob", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("second factor"));
    // Home still works: the attempt did not train Bob's profile.
    app.clock.advance_secs(3600);
    assert_eq!(
        location(&login(&app, &browser(&app, &jar, BERLIN), "bob", None).await),
        "/account"
    );
}

#[actix_web::test]
async fn verdicts_teach_the_model_and_candidates_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let _ = &dir;
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("VIGIL_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("VIGIL_GEOIP_CITY", "geoip/vigil-test-city.mmdb"),
            ("VIGIL_GEOIP_ASN", "geoip/vigil-test-asn.mmdb"),
            ("VIGIL_RISK_CANDIDATE_POLICY", "low=step_up"),
        ],
    )
    .await
    .unwrap();
    app.add_user("dora", false).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    baseline(&app, &browser(&app, &jar, BERLIN), "dora", 6).await;
    app.clock.advance_secs(600);
    let travel = Arc::new(reqwest::cookie::Jar::default());
    assert_eq!(
        login(&app, &browser(&app, &travel, SYDNEY), "dora", None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Report-only: every evaluated sign-in also records what the candidate would have done.
    let user = vigil::flow::accounts::find(&app.svc, "dora").await.unwrap();
    let uid = user.id.clone();
    let rows = app
        .svc
        .db
        .run(move |c| vigil::store::signins::recent_for_user(c, &uid, 50))
        .await
        .unwrap();
    assert!(rows
        .iter()
        .filter(|r| r.method == "password")
        .all(|r| r.candidate_decision.is_some() && r.model.is_some()));
    let blocked = rows
        .iter()
        .find(|r| r.outcome == "blocked")
        .expect("the blocked attempt is logged");
    assert!(blocked
        .assessment
        .as_deref()
        .unwrap()
        .contains("contributions"));
    assert!(blocked.geoip_build.is_some());

    // An admin says "legitimate": Dora's profile learns Sydney and that device, so the same
    // context is no longer blocked.
    let features: vigil::risk::SignInFeatures =
        serde_json::from_str(blocked.features.as_deref().unwrap()).unwrap();
    let (uid, f, now) = (user.id.clone(), features.clone(), app.svc.clock.now());
    for _ in 0..3 {
        let (uid, f) = (uid.clone(), f.clone());
        app.svc
            .db
            .run(move |c| vigil::flow::risk::apply_verdict(c, &uid, &f, true, now))
            .await
            .unwrap();
    }
    app.clock.advance_secs(24 * 3600);
    let r = login(&app, &browser(&app, &travel, SYDNEY), "dora", None).await;
    assert_eq!(
        location(&r),
        "/account",
        "after the verdict the sign-in is let through"
    );
}

/// The risk claims of a sign-in through an application from a new browser at `ip`.
async fn risk_of_new_browser_sign_in(app: &TestApp, rp: &crate::oidc::Rp, ip: &str) -> Value {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let b = browser(app, &jar, ip);
    let s = rp.start(&[], &[]);
    let login_url = location(&b.get(s.url.as_str()).send().await.unwrap());
    let tx = query(&format!("http://x{login_url}"))["tx"].clone();
    let back = location(&login(app, &b, "carol", Some(&tx)).await);
    let t = rp.redeem(&back, s.verifier).await;
    payload(&t.id_token().unwrap().to_string())["risk"].clone()
}

/// A password sign-in holds a throttle reservation while it is scored (so parallel guesses are
/// counted); that reservation is not a failed attempt. Before the fix every sign-in from a new
/// browser carried `failed_attempts` in its risk reasons, and under load the in-flight
/// reservations of other users behind one address added up to blocks (found by vigil-load).
#[actix_web::test]
async fn a_clean_sign_in_is_not_scored_as_following_a_failed_attempt() {
    let (app, _dir) = risky_app().await;
    app.add_user("carol", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;

    let risk = risk_of_new_browser_sign_in(&app, &rp, BERLIN).await;
    let reasons = risk["reasons"].as_array().unwrap();
    assert!(
        !reasons.iter().any(|r| r == "failed_attempts"),
        "no attempt failed: {risk}"
    );

    // One real wrong password is still a signal for the next sign-in.
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let stranger = browser(&app, &jar, BERLIN);
    let r = login_with_password(&app, &stranger, "carol", "not-her-password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let risk = risk_of_new_browser_sign_in(&app, &rp, BERLIN).await;
    let reasons = risk["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r == "failed_attempts"),
        "the wrong password counts: {risk}"
    );
}
