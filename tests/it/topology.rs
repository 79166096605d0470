//! The compose cluster's topology in a test: two vigil nodes on one PostgreSQL database behind
//! Caddy running the repository's own `deploy/Caddyfile` (least connections, health checks on
//! `/readyz`, `X-Forwarded-For`), with `VIGIL_TRUSTED_PROXIES` naming the proxy. Needs
//! PostgreSQL (`VIGIL_TEST_DATABASE_URL`) and Caddy (`apt-get install caddy`, which `.ci/run`
//! does); skipped, saying so, without them.

use std::net::{IpAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use vigil::store::{signins, users};

use crate::helpers::{
    behind_proxy, csrf_in, pg_admin_url, spawn_app_with, spawn_node, Backend, TestApp, PASSWORD,
    TEST_MASTER_KEY,
};
use crate::oidc::{add_client, location, query, rp, tokens_for, ClientSpec, Rp, REDIRECT, SECRET};

/// Caddy as a child process, stopped with the test; `home` holds its state directory and log.
struct Caddy {
    child: Child,
    home: tempfile::TempDir,
}

impl Caddy {
    /// What Caddy logged (its errors say which upstream failed and why).
    fn log(&self) -> String {
        tail(&self.home.path().join("caddy.log"))
    }
}

/// The last lines of a log file, for a failure message.
fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn caddy_installed() -> bool {
    Command::new("caddy")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run `deploy/Caddyfile` on `port` in front of the nodes on `nodes` (ports); returns once it
/// answers.
async fn start_caddy(port: u16, nodes: &[u16]) -> Caddy {
    let home = tempfile::tempdir().unwrap();
    let upstreams: Vec<String> = nodes.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Caddyfile"))
        .env("VIGIL_PROXY_ADDRESS", format!(":{port}"))
        .env("VIGIL_UPSTREAMS", upstreams.join(" "))
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(home.path().join("caddy.log")).unwrap())
        .spawn()
        .unwrap();
    let caddy = Caddy { child, home };
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let r = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == StatusCode::OK) {
            return caddy;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "caddy did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The client address each of `username`'s sign-ins was recorded with, newest first.
async fn recorded_ips(node: &TestApp, username: &str) -> Vec<String> {
    let name = username.to_owned();
    node.svc
        .db
        .run(move |c| {
            let Some(u) = users::find_by_username(c, &name)? else {
                return Ok(vec![]);
            };
            signins::recent_for_user(c, &u.id, 20)
        })
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.ip)
        .collect()
}

/// An application signs a user in through the proxy, redeems the code and refreshes on
/// whichever node the proxy picks; the risk engine sees the browser's address as the proxy
/// reports it, a browser that forges `X-Forwarded-For` is not believed, and `/metrics` is not
/// reachable through the front door.
#[actix_web::test]
async fn two_nodes_behind_the_proxy_are_one_provider() {
    if pg_admin_url().is_none() {
        eprintln!("VIGIL_TEST_DATABASE_URL not set: skipped");
        return;
    }
    if !caddy_installed() {
        eprintln!("caddy is not installed (apt-get install caddy; .ci/run installs it): skipped");
        return;
    }
    let port = free_port();
    let issuer = format!("http://localhost:{port}");
    // The proxy connects from loopback: only it is trusted to say who the client is.
    let env = [
        ("VIGIL_ISSUER", issuer.as_str()),
        ("VIGIL_TRUSTED_PROXIES", "127.0.0.1/32"),
    ];
    let a = spawn_app_with(Backend::Postgres, &env).await.unwrap();
    let b = spawn_node(&a, 0, &env).await;
    let _caddy = start_caddy(port, &[a.port, b.port]).await;
    let browser: IpAddr = "127.0.0.7".parse().unwrap();
    let front = behind_proxy(&a, port, browser, &[]);

    a.add_user("alice", false).await;
    add_client(&front, ClientSpec::default()).await;
    let rp = rp(&front, "rp", false).await;
    let (tokens, _) = tokens_for(&front, &rp, &["openid", "offline_access"]).await;
    assert!(tokens["id_token"].is_string());
    // Refresh a few times: the proxy spreads them over both nodes, and rotation holds across them.
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..4 {
        let r = front
            .http
            .post(front.url("/token"))
            .basic_auth("rp", Some(SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        refresh = v["refresh_token"].as_str().unwrap().to_owned();
        let r = front
            .http
            .get(front.url("/userinfo"))
            .bearer_auth(v["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(
        recorded_ips(&a, "alice").await.first().map(String::as_str),
        Some("127.0.0.7"),
        "the sign-in is recorded with the address the proxy reported"
    );

    // A browser that claims to be somewhere else: the proxy does not pass its claim on as the
    // client address, so vigil records where it really is.
    a.add_user("mallory", false).await;
    let forger = behind_proxy(
        &a,
        port,
        "127.0.0.8".parse().unwrap(),
        &[("x-forwarded-for", "81.2.69.142")],
    );
    let r = forger.login("mallory", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", location(&r));
    assert_eq!(recorded_ips(&a, "mallory").await, vec!["127.0.0.8"]);

    // The operator's endpoint stays on the inside.
    assert_eq!(front.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(front.get("/readyz").await.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// A rolling restart under load

/// `vigil serve` as a child process (the real binary, so SIGTERM is the real signal path).
struct Node {
    port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// Every run's stderr, appended: shown when the test fails.
    log: tempfile::NamedTempFile,
}

impl Node {
    fn new(env: &[(&str, String)]) -> Node {
        Node {
            port: free_port(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            child: None,
            log: tempfile::NamedTempFile::new().unwrap(),
        }
    }

    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("serve")
            .env_remove("VIGIL_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("VIGIL_BIND", format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.log.reopen().unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    async fn ready(&self) {
        let http = reqwest::Client::new();
        let started = Instant::now();
        while !http
            .get(format!("http://127.0.0.1:{}/readyz", self.port))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "node not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Once the proxy sends this node's run application traffic again (it has answered a token
    /// request since it started: its own counter says so), or panics after 15 s.
    async fn serving_through_proxy(&self) {
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let metrics = http
                .get(format!("http://127.0.0.1:{}/metrics", self.port))
                .send()
                .await
                .ok();
            let text = match metrics {
                Some(r) => r.text().await.unwrap_or_default(),
                None => String::new(),
            };
            let served = text.lines().any(|l| {
                l.starts_with("vigil_http_requests_total{")
                    && l.contains("route=\"/token\"")
                    && !l.ends_with(" 0")
            });
            if served {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the proxy did not take the restarted node back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        tail(self.log.path())
    }

    /// SIGTERM, as an orchestrator stops a node; returns once the process exited, and how.
    async fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "node did not stop"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One whole sign-in of a new browser through the front door, then what an application does
/// with it: redeem the code, refresh, call UserInfo. Any unexpected answer is the error.
async fn one_sign_in(front: &TestApp, rp: &Rp) -> Result<(), String> {
    let fail = |step: &str, e: &dyn std::fmt::Display| format!("{step}: {e}");
    let s = rp.start(&["openid", "offline_access"], &[]);
    let r = front
        .http
        .get(s.url.as_str())
        .send()
        .await
        .map_err(|e| fail("authorize", &e))?;
    if r.status() != StatusCode::SEE_OTHER {
        return Err(fail("authorize", &r.status()));
    }
    let login = location(&r);
    let page = front.get(&login).await;
    if page.status() != StatusCode::OK {
        return Err(fail("login page", &page.status()));
    }
    let page = page.text().await.map_err(|e| fail("login page", &e))?;
    let tx = query(&format!("http://x{login}"))["tx"].clone();
    let r = front
        .http
        .post(front.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_in(&page)),
            ("tx", &tx),
        ])
        .send()
        .await
        .map_err(|e| fail("sign-in", &e))?;
    let back = location(&r);
    if r.status() != StatusCode::SEE_OTHER || !back.starts_with(REDIRECT) {
        return Err(fail("sign-in", &format!("{} {back}", r.status())));
    }
    let code = query(&back)["code"].clone();
    let token = |form: Vec<(&'static str, String)>| {
        let http = front.http.clone();
        let url = front.url("/token");
        async move {
            let r = http
                .post(url)
                .basic_auth("rp", Some(SECRET))
                .form(&form)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if r.status() != StatusCode::OK {
                let status = r.status();
                return Err(format!("{status} {}", r.text().await.unwrap_or_default()));
            }
            r.json::<Value>().await.map_err(|e| e.to_string())
        }
    };
    let t = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", s.verifier.secret().clone()),
    ])
    .await
    .map_err(|e| fail("code", &e))?;
    let t = token(vec![
        ("grant_type", "refresh_token".into()),
        (
            "refresh_token",
            t["refresh_token"].as_str().unwrap_or("").into(),
        ),
    ])
    .await
    .map_err(|e| fail("refresh", &e))?;
    let r = front
        .http
        .get(front.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap_or(""))
        .send()
        .await
        .map_err(|e| fail("userinfo", &e))?;
    if r.status() != StatusCode::OK {
        return Err(fail("userinfo", &r.status()));
    }
    Ok(())
}

/// Two nodes behind Caddy, browsers signing in all the while; each node in turn gets SIGTERM
/// (it drains: `/readyz` 503 for `VIGIL_SHUTDOWN_DRAIN_SECS`, so Caddy stops sending it new
/// requests; then it finishes what is in flight and exits 0) and is started again. No request
/// of any sign-in fails.
#[actix_web::test]
async fn a_rolling_restart_under_load_loses_no_request() {
    if pg_admin_url().is_none() {
        eprintln!("VIGIL_TEST_DATABASE_URL not set: skipped");
        return;
    }
    if !caddy_installed() {
        eprintln!("caddy is not installed (apt-get install caddy; .ci/run installs it): skipped");
        return;
    }
    let port = free_port();
    let issuer = format!("http://localhost:{port}");
    let a = spawn_app_with(Backend::Postgres, &[("VIGIL_ISSUER", issuer.as_str())])
        .await
        .unwrap();
    a.add_user("alice", false).await;
    add_client(&a, ClientSpec::default()).await;
    let env = [
        ("VIGIL_DATABASE_URL", a._db.url_string()),
        ("VIGIL_ISSUER", issuer.clone()),
        ("VIGIL_TRUSTED_PROXIES", "127.0.0.1/32".into()),
        ("VIGIL_SHUTDOWN_DRAIN_SECS", "2".into()),
        ("VIGIL_MASTER_KEY", TEST_MASTER_KEY.into()),
        ("VIGIL_ARGON2_MEMORY_KIB", "1024".into()),
        ("VIGIL_ARGON2_ITERATIONS", "1".into()),
        ("VIGIL_GEOIP_CITY", String::new()),
        ("VIGIL_GEOIP_ASN", String::new()),
        ("VIGIL_LOG", "warn".into()),
        // Every sign-in is a new browser: this test is about restarts, not the risk engine.
        (
            "VIGIL_RISK_POLICY",
            "low=allow,medium=allow,high=allow".into(),
        ),
    ];
    let mut nodes = [Node::new(&env), Node::new(&env)];
    for n in &mut nodes {
        n.spawn();
    }
    for n in &nodes {
        n.ready().await;
    }
    let caddy = start_caddy(port, &[nodes[0].port, nodes[1].port]).await;

    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut load = Vec::new();
    for i in 0..4u8 {
        let (stop, a_front) = (
            stop.clone(),
            behind_proxy(&a, port, IpAddr::from([127, 0, 0, 10 + i]), &[]),
        );
        let rp = rp(&a_front, "rp", false).await;
        load.push(actix_web::rt::spawn(async move {
            let (mut done, mut errors) = (0u32, Vec::new());
            while !stop.get() {
                // A new browser each time: every round is a whole password sign-in.
                let front = behind_proxy(&a_front, port, IpAddr::from([127, 0, 0, 10 + i]), &[]);
                match one_sign_in(&front, &rp).await {
                    Ok(()) => done += 1,
                    Err(e) => errors.push(e),
                }
            }
            (done, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in [1, 0] {
        let status = nodes[i].stop().await;
        assert!(status.success(), "a drained stop exits 0: {status:?}");
        nodes[i].spawn();
        nodes[i].ready().await;
        // Caddy's next health check (every second) takes it back; the other node is stopped
        // only once this one has served again, as an orchestrator waits for readiness.
        nodes[i].serving_through_proxy().await;
    }
    stop.set(true);
    let (mut done, mut errors) = (0, Vec::new());
    for t in load {
        let (d, e) = t.await.unwrap();
        done += d;
        errors.extend(e);
    }
    assert!(
        errors.is_empty(),
        "{} of {} sign-ins failed: {errors:?}\n--- node 0\n{}\n--- node 1\n{}\n--- caddy\n{}",
        errors.len(),
        done as usize + errors.len(),
        nodes[0].log(),
        nodes[1].log(),
        caddy.log()
    );
    assert!(done >= 20, "the load kept going: {done} sign-ins");
}
