//! The pages' language (issue 17): `ui_locales` on /authorize, then `Accept-Language`, then
//! English; German carried through login, step-up and consent; discovery's
//! `ui_locales_supported`. The form fields, CSRF and the answers to wrong and unknown users do
//! not depend on the language.

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT_LANGUAGE};
use reqwest::StatusCode;
use vigil::auth::totp;

use crate::helpers::{
    csrf_in, spawn_app, spawn_app_with, Backend, TestApp, ALWAYS_STEP_UP, PASSWORD,
};
use crate::mfa::{enrol_totp, select, sign_out, submit_code};
use crate::oidc::{add_client, location, password_at_login, query, rp, ClientSpec};
use crate::on_both_backends;

const GERMAN: &str = "de-DE,de;q=0.9,en;q=0.5";

/// A browser like helpers::client whose every request says `Accept-Language: accept`.
fn browser(port: u16, accept: &str) -> reqwest::Client {
    let mut h = HeaderMap::new();
    h.insert(ACCEPT_LANGUAGE, HeaderValue::from_str(accept).unwrap());
    crate::helpers::client_with(port, h)
}

fn speaks(app: &mut TestApp, accept: &str) {
    app.http = browser(app.port, accept);
}

fn html_lang(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("html").unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("lang"))
        .unwrap_or_default()
        .to_owned()
}

async fn login_page_follows_accept_language(b: Backend) {
    let mut app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;

    // No preference: English, as always.
    let r = app.get("/login").await;
    assert_eq!(r.headers()["content-language"], "en");
    let en = r.text().await.unwrap();
    assert_eq!(html_lang(&en), "en");
    assert!(en.contains("<h1 id=\"login-heading\">Sign in</h1>"), "{en}");

    speaks(&mut app, GERMAN);
    let r = app.get("/login").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-language"], "de");
    let de = r.text().await.unwrap();
    assert_eq!(html_lang(&de), "de");
    assert!(
        de.contains("<h1 id=\"login-heading\">Anmelden</h1>"),
        "{de}"
    );
    assert!(de.contains(">Benutzername</label>") && de.contains(">Passwort</label>"));
    assert!(de.contains("Zum Inhalt springen"), "base.html too");
    assert!(!de.contains("Sign in") && !de.contains("Username"), "{de}");
    // The same form: field names, hidden inputs, CSRF.
    for f in ["username", "password", "csrf_token", "device_hints"] {
        assert!(
            select(&de, &format!("input[name={f}]")).is_some()
                || de.contains(&format!("name=\"{f}\"")),
            "{f}"
        );
    }

    // Wrong password and unknown user: one German answer, the same page.
    let wrong = app.login("alice", "not the password").await;
    let unknown = app.login("nobody", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let (w, u) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert!(w.contains("Benutzername oder Passwort ist falsch."), "{w}");
    let scrub = |s: &str, name: &str| s.replace(&csrf_in(s), "TOKEN").replace(name, "NAME");
    assert_eq!(scrub(&w, "alice"), scrub(&u, "nobody"));

    // A German browser signs in as anyone else does, and its account page is German.
    let r = app.login("alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account");
    let account = app.get("/account").await.text().await.unwrap();
    assert!(account.contains("<h1>Ihr Konto</h1>"), "{account}");
    assert!(
        account.contains("Angemeldet als <strong>alice</strong>"),
        "{account}"
    );
    assert!(account.contains("alice@example.com"));
}
on_both_backends!(
    login_page_follows_accept_language,
    super::login_page_follows_accept_language
);

async fn unknown_languages_fall_back_to_english(b: Backend) {
    let mut app = spawn_app(b).await.unwrap();
    speaks(&mut app, "fr-CA, fr;q=0.9, *;q=0.5");
    let r = app.get("/login").await;
    assert_eq!(r.headers()["content-language"], "en");
    let html = r.text().await.unwrap();
    assert_eq!(html_lang(&html), "en");
    assert!(html.contains(">Sign in</h1>"), "{html}");
    // German refused with q=0 is not chosen.
    speaks(&mut app, "de;q=0, en;q=0.1");
    let html = app.get("/login").await.text().await.unwrap();
    assert_eq!(html_lang(&html), "en");
    // English listed after German but with a higher weight wins.
    speaks(&mut app, "de;q=0.4, en;q=0.8");
    assert_eq!(
        html_lang(&app.get("/login").await.text().await.unwrap()),
        "en"
    );
}
on_both_backends!(
    unknown_languages_fall_back_to_english,
    super::unknown_languages_fall_back_to_english
);

async fn error_pages_are_translated(b: Backend) {
    let mut app = spawn_app(b).await.unwrap();
    speaks(&mut app, GERMAN);
    // A request for an unknown application: a page, never a redirect.
    let r = app
        .get("/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code&scope=openid")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert_eq!(html_lang(&html), "de");
    assert!(html.contains("Fehler 400"), "{html}");
    assert!(
        html.contains("Diese Anmeldeanfrage kann nicht verwendet werden"),
        "{html}"
    );
    assert!(
        html.contains("nicht registriert"),
        "the flow's sentence too: {html}"
    );
    // A form without its CSRF token.
    let r = app
        .http
        .post(app.url("/login"))
        .form(&[("username", "x"), ("password", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = r.text().await.unwrap();
    assert!(html.contains("Bitte versuchen Sie es erneut"), "{html}");
    assert!(html.contains("Zurück zur Anmeldung"), "{html}");
    // The same in English for an English browser.
    speaks(&mut app, "en");
    let html = app
        .get("/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code&scope=openid")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("This sign-in request cannot be used"),
        "{html}"
    );
}
on_both_backends!(
    error_pages_are_translated,
    super::error_pages_are_translated
);

/// `ui_locales=de` beats an English browser on every page of the sign-in: login, step-up,
/// consent; the code then reaches the client as usual.
async fn ui_locales_carries_through_step_up_and_consent(b: Backend) {
    let mut app = spawn_app_with(b, ALWAYS_STEP_UP).await.unwrap();
    app.add_user("alice", false).await;
    add_client(
        &app,
        ClientSpec {
            first_party: false,
            ..Default::default()
        },
    )
    .await;
    speaks(&mut app, "en-GB,en;q=0.9");
    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (secret, _) = enrol_totp(&app).await;
    sign_out(&app).await;
    app.clock.advance_secs(30);

    let rp = rp(&app, "rp", false).await;
    let s = rp.start(&["email"], &[("ui_locales", "de")]);
    // The login page of this request is German.
    let r = app.http.get(s.url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("vigil_lang="))
        .expect("the choice is remembered")
        .to_owned();
    assert!(
        cookie.starts_with("vigil_lang=de;") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let login = app.get(&location(&r)).await.text().await.unwrap();
    assert_eq!(html_lang(&login), "de");
    assert!(login.contains(">Anmelden</h1>"), "{login}");

    let r = password_at_login(&app, &s.url, "alice").await;
    assert_eq!(location(&r), "/login/mfa");
    let mfa = app.get("/login/mfa").await.text().await.unwrap();
    assert_eq!(html_lang(&mfa), "de");
    assert!(mfa.contains("Bestätigen Sie, dass Sie es sind"), "{mfa}");
    assert!(mfa.contains("Code aus Ihrer Authenticator-App"), "{mfa}");
    assert!(select(&mfa, "input[name=code]").is_some());
    // A wrong code: the German error.
    let r = submit_code(&app, "/login/mfa/totp", "000000").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Dieser Code stimmt nicht."));

    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let r = submit_code(&app, "/login/mfa/totp", &code).await;
    assert_eq!(r.status(), StatusCode::OK, "the consent page");
    let consent = r.text().await.unwrap();
    assert_eq!(html_lang(&consent), "de");
    assert!(consent.contains("App rp erlauben?"), "{consent}");
    assert!(consent.contains("Ihre E-Mail-Adresse sehen"), "{consent}");
    let tx = select(&consent, "input[name=tx]").unwrap();
    let r = app
        .http
        .post(app.url("/consent"))
        .form(&[
            ("csrf_token", csrf_in(&consent).as_str()),
            ("tx", tx.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    let back = location(&r);
    assert!(back.starts_with(crate::oidc::REDIRECT), "{back}");
    assert!(query(&back).contains_key("code"), "{back}");
}
on_both_backends!(
    ui_locales_carries_through_step_up_and_consent,
    super::ui_locales_carries_through_step_up_and_consent
);

/// `ui_locales` is a list in order of preference: the first language vigil has wins; a request
/// without it forgets the last one's choice.
async fn ui_locales_picks_the_first_known_language(b: Backend) {
    let mut app = spawn_app(b).await.unwrap();
    add_client(&app, ClientSpec::default()).await;
    speaks(&mut app, "en");
    let rp = rp(&app, "rp", false).await;
    let lang_of = |s: crate::oidc::Started| {
        let app = &app;
        async move {
            let r = app.http.get(s.url.as_str()).send().await.unwrap();
            let page = app.get(&location(&r)).await.text().await.unwrap();
            html_lang(&page)
        }
    };
    assert_eq!(
        lang_of(rp.start(&[], &[("ui_locales", "fr de")])).await,
        "de"
    );
    assert_eq!(
        lang_of(rp.start(&[], &[("ui_locales", "fr-FR de-AT en")])).await,
        "de"
    );
    assert_eq!(
        lang_of(rp.start(&[], &[("ui_locales", "en de")])).await,
        "en"
    );
    // Nothing vigil has: the browser's language.
    assert_eq!(
        lang_of(rp.start(&[], &[("ui_locales", "fr ja")])).await,
        "en"
    );
    assert_eq!(lang_of(rp.start(&[], &[("ui_locales", "de")])).await, "de");
    assert_eq!(lang_of(rp.start(&[], &[])).await, "en");
}
on_both_backends!(
    ui_locales_picks_the_first_known_language,
    super::ui_locales_picks_the_first_known_language
);

async fn discovery_lists_the_catalogues(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    let d: serde_json::Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["ui_locales_supported"], serde_json::json!(["en", "de"]));
}
on_both_backends!(
    discovery_lists_the_catalogues,
    super::discovery_lists_the_catalogues
);
