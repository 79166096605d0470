//! Groups and client roles under the risk engine: the claims an application receives follow
//! the grants made through the CLI; a client that admits only its roles refuses everyone else
//! (and its refresh tokens stop when the role goes); a privileged role needs a recent second
//! factor and is never released to an account at risk.

use diesel::prelude::*;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use vigil::auth::totp;
use vigil::flow::access::{self, Grantee};
use vigil::flow::accounts::Actor;
use vigil::flow::clients::{register, NewClient};
use vigil::flow::enforce::AccountRisk;

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::oidc::{
    add_client, location, password_at_login, payload, query, rp, tokens_for, ClientSpec, Rp,
    REDIRECT, SECRET,
};
use crate::on_both_backends;

fn actor() -> Actor {
    Actor::new("test")
}

/// `vigil ARGS…` against the app's own database; panics with its stderr when it fails.
fn cli(app: &TestApp, args: &[&str]) -> String {
    let db = app._db.url_string();
    let o = crate::cli::run_with_env(args, None, &[("VIGIL_DATABASE_URL", &db)]);
    assert!(
        o.status.success(),
        "vigil {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .basic_auth("rp", Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn exchange(app: &TestApp, client: &str, code: &str, verifier: &str) -> Value {
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(client, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// The page's "Back to the application" link.
fn back_link(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("a.btn").unwrap();
    doc.select(&sel)
        .next()
        .and_then(|a| a.value().attr("href"))
        .unwrap_or_default()
        .to_owned()
}

fn roles_of(jwt: &Value) -> Value {
    payload(jwt.as_str().unwrap())["roles"].clone()
}

async fn roles_and_groups_follow_the_grants(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    cli(
        &app,
        &["role", "add", "rp", "reader", "--description", "Reads"],
    );
    cli(&app, &["role", "add", "rp", "writer"]);
    cli(&app, &["group", "add", "Sales EMEA"]);
    cli(&app, &["group", "add-member", "Sales EMEA", "alice"]);
    cli(
        &app,
        &["role", "grant", "rp", "reader", "--group", "Sales EMEA"],
    );
    cli(&app, &["role", "grant", "rp", "writer", "--user", "alice"]);
    // Granted twice (directly and through the group): held once.
    cli(
        &app,
        &["role", "grant", "rp", "writer", "--group", "Sales EMEA"],
    );
    let listed = cli(&app, &["role", "list", "rp"]);
    assert!(
        listed.contains("reader") && listed.contains("group:Sales EMEA"),
        "{listed}"
    );
    let groups = cli(&app, &["group", "list"]);
    assert!(groups.contains("Sales EMEA"), "{groups}");

    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["roles", "groups"]).await;
    let id = payload(t["id_token"].as_str().unwrap());
    assert_eq!(id["roles"], json!(["reader", "writer"]));
    assert_eq!(id["groups"], json!(["Sales EMEA"]));
    let at = payload(t["access_token"].as_str().unwrap());
    assert_eq!(at["roles"], json!(["reader", "writer"]));
    assert_eq!(at["groups"], json!(["Sales EMEA"]));
    let access_token = t["access_token"].as_str().unwrap().to_owned();
    let ui: Value = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["roles"], json!(["reader", "writer"]));
    assert_eq!(ui["groups"], json!(["Sales EMEA"]));
    let intro: Value = post_form(&app, "/introspect", &[("token", &access_token)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], json!(true));
    assert_eq!(intro["roles"], json!(["reader", "writer"]));
    assert_eq!(intro["groups"], json!(["Sales EMEA"]));

    // Without the scopes, no claims; after a revocation and leaving the group, nothing left.
    let (t, _) = tokens_for(&app, &rp, &[]).await;
    assert!(payload(t["id_token"].as_str().unwrap())
        .get("roles")
        .is_none());
    cli(&app, &["role", "revoke", "rp", "writer", "--user", "alice"]);
    let (t, _) = tokens_for(&app, &rp, &["roles"]).await;
    assert_eq!(
        roles_of(&t["id_token"]),
        json!(["reader", "writer"]),
        "still through the group"
    );
    cli(&app, &["group", "remove-member", "Sales EMEA", "alice"]);
    let (t, _) = tokens_for(&app, &rp, &["roles", "groups"]).await;
    assert_eq!(roles_of(&t["id_token"]), json!([]));
    assert_eq!(
        payload(t["id_token"].as_str().unwrap())["groups"],
        json!([])
    );

    // Discovery advertises both scopes and claims.
    let d: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for k in ["scopes_supported", "claims_supported"] {
        let v = d[k].as_array().unwrap();
        assert!(
            v.contains(&json!("roles")) && v.contains(&json!("groups")),
            "{k}"
        );
    }

    // Mistakes are readable errors, not panics.
    let db = app._db.url_string();
    let env = [("VIGIL_DATABASE_URL", db.as_str())];
    for (args, says) in [
        (
            &["role", "grant", "rp", "nosuch", "--user", "alice"][..],
            "not found",
        ),
        (&["role", "add", "nosuch-client", "r"][..], "not found"),
        (&["role", "add", "rp", "has space"][..], "may only contain"),
        (&["role", "add", "rp", "reader"][..], "already has a role"),
        (&["group", "add", "Sales EMEA"][..], "already exists"),
        (&["group", "add-member", "nosuch", "alice"][..], "not found"),
    ] {
        let o = crate::cli::run_with_env(args, None, &env);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let o = crate::cli::run_with_env(&["role", "grant", "rp", "reader"], None, &env);
    assert_eq!(o.status.code(), Some(2), "--user or --group is required");
}
on_both_backends!(
    roles_and_groups_follow_the_grants,
    super::roles_and_groups_follow_the_grants
);

async fn add_locked_client(app: &TestApp) {
    register(
        &app.svc,
        &actor(),
        app.svc.clock.now(),
        NewClient {
            id: "locked".into(),
            name: Some("Payroll".into()),
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            public: false,
            first_party: true,
            grants: vec![],
            secret: Some(SecretString::from(SECRET.to_owned())),
            backchannel_logout_uri: None,
            id_token_alg: None,
            access_token_alg: None,
            pkce_optional: false,
            min_acr: None,
            require_role: true,
            privileged_max_age_secs: None,
            provisioning: false,
        },
    )
    .await
    .unwrap();
}

async fn a_restricted_client_admits_only_holders_of_its_roles(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("bob", false).await;
    add_locked_client(&app).await;
    let now = app.svc.clock.now();
    access::create_role(&app.svc, &actor(), now, "locked", "clerk", false, "")
        .await
        .unwrap();
    access::create_group(&app.svc, &actor(), now, "payroll-team", "")
        .await
        .unwrap();
    let rp: Rp = rp(&app, "locked", false).await;

    // Bob's password is right, but Payroll admits only its roles: a page, and the way back
    // carries access_denied to the application.
    let s = rp.start(&[], &[]);
    let r = password_at_login(&app, &s.url, "bob").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = r.text().await.unwrap();
    assert!(page.contains("You have no access to Payroll"), "{page}");
    let back = back_link(&page);
    assert!(back.starts_with(REDIRECT), "{back}");
    let q = query(&back);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(&q["state"], s.state.secret());
    assert!(!q.contains_key("code"));
    // The sign-in log says so, naming the application.
    let logged: Vec<(String, Option<String>)> = app
        .svc
        .db
        .run(|c| {
            use vigil::store::schema::signins::dsl::*;
            Ok(signins
                .filter(outcome.eq("access_denied"))
                .select((method, client_id))
                .load(c)?)
        })
        .await
        .unwrap();
    assert_eq!(logged, vec![("sso".to_owned(), Some("locked".to_owned()))]);

    // A grant through a group admits him (with the session he already has).
    access::set_member(&app.svc, &actor(), now, "payroll-team", "bob", true)
        .await
        .unwrap();
    access::set_grant(
        &app.svc,
        &actor(),
        now,
        "locked",
        "clerk",
        Grantee::Group("payroll-team".into()),
        true,
    )
    .await
    .unwrap();
    let s = rp.start(&["offline_access"], &[]);
    let r = app.http.get(s.url.as_str()).send().await.unwrap();
    let back = location(&r);
    assert!(back.starts_with(REDIRECT), "{back}");
    let t = exchange(&app, "locked", &query(&back)["code"], s.verifier.secret()).await;
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    // A code minted just before he leaves the group.
    let s2 = rp.start(&[], &[]);
    let back = location(&app.http.get(s2.url.as_str()).send().await.unwrap());
    let late_code = query(&back)["code"].clone();

    // Out of the group, out of the application: neither the code nor the refresh token works.
    access::set_member(&app.svc, &actor(), now, "payroll-team", "bob", false)
        .await
        .unwrap();
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("locked", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", late_code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", s2.verifier.secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("locked", Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    // prompt=none gets the OAuth error, not a page.
    let s = rp.start(&[], &[("prompt", "none")]);
    let r = app.http.get(s.url.as_str()).send().await.unwrap();
    let back = location(&r);
    assert_eq!(query(&back)["error"], "access_denied", "{back}");
}
on_both_backends!(
    a_restricted_client_admits_only_holders_of_its_roles,
    super::a_restricted_client_admits_only_holders_of_its_roles
);

/// Follow the browser's redirects inside vigil until one leaves for the application.
async fn until_app(app: &TestApp, mut r: reqwest::Response) -> String {
    for _ in 0..5 {
        let to = location(&r);
        if to.starts_with(REDIRECT) {
            return to;
        }
        assert!(to.starts_with('/'), "{} {to}", r.status());
        r = app.get(&to).await;
    }
    panic!("no redirect to the application");
}

async fn a_privileged_role_needs_a_recent_second_factor(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let now = app.svc.clock.now();
    access::create_role(&app.svc, &actor(), now, "rp", "viewer", false, "")
        .await
        .unwrap();
    access::create_role(&app.svc, &actor(), now, "rp", "approver", true, "")
        .await
        .unwrap();
    for r in ["viewer", "approver"] {
        access::set_grant(
            &app.svc,
            &actor(),
            now,
            "rp",
            r,
            Grantee::User("alice".into()),
            true,
        )
        .await
        .unwrap();
    }
    let rp = rp(&app, "rp", false).await;
    // A password-only account cannot step up: the token comes without the privileged role.
    let (t, _) = tokens_for(&app, &rp, &["roles"]).await;
    assert_eq!(roles_of(&t["id_token"]), json!(["viewer"]));

    // With a factor, asking for the roles with a password-only session steps up first.
    let (secret, _) = crate::mfa::enrol_totp(&app).await;
    let s = rp.start(&["roles", "offline_access"], &[]);
    let r = app.http.get(s.url.as_str()).send().await.unwrap();
    assert_eq!(location(&r), "/login/mfa");
    app.clock.advance_secs(30);
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let r = crate::mfa::submit_code(&app, "/login/mfa/totp", &code).await;
    let back = until_app(&app, r).await;
    let t = exchange(&app, "rp", &query(&back)["code"], s.verifier.secret()).await;
    assert_eq!(roles_of(&t["id_token"]), json!(["approver", "viewer"]));
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["acr"],
        "urn:vigil:acr:mfa"
    );
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();

    // An hour later the sign-in is too old: a refresh withholds it, a new request steps up.
    app.clock.advance_secs(3_700);
    let r = post_form(
        &app,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(roles_of(&t["access_token"]), json!(["viewer"]));
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    let s = rp.start(&["roles"], &[]);
    let r = app.http.get(s.url.as_str()).send().await.unwrap();
    assert_eq!(
        location(&r),
        "/login/mfa",
        "too old for the privileged role"
    );
    let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
    let r = crate::mfa::submit_code(&app, "/login/mfa/totp", &code).await;
    let back = until_app(&app, r).await;
    let t = exchange(&app, "rp", &query(&back)["code"], s.verifier.secret()).await;
    assert_eq!(roles_of(&t["id_token"]), json!(["approver", "viewer"]));

    // An account at risk never receives it, however strong the sign-in.
    let (svc, uid) = (app.svc.clone(), user_id(&app, "alice").await);
    app.svc
        .db
        .run(move |c| {
            vigil::flow::containment::set_risk(
                c,
                &svc.auditor,
                &actor(),
                svc.clock.now(),
                &uid,
                AccountRisk::AtRisk,
                "test",
            )
        })
        .await
        .unwrap();
    let r = post_form(
        &app,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    // The family was password-only-or-old: at risk, a refresh of it may be refused outright;
    // either way no privileged role comes out of it.
    if r.status() == StatusCode::OK {
        let t: Value = r.json().await.unwrap();
        assert_eq!(roles_of(&t["access_token"]), json!(["viewer"]));
    }
    let s = rp.start(&["roles"], &[]);
    let r = app.http.get(s.url.as_str()).send().await.unwrap();
    let back = location(&r);
    assert!(
        back.starts_with(REDIRECT),
        "an mfa session stands at risk: {back}"
    );
    let t = exchange(&app, "rp", &query(&back)["code"], s.verifier.secret()).await;
    assert_eq!(roles_of(&t["id_token"]), json!(["viewer"]));
}
on_both_backends!(
    a_privileged_role_needs_a_recent_second_factor,
    super::a_privileged_role_needs_a_recent_second_factor
);

async fn user_id(app: &TestApp, username: &str) -> String {
    let u = username.to_owned();
    app.svc
        .db
        .run(move |c| vigil::store::users::find_by_username(c, &u))
        .await
        .unwrap()
        .unwrap()
        .id
}
