//! `/admin/users` through its real forms, as an admin signed in with TOTP: create and search,
//! disable/enable, reset password, remove factors, unlock, end sessions, roles, delete.

use reqwest::StatusCode;
use vigil::flow::accounts::Actor;
use vigil::store;

use crate::admin::{admin_app, admin_sign_in, submit};
use crate::helpers::{client, csrf_in, spawn_app, Backend, TestApp, PASSWORD};
use crate::oidc::location;
use crate::on_both_backends;

/// Sign in with `http` (another browser than the admin's).
pub async fn login_with(
    app: &TestApp,
    http: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let html = http
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
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap()
}

async fn user_id(app: &TestApp, username: &str) -> String {
    let name = username.to_owned();
    app.svc
        .db
        .run(move |c| store::users::find_by_username(c, &name))
        .await
        .unwrap()
        .expect("user exists")
        .id
}

/// The text of the first element matching `sel`.
pub fn text_of(html: &str, sel: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    doc.select(&scraper::Selector::parse(sel).unwrap())
        .next()
        .map(|e| e.text().collect::<String>().trim().to_owned())
}

/// Audit entries with `action`.
pub async fn audited(app: &TestApp, action: &str) -> Vec<store::audit::AuditRow> {
    let a = action.to_owned();
    app.svc
        .db
        .run(|c| store::audit::page(c, 0, 10_000))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == a)
        .collect()
}

async fn root_id(app: &TestApp) -> String {
    user_id(app, "root").await
}

/// The last entry with `action` was done by root from an IP, to `target`.
async fn assert_audited(app: &TestApp, action: &str, target: &str) {
    let root = root_id(app).await;
    let entries = audited(app, action).await;
    let e = entries.last().unwrap_or_else(|| panic!("{action} audited"));
    assert_eq!(e.actor.as_deref(), Some(root.as_str()), "{action} actor");
    assert!(e.ip.is_some(), "{action} records where from");
    assert_eq!(e.target.as_deref(), Some(target), "{action} target");
}

async fn create_search_disable_enable(b: Backend) {
    let Some((app, _)) = admin_app(b).await else {
        return;
    };
    let r = submit(
        &app,
        "/admin/users",
        "/admin/users",
        &[
            ("username", "Ann"),
            ("email", "ann@example.com"),
            ("name", "Ann Example"),
            ("password", ""),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let temporary = text_of(&page, "#temporary-password").expect("generated password shown once");
    assert!(temporary.len() >= 16);
    let ann = user_id(&app, "ann").await;
    assert_audited(&app, "user.created", &ann).await;

    // Search by any of username, e-mail and name, case-insensitively.
    for q in ["ANN", "example.com", "ann%20exa"] {
        let html = app
            .get(&format!("/admin/users?q={q}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("ann@example.com"), "search {q}");
    }
    let html = app.get("/admin/users?q=zzz").await.text().await.unwrap();
    assert!(!html.contains("ann@example.com"));
    assert!(html.contains("No account matches"));
    let html = app.get("/admin/users?q=%25").await.text().await.unwrap();
    assert!(!html.contains("ann@example.com"), "% is matched literally");

    // Bad input and duplicates are readable errors on the form, not 500s.
    for (username, email, password, says) in [
        ("a b", "x@example.com", "", "username contains"),
        ("bob", "not-an-email", "", "is not an e-mail address"),
        ("bob", "bob@example.com", "short", "too short"),
        ("ann", "ann2@example.com", "", "already exists"),
    ] {
        let r = submit(
            &app,
            "/admin/users",
            "/admin/users",
            &[
                ("username", username),
                ("email", email),
                ("password", password),
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{username}");
        let html = r.text().await.unwrap();
        assert!(html.contains(says), "{says}: {html}");
        assert!(html.contains(&format!("value=\"{email}\"")), "form kept");
    }

    // The temporary password must be changed at the first sign-in.
    let browser = client(app.port);
    let r = login_with(&app, &browser, "ann", &temporary).await;
    assert_eq!(location(&r), "/account/password");
    let html = browser
        .get(app.url("/account/password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", csrf_in(&html).as_str()),
            ("current_password", temporary.as_str()),
            ("new_password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/account?notice=password");

    // The user page shows the sign-in history with its risk, linked to the sign-in log.
    let page_path = format!("/admin/users/{ann}");
    let html = app.get(&page_path).await.text().await.unwrap();
    assert!(html.contains("Ann Example"));
    let doc = scraper::Html::parse_document(&html);
    let link = doc
        .select(&scraper::Selector::parse("#signins a").unwrap())
        .next()
        .and_then(|a| a.value().attr("href"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        link.starts_with("/admin/signins/"),
        "sign-ins link to the log"
    );
    assert_eq!(app.get(&link).await.status(), StatusCode::OK, "{link}");
    assert!(html.contains("level-low"), "each sign-in's level");
    let sessions = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("#sessions tbody tr").unwrap())
        .count();
    assert_eq!(sessions, 1, "ann's live session");
    let devices = text_of(&html, "#devices tbody").unwrap();
    assert!(!devices.contains("No verified sign-in"), "{devices}");

    // Disabling ends the session and refuses the next sign-in; enabling lets it in again.
    let r = submit(&app, &page_path, &format!("{page_path}/disable"), &[]).await;
    assert_eq!(location(&r), format!("{page_path}?notice=disabled"));
    let r = browser.get(app.url("/account")).send().await.unwrap();
    assert!(location(&r).starts_with("/login"), "session ended");
    let r = login_with(&app, &browser, "ann", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "disabled: refused");
    let html = app.get(&page_path).await.text().await.unwrap();
    assert!(html.contains("id=\"status-disabled\""));
    assert_audited(&app, "user.disabled", &ann).await;

    let r = submit(&app, &page_path, &format!("{page_path}/enable"), &[]).await;
    assert_eq!(location(&r), format!("{page_path}?notice=enabled"));
    let r = login_with(&app, &client(app.port), "ann", PASSWORD).await;
    assert_eq!(location(&r), "/account");
    assert_audited(&app, "user.enabled", &ann).await;

    // "End all sessions" signs ann out everywhere.
    let r = submit(&app, &page_path, &format!("{page_path}/sessions"), &[]).await;
    assert_eq!(location(&r), format!("{page_path}?notice=sessions"));
    let live = {
        let id = ann.clone();
        let now = app.svc.clock.now().micros();
        app.svc
            .db
            .run(move |c| store::sessions::list_live_for_user(c, &id, now))
            .await
            .unwrap()
    };
    assert!(live.is_empty());
    assert_audited(&app, "user.sessions_revoked", &ann).await;

    // Unknown ids are a 404 page.
    assert_eq!(
        app.get("/admin/users/no-such-id").await.status(),
        StatusCode::NOT_FOUND
    );
}
on_both_backends!(
    admin_users_create_search_disable,
    super::create_search_disable_enable
);

async fn reset_password_forces_a_change(b: Backend) {
    let Some((app, _)) = admin_app(b).await else {
        return;
    };
    app.add_user("ann", false).await;
    let ann = user_id(&app, "ann").await;
    let page_path = format!("/admin/users/{ann}");
    let browser = client(app.port);
    assert_eq!(
        location(&login_with(&app, &browser, "ann", PASSWORD).await),
        "/account"
    );

    // A weak typed password is refused, readably.
    let r = submit(
        &app,
        &page_path,
        &format!("{page_path}/password"),
        &[("password", "short")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("too short"));

    let r = submit(
        &app,
        &page_path,
        &format!("{page_path}/password"),
        &[("password", "temporary-pass-4242")],
    )
    .await;
    assert_eq!(location(&r), format!("{page_path}?notice=password"));
    assert_audited(&app, "user.password_reset", &ann).await;
    let r = browser.get(app.url("/account")).send().await.unwrap();
    assert!(location(&r).starts_with("/login"), "the session ended");
    let r = login_with(&app, &browser, "ann", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the old password");
    let r = login_with(&app, &browser, "ann", "temporary-pass-4242").await;
    assert_eq!(location(&r), "/account/password", "must change it");
    let r = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(location(&r), "/account/password", "nothing else first");
    let html = browser
        .get(app.url("/account/password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", csrf_in(&html).as_str()),
            ("current_password", "temporary-pass-4242"),
            ("new_password", "ann's own new passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/account?notice=password");
    let r = login_with(&app, &client(app.port), "ann", "ann's own new passphrase").await;
    assert_eq!(location(&r), "/account");

    // Or vigil generates one, shown once.
    let r = submit(
        &app,
        &page_path,
        &format!("{page_path}/password"),
        &[("password", "")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let temporary = text_of(&r.text().await.unwrap(), "#temporary-password").unwrap();
    let r = login_with(&app, &client(app.port), "ann", &temporary).await;
    assert_eq!(location(&r), "/account/password");
    let html = app.get(&page_path).await.text().await.unwrap();
    assert!(!html.contains(&temporary), "shown only once");
}
on_both_backends!(
    admin_users_reset_password,
    super::reset_password_forces_a_change
);

async fn factors_removed_and_account_unlocked(b: Backend) {
    let Some((app, _)) = admin_app(b).await else {
        return;
    };
    app.add_user("ann", false).await;
    let ann = user_id(&app, "ann").await;
    let page_path = format!("/admin/users/{ann}");
    let user = {
        let id = ann.clone();
        app.svc
            .db
            .run(move |c| store::users::find(c, &id))
            .await
            .unwrap()
            .unwrap()
    };
    vigil::flow::factors::totp_provision(&app.svc, app.svc.clock.now(), &user)
        .await
        .unwrap();
    let (uid, now) = (ann.clone(), app.svc.clock.now().micros());
    app.svc
        .db
        .run(move |c| {
            store::factors::insert_passkey(
                c,
                &store::factors::WebauthnRow {
                    id: "pk-1".into(),
                    user_id: uid.clone(),
                    cred_id: "cred-1".into(),
                    name: "Ann's YubiKey".into(),
                    passkey: "{}".into(),
                    created_at: now,
                    last_used_at: None,
                    suspended_at: None,
                },
            )?;
            store::factors::replace_recovery_codes(
                c,
                &uid,
                &["d1".into(), "d2".into(), "d3".into()],
                now,
            )
        })
        .await
        .unwrap();
    let html = app.get(&page_path).await.text().await.unwrap();
    assert!(html.contains("Ann&#x27;s YubiKey") || html.contains("Ann's YubiKey"));
    assert!(html.contains("Authenticator app (TOTP)"));
    assert_eq!(text_of(&html, "#recovery-left").as_deref(), Some("3"));

    let factors = format!("{page_path}/factors");
    let r = submit(&app, &page_path, &factors, &[("factor", "passkey:pk-1")]).await;
    assert_eq!(location(&r), format!("{page_path}?notice=factors"));
    let r = submit(&app, &page_path, &factors, &[("factor", "totp")]).await;
    assert_eq!(location(&r), format!("{page_path}?notice=factors"));
    let html = app.get(&page_path).await.text().await.unwrap();
    assert!(!html.contains("YubiKey") && !html.contains("Authenticator app (TOTP)"));
    // Removing what is not there, or nonsense, is a readable refusal.
    for f in ["totp", "bogus", ""] {
        let r = submit(&app, &page_path, &factors, &[("factor", f)]).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{f}");
    }
    let r = submit(&app, &page_path, &factors, &[("factor", "all")]).await;
    assert_eq!(location(&r), format!("{page_path}?notice=factors"));
    let enrolled = {
        let id = ann.clone();
        app.svc
            .db
            .run(move |c| store::factors::enrolled(c, &id))
            .await
            .unwrap()
    };
    assert_eq!(enrolled, store::factors::Enrolled::default());
    assert!(app
        .get(&page_path)
        .await
        .text()
        .await
        .unwrap()
        .contains("No second factor."));
    let removed = audited(&app, "factor.removed").await;
    assert_eq!(removed.len(), 3);
    assert!(removed.iter().all(|e| e.details.contains("by_admin")));
    assert_audited(&app, "factor.removed", &ann).await;

    // Throttled after five wrong passwords; the admin unlocks the account.
    let browser = client(app.port);
    for _ in 0..5 {
        let r = login_with(&app, &browser, "ann", "wrong password here").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login_with(&app, &browser, "ann", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let html = app.get(&page_path).await.text().await.unwrap();
    assert_eq!(text_of(&html, "#failures").as_deref(), Some("5"));
    let r = submit(&app, &page_path, &format!("{page_path}/unlock"), &[]).await;
    assert_eq!(location(&r), format!("{page_path}?notice=unlocked"));
    let r = login_with(&app, &browser, "ann", PASSWORD).await;
    assert_eq!(location(&r), "/account", "unlocked");
    assert_audited(&app, "user.unlocked", &ann).await;
}
on_both_backends!(
    admin_users_factors_and_unlock,
    super::factors_removed_and_account_unlocked
);

async fn roles_and_the_last_admin(b: Backend) {
    let Some((app, _)) = admin_app(b).await else {
        return;
    };
    let root = root_id(&app).await;
    let root_page = format!("/admin/users/{root}");
    let html = app.get(&root_page).await.text().await.unwrap();
    assert!(!html.contains("/demote") && !html.contains("/disable") && !html.contains("/delete"));
    for (action, says) in [
        ("demote", "your own administrator role"),
        ("disable", "disable your own account"),
        ("delete", "delete your own account"),
    ] {
        let r = submit(&app, &root_page, &format!("{root_page}/{action}"), &[]).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{action}");
        assert!(r.text().await.unwrap().contains(says), "{action}");
    }

    app.add_user("bob", false).await;
    let bob = user_id(&app, "bob").await;
    let bob_page = format!("/admin/users/{bob}");
    let r = submit(&app, &bob_page, &format!("{bob_page}/promote"), &[]).await;
    assert_eq!(location(&r), format!("{bob_page}?notice=promoted"));
    assert_audited(&app, "user.promoted", &bob).await;
    let browser = client(app.port);
    login_with(&app, &browser, "bob", PASSWORD).await;
    let r = browser.get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text().await.unwrap().contains("must use a second factor"),
        "bob is an admin now, but the console needs his second factor first"
    );

    let r = submit(&app, &bob_page, &format!("{bob_page}/demote"), &[]).await;
    assert_eq!(location(&r), format!("{bob_page}?notice=demoted"));
    assert_audited(&app, "user.demoted", &bob).await;
    let r = browser.get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "and no longer");
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("does not have the admin role"));

    // The last active admin is never demoted, disabled or deleted, whoever asks.
    let now = app.svc.clock.now();
    let cli = Actor::new("cli");
    let e = vigil::flow::accounts::set_role(&app.svc, &cli, now, &root, false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("last active administrator"), "{e}");
    assert!(
        vigil::flow::accounts::admin_set_disabled(&app.svc, &cli, now, &root, true)
            .await
            .is_err()
    );
    assert!(vigil::flow::accounts::delete(&app.svc, &cli, now, &root)
        .await
        .is_err());
    let user = vigil::flow::accounts::by_id(&app.svc, &root).await.unwrap();
    let staff = vigil::flow::access::console(&app.svc, &root).await.unwrap();
    assert!(staff.admin && !user.disabled);
}
on_both_backends!(admin_users_roles, super::roles_and_the_last_admin);

async fn delete_needs_recent_sign_in(b: Backend) {
    let Some((app, secret)) = admin_app(b).await else {
        return;
    };
    app.add_user("ann", false).await;
    let ann = user_id(&app, "ann").await;
    let page_path = format!("/admin/users/{ann}");
    // Give ann a session, a sign-in history, a risk profile, a factor and a refresh token.
    let browser = client(app.port);
    login_with(&app, &browser, "ann", PASSWORD).await;
    crate::oidc::add_client(&app, crate::oidc::ClientSpec::default()).await;
    let user = vigil::flow::accounts::by_id(&app.svc, &ann).await.unwrap();
    vigil::flow::factors::totp_provision(&app.svc, app.svc.clock.now(), &user)
        .await
        .unwrap();

    app.clock.advance_secs(600);
    let r = submit(&app, &page_path, &format!("{page_path}/delete"), &[]).await;
    let to = location(&r);
    assert!(to.starts_with("/login?reauth=1&next="), "{to}");
    assert!(vigil::flow::accounts::by_id(&app.svc, &ann).await.is_ok());
    admin_sign_in(&app, &secret).await;
    let r = submit(&app, &page_path, &format!("{page_path}/delete"), &[]).await;
    assert_eq!(location(&r), "/admin/users?notice=deleted");
    assert_audited(&app, "user.deleted", &ann).await;

    let id = ann.clone();
    let now = app.svc.clock.now().micros();
    let (user, live, enrolled, history, profile) = app
        .svc
        .db
        .run(move |c| {
            Ok((
                store::users::find(c, &id)?,
                store::sessions::list_live_for_user(c, &id, now)?,
                store::factors::enrolled(c, &id)?,
                store::signins::recent_for_user(c, &id, 10)?,
                store::risk::profile(c, &id)?,
            ))
        })
        .await
        .unwrap();
    assert!(user.is_none() && live.is_empty() && history.is_empty() && profile.is_none());
    assert_eq!(enrolled, store::factors::Enrolled::default());
    assert_eq!(
        login_with(&app, &client(app.port), "ann", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get(&page_path).await.status(), StatusCode::NOT_FOUND);
    // The name is free again.
    app.add_user("ann", false).await;
}
on_both_backends!(admin_users_delete, super::delete_needs_recent_sign_in);

/// The id routes refuse anonymous visitors, non-admins, and forms without a CSRF token.
async fn user_routes_are_guarded(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.add_user("ann", false).await;
    let ann = user_id(&app, "ann").await;
    let page = format!("/admin/users/{ann}");
    let actions: Vec<String> = [
        "disable", "enable", "password", "factors", "unlock", "sessions", "promote", "demote",
        "delete",
    ]
    .iter()
    .map(|a| format!("{page}/{a}"))
    .collect();
    let r = app.get(&page).await;
    assert!(location(&r).starts_with("/login?next="), "anonymous GET");
    for a in &actions {
        let r = app
            .http
            .post(app.url(a))
            .form(&[("csrf_token", "x")])
            .send()
            .await
            .unwrap();
        assert!(location(&r).starts_with("/login"), "anonymous POST {a}");
    }
    app.login("ann", PASSWORD).await;
    assert_eq!(app.get(&page).await.status(), StatusCode::FORBIDDEN);
    let token = csrf_in(&app.get("/account").await.text().await.unwrap());
    for a in &actions {
        let r = app
            .http
            .post(app.url(a))
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "non-admin POST {a}");
    }
    let user = vigil::flow::accounts::by_id(&app.svc, &ann).await.unwrap();
    let staff = vigil::flow::access::console(&app.svc, &ann).await.unwrap();
    assert!(!staff.admin && !user.disabled, "nothing happened");

    // An admin without the CSRF token (or with a forged one) is refused too.
    crate::mfa::sign_out(&app).await;
    app.add_user("boss", true).await;
    app.login("boss", PASSWORD).await;
    for a in &actions {
        for form in [vec![], vec![("csrf_token", "forged")]] {
            let r = app.http.post(app.url(a)).form(&form).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "POST {a} {form:?}");
        }
    }
    let user = vigil::flow::accounts::by_id(&app.svc, &ann).await.unwrap();
    let staff = vigil::flow::access::console(&app.svc, &ann).await.unwrap();
    assert!(!staff.admin && !user.disabled, "nothing happened");
}
on_both_backends!(admin_users_guarded, super::user_routes_are_guarded);
