//! OWASP ASVS 5.0 requirements that no other test shows on its own (docs/ASVS.md maps every
//! L1/L2 requirement of the authentication, session, token and OAuth chapters to a test).

use reqwest::StatusCode;

use crate::helpers::{client, csrf_in, spawn_app, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The text of a page, as `browser` sees it.
async fn page(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    browser
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Fill and submit the login form in a fresh browser; returns the browser and the answer.
async fn fresh_login(
    app: &TestApp,
    username: &str,
    password: &str,
) -> (reqwest::Client, reqwest::Response) {
    let browser = client(app.port);
    let html = page(app, &browser, "/login").await;
    let r = browser
        .post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", csrf_in(&html).as_str()),
        ])
        .send()
        .await
        .unwrap();
    (browser, r)
}

/// Sign in with a fresh browser; returns the browser.
async fn browser_signed_in(app: &TestApp, username: &str, password: &str) -> reqwest::Client {
    let (browser, r) = fresh_login(app, username, password).await;
    assert_eq!(location(&r), "/account", "{username} signs in");
    browser
}

async fn try_password(app: &TestApp, username: &str, password: &str) -> StatusCode {
    fresh_login(app, username, password).await.1.status()
}

async fn change_password(
    app: &TestApp,
    browser: &reqwest::Client,
    current: &str,
    new: &str,
) -> (StatusCode, String, String) {
    let html = page(app, browser, "/account/password").await;
    let r = browser
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", csrf_in(&html).as_str()),
            ("current_password", current),
            ("new_password", new),
        ])
        .send()
        .await
        .unwrap();
    let (status, to) = (r.status(), location(&r));
    (status, to, r.text().await.unwrap_or_default())
}

/// ASVS 6.2.6 / 6.2.7: password inputs are masked, and nothing stops paste or password managers.
async fn password_fields_are_masked_and_manager_friendly(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("pat", false).await;
    let login = app.get("/login").await.text().await.unwrap();
    let browser = browser_signed_in(&app, "pat", PASSWORD).await;
    let change = page(&app, &browser, "/account/password").await;
    for (page, html, autocomplete) in [
        ("/login", &login, "current-password"),
        ("/account/password", &change, "new-password"),
    ] {
        let doc = scraper::Html::parse_document(html);
        let sel = scraper::Selector::parse("input[type=password]").unwrap();
        let fields: Vec<_> = doc.select(&sel).collect();
        assert!(!fields.is_empty(), "{page} has a masked password field");
        assert!(
            fields
                .iter()
                .any(|f| f.value().attr("autocomplete") == Some(autocomplete)),
            "{page}: a field says autocomplete={autocomplete} for password managers"
        );
        for f in &fields {
            assert_ne!(f.value().attr("autocomplete"), Some("off"), "{page}");
        }
        for blocker in ["onpaste", "oncopy", "ondrop", "maxlength"] {
            assert!(!html.contains(blocker), "{page} must not carry {blocker}");
        }
    }
}
on_both_backends!(
    password_fields_are_masked_and_manager_friendly,
    super::password_fields_are_masked_and_manager_friendly
);

/// ASVS 6.2.5 / 6.2.8 / 6.2.9 / 6.2.2 / 6.2.3: a 100-character passphrase of any composition
/// is accepted and verified exactly as typed (no truncation, no case folding, no trimming);
/// a change needs the current password.
async fn long_passphrases_are_verified_exactly(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("quinn", false).await;
    let browser = browser_signed_in(&app, "quinn", PASSWORD).await;

    // lower-case letters and spaces only, non-ASCII included, 100 characters
    let phrase: String = "über lange sätze sind leicht zu merken und schwer zu raten "
        .chars()
        .cycle()
        .take(100)
        .collect();
    assert_eq!(phrase.chars().count(), 100);

    let (_, to, body) = change_password(&app, &browser, "not my password", &phrase).await;
    assert_ne!(
        to, "/account?notice=password",
        "a wrong current password changes nothing"
    );
    assert!(body.contains("current password"), "says why: {body}");
    assert_eq!(
        try_password(&app, "quinn", &phrase).await,
        StatusCode::UNAUTHORIZED
    );

    let (_, to, _) = change_password(&app, &browser, PASSWORD, &phrase).await;
    assert_eq!(to, "/account?notice=password");

    assert_eq!(
        try_password(&app, "quinn", &phrase).await,
        StatusCode::SEE_OTHER
    );
    let truncated: String = phrase.chars().take(72).collect();
    let shouting = phrase.to_uppercase();
    let leading = format!(" {phrase}");
    let padded = format!("{phrase} ");
    for variant in [&truncated, &shouting, &leading, &padded] {
        assert_ne!(variant, &phrase);
        assert_eq!(
            try_password(&app, "quinn", variant).await,
            StatusCode::UNAUTHORIZED,
            "a changed passphrase must not sign in: {variant:?}"
        );
    }
    assert_eq!(
        try_password(&app, "quinn", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
}
on_both_backends!(
    long_passphrases_are_verified_exactly,
    super::long_passphrases_are_verified_exactly
);

/// ASVS 6.2.1 / 6.2.4: shorter than 8 characters, or on the common-password list, is refused
/// with a reason, and the old password keeps working.
async fn short_and_common_passwords_are_refused(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("rene", false).await;
    let browser = browser_signed_in(&app, "rene", PASSWORD).await;
    for (new, reason) in [
        ("seven77", "too short"),
        ("password1", "commonly used"),
        ("qwertyuiop", "commonly used"),
        ("rene", "too short"),
        ("RENE-rene", "commonly used"),
    ] {
        let (_, to, body) = change_password(&app, &browser, PASSWORD, new).await;
        if new == "RENE-rene" {
            // not on the list: this one is accepted; change it back for the next rounds
            assert_eq!(to, "/account?notice=password", "{new}");
            let (_, to, _) = change_password(&app, &browser, new, PASSWORD).await;
            assert_eq!(to, "/account?notice=password");
            continue;
        }
        assert_ne!(to, "/account?notice=password", "{new} must be refused");
        assert!(
            body.contains(reason),
            "{new}: expected '{reason}' in {body}"
        );
    }
    assert_eq!(
        try_password(&app, "rene", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
}
on_both_backends!(
    short_and_common_passwords_are_refused,
    super::short_and_common_passwords_are_refused
);

/// ASVS 7.4.4: every page behind a sign-in offers signing out.
async fn every_signed_in_page_offers_sign_out(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("sam", false).await;
    let browser = browser_signed_in(&app, "sam", PASSWORD).await;
    for page in ["/account", "/account/password", "/account/totp"] {
        let r = browser.get(app.url(page)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{page}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains(r#"action="/logout/session""#),
            "{page} has a sign-out form"
        );
    }
}
on_both_backends!(
    every_signed_in_page_offers_sign_out,
    super::every_signed_in_page_offers_sign_out
);

/// ASVS 7.2.3: the session reference is 256 random bits (43 base64url characters), different
/// at every sign-in.
async fn session_ids_carry_256_random_bits(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("tess", false).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        let (_, r) = fresh_login(&app, "tess", PASSWORD).await;
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("vigil_session="))
            .expect("a session cookie")
            .to_owned();
        let value = cookie
            .trim_start_matches("vigil_session=")
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(value.len() >= 43, "{value}");
        assert!(value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert!(seen.insert(value), "a new id at every sign-in");
    }
}
on_both_backends!(
    session_ids_carry_256_random_bits,
    super::session_ids_carry_256_random_bits
);

/// ASVS 7.5.2 / 7.4.3: a user sees their sessions on /account and ends another one; the other
/// browser is signed out at once. (Ending a session needs no new sign-in: the owner must be
/// able to throw out a thief who holds the same password.)
async fn users_see_and_end_their_other_sessions(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("uma", false).await;
    let laptop = browser_signed_in(&app, "uma", PASSWORD).await;
    let phone = browser_signed_in(&app, "uma", PASSWORD).await;
    let html = page(&app, &laptop, "/account").await;
    let doc = scraper::Html::parse_document(&html);
    let rows = scraper::Selector::parse("#sessions tbody tr").unwrap();
    assert_eq!(doc.select(&rows).count(), 2, "both sessions listed");
    let other = scraper::Selector::parse("input[name=session_id]").unwrap();
    let ids: Vec<String> = doc
        .select(&other)
        .filter_map(|e| e.value().attr("value").map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 1, "one other session, with a sign-out button");

    let r = laptop
        .post(app.url("/account/sessions/revoke"))
        .form(&[
            ("csrf_token", csrf_in(&html).as_str()),
            ("session_id", ids[0].as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection() || r.status().is_success());
    let r = phone.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/login"), "{}", location(&r));
    let r = laptop.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the laptop keeps its session");

    // Another user's session id is not mine to end.
    app.add_user("vic", false).await;
    let vic = browser_signed_in(&app, "vic", PASSWORD).await;
    let vic_sessions: Vec<String> = app
        .svc
        .db
        .run(|c| {
            let user = vigil::store::users::find_by_username(c, "vic")?.expect("vic exists");
            vigil::store::sessions::list_live_for_user(c, &user.id, 0)
                .map(|v| v.into_iter().map(|s| s.id).collect())
        })
        .await
        .unwrap();
    assert_eq!(vic_sessions.len(), 1);
    let html = page(&app, &laptop, "/account").await;
    let _ = laptop
        .post(app.url("/account/sessions/revoke"))
        .form(&[
            ("csrf_token", csrf_in(&html).as_str()),
            ("session_id", vic_sessions[0].as_str()),
        ])
        .send()
        .await
        .unwrap();
    let r = vic.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "vic is still signed in");
}
on_both_backends!(
    users_see_and_end_their_other_sessions,
    super::users_see_and_end_their_other_sessions
);
