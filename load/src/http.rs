//! HTTP as a browser and as a relying party: one shared connection pool per target, and a
//! cookie jar per virtual user (reqwest's `Jar`, driven by hand so that thousands of users share
//! the pool). Every request is timed under a step name; failures become an [`OpError`] whose
//! kind is a short, bounded string (it is a key of the error table).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use url::Url;

/// Why one scenario iteration failed; `kind` keys the error table (no per-request values).
#[derive(Debug, Clone)]
pub struct OpError {
    pub kind: String,
}

impl OpError {
    pub fn at(step: &str, what: impl std::fmt::Display) -> Self {
        OpError {
            kind: format!("{step}: {what}"),
        }
    }
}

/// The requests of one iteration: (step, latency).
#[derive(Default, Debug)]
pub struct Steps(pub Vec<(&'static str, Duration)>);

/// One answer, read whole (so the connection goes back to the pool).
pub struct Resp {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// A server under test: its base URL, its discovered endpoints (moved onto the base, so a node
/// whose issuer names another port is still the one asked), and its connection pool.
pub struct Target {
    pub base: Url,
    pub issuer: String,
    pub http: reqwest::Client,
    pub discovery: Url,
    pub authorization: Url,
    pub token: Url,
    pub jwks: Url,
    pub userinfo: Option<Url>,
    pub end_session: Option<Url>,
}

fn pool(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .user_agent(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/126.0 Safari/537.36 vigil-load",
        )
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

impl Target {
    /// Read the target's discovery document, retrying for `wait` while it starts up.
    pub async fn discover(base: &str, timeout: Duration, wait: Duration) -> Result<Target, String> {
        let mut base = Url::parse(base).map_err(|e| format!("--target {base}: {e}"))?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = pool(timeout)?;
        let discovery = base
            .join(".well-known/openid-configuration")
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + wait;
        let doc: serde_json::Value = loop {
            match http.get(discovery.clone()).send().await {
                Ok(r) if r.status().is_success() => {
                    break r
                        .json()
                        .await
                        .map_err(|e| format!("{discovery}: not JSON ({e})"))?
                }
                Ok(r) if Instant::now() >= deadline => {
                    return Err(format!("{discovery}: status {}", r.status()))
                }
                Err(e) if Instant::now() >= deadline => return Err(format!("{discovery}: {e}")),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let issuer = doc["issuer"]
            .as_str()
            .ok_or_else(|| format!("{discovery}: no issuer"))?
            .trim_end_matches('/')
            .to_owned();
        let mut t = Target {
            base: base.clone(),
            issuer,
            http,
            discovery: discovery.clone(),
            authorization: discovery.clone(),
            token: discovery.clone(),
            jwks: discovery.clone(),
            userinfo: None,
            end_session: None,
        };
        let endpoint = |name: &str| -> Result<Option<Url>, String> {
            match doc[name].as_str() {
                Some(u) => t.on_target(u).map(Some),
                None => Ok(None),
            }
        };
        let need = |name: &str, u: Option<Url>| u.ok_or_else(|| format!("{discovery}: no {name}"));
        let authorization = need(
            "authorization_endpoint",
            endpoint("authorization_endpoint")?,
        )?;
        let token = need("token_endpoint", endpoint("token_endpoint")?)?;
        let jwks = need("jwks_uri", endpoint("jwks_uri")?)?;
        let userinfo = endpoint("userinfo_endpoint")?;
        let end_session = endpoint("end_session_endpoint")?;
        t.authorization = authorization;
        t.token = token;
        t.jwks = jwks;
        t.userinfo = userinfo;
        t.end_session = end_session;
        Ok(t)
    }

    /// `u` (relative, or absolute under the issuer) as a URL on this target.
    pub fn on_target(&self, u: &str) -> Result<Url, String> {
        let rest = match u.strip_prefix(&self.issuer) {
            Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => rest,
            _ if u.starts_with("http://") || u.starts_with("https://") => {
                return Url::parse(u).map_err(|e| format!("{u}: {e}"))
            }
            _ => u,
        };
        let rest = rest.trim_start_matches('/');
        self.base.join(rest).map_err(|e| format!("{u}: {e}"))
    }
}

/// A virtual user's browser on one target: its cookie jar and, through a trusted proxy, the
/// client address it claims (`X-Forwarded-For`).
pub struct Browser<'a> {
    pub target: &'a Target,
    pub jar: Arc<Jar>,
    pub xff: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(target: &'a Target, jar: Arc<Jar>, xff: Option<String>) -> Self {
        Browser { target, jar, xff }
    }

    pub async fn get(
        &self,
        url: &Url,
        step: &'static str,
        steps: &mut Steps,
    ) -> Result<Resp, OpError> {
        self.send(self.target.http.get(url.clone()), url, step, steps)
            .await
    }

    pub async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        step: &'static str,
        steps: &mut Steps,
    ) -> Result<Resp, OpError> {
        let body = form_encode(form);
        let req = self
            .target
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        self.send(req, url, step, steps).await
    }

    async fn send(
        &self,
        mut req: reqwest::RequestBuilder,
        url: &Url,
        step: &'static str,
        steps: &mut Steps,
    ) -> Result<Resp, OpError> {
        if let Some(c) = self.jar.cookies(url) {
            req = req.header(COOKIE, c);
        }
        if let Some(x) = &self.xff {
            req = req.header("x-forwarded-for", x.as_str());
        }
        let started = Instant::now();
        let result = req.send().await;
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                steps.0.push((step, started.elapsed()));
                return Err(OpError::at(step, transport(&e)));
            }
        };
        let mut set = r.headers().get_all(SET_COOKIE).iter();
        self.jar.set_cookies(&mut set, url);
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = r.text().await;
        steps.0.push((step, started.elapsed()));
        let body = body.map_err(|e| OpError::at(step, transport(&e)))?;
        Ok(Resp {
            status,
            location,
            body,
        })
    }
}

/// An RP's back-channel request (token endpoint, userinfo): no cookies.
pub async fn rp_post(
    target: &Target,
    url: &Url,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
    step: &'static str,
    steps: &mut Steps,
) -> Result<Resp, OpError> {
    let mut req = target
        .http
        .post(url.clone())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_encode(form));
    if let Some((id, secret)) = basic {
        req = req.header(AUTHORIZATION, basic_auth(id, secret));
    }
    plain(req, step, steps).await
}

pub async fn rp_get(
    target: &Target,
    url: &Url,
    bearer: Option<&str>,
    step: &'static str,
    steps: &mut Steps,
) -> Result<Resp, OpError> {
    let mut req = target.http.get(url.clone());
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    plain(req, step, steps).await
}

async fn plain(
    req: reqwest::RequestBuilder,
    step: &'static str,
    steps: &mut Steps,
) -> Result<Resp, OpError> {
    let started = Instant::now();
    let r = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            steps.0.push((step, started.elapsed()));
            return Err(OpError::at(step, transport(&e)));
        }
    };
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = r.text().await;
    steps.0.push((step, started.elapsed()));
    Ok(Resp {
        status,
        location,
        body: body.map_err(|e| OpError::at(step, transport(&e)))?,
    })
}

/// RFC 6749 §2.3.1: id and secret form-urlencoded, then base64 (vigil and oidc-provider both
/// decode it; the seeded values need no escaping anyway).
fn basic_auth(id: &str, secret: &str) -> HeaderValue {
    use base64::Engine as _;
    let pair = format!(
        "{}:{}",
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
    );
    let v = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Basic"))
}

fn form_encode(form: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A transport failure as a short kind.
fn transport(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection refused or reset"
    } else if e.is_body() || e.is_decode() {
        "body read failed"
    } else {
        "transport error"
    }
}

/// The value of the hidden input `name` in a page vigil rendered (tera escapes `&<>"'/`), or
/// `None`. A string search, not an HTML parser: the load tool shares the CPU with the server.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = html.find(&needle)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let len = tag[v..].find('"')?;
    Some(unescape(&tag[v..v + len]))
}

/// Undo the HTML escaping tera applies to attribute values.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The query parameters of `location` (absolute, or relative to any base).
pub fn query_of(location: &str) -> Vec<(String, String)> {
    let parsed = Url::parse(location).or_else(|_| Url::parse("http://x/")?.join(location));
    match parsed {
        Ok(u) => u
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub fn param<'q>(q: &'q [(String, String)], name: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_inputs_from_vigil_pages() {
        let page = r#"<form method="post" action="/login" class="stack">
    <input type="hidden" name="csrf_token" value="abc&#x2F;def+=">
    <input type="hidden" name="device_hints" id="device-hints" value="">
    <input type="hidden" name="tx" value="t1">"#;
        assert_eq!(
            hidden_input(page, "csrf_token").as_deref(),
            Some("abc/def+=")
        );
        assert_eq!(hidden_input(page, "tx").as_deref(), Some("t1"));
        assert_eq!(hidden_input(page, "device_hints").as_deref(), Some(""));
        assert_eq!(hidden_input(page, "nope"), None);
    }

    #[test]
    fn query_of_relative_and_absolute() {
        let q = query_of("/login?tx=a%2Fb&x=1");
        assert_eq!(param(&q, "tx"), Some("a/b"));
        let q = query_of("https://load.invalid/callback?code=c&state=s");
        assert_eq!(param(&q, "code"), Some("c"));
        assert_eq!(param(&q, "state"), Some("s"));
    }
}
