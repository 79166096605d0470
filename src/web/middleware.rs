//! Cross-cutting request handling: security headers, the device cookie, one log line per request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{Error, HttpMessage};

use super::DEVICE_COOKIE;
use crate::flow::random_token;

/// The first-party device id of this browser (set on first visit, kept for two years).
#[derive(Debug, Clone)]
pub struct DeviceId(pub String);

/// Headers every response carries unless a handler set its own.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let mut h = DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((HeaderName::from_static("cross-origin-opener-policy"), "same-origin"))
        .add((HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()"))
        .add((header::CACHE_CONTROL, "no-store"));
    if https {
        h = h.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ));
    }
    h
}

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
pub async fn device_cookie(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
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
    Ok(res)
}

/// One structured line per request. The path only: query strings can carry codes and tokens.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let res = next.call(req).await?;
    tracing::info!(
        http.method = %method,
        http.path = %path,
        http.status = res.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}
