//! Cross-cutting request handling: security headers, the device cookie, one log line per request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};

use super::DEVICE_COOKIE;
use crate::flow::random_token;

/// The first-party device id of this browser (set on first visit, kept for two years).
#[derive(Debug, Clone)]
pub struct DeviceId(pub String);

/// The endpoints only programs call (the token endpoint family, discovery, health): no browser
/// renders them, so they get no device cookie and no page headers, only `no-store` and
/// `nosniff` — per request that is work and bytes a busy API would pay for nothing.
pub fn is_api(path: &str) -> bool {
    path.starts_with("/scim/")
        || matches!(
            path,
            "/token"
                | "/introspect"
                | "/revoke"
                | "/userinfo"
                | "/jwks"
                | "/.well-known/openid-configuration"
                | "/healthz"
                | "/readyz"
                | "/metrics"
        )
}

/// The address of the operator's listener (`VIGIL_METRICS_BIND`), when there is one.
#[derive(Debug, Clone, Copy)]
pub struct OperatorListener(pub Option<std::net::SocketAddr>);

/// Whether `req` came in on the operator's listener.
pub fn on_operator_listener(req: &actix_web::HttpRequest) -> bool {
    req.app_data::<actix_web::web::Data<OperatorListener>>()
        .is_some_and(|o| o.0 == Some(req.app_config().local_addr()))
}

/// The operator's listener serves the operator's endpoints and nothing else: no sign-in page,
/// no token endpoint on a port meant for an internal network.
pub async fn operator_only(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, Error> {
    if on_operator_listener(req.request())
        && !matches!(req.path(), "/metrics" | "/healthz" | "/readyz")
    {
        let res = actix_web::HttpResponse::NotFound().finish();
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The page headers of [`security_headers`] on browser pages; on API endpoints ([`is_api`])
/// only `Cache-Control: no-store` (RFC 6749 §5.1) and `X-Content-Type-Options: nosniff`.
pub async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let api = is_api(req.path());
    let https = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .is_some_and(|s| s.secure_cookies());
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    let mut add = |name: HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    add(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    add(header::CACHE_CONTROL, "no-store");
    if !api {
        for (name, value) in PAGE_HEADERS {
            add(name.clone(), value);
        }
        if https {
            add(
                header::STRICT_TRANSPORT_SECURITY,
                "max-age=31536000; includeSubDomains",
            );
        }
    }
    Ok(res)
}

const PAGE_HEADERS: [(HeaderName, &str); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    ),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    ),
];

/// The device id a `vigil_device` cookie value carries, if it has the shape vigil issues
/// (`random_token`: 43 characters of base64url); anything else gets a fresh id.
pub fn device_id(cookie_value: &str) -> Option<&str> {
    let ok = cookie_value.len() == 43
        && cookie_value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(cookie_value)
}

/// Give every browser a long-lived random device id; the risk engine uses it to recognise
/// devices. The id is put in the request's extensions so the first request can use it too.
pub async fn device_cookie<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if is_api(req.path()) {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    }
    let existing = req
        .cookie(DEVICE_COOKIE)
        .and_then(|c| device_id(c.value()).map(str::to_owned));
    let secure = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .is_some_and(|s| s.secure_cookies());
    let (id, fresh) = match existing {
        Some(v) => (v, false),
        None => (random_token(), true),
    };
    req.extensions_mut().insert(DeviceId(id.clone()));
    let mut res = next.call(req).await?;
    if fresh {
        let cookie = Cookie::build(DEVICE_COOKIE, id)
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::days(730))
            .finish();
        if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(res.map_into_boxed_body())
}

/// The request method as a counter label: the methods vigil routes, `other` for the rest.
fn known_method(m: &str) -> &'static str {
    ["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"]
        .into_iter()
        .find(|k| *k == m)
        .unwrap_or("other")
}

/// One structured line per request (and the request counters). The path only: query strings can carry codes and tokens.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let res = next.call(req).await?;
    let took = started.elapsed();
    // The route's pattern, not the path: a label per path would let anyone add series.
    let route = res.request().match_pattern();
    crate::telemetry::observe_request(
        route.as_deref().unwrap_or("unmatched"),
        known_method(&method),
        res.status().as_u16(),
        took,
    );
    tracing::info!(
        http.method = %method,
        http.path = %path,
        http.status = res.status().as_u16(),
        duration_ms = took.as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}
