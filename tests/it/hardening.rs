//! Findings of the security review, each pinned by a test that failed before its fix:
//! back-channel logout of a whole user (with retries and an audit trail), the typ of an
//! `id_token_hint`, introspection limited to the token's own client, bounded passkey bodies,
//! the purge of dead rows, anonymous passkey failures that write nothing, and consent
//! withdrawal that ends the app's tokens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use vigil::store::schema::{
    audit_log, auth_codes, authz_requests, login_failures, mfa_flows, sessions, signins,
};

use crate::helpers::{csrf_in, spawn_app, Backend, TestApp};
use crate::oidc::{
    add_client, hidden, location, password_at_login, payload, query, rp, sign_in_or_sso,
    tokens_for, urlencode, ClientSpec, REDIRECT, SECRET,
};
use crate::on_both_backends;

/// A relying party's back-channel endpoint: records each POSTed `logout_token` by path, and
/// answers each path's first `fail[path]` requests with `fail_status`.
#[derive(Default)]
struct Sink {
    received: Mutex<Vec<(String, String, Instant)>>,
    fail: Mutex<HashMap<String, (usize, u16)>>,
    hits: AtomicUsize,
}

impl Sink {
    fn tokens_for(&self, name: &str) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, t, _)| t.clone())
            .collect()
    }
}

/// Start the RP's endpoint on 127.0.0.1:0; returns its base URL (`http://127.0.0.1:port`).
fn start_rp_endpoint(sink: Arc<Sink>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        let sink = sink.clone();
        actix_web::App::new().route(
            "/bc/{name}",
            actix_web::web::post().to(
                move |path: actix_web::web::Path<String>,
                      f: actix_web::web::Form<HashMap<String, String>>| {
                    let sink = sink.clone();
                    async move {
                        let name = path.into_inner();
                        sink.hits.fetch_add(1, Ordering::SeqCst);
                        let token = f.get("logout_token").cloned().unwrap_or_default();
                        sink.received
                            .lock()
                            .unwrap()
                            .push((name.clone(), token, Instant::now()));
                        let mut fail = sink.fail.lock().unwrap();
                        if let Some((left, status)) = fail.get_mut(&name) {
                            if *left > 0 {
                                *left -= 1;
                                return actix_web::HttpResponse::build(
                                    actix_web::http::StatusCode::from_u16(*status).unwrap(),
                                )
                                .finish();
                            }
                        }
                        actix_web::HttpResponse::Ok().finish()
                    }
                },
            ),
        )
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .run();
    actix_web::rt::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// The details of every audit entry with this action, in order.
async fn audited(app: &TestApp, action: &'static str) -> Vec<(Option<String>, Value)> {
    app.svc
        .db
        .run(move |c| {
            let rows: Vec<(Option<String>, String)> = audit_log::table
                .filter(audit_log::action.eq(action))
                .order(audit_log::seq.asc())
                .select((audit_log::target, audit_log::details))
                .load(c)
                .map_err(vigil::store::StoreError::from)?;
            Ok(rows
                .into_iter()
                .map(|(t, d)| (t, serde_json::from_str(&d).unwrap()))
                .collect())
        })
        .await
        .unwrap()
}

/// Wait (≤ 15 s) until `n` back-channel deliveries have been audited.
async fn wait_for_deliveries(app: &TestApp, n: usize) -> Vec<(Option<String>, Value)> {
    for _ in 0..150 {
        let got = audited(app, "logout.backchannel").await;
        if got.len() >= n {
            return got;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} back-channel deliveries were not audited in time");
}

/// Verify a logout token as an RP would: the key from the provider's /jwks (over HTTP), the
/// header's alg, `iss` and `aud`. Returns (header, claims).
async fn verify_logout_token(app: &TestApp, token: &str, aud: &str) -> (Value, Value) {
    let jwks: jsonwebtoken::jwk::JwkSet = app.get("/jwks").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in /jwks");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[&app.base]);
    v.set_audience(&[aud]);
    v.set_required_spec_claims(&["iss", "aud", "exp", "iat"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("signature, iss, aud and exp verify against /jwks")
        .claims;
    let raw_header = crate::oidc::header(token);
    (raw_header, claims)
}

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

async fn backchannel_user_reaches_every_client_of_the_user(b: Backend) {
    let sink = Arc::new(Sink::default());
    let rp_base = start_rp_endpoint(sink.clone());
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    for (id, alg, bc) in [
        ("old", None, true),
        ("rp", None, true),
        ("rp2", Some("ES256"), true),
        ("plain", None, false),
    ] {
        add_client(
            &app,
            ClientSpec {
                id,
                alg,
                backchannel: bc.then(|| format!("{rp_base}/bc/{id}")),
                ..Default::default()
            },
        )
        .await;
    }
    // A code from 31 days ago: nothing it issued can still be alive, so "old" is not told.
    let old = rp(&app, "old", false).await;
    sign_in_or_sso(&app, &old.start(&[], &[]).url).await;
    app.clock.advance_secs(31 * 24 * 3600);

    let rp1 = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp1, &["offline_access"]).await;
    let sub = payload(t["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in ["rp2", "plain"] {
        let c = rp(&app, id, false).await;
        let back = sign_in_or_sso(&app, &c.start(&[], &[]).url).await;
        assert!(query(&back).contains_key("code"), "{back}");
    }

    let tasks = vigil::oidc::logout::backchannel_user(&app.svc, app.svc.clock.now(), &sub).await;
    assert_eq!(tasks.len(), 2, "rp and rp2; not old, not plain");
    for t in tasks {
        t.await.unwrap();
    }
    let audits = audited(&app, "logout.backchannel").await;
    assert_eq!(audits.len(), 2);
    assert!(sink.tokens_for("old").is_empty(), "old codes do not count");
    assert!(sink.tokens_for("plain").is_empty());

    for (client, alg) in [("rp", "RS256"), ("rp2", "ES256")] {
        let tokens = sink.tokens_for(client);
        assert_eq!(tokens.len(), 1, "{client}");
        let (header, claims) = verify_logout_token(&app, &tokens[0], client).await;
        assert_eq!(header["typ"], "logout+jwt");
        assert_eq!(header["alg"], alg, "the client's ID token algorithm");
        assert_eq!(claims["sub"], sub);
        assert_eq!(claims["aud"], client);
        assert!(claims["events"][BACKCHANNEL_EVENT].is_object());
        assert!(claims["jti"].is_string() && claims["iat"].is_i64());
        assert!(
            claims.get("sid").is_none(),
            "no sid: every session of the user at the RP ends"
        );
        assert!(claims.get("nonce").is_none(), "§2.4: no nonce");
        let (target, details) = audits
            .iter()
            .find(|(_, d)| d["client_id"] == client)
            .unwrap()
            .clone();
        assert_eq!(target.as_deref(), Some(sub.as_str()));
        assert_eq!(details["delivered"], true);
        assert_eq!(details["attempts"], 1);
        assert_eq!(details["last_status"], 200);
    }
}
on_both_backends!(
    backchannel_user_reaches_every_client_of_the_user,
    super::backchannel_user_reaches_every_client_of_the_user
);

async fn backchannel_retries_until_delivered_and_audits(b: Backend) {
    let sink = Arc::new(Sink::default());
    sink.fail.lock().unwrap().insert("rp".into(), (2, 500));
    // A 400 means the RP refused this token: asking again would not change its mind.
    sink.fail
        .lock()
        .unwrap()
        .insert("refuses".into(), (usize::MAX, 400));
    let rp_base = start_rp_endpoint(sink.clone());
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    for id in ["rp", "refuses"] {
        add_client(
            &app,
            ClientSpec {
                id,
                backchannel: Some(format!("{rp_base}/bc/{id}")),
                ..Default::default()
            },
        )
        .await;
    }
    let rp1 = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp1, &[]).await;
    let idt = t["id_token"].as_str().unwrap().to_owned();
    let id_claims = payload(&idt);
    let other = rp(&app, "refuses", false).await;
    sign_in_or_sso(&app, &other.start(&[], &[]).url).await;

    // RP-initiated logout with a valid hint ends the session at once.
    let started = Instant::now();
    let r = app
        .get(&format!(
            "/logout?id_token_hint={idt}&post_logout_redirect_uri={}&state=s",
            urlencode("https://rp.example.com/bye")
        ))
        .await;
    assert_eq!(location(&r), "https://rp.example.com/bye?state=s");

    let audits = wait_for_deliveries(&app, 2).await;
    let of = |c: &str| {
        audits
            .iter()
            .find(|(_, d)| d["client_id"] == c)
            .unwrap()
            .1
            .clone()
    };
    let ok = of("rp");
    assert_eq!(ok["delivered"], true, "{ok}");
    assert_eq!(ok["attempts"], 3, "500, 500, then 200");
    assert_eq!(ok["last_status"], 200);
    assert_eq!(ok["sid"], id_claims["sid"]);
    let refused = of("refuses");
    assert_eq!(refused["delivered"], false, "{refused}");
    assert_eq!(refused["attempts"], 1, "a 4xx is not retried");
    assert_eq!(refused["last_status"], 400);

    let received: Vec<(String, String, Instant)> = sink
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _, _)| n == "rp")
        .cloned()
        .collect();
    assert_eq!(received.len(), 3);
    // Backing off: ≥ 0.5 s then ≥ 1 s between attempts; all three within 4 s.
    assert!(received[1].2 - received[0].2 >= Duration::from_millis(450));
    assert!(received[2].2 - received[1].2 >= Duration::from_millis(950));
    assert!(received[2].2 - started < Duration::from_secs(4));
    let (header, claims) = verify_logout_token(&app, &received[2].1, "rp").await;
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert_eq!(claims["sub"], id_claims["sub"]);
}
on_both_backends!(
    backchannel_retries_until_delivered_and_audits,
    super::backchannel_retries_until_delivered_and_audits
);

async fn an_access_token_is_no_id_token_hint(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &[]).await;
    let (at, idt) = (
        t["access_token"].as_str().unwrap(),
        t["id_token"].as_str().unwrap(),
    );
    assert_eq!(payload(at)["aud"], "rp", "same aud and sub as the ID token");

    let r = app
        .http
        .get(rp.start(&[], &[("id_token_hint", at)]).url.as_str())
        .send()
        .await
        .unwrap();
    let back = location(&r);
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(query(&back)["error"], "invalid_request");
    assert!(!query(&back).contains_key("code"));
    // The real ID token still works as a hint.
    let r = app
        .http
        .get(rp.start(&[], &[("id_token_hint", idt)]).url.as_str())
        .send()
        .await
        .unwrap();
    assert!(query(&location(&r)).contains_key("code"));

    // At /logout an access token neither ends the session nor earns a redirect.
    let r = app
        .get(&format!(
            "/logout?id_token_hint={at}&post_logout_redirect_uri={}&state=x",
            urlencode("https://rp.example.com/bye")
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(location(&r).is_empty());
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::OK,
        "still signed in"
    );
}
on_both_backends!(
    an_access_token_is_no_id_token_hint,
    super::an_access_token_is_no_id_token_hint
);

async fn introspect_as(app: &TestApp, client: &str, token: &str) -> Value {
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(client, Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn introspection_answers_only_the_tokens_client(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    add_client(
        &app,
        ClientSpec {
            id: "other",
            ..Default::default()
        },
    )
    .await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["offline_access"]).await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(introspect_as(&app, "rp", at).await["active"], true);
    assert_eq!(introspect_as(&app, "rp", rt).await["active"], true);
    // Another confidential client learns nothing, not even that the tokens exist.
    assert_eq!(
        introspect_as(&app, "other", at).await,
        json!({ "active": false })
    );
    assert_eq!(
        introspect_as(&app, "other", rt).await,
        json!({ "active": false })
    );

    // And the other way round: other's client-credentials token is none of rp's business.
    let cc: Value = app
        .http
        .post(app.url("/token"))
        .basic_auth("other", Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cc_at = cc["access_token"].as_str().unwrap();
    assert_eq!(introspect_as(&app, "other", cc_at).await["active"], true);
    assert_eq!(
        introspect_as(&app, "rp", cc_at).await,
        json!({ "active": false })
    );
}
on_both_backends!(
    introspection_answers_only_the_tokens_client,
    super::introspection_answers_only_the_tokens_client
);

/// The passwordless button's CSRF token, from the login page `http` (signed out) sees.
async fn passkey_csrf_for(app: &TestApp, http: &reqwest::Client) -> String {
    let page = http
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&page);
    let sel = scraper::Selector::parse("button[data-webauthn=authenticate]").unwrap();
    doc.select(&sel)
        .next()
        .expect("Sign in with a passkey")
        .value()
        .attr("data-csrf")
        .unwrap()
        .to_owned()
}

async fn passkey_csrf(app: &TestApp) -> String {
    passkey_csrf_for(app, &app.http).await
}

#[actix_web::test]
async fn passkey_json_bodies_are_bounded() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let csrf = passkey_csrf(&app).await;
    let big = json!({ "flow": "x", "credential": { "id": "A".repeat(100 * 1024) } });
    for path in [
        "/login/passkey/finish",
        "/login/mfa/webauthn/finish",
        "/account/passkeys/finish",
    ] {
        let started = Instant::now();
        let r = app
            .http
            .post(app.url(path))
            .header("x-csrf-token", &csrf)
            .json(&big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let v: Value = r.json().await.expect("a JSON error body");
        assert!(v["error"].is_string(), "{v}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // Malformed or mistyped bodies: a JSON 400, never a 5xx or actix's plain text.
    for (ctype, body) in [
        ("application/json", "{\"flow\": "),
        ("application/json", "[1, 2, 3]"),
        ("text/plain", "hello"),
    ] {
        let r = app
            .http
            .post(app.url("/login/passkey/finish"))
            .header("x-csrf-token", &csrf)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{ctype} {body}");
        let v: Value = r.json().await.expect("a JSON error body");
        assert!(v["error"].is_string(), "{v}");
    }
}

async fn count_rows(app: &TestApp) -> (i64, i64, i64, i64) {
    app.svc
        .db
        .run(|c| {
            let n = |r: QueryResult<i64>| r.map_err(vigil::store::StoreError::from);
            Ok((
                n(authz_requests::table.count().get_result(c))?,
                n(mfa_flows::table.count().get_result(c))?,
                n(auth_codes::table.count().get_result(c))?,
                n(login_failures::table.count().get_result(c))?,
            ))
        })
        .await
        .unwrap()
}

async fn sweep(app: &TestApp) -> vigil::store::housekeeping::Swept {
    vigil::flow::housekeeping::sweep(&app.svc, app.svc.clock.now())
        .await
        .unwrap()
}

async fn housekeeping_purges_only_dead_rows(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    // A used code (exchanged) and an unused one (never exchanged), each with its request.
    tokens_for(&app, &rp, &["offline_access"]).await;
    sign_in_or_sso(&app, &rp.start(&[], &[]).url).await;
    // Anonymous traffic: an abandoned /authorize and a passkey ceremony begun and dropped.
    let anon = crate::helpers::client(app.port);
    anon.get(rp.start(&[], &[]).url.as_str())
        .send()
        .await
        .unwrap();
    let csrf = passkey_csrf_for(&app, &anon).await;
    let r = anon
        .post(app.url("/login/passkey/begin"))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let before = count_rows(&app).await;
    assert!(
        before.0 >= 1 && before.1 >= 1 && before.2 == 2,
        "{before:?}"
    );

    // Nothing is dead yet.
    assert_eq!(sweep(&app).await.total(), 0);
    assert_eq!(count_rows(&app).await, before);

    // 31 minutes on: requests (30 min) and ceremonies (5 min) have expired; a fresh request is
    // alive; the codes expired but stay (an unused one for a day, a used one far longer).
    app.clock.advance_secs(31 * 60);
    anon.get(rp.start(&[], &[]).url.as_str())
        .send()
        .await
        .unwrap();
    let s = sweep(&app).await;
    assert_eq!(s.authz_requests as i64, before.0);
    assert_eq!(s.mfa_flows as i64, before.1);
    assert_eq!(s.auth_codes, 0);
    let (reqs, flows, codes, _) = count_rows(&app).await;
    assert_eq!((reqs, flows, codes), (1, 0, 2), "the live request is kept");

    // A day on: the unused code goes; the used one stays while its tokens may be revoked.
    app.clock.advance_secs(24 * 3600);
    let s = sweep(&app).await;
    assert_eq!(s.auth_codes, 1);
    // Alice's session has ended (idle) but its used code and refresh token still name it.
    assert_eq!(s.sessions, 0, "{s:?}");
    let used: Vec<Option<i64>> = app
        .svc
        .db
        .run(|c| {
            auth_codes::table
                .select(auth_codes::used_at)
                .load(c)
                .map_err(vigil::store::StoreError::from)
        })
        .await
        .unwrap();
    assert!(used.len() == 1 && used[0].is_some(), "{used:?}");
    // Past the refresh tokens' absolute lifetime it goes too, with the refresh token family
    // (nothing of it can be redeemed any more); the issuance log keeps its line.
    app.svc.token_log.flush().await;
    app.clock.advance_secs(30 * 24 * 3600);
    let s = sweep(&app).await;
    assert_eq!(
        (s.auth_codes, s.refresh_tokens, s.token_log, s.sessions),
        (1, 1, 0, 1),
        "{s:?}: with nothing naming it any more, the ended session goes too"
    );
    assert_eq!(count_rows(&app).await, (0, 0, 0, 0));
    // The issuance log keeps a line 90 days (VIGIL_TOKEN_LOG_RETENTION_DAYS) past its token.
    app.clock.advance_secs(60 * 24 * 3600);
    let s = sweep(&app).await;
    assert_eq!(s.token_log, 1, "{s:?}");
}
on_both_backends!(
    housekeeping_purges_only_dead_rows,
    super::housekeeping_purges_only_dead_rows
);

/// A refresh token whose session row is gone (purged, or its row deleted by hand) is refused:
/// a session that does not exist counts as ended, never as live.
async fn a_refresh_of_a_vanished_session_is_refused(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["offline_access"]).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let gone = app
        .svc
        .db
        .run(|c| {
            diesel::delete(sessions::table)
                .execute(c)
                .map_err(vigil::store::StoreError::from)
        })
        .await
        .unwrap();
    assert_eq!(gone, 1);
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}
on_both_backends!(
    a_refresh_of_a_vanished_session_is_refused,
    super::a_refresh_of_a_vanished_session_is_refused
);

/// More dead rows than one batch holds: the purge loops until all are gone, live ones stay.
async fn housekeeping_works_in_batches(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    add_client(&app, ClientSpec::default()).await;
    let now = app.svc.clock.now().micros();
    let dead = vigil::store::housekeeping::BATCH as usize + 7;
    app.svc
        .db
        .run(move |c| {
            let row = |i: usize, expires_at: i64| vigil::store::authz::AuthzRequest {
                id: format!("req-{i:06}"),
                client_id: "rp".into(),
                redirect_uri: REDIRECT.into(),
                scope: "openid".into(),
                state: None,
                nonce: None,
                code_challenge: None,
                response_mode: "query".into(),
                prompt: String::new(),
                max_age: None,
                acr_values: None,
                login_hint: None,
                created_at: now,
                expires_at,
                device_id: None,
                assessed_session: None,
            };
            vigil::store::transaction(c, |c| {
                for i in 0..dead {
                    vigil::store::authz::insert_request(c, &row(i, now - 1))?;
                }
                vigil::store::authz::insert_request(c, &row(dead, now + 60_000_000))
            })
        })
        .await
        .unwrap();
    let s = sweep(&app).await;
    assert_eq!(s.authz_requests, dead);
    assert_eq!(count_rows(&app).await.0, 1);
}
on_both_backends!(
    housekeeping_works_in_batches,
    super::housekeeping_works_in_batches
);

async fn anonymous_garbage_passkey_writes_no_audit(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    let csrf = passkey_csrf(&app).await;
    let counts = |app: &TestApp| {
        let db = app.svc.db.clone();
        async move {
            db.run(|c| {
                let n = |r: QueryResult<i64>| r.map_err(vigil::store::StoreError::from);
                Ok((
                    n(audit_log::table.count().get_result(c))?,
                    n(signins::table.count().get_result(c))?,
                ))
            })
            .await
            .unwrap()
        }
    };
    let before = counts(&app).await;
    for credential in [json!({ "id": "garbage" }), json!("not even an object")] {
        let begun: Value = app
            .http
            .post(app.url("/login/passkey/begin"))
            .header("x-csrf-token", &csrf)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = app
            .http
            .post(app.url("/login/passkey/finish"))
            .header("x-csrf-token", &csrf)
            .json(&json!({ "flow": begun["flow"], "credential": credential }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    }
    assert_eq!(
        counts(&app).await,
        before,
        "no audit entry and no sign-in row for a response that names nobody"
    );
    // It still counts against the address for throttling.
    assert_eq!(count_rows(&app).await.3, 2);
}
on_both_backends!(
    anonymous_garbage_passkey_writes_no_audit,
    super::anonymous_garbage_passkey_writes_no_audit
);

async fn withdrawing_consent_ends_the_apps_tokens(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(
        &app,
        ClientSpec {
            first_party: false,
            ..Default::default()
        },
    )
    .await;
    let rp = rp(&app, "rp", false).await;
    let s = rp.start(&["email", "offline_access"], &[]);
    let r = password_at_login(&app, &s.url, "alice").await;
    assert_eq!(r.status(), StatusCode::OK, "consent page");
    let html = r.text().await.unwrap();
    let r = app
        .http
        .post(app.url("/consent"))
        .form(&[
            ("csrf_token", csrf_in(&html)),
            ("tx", hidden(&html, "tx")),
            ("decision", "allow".into()),
        ])
        .send()
        .await
        .unwrap();
    let code = query(&location(&r))["code"].clone();
    let t: Value = app
        .http
        .post(app.url("/token"))
        .basic_auth("rp", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", s.verifier.secret()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (at, rt) = (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_owned(),
    );
    let userinfo = |token: String| {
        let app = &app;
        async move {
            app.http
                .get(app.url("/userinfo"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(userinfo(at.clone()).await, StatusCode::OK);

    let account = app.get("/account").await.text().await.unwrap();
    let r = app
        .http
        .post(app.url("/account/consents/revoke"))
        .form(&[
            ("csrf_token", csrf_in(&account).as_str()),
            ("client_id", "rp"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(userinfo(at).await, StatusCode::UNAUTHORIZED);
    let audits = audited(&app, "consent.revoked").await;
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].0.as_deref(), Some("rp"));
    assert_eq!(audits[0].1["refresh_tokens_revoked"], 1);
    assert_eq!(audits[0].1["grants_revoked"], 1);
}
on_both_backends!(
    withdrawing_consent_ends_the_apps_tokens,
    super::withdrawing_consent_ends_the_apps_tokens
);

/// "This wasn't me" is containment: the application that holds the attacker's tokens receives a
/// back-channel logout token for the user, audited as delivered.
async fn a_report_tells_the_applications(b: Backend) {
    let sink = Arc::new(Sink::default());
    let rp_base = start_rp_endpoint(sink.clone());
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(
        &app,
        ClientSpec {
            id: "rp",
            backchannel: Some(format!("{rp_base}/bc/rp")),
            ..Default::default()
        },
    )
    .await;
    let rp1 = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp1, &["openid", "offline_access"]).await;
    let sub = payload(t["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let uid = sub.clone();
    let signin = app
        .svc
        .db
        .run(move |c| vigil::store::signins::recent_for_user(c, &uid, 1))
        .await
        .unwrap()
        .remove(0)
        .id;
    let token = csrf_in(&app.get("/account").await.text().await.unwrap());
    let r = app
        .http
        .post(app.url("/account/signins/report"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("signin_id", signin.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let audits = wait_for_deliveries(&app, 1).await;
    assert_eq!(audits[0].1["delivered"], true, "{:?}", audits[0]);
    let tokens = sink.tokens_for("rp");
    assert_eq!(tokens.len(), 1);
    let (header, claims) = verify_logout_token(&app, &tokens[0], "rp").await;
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(claims["sub"], sub);
    assert!(claims["events"][BACKCHANNEL_EVENT].is_object());
}
on_both_backends!(
    a_report_tells_the_applications,
    super::a_report_tells_the_applications
);

/// `/metrics` is for the operator: the loopback interface itself, or a scraper with the token.
/// A request relayed by a reverse proxy on the same host arrives from loopback too, so a
/// forwarded request is refused without the token (it would otherwise publish the metrics to
/// anyone behind the proxy).
async fn metrics_are_for_the_operator_only(b: Backend) {
    let app = crate::helpers::spawn_app(b).await.unwrap();
    let get = |header: Option<(&'static str, &'static str)>| {
        let (http, url) = (app.http.clone(), app.url("/metrics"));
        async move {
            let mut r = http.get(url);
            if let Some((k, v)) = header {
                r = r.header(k, v);
            }
            r.send().await.unwrap()
        }
    };
    let r = get(None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(body.contains("vigil_db_commits_total"), "{body}");
    assert!(body.contains("vigil_revocation_cache_age_seconds"));
    for h in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
    ] {
        assert_eq!(get(Some(h)).await.status(), StatusCode::NOT_FOUND, "{h:?}");
    }

    let app = crate::helpers::spawn_app_with(b, &[("VIGIL_METRICS_TOKEN", "scrape-token-1")])
        .await
        .unwrap();
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "the token is required once set"
    );
    let r = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .http
        .get(app.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .bearer_auth("scrape-token-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
on_both_backends!(
    metrics_are_for_the_operator_only,
    super::metrics_are_for_the_operator_only
);

/// `VIGIL_METRICS_BIND`: a second listener (an internal network's address) serves `/metrics`
/// and the health probes and nothing else, and the public listener no longer serves `/metrics`
/// at all, not even to loopback.
async fn metrics_on_their_own_listener(b: Backend) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let app = crate::helpers::spawn_app_with(b, &[("VIGIL_METRICS_BIND", bind.as_str())])
        .await
        .unwrap();
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/login").await.status(), StatusCode::OK);
    let inside = reqwest::Client::new();
    let at = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let r = inside.get(at("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("vigil_http_requests_total"));
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(
            inside.get(at(probe)).send().await.unwrap().status(),
            StatusCode::OK,
            "{probe}"
        );
    }
    for path in [
        "/login",
        "/.well-known/openid-configuration",
        "/admin",
        "/jwks",
    ] {
        assert_eq!(
            inside.get(at(path)).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{path} is not the operator's"
        );
    }
    let r = inside.post(at("/token")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
on_both_backends!(
    metrics_on_their_own_listener,
    super::metrics_on_their_own_listener
);
