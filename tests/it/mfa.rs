//! Second factors through the real pages: TOTP enrolment and step-up, replay and throttling,
//! recovery codes, and an ID token whose acr/amr say what happened.

use openidconnect::{AuthorizationCode, OAuth2TokenResponse, TokenResponse};
use reqwest::StatusCode;
use vigil::auth::totp;
use vigil::clock::Timestamp;

use crate::helpers::{csrf_in, spawn_app_with, Backend, TestApp, ALWAYS_STEP_UP, PASSWORD};
use crate::oidc::{add_client, location, password_at_login, payload, query, rp, ClientSpec};
use crate::on_both_backends;

pub fn select(html: &str, css: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(css).unwrap();
    doc.select(&sel).next().map(|e| {
        e.value()
            .attr("value")
            .map(str::to_owned)
            .unwrap_or_else(|| e.text().collect())
    })
}

/// Enrol TOTP from /account for a signed-in browser; returns the secret and the recovery codes.
pub async fn enrol_totp(app: &TestApp) -> (Vec<u8>, Vec<String>) {
    let page = app.get("/account/totp").await.text().await.unwrap();
    let b32 = select(&page, "#totp-secret").expect("secret shown in #totp-secret");
    assert!(page.contains("<svg"), "QR code drawn server-side");
    let secret = totp_rs::Secret::try_from_base32(b32.trim())
        .unwrap()
        .as_bytes()
        .to_vec();
    let flow = select(&page, "input[name=flow]").unwrap();
    // A wrong code does not activate anything.
    let r = app
        .http
        .post(app.url("/account/totp"))
        .form(&[
            ("csrf_token", csrf_in(&page)),
            ("flow", flow.clone()),
            ("code", "000000".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let r = app
        .http
        .post(app.url("/account/totp"))
        .form(&[
            ("csrf_token", csrf_in(&page)),
            ("flow", flow),
            ("code", code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let codes: Vec<String> = doc
        .select(&scraper::Selector::parse("#recovery-codes code").unwrap())
        .map(|e| e.text().collect())
        .collect();
    assert_eq!(codes.len(), 10, "ten recovery codes at the first enrolment");
    (secret, codes)
}

pub async fn sign_out(app: &TestApp) {
    let account = app.get("/account").await.text().await.unwrap();
    app.http
        .post(app.url("/logout/session"))
        .form(&[("csrf_token", csrf_in(&account))])
        .send()
        .await
        .unwrap();
}

pub async fn submit_code(app: &TestApp, path: &str, code: &str) -> reqwest::Response {
    let page = app.get("/login/mfa").await.text().await.unwrap();
    app.http
        .post(app.url(path))
        .form(&[("csrf_token", csrf_in(&page).as_str()), ("code", code)])
        .send()
        .await
        .unwrap()
}

async fn totp_enrolment_step_up_and_replay(b: Backend) {
    let app = spawn_app_with(b, ALWAYS_STEP_UP).await.unwrap();
    app.add_user("alice", false).await;
    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (secret, _) = enrol_totp(&app).await;
    sign_out(&app).await;

    // Password alone no longer signs in: the step-up page asks for the code.
    app.clock.advance_secs(30);
    let r = app.login("alice", PASSWORD).await;
    assert_eq!(location(&r), "/login/mfa");
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::SEE_OTHER,
        "no session yet"
    );
    let page = app.get("/login/mfa").await.text().await.unwrap();
    assert!(
        select(&page, "input[name=code]").is_some(),
        "the TOTP form has the input `code`"
    );
    assert_eq!(
        submit_code(&app, "/login/mfa/totp", "123456")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let r = submit_code(&app, "/login/mfa/totp", &code).await;
    assert_eq!(location(&r), "/account");
    let account = app.get("/account").await.text().await.unwrap();
    assert!(
        account.contains("<td>authenticator app</td>")
            && account.contains("<td>second factor passed</td>"),
        "recent sign-ins list the step-up"
    );
    sign_out(&app).await;

    // The same code (same time step) is refused on the next sign-in: single use.
    app.login("alice", PASSWORD).await;
    let r = submit_code(&app, "/login/mfa/totp", &code).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("already used"));
    // The next step's code works (±1 step of skew).
    let next = totp::code_at(&secret, app.svc.clock.now().plus_secs(30)).unwrap();
    assert_eq!(
        location(&submit_code(&app, "/login/mfa/totp", &next).await),
        "/account"
    );
}
on_both_backends!(
    totp_enrolment_step_up_and_replay,
    super::totp_enrolment_step_up_and_replay
);

#[actix_web::test]
async fn wrong_codes_are_throttled_like_passwords() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("VIGIL_THROTTLE_ACCOUNT_FAILURES", "3"),
            ("VIGIL_RISK_POLICY", "low=step_up"),
        ],
    )
    .await
    .unwrap();
    app.add_user("bob", false).await;
    app.login("bob", PASSWORD).await;
    let (secret, _) = enrol_totp(&app).await;
    sign_out(&app).await;
    app.login("bob", PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(
            submit_code(&app, "/login/mfa/totp", "000000")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let right = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    assert_eq!(
        submit_code(&app, "/login/mfa/totp", &right).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn recovery_codes_are_single_use_and_hashed() {
    let app = spawn_app_with(Backend::Sqlite, ALWAYS_STEP_UP)
        .await
        .unwrap();
    app.add_user("carol", false).await;
    app.login("carol", PASSWORD).await;
    let (_, codes) = enrol_totp(&app).await;
    sign_out(&app).await;

    app.login("carol", PASSWORD).await;
    let page = app
        .get("/login/mfa?method=recovery")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Recovery code"));
    let r = submit_code(&app, "/login/mfa/recovery", &codes[0].to_uppercase()).await;
    assert_eq!(location(&r), "/account?notice=recovery");
    assert!(app
        .get("/account?notice=recovery")
        .await
        .text()
        .await
        .unwrap()
        .contains("Enrol a new second factor"));
    sign_out(&app).await;

    app.login("carol", PASSWORD).await;
    assert_eq!(
        submit_code(&app, "/login/mfa/recovery", &codes[0])
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "single use"
    );
    assert_eq!(
        location(&submit_code(&app, "/login/mfa/recovery", &codes[1]).await),
        "/account?notice=recovery"
    );

    // At rest only digests exist.
    let user = vigil::flow::accounts::find(&app.svc, "carol")
        .await
        .unwrap();
    let left = app
        .svc
        .db
        .run(move |c| vigil::store::factors::recovery_codes_left(c, &user.id))
        .await
        .unwrap();
    assert_eq!(left, 8);
    let raw = std::fs::read(match &app._db.url {
        vigil::config::DatabaseUrl::Sqlite(p) => p.clone(),
        _ => unreachable!(),
    })
    .unwrap();
    let needle = codes[2].as_bytes();
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle),
        "plain recovery codes never reach the database"
    );
}

#[actix_web::test]
async fn password_plus_totp_gives_an_mfa_id_token() {
    let app = spawn_app_with(Backend::Sqlite, ALWAYS_STEP_UP)
        .await
        .unwrap();
    app.add_user("alice", false).await;
    app.login("alice", PASSWORD).await;
    let (secret, _) = enrol_totp(&app).await;
    sign_out(&app).await;
    app.clock.advance_secs(30);

    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let s = rp.start(&[], &[]);
    let r = password_at_login(&app, &s.url, "alice").await;
    assert_eq!(location(&r), "/login/mfa");
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let back = location(&submit_code(&app, "/login/mfa/totp", &code).await);
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
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        "urn:vigil:acr:mfa"
    );
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    assert_eq!(amr, vec!["pwd", "otp", "mfa"]);
    assert_eq!(
        payload(t.access_token().secret())["acr"],
        "urn:vigil:acr:mfa"
    );

    // A client asking for mfa from a password-only session gets a step-up, not a downgrade.
    sign_out(&app).await;
    let dave_totp = {
        app.add_user("dave", false).await;
        app.login("dave", PASSWORD).await;
        let (s, _) = enrol_totp(&app).await;
        sign_out(&app).await;
        s
    };
    let _ = dave_totp;
    let s = rp.start(&[], &[("acr_values", "urn:vigil:acr:mfa")]);
    let r = app.http.get(s.url.as_str()).send().await.unwrap();
    assert!(location(&r).starts_with("/login?tx="));
}

#[actix_web::test]
async fn a_client_minimum_acr_wins_over_a_low_score() {
    // Default policy: a familiar, low-risk sign-in would be frictionless…
    let app = spawn_app_with(Backend::Sqlite, &[]).await.unwrap();
    app.add_user("fay", false).await;
    app.login("fay", PASSWORD).await;
    let (secret, _) = enrol_totp(&app).await;
    sign_out(&app).await;
    app.clock.advance_secs(30);
    vigil::flow::clients::register(
        &app.svc,
        &vigil::flow::accounts::Actor::new("t"),
        app.svc.clock.now(),
        vigil::flow::clients::NewClient {
            id: "bank".into(),
            name: None,
            redirect_uris: vec![crate::oidc::REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            public: false,
            first_party: true,
            grants: vec![],
            secret: Some(crate::oidc::SECRET.to_owned().into()),
            backchannel_logout_uri: None,
            id_token_alg: None,
            access_token_alg: None,
            pkce_optional: false,
            min_acr: Some("urn:vigil:acr:mfa".into()),
            require_role: false,
            privileged_max_age_secs: None,
            provisioning: false,
        },
    )
    .await
    .unwrap();
    let rp = rp(&app, "bank", false).await;
    let s = rp.start(&[], &[]);
    let r = password_at_login(&app, &s.url, "fay").await;
    // …but this client demands two factors, so the password alone is not enough.
    assert_eq!(location(&r), "/login/mfa");
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let back = location(&submit_code(&app, "/login/mfa/totp", &code).await);
    assert!(query(&back).contains_key("code"), "{back}");
}

#[actix_web::test]
async fn operator_provisioned_totp_works() {
    let app = spawn_app_with(Backend::Sqlite, ALWAYS_STEP_UP)
        .await
        .unwrap();
    app.add_user("erin", false).await;
    let user = vigil::flow::accounts::find(&app.svc, "erin").await.unwrap();
    let uri = vigil::flow::factors::totp_provision(&app.svc, app.svc.clock.now(), &user)
        .await
        .unwrap();
    assert!(uri.starts_with("otpauth://totp/"));
    let secret_b32 = url::Url::parse(&uri)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .unwrap()
        .1
        .into_owned();
    let secret = totp_rs::Secret::try_from_base32(&secret_b32)
        .unwrap()
        .as_bytes()
        .to_vec();
    assert_eq!(location(&app.login("erin", PASSWORD).await), "/login/mfa");
    let code = totp::code_at(&secret, Timestamp(app.svc.clock.now().micros())).unwrap();
    assert_eq!(
        location(&submit_code(&app, "/login/mfa/totp", &code).await),
        "/account"
    );
}
