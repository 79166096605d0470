//! Races over real HTTP on both backends: requests released together by a barrier so they
//! really overlap in the server and the database.
//!
//! - 8 redemptions of one code: exactly one 200, and the replay revokes what the winner got.
//! - 2 and 8 refreshes of one refresh token: exactly one rotation, no 5xx; with the default
//!   reuse interval (0) the duplicates are reuse and revoke the family; with an interval the
//!   duplicates are refused and the winner's tokens keep working.
//! - a refresh racing a revocation of the same token: once both answered, nothing either
//!   produced is active.
//! - one TOTP code submitted twice at once: accepted once.
//! - 200 parallel wrong passwords under a limit above 200: exactly 200 counted, then 429.
//! - 8 browsers signing in to one account at once: all of them get their tokens.

use std::sync::Arc;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Barrier;
use vigil::auth::totp;

use crate::helpers::{client, csrf_in, spawn_app_with, Backend, TestApp, PASSWORD};
use crate::mfa::{enrol_totp, sign_out};
use crate::oidc::{add_client, location, query, rp, sign_in_or_sso, ClientSpec, Rp, SECRET};
use crate::on_both_backends;

/// A code for `alice` at the client `rp` (signing in through the form, or by SSO), and the
/// PKCE verifier that goes with it.
pub async fn fresh_code(app: &TestApp, rp: &Rp) -> (String, String) {
    let s = rp.start(&["offline_access"], &[]);
    let back = sign_in_or_sso(app, &s.url).await;
    let code = query(&back)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {back}"));
    (code, s.verifier.secret().clone())
}

/// POST /token as the client `rp`; the status and the JSON body (Null when it is not JSON).
pub async fn post_token(
    http: &reqwest::Client,
    app: &TestApp,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let r = http
        .post(app.url("/token"))
        .basic_auth("rp", Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

pub async fn redeem(
    http: &reqwest::Client,
    app: &TestApp,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    post_token(
        http,
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", crate::oidc::REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub async fn refresh(http: &reqwest::Client, app: &TestApp, rt: &str) -> (StatusCode, Value) {
    post_token(
        http,
        app,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

/// Whether /introspect (as the client `rp`) says the token is active.
pub async fn active(http: &reqwest::Client, app: &TestApp, token: &str) -> bool {
    let r = http
        .post(app.url("/introspect"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["active"] == Value::Bool(true)
}

/// The status of GET /userinfo with the access token.
pub async fn userinfo(http: &reqwest::Client, app: &TestApp, at: &str) -> StatusCode {
    let r = http
        .get(app.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    let st = r.status();
    if st != StatusCode::OK {
        let h = format!("{:?}", r.headers().get("www-authenticate"));
        eprintln!("userinfo {st}: {h} {}", r.text().await.unwrap_or_default());
    }
    st
}

async fn revoke(http: &reqwest::Client, app: &TestApp, token: &str) -> StatusCode {
    http.post(app.url("/revoke"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .status()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_owned()
}

/// An app with alice and the confidential first-party client `rp`.
async fn app_with_rp(b: Backend, extra: &[(&str, &str)]) -> (Arc<TestApp>, Rp) {
    let app = spawn_app_with(b, extra).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    (Arc::new(app), rp)
}

/// Run `n` copies of `f` released together; their results in order.
async fn together<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (b, fut) = (barrier.clone(), f(i));
            actix_web::rt::spawn(async move {
                b.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn tally(statuses: &[StatusCode]) -> String {
    let mut m = std::collections::BTreeMap::new();
    for s in statuses {
        *m.entry(s.as_u16()).or_insert(0) += 1;
    }
    format!("{m:?}")
}

async fn eight_redemptions_of_one_code(b: Backend) {
    let (app, rp) = app_with_rp(b, &[]).await;
    let t0 = Instant::now();
    let rounds = 5;
    for round in 0..rounds {
        let (code, verifier) = fresh_code(&app, &rp).await;
        let results = together(8, |_| {
            let (app, code, verifier) = (app.clone(), code.clone(), verifier.clone());
            async move {
                let http = client(app.port);
                redeem(&http, &app, &code, &verifier).await
            }
        })
        .await;
        let statuses: Vec<StatusCode> = results.iter().map(|r| r.0).collect();
        assert!(
            statuses.iter().all(|s| !s.is_server_error()),
            "{statuses:?}"
        );
        let winners: Vec<&Value> = results
            .iter()
            .filter(|r| r.0 == StatusCode::OK)
            .map(|r| &r.1)
            .collect();
        assert_eq!(winners.len(), 1, "exactly one redemption: {statuses:?}");
        for (st, body) in results.iter().filter(|r| r.0 != StatusCode::OK) {
            assert_eq!(*st, StatusCode::BAD_REQUEST);
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
        // The replays revoked what the winner got: its access token and its refresh token.
        let won = winners[0];
        let http = client(app.port);
        let (at, rt) = (s(won, "access_token"), s(won, "refresh_token"));
        assert_eq!(
            userinfo(&http, &app, &at).await,
            StatusCode::UNAUTHORIZED,
            "round {round}: the winner's access token survived the replay"
        );
        assert!(!active(&http, &app, &at).await);
        assert!(!active(&http, &app, &rt).await);
        let (st, body) = refresh(&http, &app, &rt).await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        eprintln!("code race round {round}: {}", tally(&statuses));
    }
    eprintln!(
        "{b:?}: {rounds} rounds of 8 concurrent redemptions in {:?}",
        t0.elapsed()
    );
}
on_both_backends!(
    eight_redemptions_of_one_code,
    super::eight_redemptions_of_one_code
);

/// `n` concurrent refreshes of one token, `rounds` times; checks one rotation and no 5xx
/// every time and returns (the winner's tokens, the refreshed token) of each round.
async fn refresh_race(app: &Arc<TestApp>, rp: &Rp, n: usize) -> (Value, String) {
    let (code, verifier) = fresh_code(app, rp).await;
    let http = client(app.port);
    let (st, first) = redeem(&http, app, &code, &verifier).await;
    assert_eq!(st, StatusCode::OK, "{first}");
    let rt0 = s(&first, "refresh_token");
    let results = together(n, |_| {
        let (app, rt0) = (app.clone(), rt0.clone());
        async move {
            let http = client(app.port);
            refresh(&http, &app, &rt0).await
        }
    })
    .await;
    let statuses: Vec<StatusCode> = results.iter().map(|r| r.0).collect();
    assert!(
        statuses.iter().all(|s| !s.is_server_error()),
        "no 5xx: {statuses:?}"
    );
    let winners: Vec<&Value> = results
        .iter()
        .filter(|r| r.0 == StatusCode::OK)
        .map(|r| &r.1)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one rotation: {statuses:?}");
    for (st, body) in results.iter().filter(|r| r.0 != StatusCode::OK) {
        assert_eq!(*st, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
    eprintln!("{n} concurrent refreshes: {}", tally(&statuses));
    (winners[0].clone(), rt0)
}

/// Default interval 0: a concurrent duplicate is reuse, exactly as a later replay would be —
/// the family (the winner's new tokens included) is revoked.
async fn concurrent_refreshes_without_interval(b: Backend) {
    let (app, rp) = app_with_rp(b, &[]).await;
    let t0 = Instant::now();
    for n in [2, 8] {
        for _ in 0..3 {
            let (won, _) = refresh_race(&app, &rp, n).await;
            let http = client(app.port);
            let (at, rt) = (s(&won, "access_token"), s(&won, "refresh_token"));
            assert_eq!(userinfo(&http, &app, &at).await, StatusCode::UNAUTHORIZED);
            assert!(!active(&http, &app, &rt).await);
            let (st, body) = refresh(&http, &app, &rt).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        }
    }
    eprintln!(
        "{b:?}: refresh races without interval in {:?}",
        t0.elapsed()
    );
}
on_both_backends!(
    concurrent_refreshes_without_interval,
    super::concurrent_refreshes_without_interval
);

/// With a reuse interval, two workers of one app refreshing at once do not sign the user out:
/// the duplicates are refused, the winner's tokens keep working. After the interval, the old
/// token presented again is reuse and revokes the family.
async fn concurrent_refreshes_within_interval(b: Backend) {
    let (app, rp) = app_with_rp(b, &[("VIGIL_REFRESH_REUSE_INTERVAL_SECS", "10")]).await;
    let t0 = Instant::now();
    for n in [2, 8] {
        for _ in 0..3 {
            let (won, rt0) = refresh_race(&app, &rp, n).await;
            let http = client(app.port);
            let (at, rt) = (s(&won, "access_token"), s(&won, "refresh_token"));
            assert_eq!(userinfo(&http, &app, &at).await, StatusCode::OK);
            assert!(active(&http, &app, &rt).await);
            // A late duplicate inside the interval: still refused, family still alive.
            let (st, body) = refresh(&http, &app, &rt0).await;
            assert_eq!(
                (st, body["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_grant"))
            );
            assert!(active(&http, &app, &rt).await);
            let (st, next) = refresh(&http, &app, &rt).await;
            assert_eq!(
                st,
                StatusCode::OK,
                "the winner's refresh token rotates: {next}"
            );
            let rt2 = s(&next, "refresh_token");
            // After the interval the old token is reuse: the whole family goes.
            app.clock.advance_secs(11);
            let (st, _) = refresh(&http, &app, &rt0).await;
            assert_eq!(st, StatusCode::BAD_REQUEST);
            assert!(!active(&http, &app, &rt2).await, "family revoked by reuse");
            assert_eq!(
                userinfo(&http, &app, &s(&next, "access_token")).await,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    eprintln!(
        "{b:?}: refresh races within a 10 s interval in {:?}",
        t0.elapsed()
    );
}
on_both_backends!(
    concurrent_refreshes_within_interval,
    super::concurrent_refreshes_within_interval
);

/// A refresh and a revocation of the same refresh token, released together, many times: once
/// both have answered, no token of the family is active or accepted — including one a refresh
/// that won the race minted.
async fn refresh_racing_revocation(b: Backend) {
    let (app, rp) = app_with_rp(b, &[("VIGIL_REFRESH_REUSE_INTERVAL_SECS", "10")]).await;
    let t0 = Instant::now();
    let rounds = 25;
    let (mut refresh_won, mut refresh_lost) = (0, 0);
    for round in 0..rounds {
        let (code, verifier) = fresh_code(&app, &rp).await;
        let http = client(app.port);
        let (st, first) = redeem(&http, &app, &code, &verifier).await;
        assert_eq!(st, StatusCode::OK);
        let (at0, rt0) = (s(&first, "access_token"), s(&first, "refresh_token"));
        let out = together(2, |i| {
            let (app, rt0) = (app.clone(), rt0.clone());
            async move {
                let http = client(app.port);
                if i == 0 {
                    refresh(&http, &app, &rt0).await
                } else {
                    (revoke(&http, &app, &rt0).await, Value::Null)
                }
            }
        })
        .await;
        assert_eq!(out[1].0, StatusCode::OK, "revocation answered 200");
        assert!(!out[0].0.is_server_error(), "{:?}", out[0]);
        let mut dead = vec![at0.clone(), rt0.clone()];
        if out[0].0 == StatusCode::OK {
            refresh_won += 1;
            dead.push(s(&out[0].1, "access_token"));
            dead.push(s(&out[0].1, "refresh_token"));
        } else {
            refresh_lost += 1;
            assert_eq!(out[0].1["error"], "invalid_grant");
        }
        for t in &dead {
            assert!(
                !active(&http, &app, t).await,
                "round {round}: a token is active after the revocation returned"
            );
        }
        for at in dead.iter().step_by(2) {
            assert_eq!(userinfo(&http, &app, at).await, StatusCode::UNAUTHORIZED);
        }
        for rt in dead.iter().skip(1).step_by(2) {
            let (st, _) = refresh(&http, &app, rt).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "round {round}: family alive");
        }
    }
    eprintln!(
        "{b:?}: {rounds} refresh-vs-revoke races: refresh first {refresh_won}, revoke first \
         {refresh_lost}, in {:?}",
        t0.elapsed()
    );
}
on_both_backends!(refresh_racing_revocation, super::refresh_racing_revocation);

/// A double-submitted step-up form: the same TOTP code posted twice at once is accepted once.
async fn one_totp_code_twice_at_once(b: Backend) {
    let app = spawn_app_with(b, crate::helpers::ALWAYS_STEP_UP)
        .await
        .unwrap();
    app.add_user("alice", false).await;
    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (secret, _) = enrol_totp(&app).await;
    let app = Arc::new(app);
    let mut accepted_total = 0;
    let rounds = 3;
    let t0 = Instant::now();
    for round in 0..rounds {
        sign_out(&app).await;
        // A fresh time step each round, so only the race can make a code a replay.
        app.clock.advance_secs(30);
        let r = app.login("alice", PASSWORD).await;
        assert_eq!(location(&r), "/login/mfa");
        let page = app.get("/login/mfa").await.text().await.unwrap();
        let csrf = csrf_in(&page);
        let code = totp::code_at(&secret, app.svc.clock.now()).unwrap();
        let out = together(2, |_| {
            let (app, csrf, code) = (app.clone(), csrf.clone(), code.clone());
            async move {
                let r = app
                    .http
                    .post(app.url("/login/mfa/totp"))
                    .form(&[("csrf_token", csrf.as_str()), ("code", code.as_str())])
                    .send()
                    .await
                    .unwrap();
                (r.status(), location(&r))
            }
        })
        .await;
        assert!(out.iter().all(|(s, _)| !s.is_server_error()), "{out:?}");
        let accepted = out.iter().filter(|(_, l)| l == "/account").count();
        assert_eq!(accepted, 1, "round {round}: exactly one accepted: {out:?}");
        accepted_total += accepted;
        eprintln!("TOTP double submit round {round}: {out:?}");
        assert_eq!(app.get("/account").await.status(), StatusCode::OK);
        // A double-click is not an attack: the account is not flagged at risk by its own
        // step-up's twin (a failed step-up would set `at_risk`).
        let user = vigil::flow::accounts::find(&app.svc, "alice")
            .await
            .unwrap();
        assert_eq!(
            user.risk_state, "none",
            "round {round}: the duplicate submission flagged the account: {out:?}"
        );
    }
    eprintln!(
        "{b:?}: {rounds} double submissions, {accepted_total} accepted, in {:?}",
        t0.elapsed()
    );
}
on_both_backends!(
    one_totp_code_twice_at_once,
    super::one_totp_code_twice_at_once
);

/// 200 wrong passwords at once for one account, under limits above 200: every one is checked
/// and counted (sign-in log and throttle counter), none is lost, and the next is throttled.
async fn two_hundred_parallel_wrong_passwords_all_counted(b: Backend) {
    let app = spawn_app_with(
        b,
        &[
            ("VIGIL_THROTTLE_ACCOUNT_FAILURES", "200"),
            ("VIGIL_THROTTLE_IP_FAILURES", "10000"),
            // Room for all 200 hashes to wait: this test counts, it does not shed load.
            ("VIGIL_HASH_QUEUE", "1000"),
        ],
    )
    .await
    .unwrap();
    app.add_user("alice", false).await;
    let app = Arc::new(app);
    let t0 = Instant::now();
    let n = 200;
    // Each browser loads the form first, then all 200 posts are released together.
    let statuses = together(n, |_| {
        let app = app.clone();
        async move {
            let http = client(app.port);
            let page = http
                .get(app.url("/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            http.post(app.url("/login"))
                .form(&[
                    ("username", "alice"),
                    ("password", "not the password"),
                    ("csrf_token", &csrf_in(&page)),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    })
    .await;
    let elapsed = t0.elapsed();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        n,
        "every wrong password checked: {}",
        tally(&statuses)
    );
    let user = vigil::flow::accounts::find(&app.svc, "alice")
        .await
        .unwrap();
    let uid = user.id.clone();
    let logged = app
        .svc
        .db
        .run(move |c| vigil::store::signins::recent_for_user(c, &uid, 10_000))
        .await
        .unwrap()
        .iter()
        .filter(|r| r.outcome == "failure")
        .count();
    assert_eq!(logged, n, "sign-in log rows");
    let since = app.svc.clock.now().minus_secs(3600).micros();
    let acct = vigil::flow::login::account_key("alice");
    let (by_account, _) = app
        .svc
        .db
        .run(move |c| vigil::store::throttle::counts(c, &acct, "127.0.0.1", since, None))
        .await
        .unwrap();
    assert_eq!(by_account, n as i64, "throttle counter");
    // The limit is reached: the next attempt, even with the right password, is throttled.
    let r = app.login("alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    eprintln!(
        "{b:?}: {n} parallel wrong passwords: {} in {elapsed:?}; {logged} logged, {by_account} \
         counted; the 201st answered 429",
        tally(&statuses)
    );
}
on_both_backends!(
    two_hundred_parallel_wrong_passwords_all_counted,
    super::two_hundred_parallel_wrong_passwords_all_counted
);

/// Parallel password sign-ins of one account, each through a full code flow, for a few
/// seconds: every one gets its tokens. (On PostgreSQL two of them used to deadlock on the
/// account's throttle rows, each holding its own reservation and waiting for the other's: a 500
/// in most runs of this test.)
async fn parallel_sign_ins_of_one_account(b: Backend) {
    let (app, _rp) = app_with_rp(b, crate::outage::ALLOW_ALL).await;
    let port = app.port;
    let until = Instant::now() + std::time::Duration::from_millis(2500);
    let done = together(4, move |_| async move {
        let mut n = 0;
        while Instant::now() < until {
            let (flow, stop) = crate::outage::code_flow(port).await;
            assert!(stop.is_none(), "sign-in {n}: {stop:?}");
            assert!(flow.tokens.is_some(), "sign-in {n}");
            n += 1;
        }
        n
    })
    .await;
    assert!(done.iter().all(|n| *n > 0), "{done:?}");
}
on_both_backends!(
    parallel_sign_ins_of_one_account,
    super::parallel_sign_ins_of_one_account
);
