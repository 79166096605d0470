//! The checks behind vigil's fuzz targets: one `pub fn <target>(data: &[u8])` per target.
//! `fuzz_targets/<target>.rs` hands libFuzzer's input to it (nightly, `cargo fuzz run`);
//! `src/stable.rs` (the lib's tests) runs the same functions over seeds, mutations and random
//! bytes on stable.
//!
//! Every function asserts invariants of the parser it drives, not only "no panic": a failed
//! `assert!` is a crash to libFuzzer and a failed test to the stable harness. Where raw bytes
//! rarely reach the interesting code, the first byte picks a structured mode that builds a
//! near-valid input from the rest (see [`Input`]).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use ipnet::IpNet;

use vigil::oidc::authorize::{self, AuthorizeParams, Redirect, Refusal, ResponseMode};
use vigil::oidc::client_auth::Presented;
use vigil::oidc::token::TokenParams;
use vigil::oidc::{clean_description, OAuthError};
use vigil::store::clients::Client;

#[cfg(test)]
mod stable;

/// The issuer every target uses.
pub const ISSUER: &str = "https://id.example.com";

// ---------------------------------------------------------------------------------------------
// Input: structured values from fuzzer bytes

/// Reads structured values from the fuzzer's bytes; past the end everything is zero/empty, so
/// every byte string is a valid input.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }
    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        let v = u16::from_le_bytes([self.byte(), self.byte()]) as usize;
        v % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
    /// A length-prefixed string (lossy UTF-8), at most `max` bytes.
    pub fn string(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Apply up to `rounds` byte-level edits chosen by `input` to `s` (flip, insert, delete,
/// duplicate a slice, truncate). The result may be invalid UTF-8, so it is bytes.
fn mutate(s: &[u8], input: &mut Input<'_>, rounds: usize) -> Vec<u8> {
    let mut v = s.to_vec();
    for _ in 0..(1 + input.below(rounds.max(1))) {
        if input.is_empty() {
            break;
        }
        let at = if v.is_empty() {
            0
        } else {
            input.below(v.len())
        };
        match input.byte() % 6 {
            0 if !v.is_empty() => v[at] ^= 1u8 << (input.byte() % 8),
            1 => v.insert(at, input.byte()),
            2 if !v.is_empty() => {
                v.remove(at);
            }
            3 if !v.is_empty() => {
                let end = (at + 1 + input.below(8)).min(v.len());
                let piece = v[at..end].to_vec();
                let to = input.below(v.len() + 1);
                v.splice(to..to, piece);
            }
            4 => v.truncate(at),
            _ if !v.is_empty() => v[at] = input.byte(),
            _ => {}
        }
    }
    v
}

/// RFC 6749 §5.2's `error_description` set: %x20-21 / %x23-5B / %x5D-7E.
fn rfc6749_charset(s: &str) -> bool {
    s.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// Every OAuth error vigil can send, checked the way a client would read it.
fn check_oauth_error(e: &OAuthError) {
    assert!(
        rfc6749_charset(&e.error_description),
        "error_description outside RFC 6749 §5.2: {:?}",
        e.error_description
    );
    assert!(rfc6749_charset(e.error), "error code {:?}", e.error);
    let json = serde_json::to_value(e).expect("an OAuth error serialises");
    assert_eq!(json["error"], e.error);
    assert_eq!(json["error_description"], e.error_description.as_str());
    assert!((400..600).contains(&e.status));
}

/// `application/x-www-form-urlencoded` decoding of one component, written independently of
/// vigil's and the `url` crate's: `+` is a space, `%XX` a byte, a bad escape stays as written;
/// the bytes are then read as lossy UTF-8.
fn form_bytes(b: &[u8]) -> String {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                out.push((hexval(b[i + 1]) << 4) | hexval(b[i + 2]));
                i += 3;
                continue;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hexval(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// The decoded `(name, value)` pairs of a form body, by an independent splitter: `&`
/// separates pairs (empty ones are skipped), the first `=` separates name and value.
fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    raw.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|b| *b == b'=') {
            Some(i) => (form_bytes(&p[..i]), form_bytes(&p[i + 1..])),
            None => (form_bytes(p), String::new()),
        })
        .collect()
}

/// The first name that occurs twice among `pairs`.
fn first_repeated(pairs: &[(String, String)]) -> Option<&str> {
    let mut seen = HashSet::new();
    pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .find(|k| !seen.insert(*k))
}

/// The value of `name` if it occurs exactly once.
fn single<'p>(pairs: &'p [(String, String)], name: &str) -> Option<&'p str> {
    let mut it = pairs.iter().filter(|(k, _)| k == name);
    let first = it.next().map(|(_, v)| v.as_str());
    assert!(it.next().is_none(), "{name} is repeated but parsed");
    first
}

// ---------------------------------------------------------------------------------------------
// /authorize

/// The parameter names `AuthorizeParams` reads.
const AUTHORIZE_NAMES: [&str; 17] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "acr_values",
    "ui_locales",
    "response_mode",
    "request",
    "request_uri",
];

fn authorize_fields(p: &AuthorizeParams) -> [(&'static str, &Option<String>); 17] {
    [
        ("response_type", &p.response_type),
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("scope", &p.scope),
        ("state", &p.state),
        ("nonce", &p.nonce),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
        ("prompt", &p.prompt),
        ("max_age", &p.max_age),
        ("login_hint", &p.login_hint),
        ("id_token_hint", &p.id_token_hint),
        ("acr_values", &p.acr_values),
        ("ui_locales", &p.ui_locales),
        ("response_mode", &p.response_mode),
        ("request", &p.request),
        ("request_uri", &p.request_uri),
    ]
}

/// Build a query string from fuzzer bytes: known and unknown names, values from a small
/// dictionary or raw, `&`/`=`/`%`/`+` mixed in, sometimes a repeated name.
fn authorize_query(input: &mut Input<'_>) -> Vec<u8> {
    const VALUES: [&str; 12] = [
        "code",
        "app",
        "https://app.example.com/cb",
        "openid profile",
        "S256",
        "none login",
        "0",
        "-1",
        "form_post",
        "%ZZ",
        "a+b%20c%26d%3De",
        "%F0%9F%98%80",
    ];
    let mut out = Vec::new();
    let n = input.below(12);
    for i in 0..n {
        if i > 0 {
            out.push(b'&');
        }
        if input.below(8) == 0 {
            out.extend_from_slice(input.string(12).as_bytes());
        } else {
            out.extend_from_slice(input.pick(&AUTHORIZE_NAMES).as_bytes());
        }
        if input.below(8) != 0 {
            out.push(b'=');
            if input.bool() {
                out.extend_from_slice(input.pick(&VALUES).as_bytes());
            } else {
                let n = input_len(input, 24);
                out.extend_from_slice(input.bytes(n));
            }
        }
    }
    out
}

fn input_len(input: &mut Input<'_>, max: usize) -> usize {
    input.below(max + 1)
}

/// Target `authorize_params`: the `/authorize` query/form parser.
/// - `repeated` names exactly the first name an independent splitter sees twice;
/// - `parse_params` fails if and only if a parameter it reads is repeated, and otherwise
///   holds each parameter's decoded value (or `None` when absent);
/// - parse → serialise → parse is the identity, and the serialised form repeats nothing;
/// - `parse_first_of_each` always succeeds and holds each parameter's first value.
pub fn authorize_params(data: &[u8]) {
    let mut input = Input::new(data);
    let raw = if input.byte().is_multiple_of(2) {
        input.rest().to_vec()
    } else {
        authorize_query(&mut input)
    };
    let pairs = form_pairs(&raw);
    let expected: Option<String> = first_repeated(&pairs).map(|k| k.chars().take(64).collect());
    assert_eq!(authorize::repeated(&raw), expected, "repeated() on {raw:?}");

    let known_repeated = AUTHORIZE_NAMES
        .iter()
        .any(|n| pairs.iter().filter(|(k, _)| k == n).count() > 1);
    match authorize::parse_params(&raw) {
        Ok(p) => {
            assert!(
                !known_repeated,
                "a repeated parameter was accepted: {raw:?}"
            );
            for (name, value) in authorize_fields(&p) {
                assert_eq!(value.as_deref(), single(&pairs, name), "{name} in {raw:?}");
            }
            let text = serde_urlencoded::to_string(&p).expect("params serialise");
            assert_eq!(authorize::repeated(text.as_bytes()), None);
            let again = authorize::parse_params(text.as_bytes()).expect("serialised re-parses");
            assert_eq!(again, p, "round trip through {text:?}");
        }
        Err(_) => assert!(known_repeated, "refused without a repeat: {raw:?}"),
    }
    let first = authorize::parse_first_of_each(&raw).expect("first-of-each never fails");
    for (name, value) in authorize_fields(&first) {
        let want = pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        assert_eq!(value.as_deref(), want, "first {name} in {raw:?}");
    }
}

/// The redirect URIs of the fuzzed client: exact strings, some differing only in ways a
/// normalising matcher would ignore.
const REGISTERED: [&str; 5] = [
    "https://app.example.com/cb",
    "https://app.example.com/cb?tenant=a",
    "https://app.example.com:8443/cb/",
    "com.example.app:/oauth2redirect",
    "http://127.0.0.1:9000/callback",
];

/// Near misses of the registered URIs (and some of them exactly).
const REDIRECT_CANDIDATES: [&str; 16] = [
    "https://app.example.com/cb",
    "https://APP.example.com/cb",
    "https://app.example.com/cb/",
    "https://app.example.com/cb?",
    "https://app.example.com/cb#",
    "https://app.example.com/%63b",
    "https://app.example.com:443/cb",
    "https://app.example.com/cb?tenant=a",
    "https://app.example.com/cb?tenant=b",
    "https://app.example.com/cb/../cb",
    "https://app.example.com.evil.example/cb",
    "https://app.example.com:8443/cb/",
    "com.example.app:/oauth2redirect",
    "com.example.app:/oauth2redirect/x",
    "http://127.0.0.1:9000/callback",
    "http://localhost:9000/callback",
];

fn fuzz_client(input: &mut Input<'_>) -> Client {
    let public = input.bool();
    let mut grant_types = vec!["authorization_code".to_owned()];
    if input.bool() {
        grant_types.push("refresh_token".to_owned());
    }
    if input.below(8) == 0 {
        grant_types.clear();
    }
    Client {
        id: "app".into(),
        name: "App".into(),
        secret_hash: (!public).then(|| "x".into()),
        public,
        first_party: input.bool(),
        redirect_uris: REGISTERED.iter().map(|s| s.to_string()).collect(),
        post_logout_redirect_uris: vec![],
        grant_types,
        require_pkce: input.bool(),
        created_at: 0,
        backchannel_logout_uri: None,
        id_token_alg: "RS256".into(),
        access_token_alg: "RS256".into(),
        min_acr: None,
        risk_thresholds: None,
        require_role: input.bool(),
        privileged_max_age_secs: None,
        provisioning: false,
    }
}

/// One parameter value: absent, from a dictionary of valid and near-valid values, or raw.
fn param(input: &mut Input<'_>, dict: &[&str]) -> Option<String> {
    match input.below(4) {
        0 => None,
        1 => Some(input.string(48)),
        2 if input.below(64) == 0 => Some("x".repeat(2049)),
        _ => Some(input.pick(dict).to_owned()),
    }
}

/// Target `authorize_validate`: every check `/authorize` makes after loading the client.
/// - an accepted request's redirect URI is byte-equal to a registered one (and to the one
///   asked for); a refusal that redirects goes only to such a URI, with `error`, a clean
///   `error_description`, the request's `state` (when not oversize) and `iss`;
/// - a request naming the client and a registered URI is never refused with a page;
/// - what is accepted is what the specs allow: response_type=code, openid among known scopes,
///   offline_access only with a refresh grant, PKCE S256 (43 base64url characters) whenever
///   the client is public or requires it, known prompt values with `none` alone, max_age ≥ 0,
///   known acr values, no request objects, no parameter over 2048 bytes.
pub fn authorize_validate(data: &[u8]) {
    let mut input = Input::new(data);
    let client = fuzz_client(&mut input);
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let p = if input.below(4) == 0 {
        let raw = authorize_query(&mut input);
        authorize::parse_first_of_each(&raw).expect("first-of-each never fails")
    } else {
        AuthorizeParams {
            response_type: param(&mut input, &["code", "token", "code id_token", ""]),
            client_id: param(&mut input, &["app", "app", "App", "other"]),
            redirect_uri: param(&mut input, &REDIRECT_CANDIDATES),
            scope: param(
                &mut input,
                &[
                    "openid",
                    "openid profile email offline_access",
                    "profile",
                    "openid x",
                ],
            ),
            state: param(&mut input, &["xyz", "", "a b"]),
            nonce: param(&mut input, &["n-0S6_WzA2Mj"]),
            code_challenge: param(
                &mut input,
                &[challenge, "short", &challenge.replace('-', "+")],
            ),
            code_challenge_method: param(&mut input, &["S256", "plain", "s256"]),
            prompt: param(
                &mut input,
                &[
                    "none",
                    "login",
                    "consent select_account",
                    "none login",
                    "bogus",
                ],
            ),
            max_age: param(
                &mut input,
                &["0", "3600", "-1", "1e3", "99999999999999999999"],
            ),
            login_hint: param(&mut input, &["alice"]),
            id_token_hint: param(&mut input, &["eyJhbGciOiJub25lIn0.e30."]),
            acr_values: param(&mut input, &["urn:vigil:acr:mfa phr", "urn:x"]),
            ui_locales: param(&mut input, &["de en"]),
            response_mode: param(&mut input, &["query", "form_post", "fragment"]),
            request: if input.below(16) == 0 {
                Some("x".into())
            } else {
                None
            },
            request_uri: if input.below(16) == 0 {
                Some("x".into())
            } else {
                None
            },
            claims: param(
                &mut input,
                &[
                    r#"{"userinfo":{"name":{"essential":true}}}"#,
                    r#"{"userinfo":{"email":null,"phone_number":null}}"#,
                    r#"{"id_token":{"email":{"essential":true}}}"#,
                    r#"{"userinfo":[]}"#,
                    "[]",
                    "not json",
                ],
            ),
        }
    };
    let registered = |u: &str| client.redirect_uris.iter().any(|r| r == u);
    let names_client_and_uri =
        p.client_id.as_deref() == Some("app") && p.redirect_uri.as_deref().is_some_and(registered);
    match authorize::validate_for_client(client.clone(), ISSUER, p.clone()) {
        Ok(v) => {
            assert!(names_client_and_uri);
            assert!(registered(&v.redirect_uri));
            assert_eq!(Some(v.redirect_uri.as_str()), p.redirect_uri.as_deref());
            assert_eq!(p.response_type.as_deref(), Some("code"));
            assert!(p.request.is_none() && p.request_uri.is_none());
            assert!(v.scopes.iter().any(|s| s == "openid"));
            assert!(v
                .scopes
                .iter()
                .all(|s| vigil::oidc::SCOPES.contains(&s.as_str())));
            assert_eq!(
                v.scopes.iter().collect::<HashSet<_>>().len(),
                v.scopes.len()
            );
            if !client.allows_grant("refresh_token") {
                assert!(!v.scopes.iter().any(|s| s == "offline_access"));
            }
            assert!(client.allows_grant("authorization_code"));
            match &v.code_challenge {
                Some(c) => {
                    assert_eq!(c.len(), 43);
                    assert!(c
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                    assert_eq!(p.code_challenge_method.as_deref(), Some("S256"));
                }
                None => assert!(!client.public && !client.require_pkce),
            }
            let allowed = ["none", "login", "consent", "select_account"];
            assert!(v.prompt.iter().all(|x| allowed.contains(&x.as_str())));
            assert!(!v.prompt.iter().any(|x| x == "none") || v.prompt.len() == 1);
            assert!(v.max_age.is_none_or(|m| m >= 0));
            assert!(v
                .acr_values
                .iter()
                .all(|a| vigil::oidc::ACRS.contains(&a.as_str())));
            // The parameters that are echoed or stored are bounded (MAX_PARAM).
            for x in [
                &p.state,
                &p.nonce,
                &p.scope,
                &p.prompt,
                &p.login_hint,
                &p.id_token_hint,
                &p.acr_values,
                &p.ui_locales,
                &p.code_challenge,
            ]
            .into_iter()
            .flatten()
            {
                assert!(x.len() <= 2048);
            }
            assert_eq!(v.state, p.state);
        }
        Err(Refusal::Redirect(r)) => {
            assert!(names_client_and_uri, "redirected for an untrusted request");
            assert!(registered(&r.redirect_uri));
            assert_eq!(Some(r.redirect_uri.as_str()), p.redirect_uri.as_deref());
            check_redirect_error(&r, p.state.as_deref());
        }
        Err(Refusal::Page(msg)) => {
            assert!(!names_client_and_uri, "a page for a trusted request: {msg}");
        }
        Err(Refusal::Unavailable(m)) => {
            panic!("validating for a loaded client needs no database: {m}")
        }
    }
}

fn check_redirect_error(r: &Redirect, state: Option<&str>) {
    let get = |k: &str| {
        r.params
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let error = get("error");
    assert_eq!(error.len(), 1);
    assert!(rfc6749_charset(error[0]) && !error[0].is_empty());
    let desc = get("error_description");
    assert_eq!(desc.len(), 1);
    assert!(rfc6749_charset(desc[0]), "{:?}", desc[0]);
    assert_eq!(get("iss"), [ISSUER]);
    let want_state: Vec<&str> = state.filter(|s| s.len() <= 2048).into_iter().collect();
    assert_eq!(get("state"), want_state);
}

/// Target `redirect_uri`: registration (`RedirectUri::parse`) and the `/authorize` matcher.
/// - an accepted registration is kept byte for byte, is absolute, has no fragment or user
///   info, and is https, http to a loopback host, or a private-use scheme with a dot;
/// - the matcher accepts a URI only when it is byte-equal to a registered one, and accepts
///   every registered one; near misses (case, port, slash, escapes, dot segments) never match.
pub fn redirect_uri(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let candidate = match mode % 3 {
        0 => String::from_utf8_lossy(input.rest()).into_owned(),
        1 => {
            let base = input.pick(&REDIRECT_CANDIDATES);
            String::from_utf8_lossy(&mutate(base.as_bytes(), &mut input, 4)).into_owned()
        }
        _ => input.pick(&REDIRECT_CANDIDATES).to_owned(),
    };
    if let Ok(r) = vigil::domain::RedirectUri::parse(&candidate) {
        assert_eq!(r.as_str(), candidate, "kept exactly as written");
        assert!(!candidate.contains('#'));
        let u = url::Url::parse(&candidate).expect("an accepted redirect URI is a URL");
        assert!(u.username().is_empty() && u.password().is_none());
        let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match u.scheme() {
            "https" => assert!(u.host_str().is_some()),
            "http" => assert!(loopback),
            other => assert!(other.contains('.'), "scheme {other}"),
        }
    }
    let registered: Vec<String> = REGISTERED.iter().map(|s| s.to_string()).collect();
    match authorize::match_redirect_uri(&registered, &candidate) {
        Some(m) => {
            assert_eq!(m.as_bytes(), candidate.as_bytes());
            assert!(REGISTERED.contains(&m));
        }
        None => assert!(!REGISTERED.contains(&candidate.as_str())),
    }
    for r in REGISTERED {
        assert_eq!(authorize::match_redirect_uri(&registered, r), Some(r));
    }
}

/// Target `authorize_response`: the redirect back to the client (`Redirect::location`).
/// - the location is a URL with the registered URI's scheme, host, port and path, and no
///   fragment;
/// - its query is the registered URI's own pairs, then the response parameters, then `state`
///   and `iss`, each decoding to exactly what was put in (no injection through values).
pub fn authorize_response(data: &[u8]) {
    let mut input = Input::new(data);
    let uri = if input.below(4) == 0 {
        input.string(64)
    } else {
        input.pick(&REGISTERED).to_owned()
    };
    if vigil::domain::RedirectUri::parse(&uri).is_err() {
        return;
    }
    let mut params = Vec::new();
    for _ in 0..input.below(4) {
        let k = input
            .pick(&["code", "error", "error_description", "x", "iss&x=1"])
            .to_owned();
        params.push((k, input.string(32)));
    }
    let state = input.bool().then(|| input.string(32));
    let r = Redirect::new(
        &uri,
        ResponseMode::Query,
        state.as_deref(),
        ISSUER,
        params.clone(),
    );
    let loc = url::Url::parse(&r.location()).expect("the location is a URL");
    let base = url::Url::parse(&uri).expect("a registered URI is a URL");
    assert_eq!(loc.scheme(), base.scheme());
    assert_eq!(loc.host_str(), base.host_str());
    assert_eq!(loc.port(), base.port());
    assert_eq!(loc.path(), base.path());
    assert_eq!(loc.fragment(), None);
    let mut want: Vec<(String, String)> = base.query_pairs().into_owned().collect();
    want.extend(params);
    if let Some(s) = state {
        want.push(("state".into(), s));
    }
    want.push(("iss".into(), ISSUER.into()));
    let got: Vec<(String, String)> = loc.query_pairs().into_owned().collect();
    assert_eq!(got, want, "location {loc}");
}

// ---------------------------------------------------------------------------------------------
// /token, client authentication

const TOKEN_NAMES: [&str; 8] = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
];

fn token_fields(p: &TokenParams) -> [(&'static str, &Option<String>); 8] {
    [
        ("grant_type", &p.grant_type),
        ("code", &p.code),
        ("redirect_uri", &p.redirect_uri),
        ("code_verifier", &p.code_verifier),
        ("refresh_token", &p.refresh_token),
        ("scope", &p.scope),
        ("client_id", &p.client_id),
        ("client_secret", &p.client_secret),
    ]
}

/// Target `token_body`: the form body of `/token` (and introspection, revocation).
/// - a parameter sent twice is `invalid_request` (400), whichever it is, and a refusal is
///   never for anything else (every other body parses);
/// - a parsed body holds each parameter's decoded value;
/// - every error description, including those quoting the body, is within RFC 6749 §5.2's
///   character set, and `clean_description` keeps the length and is idempotent;
/// - a client id with NUL is refused before any lookup.
pub fn token_body(data: &[u8]) {
    let mut input = Input::new(data);
    let body: Vec<u8> = if input.byte().is_multiple_of(2) {
        input.rest().to_vec()
    } else {
        let mut out = Vec::new();
        for i in 0..input.below(10) {
            if i > 0 {
                out.push(b'&');
            }
            out.extend_from_slice(input.pick(&TOKEN_NAMES).as_bytes());
            out.push(b'=');
            let n = input.below(20);
            out.extend_from_slice(input.bytes(n));
        }
        out
    };
    let pairs = form_pairs(&body);
    let repeated = TOKEN_NAMES
        .iter()
        .any(|n| pairs.iter().filter(|(k, _)| k == n).count() > 1);
    match vigil::oidc::parse_form::<TokenParams>(&body) {
        Ok(p) => {
            assert!(!repeated, "a repeated parameter was accepted: {body:?}");
            for (name, value) in token_fields(&p) {
                assert_eq!(value.as_deref(), single(&pairs, name), "{name} in {body:?}");
            }
            if let Err(e) = Presented::from_parts(None, p.client_id.clone(), p.client_secret) {
                check_oauth_error(&e);
                assert!(p.client_id.is_some_and(|c| c.contains('\0')));
            }
        }
        Err(e) => {
            assert!(repeated, "refused without a repeat: {body:?}: {e}");
            assert_eq!((e.error, e.status), ("invalid_request", 400));
            check_oauth_error(&e);
        }
    }
    let text = String::from_utf8_lossy(&body);
    let clean = clean_description(&text);
    assert!(rfc6749_charset(&clean));
    assert_eq!(clean.chars().count(), text.chars().count());
    assert_eq!(clean_description(&clean), clean);
    check_oauth_error(&OAuthError::unsupported_grant_type(text.into_owned()));
}

/// Target `basic_auth`: the `Authorization: Basic` header of client authentication.
/// - any id and secret, form-encoded as RFC 6749 §2.3.1 says, come back exactly (an id with
///   NUL is refused: no client can have one);
/// - for any header, a Basic header that is accepted decodes (standard base64, UTF-8, a
///   colon) to what an independent form decoder reads, and a refused one is `invalid_client`
///   (401) — never a panic; anything not Basic is left to the other methods.
pub fn basic_auth(data: &[u8]) {
    let mut input = Input::new(data);
    if input.byte().is_multiple_of(2) {
        let id = input.string(40);
        let secret = input.string(40);
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let scheme = input.pick(&["Basic", "basic", "BASIC", "bAsIc"]);
        let pad = input.pick(&["", " ", "\t"]);
        let header = format!(
            "{scheme} {pad}{}{pad}",
            STANDARD.encode(format!("{}:{}", enc(&id), enc(&secret)))
        );
        match Presented::from_parts(Some(&header), None, None) {
            Ok(p) => {
                assert!(!id.contains('\0'));
                assert_eq!(p.basic, Some((id, secret)), "header {header:?}");
            }
            Err(e) => {
                assert!(id.contains('\0'), "refused {header:?}: {e}");
                check_oauth_error(&e);
            }
        }
        return;
    }
    let header = String::from_utf8_lossy(input.rest()).into_owned();
    let basic = header.len() > 6
        && header
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("basic "));
    match Presented::from_parts(Some(&header), None, None) {
        Ok(p) => match p.basic {
            Some((id, secret)) => {
                assert!(basic);
                let raw = STANDARD
                    .decode(header[6..].trim())
                    .expect("accepted: base64");
                let text = String::from_utf8(raw).expect("accepted: UTF-8");
                let (i, s) = text.split_once(':').expect("accepted: a colon");
                assert_eq!(id, form_bytes(i.as_bytes()));
                assert_eq!(secret, form_bytes(s.as_bytes()));
                assert!(!id.contains('\0'));
            }
            None => assert!(!basic),
        },
        Err(e) => {
            assert!(basic);
            assert_eq!((e.error, e.status), ("invalid_client", 401));
            check_oauth_error(&e);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JWS: id_token_hint and bearer tokens

struct Jws {
    keys: vigil::oidc::keys::KeySet,
    /// Tokens the keys really signed: (token, typ).
    valid: Vec<(String, &'static str)>,
}

/// How long the `jws` target's signed tokens stay valid: far beyond any fuzzing run.
pub const JWS_VALID_SECS: i64 = 365 * 86_400;

fn jws_state() -> &'static Jws {
    static STATE: OnceLock<Jws> = OnceLock::new();
    STATE.get_or_init(|| {
        use vigil::clock::Clock as _;
        let now = vigil::clock::SystemClock.now();
        let keys = vigil::oidc::keys::KeySet::ephemeral(now).expect("ephemeral keys");
        let secs = now.0 / 1_000_000;
        // Valid for a year: the invariant is about signatures and headers, not the clock. With
        // ten minutes (as before) the signed tokens expired in the middle of a 12-minute
        // campaign slice, and "a token the keys signed verifies" failed (29 Nov, `jws`).
        // Expiry is covered by the forged-token tests (`adversarial`).
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": "u1", "aud": "app", "exp": secs + JWS_VALID_SECS, "iat": secs,
            "auth_time": secs, "acr": "urn:vigil:acr:pwd", "amr": ["pwd"],
            "risk": { "score": 0, "level": "low", "decision": "allow", "reasons": [], "model": "none" },
            "jti": "j1", "client_id": "app", "scope": "openid"
        });
        let mut valid = Vec::new();
        for alg in vigil::oidc::keys::ALGS {
            for typ in ["JWT", "at+jwt"] {
                valid.push((keys.sign(alg, typ, &claims).expect("sign"), typ));
            }
        }
        Jws { keys, valid }
    })
}

/// Target `jws`: `KeySet::verify`, which checks `id_token_hint` (typ JWT) at `/authorize` and
/// `/logout` and bearer access tokens (typ at+jwt) at userinfo and revocation.
/// - a token the keys signed verifies as its own type, and not as the other;
/// - nothing else validates: a signed token with any byte changed, a token assembled from
///   fuzzer-chosen header (any `alg`, `kid`, `typ`), claims and signature, or raw bytes —
///   `Ok` only for a string byte-identical to one the keys signed.
pub fn jws(data: &[u8]) {
    let st = jws_state();
    let mut input = Input::new(data);
    let token: Vec<u8> = match input.byte() % 3 {
        0 => {
            let (t, _) = &st.valid[input.below(st.valid.len())];
            mutate(t.as_bytes(), &mut input, 6)
        }
        1 => {
            let kid = input.pick(&[
                "ephemeral-0-RS256",
                "ephemeral-1-ES256",
                "ephemeral-2-EdDSA",
                "x",
            ]);
            let alg = input.pick(&["RS256", "ES256", "EdDSA", "HS256", "none", "PS256", "RS512"]);
            let typ = input.pick(&["JWT", "at+jwt", "logout+jwt", "jwt"]);
            let header = if input.bool() {
                serde_json::json!({ "alg": alg, "kid": kid, "typ": typ }).to_string()
            } else {
                input.string(64)
            };
            let (t, _) = &st.valid[input.below(st.valid.len())];
            let mut parts = t.split('.');
            let signed_claims = parts.nth(1).unwrap_or_default().to_owned();
            let claims = if input.bool() {
                signed_claims
            } else {
                URL_SAFE_NO_PAD.encode(input.string(128))
            };
            let sig = match input.below(3) {
                0 => t.rsplit('.').next().unwrap_or_default().to_owned(),
                1 => String::new(),
                _ => URL_SAFE_NO_PAD.encode(input.bytes(256)),
            };
            format!("{}.{claims}.{sig}", URL_SAFE_NO_PAD.encode(header)).into_bytes()
        }
        _ => input.rest().to_vec(),
    };
    let token = String::from_utf8_lossy(&token).into_owned();
    let signed = st.valid.iter().find(|(t, _)| *t == token);
    for typ in [Some("JWT"), Some("at+jwt"), None] {
        for check_exp in [false, true] {
            let r = st
                .keys
                .verify::<serde_json::Value>(&token, ISSUER, typ, check_exp);
            if r.is_ok() {
                let (_, t) = signed.expect("only a token the keys signed validates");
                assert!(typ.is_none_or(|want| want.eq_ignore_ascii_case(t)));
            }
        }
    }
    if let Some((_, t)) = signed {
        assert!(st
            .keys
            .verify::<serde_json::Value>(&token, ISSUER, Some(t), true)
            .is_ok());
        assert!(st
            .keys
            .verify::<serde_json::Value>(&token, "https://other.example", Some(t), true)
            .is_err());
    }
    let _ = st
        .keys
        .verify::<vigil::oidc::claims::IdClaims>(&token, ISSUER, Some("JWT"), false);
    let _ =
        st.keys
            .verify::<vigil::oidc::claims::AccessClaims>(&token, ISSUER, Some("at+jwt"), true);
}

// ---------------------------------------------------------------------------------------------
// Cookies

/// The CSRF cookie's and token's base64 (as `web/csrf.rs` decodes them).
const B64_COOKIE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_TOKEN: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

struct Cookies {
    csrf: vigil::web::csrf::Csrf,
    /// (form token, cookie value) pairs issued.
    pairs: Vec<(String, String)>,
}

fn cookie_state() -> &'static Cookies {
    static STATE: OnceLock<Cookies> = OnceLock::new();
    STATE.get_or_init(|| {
        let csrf = vigil::web::csrf::Csrf::new([7u8; 32], true);
        let first = csrf.issue_values(None).expect("issue");
        let second = csrf.issue_values(Some(&first.1)).expect("issue again");
        Cookies {
            csrf,
            pairs: vec![first, second],
        }
    })
}

/// Target `cookies`: what vigil reads back from cookies.
/// - CSRF (HMAC-signed cookie + form token): an issued pair verifies; a pair with either
///   half mutated, swapped or made up never does unless both halves still decode to the bytes
///   of an issued pair; re-issuing from any cookie value gives a pair that verifies;
/// - device cookie: an id is taken only in the shape vigil issues (43 base64url characters),
///   and every id vigil issues is taken;
/// - `vigil_next`: a return path is accepted only if, resolved against the issuer, it stays
///   on the issuer's origin under /account or /admin.
pub fn cookies(data: &[u8]) {
    let st = cookie_state();
    let mut input = Input::new(data);
    match input.byte() % 4 {
        0 | 1 => {
            let (token, cookie) = &st.pairs[input.below(st.pairs.len())];
            let (mut t, mut c) = (token.clone().into_bytes(), cookie.clone().into_bytes());
            match input.below(4) {
                0 => t = mutate(&t, &mut input, 4),
                1 => c = mutate(&c, &mut input, 4),
                2 => std::mem::swap(&mut t, &mut c),
                _ => {
                    let n = input_len(&mut input, 100);
                    t = input.bytes(n).to_vec();
                    c = input.rest().to_vec();
                }
            }
            let (t, c) = (
                String::from_utf8_lossy(&t).into_owned(),
                String::from_utf8_lossy(&c).into_owned(),
            );
            if st.csrf.verify_values(&c, &t).is_ok() {
                let decoded = (B64_TOKEN.decode(&t).ok(), B64_COOKIE.decode(&c).ok());
                assert!(
                    st.pairs.iter().any(|(it, ic)| {
                        decoded == (B64_TOKEN.decode(it).ok(), B64_COOKIE.decode(ic).ok())
                    }),
                    "a forged CSRF pair verified: {t:?} / {c:?}"
                );
            }
        }
        2 => {
            let previous = String::from_utf8_lossy(input.rest()).into_owned();
            let (t, c) = st.csrf.issue_values(Some(&previous)).expect("issue");
            assert!(st.csrf.verify_values(&c, &t).is_ok());
            for (it, ic) in &st.pairs {
                assert!(st.csrf.verify_values(ic, it).is_ok());
            }
        }
        _ => {
            let s = String::from_utf8_lossy(input.rest()).into_owned();
            if let Some(id) = vigil::web::middleware::device_id(&s) {
                assert_eq!(id, s);
                assert_eq!(id.len(), 43);
                assert!(id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
            let fresh = vigil::flow::random_token();
            assert_eq!(
                vigil::web::middleware::device_id(&fresh),
                Some(fresh.as_str())
            );
            if let Some(next) = vigil::web::safe_next(&s) {
                let base = url::Url::parse("https://id.example.com/").expect("base");
                let to = base.join(next).expect("an accepted path resolves");
                assert_eq!(to.origin(), base.origin(), "{next:?} leaves the origin");
                assert!(
                    to.path() == "/account"
                        || to.path().starts_with("/account/")
                        || to.path() == "/admin"
                        || to.path().starts_with("/admin/"),
                    "{next:?} resolves to {to}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// X-Forwarded-For

/// One hop as a proxy chain may write it, by an independent reader: `IP`, `IPv4:port`,
/// `[IPv6]:port` or `[IPv6]`, canonical (a v4-mapped address is its IPv4 address).
fn hop_oracle(hop: &str) -> Option<IpAddr> {
    let h = hop.trim();
    h.parse::<IpAddr>()
        .ok()
        .or_else(|| h.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            h.strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .and_then(|x| x.parse::<Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })
        .map(|ip| ip.to_canonical())
}

/// Target `xff`: `net::client_ip`, the walk over `X-Forwarded-For` behind trusted proxies.
/// - the answer is the peer or an address some hop names — never something unparsable;
/// - an untrusted peer is the client, whatever the header says;
/// - otherwise, reading hops right to left: the answer is the first untrusted hop, provided
///   every hop to its right parsed and was trusted; if the walk meets an unparsable hop first
///   (or runs out), the answer is the last trusted address seen — so a trusted answer means
///   no untrusted hop was reached, and nothing left of an unparsable hop is ever believed.
pub fn xff(data: &[u8]) {
    let mut input = Input::new(data);
    let pool: [&str; 6] = [
        "10.0.0.0/8",
        "fd00::/8",
        "192.0.2.0/28",
        "::ffff:172.16.0.0/108",
        "0.0.0.0/0",
        "2001:db8::1/128",
    ];
    let trusted: Vec<IpNet> = (0..input.below(4))
        .map(|_| input.pick(&pool).parse().expect("pool CIDR"))
        .collect();
    let peers = [
        "10.0.0.9",
        "::ffff:10.0.0.9",
        "fd00::9",
        "192.0.2.200",
        "2001:db8::1",
        "172.16.0.1",
    ];
    let peer: IpAddr = input.pick(&peers).parse().expect("peer");
    let hop_pool = [
        "10.1.2.3",
        "fd00::1",
        "192.0.2.1",
        "192.0.2.77:8080",
        "[2001:db8::5]:443",
        "[fd00::2]",
        "::ffff:10.0.0.1",
        "::ffff:198.51.100.1",
        "198.51.100.9",
        "",
        " ",
        "unknown",
        "_hidden",
        "999.1.1.1",
        "1.2.3.4:99999",
        "[::1",
        "2001:db8::1",
    ];
    let headers: Vec<String> = if input.bool() {
        (0..=input.below(3))
            .map(|_| {
                (0..input.below(6))
                    .map(|_| {
                        if input.below(8) == 0 {
                            input.string(16)
                        } else {
                            input.pick(&hop_pool).to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(input.pick(&[",", ", ", " ,"]))
            })
            .collect()
    } else {
        String::from_utf8_lossy(input.rest())
            .split('\n')
            .map(str::to_owned)
            .collect()
    };
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let got = vigil::net::client_ip(peer, &refs, &trusted);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = peer.to_canonical();
    let hops: Vec<&str> = refs.iter().flat_map(|v| v.split(',')).collect();
    let named: Vec<IpAddr> = hops.iter().filter_map(|h| hop_oracle(h)).collect();
    assert!(
        got == peer || named.contains(&got),
        "{got} is neither peer nor a hop"
    );
    if !is_trusted(&peer) {
        assert_eq!(got, peer);
        return;
    }
    let mut expected = peer;
    for hop in hops.iter().rev() {
        match hop_oracle(hop) {
            None => break,
            Some(ip) if is_trusted(&ip) => expected = ip,
            Some(ip) => {
                expected = ip;
                break;
            }
        }
    }
    assert_eq!(
        got, expected,
        "peer {peer}, hops {hops:?}, trusted {trusted:?}"
    );
    if is_trusted(&got) {
        let reached_untrusted = hops
            .iter()
            .rev()
            .map_while(|h| hop_oracle(h))
            .any(|ip| !is_trusted(&ip));
        assert!(!reached_untrusted);
    }
}

// ---------------------------------------------------------------------------------------------
// The IP deny list

/// One deny-list entry line by an independent reader: the network it names, or `Err` for a
/// malformed line, or `None` for a comment or blank line.
fn denylist_line(line: &str) -> Option<Result<IpNet, ()>> {
    let entry = line.split('#').next().unwrap_or("").trim();
    if entry.is_empty() {
        return None;
    }
    Some(if entry.contains('/') {
        entry.parse::<IpNet>().map_err(|_| ())
    } else {
        entry.parse::<IpAddr>().map(IpNet::from).map_err(|_| ())
    })
}

/// Is `ip` in `net`, reading an IPv4-mapped IPv6 address and its IPv4 address as one client?
fn denylist_oracle(nets: &[IpNet], ip: IpAddr) -> bool {
    let c = ip.to_canonical();
    nets.iter().any(|n| match (n, c) {
        (IpNet::V4(n), IpAddr::V4(a)) => n.contains(&a),
        (IpNet::V6(n), IpAddr::V4(a)) => n.contains(&a.to_ipv6_mapped()),
        (IpNet::V6(n), IpAddr::V6(a)) => n.contains(&a),
        (IpNet::V4(_), IpAddr::V6(_)) => false,
    })
}

fn fuzz_ip(input: &mut Input<'_>) -> IpAddr {
    match input.below(4) {
        0 => IpAddr::from([input.byte(), input.byte(), input.byte(), input.byte()]),
        1 => IpAddr::V6(
            std::net::Ipv4Addr::from([input.byte(), input.byte(), input.byte(), input.byte()])
                .to_ipv6_mapped(),
        ),
        2 => {
            let mut b = [0u8; 16];
            for x in b.iter_mut().take(1 + input.below(16)) {
                *x = input.byte();
            }
            IpAddr::from(b)
        }
        _ => input
            .pick(&[
                "10.0.0.1",
                "192.0.2.9",
                "::ffff:192.0.2.9",
                "2001:db8::1",
                "::",
                "0.0.0.0",
                "255.255.255.255",
                "::1",
                "::ffff:0:0",
            ])
            .parse()
            .expect("ip"),
    }
}

/// Target `denylist`: `DenyList::parse` and `contains` (the `VIGIL_IP_DENYLIST` file).
/// - a file is refused exactly when some line (after its `#` comment) is neither an address
///   nor a CIDR, and the error names the first such line; comments and blank lines are ignored;
/// - every entry's network contains its first and last address by `contains` (in both IPv4 and
///   IPv4-mapped IPv6 spelling), and `contains` agrees with an entry-by-entry check for any
///   address, so merging ranges loses and invents nothing;
/// - the parsed set does not depend on line order, repetition or comments.
pub fn denylist(data: &[u8]) {
    let mut input = Input::new(data);
    let text = if input.byte().is_multiple_of(2) {
        String::from_utf8_lossy(input.rest()).into_owned()
    } else {
        let mut lines = Vec::new();
        for _ in 0..input.below(12) {
            let ip = fuzz_ip(&mut input);
            let line = match input.below(6) {
                0 => ip.to_string(),
                1 | 2 => {
                    let max = if ip.is_ipv4() { 33 } else { 129 };
                    format!("{ip}/{}", input.below(max))
                }
                3 => format!("# {}", input.string(8)),
                4 => String::new(),
                _ => input.string(12),
            };
            let comment = if input.below(4) == 0 { " # c" } else { "" };
            lines.push(format!("{line}{comment}"));
        }
        lines.join("\n")
    };
    let parsed: Vec<(usize, Option<Result<IpNet, ()>>)> =
        text.lines().map(denylist_line).enumerate().collect();
    let first_bad = parsed
        .iter()
        .find(|(_, r)| matches!(r, Some(Err(()))))
        .map(|(i, _)| i + 1);
    let nets: Vec<IpNet> = parsed
        .iter()
        .filter_map(|(_, r)| r.as_ref().and_then(|x| x.ok()))
        .collect();
    let list = match vigil::risk::denylist::DenyList::parse(&text) {
        Ok(l) => {
            assert_eq!(first_bad, None, "accepted a malformed line");
            l
        }
        Err(e) => {
            let line = first_bad.expect("refused a good file");
            assert!(
                matches!(e, vigil::risk::denylist::DenyListError::Malformed { line: l, .. } if l == line),
                "{e} but the first bad line is {line}"
            );
            return;
        }
    };
    // At most two ranges per entry: a wide IPv6 network keeps its IPv4-mapped part as IPv4.
    assert!(list.len() <= 2 * nets.len());
    for n in &nets {
        for ip in [n.network(), n.broadcast()] {
            assert!(list.contains(ip), "{n} does not contain {ip}");
            if let IpAddr::V4(a) = ip {
                assert!(list.contains(IpAddr::V6(a.to_ipv6_mapped())));
            }
            assert!(denylist_oracle(&nets, ip));
        }
    }
    for _ in 0..8 {
        let ip = fuzz_ip(&mut input);
        assert_eq!(
            list.contains(ip),
            denylist_oracle(&nets, ip),
            "{ip} against {nets:?}"
        );
    }
    let entries: Vec<&str> = text.lines().collect();
    let reversed: Vec<&str> = entries.iter().rev().copied().collect();
    let same = |t: &str| vigil::risk::denylist::DenyList::parse(t).expect("reordered file");
    assert_eq!(same(&reversed.join("\n")), list);
    assert_eq!(same(&format!("{text}\n{text}")), list);
    let commented: Vec<String> = entries
        .iter()
        .map(|l| format!("{l} # note\n# x\n\n"))
        .collect();
    assert_eq!(same(&commented.concat()), list);
}

// ---------------------------------------------------------------------------------------------
// The replay CSV reader

/// A CSV field, quoted (RFC 4180).
fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A parsed row written back as a data line.
fn csv_line(r: &vigil::risk::replay::Row) -> String {
    let time = chrono::DateTime::from_timestamp_micros(r.at.0)
        .expect("a parsed time is representable")
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let flag = |b: bool| if b { "True" } else { "False" }.to_owned();
    let fields = [
        r.index.clone(),
        time,
        r.user.clone(),
        String::new(),
        r.ip.map(|i| i.to_string()).unwrap_or_default(),
        opt(&r.country),
        opt(&r.region),
        opt(&r.city),
        r.asn.map(|a| a.to_string()).unwrap_or_default(),
        r.user_agent.clone(),
        String::new(),
        String::new(),
        String::new(),
        flag(r.success),
        flag(r.attack_ip),
        flag(r.takeover),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

fn same_row(a: &vigil::risk::replay::Row, b: &vigil::risk::replay::Row) -> bool {
    (
        a.index.as_str(),
        a.at,
        a.user.as_str(),
        a.ip,
        &a.country,
        &a.region,
        &a.city,
        a.asn,
    ) == (
        b.index.as_str(),
        b.at,
        b.user.as_str(),
        b.ip,
        &b.country,
        &b.region,
        &b.city,
        b.asn,
    ) && (a.user_agent.as_str(), a.success, a.attack_ip, a.takeover)
        == (b.user_agent.as_str(), b.success, b.attack_ip, b.takeover)
}

/// A data line built from fuzzer bytes: plausible values, sometimes broken, sometimes quoted.
fn replay_line(input: &mut Input<'_>) -> String {
    let mut fields: Vec<String> = vec![
        format!("{}", input.below(1000)),
        input
            .pick(&[
                "2020-02-03 12:43:30.772",
                "2020-02-03 12:43:30",
                "1970-01-01 00:00:00.000001",
                "2020-02-30 12:00:00",
                "2020-12-31 23:59:60.5",
                "+10000-01-01 00:00:00",
                "-0001-01-01 00:00:00",
                "2020-02-03T12:43:30",
            ])
            .to_owned(),
        input
            .pick(&["-4324475583306591935", "u1", " ", "a\"b"])
            .to_owned(),
        input.pick(&["", "12.5", "x"]).to_owned(),
        input
            .pick(&["10.0.65.171", "", "-", "::1", "1.2.3", "[::1]"])
            .to_owned(),
        input.pick(&["NO", "-", ""]).to_owned(),
        input.pick(&["-", "Oslo"]).to_owned(),
        input.pick(&["-", "Oslo", "a,b"]).to_owned(),
        input.pick(&["29695", "", "-1", "4294967296"]).to_owned(),
        input.string(24),
        String::new(),
        String::new(),
        input.pick(&["mobile", ""]).to_owned(),
        input
            .pick(&["True", "False", "true", "1", "yes"])
            .to_owned(),
        input.pick(&["True", "False", "0"]).to_owned(),
        input.pick(&["True", "False", " False "]).to_owned(),
    ];
    if input.below(8) == 0 {
        let n = input.below(fields.len());
        fields.truncate(n);
    }
    fields
        .iter()
        .map(|f| {
            if input.bool() {
                csv_field(f)
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Target `replay_csv`: the reader of `vigil risk replay` (`Rows`, `parse_row`).
/// - every line after the header is either a row or a malformed row carrying its own line
///   number (blank lines are skipped) — for any bytes, including lines that are not UTF-8;
///   rows come out in file order with non-decreasing times (a step back is malformed);
/// - a parsed row, written back as CSV, parses to the same row.
pub fn replay_csv(data: &[u8]) {
    use vigil::risk::replay::{parse_row, Rows, HEADER};
    let mut input = Input::new(data);
    let mut bytes = Vec::new();
    let mode = input.byte() % 3;
    if mode != 0 {
        bytes.extend_from_slice(HEADER.join(",").as_bytes());
        bytes.push(b'\n');
    }
    if mode == 2 {
        for _ in 0..input.below(6) {
            bytes.extend_from_slice(replay_line(&mut input).as_bytes());
            bytes.extend_from_slice(input.pick(&[&b"\n"[..], b"\r\n", b"\n\n", b"\n\xff\n"]));
        }
    } else {
        bytes.extend_from_slice(input.rest());
    }
    // The lines as `read_until(b'\n')` sees them, numbered from 1.
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        lines.pop();
    }
    let mut expected: Vec<(u64, Option<&str>)> = Vec::new(); // (line, text if UTF-8)
    for (i, raw) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        let text = std::str::from_utf8(raw)
            .ok()
            .map(|t| t.trim_end_matches(['\n', '\r']));
        if n == 1 {
            let ok = text
                .and_then(|t| vigil::risk::replay::split_csv(t.trim_start_matches('\u{feff}')).ok())
                .is_some_and(|h| h.iter().map(|s| s.trim()).eq(HEADER));
            if !ok {
                expected.push((1, None));
            }
            continue;
        }
        if text.is_some_and(|t| t.trim().is_empty()) {
            continue;
        }
        expected.push((n, text));
    }
    let got: Vec<_> = Rows::new(&bytes[..]).collect();
    assert_eq!(got.len(), expected.len(), "one item per line: {bytes:?}");
    let mut last = None;
    for (item, (line, text)) in got.iter().zip(&expected) {
        match item {
            Ok(row) => {
                let text = text.expect("a row comes from a UTF-8 line");
                let again = parse_row(text).expect("a row parses alone");
                assert!(same_row(row, &again));
                assert!(last.is_none_or(|l| l <= row.at), "rows go back in time");
                last = Some(row.at);
            }
            Err((l, reason)) => {
                assert_eq!(l, line, "{reason}");
                assert!(!reason.is_empty());
            }
        }
    }
    // Round trip of every line that parses on its own.
    for (_, text) in &expected {
        if let Some(Ok(row)) = text.map(parse_row) {
            let line = csv_line(&row);
            let again = parse_row(&line).unwrap_or_else(|e| panic!("{line:?} re-parses: {e}"));
            assert!(same_row(&row, &again), "{line:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Device hints

/// Target `device_hints`: the login page's device-hints field and the other device strings.
/// - `parse_hints` never panics; over 512 bytes, not a JSON object of strings, gives nothing;
///   each value it keeps is non-empty, at most 64 bytes, free of control characters;
///   clean values (printable, trimmed, short) are kept exactly;
/// - `observe` gives a 16-hex-digit fingerprint for any input, the same for the same input;
/// - `primary_language` is 1–8 lower-case ASCII letters or nothing.
pub fn device_hints(data: &[u8]) {
    use vigil::risk::device;
    let mut input = Input::new(data);
    let (raw, exact) = if input.byte().is_multiple_of(2) {
        (String::from_utf8_lossy(input.rest()).into_owned(), None)
    } else {
        // Per field: `Some(v)` when the value is known exactly (absent, or already clean).
        let mut obj = serde_json::Map::new();
        let mut want: [Option<Option<String>>; 3] = [Some(None), Some(None), Some(None)];
        let mut typed = true;
        for (i, name) in ["tz", "screen", "platform"].into_iter().enumerate() {
            match input.below(4) {
                0 => {}
                1 => {
                    typed = false;
                    obj.insert(name.into(), serde_json::Value::from(input.below(100)));
                }
                _ => {
                    let v = input.string(80);
                    let clean = v.len() <= 64
                        && !v.is_empty()
                        && v.trim() == v
                        && !v.chars().any(char::is_control);
                    want[i] = clean.then(|| Some(v.clone()));
                    obj.insert(name.into(), serde_json::Value::from(v));
                }
            }
        }
        let text = serde_json::Value::Object(obj).to_string();
        let known = typed && text.len() <= device::MAX_HINTS_BYTES;
        (text, known.then_some(want))
    };
    let h = device::parse_hints(&raw);
    for v in [&h.tz, &h.screen, &h.platform].into_iter().flatten() {
        assert!(!v.is_empty() && v.len() <= 64, "{v:?}");
        assert!(!v.chars().any(char::is_control), "{v:?}");
    }
    if raw.len() > device::MAX_HINTS_BYTES {
        assert_eq!(h, device::DeviceHints::default());
    }
    if let Some(want) = exact {
        for (w, got) in want.iter().zip([&h.tz, &h.screen, &h.platform]) {
            if let Some(w) = w {
                assert_eq!(got, w, "{raw}");
            }
        }
    }
    assert_eq!(device::parse_hints(&raw), h);
    let ua = String::from_utf8_lossy(&data[..data.len().min(700)]).into_owned();
    let (_, dev) = device::observe(&ua, Some(&raw), Some(&raw), Some(&raw));
    let fp = dev.fingerprint.expect("a fingerprint");
    assert!(
        fp.len() == 16 && fp.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fp}"
    );
    let (_, again) = device::observe(&ua, Some(&raw), Some(&raw), Some(&raw));
    assert_eq!(again.fingerprint.as_deref(), Some(fp.as_str()));
    if let Some(l) = device::primary_language(&raw) {
        assert!((1..=8).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase()));
    }
}

// ---------------------------------------------------------------------------------------------
// WebAuthn JSON bodies

struct WebAuthn {
    rp: vigil::auth::webauthn::Passkeys,
    registration_state: String,
    registration_challenge: String,
    discoverable_state: String,
    discoverable_challenge: String,
}

fn webauthn_state() -> &'static WebAuthn {
    static STATE: OnceLock<WebAuthn> = OnceLock::new();
    STATE.get_or_init(|| {
        let rp = vigil::auth::webauthn::Passkeys::new(ISSUER).expect("relying party");
        let (options, registration_state) = rp
            .start_registration(uuid::Uuid::new_v4(), "alice", "Alice", &[])
            .expect("registration options");
        let (doptions, discoverable_state) = rp.start_discoverable().expect("options");
        let challenge = |o: &serde_json::Value| {
            o["publicKey"]["challenge"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        WebAuthn {
            registration_challenge: challenge(&options),
            discoverable_challenge: challenge(&doptions),
            rp,
            registration_state,
            discoverable_state,
        }
    })
}

/// A `PublicKeyCredential` JSON from fuzzer bytes, well-formed enough to get past serde into
/// webauthn-rs (client data with the real challenge and origin half the time).
fn webauthn_body(input: &mut Input<'_>, st: &WebAuthn, create: bool) -> String {
    let b = |x: &[u8]| URL_SAFE_NO_PAD.encode(x);
    let challenge = if input.bool() {
        if create {
            st.registration_challenge.clone()
        } else {
            st.discoverable_challenge.clone()
        }
    } else {
        b(input.bytes(32))
    };
    let origin = input.pick(&[ISSUER, "https://evil.example", "https://id.example.com:443"]);
    let kind = if create {
        "webauthn.create"
    } else {
        "webauthn.get"
    };
    let client_data =
        serde_json::json!({ "type": kind, "challenge": challenge, "origin": origin }).to_string();
    let id = b(input.bytes(16));
    let n = input.below(300);
    let blob = b(input.bytes(n));
    let response = if create {
        serde_json::json!({ "attestationObject": blob, "clientDataJSON": b(client_data.as_bytes()) })
    } else {
        let n = input.below(80);
        serde_json::json!({
            "authenticatorData": blob,
            "clientDataJSON": b(client_data.as_bytes()),
            "signature": b(input.bytes(n)),
            "userHandle": b(input.bytes(16)),
        })
    };
    serde_json::json!({
        "id": id, "rawId": id, "type": "public-key", "response": response,
        "extensions": {}, "authenticatorAttachment": input.pick(&["platform", "cross-platform"]),
    })
    .to_string()
}

fn too_large_error<T>(r: &Result<T, vigil::auth::AuthError>) -> bool {
    matches!(r, Err(e) if e.to_string().contains("too large"))
}

/// Target `webauthn_json`: the browser's answers to the passkey ceremonies.
/// - a body over 16 KiB is refused as too large, before any parsing;
/// - anything else that is not a valid answer is an error, never a panic;
/// - no made-up answer completes a ceremony: a registration only with client data carrying
///   the ceremony's own challenge, origin and type; an assertion never, as no credential is
///   registered.
pub fn webauthn_json(data: &[u8]) {
    use vigil::auth::webauthn::MAX_RESPONSE_JSON;
    let st = webauthn_state();
    let mut input = Input::new(data);
    let create = input.bool();
    let body = match input.byte() % 3 {
        0 => String::from_utf8_lossy(input.rest()).into_owned(),
        1 => webauthn_body(&mut input, st, create),
        _ => {
            let body = webauthn_body(&mut input, st, create);
            // Pad inside a JSON string so only the size is wrong.
            let pad = "A".repeat(MAX_RESPONSE_JSON + 1 - body.len().min(MAX_RESPONSE_JSON));
            body.replacen("\"type\"", &format!("\"pad\":\"{pad}\",\"type\""), 1)
        }
    };
    let too_large = body.len() > MAX_RESPONSE_JSON;
    let reg = st.rp.finish_registration(&body, &st.registration_state);
    let ident = st.rp.identify_discoverable(&body);
    let disc = st
        .rp
        .finish_discoverable(&body, &st.discoverable_state, &[]);
    let auth = st
        .rp
        .finish_authentication(&body, &st.discoverable_state, &[]);
    if too_large {
        assert!(too_large_error(&reg), "{reg:?}");
        assert!(too_large_error(&ident), "{ident:?}");
        assert!(too_large_error(&disc), "{disc:?}");
        assert!(too_large_error(&auth), "{auth:?}");
        return;
    }
    assert!(
        disc.is_err() && auth.is_err(),
        "an assertion without a credential"
    );
    if reg.is_ok() {
        let v: serde_json::Value = serde_json::from_str(&body).expect("accepted: JSON");
        let cd = v["response"]["clientDataJSON"]
            .as_str()
            .expect("client data");
        let cd: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(cd).expect("b64")).expect("json");
        assert_eq!(cd["challenge"], st.registration_challenge.as_str());
        assert_eq!(cd["type"], "webauthn.create");
        assert_eq!(cd["origin"], ISSUER);
    }
}

// ---------------------------------------------------------------------------------------------
// TOML configuration

fn policy_text(p: &vigil::risk::Policy) -> String {
    use vigil::risk::Action;
    let a = |x: Action| match x {
        Action::Allow => "allow",
        Action::StepUp => "step_up",
        Action::StepUpPhishingResistant => "step_up_phishing_resistant",
        Action::Block => "block",
    };
    format!(
        "low={},medium={},high={},deny_listed={}",
        a(p.low),
        a(p.medium),
        a(p.high),
        a(p.deny_listed)
    )
}

/// A TOML basic string (written here: `toml`'s serialiser overflows a `u8` counter, with
/// debug assertions, on a value with 256 quotes in a row).
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Settings written back as a `vigil.toml`.
fn render_settings(s: &vigil::config::Settings) -> String {
    let path = |p: &Option<std::path::PathBuf>| {
        toml_str(
            &p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
    };
    let mut t: Vec<(&str, String)> = vec![
        ("bind", toml_str(&s.bind.to_string())),
        ("issuer", toml_str(s.issuer.as_str())),
        (
            "database_url",
            toml_str(&match &s.database_url {
                vigil::config::DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
                vigil::config::DatabaseUrl::Postgres(u) => u.clone(),
            }),
        ),
        ("geoip_city", path(&s.geoip_city)),
        ("geoip_asn", path(&s.geoip_asn)),
        (
            "trusted_proxies",
            format!(
                "[{}]",
                s.trusted_proxies
                    .iter()
                    .map(|n| toml_str(&n.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        ("ip_denylist", path(&s.ip_denylist)),
        ("log", toml_str(&s.log)),
        ("argon2_memory_kib", s.password.memory_kib.to_string()),
        ("argon2_iterations", s.password.iterations.to_string()),
        ("argon2_parallelism", s.password.parallelism.to_string()),
        (
            "session_idle_minutes",
            (s.session.idle_secs / 60).to_string(),
        ),
        (
            "session_absolute_hours",
            (s.session.absolute_secs / 3600).to_string(),
        ),
        (
            "throttle_account_failures",
            s.throttle.account_failures.to_string(),
        ),
        ("throttle_ip_failures", s.throttle.ip_failures.to_string()),
        (
            "throttle_window_minutes",
            (s.throttle.window_secs / 60).to_string(),
        ),
        ("risk_policy", toml_str(&policy_text(&s.risk_policy))),
        (
            "risk_candidate_policy",
            toml_str(
                &s.risk_candidate_policy
                    .as_ref()
                    .map(policy_text)
                    .unwrap_or_default(),
            ),
        ),
        ("risk_threshold_medium", s.risk_threshold_medium.to_string()),
        ("risk_threshold_high", s.risk_threshold_high.to_string()),
        ("risk_travel_speed_kmh", s.risk_travel_speed_kmh.to_string()),
        ("risk_retrain_days", s.risk_retrain_days.to_string()),
        ("ip_retention_days", s.ip_retention_days.to_string()),
        (
            "token_log_retention_days",
            s.token_log_retention_days.to_string(),
        ),
        (
            "log_format",
            toml_str(match s.log_format {
                vigil::config::LogFormat::Text => "text",
                vigil::config::LogFormat::Json => "json",
            }),
        ),
        (
            "refresh_reuse_interval_secs",
            s.refresh_reuse_interval_secs.to_string(),
        ),
        ("shutdown_drain_secs", s.shutdown_drain_secs.to_string()),
    ];
    if let Some(k) = &s.master_key {
        t.push(("master_key", toml_str(k)));
    }
    if let Some(k) = &s.metrics_token {
        t.push(("metrics_token", toml_str(k)));
    }
    if let Some(a) = s.metrics_bind {
        t.push(("metrics_bind", toml_str(&a.to_string())));
    }
    if let Some(f) = &s.master_key_file {
        t.push(("master_key_file", toml_str(&f.display().to_string())));
    }
    if let Some(q) = s.hash_queue {
        t.push(("hash_queue", q.to_string()));
    }
    match &s.mail.transport {
        vigil::config::MailTransport::Off => {}
        vigil::config::MailTransport::Log => t.push(("smtp_url", toml_str("log"))),
        vigil::config::MailTransport::Smtp(u) => t.push(("smtp_url", toml_str(u))),
    }
    t.push(("mail_from", toml_str(&s.mail.from)));
    t.push(("registration", toml_str(s.registration.as_str())));
    t.push(("admin_digest_hours", s.admin_digest_hours.to_string()));
    if let Some(u) = &s.pwned_passwords_url {
        t.push(("pwned_passwords_url", toml_str(u)));
    }
    t.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
}

/// A `vigil.toml` from fuzzer bytes: known (and an unknown) key with values of every TOML
/// type, valid, near-valid and raw.
fn config_text(input: &mut Input<'_>) -> String {
    const VALUES: [&str; 28] = [
        "\"0.0.0.0:9000\"",
        "\"[::1]:8080\"",
        "\"https://id.example.com/\"",
        "\"HTTPS://ID.example.com\"",
        "\"http://localhost:8080/x/\"",
        "\"https://id.example.com \"",
        "\"ftp://x\"",
        "\"sqlite://vigil.db\"",
        "\"postgres://u:p@db/vigil\"",
        "\"mysql://x\"",
        "\"\"",
        "[\"10.0.0.0/8\", \"::1\"]",
        "[\"10.0.0.0/99\"]",
        "[1, 2]",
        "\"info,vigil=debug\"",
        "\"[{a=b}]\"",
        "35",
        "70",
        "0",
        "-1",
        "4294967296",
        "\" 12 \"",
        "true",
        "1.5",
        "\"low=block,medium=allow\"",
        "\"high=nope\"",
        "{ a = 1 }",
        "1979-05-27",
    ];
    let mut out = String::new();
    for _ in 0..input.below(8) {
        // Every key vigil knows (one list, in src/config.rs) and one it does not.
        let known = vigil::config::KEYS;
        let i = input.below(known.len() + 1);
        let key = known.get(i).copied().unwrap_or("colour");
        let value = if input.below(4) == 0 {
            format!("{:?}", input.string(20))
        } else {
            input.pick(&VALUES).to_owned()
        };
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

/// Target `config_toml`: `vigil.toml` (`Settings::from_toml`).
/// - any text gives settings or one error naming its source — never a panic;
/// - settings that load satisfy their own rules: thresholds ordered, numbers in range, an
///   issuer that is its own canonical form (no trailing slash, no whitespace, `is_https`
///   exactly when the scheme is https);
/// - settings written back as TOML load again to the same settings.
pub fn config_toml(data: &[u8]) {
    let mut input = Input::new(data);
    let text = if input.byte().is_multiple_of(2) {
        String::from_utf8_lossy(input.rest()).into_owned()
    } else {
        config_text(&mut input)
    };
    let s = match vigil::config::Settings::from_toml(&text, "fuzz.toml") {
        Ok(s) => s,
        Err(e) => {
            assert!(!e.source_name.is_empty() && !e.problem.is_empty(), "{e}");
            return;
        }
    };
    assert!(s.risk_threshold_medium < s.risk_threshold_high);
    assert!((1..=99).contains(&s.risk_threshold_medium) && s.risk_threshold_high <= 100);
    assert!((1024..=4 * 1024 * 1024).contains(&s.password.memory_kib));
    assert!(s.session.idle_secs >= 60 && s.session.absolute_secs >= 3600);
    assert!(s.throttle.window_secs >= 60 && s.throttle.account_failures >= 1);
    let issuer = s.issuer.as_str();
    assert!(!issuer.ends_with('/'), "{issuer:?}");
    assert!(
        !issuer.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{issuer:?}"
    );
    let url = url::Url::parse(issuer).expect("the issuer is a URL");
    assert_eq!(s.issuer.is_https(), url.scheme() == "https", "{issuer:?}");
    assert_eq!(
        vigil::config::Issuer::parse(issuer).map(|i| i.as_str().to_owned()),
        Ok(issuer.to_owned())
    );
    let rendered = render_settings(&s);
    let again = vigil::config::Settings::from_toml(&rendered, "rendered.toml")
        .unwrap_or_else(|e| panic!("{rendered}\n re-loads: {e}"));
    assert_eq!(format!("{again:?}"), format!("{s:?}"), "{rendered}");
}

// ---------------------------------------------------------------------------------------------
// SCIM

/// A filter attribute and what it holds: `None` for one vigil cannot filter on.
const SCIM_ATTRS: &[(&str, Option<char>)] = &[
    ("userName", Some('t')),
    ("USERNAME", Some('t')),
    (
        "urn:ietf:params:scim:schemas:core:2.0:User:userName",
        Some('t'),
    ),
    ("externalId", Some('t')),
    ("emails.value", Some('t')),
    ("emails", Some('t')),
    ("displayName", Some('t')),
    ("name.givenName", Some('t')),
    ("name.familyName", Some('t')),
    ("id", Some('t')),
    ("active", Some('b')),
    ("meta.created", Some('d')),
    ("meta.lastModified", Some('d')),
    ("title", None),
    ("name.formatted", None),
    ("emails.type", None),
    ("urn:example:Other:userName", None),
];
const SCIM_OPS: &[&str] = &[
    "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "Co",
];

/// One `attr op value` (or `attr pr`) term and whether vigil must accept it.
fn scim_term(input: &mut Input<'_>) -> (String, bool) {
    let (attr, kind) = input.pick(SCIM_ATTRS);
    if input.below(5) == 0 {
        return (format!("{attr} pr"), kind.is_some());
    }
    let op = input.pick(SCIM_OPS).to_ascii_lowercase();
    let (value, ok) = match input.below(5) {
        0 => (
            "true".to_owned(),
            kind == Some('b') && matches!(op.as_str(), "eq" | "ne"),
        ),
        1 => (
            "false".to_owned(),
            kind == Some('b') && matches!(op.as_str(), "eq" | "ne"),
        ),
        2 => (
            "\"2026-11-28T10:00:00Z\"".to_owned(),
            kind == Some('t') || (kind == Some('d') && !matches!(op.as_str(), "co" | "sw" | "ew")),
        ),
        3 => ("42".to_owned(), false),
        _ => {
            let s: String = input
                .string(12)
                .chars()
                .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
                .collect();
            (format!("\"{s}\""), kind == Some('t'))
        }
    };
    let op = if input.bool() {
        op.to_ascii_uppercase()
    } else {
        op
    };
    (format!("{attr} {op} {value}"), ok)
}

/// A filter of terms joined by `and`/`or`, some negated or grouped; valid iff every term is.
fn scim_filter_text(input: &mut Input<'_>, depth: usize) -> (String, bool, usize) {
    let (mut text, mut ok) = scim_term(input);
    let mut terms = 1;
    if depth < 3 && input.below(3) == 0 {
        let (inner, inner_ok, n) = scim_filter_text(input, depth + 1);
        text = if input.bool() {
            format!("not ({inner})")
        } else {
            format!("({inner})")
        };
        ok = inner_ok;
        terms = n;
    }
    // Joins nest too (each operand in parentheses): bounded like `not`, so a generated filter
    // stays far inside the parser's 64 levels — deeper ones are refused by design (found by
    // the campaign: an unbounded generator built a 65-deep valid filter).
    let joins = if depth < 8 { input.below(3) } else { 0 };
    for _ in 0..joins {
        let (t, t_ok, n) = scim_filter_text(input, depth + 1);
        let join = input.pick(&["and", "or", "AND", "Or"]);
        text = format!("{text} {join} ({t})");
        ok &= t_ok;
        terms += n;
    }
    (text, ok, terms)
}

fn scim_leaves<F>(c: &vigil::store::directory::Criterion<F>) -> usize {
    use vigil::store::directory::Criterion;
    match c {
        Criterion::All => 0,
        Criterion::Test(..) => 1,
        Criterion::Not(inner) => scim_leaves(inner),
        Criterion::And(items) | Criterion::Or(items) => items.iter().map(scim_leaves).sum(),
    }
}

/// Target `scim_filter`: `scim::filter::{users, groups}` (the `filter` of `/Users`, `/Groups`).
/// - any text gives criteria or a 400 `invalidFilter` — never a panic, never another error;
/// - a filter built from known attributes with operands of their type is accepted, with one
///   test per term; one term vigil cannot answer (an unknown attribute, a date that is not a
///   date, `gt true`, a number) makes the whole filter `invalidFilter`.
pub fn scim_filter(data: &[u8]) {
    let mut input = Input::new(data);
    if input.byte().is_multiple_of(2) {
        let text = String::from_utf8_lossy(input.rest()).into_owned();
        for r in [
            vigil::scim::filter::users(Some(&text)).map(|c| scim_leaves(&c)),
            vigil::scim::filter::groups(Some(&text)).map(|c| scim_leaves(&c)),
        ] {
            if let Err(e) = r {
                assert_eq!(
                    (e.status, e.scim_type),
                    (400, Some("invalidFilter")),
                    "{text:?}"
                );
            }
        }
        return;
    }
    let (text, ok, terms) = scim_filter_text(&mut input, 0);
    // Longer than vigil's documented limit: refused whatever it says, and the error names the
    // limit (found by the campaign: three joins a level, eight levels deep, make 6,561 terms).
    let too_long = text.len() > vigil::scim::filter::MAX_LEN;
    match vigil::scim::filter::users(Some(&text)) {
        Ok(c) => {
            assert!(!too_long, "accepted a filter of {} characters", text.len());
            assert!(
                ok,
                "accepted a filter with a term vigil cannot answer: {text:?}"
            );
            assert_eq!(scim_leaves(&c), terms, "{text:?}");
        }
        Err(e) if too_long => {
            assert!(e.detail.contains("at most"), "{}", e.detail);
            assert_eq!((e.status, e.scim_type), (400, Some("invalidFilter")));
        }
        Err(e) => {
            assert!(!ok, "refused a valid filter: {text:?}: {}", e.detail);
            assert_eq!(
                (e.status, e.scim_type),
                (400, Some("invalidFilter")),
                "{text:?}"
            );
        }
    }
}

const SCIM_PATCH_ERRORS: &[&str] = &["invalidSyntax", "invalidValue", "invalidPath", "noTarget"];

/// Target `scim_patch`: `scim::patch::apply` with `scim::resource::{patched_user_input,
/// group_input}` (a PATCH on `/Users/{id}` and `/Groups/{id}`).
/// - any body gives a patched document or a 400 with one of PATCH's `scimType`s — never a
///   panic; the patched document reads back as a resource or a 400;
/// - on a group, member operations do what a set would: `add` unions, `remove` by
///   `members[value eq "…"]` or by a listed value takes exactly those out, `replace` sets.
pub fn scim_patch(data: &[u8]) {
    use serde_json::{json, Value};
    let mut input = Input::new(data);
    let check_err = |e: &vigil::scim::ScimError, what: &str| {
        assert_eq!(e.status, 400, "{what}: {e:?}");
        assert!(
            SCIM_PATCH_ERRORS.contains(&e.scim_type.unwrap_or("")),
            "{what}: {e:?}"
        );
    };
    if input.byte().is_multiple_of(2) {
        let Ok(body) = serde_json::from_slice::<Value>(input.rest()) else {
            return;
        };
        let mut doc = json!({"schemas": [vigil::scim::SCHEMA_USER], "id": "u1", "userName": "ann",
            "name": {"givenName": "Ann"}, "emails": [{"value": "ann@example.com"}], "active": true});
        match vigil::scim::patch::apply(&mut doc, &body, vigil::scim::SCHEMA_USER) {
            Ok(()) => {
                assert!(doc.is_object());
                if let Err(e) = vigil::scim::resource::patched_user_input(&doc) {
                    assert_eq!(e.status, 400, "{e:?}");
                }
            }
            Err(e) => check_err(&e, &body.to_string()),
        }
        return;
    }
    // Structured: member operations on a group, against a set.
    let ids = ["u1", "u2", "u3", "u4", "u5"];
    let mut model: Vec<&str> = ids.iter().copied().filter(|_| input.bool()).collect();
    let mut doc = json!({"schemas": [vigil::scim::SCHEMA_GROUP], "id": "g1", "displayName": "G",
        "members": model.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()});
    let mut ops = Vec::new();
    let mut expected = Some(model.clone());
    for _ in 0..1 + input.below(4) {
        let id = input.pick(&ids);
        let several: Vec<&str> = ids.iter().copied().filter(|_| input.bool()).collect();
        let op = match input.below(4) {
            0 => {
                for s in &several {
                    if !model.contains(s) {
                        model.push(s);
                    }
                }
                json!({"op": input.pick(&["add", "Add"]), "path": "members",
                       "value": several.iter().map(|s| json!({"value": s})).collect::<Vec<_>>()})
            }
            1 => {
                if !model.contains(&id) {
                    expected = None; // noTarget
                }
                model.retain(|m| *m != id);
                json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")})
            }
            2 => {
                model.retain(|m| !several.contains(m));
                json!({"op": "remove", "path": "members",
                       "value": several.iter().map(|s| json!({"value": s})).collect::<Vec<_>>()})
            }
            _ => {
                model = several.clone();
                json!({"op": "replace", "path": "members",
                       "value": several.iter().map(|s| json!({"value": s})).collect::<Vec<_>>()})
            }
        };
        ops.push(op);
        if let Some(e) = expected.as_mut() {
            *e = model.clone();
        }
    }
    let body = json!({"schemas": [vigil::scim::SCHEMA_PATCH], "Operations": ops});
    match (
        vigil::scim::patch::apply(&mut doc, &body, vigil::scim::SCHEMA_GROUP),
        expected,
    ) {
        (Ok(()), Some(mut want)) => {
            let g = vigil::scim::resource::group_input(&doc)
                .unwrap_or_else(|e| panic!("{body}: {e:?}"));
            let mut got: Vec<&str> = g.members.iter().map(String::as_str).collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{body}");
        }
        (Err(e), None) => assert_eq!(e.scim_type, Some("noTarget"), "{body}"),
        (Ok(()), None) => panic!("a remove of a member not there applied: {body}"),
        (Err(e), Some(_)) => panic!("refused {body}: {e:?}"),
    }
}
