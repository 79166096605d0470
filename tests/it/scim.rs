//! SCIM provisioning at `/scim/v2`, driven by an independent SCIM client — the Python
//! `scim2-client` and `scim2-tester` libraries, through `tests/scim/check.py` in a pinned
//! virtualenv (`tests/scim/venv.sh`) — and by hand-built requests for what a well-behaved
//! client never sends: malformed bodies, other clients' tokens, attacks on staff accounts.
//! What SCIM provisions is then checked where it matters: an application's tokens carry the
//! groups and roles, a deactivated account's refresh token stops.

use std::path::PathBuf;
use std::sync::OnceLock;

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use vigil::flow::access::{self, Grantee};
use vigil::flow::accounts::Actor;
use vigil::flow::clients::{register, NewClient};

use crate::helpers::{spawn_app, Backend, TestApp, PASSWORD};
use crate::oidc::{add_client, payload, rp, tokens_for, ClientSpec, SECRET};
use crate::on_both_backends;

const HR_SECRET: &str = "hr-system-secret-0123456789-abcdefghij";
const SCIM: &str = "application/scim+json";

fn actor() -> Actor {
    Actor::new("test")
}

/// Register a client (`provisioning` or not) that may use `client_credentials`.
async fn machine_client(app: &TestApp, id: &str, provisioning: bool) {
    register(
        &app.svc,
        &actor(),
        app.svc.clock.now(),
        NewClient {
            id: id.into(),
            name: Some(format!("HR {id}")),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            public: false,
            first_party: true,
            grants: vec!["client_credentials".into()],
            secret: Some(SecretString::from(HR_SECRET.to_owned())),
            backchannel_logout_uri: None,
            id_token_alg: None,
            access_token_alg: None,
            pkce_optional: false,
            min_acr: None,
            require_role: false,
            privileged_max_age_secs: None,
            provisioning,
        },
    )
    .await
    .unwrap();
}

async fn client_token(app: &TestApp, id: &str, scope: &str) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .basic_auth(id, Some(HR_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap()
}

/// A provisioning client `hr` and its token.
async fn hr_token(app: &TestApp) -> String {
    machine_client(app, "hr", true).await;
    let r = client_token(app, "hr", "scim").await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "scim");
    t["access_token"].as_str().unwrap().to_owned()
}

/// The virtualenv's python, made once per test run (`tests/scim/venv.sh` pins the packages).
fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scim/venv.sh");
        let o = std::process::Command::new("bash")
            .arg(script)
            .output()
            .expect("bash");
        assert!(
            o.status.success(),
            "tests/scim/venv.sh failed (it installs scim2-client from PyPI):\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    })
    .clone()
}

/// Run `check.py MODE BASE TOKEN ARGS…` against the app; its stdout, or a panic with both
/// streams.
async fn check(app: &TestApp, mode: &str, token: &str, args: &[&str]) -> String {
    let py = tokio::task::spawn_blocking(python).await.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scim/check.py");
    let o = tokio::process::Command::new(py)
        .arg(script)
        .arg(mode)
        .arg(app.url("/scim/v2"))
        .arg(token)
        .args(args)
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "check.py {mode} failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn result_of(out: &str) -> Value {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in:\n{out}"));
    serde_json::from_str(line).unwrap()
}

async fn scim(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = app
        .http
        .request(method, app.url(&format!("/scim/v2{path}")));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.header("content-type", SCIM).body(b.to_string());
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    if !text.is_empty() {
        assert_eq!(ct.as_deref(), Some(SCIM), "{status} {text}");
    }
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Submit the login form in `browser`.
async fn login_form(
    app: &TestApp,
    browser: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser.get(app.url("/login")).send().await.unwrap();
    let csrf = crate::helpers::csrf_in(&page.text().await.unwrap());
    browser
        .post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap()
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

async fn id_of(app: &TestApp, token: &str, username: &str) -> String {
    let (s, v) = scim(
        app,
        reqwest::Method::GET,
        &format!("/Users?filter=userName%20eq%20%22{username}%22"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["Resources"][0]["id"].as_str().unwrap().to_owned()
}

async fn an_independent_client_provisions_what_applications_see(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    add_client(&app, ClientSpec::default()).await;
    access::create_role(
        &app.svc,
        &actor(),
        app.svc.clock.now(),
        "rp",
        "sales-reader",
        false,
        "",
    )
    .await
    .unwrap();
    let token = hr_token(&app).await;
    let out = check(&app, "scenario", &token, &[]).await;
    let ids = result_of(&out);
    let bob = ids["users"]["bob"].as_str().unwrap().to_owned();

    // The group SCIM made carries a role: its member's tokens show both.
    access::set_grant(
        &app.svc,
        &actor(),
        app.svc.clock.now(),
        "rp",
        "sales-reader",
        Grantee::Group("Sales".into()),
        true,
    )
    .await
    .unwrap();
    // A weak password is refused by the same policy as everywhere; a good one lets bob in.
    let (s, v) = scim(
        &app,
        reqwest::Method::PATCH,
        &format!("/Users/{bob}"),
        Some(&token),
        Some(patch(
            json!([{"op": "replace", "path": "password", "value": "123"}]),
        )),
    )
    .await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalidValue")),
        "{v}"
    );
    let (s, v) = scim(
        &app,
        reqwest::Method::PATCH,
        &format!("/Users/{bob}"),
        Some(&token),
        Some(patch(
            json!([{"op": "replace", "path": "password", "value": PASSWORD}]),
        )),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v.get("password").is_none(),
        "a password is never returned: {v}"
    );
    let rp = rp(&app, "rp", false).await;
    let (t, _) = crate::oidc::tokens_for_user(&app, &rp, "bob", &["roles", "groups"]).await;
    let at = payload(t["access_token"].as_str().unwrap());
    assert_eq!(at["roles"], json!(["sales-reader"]));
    assert_eq!(at["groups"], json!(["Sales"]));

    // Every change is audited with the provisioning client as the actor.
    let n: i64 = app
        .svc
        .db
        .run(|c| {
            use diesel::prelude::*;
            use vigil::store::schema::audit_log;
            Ok(audit_log::table
                .filter(audit_log::actor.eq("client:hr"))
                .count()
                .get_result(c)?)
        })
        .await
        .unwrap();
    assert!(n >= 30, "{n} audit entries by client:hr");
    // An account provisioned without a password cannot sign in with any (a new browser)...
    let browser = crate::helpers::client(app.port);
    for attempt in ["", "!provisioned-without-password", PASSWORD] {
        let r = login_form(&app, &browser, "load-01", attempt).await;
        assert_ne!(r.status(), StatusCode::SEE_OTHER, "{attempt:?}");
    }
    // ...until an admin (here the CLI's flow) sets one.
    vigil::flow::accounts::set_password(
        &app.svc,
        &actor(),
        app.svc.clock.now(),
        "load-01",
        SecretString::from(PASSWORD.to_owned()),
    )
    .await
    .unwrap();
    let r = login_form(&app, &browser, "load-01", PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "signed in once a password is set"
    );
}
on_both_backends!(
    an_independent_client_provisions_what_applications_see,
    super::an_independent_client_provisions_what_applications_see
);

async fn scim2_tester_finds_nothing_wrong(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    let token = hr_token(&app).await;
    let out = check(&app, "tester", &token, &[]).await;
    assert!(out.contains("SUCCESS"), "{out}");
}
on_both_backends!(
    scim2_tester_finds_nothing_wrong,
    super::scim2_tester_finds_nothing_wrong
);

async fn deprovisioning_ends_a_live_refresh_token(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["offline_access"]).await;
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    let access_token = t["access_token"].as_str().unwrap().to_owned();
    let token = hr_token(&app).await;
    let alice = id_of(&app, &token, "alice").await;

    check(&app, "deprovision", &token, &[&alice]).await;
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the access token ends too"
    );
    let r = app.login("alice", PASSWORD).await;
    assert_ne!(
        r.status(),
        StatusCode::SEE_OTHER,
        "a deactivated account cannot sign in"
    );

    // Deleted outright: gone, and so is what it held.
    app.add_user("bob", false).await;
    let bob = id_of(&app, &token, "bob").await;
    check(&app, "deprovision", &token, &[&bob, "--delete"]).await;
    let (s, v) = scim(
        &app,
        reqwest::Method::GET,
        &format!("/Users/{bob}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}
on_both_backends!(
    deprovisioning_ends_a_live_refresh_token,
    super::deprovisioning_ends_a_live_refresh_token
);

async fn malformed_requests_get_scim_errors_never_a_5xx(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    let token = hr_token(&app).await;
    let t = Some(token.as_str());
    use reqwest::Method as M;
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann",
                      "emails": [{"value": "ann@example.com", "primary": true}]});
    let (s, created) = scim(&app, M::POST, "/Users", t, Some(user.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let ann = created["id"].as_str().unwrap().to_owned();
    // (method, path, body, status, scimType)
    type Case<'a> = (M, String, Option<Value>, u16, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            M::POST,
            "/Users".into(),
            Some(user.clone()),
            409,
            Some("uniqueness"),
        ),
        (
            M::POST,
            "/Users".into(),
            Some(json!({"emails": []})),
            400,
            Some("invalidValue"),
        ),
        (
            M::POST,
            "/Users".into(),
            Some(json!({"userName": "Not Allowed!"})),
            400,
            Some("invalidValue"),
        ),
        (
            M::POST,
            "/Users".into(),
            Some(json!({"userName": "x", "emails": [{"value": "nope"}]})),
            400,
            Some("invalidValue"),
        ),
        (
            M::POST,
            "/Users".into(),
            Some(json!([1, 2])),
            400,
            Some("invalidSyntax"),
        ),
        (
            M::POST,
            "/Users".into(),
            Some(json!({"userName": {"nested": true}})),
            400,
            Some("invalidValue"),
        ),
        (
            M::GET,
            "/Users?filter=userName%20eq".into(),
            None,
            400,
            Some("invalidFilter"),
        ),
        (
            M::GET,
            "/Users?filter=title%20eq%20%22x%22".into(),
            None,
            400,
            Some("invalidFilter"),
        ),
        (
            M::GET,
            "/Users?startIndex=abc".into(),
            None,
            400,
            Some("invalidValue"),
        ),
        (
            M::GET,
            format!("/Users?filter={}", "(".repeat(3000)),
            None,
            400,
            Some("invalidFilter"),
        ),
        (
            M::PATCH,
            format!("/Users/{ann}"),
            Some(json!({"Operations": []})),
            400,
            Some("invalidSyntax"),
        ),
        (
            M::PATCH,
            format!("/Users/{ann}"),
            Some(patch(json!([{"op": "remove"}]))),
            400,
            Some("noTarget"),
        ),
        (
            M::PATCH,
            format!("/Users/{ann}"),
            Some(patch(
                json!([{"op": "replace", "path": "emails[", "value": 1}]),
            )),
            400,
            Some("invalidPath"),
        ),
        (
            M::PATCH,
            format!("/Users/{ann}"),
            Some(patch(json!([{"op": "remove", "path": "userName"}]))),
            400,
            Some("invalidValue"),
        ),
        (
            M::PATCH,
            format!("/Users/{ann}"),
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
            )),
            400,
            Some("invalidValue"),
        ),
        (M::GET, "/Users/no-such-id".into(), None, 404, None),
        (M::DELETE, "/Users/no-such-id".into(), None, 404, None),
        (
            M::POST,
            "/Groups".into(),
            Some(json!({"displayName": "G", "members": [{"value": "no-such-user"}]})),
            400,
            Some("invalidValue"),
        ),
        (
            M::POST,
            "/Groups".into(),
            Some(json!({"displayName": "G", "members": [{"value": ann, "type": "Group"}]})),
            400,
            Some("invalidValue"),
        ),
        (M::GET, "/Bogus".into(), None, 404, None),
        (M::DELETE, "/ServiceProviderConfig".into(), None, 405, None),
    ];
    for (m, path, body, status, ty) in cases {
        let (s, v) = scim(&app, m.clone(), &path, t, body).await;
        assert_eq!(s.as_u16(), status, "{m} {path}: {v}");
        assert_eq!(v["scimType"].as_str(), ty, "{m} {path}: {v}");
        assert_eq!(v["status"], status.to_string(), "{m} {path}: {v}");
        assert_eq!(
            v["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
    }
    // Not JSON, the wrong media type, too big.
    for (ct, body, status) in [
        (SCIM, "{not json".to_owned(), 400),
        ("text/plain", "{}".to_owned(), 415),
        (
            SCIM,
            format!("{{\"userName\": \"{}\"}}", "a".repeat(2 << 20)),
            413,
        ),
    ] {
        let r = app
            .http
            .post(app.url("/scim/v2/Users"))
            .bearer_auth(&token)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], status.to_string());
    }
}
on_both_backends!(
    malformed_requests_get_scim_errors_never_a_5xx,
    super::malformed_requests_get_scim_errors_never_a_5xx
);

/// The attacks: another client's token, a user's token, a provisioning client's token without
/// the scope, a token outliving its client; and a provisioning client reaching for the console
/// (changing an admin, joining a console group, disabling the last admin).
async fn only_a_provisioning_token_provisions_and_never_the_console(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("root", true).await;
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let token = hr_token(&app).await;
    use reqwest::Method as M;

    // No token, a forged one, a user's, a client's without the scope or not provisioning.
    let (s, v) = scim(&app, M::GET, "/Users", None, None).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("401"))
    );
    let (s, _) = scim(&app, M::GET, "/Users", Some("e30.e30.e30"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["scim"]).await;
    let user_token = t["access_token"].as_str().unwrap();
    let (s, _) = scim(&app, M::GET, "/Users", Some(user_token), None).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a user's token does not provision"
    );
    machine_client(&app, "reports", false).await;
    let r = client_token(&app, "reports", "scim").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_scope");
    let r = client_token(&app, "reports", "reports.read").await;
    let other: Value = r.json().await.unwrap();
    let (s, _) = scim(&app, M::GET, "/Users", other["access_token"].as_str(), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = client_token(&app, "hr", "other").await;
    let unscoped: Value = r.json().await.unwrap();
    let (s, _) = scim(
        &app,
        M::GET,
        "/Users",
        unscoped["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the scim scope is needed");

    // Staff: not changed, not joined to a console group; de-provisioned, but never the last
    // admin.
    let t = Some(token.as_str());
    let root = id_of(&app, &token, "root").await;
    let alice = id_of(&app, &token, "alice").await;
    for op in [
        json!({"op": "replace", "path": "password", "value": "a brand new admin password"}),
        json!({"op": "replace", "path": "displayName", "value": "Owned"}),
        json!({"op": "replace", "path": "emails", "value": [{"value": "evil@example.com"}]}),
    ] {
        let (s, v) = scim(
            &app,
            M::PATCH,
            &format!("/Users/{root}"),
            t,
            Some(patch(json!([op]))),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    }
    let (s, v) = scim(
        &app,
        M::PATCH,
        &format!("/Users/{root}"),
        t,
        Some(patch(
            json!([{"op": "replace", "path": "active", "value": false}]),
        )),
    )
    .await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (StatusCode::CONFLICT, None),
        "{v}"
    );
    let (s, _) = scim(&app, M::DELETE, &format!("/Users/{root}"), t, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "the last admin stays");
    access::create_group(&app.svc, &actor(), app.svc.clock.now(), "Operators", "")
        .await
        .unwrap();
    access::set_grant(
        &app.svc,
        &actor(),
        app.svc.clock.now(),
        "vigil",
        "helpdesk",
        Grantee::Group("Operators".into()),
        true,
    )
    .await
    .unwrap();
    let (s, v) = scim(
        &app,
        M::GET,
        "/Groups?filter=displayName%20eq%20%22operators%22",
        t,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let ops = v["Resources"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = scim(
        &app,
        M::PATCH,
        &format!("/Groups/{ops}"),
        t,
        Some(patch(
            json!([{"op": "add", "path": "members", "value": [{"value": alice}]}]),
        )),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a console group is the admins' to change"
    );
    let (s, _) = scim(&app, M::DELETE, &format!("/Groups/{ops}"), t, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let access = vigil::flow::access::of_user(&app.svc, &alice)
        .await
        .unwrap();
    assert!(access.groups.is_empty(), "{:?}", access.groups);

    // The client removed: its token stops at once.
    vigil::flow::clients::remove(&app.svc, &actor(), app.svc.clock.now(), "hr")
        .await
        .unwrap();
    let (s, _) = scim(&app, M::GET, "/Users", t, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
on_both_backends!(
    only_a_provisioning_token_provisions_and_never_the_console,
    super::only_a_provisioning_token_provisions_and_never_the_console
);

/// `vigil client add … --provisioning` (the README's worked example) makes a client that gets
/// the `scim` scope; without the flag the same client does not.
async fn the_cli_registers_a_provisioning_client(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    let db = app._db.url_string();
    for (id, flag) in [("hr", true), ("plain", false)] {
        let mut args = vec![
            "client",
            "add",
            id,
            "--grant",
            "client_credentials",
            "--secret-stdin",
        ];
        if flag {
            args.push("--provisioning");
        }
        let o = crate::cli::run_with_env(&args, Some(HR_SECRET), &[("VIGIL_DATABASE_URL", &db)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let r = client_token(&app, "hr", "scim").await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    let (s, v) = scim(
        &app,
        reqwest::Method::GET,
        "/Users",
        t["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        client_token(&app, "plain", "scim").await.status(),
        StatusCode::BAD_REQUEST
    );
    // A provisioning client needs the grant it provisions with.
    let o = crate::cli::run_with_env(
        &[
            "client",
            "add",
            "web",
            "--redirect-uri",
            "https://web.example.com/cb",
            "--grant",
            "authorization_code",
            "--provisioning",
        ],
        None,
        &[("VIGIL_DATABASE_URL", &db)],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("client_credentials"));
}
on_both_backends!(
    the_cli_registers_a_provisioning_client,
    super::the_cli_registers_a_provisioning_client
);

/// Race: PATCHes at once are each applied to the resource as it is when they commit — twelve
/// members added at once are twelve members, and a rename racing a deactivation never
/// re-enables the account (before, each PATCH was applied to a copy read earlier, and the
/// last one to commit wrote its stale copy back).
async fn concurrent_patches_never_undo_each_other(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    let token = hr_token(&app).await;
    let t = Some(token.as_str());
    use reqwest::Method as M;
    let mut ids = Vec::new();
    for k in 0..12 {
        let (s, v) = scim(
            &app,
            M::POST,
            "/Users",
            t,
            Some(json!({"userName": format!("racer-{k}")})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (_, g) = scim(
        &app,
        M::POST,
        "/Groups",
        t,
        Some(json!({"displayName": "Racers"})),
    )
    .await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let gpath = format!("/Groups/{gid}");
    let adds = ids.iter().map(|uid| {
        let ops = json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]);
        scim(&app, M::PATCH, &gpath, t, Some(patch(ops)))
    });
    for (s, v) in futures_util::future::join_all(adds).await {
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, g) = scim(&app, M::GET, &format!("/Groups/{gid}"), t, None).await;
    assert_eq!(g["members"].as_array().unwrap().len(), 12, "{g}");

    let target = ids[0].clone();
    let mut patches = vec![json!([{"op": "replace", "path": "active", "value": false}])];
    for k in 0..8 {
        patches.push(json!([{"op": "replace", "path": "displayName", "value": format!("R{k}")}]));
    }
    let upath = format!("/Users/{target}");
    let all = patches
        .into_iter()
        .map(|ops| scim(&app, M::PATCH, &upath, t, Some(patch(ops))));
    for (s, v) in futures_util::future::join_all(all).await {
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, u) = scim(&app, M::GET, &format!("/Users/{target}"), t, None).await;
    assert_eq!(u["active"], false, "the deactivation stands: {u}");
}
on_both_backends!(
    concurrent_patches_never_undo_each_other,
    super::concurrent_patches_never_undo_each_other
);
