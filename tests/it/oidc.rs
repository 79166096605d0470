//! OpenID Connect through a real relying party: the `openidconnect` crate discovers vigil,
//! builds the authorization URL, exchanges the code and validates the ID token against the JWKS.
//! The "browser" is a reqwest client with a cookie jar filling in vigil's real forms.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use url::Url;
use vigil::flow::accounts::Actor;
use vigil::flow::clients::{register, NewClient};

use crate::helpers::{csrf_in, spawn_app, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

pub const REDIRECT: &str = "https://rp.example.com/callback";
pub const SECRET: &str = "rp-secret-0123456789abcdefghijklmnopqrstuvwxyz";

pub struct Rp {
    pub client: openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    pub http: openidconnect::reqwest::Client,
}

pub struct ClientSpec<'a> {
    pub id: &'a str,
    pub public: bool,
    pub first_party: bool,
    pub alg: Option<&'a str>,
    pub backchannel: Option<String>,
    pub grants: Vec<String>,
}

impl Default for ClientSpec<'_> {
    fn default() -> Self {
        ClientSpec {
            id: "rp",
            public: false,
            first_party: true,
            alg: None,
            backchannel: None,
            grants: vec![],
        }
    }
}

pub async fn add_client(app: &TestApp, spec: ClientSpec<'_>) {
    register(
        &app.svc,
        &Actor::new("test"),
        app.svc.clock.now(),
        NewClient {
            id: spec.id.into(),
            name: Some(format!("App {}", spec.id)),
            redirect_uris: vec![REDIRECT.into(), "https://rp.example.com/cb?x=1".into()],
            post_logout_redirect_uris: vec!["https://rp.example.com/bye".into()],
            public: spec.public,
            first_party: spec.first_party,
            grants: spec.grants,
            secret: (!spec.public).then(|| SecretString::from(SECRET.to_owned())),
            backchannel_logout_uri: spec.backchannel,
            id_token_alg: spec.alg.map(str::to_owned),
            access_token_alg: None,
            pkce_optional: false,
            min_acr: None,
            require_role: false,
            privileged_max_age_secs: None,
            provisioning: false,
        },
    )
    .await
    .unwrap();
}

/// A relying party that knows nothing but the issuer URL, its client id and its secret.
pub async fn rp(app: &TestApp, client_id: &str, public: bool) -> Rp {
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
    let secret = (!public).then(|| ClientSecret::new(SECRET.into()));
    let client = CoreClient::from_provider_metadata(meta, ClientId::new(client_id.into()), secret)
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    Rp { client, http }
}

pub struct Started {
    pub url: Url,
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: openidconnect::PkceCodeVerifier,
}

impl Rp {
    pub fn start(&self, scopes: &[&str], extra: &[(&str, &str)]) -> Started {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in scopes {
            req = req.add_scope(Scope::new((*s).into()));
        }
        for (k, v) in extra {
            req = req.add_extra_param(*k, *v);
        }
        let (url, state, nonce) = req.url();
        Started {
            url,
            state,
            nonce,
            verifier,
        }
    }

    /// Redeem the code in `back` (the redirect to the RP) with the request's PKCE verifier.
    pub async fn redeem(
        &self,
        back: &str,
        verifier: openidconnect::PkceCodeVerifier,
    ) -> openidconnect::core::CoreTokenResponse {
        self.client
            .exchange_code(AuthorizationCode::new(query(back)["code"].clone()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .unwrap()
    }
}

/// Where a response sends the browser.
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Follow /authorize to vigil's login form and submit the password; returns the answer to
/// the form (a redirect onwards, a consent page, the step-up page…).
pub async fn password_at_login(app: &TestApp, auth_url: &Url, username: &str) -> reqwest::Response {
    let r = app.http.get(auth_url.as_str()).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let login = location(&r);
    assert!(login.starts_with("/login?tx="), "{login}");
    let page = app.get(&login).await.text().await.unwrap();
    let tx = query(&format!("http://x{login}"))["tx"].clone();
    app.http
        .post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", &csrf_in(&page)),
            ("tx", &tx),
        ])
        .send()
        .await
        .unwrap()
}

/// Follow /authorize through vigil's login form; returns the final redirect to the RP.
pub async fn sign_in_via(app: &TestApp, auth_url: &Url, username: &str) -> String {
    let r = password_at_login(app, auth_url, username).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    location(&r)
}

/// The JSON payload of a JWT (for claims the RP library does not model, like `risk`).
pub fn payload(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

pub fn header(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn the_whole_code_flow(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let s = rp.start(&["email", "profile", "offline_access"], &[]);
    let back = sign_in_via(&app, &s.url, "alice").await;
    assert!(back.starts_with(REDIRECT), "{back}");
    let q = query(&back);
    assert_eq!(&q["state"], s.state.secret());
    assert_eq!(q["iss"], app.base, "RFC 9207 iss");

    let tokens = rp
        .client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(s.verifier)
        .request_async(&rp.http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("id token");
    let verifier = rp.client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &s.nonce)
        .expect("valid ID token: signature via JWKS, iss, aud, nonce, exp");
    // The scope's claims come from UserInfo (OIDC Core §5.4), not the ID token.
    assert!(claims.email().is_none() && claims.preferred_username().is_none());
    assert_eq!(
        claims.auth_context_ref().map(|a| a.as_str()),
        Some("urn:vigil:acr:pwd")
    );
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    assert_eq!(
        amr,
        vec!["pwd", "rba"],
        "password only, let through by the risk engine"
    );
    assert!(claims.auth_time().is_some());
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash), "at_hash");

    let raw_id = payload(&id_token.to_string());
    assert_eq!(raw_id["risk"]["level"], "low");
    assert_eq!(raw_id["risk"]["decision"], "allow");
    assert!(raw_id["sid"].is_string());
    let at = tokens.access_token().secret();
    assert_eq!(header(at)["typ"], "at+jwt", "RFC 9068");
    let at_claims = payload(at);
    assert_eq!(at_claims["client_id"], "rp");
    assert_eq!(at_claims["acr"], "urn:vigil:acr:pwd");
    assert!(at_claims["risk"].is_object() && at_claims["jti"].is_string());

    let ui: Value = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["email"], "alice@example.com");
    assert_eq!(ui["preferred_username"], "alice");
    assert_eq!(ui["sub"], raw_id["sub"]);
    assert!(
        tokens.refresh_token().is_some(),
        "offline_access gives a refresh token"
    );
}
on_both_backends!(the_whole_code_flow, super::the_whole_code_flow);

/// Sign in through the RP and exchange the code; returns the raw token response JSON.
pub async fn tokens_for(app: &TestApp, rp: &Rp, scopes: &[&str]) -> (Value, String) {
    tokens_via(app, rp, scopes, None).await
}

/// [`tokens_for`] as `username` (with [`PASSWORD`]) in a browser with no session yet.
pub async fn tokens_for_user(
    app: &TestApp,
    rp: &Rp,
    username: &str,
    scopes: &[&str],
) -> (Value, String) {
    tokens_via(app, rp, scopes, Some(username)).await
}

async fn tokens_via(
    app: &TestApp,
    rp: &Rp,
    scopes: &[&str],
    user: Option<&str>,
) -> (Value, String) {
    let s = rp.start(scopes, &[]);
    let back = match user {
        Some(u) => sign_in_via(app, &s.url, u).await,
        None => sign_in_or_sso(app, &s.url).await,
    };
    let code = query(&back)["code"].clone();
    let r = app
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
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    (r.json().await.unwrap(), code)
}

/// Authorize with the browser's SSO session, or through the login form if there is none.
pub async fn sign_in_or_sso(app: &TestApp, url: &Url) -> String {
    let r = app.http.get(url.as_str()).send().await.unwrap();
    let loc = location(&r);
    if loc.starts_with("/login") {
        sign_in_via(app, url, "alice").await
    } else {
        loc
    }
}

async fn post_token(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .basic_auth("rp", Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn error_of(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    (status, v["error"].as_str().unwrap_or_default().to_owned())
}

async fn refresh_rotation_and_reuse_detection(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["offline_access"]).await;
    let first = t["refresh_token"].as_str().unwrap().to_owned();

    // The RP library refreshes; the token rotates.
    let refreshed = rp
        .client
        .exchange_refresh_token(&RefreshToken::new(first.clone()))
        .unwrap()
        .request_async(&rp.http)
        .await
        .unwrap();
    let second = refreshed.refresh_token().unwrap().secret().clone();
    assert_ne!(first, second);
    let new_at = refreshed.access_token().secret().clone();
    assert_eq!(
        app.http
            .get(app.url("/userinfo"))
            .bearer_auth(&new_at)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Replaying the rotated token: refused, and the whole family dies with it.
    let (status, err) = error_of(
        post_token(
            &app,
            &[("grant_type", "refresh_token"), ("refresh_token", &first)],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (_, err) = error_of(
        post_token(
            &app,
            &[("grant_type", "refresh_token"), ("refresh_token", &second)],
        )
        .await,
    )
    .await;
    assert_eq!(
        err, "invalid_grant",
        "the newest token of the family is revoked too"
    );
    assert_eq!(
        app.http
            .get(app.url("/userinfo"))
            .bearer_auth(&new_at)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}
on_both_backends!(
    refresh_rotation_and_reuse_detection,
    super::refresh_rotation_and_reuse_detection
);

async fn code_reuse_revokes_what_it_issued(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let s = rp.start(&["offline_access"], &[]);
    let back = sign_in_via(&app, &s.url, "alice").await;
    let code = query(&back)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", s.verifier.secret().as_str()),
    ];
    let t: Value = post_token(&app, &form).await.json().await.unwrap();
    let at = t["access_token"].as_str().unwrap();
    let (status, err) = error_of(post_token(&app, &form).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(
        app.http
            .get(app.url("/userinfo"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let rt = t["refresh_token"].as_str().unwrap();
    let (_, err) = error_of(
        post_token(
            &app,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await,
    )
    .await;
    assert_eq!(err, "invalid_grant");
}
on_both_backends!(
    code_reuse_revokes_what_it_issued,
    super::code_reuse_revokes_what_it_issued
);

#[actix_web::test]
async fn sso_prompt_and_max_age() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;

    // prompt=none without a session: login_required, back at the RP.
    let s = rp.start(&[], &[("prompt", "none")]);
    let r = app.http.get(s.url.as_str()).send().await.unwrap();
    assert_eq!(query(&location(&r))["error"], "login_required");

    sign_in_via(&app, &rp.start(&[], &[]).url, "alice").await;
    // SSO: the second authorization skips the password.
    let r = app
        .http
        .get(rp.start(&[], &[]).url.as_str())
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with(REDIRECT) && query(&location(&r)).contains_key("code"));
    let r = app
        .http
        .get(rp.start(&[], &[("prompt", "none")]).url.as_str())
        .send()
        .await
        .unwrap();
    assert!(
        query(&location(&r)).contains_key("code"),
        "prompt=none with a session"
    );
    // prompt=login and an exceeded max_age force the password again.
    let r = app
        .http
        .get(rp.start(&[], &[("prompt", "login")]).url.as_str())
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/login?tx="));
    app.clock.advance_secs(120);
    let r = app
        .http
        .get(rp.start(&[], &[("max_age", "60")]).url.as_str())
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/login?tx="));
    let r = app
        .http
        .get(rp.start(&[], &[("max_age", "600")]).url.as_str())
        .send()
        .await
        .unwrap();
    assert!(query(&location(&r)).contains_key("code"));
    // A level the session does not have is not silently downgraded.
    let r = app
        .http
        .get(
            rp.start(
                &[],
                &[("acr_values", "urn:vigil:acr:mfa"), ("prompt", "none")],
            )
            .url
            .as_str(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&r))["error"], "login_required");
    // prompt=none with anything else is invalid.
    let r = app
        .http
        .get(rp.start(&[], &[("prompt", "none login")]).url.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&r))["error"], "invalid_request");
}

#[actix_web::test]
async fn consent_for_third_party_clients() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
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
    let s = rp.start(&["email"], &[]);
    let r = password_at_login(&app, &s.url, "alice").await;
    assert_eq!(r.status(), StatusCode::OK, "consent page");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Allow App rp?") && html.contains("See your e-mail address"),
        "{html}"
    );
    let consent = |decision: &'static str, html: String, tx: String| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/consent"))
                .form(&[
                    ("csrf_token", csrf_in(&html)),
                    ("tx", tx),
                    ("decision", decision.into()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let tx = hidden(&html, "tx");
    let r = consent("allow", html, tx).await;
    assert!(query(&location(&r)).contains_key("code"));
    // Remembered: no consent page the second time.
    let r = app
        .http
        .get(rp.start(&["email"], &[]).url.as_str())
        .send()
        .await
        .unwrap();
    assert!(query(&location(&r)).contains_key("code"));
    // prompt=consent asks again; denying sends access_denied.
    let r = app
        .http
        .get(rp.start(&["email"], &[("prompt", "consent")]).url.as_str())
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    let tx = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("input[name=tx]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    let r = consent("deny", html, tx).await;
    assert_eq!(query(&location(&r))["error"], "access_denied");
    // Withdrawn from /account: asked again.
    let account = app.get("/account").await.text().await.unwrap();
    assert!(account.contains("App rp"));
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
        .get(rp.start(&["email"], &[]).url.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "consent page again");
}

#[actix_web::test]
async fn redirect_uri_variants_and_unknown_clients_never_redirect() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    add_client(&app, ClientSpec::default()).await;
    let base = "response_type=code&client_id=rp&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    for bad in [
        "https://rp.example.com/callback/extra",
        "https://rp.example.com/callbackx",
        "https://rp.example.com/callback?x=1",
        "https://rp.example.com/callback#frag",
        "https://RP.example.com/callback",
        "https://evil.example@rp.example.com/callback",
        "https://rp.example.com/Callback",
        "https://rp.example.com/callback/",
        "http://rp.example.com/callback",
        "https://rp.example.com./callback",
        "",
    ] {
        let q = format!("/authorize?{base}&redirect_uri={}", urlencode(bad));
        let r = app.get(&q).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            r.headers().get("location").is_none(),
            "{bad} must not redirect"
        );
    }
    let r = app
        .get(&format!(
            "/authorize?response_type=code&client_id=nobody&scope=openid&redirect_uri={}",
            urlencode(REDIRECT)
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("not registered"));
    let r = app.get("/authorize").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A registered URI with its own query is matched exactly and its query kept.
    let r = app
        .get(&format!(
            "/authorize?{base}&redirect_uri={}&response_type=token",
            urlencode("https://rp.example.com/cb?x=1")
        ))
        .await;
    // A repeated parameter (here response_type) is invalid_request at the client (RFC 6749
    // §3.1, §4.1.2.1), never a code.
    let back = location(&r);
    assert!(
        back.starts_with("https://rp.example.com/cb?x=1&"),
        "duplicate parameter: {back}"
    );
    assert_eq!(query(&back)["error"], "invalid_request");
    assert!(!query(&back).contains_key("code"));
}

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("input[name={name}]")).unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap_or_default()
        .to_owned()
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[actix_web::test]
async fn authorize_errors_go_back_to_the_client() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    add_client(
        &app,
        ClientSpec {
            id: "pub",
            public: true,
            ..Default::default()
        },
    )
    .await;
    let ru = urlencode(REDIRECT);
    let cases = [
        (format!("response_type=token&client_id=pub&scope=openid&redirect_uri={ru}&state=s1"), "unsupported_response_type"),
        (format!("response_type=code&client_id=pub&scope=profile&redirect_uri={ru}&state=s1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"), "invalid_scope"),
        (format!("response_type=code&client_id=pub&scope=openid&redirect_uri={ru}&state=s1"), "invalid_request"),
        (format!("response_type=code&client_id=pub&scope=openid&redirect_uri={ru}&state=s1&code_challenge=abc&code_challenge_method=plain"), "invalid_request"),
        (format!("response_type=code&client_id=pub&scope=openid&redirect_uri={ru}&state=s1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&max_age=-1"), "invalid_request"),
        (format!("response_type=code&client_id=pub&scope=openid&redirect_uri={ru}&state=s1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&request=eyJ"), "request_not_supported"),
        (format!("response_type=code&client_id=pub&scope=openid&redirect_uri={ru}&state=s1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&nonce={}", "n".repeat(5000)), "invalid_request"),
    ];
    for (q, expected) in cases {
        let r = app.get(&format!("/authorize?{q}")).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{expected}");
        let back = query(&location(&r));
        assert_eq!(back["error"], expected, "{q}");
        assert_eq!(back["state"], "s1");
        assert_eq!(back["iss"], app.base);
    }
    // form_post answers with an auto-submitting form instead of a redirect.
    let r = app.get(&format!("/authorize?response_type=token&client_id=pub&scope=openid&redirect_uri={ru}&state=s1&response_mode=form_post")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    let form = html
        .select(&scraper::Selector::parse("form#form-post").unwrap())
        .next()
        .unwrap();
    assert_eq!(form.value().attr("action"), Some(REDIRECT));
    let fields: Vec<(String, String)> = html
        .select(&scraper::Selector::parse("form#form-post input").unwrap())
        .map(|i| {
            (
                i.value().attr("name").unwrap().to_owned(),
                i.value().attr("value").unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        fields.contains(&("error".into(), "unsupported_response_type".into())),
        "{fields:?}"
    );
    assert!(fields.contains(&("state".into(), "s1".into())));
}

#[actix_web::test]
async fn token_endpoint_refuses_every_bent_rule() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
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
    let s = rp.start(&[], &[]);
    let code = query(&sign_in_via(&app, &s.url, "alice").await)["code"].clone();
    let v = s.verifier.secret().clone();
    let good = |extra: &[(&'static str, &str)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT.into()),
            ("code_verifier", v.clone()),
        ];
        for (k, val) in extra {
            f.retain(|(kk, _)| kk != k);
            if !val.is_empty() {
                f.push((k, (*val).to_owned()));
            }
        }
        f
    };
    // Wrong secret: 401 invalid_client with WWW-Authenticate.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("rp", Some("wrong"))
        .form(&good(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    // Another client redeeming the code.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("other", Some(SECRET))
        .form(&good(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.1, "invalid_grant");
    // Wrong and missing PKCE verifier; wrong redirect_uri.
    let wrong_verifier = "x".repeat(43);
    for bad in [
        good(&[("code_verifier", wrong_verifier.as_str())]),
        good(&[("code_verifier", "")]),
        good(&[("redirect_uri", "https://rp.example.com/cb?x=1")]),
    ] {
        let r = app
            .http
            .post(app.url("/token"))
            .basic_auth("rp", Some(SECRET))
            .form(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1, "invalid_grant", "{bad:?}");
    }
    // The code still works for its rightful owner (failed attempts did not burn it)…
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("rp", Some(SECRET))
        .form(&good(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // …and an expired code does not.
    let s = rp.start(&[], &[]);
    let code2 = query(&sign_in_or_sso(&app, &s.url).await)["code"].clone();
    app.clock.advance_secs(121);
    let f = [
        ("grant_type", "authorization_code"),
        ("code", code2.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", s.verifier.secret().as_str()),
    ];
    assert_eq!(
        error_of(post_token(&app, &f).await).await.1,
        "invalid_grant"
    );
    // Malformed and oversize bodies, unknown grants, both auth methods at once: 4xx JSON.
    for (body, ctype, expected) in [
        (
            "grant_type=authorization_code&code=%ZZ&code=1".to_owned(),
            "application/x-www-form-urlencoded",
            "invalid_request",
        ),
        (
            "{\"grant_type\":\"password\"}".to_owned(),
            "application/json",
            "invalid_request",
        ),
        (
            format!("grant_type=authorization_code&code={}", "a".repeat(20_000)),
            "application/x-www-form-urlencoded",
            "invalid_request",
        ),
        (
            "grant_type=password&username=a&password=b".to_owned(),
            "application/x-www-form-urlencoded",
            "unsupported_grant_type",
        ),
        (
            format!("grant_type=client_credentials&client_secret={SECRET}"),
            "application/x-www-form-urlencoded",
            "invalid_request",
        ),
        (
            "grant_type=refresh_token&refresh_token=nope".to_owned(),
            "application/x-www-form-urlencoded",
            "invalid_grant",
        ),
    ] {
        let r = app
            .http
            .post(app.url("/token"))
            .basic_auth("rp", Some(SECRET))
            .header("content-type", ctype)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{body:.60}: {}", r.status());
        assert_eq!(error_of(r).await.1, expected, "{body:.60}");
    }
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
}

#[actix_web::test]
async fn client_credentials_introspection_and_revocation() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    add_client(
        &app,
        ClientSpec {
            id: "web-only",
            grants: vec!["authorization_code".into()],
            ..Default::default()
        },
    )
    .await;
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("rp", Some(SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "reports:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cc: Value = r.json().await.unwrap();
    assert!(cc.get("refresh_token").is_none() && cc.get("id_token").is_none());
    assert_eq!(payload(cc["access_token"].as_str().unwrap())["sub"], "rp");
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("web-only", Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.1, "unauthorized_client");

    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["offline_access"]).await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    let introspect = |token: String| {
        let app = &app;
        async move {
            let v: Value = app
                .http
                .post(app.url("/introspect"))
                .basic_auth("rp", Some(SECRET))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    let i = introspect(at.into()).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["username"], "alice");
    assert_eq!(i["risk"]["level"], "low");
    assert_eq!(introspect(rt.into()).await["active"], true);
    assert_eq!(introspect("garbage".into()).await["active"], false);
    let unauth = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), StatusCode::UNAUTHORIZED);

    for token in [at, rt, "unknown-token"] {
        let r = app
            .http
            .post(app.url("/revoke"))
            .basic_auth("rp", Some(SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(introspect(at.into()).await["active"], false);
    assert_eq!(introspect(rt.into()).await["active"], false);
    assert_eq!(
        app.http
            .get(app.url("/userinfo"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn userinfo_refuses_bad_tokens() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let r = app.get("/userinfo").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    use base64::Engine as _;
    let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = serde_json::json!({"iss": app.base, "sub": "x", "aud": "rp", "exp": 4_000_000_000i64, "iat": 1, "jti": "j", "client_id": "rp", "scope": "openid"});
    let none = format!(
        "{}.{}.",
        e(&serde_json::json!({"alg": "none", "typ": "at+jwt"})),
        e(&claims)
    );
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"k"),
    )
    .unwrap();
    for bad in [none.as_str(), hs.as_str(), "not.a.jwt", "x"] {
        let r = app
            .http
            .get(app.url("/userinfo"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
}

#[actix_web::test]
async fn key_rotation_keeps_old_tokens_verifiable() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp1 = rp(&app, "rp", false).await;
    let s = rp1.start(&[], &[]);
    let code = query(&sign_in_via(&app, &s.url, "alice").await)["code"].clone();
    let before = rp1
        .client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(s.verifier)
        .request_async(&rp1.http)
        .await
        .unwrap();
    let old_kid = header(&before.id_token().unwrap().to_string())["kid"].clone();

    let mut conn = app.svc.db.get().unwrap();
    app.svc
        .keys
        .rotate(&mut conn, app.svc.clock.now(), vigil::oidc::KEY_GRACE_SECS)
        .unwrap();
    drop(conn);

    // A fresh RP (fresh JWKS) still verifies the token signed before the rotation.
    let rp2 = rp(&app, "rp", false).await;
    before
        .id_token()
        .unwrap()
        .claims(&rp2.client.id_token_verifier(), &s.nonce)
        .expect("old token verifies after rotation");
    let s2 = rp2.start(&[], &[]);
    let code = query(&sign_in_or_sso(&app, &s2.url).await)["code"].clone();
    let after = rp2
        .client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(s2.verifier)
        .request_async(&rp2.http)
        .await
        .unwrap();
    assert_ne!(
        header(&after.id_token().unwrap().to_string())["kid"],
        old_kid,
        "new key signs"
    );
    after
        .id_token()
        .unwrap()
        .claims(&rp2.client.id_token_verifier(), &s2.nonce)
        .unwrap();
    // Past the grace period the old key leaves the JWKS.
    app.clock.advance_secs(vigil::oidc::KEY_GRACE_SECS + 30);
    let jwks: Value = app.get("/jwks").await.json().await.unwrap();
    assert!(!jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == old_kid));
}

#[actix_web::test]
async fn es256_and_eddsa_id_tokens_per_client() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.add_user("alice", false).await;
    for (id, alg, jws) in [
        ("es", "ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        ("ed", "EdDSA", CoreJwsSigningAlgorithm::EdDsa),
    ] {
        add_client(
            &app,
            ClientSpec {
                id,
                alg: Some(alg),
                ..Default::default()
            },
        )
        .await;
        let rp = rp(&app, id, false).await;
        let s = rp.start(&[], &[]);
        let code = query(&sign_in_or_sso(&app, &s.url).await)["code"].clone();
        let t = rp
            .client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(s.verifier)
            .request_async(&rp.http)
            .await
            .unwrap();
        let idt = t.id_token().unwrap();
        assert_eq!(header(&idt.to_string())["alg"], alg);
        let verifier = rp.client.id_token_verifier().set_allowed_algs(vec![jws]);
        idt.claims(&verifier, &s.nonce)
            .unwrap_or_else(|e| panic!("{alg}: {e:?}"));
    }
}

#[actix_web::test]
async fn rp_initiated_logout() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &[]).await;
    let idt = t["id_token"].as_str().unwrap();

    // A valid hint and a registered URI: straight back to the RP with state, session over.
    let r = app
        .get(&format!(
            "/logout?id_token_hint={idt}&post_logout_redirect_uri={}&state=bye1",
            urlencode("https://rp.example.com/bye")
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "https://rp.example.com/bye?state=bye1");
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::SEE_OTHER,
        "signed out"
    );

    // An unregistered URI is never redirected to: an error page, and the session stays.
    let (t, _) = tokens_for(&app, &rp, &[]).await;
    let idt = t["id_token"].as_str().unwrap();
    let r = app
        .get(&format!(
            "/logout?id_token_hint={idt}&post_logout_redirect_uri={}",
            urlencode("https://evil.example.com/")
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("not registered"));
    assert_eq!(app.get("/account").await.status(), StatusCode::OK);
    let r = app.get(&format!("/logout?id_token_hint={idt}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("signed out"));

    // Without a hint the user confirms first (a cross-site link cannot sign them out).
    tokens_for(&app, &rp, &[]).await;
    let r = app
        .get(&format!(
            "/logout?client_id=rp&post_logout_redirect_uri={}&state=z",
            urlencode("https://rp.example.com/bye")
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Sign out of vigil?"));
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::OK,
        "still signed in until confirmed"
    );
    let form = scraper::Html::parse_document(&html);
    let val = |n: &str| {
        form.select(&scraper::Selector::parse(&format!("input[name={n}]")).unwrap())
            .next()
            .unwrap()
            .value()
            .attr("value")
            .unwrap()
            .to_owned()
    };
    let r = app
        .http
        .post(app.url("/logout/confirm"))
        .form(&[
            ("csrf_token", val("csrf_token")),
            ("client_id", val("client_id")),
            ("post_logout_redirect_uri", val("post_logout_redirect_uri")),
            ("state", val("state")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "https://rp.example.com/bye?state=z");
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn back_channel_logout_is_delivered() {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = received.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        let sink = sink.clone();
        actix_web::App::new().route(
            "/bc",
            actix_web::web::post().to(
                move |f: actix_web::web::Form<std::collections::HashMap<String, String>>| {
                    let sink = sink.clone();
                    async move {
                        sink.lock()
                            .unwrap()
                            .push(f.get("logout_token").cloned().unwrap_or_default());
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

    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.add_user("alice", false).await;
    add_client(
        &app,
        ClientSpec {
            backchannel: Some(format!("http://127.0.0.1:{port}/bc")),
            ..Default::default()
        },
    )
    .await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &[]).await;
    let id_claims = payload(t["id_token"].as_str().unwrap());
    let account = app.get("/account").await.text().await.unwrap();
    app.http
        .post(app.url("/logout/session"))
        .form(&[("csrf_token", csrf_in(&account))])
        .send()
        .await
        .unwrap();
    let mut token = None;
    for _ in 0..50 {
        if let Some(t) = received.lock().unwrap().first().cloned() {
            token = Some(t);
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let token = token.expect("logout token delivered");
    let keys = app.svc.keys.current(app.svc.clock.now()).await.unwrap();
    let claims: Value = keys
        .verify(&token, &app.base, Some("logout+jwt"), true)
        .expect("signed by a published key");
    assert_eq!(claims["aud"], "rp");
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
}

#[actix_web::test]
async fn discovery_describes_the_provider() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let d: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], app.base);
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    for claim in ["risk", "acr", "amr", "auth_time", "sid"] {
        assert!(
            d["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == claim),
            "{claim}"
        );
    }
    assert!(d["acr_values_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "urn:vigil:acr:mfa"));
    let jwks: Value = app.get("/jwks").await.json().await.unwrap();
    let kty: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert!(
        kty.contains(&"RSA") && kty.contains(&"EC") && kty.contains(&"OKP"),
        "{kty:?}"
    );
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none()),
        "no private parts"
    );
}
