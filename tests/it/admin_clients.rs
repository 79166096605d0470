//! `/admin/clients` through its real forms: register a client and sign in with it through a
//! real relying party, refuse bad redirect URIs, edit it (thresholds included), rotate its
//! secret, delete it after re-authentication; every change audited with who and where.

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, RedirectUrl, TokenResponse};
use reqwest::StatusCode;

use crate::admin::{admin_app, admin_sign_in, submit};
use crate::admin_users::{audited, text_of};
use crate::helpers::{csrf_in, spawn_app, Backend, TestApp, PASSWORD};
use crate::oidc::{location, sign_in_or_sso, Rp, REDIRECT};
use crate::on_both_backends;

/// The create form's fields for a confidential, first-party client `id`.
fn fields<'a>(id: &'a str, redirect_uris: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", id),
        ("name", "Shop"),
        ("redirect_uris", redirect_uris),
        ("post_logout_redirect_uris", "https://rp.example.com/bye"),
        ("client_type", "confidential"),
        ("first_party", "on"),
        ("grant_authorization_code", "on"),
        ("grant_refresh_token", "on"),
        ("grant_client_credentials", "on"),
        ("pkce", "required"),
        ("id_token_alg", "RS256"),
        ("min_acr", ""),
        ("risk_medium", ""),
        ("risk_high", ""),
    ]
}

/// A relying party with this id and secret, knowing nothing else but the issuer.
async fn rp_with(app: &TestApp, client_id: &str, secret: &str) -> Rp {
    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], app.port)),
        )
        .build()
        .unwrap();
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(client_id.into()),
        Some(ClientSecret::new(secret.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    Rp { client, http }
}

async fn client_credentials(app: &TestApp, id: &str, secret: &str) -> StatusCode {
    app.http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
}

async fn assert_audited(app: &TestApp, action: &str, target: &str) {
    let e = audited(app, action).await;
    let e = e.last().unwrap_or_else(|| panic!("{action} audited"));
    assert!(e.actor.is_some() && e.actor.as_deref() != Some("test"));
    assert!(e.ip.is_some(), "{action}: from where");
    assert_eq!(e.target.as_deref(), Some(target));
}

async fn create_and_sign_in_with_it(b: Backend) {
    let Some((app, secret)) = admin_app(b).await else {
        return;
    };
    let r = submit(
        &app,
        "/admin/clients",
        "/admin/clients",
        &fields("shop", REDIRECT),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let client_secret = text_of(&html, "#client-secret").expect("secret shown once");
    assert!(client_secret.len() >= 32);
    assert_audited(&app, "client.created", "shop").await;
    let list = app.get("/admin/clients").await.text().await.unwrap();
    assert!(text_of(&list, "#clients").unwrap().contains(REDIRECT));
    assert!(!list.contains(&client_secret), "never shown again");
    let page = app.get("/admin/clients/shop").await.text().await.unwrap();
    assert!(!page.contains(&client_secret), "never shown again");

    // A real relying party signs a user in with it and gets a valid ID token.
    app.add_user("alice", false).await;
    let rp = rp_with(&app, "shop", &client_secret).await;
    let s = rp.start(&["email"], &[]);
    // The admin's browser is signed in already: single sign-on, straight back to the RP.
    let back = sign_in_or_sso(&app, &s.url).await;
    assert!(back.starts_with(REDIRECT), "first-party: no consent page");
    let tokens = rp.redeem(&back, s.verifier).await;
    let claims = tokens
        .id_token()
        .expect("an ID token")
        .claims(&rp.client.id_token_verifier(), &s.nonce)
        .expect("valid");
    assert_eq!(claims.audiences()[0].as_str(), "shop");

    // Rotating the secret: the new one is shown once, the old one fails at /token at once.
    assert_eq!(
        client_credentials(&app, "shop", &client_secret).await,
        StatusCode::OK
    );
    let r = submit(
        &app,
        "/admin/clients/shop",
        "/admin/clients/shop/secret",
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated = text_of(&r.text().await.unwrap(), "#client-secret").unwrap();
    assert_ne!(rotated, client_secret);
    assert_eq!(
        client_credentials(&app, "shop", &client_secret).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        client_credentials(&app, "shop", &rotated).await,
        StatusCode::OK
    );
    assert_audited(&app, "client.secret_rotated", "shop").await;

    // Edit: per-client thresholds and minimum acr are saved and shown; the secret is kept.
    let mut edit = fields(
        "",
        "https://rp.example.com/callback\nhttps://shop.example.com/cb",
    );
    edit.retain(|(k, _)| !["client_id", "risk_medium", "risk_high", "min_acr", "name"].contains(k));
    edit.extend([
        ("name", "The Shop"),
        ("risk_medium", "20"),
        ("risk_high", "60"),
        ("min_acr", "urn:vigil:acr:mfa"),
    ]);
    let r = submit(&app, "/admin/clients/shop", "/admin/clients/shop", &edit).await;
    assert_eq!(location(&r), "/admin/clients/shop?notice=saved");
    let page = app.get("/admin/clients/shop").await.text().await.unwrap();
    assert_eq!(
        text_of(&page, "#risk-thresholds").as_deref(),
        Some("medium from 20, high from 60")
    );
    assert!(page.contains("The Shop"));
    assert!(text_of(&page, "#redirect_uris")
        .unwrap()
        .contains("https://shop.example.com/cb"));
    assert!(page.contains("value=\"20\"") && page.contains("value=\"60\""));
    let list = app.get("/admin/clients").await.text().await.unwrap();
    assert!(list.contains("20 / 60"));
    let stored = vigil::flow::clients::find(&app.svc, "shop").await.unwrap();
    assert_eq!(stored.risk_thresholds, Some((20, 60)));
    assert_eq!(stored.min_acr.as_deref(), Some("urn:vigil:acr:mfa"));
    assert_eq!(
        client_credentials(&app, "shop", &rotated).await,
        StatusCode::OK
    );
    let updated = audited(&app, "client.updated").await;
    assert!(updated
        .last()
        .unwrap()
        .details
        .contains("\"risk_thresholds\":[20,60]"));
    assert_audited(&app, "client.updated", "shop").await;

    // Thresholds back to the global ones.
    let mut edit2: Vec<(&str, &str)> = edit
        .iter()
        .filter(|(k, _)| !k.starts_with("risk_"))
        .copied()
        .collect();
    edit2.extend([("risk_medium", ""), ("risk_high", "")]);
    submit(&app, "/admin/clients/shop", "/admin/clients/shop", &edit2).await;
    let stored = vigil::flow::clients::find(&app.svc, "shop").await.unwrap();
    assert_eq!(stored.risk_thresholds, None);

    // Deleting is sensitive: ten minutes later it asks to sign in again first.
    app.clock.advance_secs(600);
    let r = submit(
        &app,
        "/admin/clients/shop",
        "/admin/clients/shop/delete",
        &[],
    )
    .await;
    assert!(location(&r).starts_with("/login?reauth=1&next="));
    assert!(vigil::flow::clients::find(&app.svc, "shop").await.is_ok());
    admin_sign_in(&app, &secret).await;
    let r = submit(
        &app,
        "/admin/clients/shop",
        "/admin/clients/shop/delete",
        &[],
    )
    .await;
    assert_eq!(location(&r), "/admin/clients?notice=deleted");
    assert!(vigil::flow::clients::find(&app.svc, "shop").await.is_err());
    assert_eq!(
        client_credentials(&app, "shop", &rotated).await,
        StatusCode::UNAUTHORIZED
    );
    assert_audited(&app, "client.removed", "shop").await;
    assert_eq!(
        app.get("/admin/clients/shop").await.status(),
        StatusCode::NOT_FOUND
    );
}
on_both_backends!(
    admin_clients_create_and_use,
    super::create_and_sign_in_with_it
);

async fn bad_input_is_refused_readably(b: Backend) {
    let Some((app, _)) = admin_app(b).await else {
        return;
    };
    for (uris, says) in [
        (
            "http://shop.example.com/cb",
            "`http://shop.example.com/cb` must use https",
        ),
        (
            "https://shop.example.com/cb#frag",
            "`https://shop.example.com/cb#frag` must not contain a fragment",
        ),
        ("/relative/cb", "`/relative/cb` is not an absolute URI"),
        (
            "https://ok.example.com/cb\njavascript:alert(1)",
            "`javascript:alert(1)` must use https",
        ),
        ("", "at least one redirect URI"),
    ] {
        let r = submit(
            &app,
            "/admin/clients",
            "/admin/clients",
            &fields("shop", uris),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{uris}");
        let html = r.text().await.unwrap();
        let error = text_of(&html, ".alert-error").unwrap_or_default();
        let says_escaped = says.replace('`', "&#96;");
        assert!(
            error.contains(says) || html.contains(&says_escaped),
            "{uris}: {error}"
        );
        assert!(html.contains("value=\"shop\""), "the form keeps its values");
    }
    let mut bad_thresholds = fields("shop", REDIRECT);
    for (m, h, says) in [
        ("30", "", "both risk thresholds"),
        ("70", "30", "medium must be below high"),
        ("0", "50", "between 1 and 100"),
        ("x", "50", "whole number"),
    ] {
        bad_thresholds.retain(|(k, _)| !k.starts_with("risk_"));
        bad_thresholds.extend([("risk_medium", m), ("risk_high", h)]);
        let r = submit(&app, "/admin/clients", "/admin/clients", &bad_thresholds).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{m}/{h}");
        assert!(r.text().await.unwrap().contains(says), "{says}");
    }
    let mut public_cc = fields("shop", REDIRECT);
    public_cc.retain(|(k, _)| *k != "client_type");
    public_cc.push(("client_type", "public"));
    let r = submit(&app, "/admin/clients", "/admin/clients", &public_cc).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = submit(
        &app,
        "/admin/clients",
        "/admin/clients",
        &fields("bad id!", REDIRECT),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Nothing was registered; then a duplicate id is refused.
    assert!(vigil::flow::clients::list(&app.svc)
        .await
        .unwrap()
        .is_empty());
    let r = submit(
        &app,
        "/admin/clients",
        "/admin/clients",
        &fields("shop", REDIRECT),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = submit(
        &app,
        "/admin/clients",
        "/admin/clients",
        &fields("shop", REDIRECT),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("already exists"));

    // The edit form refuses the same way and changes nothing.
    let mut edit = fields("", "http://evil.example.com/cb");
    edit.retain(|(k, _)| *k != "client_id");
    let r = submit(&app, "/admin/clients/shop", "/admin/clients/shop", &edit).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let stored = vigil::flow::clients::find(&app.svc, "shop").await.unwrap();
    assert_eq!(stored.redirect_uris, vec![REDIRECT.to_owned()]);

    // A public client gets no secret, and has none to rotate.
    let mut public = fields("spa", "http://localhost:3000/cb");
    public.retain(|(k, _)| !["client_type", "grant_client_credentials"].contains(k));
    public.push(("client_type", "public"));
    let r = submit(&app, "/admin/clients", "/admin/clients", &public).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text_of(&r.text().await.unwrap(), "#client-secret").is_none());
    let r = submit(&app, "/admin/clients/spa", "/admin/clients/spa/secret", &[]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
on_both_backends!(
    admin_clients_bad_input,
    super::bad_input_is_refused_readably
);

/// The id routes refuse anonymous visitors, non-admins, and forms without a CSRF token.
async fn client_routes_are_guarded(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    crate::oidc::add_client(&app, crate::oidc::ClientSpec::default()).await;
    let page = "/admin/clients/rp";
    let actions = [
        page.to_owned(),
        format!("{page}/secret"),
        format!("{page}/delete"),
    ];
    assert!(location(&app.get(page).await).starts_with("/login?next="));
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
    app.add_user("ann", false).await;
    app.login("ann", PASSWORD).await;
    assert_eq!(app.get(page).await.status(), StatusCode::FORBIDDEN);
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
    crate::mfa::sign_out(&app).await;
    app.add_user("boss", true).await;
    app.login("boss", PASSWORD).await;
    for a in &actions {
        for form in [vec![], vec![("csrf_token", "forged")]] {
            let r = app.http.post(app.url(a)).form(&form).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "POST {a} {form:?}");
        }
    }
    assert!(vigil::flow::clients::find(&app.svc, "rp").await.is_ok());
    assert_eq!(
        client_credentials(&app, "rp", crate::oidc::SECRET).await,
        StatusCode::OK,
        "the secret was not rotated"
    );
}
on_both_backends!(admin_clients_guarded, super::client_routes_are_guarded);
