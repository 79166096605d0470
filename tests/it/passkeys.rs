//! Passkeys end to end over HTTP with webauthn-authenticator-rs's software authenticators:
//! registration from /account, WebAuthn as the second factor, passwordless sign-in through an
//! OIDC client, and a cloned authenticator (counter going backwards) being refused.

use openidconnect::{AuthorizationCode, TokenResponse};
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator as _};

use crate::helpers::{csrf_in, spawn_app_with, Backend, TestApp, ALWAYS_STEP_UP, PASSWORD};
use crate::oidc::{add_client, location, query, rp, ClientSpec};

pub async fn post_json(app: &TestApp, path: &str, csrf: &str, body: Value) -> (StatusCode, Value) {
    let r = app
        .http
        .post(app.url(path))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Register a passkey for the signed-in browser; returns the credential id (base64url).
pub async fn register(
    app: &TestApp,
    authr: &mut impl AuthenticatorBackend,
    name: &str,
) -> (StatusCode, Value) {
    let csrf = csrf_in(&app.get("/account").await.text().await.unwrap());
    let (status, begun) = post_json(app, "/account/passkeys/begin", &csrf, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let ccr: CreationChallengeResponse = serde_json::from_value(begun["options"].clone()).unwrap();
    let cred = authr
        .do_registration(Url::parse(&app.base).unwrap(), ccr)
        .unwrap();
    post_json(
        app,
        "/account/passkeys/finish",
        &csrf,
        json!({ "flow": begun["flow"], "name": name, "credential": cred }),
    )
    .await
}

pub fn assertion(
    app: &TestApp,
    authr: &mut impl AuthenticatorBackend,
    options: Value,
) -> PublicKeyCredential {
    let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    authr
        .do_authentication(Url::parse(&app.base).unwrap(), rcr)
        .unwrap()
}

async fn sign_out(app: &TestApp) {
    let account = app.get("/account").await.text().await.unwrap();
    app.http
        .post(app.url("/logout/session"))
        .form(&[("csrf_token", csrf_in(&account))])
        .send()
        .await
        .unwrap();
}

/// Password, then WebAuthn on the step-up page. Returns the finish answer.
async fn step_up_with(
    app: &TestApp,
    authr: &mut impl AuthenticatorBackend,
    username: &str,
) -> (StatusCode, Value) {
    assert_eq!(location(&app.login(username, PASSWORD).await), "/login/mfa");
    let page = app.get("/login/mfa").await.text().await.unwrap();
    assert!(
        page.contains("data-webauthn=\"authenticate\""),
        "WebAuthn is offered first"
    );
    let csrf = scraper::Html::parse_document(&page)
        .select(&scraper::Selector::parse("button[data-webauthn]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("data-csrf")
        .unwrap()
        .to_owned();
    let (status, begun) = post_json(app, "/login/mfa/webauthn/begin", &csrf, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let cred = assertion(app, authr, begun["options"].clone());
    post_json(
        app,
        "/login/mfa/webauthn/finish",
        &csrf,
        json!({ "flow": begun["flow"], "credential": cred }),
    )
    .await
}

#[actix_web::test]
async fn register_and_step_up_with_a_passkey() {
    let app = spawn_app_with(Backend::Sqlite, ALWAYS_STEP_UP)
        .await
        .unwrap();
    app.add_user("alice", false).await;
    app.login("alice", PASSWORD).await;
    let mut key = SoftPasskey::new(true);
    let (status, done) = register(&app, &mut key, "Test key").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let to = done["redirect"].as_str().unwrap();
    assert!(
        to.starts_with("/account/recovery?flow="),
        "first factor: recovery codes shown once"
    );
    let codes = app.get(to).await.text().await.unwrap();
    assert_eq!(
        scraper::Html::parse_document(&codes)
            .select(&scraper::Selector::parse("#recovery-codes code").unwrap())
            .count(),
        10
    );
    assert_eq!(
        app.get(to).await.status(),
        StatusCode::SEE_OTHER,
        "shown once"
    );
    assert!(app
        .get("/account")
        .await
        .text()
        .await
        .unwrap()
        .contains("Test key"));
    sign_out(&app).await;

    let (status, done) = step_up_with(&app, &mut key, "alice").await;
    assert_eq!(
        (status, done["redirect"].as_str()),
        (StatusCode::OK, Some("/account")),
        "{done}"
    );
    let account = app.get("/account").await.text().await.unwrap();
    assert!(
        account.contains("<td>passkey</td>") && account.contains("<td>second factor passed</td>"),
        "recent sign-ins list the step-up in words"
    );
}

#[actix_web::test]
async fn a_cloned_authenticator_is_refused_and_recorded() {
    let app = spawn_app_with(Backend::Sqlite, ALWAYS_STEP_UP)
        .await
        .unwrap();
    app.add_user("bob", false).await;
    app.login("bob", PASSWORD).await;
    let (mut original, _) = SoftToken::new(true).unwrap();
    assert_eq!(
        register(&app, &mut original, "Token").await.0,
        StatusCode::OK
    );
    sign_out(&app).await;
    assert_eq!(
        step_up_with(&app, &mut original, "bob").await.0,
        StatusCode::OK
    );
    sign_out(&app).await;
    // Copy the authenticator (keys and counter), then let the original move ahead.
    let mut clone = SoftToken::from_cbor(&original.to_cbor().unwrap()).unwrap();
    assert_eq!(
        step_up_with(&app, &mut original, "bob").await.0,
        StatusCode::OK
    );
    sign_out(&app).await;
    let (status, answer) = step_up_with(&app, &mut clone, "bob").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        answer["error"].as_str().unwrap().contains("copied"),
        "{answer}"
    );
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::SEE_OTHER,
        "no session"
    );
    // The event is in the audit log for the admin.
    let rows = app
        .svc
        .db
        .run(|c| vigil::store::audit::page(c, 0, 1000))
        .await
        .unwrap();
    assert!(rows.iter().any(|r| r.action == "factor.clone_detected"));
}

#[actix_web::test]
async fn passwordless_sign_in_through_an_oidc_client() {
    let app = spawn_app_with(Backend::Sqlite, ALWAYS_STEP_UP)
        .await
        .unwrap();
    app.add_user("carol", false).await;
    app.login("carol", PASSWORD).await;
    let mut key = SoftPasskey::new(true);
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
    sign_out(&app).await;

    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let s = rp.start(&[], &[]);
    let login = location(&app.http.get(s.url.as_str()).send().await.unwrap());
    let page = app.get(&login).await.text().await.unwrap();
    let button = scraper::Html::parse_document(&page);
    let button = button
        .select(&scraper::Selector::parse("button[data-webauthn=authenticate]").unwrap())
        .next()
        .expect("Sign in with a passkey");
    let (csrf, finish) = (
        button.value().attr("data-csrf").unwrap().to_owned(),
        button.value().attr("data-finish").unwrap().to_owned(),
    );
    assert!(finish.contains("tx="));
    let (status, begun) = post_json(&app, "/login/passkey/begin", &csrf, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    // The software authenticator cannot hold discoverable credentials, so the test plays the
    // authenticator's lookup: it names the credential and returns the user handle. Both are
    // outside the signature; the challenge, origin and signature are real.
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
    let resume = done["redirect"].as_str().unwrap();
    assert!(resume.starts_with("/authorize/resume?tx="));
    let back = location(&app.get(resume).await);
    let code = query(&back)["code"].clone();
    let t = rp
        .client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(s.verifier)
        .request_async(&rp.http)
        .await
        .unwrap();
    let claims = t
        .id_token()
        .unwrap()
        .claims(&rp.client.id_token_verifier(), &s.nonce)
        .unwrap();
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), "phr");
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    assert!(
        amr.contains(&"user".to_owned())
            && (amr.contains(&"swk".to_owned()) || amr.contains(&"hwk".to_owned())),
        "{amr:?}"
    );
    assert!(!amr.contains(&"pwd".to_owned()), "no password was used");
}
