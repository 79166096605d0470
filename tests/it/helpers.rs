//! `spawn_app`: start vigil exactly as production does, on port 0, with its own database.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;

use reqwest::redirect::Policy;
use secrecy::SecretString;
use vigil::clock::ShiftedClock;
use vigil::config::{DatabaseUrl, Settings};
use vigil::flow::accounts::{self, Actor, NewAccount};
use vigil::flow::Services;

pub const PASSWORD: &str = "correct horse battery staple";
/// A policy that asks every account with a second factor for it at every sign-in (an
/// admin's "always MFA" setting), so second-factor tests do not depend on risk scores.
pub const ALWAYS_STEP_UP: &[(&str, &str)] = &[("VIGIL_RISK_POLICY", "low=step_up")];
/// 32 bytes, base64: the key that seals private signing keys in test databases.
pub const TEST_MASTER_KEY: &str = "dmlnaWwtdGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that disappears with the test.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg {
            let _ = vigil::store::drop_pg_database(admin, name);
        }
    }
}

/// The PostgreSQL server to test against, if the environment names one.
pub fn pg_admin_url() -> Option<String> {
    std::env::var("VIGIL_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

impl TestDb {
    /// `None` when the backend is PostgreSQL and no server is configured (the test is skipped).
    pub fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("vigil.db");
                Some(TestDb {
                    url: DatabaseUrl::Sqlite(path),
                    _dir: Some(dir),
                    pg: None,
                })
            }
            Backend::Postgres => {
                let admin = pg_admin_url()?;
                let name = format!("vigil_test_{}", uuid::Uuid::new_v4().simple());
                let url =
                    vigil::store::create_pg_database(&admin, &name).expect("create test database");
                Some(TestDb {
                    url: DatabaseUrl::Postgres(url),
                    _dir: None,
                    pg: Some((admin, name)),
                })
            }
        }
    }

    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => u.clone(),
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub svc: Services,
    pub http: reqwest::Client,
    pub clock: Arc<ShiftedClock>,
    pub _db: TestDb,
}

/// Settings for a test: cheap argon2 (the cost is measured in benches, not tests).
pub fn test_settings(db: &TestDb, port: u16, extra: &[(&str, &str)]) -> Settings {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("VIGIL_ISSUER".into(), format!("http://localhost:{port}"));
    env.insert("VIGIL_DATABASE_URL".into(), db.url_string());
    env.insert("VIGIL_ARGON2_MEMORY_KIB".into(), "1024".into());
    env.insert("VIGIL_ARGON2_ITERATIONS".into(), "1".into());
    env.insert("VIGIL_GEOIP_CITY".into(), String::new());
    env.insert("VIGIL_GEOIP_ASN".into(), String::new());
    env.insert("VIGIL_MASTER_KEY".into(), TEST_MASTER_KEY.into());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    Settings::from_env_map(&env).expect("test settings")
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, &[]).await
}

/// Start vigil with extra `VIGIL_*` settings. `None` if the backend is not available here.
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
    Some(start(TestDb::new(backend)?, None, 0, extra))
}

/// Start vigil on an existing database (a restored backup); the caller keeps the file.
pub async fn spawn_app_on(url: DatabaseUrl, extra: &[(&str, &str)]) -> TestApp {
    start(borrowed(url), None, 0, extra)
}

/// A second node of `first`'s deployment: the same database and issuer, its own port, its own
/// clock shifted by `offset_secs` (the caller shifts `first.clock` as it likes).
pub async fn spawn_node(first: &TestApp, offset_secs: i64, extra: &[(&str, &str)]) -> TestApp {
    // The first node's TestDb drops the database; this one only borrows it.
    start(
        borrowed(first._db.url.clone()),
        Some(first.port),
        offset_secs,
        extra,
    )
}

/// The deployment's front door: `node`'s services (to read what was stored), reached through a
/// reverse proxy listening on `port`, by a browser whose connections come from `from` (any
/// 127.0.0.0/8 address on Linux), so the proxy's `X-Forwarded-For` differs from its own address.
pub fn behind_proxy(
    node: &TestApp,
    port: u16,
    from: std::net::IpAddr,
    headers: &[(&str, &str)],
) -> TestApp {
    let mut default = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        default.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_str(v).unwrap(),
        );
    }
    let http = reqwest::Client::builder()
        // Below the server's 5 s keep-alive: a connection left idle while a test ran the CLI
        // would otherwise be reused just as the server closes it (IncompleteMessage).
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .cookie_store(true)
        .redirect(Policy::none())
        .local_address(from)
        .default_headers(default)
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap();
    TestApp {
        base: format!("http://localhost:{port}"),
        port,
        svc: node.svc.clone(),
        http,
        clock: node.clock.clone(),
        _db: borrowed(node._db.url.clone()),
    }
}

/// A database someone else owns (nothing is dropped with it).
fn borrowed(url: DatabaseUrl) -> TestDb {
    TestDb {
        url,
        _dir: None,
        pg: None,
    }
}

/// Serve on a random port; the issuer is `issuer_port`'s (another node's) or this port's.
fn start(
    db: TestDb,
    issuer_port: Option<u16>,
    offset_secs: i64,
    extra: &[(&str, &str)],
) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let settings = test_settings(&db, issuer_port.unwrap_or(port), extra);
    let clock = ShiftedClock::new();
    clock.advance_secs(offset_secs);
    let svc = Services::start(settings, Some(clock.clone())).expect("services start");
    let state = vigil::app::build_state(svc.clone()).expect("state");
    let operator = svc
        .settings
        .metrics_bind
        .map(|a| TcpListener::bind(a).expect("the operator's listener"));
    let server = vigil::app::run(state, listener, operator, Some(1)).expect("server");
    actix_web::rt::spawn(server);
    // As `serve` does: mail queued by a request is sent in the background.
    vigil::flow::mail::spawn_sender(&svc);
    TestApp {
        base: format!("http://localhost:{port}"),
        port,
        svc,
        http: client(port),
        clock,
        _db: db,
    }
}

/// Another browser on the same server: its own cookie jar (so its own device cookie).
pub fn another_browser(app: &TestApp) -> TestApp {
    TestApp {
        base: app.base.clone(),
        port: app.port,
        svc: app.svc.clone(),
        http: client(app.port),
        clock: app.clock.clone(),
        _db: borrowed(app._db.url.clone()),
    }
}

/// A browser-like client: cookie jar, no automatic redirects, `localhost` pinned to 127.0.0.1.
pub fn client(port: u16) -> reqwest::Client {
    client_with(port, reqwest::header::HeaderMap::new())
}

/// [`client`] sending `headers` on every request (a browser's language, say).
pub fn client_with(port: u16, headers: reqwest::header::HeaderMap) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .cookie_store(true)
        .redirect(Policy::none())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn add_user(&self, username: &str, admin: bool) {
        accounts::create(
            &self.svc,
            &Actor::new("test"),
            self.svc.clock.now(),
            NewAccount {
                username: username.into(),
                email: format!("{username}@example.com"),
                name: String::new(),
                is_admin: admin,
                password: SecretString::from(PASSWORD.to_owned()),
            },
        )
        .await
        .unwrap();
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// GET a page and return the CSRF token of its form.
    pub async fn csrf_from(&self, path: &str) -> String {
        let body = self.get(path).await.text().await.unwrap();
        csrf_in(&body)
    }

    /// Fill and submit the login form as a browser would.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        let token = self.csrf_from("/login").await;
        self.http
            .post(self.url("/login"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .unwrap()
    }
}

/// The value of the `csrf_token` hidden input in an HTML page.
pub fn csrf_in(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("input[name=csrf_token]").unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .expect("page has a csrf_token input")
        .to_owned()
}

/// Define a test once and run it on both backends: `<name>::sqlite` and `<name>::postgres`
/// (the latter passes trivially, saying so, when VIGIL_TEST_DATABASE_URL is not set).
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                $body($crate::helpers::Backend::Sqlite).await;
            }
            #[actix_web::test]
            async fn postgres() {
                if $crate::helpers::pg_admin_url().is_none() {
                    eprintln!("VIGIL_TEST_DATABASE_URL not set: PostgreSQL variant skipped");
                    return;
                }
                $body($crate::helpers::Backend::Postgres).await;
            }
        }
    };
}

/// The synchronous twin of [`on_both_backends`] for tests that need no runtime (CLI, store).
/// The test function returns early when its backend is not available.
#[macro_export]
macro_rules! sync_on_both_backends {
    ($name:ident, $f:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$f($crate::helpers::Backend::Sqlite);
            }
            #[test]
            fn postgres() {
                super::$f($crate::helpers::Backend::Postgres);
            }
        }
    };
}
