//! Faults: the real binary killed with SIGKILL in the middle of a sign-in load, then restarted
//! on the same database; and two nodes of one deployment whose clocks are 30 s ahead and 30 s
//! behind, with every flow crossing between them.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use vigil::auth::totp;
use vigil::clock::Clock as _;

use crate::helpers::{
    csrf_in, spawn_app_with, spawn_node, Backend, TestApp, TestDb, ALWAYS_STEP_UP, PASSWORD,
    TEST_MASTER_KEY,
};
use crate::oidc::{
    add_client, location, payload, query, rp, urlencode, ClientSpec, REDIRECT, SECRET,
};
use crate::on_both_backends;
use crate::races::{active, fresh_code, redeem, refresh, userinfo};

// ---------------------------------------------------------------------------------------------
// kill -9 in the middle of a sign-in load

/// `vigil` run as a child process on `port`, on the test's database.
struct Server {
    db_url: String,
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.args(args)
            .env_remove("VIGIL_CONFIG")
            .env("VIGIL_DATABASE_URL", &self.db_url)
            .env("VIGIL_BIND", format!("127.0.0.1:{}", self.port))
            .env("VIGIL_ISSUER", format!("http://localhost:{}", self.port))
            .env("VIGIL_ARGON2_MEMORY_KIB", "1024")
            .env("VIGIL_ARGON2_ITERATIONS", "1")
            .env("VIGIL_GEOIP_CITY", "")
            .env("VIGIL_GEOIP_ASN", "")
            .env("VIGIL_MASTER_KEY", TEST_MASTER_KEY)
            .env("VIGIL_THROTTLE_IP_FAILURES", "1000000")
            .env("VIGIL_LOG", "warn")
            // Every sign-in of the load comes from a new browser: let risk allow them all
            // (this test is about crashes, not about the risk engine).
            .env("VIGIL_RISK_POLICY", "low=allow,medium=allow,high=allow")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str], stdin: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = self.command(args).spawn().expect("run vigil");
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    async fn start(&mut self) {
        let child = self
            .command(&["serve"])
            .stdout(Stdio::null())
            .spawn()
            .expect("vigil serve");
        self.child = Some(child);
        let http = browser(self.port);
        for _ in 0..200 {
            if http
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("vigil serve did not become ready");
    }

    /// SIGKILL: no shutdown, no flush, nothing but what the database already committed.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn browser(port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap()
}

/// What the load was handed before the kill.
#[derive(Default)]
struct Handed {
    /// (code, PKCE verifier, redeemed: its token response arrived)
    codes: Vec<(String, String, bool)>,
    /// token responses (from a code or a refresh)
    tokens: Vec<Value>,
    /// refresh tokens the load presented and got an answer for (spent or refused)
    spent: Vec<String>,
}

async fn form_token(
    http: &reqwest::Client,
    srv_url: &str,
    form: &[(&str, &str)],
) -> Option<(StatusCode, Value)> {
    let r = http
        .post(format!("{srv_url}/token"))
        .basic_auth("rp", Some(SECRET))
        .form(form)
        .send()
        .await
        .ok()?;
    let st = r.status();
    let body = r.text().await.ok()?;
    Some((st, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

/// One browser's sign-ins until the server disappears: authorize, password, code, token,
/// refresh — recording everything it is handed.
async fn sign_in_load(port: u16, handed: Arc<Mutex<Handed>>, max: usize) -> usize {
    let base = format!("http://localhost:{port}");
    let mut done = 0;
    while done < max {
        let http = browser(port);
        let verifier = format!("{}-{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let auth = format!(
            "{base}/authorize?response_type=code&client_id=rp&redirect_uri={}&scope={}&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256",
            urlencode(REDIRECT),
            urlencode("openid offline_access")
        );
        let r = match http.get(&auth).send().await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("load: /authorize: {e}");
                return done;
            }
        };
        let login = location(&r);
        let page = match http.get(format!("{base}{login}")).send().await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("load: {login}: {e}");
                return done;
            }
        };
        let Ok(page) = page.text().await else {
            return done;
        };
        let tx = query(&format!("http://x{login}"))
            .get("tx")
            .cloned()
            .unwrap_or_default();
        let Ok(r) = http
            .post(format!("{base}/login"))
            .form(&[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf_token", &csrf_in(&page)),
                ("tx", &tx),
            ])
            .send()
            .await
        else {
            return done;
        };
        let back = location(&r);
        let Some(code) = back
            .starts_with(REDIRECT)
            .then(|| query(&back).get("code").cloned())
            .flatten()
        else {
            let st = r.status();
            let body = r.text().await.unwrap_or_default();
            assert!(!st.is_server_error(), "{st} {body}");
            eprintln!("sign-in did not end at the RP: {st} {back} {body:.300}");
            return done;
        };
        let idx = {
            let mut h = handed.lock().unwrap();
            h.codes.push((code.clone(), verifier.clone(), false));
            h.codes.len() - 1
        };
        let Some((st, t)) = form_token(
            &http,
            &base,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await
        else {
            return done;
        };
        assert!(!st.is_server_error(), "{st} {t}");
        assert_eq!(st, StatusCode::OK, "a fresh code is redeemable: {t}");
        let rt = t["refresh_token"].as_str().unwrap_or_default().to_owned();
        {
            let mut h = handed.lock().unwrap();
            h.codes[idx].2 = true;
            h.tokens.push(t);
        }
        let Some((st, t)) = form_token(
            &http,
            &base,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await
        else {
            return done;
        };
        assert_eq!(st, StatusCode::OK, "{t}");
        {
            let mut h = handed.lock().unwrap();
            h.spent.push(rt);
            h.tokens.push(t);
        }
        done += 1;
    }
    done
}

/// After the restart: everything handed out is fully valid or cleanly refused, never half.
async fn check_after_restart(
    srv: &Server,
    db: &vigil::store::Db,
    handed: &Handed,
) -> (usize, usize, usize, usize) {
    let http = browser(srv.port);
    let base = srv.url("");
    let base = base.trim_end_matches('/').to_owned();
    // Every handed token was stored (access row and refresh row both, or the response could
    // not have been sent), and answers consistently at userinfo and introspection.
    let (mut valid, mut dead) = (0, 0);
    for t in &handed.tokens {
        let at = t["access_token"].as_str().unwrap().to_owned();
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        let jti = payload(&at)["jti"].as_str().unwrap().to_owned();
        let digest = vigil::store::token_digest(&rt);
        // (Access tokens have no row of their own: the issuance log is batched and may lose
        // its last second to a kill -9; the grant they belong to is the refresh family.)
        assert!(!jti.is_empty());
        let r_row = db
            .run(move |c| vigil::store::tokens::find_refresh(c, &digest))
            .await
            .unwrap();
        let r_row = r_row.expect("a refresh token handed out has no row");
        let ui = userinfo_at(&http, &base, &at).await;
        let at_active = introspect(&http, &base, &at).await;
        assert_eq!(
            ui == StatusCode::OK,
            at_active,
            "userinfo and introspection disagree"
        );
        assert!(
            ui == StatusCode::OK || ui == StatusCode::UNAUTHORIZED,
            "{ui}"
        );
        if at_active {
            valid += 1;
        } else {
            dead += 1;
        }
        // A refresh token nobody has spent yet still rotates, into tokens that work.
        if r_row.used_at.is_none() && r_row.revoked_at.is_none() && !handed.spent.contains(&rt) {
            assert!(introspect(&http, &base, &rt).await);
            let (st, n) = form_token(
                &http,
                &base,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await
            .unwrap();
            assert_eq!(st, StatusCode::OK, "an unspent refresh token: {n}");
            assert_eq!(
                userinfo_at(&http, &base, n["access_token"].as_str().unwrap()).await,
                StatusCode::OK
            );
        }
    }
    // Every handed code exists; an unredeemed one is redeemable once or refused cleanly (and
    // a redeemed one presented again is a replay: this comes last, as it revokes its tokens).
    let (mut late_ok, mut late_refused) = (0, 0);
    for (code, verifier, redeemed) in &handed.codes {
        let digest = vigil::store::token_digest(code);
        let row = db
            .run(move |c| vigil::store::authz::find_code(c, &digest))
            .await
            .unwrap();
        assert!(row.is_some(), "a code handed out was not stored");
        let (st, t) = form_token(
            &http,
            &base,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
        .unwrap();
        if *redeemed {
            assert_eq!(st, StatusCode::BAD_REQUEST, "a redeemed code again: {t}");
            assert_eq!(t["error"], "invalid_grant");
            continue;
        }
        match st {
            StatusCode::OK => {
                late_ok += 1;
                let at = t["access_token"].as_str().unwrap();
                let rt = t["refresh_token"].as_str().unwrap();
                assert_eq!(
                    userinfo_at(&http, &base, at).await,
                    StatusCode::OK,
                    "a code issued tokens that fail"
                );
                assert!(introspect(&http, &base, at).await && introspect(&http, &base, rt).await);
            }
            StatusCode::BAD_REQUEST => {
                late_refused += 1;
                assert_eq!(t["error"], "invalid_grant", "{t}");
            }
            other => panic!("an interrupted code answered {other}: {t}"),
        }
    }
    (late_ok, late_refused, valid, dead)
}

async fn userinfo_at(http: &reqwest::Client, base: &str, at: &str) -> StatusCode {
    http.get(format!("{base}/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .status()
}

async fn introspect(http: &reqwest::Client, base: &str, token: &str) -> bool {
    let v: Value = http
        .post(format!("{base}/introspect"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["active"] == Value::Bool(true)
}

async fn kill_dash_nine_mid_load(b: Backend) {
    let t0 = Instant::now();
    let db = TestDb::new(b).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut srv = Server {
        db_url: db.url_string(),
        port,
        child: None,
    };
    let o = srv.run(
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = srv.run(
        &[
            "client",
            "add",
            "rp",
            "--redirect-uri",
            REDIRECT,
            "--first-party",
            "--secret-stdin",
        ],
        &format!("{SECRET}\n"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let store = vigil::store::Db::connect(&db.url).unwrap();
    srv.start().await;
    let workers = 4;
    for (round, kill_after_ms) in [250u64, 600, 1100].into_iter().enumerate() {
        let handed = Arc::new(Mutex::new(Handed::default()));
        // Warm the fresh process up (first requests compile the user-agent parser's patterns).
        assert_eq!(
            sign_in_load(port, handed.clone(), 1).await,
            1,
            "warm-up sign-in"
        );
        let tasks: Vec<_> = (0..workers)
            .map(|_| actix_web::rt::spawn(sign_in_load(port, handed.clone(), usize::MAX)))
            .collect();
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        srv.kill9();
        let mut completed = 0;
        for t in tasks {
            completed += t.await.unwrap();
        }
        srv.start().await;
        let handed = std::mem::take(&mut *handed.lock().unwrap());
        let (late_ok, late_refused, valid, dead) = check_after_restart(&srv, &store, &handed).await;
        let verify = srv.run(&["audit", "verify"], "");
        assert!(
            verify.status.success(),
            "audit verify after kill -9: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
        eprintln!(
            "{b:?} round {round}: killed after {kill_after_ms} ms; {completed} complete sign-ins, \
             {} codes handed ({} redeemed before the kill; of the rest {late_ok} redeemed after \
             the restart, {late_refused} refused), {} token responses ({valid} still valid, \
             {dead} revoked); audit: {}",
            handed.codes.len(),
            handed.codes.iter().filter(|c| c.2).count(),
            handed.tokens.len(),
            String::from_utf8_lossy(&verify.stdout).trim()
        );
    }
    srv.kill9();
    eprintln!("{b:?}: kill -9 test in {:?}", t0.elapsed());
}
on_both_backends!(kill_dash_nine_mid_load, super::kill_dash_nine_mid_load);

// ---------------------------------------------------------------------------------------------
// ±30 s clock skew between two nodes

/// Two nodes on one database and issuer: A runs 30 s ahead of real time, B 30 s behind.
async fn skewed_pair(b: Backend, extra: &[(&str, &str)]) -> (TestApp, TestApp) {
    let a = spawn_app_with(b, extra).await.unwrap();
    a.clock.advance_secs(30);
    let b = spawn_node(&a, -30, extra).await;
    a.add_user("alice", false).await;
    add_client(&a, ClientSpec::default()).await;
    (a, b)
}

async fn every_flow_across_skewed_nodes(backend: Backend) {
    let t0 = Instant::now();
    let (a, b) = skewed_pair(backend, &[]).await;
    let rp = rp(&a, "rp", false).await;
    let http_a = crate::helpers::client(a.port);

    // Authorize on A, sign in on A, redeem the code on B.
    let (code, verifier) = fresh_code(&a, &rp).await;
    let (st, t1) = redeem(&b.http, &b, &code, &verifier).await;
    assert_eq!(st, StatusCode::OK, "code from A redeemed on B: {t1}");
    let at1 = t1["access_token"].as_str().unwrap();
    // B's token (issued 60 s "earlier" than A's clock) on A, and on B.
    assert_eq!(userinfo(&http_a, &a, at1).await, StatusCode::OK);
    assert!(active(&http_a, &a, at1).await);
    assert_eq!(userinfo(&b.http, &b, at1).await, StatusCode::OK);

    // Refresh on B, then on A.
    let (st, t2) = refresh(&b.http, &b, t1["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, StatusCode::OK, "refresh on B: {t2}");
    let (st, t3) = refresh(&http_a, &a, t2["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, StatusCode::OK, "refresh on A: {t3}");
    // A's token ("issued" 60 s in B's future) on B: userinfo and introspection.
    let at3 = t3["access_token"].as_str().unwrap();
    assert_eq!(
        userinfo(&b.http, &b, at3).await,
        StatusCode::OK,
        "A's access token at B's /userinfo"
    );
    assert!(
        active(&b.http, &b, at3).await,
        "A's access token at B's /introspect"
    );
    assert!(active(&b.http, &b, t3["refresh_token"].as_str().unwrap()).await);
    // And back: refresh A's refresh token on B.
    let (st, t4) = refresh(&b.http, &b, t3["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, StatusCode::OK, "{t4}");

    // A code issued on B (its clock 60 s behind) redeemed on A.
    let s = rp.start(&["offline_access"], &[]);
    // SSO: the browser's session from A; the authorize request itself goes to B.
    let on_b = s.url.as_str().replace(&a.base, &b.base);
    let r2 = a.http.get(&on_b).send().await.unwrap();
    let st = r2.status();
    let back = location(&r2);
    assert!(
        back.starts_with(REDIRECT),
        "SSO on B with A's session: {st} {back} {}",
        {
            let html = r2.text().await.unwrap();
            let doc = scraper::Html::parse_document(&html);
            let sel = scraper::Selector::parse("body").unwrap();
            doc.select(&sel)
                .next()
                .map(|m| m.text().collect::<Vec<_>>().join(" "))
                .unwrap_or(html)
        }
    );
    let (st, t5) = redeem(&http_a, &a, &query(&back)["code"], s.verifier.secret()).await;
    assert_eq!(st, StatusCode::OK, "code from B redeemed on A: {t5}");

    // RP-initiated logout on B of the session signed in on A, with A's ID token as the hint.
    let idt = t3["id_token"]
        .as_str()
        .or(t5["id_token"].as_str())
        .unwrap()
        .to_owned();
    let r = a
        .http
        .get(b.url(&format!(
            "/logout?id_token_hint={idt}&post_logout_redirect_uri={}&state=bye",
            urlencode("https://rp.example.com/bye")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&r),
        "https://rp.example.com/bye?state=bye",
        "logout on B with A's id_token_hint"
    );
    let r = a.http.get(a.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed out on A too");

    // TOTP step-up with codes from a phone on real time: on the node 30 s ahead (bob) and on
    // the node 30 s behind (carol). (A second pair whose policy asks every account with a
    // factor for it: alice, who has none, is not asked above.)
    drop((a, b));
    let (a, b) = skewed_pair(backend, ALWAYS_STEP_UP).await;
    let rp = crate::oidc::rp(&a, "rp", false).await;
    for (user, node) in [("bob", &a), ("carol", &b)] {
        a.add_user(user, false).await;
        let u = vigil::flow::accounts::find(&a.svc, user).await.unwrap();
        let uri = vigil::flow::factors::totp_provision(&a.svc, a.svc.clock.now(), &u)
            .await
            .unwrap();
        let b32 = query(&uri)["secret"].clone();
        let secret = totp_rs::Secret::try_from_base32(&b32)
            .unwrap()
            .as_bytes()
            .to_vec();
        let s = rp.start(&[], &[]);
        let url = s.url.as_str().replace(&a.base, &node.base);
        let browser = crate::helpers::client(node.port);
        let r = browser.get(&url).send().await.unwrap();
        let login = location(&r);
        assert!(login.starts_with("/login?tx="), "{login}");
        let page = browser
            .get(node.url(&login))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let tx = query(&format!("http://x{login}"))["tx"].clone();
        let r = browser
            .post(node.url("/login"))
            .form(&[
                ("username", user),
                ("password", PASSWORD),
                ("csrf_token", &csrf_in(&page)),
                ("tx", &tx),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), "/login/mfa", "{user}: step-up asked");
        let page = browser
            .get(node.url("/login/mfa"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let code = totp::code_at(&secret, vigil::clock::SystemClock.now()).unwrap();
        let r = browser
            .post(node.url("/login/mfa/totp"))
            .form(&[("csrf_token", csrf_in(&page)), ("code", code)])
            .send()
            .await
            .unwrap();
        let st = r.status();
        let next = location(&r);
        assert!(
            st == StatusCode::SEE_OTHER && !next.starts_with("/login"),
            "{user}: real-time TOTP code on a node skewed by {} s: {st} {next}",
            node.clock.now().secs() - vigil::clock::SystemClock.now().secs()
        );
        // The code goes back to the RP and is redeemed on the other node.
        let other = if std::ptr::eq(node, &a) { &b } else { &a };
        let mut back = next;
        if !back.starts_with(REDIRECT) {
            let r = browser.get(node.url(&back)).send().await.unwrap();
            back = location(&r);
        }
        assert!(back.starts_with(REDIRECT), "{user}: {back}");
        let (st, t) = redeem(
            &other.http,
            other,
            &query(&back)["code"],
            s.verifier.secret(),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{user}: {t}");
        assert_eq!(
            payload(t["id_token"].as_str().unwrap())["acr"],
            "urn:vigil:acr:mfa"
        );
    }
    eprintln!(
        "{backend:?}: every flow across nodes at +30 s and -30 s in {:?}",
        t0.elapsed()
    );
}
on_both_backends!(
    every_flow_across_skewed_nodes,
    super::every_flow_across_skewed_nodes
);

// ---------------------------------------------------------------------------------------------
// The revocation cache across nodes (issue 14: access tokens have no row; each node keeps the
// revocations in memory, at most `FRESHNESS` old)

/// A token revoked on node A is refused on A at once and on B within the stated bound; a
/// client removed on A stops authenticating on B within the same bound. Both nodes have
/// checked (and cached) before the change, so B really has to notice it.
async fn revocations_reach_every_node_within_the_bound(backend: Backend) {
    use vigil::flow::revocations::FRESHNESS;
    let a = spawn_app_with(backend, &[]).await.unwrap();
    let b = spawn_node(&a, 0, &[]).await;
    a.add_user("alice", false).await;
    add_client(&a, ClientSpec::default()).await;
    vigil::flow::clients::register(
        &a.svc,
        &vigil::flow::accounts::Actor::new("test"),
        a.svc.clock.now(),
        vigil::flow::clients::NewClient {
            id: "svc".into(),
            name: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            public: false,
            first_party: true,
            grants: vec!["client_credentials".into()],
            secret: Some(secrecy::SecretString::from(SECRET.to_owned())),
            backchannel_logout_uri: None,
            id_token_alg: None,
            access_token_alg: Some("ES256".into()),
            pkce_optional: false,
            min_acr: None,
            require_role: false,
            privileged_max_age_secs: None,
            provisioning: false,
        },
    )
    .await
    .unwrap();
    let rp = rp(&a, "rp", false).await;
    let http_a = crate::helpers::client(a.port);

    // A user's grant: live on both nodes.
    let (code, verifier) = fresh_code(&a, &rp).await;
    let (st, t) = redeem(&http_a, &a, &code, &verifier).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let at = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(payload(&at)["grant_id"].as_str().map(str::len), Some(36));
    assert_eq!(userinfo(&http_a, &a, &at).await, StatusCode::OK);
    assert_eq!(userinfo(&b.http, &b, &at).await, StatusCode::OK);

    // A service's token, signed ES256 as its client asks; B authenticates the client (and
    // caches it).
    let cc = |app: &TestApp| {
        let (http, url) = (app.http.clone(), app.url("/token"));
        async move {
            http.post(url)
                .basic_auth("svc", Some(SECRET))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
        }
    };
    let r = cc(&b).await;
    assert_eq!(r.status(), StatusCode::OK);
    let svc_token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    use base64::Engine as _;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(svc_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt");

    // Revoke the refresh token on A: its family — and so the access token — ends.
    let r = http_a
        .post(a.url("/revoke"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("token", t["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let revoked_at = Instant::now();
    assert_eq!(
        userinfo(&http_a, &a, &at).await,
        StatusCode::UNAUTHORIZED,
        "the node that revoked honours it at once"
    );
    assert!(!active(&http_a, &a, &at).await);
    // Remove the service's client on A.
    vigil::flow::clients::remove(
        &a.svc,
        &vigil::flow::accounts::Actor::new("test"),
        a.svc.clock.now(),
        "svc",
    )
    .await
    .unwrap();
    let removed_at = Instant::now();

    let mut seen = None;
    while revoked_at.elapsed() < FRESHNESS * 3 {
        if userinfo(&b.http, &b, &at).await == StatusCode::UNAUTHORIZED {
            seen = Some(revoked_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.expect("node B never honoured the revocation");
    eprintln!("revocation on A honoured on B after {seen:?} (bound {FRESHNESS:?})");
    let mut gone = None;
    while removed_at.elapsed() < FRESHNESS * 3 {
        if cc(&b).await.status() == StatusCode::UNAUTHORIZED {
            gone = Some(removed_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone = gone.expect("node B kept authenticating a removed client");
    eprintln!("client removed on A refused on B after {gone:?}");
    // Whatever B read when, one bound after the change it must refuse both.
    tokio::time::sleep(FRESHNESS.saturating_sub(removed_at.elapsed())).await;
    assert_eq!(userinfo(&b.http, &b, &at).await, StatusCode::UNAUTHORIZED);
    assert!(!active(&b.http, &b, &at).await);
    assert_eq!(cc(&b).await.status(), StatusCode::UNAUTHORIZED);
}
on_both_backends!(
    revocations_reach_every_node_within_the_bound,
    super::revocations_reach_every_node_within_the_bound
);
