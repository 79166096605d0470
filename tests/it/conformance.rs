//! The OpenID Foundation conformance suite's OP test plans, ported: Basic OP, Config OP, Form
//! Post OP, RP-Initiated Logout OP and Back-Channel Logout OP. One test per module that applies
//! to a code-flow provider, named after the module (`oidcc-codereuse` -> `oidcc_codereuse`).
//!
//! Each test drives the real server the way the suite does: a relying party that knows only the
//! issuer, a confidential client (`client_secret_basic` unless the module says otherwise) that
//! sends what the suite sends — no PKCE unless the module adds it, a random `state` and `nonce`,
//! `scope=openid` — and a browser with its own cookie jar filling in vigil's real forms. The
//! Basic modules run in both response modes: `query` (the Basic plan) and `form_post` (the Form
//! Post plan runs the same modules with `response_mode=form_post`).
//!
//! Each test asserts what the module checks and fails where the suite would only warn (a reused
//! code that does not revoke its tokens, an `email` in the ID token the RP did not ask for, an
//! access token in a POST body refused, unexpected parameters in a response…). The README's
//! "OpenID conformance, ported" table lists every module, its test, and the modules that do not
//! apply with the reason.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use openidconnect::core::CoreIdToken;
use openidconnect::Nonce;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Digest as _;
use url::Url;
use vigil::flow::accounts::{self, Actor, NewAccount};
use vigil::flow::clients::{register, NewClient};

use crate::helpers::{client as browser, spawn_app, spawn_app_with, Backend, TestApp, PASSWORD};
use crate::oidc::{header, hidden, location, payload, rp, Rp, REDIRECT, SECRET};
use crate::on_both_backends;

/// The post-logout URI the suite registers: the redirect URI's base with `/post_logout_redirect`.
const POST_LOGOUT: &str = "https://rp.example.com/post_logout_redirect";
/// The suite's test user ("buffy"), with a name so that `profile` has something to release.
const USER: &str = "buffy";
const USER_NAME: &str = "Buffy Summers";
/// Parameters an authorization error response may carry (RFC 6749 §4.1.2.1, RFC 9207).
const ERROR_PARAMS: &[&str] = &["error", "error_description", "error_uri", "state", "iss"];
/// Standard claims a scope releases (OIDC Core §5.4): none of them belongs in a code-flow ID
/// token the RP did not ask to carry them.
const SCOPE_CLAIMS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
    "address",
    "phone_number",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Query,
    FormPost,
}

/// The Basic plan's response mode, then the Form Post plan's.
const MODES: [Mode; 2] = [Mode::Query, Mode::FormPost];

#[derive(Debug, Clone, Copy)]
enum ClientAuth {
    Basic,
    Post,
}

/// The provider under test, its discovery document, and the suite's relying party.
struct Op {
    app: TestApp,
    rp: Rp,
    /// Further registered clients' relying parties (oidcc-refresh-token's second client).
    others: Vec<(String, Rp)>,
    disc: Value,
    /// The RP's back-channel HTTP client (token, userinfo): no cookies shared with the browser.
    backend: reqwest::Client,
}

struct ClientOpts<'a> {
    id: &'a str,
    backchannel: Option<String>,
}

async fn add_suite_client(app: &TestApp, o: ClientOpts<'_>) {
    register(
        &app.svc,
        &Actor::new("test"),
        app.svc.clock.now(),
        NewClient {
            id: o.id.into(),
            name: Some(format!("Conformance {}", o.id)),
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![POST_LOGOUT.into()],
            public: false,
            // The suite's static client is the operator's own registration: first party.
            first_party: true,
            grants: vec![],
            secret: Some(SecretString::from(SECRET.to_owned())),
            backchannel_logout_uri: o.backchannel,
            id_token_alg: None,
            access_token_alg: None,
            // The suite sends PKCE only in oidcc-ensure-request-with-valid-pkce-succeeds; a
            // certification run registers its client with --pkce-optional.
            pkce_optional: true,
            min_acr: None,
            require_role: false,
            privileged_max_age_secs: None,
            provisioning: false,
        },
    )
    .await
    .unwrap();
}

async fn op_with(b: Backend, backchannel: Option<String>) -> Op {
    let app = spawn_app(b).await.unwrap();
    accounts::create(
        &app.svc,
        &Actor::new("test"),
        app.svc.clock.now(),
        NewAccount {
            username: USER.into(),
            email: format!("{USER}@example.com"),
            name: USER_NAME.into(),
            is_admin: false,
            password: SecretString::from(PASSWORD.to_owned()),
        },
    )
    .await
    .unwrap();
    add_suite_client(
        &app,
        ClientOpts {
            id: "rp",
            backchannel,
        },
    )
    .await;
    let rp = rp(&app, "rp", false).await;
    let disc: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let backend = browser(app.port);
    Op {
        app,
        rp,
        others: vec![],
        disc,
        backend,
    }
}

async fn op(b: Backend) -> Op {
    op_with(b, None).await
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// An authorization request as the suite builds it: parameters in order, editable.
#[derive(Debug, Clone)]
struct AuthReq {
    client_id: String,
    params: Vec<(String, String)>,
    state: String,
    nonce: Option<String>,
    mode: Mode,
}

impl AuthReq {
    fn new(mode: Mode, scope: &str) -> AuthReq {
        AuthReq::for_client("rp", mode, scope)
    }

    fn for_client(client_id: &str, mode: Mode, scope: &str) -> AuthReq {
        let state = random();
        let nonce = random();
        let mut params: Vec<(String, String)> = vec![
            ("client_id".into(), client_id.into()),
            ("redirect_uri".into(), REDIRECT.into()),
            ("scope".into(), scope.into()),
            ("state".into(), state.clone()),
            ("nonce".into(), nonce.clone()),
            ("response_type".into(), "code".into()),
        ];
        if mode == Mode::FormPost {
            params.push(("response_mode".into(), "form_post".into()));
        }
        AuthReq {
            client_id: client_id.into(),
            params,
            state,
            nonce: Some(nonce),
            mode,
        }
    }

    fn set(mut self, k: &str, v: &str) -> AuthReq {
        match self.params.iter_mut().find(|(kk, _)| kk == k) {
            Some(p) => p.1 = v.to_owned(),
            None => self.params.push((k.to_owned(), v.to_owned())),
        }
        if k == "state" {
            self.state = v.to_owned();
        }
        if k == "nonce" {
            self.nonce = Some(v.to_owned());
        }
        self
    }

    fn without(mut self, k: &str) -> AuthReq {
        self.params.retain(|(kk, _)| kk != k);
        if k == "nonce" {
            self.nonce = None;
        }
        self
    }

    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            q.append_pair(k, v);
        }
        q.finish()
    }

    fn url(&self, app: &TestApp) -> String {
        format!("{}/authorize?{}", app.base, self.query())
    }
}

/// What reached the RP's redirect URI.
#[derive(Debug, Clone)]
struct Callback {
    /// `form_post`: the browser POSTs a form; `query`: it GETs the URI.
    post: bool,
    /// The URI without its query.
    target: String,
    /// The authorization response's parameters (the query, or the form's fields).
    params: HashMap<String, String>,
    /// The query of the URI the browser is sent to (empty for a correct `form_post`).
    url_query: HashMap<String, String>,
}

/// Where a browser ends up after following vigil's own redirects.
#[derive(Debug)]
enum Landing {
    Callback(Callback),
    Login { url: String, html: String },
    Consent { html: String },
    Page { status: StatusCode, html: String },
}

fn query_of(u: &Url) -> HashMap<String, String> {
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn without_query(u: &Url) -> String {
    let mut t = u.clone();
    t.set_query(None);
    t.to_string()
}

/// The auto-submitting form of a `form_post` response, if the page is one.
fn form_post_of(html: &str) -> Option<Callback> {
    let doc = scraper::Html::parse_document(html);
    let form = doc
        .select(&scraper::Selector::parse("form#form-post").unwrap())
        .next()?;
    let action = Url::parse(form.value().attr("action")?).ok()?;
    let method = form.value().attr("method").unwrap_or("get");
    let enctype = form
        .value()
        .attr("enctype")
        .unwrap_or("application/x-www-form-urlencoded");
    assert_eq!(
        enctype, "application/x-www-form-urlencoded",
        "OAuth2-FP-2: the form posts application/x-www-form-urlencoded"
    );
    let params = form
        .select(&scraper::Selector::parse("input").unwrap())
        .filter_map(|i| {
            Some((
                i.value().attr("name")?.to_owned(),
                i.value().attr("value").unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    Some(Callback {
        post: method.eq_ignore_ascii_case("post"),
        target: without_query(&action),
        params,
        url_query: query_of(&action),
    })
}

/// Follow vigil's own redirects (never the RP's) to the page or callback the user would see.
async fn follow(app: &TestApp, b: &reqwest::Client, mut r: reqwest::Response) -> Landing {
    for _ in 0..10 {
        let status = r.status();
        if status.is_redirection() {
            let loc = location(&r);
            let abs = if loc.starts_with('/') {
                app.url(&loc)
            } else {
                loc.clone()
            };
            if abs.starts_with(&app.base) {
                let path = &abs[app.base.len()..];
                if path.starts_with("/login?") || path == "/login" {
                    let html = b.get(&abs).send().await.unwrap().text().await.unwrap();
                    return Landing::Login { url: abs, html };
                }
                r = b.get(&abs).send().await.unwrap();
                continue;
            }
            let u = Url::parse(&abs).unwrap_or_else(|e| panic!("{abs}: {e}"));
            return Landing::Callback(Callback {
                post: false,
                target: without_query(&u),
                params: query_of(&u),
                url_query: query_of(&u),
            });
        }
        let html = r.text().await.unwrap();
        if let Some(cb) = form_post_of(&html) {
            return Landing::Callback(cb);
        }
        if html.contains("action=\"/consent\"") {
            return Landing::Consent { html };
        }
        return Landing::Page { status, html };
    }
    panic!("more than 10 redirects inside vigil");
}

/// Fill in the login form vigil showed.
async fn submit_login(app: &TestApp, b: &reqwest::Client, url: &str, html: &str) -> Landing {
    let tx = query_of(&Url::parse(url).unwrap())
        .get("tx")
        .cloned()
        .expect("a login page for an authorization request carries its tx");
    let r = b
        .post(app.url("/login"))
        .form(&[
            ("username", USER),
            ("password", PASSWORD),
            ("csrf_token", &crate::helpers::csrf_in(html)),
            ("tx", &tx),
        ])
        .send()
        .await
        .unwrap();
    follow(app, b, r).await
}

async fn allow_consent(app: &TestApp, b: &reqwest::Client, html: &str) -> Landing {
    let r = b
        .post(app.url("/consent"))
        .form(&[
            ("csrf_token", crate::helpers::csrf_in(html)),
            ("tx", hidden(html, "tx")),
            ("decision", "allow".into()),
        ])
        .send()
        .await
        .unwrap();
    follow(app, b, r).await
}

/// How the user got through: did vigil ask for the password?
struct Authorized {
    cb: Callback,
    login_page: Option<String>,
    consent_shown: bool,
}

/// Send the browser to /authorize with `r` and take it through whatever vigil asks (login,
/// consent) to the RP's redirect URI.
async fn authorize(op: &Op, b: &reqwest::Client, r: &AuthReq) -> Authorized {
    let resp = b.get(r.url(&op.app)).send().await.unwrap();
    complete(op, b, resp).await
}

async fn complete(op: &Op, b: &reqwest::Client, resp: reqwest::Response) -> Authorized {
    let mut landing = follow(&op.app, b, resp).await;
    let mut login_page = None;
    let mut consent_shown = false;
    for _ in 0..3 {
        landing = match landing {
            Landing::Callback(cb) => {
                return Authorized {
                    cb,
                    login_page,
                    consent_shown,
                }
            }
            Landing::Login { url, html } => {
                let next = submit_login(&op.app, b, &url, &html).await;
                login_page = Some(html);
                next
            }
            Landing::Consent { html } => {
                consent_shown = true;
                allow_consent(&op.app, b, &html).await
            }
            Landing::Page { status, html } => panic!("stuck at a {status} page: {html:.600}"),
        };
    }
    panic!("no callback after login and consent: {landing:?}");
}

/// The checks the suite makes on every authorization response that reached the RP
/// (CheckMatchingCallbackParameters, ValidateIssIfPresentInAuthorizationResponse,
/// CheckStateInAuthorizationResponse, and for form_post OAuth2-FP-2 and OIDCC-3.3.2.5).
fn check_response_delivery(op: &Op, r: &AuthReq, cb: &Callback) {
    assert_eq!(cb.target, REDIRECT, "the registered redirect URI");
    match r.mode {
        Mode::Query => assert!(!cb.post, "query mode redirects"),
        Mode::FormPost => {
            assert!(cb.post, "form_post: the browser POSTs the response");
            assert!(
                !cb.url_query.contains_key("code") && !cb.url_query.contains_key("error"),
                "form_post: nothing in the URL query: {:?}",
                cb.url_query
            );
        }
    }
    assert_eq!(cb.params.get("iss"), Some(&op.app.base), "RFC 9207 iss");
}

/// A successful authorization response: the code, our state, no error.
fn code_of(op: &Op, r: &AuthReq, cb: &Callback) -> String {
    check_response_delivery(op, r, cb);
    assert!(!cb.params.contains_key("error"), "{:?}", cb.params);
    assert_eq!(cb.params.get("state"), Some(&r.state), "state echoed");
    let code = cb.params.get("code").cloned().expect("a code");
    assert!(!code.is_empty());
    for k in cb.params.keys() {
        assert!(
            ["code", "state", "iss"].contains(&k.as_str()),
            "unexpected parameter {k} in the authorization response"
        );
    }
    code
}

/// An error response (performGenericAuthorizationEndpointErrorResponseValidation): our state,
/// the issuer, no code, only the parameters RFC 6749 §4.1.2.1 and RFC 9207 define, and an
/// `error_description` within RFC 6749's character set. Returns the error code.
fn error_of(op: &Op, r: &AuthReq, cb: &Callback, expect_state: bool) -> String {
    check_response_delivery(op, r, cb);
    assert!(!cb.params.contains_key("code"), "no code with an error");
    if expect_state {
        assert_eq!(cb.params.get("state"), Some(&r.state), "state echoed");
    }
    for k in cb.params.keys() {
        assert!(
            ERROR_PARAMS.contains(&k.as_str()),
            "unexpected parameter {k} in the error response"
        );
    }
    if let Some(d) = cb.params.get("error_description") {
        assert!(
            d.chars()
                .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')),
            "error_description outside RFC 6749 §4.1.2.1's characters: {d:?}"
        );
    }
    cb.params.get("error").cloned().expect("an error code")
}

/// The token endpoint's answer to a code, with client authentication as `auth`.
async fn redeem(
    op: &Op,
    code: &str,
    auth: ClientAuth,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    redeem_as(op, "rp", code, auth, extra).await
}

async fn redeem_as(
    op: &Op,
    client_id: &str,
    code: &str,
    auth: ClientAuth,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    form.extend_from_slice(extra);
    token_call(op, client_id, auth, &form).await
}

async fn token_call(
    op: &Op,
    client_id: &str,
    auth: ClientAuth,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = form.to_vec();
    let req = op.backend.post(op.app.url("/token"));
    let req = match auth {
        ClientAuth::Basic => req.basic_auth(client_id, Some(SECRET)),
        ClientAuth::Post => {
            form.push(("client_id", client_id));
            form.push(("client_secret", SECRET));
            req
        }
    };
    req.form(&form).send().await.unwrap()
}

/// A successful token response and its verified ID token.
#[derive(Debug, Clone)]
struct Tokens {
    access: String,
    refresh: Option<String>,
    id_raw: String,
    id: Value,
    scope: String,
}

fn is_json(r: &reqwest::Response) -> bool {
    r.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// CheckTokenEndpointHttpStatus200, the cache headers, CheckForAccessTokenValue,
/// ValidateExpiresIn, ExtractIdTokenFromTokenResponse, then PerformStandardIdTokenChecks.
async fn tokens_from(op: &Op, r: &AuthReq, resp: reqwest::Response) -> Tokens {
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(is_json(&resp), "application/json");
    assert_eq!(resp.headers()["cache-control"], "no-store", "RFC 6749 §5.1");
    let t: Value = resp.json().await.unwrap();
    assert!(
        t["token_type"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("bearer")),
        "{t}"
    );
    let access = t["access_token"].as_str().expect("access_token").to_owned();
    assert!(access
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b' '));
    assert!(
        t["expires_in"].as_i64().is_some_and(|e| e > 0),
        "expires_in a positive integer: {t}"
    );
    let id_raw = t["id_token"].as_str().expect("id_token").to_owned();
    let id = check_id_token(op, &r.client_id, &id_raw, r.nonce.as_deref(), &access);
    Tokens {
        access,
        refresh: t["refresh_token"].as_str().map(str::to_owned),
        id_raw,
        id,
        scope: t["scope"].as_str().unwrap_or_default().to_owned(),
    }
}

/// The relying party registered as `client_id`.
fn rp_of<'a>(op: &'a Op, client_id: &str) -> &'a Rp {
    if client_id == "rp" {
        return &op.rp;
    }
    op.others
        .iter()
        .find(|(id, _)| id == client_id)
        .map(|(_, rp)| rp)
        .unwrap_or_else(|| panic!("no RP {client_id}"))
}

/// The app's "now" in seconds (the test clock may be shifted).
fn now_secs(op: &Op) -> i64 {
    op.app.svc.clock.now().secs()
}

/// PerformStandardIdTokenChecks: the RP library verifies the signature against the JWKS, `iss`,
/// `aud`, `exp` and the nonce; then ValidateIdToken's time checks, ValidateIdTokenStandardClaims'
/// types, CheckForSubjectInIdToken, `at_hash`. Returns the claims.
fn check_id_token(
    op: &Op,
    client_id: &str,
    raw: &str,
    nonce: Option<&str>,
    access_token: &str,
) -> Value {
    let idt = CoreIdToken::from_str(raw).expect("a JWS");
    let verifier = rp_of(op, client_id).client.id_token_verifier();
    match nonce {
        Some(n) => {
            idt.claims(&verifier, &Nonce::new(n.to_owned()))
                .expect("valid ID token: signature via JWKS, iss, aud, exp, nonce");
        }
        None => {
            idt.claims(&verifier, |n: Option<&Nonce>| match n {
                None => Ok(()),
                Some(_) => Err("a nonce the request did not send".to_owned()),
            })
            .expect("valid ID token without a nonce");
        }
    }
    let c = payload(raw);
    let h = header(raw);
    let now = now_secs(op);
    assert_eq!(c["iss"], op.app.base);
    match &c["aud"] {
        Value::String(a) => assert_eq!(a, client_id),
        Value::Array(a) => {
            assert!(a.iter().any(|x| x == client_id));
            if a.len() > 1 {
                assert_eq!(c["azp"], client_id);
            }
        }
        other => panic!("aud: {other}"),
    }
    let iat = c["iat"].as_i64().expect("iat");
    assert!(iat <= now + 300, "iat in the future");
    assert!(iat >= now - 300, "iat more than 5 minutes in the past");
    let exp = c["exp"].as_i64().expect("exp");
    assert!(exp > now && exp < now + 50 * 365 * 86_400, "exp in seconds");
    let auth_time = c["auth_time"].as_i64().expect("auth_time");
    assert!(auth_time <= now + 300 && auth_time > now - 365 * 86_400);
    assert!(
        c["acr"].as_str().is_some_and(|a| !a.is_empty()),
        "acr a non-empty string"
    );
    assert!(c["sub"].as_str().is_some_and(|s| !s.is_empty()), "sub");
    assert!(c["sub"].as_str().unwrap().len() <= 255, "OIDC Core §2");
    if let Some(amr) = c.get("amr") {
        assert!(amr
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)));
    }
    match nonce {
        Some(n) => assert_eq!(c["nonce"], n),
        None => assert!(c.get("nonce").is_none(), "no nonce asked, none returned"),
    }
    check_standard_claim_types(&c);
    // OIDC Core §3.1.3.6: at_hash is the left half of the access token's hash.
    let at_hash = c["at_hash"].as_str().expect("at_hash");
    let alg = h["alg"].as_str().unwrap();
    let digest: Vec<u8> = if alg == "EdDSA" {
        sha2::Sha512::digest(access_token.as_bytes()).to_vec()
    } else {
        sha2::Sha256::digest(access_token.as_bytes()).to_vec()
    };
    assert_eq!(
        at_hash,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
    );
    c
}

/// ValidateIdTokenStandardClaims / ValidateUserInfoStandardClaims: each standard claim present
/// has the type OIDC Core §5.1 gives it.
fn check_standard_claim_types(c: &Value) {
    for s in [
        "sub",
        "name",
        "given_name",
        "family_name",
        "preferred_username",
        "email",
        "locale",
        "zoneinfo",
    ] {
        if let Some(v) = c.get(s) {
            assert!(v.is_string(), "{s} must be a string: {v}");
        }
    }
    for b in ["email_verified", "phone_number_verified"] {
        if let Some(v) = c.get(b) {
            assert!(v.is_boolean(), "{b} must be a boolean: {v}");
        }
    }
    if let Some(v) = c.get("updated_at") {
        assert!(
            v.as_i64().is_some_and(|t| t > 0),
            "updated_at in seconds: {v}"
        );
    }
}

/// The ID token carries no standard claim the RP did not ask to have there (OIDC Core §5.4: a
/// code flow's scope claims come from UserInfo). The suite warns on `email` and `name`.
fn assert_no_scope_claims_in_id_token(id: &Value) {
    for c in SCOPE_CLAIMS {
        assert!(
            id.get(*c).is_none(),
            "{c} in the ID token: the scope's claims belong at UserInfo"
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum UserinfoCall {
    Get,
    PostHeader,
    PostBody,
}

async fn userinfo_call(op: &Op, access: &str, how: UserinfoCall) -> reqwest::Response {
    let url = op.app.url("/userinfo");
    match how {
        UserinfoCall::Get => op.backend.get(url).bearer_auth(access),
        UserinfoCall::PostHeader => op.backend.post(url).bearer_auth(access),
        UserinfoCall::PostBody => op.backend.post(url).form(&[("access_token", access)]),
    }
    .send()
    .await
    .unwrap()
}

/// AbstractOIDCCUserInfoTest: 200, JSON, `sub` (the ID token's), standard claim types.
async fn userinfo(op: &Op, t: &Tokens, how: UserinfoCall) -> Value {
    let r = userinfo_call(op, &t.access, how).await;
    assert_eq!(r.status(), StatusCode::OK, "{how:?}");
    assert!(is_json(&r), "OIDC Core §5.3.2: application/json");
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["sub"], t.id["sub"], "OIDC Core §5.3.2: the same sub");
    check_standard_claim_types(&u);
    u
}

/// The happy flow every module starts with: authorize (signing in if needed), check the
/// response, redeem the code with `client_secret_basic`, verify the tokens.
async fn happy(op: &Op, b: &reqwest::Client, r: &AuthReq) -> (Authorized, Tokens) {
    let a = authorize(op, b, r).await;
    let code = code_of(op, r, &a.cb);
    let t = tokens_from(op, r, redeem(op, &code, ClientAuth::Basic, &[]).await).await;
    (a, t)
}

async fn status_of_userinfo(op: &Op, access: &str) -> StatusCode {
    userinfo_call(op, access, UserinfoCall::Get).await.status()
}

/// A page vigil shows the user instead of redirecting (an error it must not send to an
/// unverified URI).
fn assert_page_not_redirect(r: &reqwest::Response) {
    assert!(
        r.headers().get("location").is_none(),
        "must not redirect: {:?}",
        r.headers().get("location")
    );
}

/// The JWKS checks of every module's configuration step: each key has a `kid`, the `kid`s are
/// distinct, no private or symmetric key material.
async fn check_jwks(op: &Op) -> Value {
    let r = op.app.get("/jwks").await;
    assert_eq!(r.status(), StatusCode::OK);
    let jwks: Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().expect("keys");
    assert!(!keys.is_empty());
    let mut kids = std::collections::HashSet::new();
    for k in keys {
        let kid = k["kid"]
            .as_str()
            .expect("OIDC Core §10.1: every key has a kid");
        assert!(kids.insert(kid.to_owned()), "RFC 7517 §4.5: distinct kids");
        assert!(
            ["RSA", "EC", "OKP"].contains(&k["kty"].as_str().unwrap_or_default()),
            "{k}"
        );
        for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
            assert!(k.get(private).is_none(), "private member {private} in {k}");
        }
    }
    jwks
}

// ───────────────────────────── Basic OP / Form Post OP ─────────────────────────────

async fn oidcc_server(b: Backend) {
    let op = op(b).await;
    check_jwks(&op).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid");
        let (a, t) = happy(&op, &br, &r).await;
        assert!(a.login_page.is_some(), "a fresh browser signs in");
        assert_no_scope_claims_in_id_token(&t.id);
        userinfo(&op, &t, UserinfoCall::Get).await;
    }
}
on_both_backends!(oidcc_server, super::oidcc_server);

async fn oidcc_response_type_missing(b: Backend) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid").without("response_type");
        let resp = br.get(r.url(&op.app)).send().await.unwrap();
        let Landing::Callback(cb) = follow(&op.app, &br, resp).await else {
            panic!("the error goes back to the registered redirect URI");
        };
        let err = error_of(&op, &r, &cb, true);
        assert!(
            err == "invalid_request" || err == "unsupported_response_type",
            "{err}"
        );
    }
}
on_both_backends!(
    oidcc_response_type_missing,
    super::oidcc_response_type_missing
);

async fn oidcc_idtoken_signature(b: Backend) {
    let op = op(b).await;
    let jwks = check_jwks(&op).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid");
        let (_, t) = happy(&op, &br, &r).await;
        let h = header(&t.id_raw);
        assert_eq!(h["alg"], "RS256", "OIDC Core §3.1.3.7: RS256 by default");
        let kid = h["kid"]
            .as_str()
            .expect("OIDC Core §10.1: kid in the header");
        assert!(
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kid"] == kid && k["kty"] == "RSA"),
            "the kid names a published RSA key"
        );
    }
}
on_both_backends!(oidcc_idtoken_signature, super::oidcc_idtoken_signature);

async fn userinfo_module(b: Backend, how: UserinfoCall) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid");
        let (_, t) = happy(&op, &br, &r).await;
        let u = userinfo(&op, &t, how).await;
        assert_eq!(
            u.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["sub"],
            "scope=openid releases only sub"
        );
    }
}

async fn oidcc_userinfo_get(b: Backend) {
    userinfo_module(b, UserinfoCall::Get).await;
}
on_both_backends!(oidcc_userinfo_get, super::oidcc_userinfo_get);

async fn oidcc_userinfo_post_header(b: Backend) {
    userinfo_module(b, UserinfoCall::PostHeader).await;
}
on_both_backends!(
    oidcc_userinfo_post_header,
    super::oidcc_userinfo_post_header
);

async fn oidcc_userinfo_post_body(b: Backend) {
    // The suite accepts a refusal with a warning; vigil takes the token from the body
    // (RFC 6750 §2.2), and still refuses a token sent twice (header and body).
    userinfo_module(b, UserinfoCall::PostBody).await;
    let op = op(b).await;
    let br = browser(op.app.port);
    let r = AuthReq::new(Mode::Query, "openid");
    let (_, t) = happy(&op, &br, &r).await;
    let twice = op
        .backend
        .post(op.app.url("/userinfo"))
        .bearer_auth(&t.access)
        .form(&[("access_token", t.access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST, "RFC 6750 §2");
    let revoked = op
        .backend
        .post(op.app.url("/userinfo"))
        .form(&[("access_token", "not-a-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    assert!(revoked.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}
on_both_backends!(oidcc_userinfo_post_body, super::oidcc_userinfo_post_body);

async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow(b: Backend) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid").without("nonce");
        let (_, t) = happy(&op, &br, &r).await;
        assert!(t.id.get("nonce").is_none());
    }
}
on_both_backends!(
    oidcc_ensure_request_without_nonce_succeeds_for_code_flow,
    super::oidcc_ensure_request_without_nonce_succeeds_for_code_flow
);

/// AbstractOIDCCReturnedClaimsServerTest: the scope's claims at UserInfo (the suite warns when
/// none is returned; here every claim vigil holds must be), none in the ID token.
async fn scope_module(b: Backend, scope: &str, reorder: bool) -> Vec<Value> {
    let op = op(b).await;
    let mut out = vec![];
    for mode in MODES {
        let br = browser(op.app.port);
        let mut r = AuthReq::new(mode, scope);
        if reorder {
            // oidcc-alternate-happy-flow: the scope's values and the parameters reversed.
            let reversed: Vec<&str> = scope.split(' ').rev().collect();
            r = r.set("scope", &reversed.join(" "));
            r.params.sort_by(|a, b| b.0.cmp(&a.0));
        }
        let (_, t) = happy(&op, &br, &r).await;
        assert_no_scope_claims_in_id_token(&t.id);
        let u = userinfo(&op, &t, UserinfoCall::Get).await;
        let asked: Vec<&str> = scope.split(' ').collect();
        if asked.contains(&"profile") {
            assert_eq!(u["name"], USER_NAME);
            assert_eq!(u["preferred_username"], USER);
            assert!(u["updated_at"].is_i64());
        } else {
            assert!(u.get("name").is_none(), "name without profile: {u}");
            assert!(u.get("preferred_username").is_none());
        }
        if asked.contains(&"email") {
            assert_eq!(u["email"], format!("{USER}@example.com"));
            assert_eq!(u["email_verified"], false);
        } else {
            assert!(u.get("email").is_none(), "email without the scope: {u}");
        }
        assert!(u.get("address").is_none() && u.get("phone_number").is_none());
        let granted: Vec<&str> = t.scope.split(' ').collect();
        assert!(granted.contains(&"openid"), "{}", t.scope);
        for s in ["address", "phone"] {
            assert!(
                !granted.contains(&s),
                "a scope vigil cannot honour is not granted: {}",
                t.scope
            );
        }
        out.push(u);
    }
    out
}

async fn oidcc_scope_profile(b: Backend) {
    scope_module(b, "openid profile", false).await;
}
on_both_backends!(oidcc_scope_profile, super::oidcc_scope_profile);

async fn oidcc_scope_email(b: Backend) {
    scope_module(b, "openid email", false).await;
}
on_both_backends!(oidcc_scope_email, super::oidcc_scope_email);

async fn oidcc_scope_all(b: Backend) {
    // address and phone are not in scopes_supported: ignored (RFC 6749 §3.3), the rest served.
    scope_module(b, "openid address email phone profile", false).await;
}
on_both_backends!(oidcc_scope_all, super::oidcc_scope_all);

async fn oidcc_alternate_happy_flow(b: Backend) {
    scope_module(b, "openid email", true).await;
}
on_both_backends!(
    oidcc_alternate_happy_flow,
    super::oidcc_alternate_happy_flow
);

/// A parameter the OP must accept without error ("must not cause an error"); a fresh browser
/// gets the ordinary login page and completes the flow.
async fn accepted_parameter(b: Backend, k: &str, v: &str) -> Vec<String> {
    let op = op(b).await;
    let mut pages = vec![];
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid").set(k, v);
        let (a, _) = happy(&op, &br, &r).await;
        let page = a.login_page.expect("a fresh browser sees the login page");
        assert!(page.contains("name=\"username\""), "the login form");
        pages.push(page);
    }
    pages
}

async fn oidcc_display_page(b: Backend) {
    accepted_parameter(b, "display", "page").await;
}
on_both_backends!(oidcc_display_page, super::oidcc_display_page);

async fn oidcc_display_popup(b: Backend) {
    accepted_parameter(b, "display", "popup").await;
}
on_both_backends!(oidcc_display_popup, super::oidcc_display_popup);

async fn oidcc_prompt_login(b: Backend) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let (_, first) = happy(&op, &br, &AuthReq::new(mode, "openid")).await;
        op.app.clock.advance_secs(1);
        let r = AuthReq::new(mode, "openid").set("prompt", "login");
        let (a, second) = happy(&op, &br, &r).await;
        assert!(
            a.login_page.is_some(),
            "prompt=login asks for the password again despite the session"
        );
        assert_eq!(second.id["sub"], first.id["sub"]);
        assert!(
            second.id["auth_time"].as_i64() > first.id["auth_time"].as_i64(),
            "the second sign-in is later: {} vs {}",
            second.id["auth_time"],
            first.id["auth_time"]
        );
    }
}
on_both_backends!(oidcc_prompt_login, super::oidcc_prompt_login);

async fn oidcc_prompt_none_not_logged_in(b: Backend) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let state: String = "s".repeat(64) + &random() + &random();
        let r = AuthReq::new(mode, "openid")
            .set("prompt", "none")
            .set("state", &state[..128]);
        let resp = br.get(r.url(&op.app)).send().await.unwrap();
        let Landing::Callback(cb) = follow(&op.app, &br, resp).await else {
            panic!("prompt=none never shows a page");
        };
        let err = error_of(&op, &r, &cb, true);
        assert_eq!(err, "login_required", "OIDC Core §3.1.2.6");
    }
}
on_both_backends!(
    oidcc_prompt_none_not_logged_in,
    super::oidcc_prompt_none_not_logged_in
);

/// AbstractOIDCCSameAuthTwiceServerTest: a second authorization without interaction gives an
/// ID token with the same `sub` and `auth_time`.
async fn same_auth_twice(b: Backend, first_extra: &[(&str, &str)], second: &[(&str, &str)]) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let mut r1 = AuthReq::new(mode, "openid");
        for (k, v) in first_extra {
            r1 = r1.set(k, v);
        }
        let (_, first) = happy(&op, &br, &r1).await;
        op.app.clock.advance_secs(2);
        let mut r2 = AuthReq::new(mode, "openid");
        for (k, v) in second {
            let v = if *v == "<first id token>" {
                first.id_raw.as_str()
            } else {
                v
            };
            r2 = r2.set(k, v);
        }
        let (a, t) = happy(&op, &br, &r2).await;
        assert!(a.login_page.is_none(), "no login page the second time");
        assert_eq!(t.id["sub"], first.id["sub"]);
        assert_eq!(t.id["auth_time"], first.id["auth_time"]);
    }
}

async fn oidcc_prompt_none_logged_in(b: Backend) {
    same_auth_twice(b, &[], &[("prompt", "none")]).await;
}
on_both_backends!(
    oidcc_prompt_none_logged_in,
    super::oidcc_prompt_none_logged_in
);

async fn oidcc_max_age_1(b: Backend) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let (_, first) = happy(&op, &br, &AuthReq::new(mode, "openid")).await;
        op.app.clock.advance_secs(2); // the suite waits 2 s
        let r = AuthReq::new(mode, "openid").set("max_age", "1");
        let (a, second) = happy(&op, &br, &r).await;
        assert!(
            a.login_page.is_some(),
            "max_age=1 asks for the password again"
        );
        let at = second.id["auth_time"].as_i64().expect("auth_time");
        assert!(at > first.id["auth_time"].as_i64().unwrap());
        assert!((now_secs(&op) - at).abs() <= 5, "auth_time is recent");
    }
}
on_both_backends!(oidcc_max_age_1, super::oidcc_max_age_1);

async fn oidcc_max_age_10000(b: Backend) {
    same_auth_twice(b, &[("max_age", "15000")], &[("max_age", "10000")]).await;
}
on_both_backends!(oidcc_max_age_10000, super::oidcc_max_age_10000);

async fn oidcc_ensure_request_with_unknown_parameter_succeeds(b: Backend) {
    accepted_parameter(b, "extra", "foobar").await;
}
on_both_backends!(
    oidcc_ensure_request_with_unknown_parameter_succeeds,
    super::oidcc_ensure_request_with_unknown_parameter_succeeds
);

async fn oidcc_id_token_hint(b: Backend) {
    same_auth_twice(
        b,
        &[],
        &[("prompt", "none"), ("id_token_hint", "<first id token>")],
    )
    .await;
}
on_both_backends!(oidcc_id_token_hint, super::oidcc_id_token_hint);

async fn oidcc_login_hint(b: Backend) {
    for page in accepted_parameter(b, "login_hint", USER).await {
        let doc = scraper::Html::parse_document(&page);
        let input = doc
            .select(&scraper::Selector::parse("input[name=username]").unwrap())
            .next()
            .unwrap();
        assert_eq!(
            input.value().attr("value"),
            Some(USER),
            "the hinted user is filled in"
        );
    }
}
on_both_backends!(oidcc_login_hint, super::oidcc_login_hint);

async fn oidcc_ui_locales(b: Backend) {
    accepted_parameter(b, "ui_locales", "se").await;
}
on_both_backends!(oidcc_ui_locales, super::oidcc_ui_locales);

async fn oidcc_claims_locales(b: Backend) {
    accepted_parameter(b, "claims_locales", "se").await;
}
on_both_backends!(oidcc_claims_locales, super::oidcc_claims_locales);

async fn oidcc_ensure_request_with_acr_values_succeeds(b: Backend) {
    let op = op(b).await;
    let supported: Vec<String> = op.disc["acr_values_supported"]
        .as_array()
        .expect("acr_values_supported")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid").set("acr_values", &supported.join(" "));
        let (_, t) = happy(&op, &br, &r).await;
        let acr = t.id["acr"].as_str().unwrap();
        assert!(
            supported.iter().any(|s| s == acr),
            "the acr is one of those requested (the suite warns otherwise): {acr}"
        );
    }
}
on_both_backends!(
    oidcc_ensure_request_with_acr_values_succeeds,
    super::oidcc_ensure_request_with_acr_values_succeeds
);

/// AbstractOIDCCAuthCodeReuse: the second redemption is 400 `invalid_grant` as JSON; and,
/// stricter than the suite, everything the code issued is revoked (RFC 6749 §4.1.2).
async fn code_reuse(b: Backend, wait_secs: i64) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid offline_access");
        let a = authorize(&op, &br, &r).await;
        let code = code_of(&op, &r, &a.cb);
        let t = tokens_from(&op, &r, redeem(&op, &code, ClientAuth::Basic, &[]).await).await;
        let refresh = t
            .refresh
            .clone()
            .expect("offline_access gives a refresh token");
        assert_eq!(status_of_userinfo(&op, &t.access).await, StatusCode::OK);
        op.app.clock.advance_secs(wait_secs);
        let again = redeem(&op, &code, ClientAuth::Basic, &[]).await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert!(is_json(&again));
        let e: Value = again.json().await.unwrap();
        assert_eq!(e["error"], "invalid_grant");
        if let Some(d) = e["error_description"].as_str() {
            assert!(!d.contains(['\r', '\n', '\t']), "{d}");
        }
        assert_eq!(
            status_of_userinfo(&op, &t.access).await,
            StatusCode::UNAUTHORIZED,
            "the access token the code issued is revoked"
        );
        let rt = token_call(
            &op,
            "rp",
            ClientAuth::Basic,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
        assert_eq!(rt.status(), StatusCode::BAD_REQUEST);
        let e: Value = rt.json().await.unwrap();
        assert_eq!(
            e["error"], "invalid_grant",
            "the refresh token the code issued is revoked"
        );
    }
}

async fn oidcc_codereuse(b: Backend) {
    code_reuse(b, 0).await;
}
on_both_backends!(oidcc_codereuse, super::oidcc_codereuse);

async fn oidcc_codereuse_30seconds(b: Backend) {
    // The app's clock moves 30 s instead of the test sleeping.
    code_reuse(b, 30).await;
}
on_both_backends!(oidcc_codereuse_30seconds, super::oidcc_codereuse_30seconds);

async fn oidcc_ensure_registered_redirect_uri(b: Backend) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        // CreateBadRedirectUriByAppending: a random suffix nobody could have registered.
        let bad = format!("{REDIRECT}/{}", random());
        let r = AuthReq::new(mode, "openid").set("redirect_uri", &bad);
        let resp = br.get(r.url(&op.app)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_page_not_redirect(&resp);
        let html = resp.text().await.unwrap();
        assert!(
            html.contains("has not registered"),
            "an error page about the redirect URI: {html:.400}"
        );
        assert!(!html.contains("form-post"), "no form to any URI");
    }
}
on_both_backends!(
    oidcc_ensure_registered_redirect_uri,
    super::oidcc_ensure_registered_redirect_uri
);

async fn oidcc_ensure_post_request_succeeds(b: Backend) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid");
        let resp = br
            .post(op.app.url("/authorize"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(r.query())
            .send()
            .await
            .unwrap();
        let a = complete(&op, &br, resp).await;
        let code = code_of(&op, &r, &a.cb);
        tokens_from(&op, &r, redeem(&op, &code, ClientAuth::Basic, &[]).await).await;
    }
}
on_both_backends!(
    oidcc_ensure_post_request_succeeds,
    super::oidcc_ensure_post_request_succeeds
);

async fn oidcc_server_client_secret_post(b: Backend) {
    let op = op(b).await;
    assert!(op.disc["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "client_secret_post"));
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid");
        let a = authorize(&op, &br, &r).await;
        let code = code_of(&op, &r, &a.cb);
        let t = tokens_from(&op, &r, redeem(&op, &code, ClientAuth::Post, &[]).await).await;
        userinfo(&op, &t, UserinfoCall::Get).await;
    }
}
on_both_backends!(
    oidcc_server_client_secret_post,
    super::oidcc_server_client_secret_post
);

/// An unsigned request object (`alg: none`) for `r`, as ConvertAuthorizationEndpointRequest
/// ToRequestObject and SerializeRequestObjectWithNullAlgorithm build it.
fn unsigned_request_object(op: &Op, r: &AuthReq) -> String {
    let mut claims = serde_json::Map::new();
    for (k, v) in &r.params {
        claims.insert(k.clone(), json!(v));
    }
    claims.insert("iss".into(), json!("rp"));
    claims.insert("aud".into(), json!(op.app.base));
    let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        e(&json!({"alg": "none"})),
        e(&Value::Object(claims))
    )
}

/// The query the suite sends beside a request object: the object (or its URI), and the
/// parameters OAuth 2.0 requires outside it; `state` and `nonce` only inside.
fn request_object_query(r: &AuthReq, name: &str, value: &str, redirect_uri: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", &r.client_id);
    q.append_pair(name, value);
    q.append_pair("redirect_uri", redirect_uri);
    if r.mode == Mode::FormPost {
        q.append_pair("response_mode", "form_post");
    }
    q.append_pair("response_type", "code");
    q.append_pair("scope", "openid");
    q.finish()
}

async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(b: Backend) {
    let op = op(b).await;
    // vigil says it does not take request objects, and rejects them as the spec says.
    assert_eq!(op.disc["request_parameter_supported"], false);
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid");
        let q = request_object_query(&r, "request", &unsigned_request_object(&op, &r), REDIRECT);
        let resp = br
            .get(format!("{}/authorize?{q}", op.app.base))
            .send()
            .await
            .unwrap();
        let Landing::Callback(cb) = follow(&op.app, &br, resp).await else {
            panic!("request_not_supported goes back to the client");
        };
        // The state was inside the object vigil did not read: no state to echo.
        assert_eq!(error_of(&op, &r, &cb, false), "request_not_supported");
        assert!(!cb.params.contains_key("state"));
    }
}
on_both_backends!(
    oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported,
    super::oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported
);

async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(b: Backend) {
    let op = op(b).await;
    assert_eq!(op.disc["request_uri_parameter_supported"], false);
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid");
        // CreateRandomRequestUriWithFragment: vigil must not fetch it; it cannot anyway.
        let uri = format!("https://rp.example.com/requests/{}#{}", random(), random());
        let q = request_object_query(&r, "request_uri", &uri, REDIRECT);
        let resp = br
            .get(format!("{}/authorize?{q}", op.app.base))
            .send()
            .await
            .unwrap();
        let Landing::Callback(cb) = follow(&op.app, &br, resp).await else {
            panic!("request_uri_not_supported goes back to the client");
        };
        assert_eq!(error_of(&op, &r, &cb, false), "request_uri_not_supported");
    }
}
on_both_backends!(
    oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported,
    super::oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported
);

async fn oidcc_ensure_request_object_with_redirect_uri(b: Backend) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let r = AuthReq::new(mode, "openid");
        // The object holds the registered URI; the query an unregistered one. vigil does not
        // read the object, so it must stop at an error page, never use a default URI.
        let invalid = format!("{REDIRECT}_invalid");
        let q = request_object_query(&r, "request", &unsigned_request_object(&op, &r), &invalid);
        let resp = br
            .get(format!("{}/authorize?{q}", op.app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_page_not_redirect(&resp);
        let html = resp.text().await.unwrap();
        assert!(html.contains("has not registered"), "{html:.400}");
        assert!(!html.contains("form-post"));
    }
}
on_both_backends!(
    oidcc_ensure_request_object_with_redirect_uri,
    super::oidcc_ensure_request_object_with_redirect_uri
);

async fn oidcc_claims_essential(b: Backend) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let claims = json!({"userinfo": {"name": {"essential": true}}}).to_string();
        let r = AuthReq::new(mode, "openid").set("claims", &claims);
        let (_, t) = happy(&op, &br, &r).await;
        assert!(t.id.get("name").is_none(), "name was asked for at UserInfo");
        assert_no_scope_claims_in_id_token(&t.id);
        let u = userinfo(&op, &t, UserinfoCall::Get).await;
        assert_eq!(
            u["name"], USER_NAME,
            "the essential claim is returned (the suite warns otherwise)"
        );
        assert!(
            t.scope.split(' ').any(|s| s == "profile"),
            "the granted scope says what was released: {}",
            t.scope
        );
        // A `claims` value that is not a JSON object is a malformed request, at the client.
        for bad in ["not json", "[]", r#"{"userinfo": "name"}"#] {
            let r = AuthReq::new(mode, "openid").set("claims", bad);
            let resp = br.get(r.url(&op.app)).send().await.unwrap();
            let Landing::Callback(cb) = follow(&op.app, &br, resp).await else {
                panic!("{bad}: the error goes back to the client");
            };
            assert_eq!(error_of(&op, &r, &cb, true), "invalid_request", "{bad}");
        }
    }
    assert_eq!(op.disc["claims_parameter_supported"], true);
}
on_both_backends!(oidcc_claims_essential, super::oidcc_claims_essential);

async fn oidcc_refresh_token(b: Backend) {
    let mut op = op(b).await;
    add_suite_client(
        &op.app,
        ClientOpts {
            id: "rp2",
            backchannel: None,
        },
    )
    .await;
    let rp2 = rp(&op.app, "rp2", false).await;
    op.others.push(("rp2".into(), rp2));
    assert!(op.disc["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == "refresh_token"));
    assert!(op.disc["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "offline_access"));
    for mode in MODES {
        let br = browser(op.app.port);
        let mut refresh_of = HashMap::new();
        for client in ["rp", "rp2"] {
            // AddPromptConsentToAuthorizationEndpointRequestIfScopeContainsOfflineAccess.
            let mut r =
                AuthReq::for_client(client, mode, "openid offline_access").set("prompt", "consent");
            if client == "rp2" {
                r = r.set("nonce", &"n".repeat(43));
            }
            let a = authorize(&op, &br, &r).await;
            assert!(a.consent_shown, "prompt=consent asks, first party or not");
            let code = code_of(&op, &r, &a.cb);
            let first = tokens_from(
                &op,
                &r,
                redeem_as(&op, client, &code, ClientAuth::Basic, &[]).await,
            )
            .await;
            let refresh = first.refresh.clone().expect("a refresh token");
            assert!(
                refresh.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "RFC 6749 A.17"
            );
            assert!(refresh.len() >= 20, "EnsureMinimumRefreshTokenLength");
            op.app.clock.advance_secs(1);
            let resp = token_call(
                &op,
                client,
                ClientAuth::Basic,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("scope", "openid offline_access"),
                ],
            )
            .await;
            assert_eq!(resp.status(), StatusCode::OK);
            assert!(is_json(&resp));
            assert_eq!(resp.headers()["cache-control"], "no-store");
            let t: Value = resp.json().await.unwrap();
            assert!(t["token_type"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("bearer"));
            let access = t["access_token"].as_str().unwrap();
            assert_ne!(access, first.access, "a new access token");
            assert!(t["expires_in"].as_i64().is_some_and(|e| e > 0));
            if let Some(idt) = t["id_token"].as_str() {
                // OIDC Core §12.2: same iss, sub, aud, auth_time; a new iat; no new azp.
                let id = payload(idt);
                for c in ["iss", "sub", "aud", "auth_time"] {
                    assert_eq!(id[c], first.id[c], "{c}");
                }
                assert!(id["iat"].as_i64() > first.id["iat"].as_i64());
                assert_eq!(id.get("azp"), first.id.get("azp"));
                CoreIdToken::from_str(idt)
                    .unwrap()
                    .claims(
                        &rp_of(&op, client).client.id_token_verifier(),
                        |_: Option<&Nonce>| Ok::<(), String>(()),
                    )
                    .expect("the refreshed ID token verifies");
            }
            let rotated = t["refresh_token"].as_str().map(str::to_owned);
            refresh_of.insert(client, rotated.unwrap_or(refresh));
            assert_eq!(status_of_userinfo(&op, access).await, StatusCode::OK);
        }
        // RefreshTokenRequestExpectingErrorSteps: client 1 presents client 2's token.
        let resp = token_call(
            &op,
            "rp",
            ClientAuth::Basic,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_of["rp2"]),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(is_json(&resp));
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["error"], "invalid_grant", "bound to its client");
    }
}
on_both_backends!(oidcc_refresh_token, super::oidcc_refresh_token);

async fn oidcc_ensure_request_with_valid_pkce_succeeds(b: Backend) {
    let op = op(b).await;
    for mode in MODES {
        let br = browser(op.app.port);
        let verifier = format!("{}{}", random(), random());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let r = AuthReq::new(mode, "openid")
            .set("code_challenge", &challenge)
            .set("code_challenge_method", "S256");
        let a = authorize(&op, &br, &r).await;
        let code = code_of(&op, &r, &a.cb);
        let t = tokens_from(
            &op,
            &r,
            redeem(
                &op,
                &code,
                ClientAuth::Basic,
                &[("code_verifier", &verifier)],
            )
            .await,
        )
        .await;
        userinfo(&op, &t, UserinfoCall::Get).await;
    }
}
on_both_backends!(
    oidcc_ensure_request_with_valid_pkce_succeeds,
    super::oidcc_ensure_request_with_valid_pkce_succeeds
);

// ───────────────────────────── Config OP ─────────────────────────────

/// Metadata names registered for OAuth 2.0 authorization servers and OpenID providers (IANA
/// "OAuth Authorization Server Metadata"). The suite warns on any other member.
const REGISTERED_METADATA: &[&str] = &[
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "registration_endpoint",
    "scopes_supported",
    "response_types_supported",
    "response_modes_supported",
    "grant_types_supported",
    "acr_values_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "id_token_encryption_alg_values_supported",
    "id_token_encryption_enc_values_supported",
    "userinfo_signing_alg_values_supported",
    "userinfo_encryption_alg_values_supported",
    "userinfo_encryption_enc_values_supported",
    "request_object_signing_alg_values_supported",
    "token_endpoint_auth_methods_supported",
    "token_endpoint_auth_signing_alg_values_supported",
    "display_values_supported",
    "claim_types_supported",
    "claims_supported",
    "service_documentation",
    "claims_locales_supported",
    "ui_locales_supported",
    "claims_parameter_supported",
    "request_parameter_supported",
    "request_uri_parameter_supported",
    "require_request_uri_registration",
    "op_policy_uri",
    "op_tos_uri",
    "revocation_endpoint",
    "revocation_endpoint_auth_methods_supported",
    "revocation_endpoint_auth_signing_alg_values_supported",
    "introspection_endpoint",
    "introspection_endpoint_auth_methods_supported",
    "introspection_endpoint_auth_signing_alg_values_supported",
    "code_challenge_methods_supported",
    "end_session_endpoint",
    "check_session_iframe",
    "frontchannel_logout_supported",
    "frontchannel_logout_session_supported",
    "backchannel_logout_supported",
    "backchannel_logout_session_supported",
    "prompt_values_supported",
    "authorization_response_iss_parameter_supported",
    "pushed_authorization_request_endpoint",
    "require_pushed_authorization_requests",
];

/// Discovery against an https issuer, as deployed (the suite requires every endpoint https).
async fn https_discovery(b: Backend) -> (TestApp, Value) {
    let app = spawn_app_with(b, &[("VIGIL_ISSUER", "https://op.example.com")])
        .await
        .unwrap();
    let r = app.get("/.well-known/openid-configuration").await;
    assert_eq!(r.status(), StatusCode::OK, "OIDC Discovery §4");
    assert!(is_json(&r), "application/json");
    let d: Value = r.json().await.unwrap();
    (app, d)
}

fn endpoints_are_https(d: &Value) {
    let obj = d.as_object().unwrap();
    let mut n = 0;
    for (k, v) in obj {
        if k.ends_with("_endpoint") || k == "jwks_uri" || k == "issuer" {
            let u = v.as_str().unwrap_or_else(|| panic!("{k} is a string"));
            assert!(u.starts_with("https://"), "{k}: {u}");
            let parsed = Url::parse(u).unwrap();
            assert!(parsed.fragment().is_none(), "{k}: no fragment");
            n += 1;
        }
    }
    assert!(n >= 7, "{n} endpoints");
}

async fn oidcc_discovery_endpoint_verification(b: Backend) {
    let (app, d) = https_discovery(b).await;
    let obj = d.as_object().unwrap();
    // CheckDiscEndpointIssuer / DiscoveryUrl / IssuerIsValidUrl.
    assert_eq!(d["issuer"], "https://op.example.com");
    let iss = Url::parse(d["issuer"].as_str().unwrap()).unwrap();
    assert!(iss.query().is_none() && iss.fragment().is_none());
    // CheckForUnexpectedParametersInServerMetadata (a warning in the suite).
    for k in obj.keys() {
        assert!(
            REGISTERED_METADATA.contains(&k.as_str()),
            "unregistered metadata {k}"
        );
    }
    // ValidateServerMetadataAgainstSchema: the types RFC 8414 / OIDC Discovery give.
    for (k, v) in obj {
        if k.ends_with("_supported") && !v.is_boolean() {
            let a = v
                .as_array()
                .unwrap_or_else(|| panic!("{k} is an array: {v}"));
            assert!(!a.is_empty(), "{k} not empty");
            assert!(a.iter().all(Value::is_string), "{k}: strings");
        }
        if k.ends_with("_parameter_supported")
            || k.ends_with("logout_supported")
            || k.ends_with("session_supported")
            || k.starts_with("require_")
            || k == "authorization_response_iss_parameter_supported"
        {
            assert!(v.is_boolean(), "{k} is a boolean: {v}");
        }
    }
    let has = |k: &str, v: &str| {
        d[k].as_array()
            .unwrap_or_else(|| panic!("{k}"))
            .iter()
            .any(|x| x == v)
    };
    assert!(has("response_types_supported", "code"), "OIDC Core §3");
    assert!(has("subject_types_supported", "public"));
    assert!(d["subject_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s == "public" || s == "pairwise"));
    assert!(has("id_token_signing_alg_values_supported", "RS256"));
    assert!(
        !has("id_token_signing_alg_values_supported", "none"),
        "never unsigned"
    );
    assert!(has("scopes_supported", "openid"));
    for s in d["scopes_supported"].as_array().unwrap() {
        let s = s.as_str().unwrap();
        assert!(
            !s.is_empty()
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)),
            "RFC 6749 §3.3 scope-token: {s:?}"
        );
    }
    for s in d["ui_locales_supported"].as_array().unwrap() {
        let s = s.as_str().unwrap();
        // BCP 47 in canonical casing (language lower case, region upper case).
        let mut parts = s.split('-');
        let lang = parts.next().unwrap();
        assert!(
            lang.len() >= 2 && lang.bytes().all(|b| b.is_ascii_lowercase()),
            "{s}"
        );
        for p in parts {
            assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()), "{s}");
            if p.len() == 2 {
                assert!(p.bytes().all(|b| b.is_ascii_uppercase()), "{s}");
            }
        }
    }
    assert!(!d["grant_types_supported"].as_array().unwrap().is_empty());
    assert!(has("grant_types_supported", "authorization_code"));
    assert!(d["claims_supported"].is_array());
    assert!(d["code_challenge_methods_supported"].is_array());
    for k in [
        "request_parameter_supported",
        "request_uri_parameter_supported",
        "claims_parameter_supported",
    ] {
        assert!(d[k].is_boolean(), "{k}");
    }
    // No registration endpoint: a static client (the suite skips dynamic registration).
    assert!(d.get("registration_endpoint").is_none());
    endpoints_are_https(&d);
    for k in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        assert!(
            d[k].as_str()
                .unwrap()
                .starts_with("https://op.example.com/"),
            "{k}"
        );
    }
    // FetchServerKeys + ValidateJwksSequence against the served JWKS.
    let jwks: Value = app.get("/jwks").await.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let mut kids = std::collections::HashSet::new();
    for k in keys {
        assert!(kids.insert(k["kid"].as_str().expect("kid").to_owned()));
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none());
        }
        match k["kty"].as_str().unwrap() {
            "RSA" => assert!(k["n"].is_string() && k["e"].is_string()),
            "EC" => assert!(k["crv"].is_string() && k["x"].is_string() && k["y"].is_string()),
            "OKP" => assert!(k["crv"].is_string() && k["x"].is_string()),
            other => panic!("kty {other}"),
        }
    }
    assert!(keys.iter().any(|k| k["kty"] == "RSA"), "an RS256 key");
}
on_both_backends!(
    oidcc_discovery_endpoint_verification,
    super::oidcc_discovery_endpoint_verification
);

// ───────────────────────────── RP-Initiated Logout OP ─────────────────────────────

async fn oidcc_rp_initiated_logout_discovery_endpoint_verification(b: Backend) {
    let (_app, d) = https_discovery(b).await;
    assert_eq!(d["end_session_endpoint"], "https://op.example.com/logout");
    endpoints_are_https(&d);
}
on_both_backends!(
    oidcc_rp_initiated_logout_discovery_endpoint_verification,
    super::oidcc_rp_initiated_logout_discovery_endpoint_verification
);

/// A signed-in browser and its first ID token (AbstractOIDCCRpInitiatedLogout's first flow).
async fn signed_in(op: &Op) -> (reqwest::Client, Tokens) {
    let br = browser(op.app.port);
    let (_, t) = happy(op, &br, &AuthReq::new(Mode::Query, "openid")).await;
    (br, t)
}

async fn end_session(br: &reqwest::Client, op: &Op, params: &[(&str, &str)]) -> reqwest::Response {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    br.get(format!("{}/logout?{}", op.app.base, q.finish()))
        .send()
        .await
        .unwrap()
}

/// After the logout, prompt=none must fail with an error that needs the user.
async fn assert_logged_out(op: &Op, br: &reqwest::Client) {
    let state: String = (random() + &random() + &random() + &random())[..128].to_owned();
    let r = AuthReq::new(Mode::Query, "openid")
        .set("prompt", "none")
        .set("state", &state);
    let resp = br.get(r.url(&op.app)).send().await.unwrap();
    let Landing::Callback(cb) = follow(&op.app, br, resp).await else {
        panic!("prompt=none answers at the redirect URI");
    };
    assert_eq!(error_of(op, &r, &cb, true), "login_required");
}

/// Still signed in: prompt=none gives a code.
async fn assert_still_logged_in(op: &Op, br: &reqwest::Client) {
    let r = AuthReq::new(Mode::Query, "openid").set("prompt", "none");
    let resp = br.get(r.url(&op.app)).send().await.unwrap();
    let Landing::Callback(cb) = follow(&op.app, br, resp).await else {
        panic!("prompt=none answers at the redirect URI");
    };
    code_of(op, &r, &cb);
}

/// The post-logout redirect: exactly the registered URI, with only `state` (when sent).
fn assert_post_logout_redirect(r: &reqwest::Response, state: Option<&str>) {
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = Url::parse(&location(r)).unwrap();
    assert_eq!(without_query(&loc), POST_LOGOUT);
    let q = query_of(&loc);
    match state {
        Some(s) => assert_eq!(
            q.get("state").map(String::as_str),
            Some(s),
            "CheckPostLogoutState"
        ),
        None => assert!(!q.contains_key("state"), "CheckNoPostLogoutState"),
    }
    assert!(
        q.keys().all(|k| k == "state"),
        "only state in the post-logout redirect: {q:?}"
    );
}

async fn oidcc_rp_initiated_logout(b: Backend) {
    let op = op(b).await;
    let (br, t) = signed_in(&op).await;
    let state = random();
    let r = end_session(
        &br,
        &op,
        &[
            ("id_token_hint", &t.id_raw),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", &state),
        ],
    )
    .await;
    assert_post_logout_redirect(&r, Some(&state));
    assert_logged_out(&op, &br).await;
}
on_both_backends!(oidcc_rp_initiated_logout, super::oidcc_rp_initiated_logout);

/// A request vigil must refuse with an error page: no redirect, the session kept.
async fn refused_logout(op: &Op, br: &reqwest::Client, params: &[(&str, &str)], why: &str) {
    let r = end_session(br, op, params).await;
    assert_page_not_redirect(&r);
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{why}");
    let html = r.text().await.unwrap();
    assert!(
        html.contains(why),
        "the error page says why ({why}): {html:.600}"
    );
    assert_still_logged_in(op, br).await;
}

async fn oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(b: Backend) {
    let op = op(b).await;
    let (br, t) = signed_in(&op).await;
    refused_logout(
        &op,
        &br,
        &[
            ("id_token_hint", &t.id_raw),
            (
                "post_logout_redirect_uri",
                "https://rp.example.com/bad_post_logout_redirect_uri",
            ),
            ("state", &random()),
        ],
        "not registered",
    )
    .await;
}
on_both_backends!(
    oidcc_rp_initiated_logout_bad_post_logout_redirect_uri,
    super::oidcc_rp_initiated_logout_bad_post_logout_redirect_uri
);

async fn oidcc_rp_initiated_logout_modified_id_token_hint(b: Backend) {
    let op = op(b).await;
    let (br, t) = signed_in(&op).await;
    // ChangeIdTokenToAlgNone: the genuine payload under {"alg": "none"}, no signature.
    let body = t.id_raw.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{body}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg": "none"}"#)
    );
    refused_logout(
        &op,
        &br,
        &[
            ("id_token_hint", &none),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", &random()),
        ],
        "invalid id_token_hint",
    )
    .await;
}
on_both_backends!(
    oidcc_rp_initiated_logout_modified_id_token_hint,
    super::oidcc_rp_initiated_logout_modified_id_token_hint
);

async fn oidcc_rp_initiated_logout_bad_id_token_hint(b: Backend) {
    let op = op(b).await;
    let (br, t) = signed_in(&op).await;
    // GenerateFakeIdTokenClaims + SignFakeIdToken: plausible claims signed by the suite's own
    // key (here HS256 with the client secret, as GenerateJWKsFromClientSecret does).
    let mut claims = t.id.clone();
    claims["iat"] = json!(now_secs(&op));
    claims["exp"] = json!(now_secs(&op) + 300);
    let fake = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    refused_logout(
        &op,
        &br,
        &[
            ("id_token_hint", &fake),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", &random()),
        ],
        "invalid id_token_hint",
    )
    .await;
}
on_both_backends!(
    oidcc_rp_initiated_logout_bad_id_token_hint,
    super::oidcc_rp_initiated_logout_bad_id_token_hint
);

async fn oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri(b: Backend) {
    let op = op(b).await;
    let (br, t) = signed_in(&op).await;
    refused_logout(
        &op,
        &br,
        &[
            ("id_token_hint", &t.id_raw),
            (
                "post_logout_redirect_uri",
                &format!("{POST_LOGOUT}?foo=bar"),
            ),
            ("state", &random()),
        ],
        "not registered",
    )
    .await;
}
on_both_backends!(
    oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri,
    super::oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri
);

/// Without an id_token_hint vigil asks the user (a cross-site link cannot sign anyone out):
/// the confirmation page, then — once confirmed — signed out, on vigil's own page, never
/// redirected to a URI no valid hint vouched for.
async fn confirmed_logout(op: &Op, br: &reqwest::Client, params: &[(&str, &str)]) {
    let r = end_session(br, op, params).await;
    assert_page_not_redirect(&r);
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Sign out of vigil?"), "{html:.600}");
    assert_still_logged_in(op, br).await;
    let r = br
        .post(op.app.url("/logout/confirm"))
        .form(&[
            ("csrf_token", crate::helpers::csrf_in(&html)),
            ("client_id", hidden(&html, "client_id")),
            (
                "post_logout_redirect_uri",
                hidden(&html, "post_logout_redirect_uri"),
            ),
            ("state", hidden(&html, "state")),
        ])
        .send()
        .await
        .unwrap();
    assert_page_not_redirect(&r);
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("signed out"));
    assert_logged_out(op, br).await;
}

async fn oidcc_rp_initiated_logout_no_id_token_hint(b: Backend) {
    let op = op(b).await;
    let (br, _) = signed_in(&op).await;
    confirmed_logout(
        &op,
        &br,
        &[
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", &random()),
        ],
    )
    .await;
}
on_both_backends!(
    oidcc_rp_initiated_logout_no_id_token_hint,
    super::oidcc_rp_initiated_logout_no_id_token_hint
);

async fn oidcc_rp_initiated_logout_no_params(b: Backend) {
    let op = op(b).await;
    let (br, _) = signed_in(&op).await;
    confirmed_logout(&op, &br, &[]).await;
}
on_both_backends!(
    oidcc_rp_initiated_logout_no_params,
    super::oidcc_rp_initiated_logout_no_params
);

async fn oidcc_rp_initiated_logout_only_state(b: Backend) {
    let op = op(b).await;
    let (br, _) = signed_in(&op).await;
    confirmed_logout(&op, &br, &[("state", &random())]).await;
}
on_both_backends!(
    oidcc_rp_initiated_logout_only_state,
    super::oidcc_rp_initiated_logout_only_state
);

async fn oidcc_rp_initiated_logout_no_post_logout_redirect_uri(b: Backend) {
    let op = op(b).await;
    let (br, t) = signed_in(&op).await;
    // A valid hint for the signed-in user: signed out at once, on vigil's own page.
    let r = end_session(
        &br,
        &op,
        &[("id_token_hint", &t.id_raw), ("state", &random())],
    )
    .await;
    assert_page_not_redirect(&r);
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("signed out"));
    assert_logged_out(&op, &br).await;
}
on_both_backends!(
    oidcc_rp_initiated_logout_no_post_logout_redirect_uri,
    super::oidcc_rp_initiated_logout_no_post_logout_redirect_uri
);

async fn oidcc_rp_initiated_logout_no_state(b: Backend) {
    let op = op(b).await;
    let (br, t) = signed_in(&op).await;
    let r = end_session(
        &br,
        &op,
        &[
            ("id_token_hint", &t.id_raw),
            ("post_logout_redirect_uri", POST_LOGOUT),
        ],
    )
    .await;
    assert_post_logout_redirect(&r, None);
    assert_logged_out(&op, &br).await;
}
on_both_backends!(
    oidcc_rp_initiated_logout_no_state,
    super::oidcc_rp_initiated_logout_no_state
);

// ───────────────────────────── Back-Channel Logout OP ─────────────────────────────

async fn oidcc_backchannel_logout_discovery_endpoint_verification(b: Backend) {
    let (_app, d) = https_discovery(b).await;
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(
        d["backchannel_logout_session_supported"], true,
        "certification requires sid in logout tokens"
    );
    assert!(d["end_session_endpoint"].is_string());
    endpoints_are_https(&d);
}
on_both_backends!(
    oidcc_backchannel_logout_discovery_endpoint_verification,
    super::oidcc_backchannel_logout_discovery_endpoint_verification
);

/// What the RP's back-channel logout URI received: content type and form fields.
type Received = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// The RP's back-channel logout endpoint: records each POST and answers 200 `no-store`.
fn backchannel_receiver() -> (u16, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        let sink = sink.clone();
        actix_web::App::new().route(
            "/backchannel_logout",
            actix_web::web::post().to(
                move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                    let sink = sink.clone();
                    async move {
                        let ct = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let fields = url::form_urlencoded::parse(&body)
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect();
                        sink.lock().unwrap().push((ct, fields));
                        actix_web::HttpResponse::Ok()
                            .insert_header(("cache-control", "no-store"))
                            .finish()
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
    (port, received)
}

async fn oidcc_backchannel_rp_initiated_logout(b: Backend) {
    let (port, received) = backchannel_receiver();
    let op = op_with(
        b,
        Some(format!("http://127.0.0.1:{port}/backchannel_logout")),
    )
    .await;
    let (br, t) = signed_in(&op).await;
    let state = random();
    let r = end_session(
        &br,
        &op,
        &[
            ("id_token_hint", &t.id_raw),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", &state),
        ],
    )
    .await;
    assert_post_logout_redirect(&r, Some(&state));
    let mut delivered = None;
    for _ in 0..100 {
        if let Some(d) = received.lock().unwrap().first().cloned() {
            delivered = Some(d);
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (ct, fields) = delivered.expect("the logout token is delivered");
    assert!(
        ct.starts_with("application/x-www-form-urlencoded"),
        "OIDC Back-Channel Logout §2.5: {ct}"
    );
    assert_eq!(
        fields.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        vec!["logout_token"],
        "only logout_token in the request"
    );
    let token = &fields[0].1;
    // ValidateLogoutTokenSignature: against the published JWKS, as the RP would.
    let h = header(token);
    assert_eq!(h["typ"], "logout+jwt", "explicit typing (§2.4)");
    let jwks: Value = op.app.get("/jwks").await.json().await.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == h["kid"])
        .expect("signed by a published key");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let alg = jsonwebtoken::Algorithm::from_str(h["alg"].as_str().unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_audience(&["rp"]);
    v.set_issuer(&[op.app.base.as_str()]);
    v.set_required_spec_claims(&["iss", "aud", "iat"]);
    let claims: Value = jsonwebtoken::decode(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &v,
    )
    .expect("the logout token verifies")
    .claims;
    // ValidateLogoutTokenClaims.
    let now = now_secs(&op);
    let iat = claims["iat"].as_i64().unwrap();
    assert!(iat <= now + 300 && iat > now - 86_400);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let events = claims["events"].as_object().expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(
        events["http://schemas.openid.net/event/backchannel-logout"],
        json!({})
    );
    // CheckIdTokenSubMatchesLogoutToken, CheckIdTokenSidMatchesLogoutToken, no nonce.
    assert_eq!(claims["sub"], t.id["sub"]);
    assert_eq!(claims["sid"], t.id["sid"]);
    assert!(
        claims["sid"].is_string(),
        "backchannel_logout_session_supported"
    );
    assert!(claims.get("nonce").is_none());
    assert_logged_out(&op, &br).await;
}
on_both_backends!(
    oidcc_backchannel_rp_initiated_logout,
    super::oidcc_backchannel_rp_initiated_logout
);
