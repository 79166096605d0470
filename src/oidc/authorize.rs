//! The authorization endpoint's request: checked in the order the specs require, so that an
//! untrustworthy client or redirect URI is never redirected to (RFC 6749 §4.1.2.1), and every
//! later problem goes back to the verified redirect URI as an `error=`.

use serde::{Deserialize, Serialize};

use super::claims::scope_releasing;
use super::{split_scope, OAuthError, ACRS, SCOPES};
use crate::store::clients::{self, Client};
use crate::store::Db;

/// Upper bound for any single parameter: generous for real use, small enough to refuse abuse.
const MAX_PARAM: usize = 2048;

/// `/authorize` parameters as received (query string or form body). Serialises back to the
/// same form (absent parameters are left out), so a parsed request re-parses equal.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuthorizeParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui_locales: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_uri: Option<String>,
    pub claims: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    FormPost,
}

impl ResponseMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::FormPost => "form_post",
        }
    }
    pub fn parse(s: &str) -> Self {
        if s == "form_post" {
            ResponseMode::FormPost
        } else {
            ResponseMode::Query
        }
    }
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub response_mode: ResponseMode,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub acr_values: Vec<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
}

/// Where the browser goes with the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

impl Redirect {
    pub fn new(
        redirect_uri: &str,
        mode: ResponseMode,
        state: Option<&str>,
        issuer: &str,
        mut params: Vec<(String, String)>,
    ) -> Self {
        if let Some(s) = state {
            params.push(("state".into(), s.to_owned()));
        }
        params.push(("iss".into(), issuer.to_owned())); // RFC 9207
        Redirect {
            redirect_uri: redirect_uri.to_owned(),
            mode,
            params,
        }
    }

    pub fn error(req: &ValidRequest, issuer: &str, e: &OAuthError) -> Self {
        Redirect::new(
            &req.redirect_uri,
            req.response_mode,
            req.state.as_deref(),
            issuer,
            vec![
                ("error".into(), e.error.into()),
                ("error_description".into(), e.error_description.clone()),
            ],
        )
    }

    /// The full URL for `query` mode (existing query parameters of the redirect URI are kept).
    pub fn location(&self) -> String {
        match url::Url::parse(&self.redirect_uri) {
            Ok(mut u) => {
                {
                    let mut q = u.query_pairs_mut();
                    for (k, v) in &self.params {
                        q.append_pair(k, v);
                    }
                }
                u.to_string()
            }
            Err(_) => self.redirect_uri.clone(),
        }
    }
}

/// A refusal: either an error page (never redirect: the client or redirect URI is not trusted)
/// or an error sent back to the verified redirect URI.
#[derive(Debug)]
pub enum Refusal {
    Page(String),
    Redirect(Redirect),
    /// The client could not be loaded: the database is unreachable (a 503 page).
    Unavailable(String),
}

/// The first parameter named more than once in a query string or form body, if any (its name,
/// cut to 64 characters). RFC 6749 §3.1: a parameter must not be sent twice.
pub fn repeated(raw: &[u8]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    url::form_urlencoded::parse(raw)
        .map(|(k, _)| k)
        .find(|k| !seen.insert(k.clone()))
        .map(|k| k.chars().take(64).collect())
}

/// Read `/authorize` parameters from a query string or form body. A repeated known parameter
/// is an error (serde refuses a duplicate field); unknown parameters are ignored.
pub fn parse_params(raw: &[u8]) -> Result<AuthorizeParams, String> {
    serde_urlencoded::from_bytes(raw).map_err(|e| e.to_string())
}

/// Read `/authorize` parameters keeping only the first value of a repeated one: used to find
/// where to send the `invalid_request` about the repetition.
pub fn parse_first_of_each(raw: &[u8]) -> Result<AuthorizeParams, String> {
    let mut seen = std::collections::HashSet::new();
    let first: Vec<(String, String)> = url::form_urlencoded::parse(raw)
        .filter(|(k, _)| seen.insert(k.clone()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let query = serde_urlencoded::to_string(&first).map_err(|e| e.to_string())?;
    serde_urlencoded::from_str(&query).map_err(|e| e.to_string())
}

/// The registered redirect URI `requested` names: exact string comparison, no normalisation,
/// no prefix matching (OAuth 2.0 Security BCP §4.1.3).
pub fn match_redirect_uri<'a>(registered: &'a [String], requested: &str) -> Option<&'a str> {
    registered
        .iter()
        .find(|reg| reg.as_str() == requested)
        .map(String::as_str)
}

fn too_long(v: &Option<String>) -> bool {
    v.as_ref().is_some_and(|s| s.len() > MAX_PARAM)
}

/// Validate `p`, loading the client from the database.
pub async fn validate(db: &Db, issuer: &str, p: AuthorizeParams) -> Result<ValidRequest, Refusal> {
    // 1. Client and redirect URI: failures here are pages, never redirects.
    let client_id = p
        .client_id
        .clone()
        .filter(|c| !c.is_empty() && c.len() <= 128)
        .ok_or_else(|| {
            Refusal::Page("The request does not name a known application (client_id).".into())
        })?;
    let lookup = client_id.clone();
    let client = db
        .run(move |c| clients::find(c, &lookup))
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Unavailable(m) => Refusal::Unavailable(m),
            _ => Refusal::Page("The sign-in service is temporarily unavailable.".into()),
        })?
        .ok_or_else(|| {
            Refusal::Page("The application that sent you here is not registered with vigil.".into())
        })?;
    validate_for_client(client, issuer, p)
}

/// Validate `p` for `client` (the client its `client_id` names, already loaded): everything
/// [`validate`] checks after the database lookup. Pure.
pub fn validate_for_client(
    client: Client,
    issuer: &str,
    p: AuthorizeParams,
) -> Result<ValidRequest, Refusal> {
    if p.client_id.as_deref() != Some(client.id.as_str()) {
        return Err(Refusal::Page(
            "The request does not name a known application (client_id).".into(),
        ));
    }
    let redirect_uri = match p
        .redirect_uri
        .as_deref()
        .map(|r| match_redirect_uri(&client.redirect_uris, r))
    {
        Some(Some(r)) => r.to_owned(),
        Some(None) => {
            return Err(Refusal::Page(
                "The application asked to send you to an address it has not registered. For your safety, vigil stopped here.".into(),
            ))
        }
        None => return Err(Refusal::Page("The request has no redirect_uri.".into())),
    };

    // From here on, errors go back to the client.
    let response_mode = match p.response_mode.as_deref() {
        None | Some("query") => ResponseMode::Query,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => ResponseMode::Query,
    };
    let state = p.state.clone();
    let fail = |e: OAuthError| {
        Refusal::Redirect(Redirect::new(
            &redirect_uri,
            response_mode,
            state.as_deref().filter(|s| s.len() <= MAX_PARAM),
            issuer,
            vec![
                ("error".into(), e.error.into()),
                ("error_description".into(), e.error_description),
            ],
        ))
    };
    if [
        &p.state,
        &p.nonce,
        &p.scope,
        &p.prompt,
        &p.login_hint,
        &p.id_token_hint,
        &p.acr_values,
        &p.ui_locales,
        &p.code_challenge,
        &p.claims,
    ]
    .into_iter()
    .any(too_long)
    {
        return Err(fail(OAuthError::invalid_request("a parameter is too long")));
    }
    if p.response_mode
        .as_deref()
        .is_some_and(|m| m != "query" && m != "form_post")
    {
        return Err(fail(OAuthError::invalid_request(
            "response_mode must be query or form_post",
        )));
    }
    if p.request.is_some() {
        return Err(fail(OAuthError::request_not_supported(
            "request objects are not supported",
        )));
    }
    if p.request_uri.is_some() {
        return Err(fail(OAuthError::request_uri_not_supported(
            "request_uri is not supported",
        )));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is required",
            )))
        }
        Some(_) => {
            return Err(fail(OAuthError::unsupported_response_type(
                "only response_type=code is supported",
            )))
        }
    }
    if !client.allows_grant("authorization_code") {
        return Err(fail(OAuthError::unauthorized_client(
            "this client may not use the authorization code flow",
        )));
    }
    let requested = split_scope(p.scope.as_deref().unwrap_or(""));
    if !requested.iter().any(|s| s == "openid") {
        return Err(fail(OAuthError::invalid_scope("scope must include openid")));
    }
    let mut scopes: Vec<String> = requested
        .into_iter()
        .filter(|s| SCOPES.contains(&s.as_str()))
        .collect();
    if !client.allows_grant("refresh_token") {
        scopes.retain(|s| s != "offline_access");
    }
    // OIDC Core §5.5, the `claims` parameter. vigil releases claims by scope, so a request for
    // UserInfo claims it holds is honoured by granting the scope that releases them (the
    // granted `scope` says so, the consent page shows it); anything else is ignored (§5.5.1: a
    // claim not returned is not an error). Malformed JSON is invalid_request.
    if let Some(raw) = &p.claims {
        let bad = || fail(OAuthError::invalid_request("claims must be a JSON object"));
        let parsed: serde_json::Value = serde_json::from_str(raw).map_err(|_| bad())?;
        let members = parsed.as_object().ok_or_else(bad)?;
        for (member, asked) in members {
            if member != "userinfo" && member != "id_token" {
                continue;
            }
            let asked = asked.as_object().ok_or_else(bad)?;
            if member != "userinfo" {
                continue;
            }
            for scope in asked.keys().filter_map(|c| scope_releasing(c)) {
                if !scopes.iter().any(|s| s == scope) {
                    scopes.push(scope.to_owned());
                }
            }
        }
    }

    // PKCE (RFC 7636): S256 only; required for public clients and, by default, for all.
    let method = p.code_challenge_method.as_deref();
    if method.is_some_and(|m| m != "S256") {
        return Err(fail(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )));
    }
    let code_challenge = match &p.code_challenge {
        Some(c) => {
            let well_formed = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return Err(fail(OAuthError::invalid_request(
                    "code_challenge must be a base64url SHA-256 (43 characters)",
                )));
            }
            if method.is_none() {
                return Err(fail(OAuthError::invalid_request(
                    "code_challenge_method=S256 is required with code_challenge",
                )));
            }
            Some(c.clone())
        }
        None if client.public || client.require_pkce => {
            return Err(fail(OAuthError::invalid_request(
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            )))
        }
        None => None,
    };

    let prompt = split_scope(p.prompt.as_deref().unwrap_or(""));
    if let Some(bad) = prompt
        .iter()
        .find(|v| !["none", "login", "consent", "select_account"].contains(&v.as_str()))
    {
        return Err(fail(OAuthError::invalid_request(format!(
            "unknown prompt value `{bad}`"
        ))));
    }
    if prompt.iter().any(|v| v == "none") && prompt.len() > 1 {
        return Err(fail(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        )));
    }
    let max_age = match &p.max_age {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return Err(fail(OAuthError::invalid_request(
                    "max_age must be a non-negative integer",
                )))
            }
        },
    };
    let acr_values: Vec<String> = split_scope(p.acr_values.as_deref().unwrap_or(""))
        .into_iter()
        .filter(|a| ACRS.contains(&a.as_str()))
        .collect();

    Ok(ValidRequest {
        client,
        redirect_uri,
        scopes,
        state: p.state,
        nonce: p.nonce,
        code_challenge,
        response_mode,
        prompt,
        max_age,
        acr_values,
        login_hint: p.login_hint,
        id_token_hint: p.id_token_hint,
    })
}
