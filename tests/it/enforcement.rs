//! The enforcement issue's attacks, as an attacker would try them over HTTP: a stolen session
//! cookie replayed from another device and country, tokens that outlive a known compromise,
//! a phished TOTP code at a phishing-resistant step-up, factor changes from a weak or stale
//! session, and the protocol corners around them. Each test failed on the code before
//! `flow::enforce` existed.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;
use vigil::auth::totp;
use vigil::flow::accounts::Actor;
use webauthn_authenticator_rs::prelude::CreationChallengeResponse;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;

use crate::admin_signins::GEO;
use crate::helpers::{csrf_in, spawn_app_with, Backend, TestApp, PASSWORD};
use crate::oidc::{add_client, location, query, rp, tokens_for, ClientSpec, REDIRECT, SECRET};
use crate::on_both_backends;
use crate::risk::{baseline, browser, login, BERLIN, SYDNEY};

/// The cookies a browser holds for the app, by name.
fn cookie(app: &TestApp, jar: &reqwest::cookie::Jar, name: &str) -> Option<String> {
    use reqwest::cookie::CookieStore as _;
    let header = jar.cookies(&Url::parse(&app.base).unwrap())?;
    header
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

fn plant(app: &TestApp, jar: &reqwest::cookie::Jar, name: &str, value: &str) {
    jar.add_cookie_str(
        &format!("{name}={value}; Path=/"),
        &Url::parse(&app.base).unwrap(),
    );
}

async fn text(b: &reqwest::Client, app: &TestApp, path: &str) -> String {
    b.get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String)> {
    app.svc
        .db
        .run(|c| vigil::store::audit::page(c, 0, 100_000))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.details))
        .collect()
}

/// A victim signed in at home in Berlin; a thief in Sydney starts an authorization request
/// (getting a `tx`) and replays the stolen session cookie at the resume URL. Before: a code.
async fn stolen_session_cookie_gets_no_code(b: Backend) {
    let Some(app) = spawn_app_with(b, GEO).await else {
        return;
    };
    app.add_user("vic", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let home_jar = Arc::new(reqwest::cookie::Jar::default());
    let home = browser(&app, &home_jar, BERLIN);
    baseline(&app, &home, "vic", 3).await;
    assert_eq!(location(&login(&app, &home, "vic", None).await), "/account");
    let session = cookie(&app, &home_jar, "vigil_session").expect("signed in");
    let device = cookie(&app, &home_jar, "vigil_device").expect("device cookie");
    app.clock.advance_secs(300);

    // 1. Only the session cookie, from another browser: the tx is the thief's own.
    let thief_jar = Arc::new(reqwest::cookie::Jar::default());
    let thief = browser(&app, &thief_jar, SYDNEY);
    let s = rp.start(&["openid"], &[]);
    let to_login = location(&thief.get(s.url.as_str()).send().await.unwrap());
    assert!(to_login.starts_with("/login?tx="), "{to_login}");
    let tx = query(&format!("http://x{to_login}"))["tx"].clone();
    plant(&app, &thief_jar, "vigil_session", &session);
    let r = thief
        .get(app.url(&format!("/authorize/resume?tx={tx}")))
        .send()
        .await
        .unwrap();
    let to = location(&r);
    assert!(
        !to.starts_with(REDIRECT),
        "a code for a stolen cookie: {to}"
    );
    // The session cookie used from another device is ended: the victim signs in again.
    assert!(location(&home.get(app.url("/account")).send().await.unwrap()).starts_with("/login"));
    assert!(audit_actions(&app)
        .await
        .iter()
        .any(|(a, _)| a == "session.wrong_device"));

    // 2. Both cookies stolen (session and device): the resume re-scores the session from
    // Sydney minutes after Berlin, so no code either.
    assert_eq!(location(&login(&app, &home, "vic", None).await), "/account");
    let session = cookie(&app, &home_jar, "vigil_session").unwrap();
    app.clock.advance_secs(300);
    let thief_jar = Arc::new(reqwest::cookie::Jar::default());
    let thief = browser(&app, &thief_jar, SYDNEY);
    plant(&app, &thief_jar, "vigil_device", &device);
    let s = rp.start(&["openid"], &[]);
    let r = thief.get(s.url.as_str()).send().await.unwrap();
    let to_login = location(&r);
    assert!(
        to_login.starts_with("/login?tx="),
        "{to_login} {}",
        r.status()
    );
    let tx = query(&format!("http://x{to_login}"))["tx"].clone();
    plant(&app, &thief_jar, "vigil_session", &session);
    let r = thief
        .get(app.url(&format!("/authorize/resume?tx={tx}")))
        .send()
        .await
        .unwrap();
    let to = location(&r);
    assert!(
        !to.starts_with(REDIRECT),
        "resume must re-score a session not made for this request: {to}"
    );
    assert!(
        r.status() == StatusCode::FORBIDDEN || to.starts_with("/login"),
        "{} {to}",
        r.status()
    );

    // 3. A tx belongs to the browser that started it: no other browser can continue it.
    let thief = browser(&app, &Arc::new(reqwest::cookie::Jar::default()), SYDNEY);
    let s = rp.start(&["openid"], &[]);
    let to_login = location(&thief.get(s.url.as_str()).send().await.unwrap());
    let tx = query(&format!("http://x{to_login}"))["tx"].clone();
    let other = browser(&app, &Arc::new(reqwest::cookie::Jar::default()), BERLIN);
    let r = other
        .get(app.url(&format!("/authorize/resume?tx={tx}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
on_both_backends!(
    stolen_session_cookie_gets_no_code,
    super::stolen_session_cookie_gets_no_code
);

/// The secret inside an `otpauth://` URI (operator provisioning prints one).
fn provisioned_secret(uri: &str) -> Vec<u8> {
    let b32 = Url::parse(uri)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .unwrap()
        .1
        .into_owned();
    totp_rs::Secret::try_from_base32(&b32)
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// Sign out the app's browser if it is still signed in.
async fn sign_out_if_signed_in(app: &TestApp) {
    let r = app.get("/account").await;
    if r.status() == StatusCode::OK {
        let token = csrf_in(&r.text().await.unwrap());
        app.http
            .post(app.url("/logout/session"))
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
    }
}

/// Tokens an application holds (the attacker's, say): refresh, userinfo and introspection.
struct Held {
    access: String,
    refresh: String,
}

async fn hold(app: &TestApp) -> Held {
    let rp = rp(app, "rp", false).await;
    let (t, _) = tokens_for(app, &rp, &["openid", "offline_access"]).await;
    Held {
        access: t["access_token"].as_str().unwrap().to_owned(),
        refresh: t["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// (refresh status, userinfo status, introspection `active`)
async fn try_tokens(app: &TestApp, h: &Held) -> (StatusCode, StatusCode, bool) {
    let http = reqwest::Client::new();
    let refresh = http
        .post(app.url("/token"))
        .basic_auth("rp", Some(SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &h.refresh),
        ])
        .send()
        .await
        .unwrap()
        .status();
    let userinfo = http
        .get(app.url("/userinfo"))
        .bearer_auth(&h.access)
        .send()
        .await
        .unwrap()
        .status();
    let v: Value = http
        .post(app.url("/introspect"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("token", h.access.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (refresh, userinfo, v["active"] == json!(true))
}

pub async fn latest_signin(app: &TestApp, username: &str) -> String {
    let u = vigil::flow::accounts::find(&app.svc, username)
        .await
        .unwrap();
    app.svc
        .db
        .run(move |c| vigil::store::signins::recent_for_user(c, &u.id, 1))
        .await
        .unwrap()
        .remove(0)
        .id
}

/// After a report, an attack verdict, a disable and a password change, the tokens an
/// application already holds are dead everywhere. Before: they refreshed for 30 days.
async fn containment_ends_every_token(b: Backend) {
    let Some(app) = spawn_app_with(b, &[]).await else {
        return;
    };
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    for cause in ["report", "verdict", "disable", "password"] {
        app.clock.advance_secs(60);
        let held = hold(&app).await;
        let probe = Held {
            access: held.access.clone(),
            refresh: held.refresh.clone(),
        };
        assert_eq!(
            try_tokens(&app, &probe).await,
            (StatusCode::OK, StatusCode::OK, true),
            "{cause}: the tokens work before"
        );
        // The refresh above rotated it; the access token is still the held one.
        let held = hold(&app).await;
        let alice = vigil::flow::accounts::find(&app.svc, "alice")
            .await
            .unwrap();
        let now = app.svc.clock.now();
        match cause {
            "report" => {
                let id = latest_signin(&app, "alice").await;
                let token = csrf_in(&app.get("/account").await.text().await.unwrap());
                let r = app
                    .http
                    .post(app.url("/account/signins/report"))
                    .form(&[("csrf_token", token.as_str()), ("signin_id", id.as_str())])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
            }
            "verdict" => {
                let id = latest_signin(&app, "alice").await;
                let uid = alice.id.clone();
                app.svc
                    .db
                    .run(move |c| {
                        vigil::store::reviews::enqueue(
                            c,
                            &id,
                            Some(&uid),
                            vigil::store::reviews::KIND_HIGH_RISK,
                            vigil::store::reviews::ATTACK,
                            now.micros(),
                        )
                    })
                    .await
                    .unwrap();
                let queue = vigil::flow::review::queue(&app.svc, None).await.unwrap();
                let review = queue.open[0].id.clone();
                vigil::flow::review::decide(
                    &app.svc,
                    &Actor::new("admin"),
                    now,
                    &review,
                    vigil::flow::review::Verdict::Attack { lock: false },
                    None,
                )
                .await
                .unwrap();
            }
            "disable" => {
                vigil::flow::accounts::set_disabled(
                    &app.svc,
                    &Actor::new("cli"),
                    now,
                    "alice",
                    true,
                )
                .await
                .unwrap();
            }
            _ => {
                let page = app.get("/account/password").await.text().await.unwrap();
                let r = app
                    .http
                    .post(app.url("/account/password"))
                    .form(&[
                        ("csrf_token", csrf_in(&page).as_str()),
                        ("current_password", PASSWORD),
                        ("new_password", "a brand new passphrase 42"),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(location(&r), "/account?notice=password");
            }
        }
        assert_eq!(
            try_tokens(&app, &held).await,
            (StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED, false),
            "{cause}: refresh, userinfo and introspection after containment"
        );
        // Start the next round from a clean account.
        let alice = vigil::flow::accounts::find(&app.svc, "alice")
            .await
            .unwrap();
        if alice.disabled {
            vigil::flow::accounts::set_disabled(&app.svc, &Actor::new("cli"), now, "alice", false)
                .await
                .unwrap();
        }
        vigil::flow::accounts::set_password(
            &app.svc,
            &Actor::new("cli"),
            now,
            "alice",
            secrecy::SecretString::from(PASSWORD.to_owned()),
        )
        .await
        .unwrap();
        let alice = vigil::flow::accounts::find(&app.svc, "alice")
            .await
            .unwrap();
        assert_eq!(
            alice.risk_state, "none",
            "{cause}: an operator reset remediates"
        );
        sign_out_if_signed_in(&app).await;
    }
    let actions = audit_actions(&app).await;
    assert!(
        actions
            .iter()
            .filter(|(a, _)| a == "account.contained")
            .count()
            >= 4
    );
    assert!(actions
        .iter()
        .any(|(a, d)| a == "account.risk_changed" && d.contains("compromised")));
}
on_both_backends!(
    containment_ends_every_token,
    super::containment_ends_every_token
);

/// Register a passkey for the browser's signed-in user.
async fn register_passkey(app: &TestApp, b: &reqwest::Client) -> SoftPasskey {
    let csrf = csrf_in(&text(b, app, "/account").await);
    let begun: Value = b
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
    let ccr: CreationChallengeResponse =
        serde_json::from_value(begun["options"].clone()).expect("registration options");
    let cred = key
        .do_registration(Url::parse(&app.base).unwrap(), ccr)
        .unwrap();
    let r = b
        .post(app.url("/account/passkeys/finish"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "flow": begun["flow"], "name": "key", "credential": cred }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    key
}

async fn post_code(
    app: &TestApp,
    b: &reqwest::Client,
    path: &str,
    code: &str,
) -> reqwest::Response {
    let method = if path.ends_with("totp") {
        "totp"
    } else {
        "recovery"
    };
    let page = text(b, app, &format!("/login/mfa?method={method}")).await;
    // When the page does not offer a code form, an attacker still has the page's token (the
    // passkey button carries it).
    let token = scraper::Html::parse_document(&page)
        .select(&scraper::Selector::parse("input[name=csrf_token], [data-csrf]").unwrap())
        .next()
        .and_then(|e| e.value().attr("value").or(e.value().attr("data-csrf")))
        .unwrap()
        .to_owned();
    b.post(app.url(path))
        .form(&[("csrf_token", token.as_str()), ("code", code)])
        .send()
        .await
        .unwrap()
}

/// When the policy asks for a passkey (high risk by default): a phished TOTP code or a recovery code does
/// not complete the sign-in, and the page does not offer them. Before: both signed in.
async fn phishing_resistant_step_up_refuses_codes(b: Backend) {
    // Impossible travel is at least medium risk; this policy asks a passkey for it.
    let mut extra = GEO.to_vec();
    extra.push(("VIGIL_RISK_POLICY", "medium=step_up_phishing_resistant"));
    let Some(app) = spawn_app_with(b, &extra).await else {
        return;
    };
    app.add_user("alice", false).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let berlin = browser(&app, &jar, BERLIN);
    assert_eq!(
        location(&login(&app, &berlin, "alice", None).await),
        "/account"
    );
    let _key = register_passkey(&app, &berlin).await;
    let alice = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    let uri = vigil::flow::factors::totp_provision(&app.svc, app.svc.clock.now(), &alice)
        .await
        .unwrap();
    let secret = provisioned_secret(&uri);
    let codes = vigil::flow::factors::regenerate_recovery(
        &app.svc,
        app.svc.clock.now(),
        &alice,
        "127.0.0.1".parse().unwrap(),
    )
    .await
    .unwrap();
    crate::risk::sign_out(&app, &berlin).await;
    app.clock.advance_secs(600);

    // Ten minutes later, the password from Sydney (a real-time phishing proxy, say).
    let sydney_jar = Arc::new(reqwest::cookie::Jar::default());
    let sydney = browser(&app, &sydney_jar, SYDNEY);
    assert_eq!(
        location(&login(&app, &sydney, "alice", None).await),
        "/login/mfa"
    );
    let page = text(&sydney, &app, "/login/mfa").await;
    assert!(page.contains("data-webauthn=\"authenticate\""));
    assert!(
        !page.contains("action=\"/login/mfa/totp\"") && !page.contains("?method=totp"),
        "a code is not offered when only a passkey will do: {page}"
    );
    app.clock.advance_secs(30);
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let r = post_code(&app, &sydney, "/login/mfa/totp", &code).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(cookie(&app, &sydney_jar, "vigil_session").is_none());
    let r = post_code(&app, &sydney, "/login/mfa/recovery", &codes[0]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(cookie(&app, &sydney_jar, "vigil_session").is_none());
    assert!(
        location(&sydney.get(app.url("/account")).send().await.unwrap()).starts_with("/login"),
        "no session came of it"
    );
}
on_both_backends!(
    phishing_resistant_step_up_refuses_codes,
    super::phishing_resistant_step_up_refuses_codes
);

/// A password-only session (acr pwd) cannot replace the TOTP secret, add a passkey or
/// regenerate recovery codes; an mfa session older than five minutes cannot either.
async fn factor_changes_need_a_fresh_second_factor(b: Backend) {
    let Some(app) = spawn_app_with(b, &[]).await else {
        return;
    };
    app.add_user("alice", false).await;
    assert_eq!(location(&app.login("alice", PASSWORD).await), "/account");
    let (secret, _) = crate::mfa::enrol_totp(&app).await;
    crate::mfa::sign_out(&app).await;
    // A low-risk password sign-in: frictionless, acr pwd.
    app.clock.advance_secs(3600);
    assert_eq!(location(&app.login("alice", PASSWORD).await), "/account");
    let reauth = |to: &str| to.starts_with("/login?reauth=1") && to.contains("require=mfa");
    let r = app.get("/account/totp").await;
    assert!(reauth(&location(&r)), "{}", location(&r));
    let page = app.get("/account").await.text().await.unwrap();
    let token = csrf_in(&page);
    for action in ["/account/recovery/regenerate", "/account/totp/remove"] {
        let r = app
            .http
            .post(app.url(action))
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert!(reauth(&location(&r)), "{action}: {}", location(&r));
    }
    let r = app
        .http
        .post(app.url("/account/passkeys/begin"))
        .header("x-csrf-token", &token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert!(reauth(v["redirect"].as_str().unwrap()), "{v}");
    let alice = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    let uid = alice.id.clone();
    assert!(
        app.svc
            .db
            .run(move |c| vigil::store::factors::totp_for(c, &uid))
            .await
            .unwrap()
            .is_some(),
        "the TOTP factor is still there"
    );

    // The re-authentication the redirect asks for: password, then the second factor.
    let html = app
        .get("/login?reauth=1&next=/account&require=mfa")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"require\" value=\"mfa\""));
    let r = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("require", "mfa"),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/login/mfa");
    app.clock.advance_secs(30);
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let r = crate::mfa::submit_code(&app, "/login/mfa/totp", &code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get("/account/totp").await.status(), StatusCode::OK);
    // Six minutes later the same session is too old for a change.
    app.clock.advance_secs(360);
    assert!(reauth(&location(&app.get("/account/totp").await)));
}
on_both_backends!(
    factor_changes_need_a_fresh_second_factor,
    super::factor_changes_need_a_fresh_second_factor
);

/// A compromised account with a second factor: the password alone never signs in, the second
/// factor does and leads to a new password, and that remediates the account. A factor added
/// after the reported sign-in is suspended until its owner confirms it.
async fn compromise_then_remediation(b: Backend) {
    // Whatever the score of a new browser, the thief's password sign-in gets in.
    let Some(app) = spawn_app_with(b, &[("VIGIL_RISK_POLICY", "medium=allow")]).await else {
        return;
    };
    app.add_user("alice", false).await;
    assert_eq!(location(&app.login("alice", PASSWORD).await), "/account");
    let (secret, _) = crate::mfa::enrol_totp(&app).await;
    crate::mfa::sign_out(&app).await;
    app.clock.advance_secs(3600);
    // The thief signs in (low risk, password only) and gets a code for the application...
    let thief = crate::helpers::client(app.port);
    let r = crate::admin_users::login_with(&app, &thief, "alice", PASSWORD).await;
    assert_eq!(location(&r), "/account");
    let stolen = latest_signin(&app, "alice").await;
    // ...and an attacker's passkey would be added here: emulate one added after the sign-in.
    let alice = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    let (uid, now) = (alice.id.clone(), app.svc.clock.now().micros() + 1);
    app.svc
        .db
        .run(move |c| {
            vigil::store::factors::insert_passkey(
                c,
                &vigil::store::factors::WebauthnRow {
                    id: "attacker-key".into(),
                    user_id: uid,
                    cred_id: "attacker-cred".into(),
                    name: "attacker".into(),
                    passkey: "{}".into(),
                    created_at: now,
                    last_used_at: None,
                    suspended_at: None,
                },
            )
        })
        .await
        .unwrap();

    // Alice reports the sign-in from her own browser.
    app.clock.advance_secs(60);
    assert_eq!(
        mfa_login(&app, &app.http, "alice", &secret).await,
        "/account"
    );
    let token = csrf_in(&app.get("/account").await.text().await.unwrap());
    let r = app
        .http
        .post(app.url("/account/signins/report"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("signin_id", stolen.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        location(&thief.get(app.url("/account")).send().await.unwrap()),
        "/login?next=%2Faccount",
        "the thief's session ended"
    );
    let alice = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    assert_eq!(alice.risk_state, "compromised");
    let uid = alice.id.clone();
    let rows = app
        .svc
        .db
        .run(move |c| vigil::store::factors::passkeys_all_for(c, &uid))
        .await
        .unwrap();
    assert!(
        rows[0].suspended_at.is_some(),
        "the attacker's key is suspended"
    );

    // The old password alone no longer signs in, even at low risk: the second factor is asked.
    app.clock.advance_secs(60);
    let r = crate::admin_users::login_with(&app, &thief, "alice", PASSWORD).await;
    assert_eq!(location(&r), "/login/mfa");

    // Alice: password + TOTP, then she must choose a new password first.
    assert_eq!(location(&app.login("alice", PASSWORD).await), "/login/mfa");
    app.clock.advance_secs(30);
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let r = crate::mfa::submit_code(&app, "/login/mfa/totp", &code).await;
    assert_eq!(location(&r), "/account/password");
    assert_eq!(location(&app.get("/account").await), "/account/password");
    let page = app.get("/account/password").await.text().await.unwrap();
    let r = app
        .http
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", csrf_in(&page).as_str()),
            ("current_password", PASSWORD),
            ("new_password", "a brand new passphrase 42"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/account?notice=password");
    let alice = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    assert_eq!(
        alice.risk_state, "none",
        "remediated with the second factor"
    );
    assert!(!alice.must_change_password);
    let page = app.get("/account").await.text().await.unwrap();
    assert!(page.contains("id=\"suspended-factors\""), "{page}");
    assert!(page.contains("attacker"));
}
on_both_backends!(
    compromise_then_remediation,
    super::compromise_then_remediation
);

/// A user's own report moves only their account: the global reputation of the network is an
/// admin's verdict to change (anyone can file a report).
async fn a_report_does_not_move_global_reputation(b: Backend) {
    let Some(app) = spawn_app_with(b, GEO).await else {
        return;
    };
    app.add_user("fay", false).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let home = browser(&app, &jar, BERLIN);
    assert_eq!(location(&login(&app, &home, "fay", None).await), "/account");
    let id = latest_signin(&app, "fay").await;
    let global = || async {
        app.svc
            .db
            .run(|c| vigil::store::risk::state(c, "global"))
            .await
            .unwrap()
            .map(|j| serde_json::from_str::<Value>(&j).unwrap()["reputation"].clone())
    };
    let before = global().await;
    let token = csrf_in(&text(&home, &app, "/account").await);
    let r = home
        .post(app.url("/account/signins/report"))
        .form(&[("csrf_token", token.as_str()), ("signin_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(global().await, before);
}
on_both_backends!(
    a_report_does_not_move_global_reputation,
    super::a_report_does_not_move_global_reputation
);

/// Admin changes that were not guarded by a recent sign-in (promote, reset, remove factors,
/// edit a client, rotate a secret) now are: every console change is.
async fn every_admin_change_needs_a_recent_sign_in(b: Backend) {
    let Some((app, secret)) = crate::admin::admin_app(b).await else {
        return;
    };
    app.add_user("bob", false).await;
    add_client(&app, ClientSpec::default()).await;
    let bob = vigil::flow::accounts::find(&app.svc, "bob").await.unwrap();
    let page = format!("/admin/users/{}", bob.id);
    app.clock.advance_secs(600);
    for action in ["promote", "password", "factors", "unlock", "sessions"] {
        let r = crate::admin::submit(
            &app,
            &page,
            &format!("{page}/{action}"),
            &[("factor", "all")],
        )
        .await;
        assert!(
            location(&r).starts_with("/login?reauth=1&next="),
            "{action}: {}",
            location(&r)
        );
    }
    for action in ["/admin/clients/rp", "/admin/clients/rp/secret"] {
        let r = crate::admin::submit(&app, "/admin/clients/rp", action, &[]).await;
        assert!(
            location(&r).starts_with("/login?reauth=1&next="),
            "{action}: {}",
            location(&r)
        );
    }
    let bob = vigil::flow::accounts::find(&app.svc, "bob").await.unwrap();
    assert!(
        !vigil::flow::access::console(&app.svc, &bob.id)
            .await
            .unwrap()
            .admin
    );
    crate::admin::admin_sign_in(&app, &secret).await;
    let r = crate::admin::submit(&app, &page, &format!("{page}/promote"), &[]).await;
    assert_eq!(location(&r), format!("{page}?notice=promoted"));
}
on_both_backends!(
    every_admin_change_needs_a_recent_sign_in,
    super::every_admin_change_needs_a_recent_sign_in
);

/// `prompt=none` with a session that re-scoring would step up answers the OAuth error the spec
/// names, instead of a page; an SSO step-up returns to the application afterwards.
async fn sso_step_up_prompt_none_and_return(b: Backend) {
    let mut extra = GEO.to_vec();
    extra.push(("VIGIL_RISK_POLICY", "high=step_up"));
    let Some(app) = spawn_app_with(b, &extra).await else {
        return;
    };
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let alice = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    let uri = vigil::flow::factors::totp_provision(&app.svc, app.svc.clock.now(), &alice)
        .await
        .unwrap();
    let secret = provisioned_secret(&uri);
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let berlin = browser(&app, &jar, BERLIN);
    // Familiar, frictionless password sign-ins (acr pwd): the session carries no second factor.
    baseline(&app, &berlin, "alice", 3).await;
    assert_eq!(
        location(&login(&app, &berlin, "alice", None).await),
        "/account"
    );
    // Minutes later the same browser is in Sydney (a stolen laptop, a VPN): SSO re-scores.
    app.clock.advance_secs(300);
    let sydney = browser(&app, &jar, SYDNEY);
    let s = rp.start(&["openid"], &[("prompt", "none")]);
    let to = location(&sydney.get(s.url.as_str()).send().await.unwrap());
    assert!(to.starts_with(REDIRECT), "{to}");
    let q = query(&to);
    assert!(
        q["error"] == "interaction_required" || q["error"] == "login_required",
        "{to}"
    );
    // Without prompt=none: the step-up, then back into the application with a code.
    let s = rp.start(&["openid"], &[]);
    let to = location(&sydney.get(s.url.as_str()).send().await.unwrap());
    assert_eq!(to, "/login/mfa");
    app.clock.advance_secs(30);
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let r = post_code(&app, &sydney, "/login/mfa/totp", &code).await;
    let to = location(&r);
    assert!(
        to.starts_with(REDIRECT),
        "the step-up keeps the request: {to}"
    );
    assert!(query(&to).contains_key("code"));
}
on_both_backends!(
    sso_step_up_prompt_none_and_return,
    super::sso_step_up_prompt_none_and_return
);

/// A sign-in the policy lets through at high risk gets its code for the application it was
/// made for (the policy's choice, and the token says `high`), and marks the account `at_risk`
/// in its own transaction: from the next use of the session on, a second factor is needed.
/// The code is minted inside the sign-in's transaction; it must judge exactly as
/// `/authorize/resume` does, and the next request must not inherit the sign-in's allowance.
async fn high_risk_sign_in_let_through_steps_up_from_the_next_use(b: Backend) {
    let mut extra = GEO.to_vec();
    extra.push(("VIGIL_RISK_POLICY", "low=allow,medium=allow,high=allow"));
    // Any score at all is high: the sign-in below is high risk whatever the model's weights.
    extra.push(("VIGIL_RISK_THRESHOLD_MEDIUM", "1"));
    extra.push(("VIGIL_RISK_THRESHOLD_HIGH", "2"));
    let Some(app) = spawn_app_with(b, &extra).await else {
        return;
    };
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let alice = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    let uri = vigil::flow::factors::totp_provision(&app.svc, app.svc.clock.now(), &alice)
        .await
        .unwrap();
    let secret = provisioned_secret(&uri);
    // A first sign-in, from a new browser in Sydney, for an application: high risk, let
    // through by policy.
    let sydney = browser(&app, &Arc::new(reqwest::cookie::Jar::default()), SYDNEY);
    let s = rp.start(&["openid"], &[]);
    let to = location(&sydney.get(s.url.as_str()).send().await.unwrap());
    let tx = query(&format!("http://x{to}"))["tx"].clone();
    let to = location(&login(&app, &sydney, "alice", Some(&tx)).await);
    assert!(to.starts_with(REDIRECT), "{to}");
    let code = query(&to)["code"].clone();
    let tokens = crate::races::redeem(&app.http, &app, &code, s.verifier.secret())
        .await
        .1;
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = crate::oidc::payload(id_token);
    assert_eq!(claims["risk"]["level"], "high", "{claims}");
    let risk = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap()
        .risk_state;
    assert_eq!(risk, "at_risk");
    // The next request with that session: the second factor first, then the code.
    let s = rp.start(&["openid"], &[]);
    let to = location(&sydney.get(s.url.as_str()).send().await.unwrap());
    assert_eq!(to, "/login/mfa");
    app.clock.advance_secs(30);
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let to = location(&post_code(&app, &sydney, "/login/mfa/totp", &code).await);
    assert!(to.starts_with(REDIRECT), "{to}");
    assert!(query(&to).contains_key("code"));
}
on_both_backends!(
    high_risk_sign_in_let_through_steps_up_from_the_next_use,
    super::high_risk_sign_in_let_through_steps_up_from_the_next_use
);

/// Sign in with password and TOTP (asking for the second factor, as a re-authentication
/// does); returns where the browser lands.
async fn mfa_login(app: &TestApp, b: &reqwest::Client, user: &str, secret: &[u8]) -> String {
    let page = text(b, app, "/login?reauth=1&require=mfa").await;
    let r = b
        .post(app.url("/login"))
        .form(&[
            ("username", user),
            ("password", PASSWORD),
            ("require", "mfa"),
            ("csrf_token", &csrf_in(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/login/mfa");
    app.clock.advance_secs(30);
    let code = totp::code_at(secret, app.svc.clock.now()).unwrap();
    location(&post_code(app, b, "/login/mfa/totp", &code).await)
}

/// `acr_values=phr` for an account with TOTP only: refused with `access_denied`, not a loop of
/// TOTP step-ups that can never reach `phr`.
async fn phr_for_a_totp_only_account_is_refused(b: Backend) {
    let Some(app) = spawn_app_with(b, &[]).await else {
        return;
    };
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    assert_eq!(location(&app.login("alice", PASSWORD).await), "/account");
    crate::mfa::enrol_totp(&app).await;
    let s = rp.start(&["openid"], &[("acr_values", "phr")]);
    let to = location(&app.http.get(s.url.as_str()).send().await.unwrap());
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to)["error"], "access_denied");
}
on_both_backends!(
    phr_for_a_totp_only_account_is_refused,
    super::phr_for_a_totp_only_account_is_refused
);

/// `max_age` at the largest integer does not overflow into "too old": SSO still works.
async fn max_age_at_the_largest_integer(b: Backend) {
    let Some(app) = spawn_app_with(b, &[]).await else {
        return;
    };
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    assert_eq!(location(&app.login("alice", PASSWORD).await), "/account");
    app.clock.advance_secs(60);
    let s = rp.start(&["openid"], &[("max_age", &i64::MAX.to_string())]);
    let to = location(&app.http.get(s.url.as_str()).send().await.unwrap());
    assert!(
        to.starts_with(REDIRECT) && query(&to).contains_key("code"),
        "{to}"
    );
}
on_both_backends!(
    max_age_at_the_largest_integer,
    super::max_age_at_the_largest_integer
);

/// Two resumes of one request at once mint one code, not two.
async fn concurrent_resumes_mint_one_code(b: Backend) {
    let Some(app) = spawn_app_with(b, &[]).await else {
        return;
    };
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let s = rp.start(&["openid"], &[]);
    let to_login = location(&app.http.get(s.url.as_str()).send().await.unwrap());
    let tx = query(&format!("http://x{to_login}"))["tx"].clone();
    let page = app.get(&to_login).await.text().await.unwrap();
    let r = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_in(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/account");
    let url = app.url(&format!("/authorize/resume?tx={tx}"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url) = (app.http.clone(), url.clone());
            actix_web::rt::spawn(async move {
                let r = http.get(url).send().await.unwrap();
                (r.status(), location(&r))
            })
        })
        .collect();
    let mut codes = 0;
    for t in tasks {
        let (status, to) = t.await.unwrap();
        assert!(status.as_u16() < 500, "{status}");
        if to.starts_with(REDIRECT) && query(&to).contains_key("code") {
            codes += 1;
        }
    }
    assert_eq!(codes, 1);
}
on_both_backends!(
    concurrent_resumes_mint_one_code,
    super::concurrent_resumes_mint_one_code
);

/// The admin sees an account's risk state on its page and in the sign-in log filter, and can
/// dismiss it (audited).
async fn admin_sees_and_dismisses_account_risk(b: Backend) {
    let Some((app, _secret)) = crate::admin::admin_app(b).await else {
        return;
    };
    app.add_user("fay", false).await;
    let fay_browser = crate::helpers::client(app.port);
    crate::admin_users::login_with(&app, &fay_browser, "fay", PASSWORD).await;
    let id = latest_signin(&app, "fay").await;
    let token = csrf_in(&text(&fay_browser, &app, "/account").await);
    let r = fay_browser
        .post(app.url("/account/signins/report"))
        .form(&[("csrf_token", token.as_str()), ("signin_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let fay = vigil::flow::accounts::find(&app.svc, "fay").await.unwrap();
    let page = format!("/admin/users/{}", fay.id);
    let html = app.get(&page).await.text().await.unwrap();
    assert!(html.contains("id=\"account-risk\"") && html.contains("compromised"));
    let log = app
        .get("/admin/signins?account_risk=compromised")
        .await
        .text()
        .await
        .unwrap();
    assert!(log.contains("data-user=\"fay\""), "{log}");
    let log = app
        .get("/admin/signins?account_risk=none")
        .await
        .text()
        .await
        .unwrap();
    assert!(!log.contains("data-user=\"fay\""));
    let r = crate::admin::submit(&app, &page, &format!("{page}/risk/dismiss"), &[]).await;
    assert_eq!(location(&r), format!("{page}?notice=risk"));
    let fay = vigil::flow::accounts::find(&app.svc, "fay").await.unwrap();
    assert_eq!(fay.risk_state, "none");
    assert!(!fay.must_change_password);
    assert!(audit_actions(&app)
        .await
        .iter()
        .any(|(a, d)| a == "account.risk_changed" && d.contains("dismissed")));
}
on_both_backends!(
    admin_sees_and_dismisses_account_risk,
    super::admin_sees_and_dismisses_account_risk
);

/// After an admin's reset the user must choose a new password before any application gets a
/// code: a sign-in that carries an authorization request lands on the password page.
async fn a_forced_password_change_comes_before_any_code(b: Backend) {
    let Some(app) = spawn_app_with(b, &[]).await else {
        return;
    };
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let alice = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    use secrecy::ExposeSecret as _;
    let temp = vigil::flow::accounts::reset_password(
        &app.svc,
        &Actor::new("admin"),
        app.svc.clock.now(),
        &alice.id,
        None,
    )
    .await
    .unwrap()
    .unwrap();
    let s = rp.start(&["openid"], &[]);
    let to_login = location(&app.http.get(s.url.as_str()).send().await.unwrap());
    let tx = query(&format!("http://x{to_login}"))["tx"].clone();
    let page = app.get(&to_login).await.text().await.unwrap();
    let r = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", temp.expose_secret()),
            ("csrf_token", &csrf_in(&page)),
            ("tx", &tx),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&r),
        "/account/password",
        "no code before the change"
    );
    // The SSO session cannot be used for the application either.
    let s = rp.start(&["openid"], &[]);
    let to = location(&app.http.get(s.url.as_str()).send().await.unwrap());
    assert_eq!(to, "/account/password");
    let s = rp.start(&["openid"], &[("prompt", "none")]);
    let to = location(&app.http.get(s.url.as_str()).send().await.unwrap());
    assert_eq!(query(&to)["error"], "login_required", "{to}");
}
on_both_backends!(
    a_forced_password_change_comes_before_any_code,
    super::a_forced_password_change_comes_before_any_code
);

/// Both cookies stolen (session and device) and replayed from another continent at `/account`:
/// the session is re-scored there and the thief is asked to sign in again.
async fn account_pages_rescore_a_session_from_elsewhere(b: Backend) {
    let Some(app) = spawn_app_with(b, GEO).await else {
        return;
    };
    app.add_user("vic", false).await;
    let home_jar = Arc::new(reqwest::cookie::Jar::default());
    let home = browser(&app, &home_jar, BERLIN);
    baseline(&app, &home, "vic", 3).await;
    assert_eq!(location(&login(&app, &home, "vic", None).await), "/account");
    app.clock.advance_secs(300);
    let thief_jar = Arc::new(reqwest::cookie::Jar::default());
    for name in ["vigil_session", "vigil_device"] {
        let v = cookie(&app, &home_jar, name).unwrap();
        plant(&app, &thief_jar, name, &v);
    }
    let thief = browser(&app, &thief_jar, SYDNEY);
    let r = thief.get(app.url("/account")).send().await.unwrap();
    let to = location(&r);
    assert!(
        r.status() == StatusCode::FORBIDDEN || to.starts_with("/login?reauth=1"),
        "{} {to}",
        r.status()
    );
    assert!(audit_actions(&app)
        .await
        .iter()
        .any(|(a, _)| a == "session.reassessed"));
    // At home the session still works.
    assert_eq!(
        home.get(app.url("/account")).send().await.unwrap().status(),
        StatusCode::OK
    );
}
on_both_backends!(
    account_pages_rescore_a_session_from_elsewhere,
    super::account_pages_rescore_a_session_from_elsewhere
);

/// A refresh token follows its session: a second sign-in (or a step-up) in the same browser
/// keeps the application's refresh token alive; signing out ends it.
async fn refresh_tokens_follow_their_session(b: Backend) {
    let Some(app) = spawn_app_with(b, &[]).await else {
        return;
    };
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let held = hold(&app).await;
    let refresh = |token: String| {
        let url = app.url("/token");
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .basic_auth("rp", Some(SECRET))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
                .send()
                .await
                .unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            (
                status,
                v["refresh_token"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    // Signing in again in the same browser replaces the session, not the application's grant.
    app.clock.advance_secs(60);
    let token = csrf_in(&app.get("/login?reauth=1").await.text().await.unwrap());
    let r = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/account");
    let (status, next) = refresh(held.refresh.clone()).await;
    assert_eq!(status, StatusCode::OK, "the grant survives a new sign-in");
    // Signing out ends the session, and the refresh token with it.
    sign_out_if_signed_in(&app).await;
    let (status, _) = refresh(next).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a signed-out session refreshes nothing"
    );
}
on_both_backends!(
    refresh_tokens_follow_their_session,
    super::refresh_tokens_follow_their_session
);
