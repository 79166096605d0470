//! E-mail over real SMTP: an SMTP server (mailin-embedded) started in the test receives what
//! vigil's background sender delivers from the outbox. Verification links: single-use,
//! 24 hours, bound to the address they were sent to, throttled; a mail server that is down
//! delays mail without failing the request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin_embedded::{response, Handler, Response, Server, SslConfig};
use reqwest::StatusCode;
use serde_json::Value;

use crate::admin_users::{audited, text_of};
use crate::helpers::{csrf_in, spawn_app_with, Backend, TestApp, PASSWORD};
use crate::oidc::{add_client, location, rp, tokens_for_user, ClientSpec};
use crate::on_both_backends;

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub raw: String,
}

#[derive(Clone)]
struct Sink {
    inbox: Arc<Mutex<Vec<Received>>>,
    to: Vec<String>,
    buf: Vec<u8>,
}

impl Handler for Sink {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.buf.clear();
        response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> Response {
        if let Ok(mut inbox) = self.inbox.lock() {
            inbox.push(Received {
                to: std::mem::take(&mut self.to),
                raw: String::from_utf8_lossy(&self.buf).into_owned(),
            });
        }
        response::OK
    }
}

/// An SMTP server on `listener` (plain SMTP, no authentication), in a thread of its own.
pub struct SmtpServer {
    pub port: u16,
    pub inbox: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    pub fn start() -> Self {
        Self::on(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
    }

    pub fn on(listener: std::net::TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let mut server = Server::new(Sink {
            inbox: inbox.clone(),
            to: Vec::new(),
            buf: Vec::new(),
        });
        server
            .with_name("smtp.test.invalid")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { port, inbox }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages to `to`, waiting up to 15 s for at least `n`.
    pub async fn wait_for(&self, to: &str, n: usize) -> Vec<Received> {
        for _ in 0..150 {
            let got: Vec<Received> = self
                .inbox
                .lock()
                .unwrap()
                .iter()
                .filter(|m| m.to.iter().any(|t| t == to))
                .cloned()
                .collect();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no mail to {to} arrived");
    }
}

/// The message with its quoted-printable encoding undone (lettre encodes both parts so: the
/// link's line is longer than 76 characters).
pub fn decoded(raw: &str) -> String {
    assert!(
        !raw.contains("Content-Transfer-Encoding: base64"),
        "a part in base64: {raw}"
    );
    raw.replace("=\r\n", "").replace("=3D", "=")
}

/// The verification link in a message, as a path.
pub fn link_in(m: &Received) -> String {
    let text = decoded(&m.raw);
    let start = text
        .find("/email/verify?token=")
        .expect("a verification link");
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_owned()
}

/// The account's address changes, as SCIM provisioning would change it.
async fn change_address(app: &TestApp, user_id: &str, email: &str) {
    let (id, email) = (user_id.to_owned(), email.to_owned());
    let now = app.svc.clock.now().micros();
    app.svc
        .db
        .run(move |c| {
            vigil::store::directory::set_profile(
                c,
                &id,
                &vigil::store::directory::Profile {
                    username: "bob".into(),
                    email,
                    name: String::new(),
                    external_id: None,
                    given_name: None,
                    family_name: None,
                },
                now,
            )
        })
        .await
        .unwrap();
}

async fn mail_app(b: Backend, smtp: &str) -> Option<TestApp> {
    spawn_app_with(
        b,
        &[
            ("VIGIL_SMTP_URL", smtp),
            ("VIGIL_MAIL_FROM", "id@example.com"),
        ],
    )
    .await
}

async fn ask_for_link(app: &TestApp) -> reqwest::Response {
    let token = csrf_in(&app.get("/account").await.text().await.unwrap());
    app.http
        .post(app.url("/account/email/verify"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap()
}

async fn open_link(app: &TestApp, path: &str) -> reqwest::Response {
    let page = app.get(path).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let value = |name: &str| {
        doc.select(&scraper::Selector::parse(&format!("input[name={name}]")).unwrap())
            .next()
            .and_then(|e| e.value().attr("value"))
            .unwrap_or_default()
            .to_owned()
    };
    app.http
        .post(app.url("/email/verify"))
        .form(&[
            ("csrf_token", value("csrf_token")),
            ("token", value("token")),
        ])
        .send()
        .await
        .unwrap()
}

async fn userinfo(app: &TestApp, tokens: &Value) -> Value {
    app.http
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A signed-in user asks for a link; it arrives by SMTP; opening it (a page, then its button)
/// confirms the address, which `userinfo` then reports; the link works once; both steps are
/// audited.
async fn a_mailed_link_verifies_the_address(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = mail_app(b, &smtp.url()).await else {
        return;
    };
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let (tokens, _) = tokens_for_user(&app, &rp, "alice", &["email"]).await;
    assert_eq!(userinfo(&app, &tokens).await["email_verified"], false);

    let page = app.get("/account").await.text().await.unwrap();
    assert!(page.contains("id=\"email-unverified\""));
    let r = ask_for_link(&app).await;
    assert_eq!(location(&r), "/account?notice=verify_sent");
    let mail = smtp.wait_for("alice@example.com", 1).await.remove(0);
    assert!(
        mail.raw.contains("Subject: Confirm your e-mail address"),
        "{}",
        mail.raw
    );
    assert!(mail.raw.contains("From: id@example.com"), "{}", mail.raw);
    assert!(mail.raw.contains("text/plain") && mail.raw.contains("text/html"));
    let link = link_in(&mail);

    // Fetching the link (as a mail scanner would) uses nothing up; the button does.
    assert_eq!(app.get(&link).await.status(), StatusCode::OK);
    let r = open_link(&app, &link).await;
    let status = r.status();
    let html = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{link}\n{html}");
    assert_eq!(
        text_of(&html, "#verified").as_deref(),
        Some("Thank you: alice@example.com is confirmed.")
    );
    assert!(app
        .get("/account")
        .await
        .text()
        .await
        .unwrap()
        .contains("id=\"email-verified\""));
    // The browser still has alice's session: single sign-on.
    let (tokens, _) = crate::oidc::tokens_for(&app, &rp, &["email"]).await;
    assert_eq!(userinfo(&app, &tokens).await["email_verified"], true);

    // Once only.
    let r = open_link(&app, &link).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text_of(&r.text().await.unwrap(), "#verify-error").is_some());
    // A made-up token is the same answer.
    let r = open_link(&app, "/email/verify?token=made-up").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(audited(&app, "email.verification_sent").await.len(), 1);
    assert_eq!(audited(&app, "email.verified").await.len(), 1);
    // Already confirmed: no new mail.
    let r = ask_for_link(&app).await;
    assert_eq!(location(&r), "/account?notice=verified_already");
}

on_both_backends!(
    a_mailed_link_verifies_the_address,
    super::a_mailed_link_verifies_the_address
);

/// Links expire after 24 hours; a link verifies only the address it was sent to, and a
/// changed address is unverified again; a fourth request within the hour is refused.
async fn links_expire_are_bound_to_the_address_and_throttled(b: Backend) {
    let smtp = SmtpServer::start();
    let Some(app) = mail_app(b, &smtp.url()).await else {
        return;
    };
    app.add_user("bob", false).await;
    let r = app.login("bob", PASSWORD).await;
    assert_eq!(location(&r), "/account");
    for _ in 0..3 {
        assert_eq!(
            location(&ask_for_link(&app).await),
            "/account?notice=verify_sent"
        );
    }
    let r = ask_for_link(&app).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("several times in the last hour"));
    let mails = smtp.wait_for("bob@example.com", 3).await;

    // The first link, 25 hours later: expired.
    app.clock.advance_secs(25 * 3600);
    let r = open_link(&app, &link_in(&mails[0])).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A fresh link, then the address changes (as SCIM provisioning would): it verifies nothing.
    let r = app.login("bob", PASSWORD).await;
    assert_eq!(location(&r), "/account");
    assert_eq!(
        location(&ask_for_link(&app).await),
        "/account?notice=verify_sent"
    );
    let fresh = smtp.wait_for("bob@example.com", 4).await.remove(3);
    let bob = vigil::flow::accounts::find(&app.svc, "bob").await.unwrap();
    change_address(&app, &bob.id, "bob@new.example.com").await;
    let r = open_link(&app, &link_in(&fresh)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("no longer has"));
    let bob = vigil::flow::accounts::find(&app.svc, "bob").await.unwrap();
    assert!(!bob.email_verified);

    // The new address verified, then changed again: unverified again.
    assert_eq!(
        location(&ask_for_link(&app).await),
        "/account?notice=verify_sent"
    );
    let new = smtp.wait_for("bob@new.example.com", 1).await.remove(0);
    assert_eq!(
        open_link(&app, &link_in(&new)).await.status(),
        StatusCode::OK
    );
    assert!(
        vigil::flow::accounts::find(&app.svc, "bob")
            .await
            .unwrap()
            .email_verified
    );
    change_address(&app, &bob.id, "bob@third.example.com").await;
    assert!(
        !vigil::flow::accounts::find(&app.svc, "bob")
            .await
            .unwrap()
            .email_verified
    );
}

on_both_backends!(
    links_expire_are_bound_to_the_address_and_throttled,
    super::links_expire_are_bound_to_the_address_and_throttled
);

/// The mail server is down when the user asks: the request succeeds at once, the message
/// waits in the outbox, and it is delivered once the server is up (after the backoff).
async fn mail_waits_for_a_server_that_is_down(b: Backend) {
    // A port with nothing listening (taken, then let go).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let Some(app) = mail_app(b, &format!("smtp://127.0.0.1:{port}")).await else {
        return;
    };
    app.add_user("carol", false).await;
    assert_eq!(location(&app.login("carol", PASSWORD).await), "/account");
    let started = std::time::Instant::now();
    let r = ask_for_link(&app).await;
    assert_eq!(location(&r), "/account?notice=verify_sent");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the request did not wait for mail"
    );
    // The sender tried and will try again.
    let mut tried = false;
    for _ in 0..100 {
        let d = vigil::flow::mail::drain(&app.svc, app.svc.clock.now().plus_secs(3600))
            .await
            .unwrap();
        if d.retrying > 0 {
            tried = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(tried, "a failed attempt is retried, not lost");
    // The server comes up on that port; an hour later the message is due again and arrives.
    let smtp = SmtpServer::on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    app.clock.advance_secs(2 * 3600);
    let mail = smtp.wait_for("carol@example.com", 1).await.remove(0);
    assert!(link_in(&mail).starts_with("/email/verify?token="));
}

on_both_backends!(
    mail_waits_for_a_server_that_is_down,
    super::mail_waits_for_a_server_that_is_down
);
