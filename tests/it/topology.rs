//! The compose cluster's topology in a test: two vigil nodes on one PostgreSQL database behind
//! Caddy running the repository's own `deploy/Caddyfile` (round robin, health checks on
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
    behind_proxy, pg_admin_url, spawn_app_with, spawn_node, Backend, TestApp, PASSWORD,
};
use crate::oidc::{add_client, location, rp, tokens_for, ClientSpec, SECRET};

/// Caddy as a child process, stopped with the test; `_home` holds its state directory.
struct Caddy {
    child: Child,
    _home: tempfile::TempDir,
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

/// Run `deploy/Caddyfile` on `port` in front of `nodes`; returns once it answers.
async fn start_caddy(port: u16, nodes: &[&TestApp]) -> Caddy {
    let home = tempfile::tempdir().unwrap();
    let upstreams: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Caddyfile"))
        .env("VIGIL_PROXY_ADDRESS", format!(":{port}"))
        .env("VIGIL_UPSTREAMS", upstreams.join(" "))
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let caddy = Caddy { child, _home: home };
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
    let _caddy = start_caddy(port, &[&a, &b]).await;
    let browser: IpAddr = "127.0.0.7".parse().unwrap();
    let front = behind_proxy(&a, port, browser, &[]);

    a.add_user("alice", false).await;
    add_client(&front, ClientSpec::default()).await;
    let rp = rp(&front, "rp", false).await;
    let (tokens, _) = tokens_for(&front, &rp, &["openid", "offline_access"]).await;
    assert!(tokens["id_token"].is_string());
    // Refresh a few times: round robin sends them to both nodes, and rotation holds across them.
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
