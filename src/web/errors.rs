//! `WebError`, the only `ResponseError`: a readable page for people; internals never in a body,
//! each failure logged once, here.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use tera::Context;

use super::i18n::{arg, flow_text, t, t_with};
use super::templates::page;
use crate::flow::FlowError;
use crate::store::StoreError;

impl From<crate::oidc::OAuthError> for WebError {
    fn from(e: crate::oidc::OAuthError) -> Self {
        if e.is_unavailable() {
            WebError::Unavailable(e.error_description)
        } else {
            WebError::Internal(e.to_string())
        }
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        WebError::from(FlowError::Store(e))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the form's security token is missing or expired")]
    Csrf,
    #[error("forbidden")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("throttled")]
    Throttled { retry_after_secs: i64 },
    /// Overloaded (the password-hash queue is full): 503, come back in a moment.
    #[error("busy")]
    Busy,
    /// The database cannot be reached (or written): 503, come back in a moment (the node
    /// recovers by itself once it can).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<FlowError> for WebError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Invalid(m) | FlowError::Conflict(m) => WebError::BadRequest(m),
            FlowError::NotFound(_) => WebError::NotFound,
            FlowError::Auth(crate::auth::AuthError::Throttled { retry_after_secs }) => {
                WebError::Throttled { retry_after_secs }
            }
            FlowError::Auth(crate::auth::AuthError::Busy) => WebError::Busy,
            FlowError::Store(StoreError::Unavailable(m)) => WebError::Unavailable(m),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Csrf | WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::Busy | WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // In the request's language (web/i18n.rs); a message from the flow is matched by its
        // English, and shown as it is when the catalogues do not know it.
        let (title, message) = match self {
            WebError::BadRequest(m) => (t("error-bad-request"), flow_text(m)),
            WebError::Csrf => (t("error-csrf-title"), t("error-csrf")),
            WebError::Forbidden(m) => (t("error-forbidden"), flow_text(m)),
            WebError::NotFound => (t("error-not-found-title"), t("error-not-found")),
            WebError::Throttled { retry_after_secs } => (
                t("error-throttled-title"),
                t_with(
                    "error-throttled",
                    &[("wait", arg(human_wait(*retry_after_secs)))],
                ),
            ),
            WebError::Busy => {
                tracing::warn!("password-hash queue full: answered 503");
                (t("error-busy-title"), t("error-busy"))
            }
            WebError::Unavailable(detail) => {
                // Debug: the pool logs once when the database goes and once when it is back.
                tracing::debug!(error = %detail, "database unavailable: answered 503");
                (t("error-unavailable-title"), t("error-unavailable"))
            }
            WebError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                (t("error-internal-title"), t("error-internal"))
            }
        };
        error_page(self.status_code(), &title, &message, self.retry_after())
    }
}

/// When to come back after a 503 Busy: the queue drains in well under this.
pub const BUSY_RETRY_SECS: i64 = 2;

impl WebError {
    fn retry_after(&self) -> Option<i64> {
        match self {
            WebError::Throttled { retry_after_secs } => Some(*retry_after_secs),
            WebError::Busy | WebError::Unavailable(_) => Some(BUSY_RETRY_SECS),
            _ => None,
        }
    }
}

fn human_wait(secs: i64) -> String {
    if secs < 90 {
        t_with("wait-seconds", &[("n", secs.into())])
    } else {
        t_with("wait-minutes", &[("n", ((secs + 59) / 60).into())])
    }
}

/// The shared error page for every status.
pub fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    retry_after: Option<i64>,
) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("status", &status.as_u16());
    ctx.insert("title", title);
    ctx.insert("message", message);
    let mut resp = page(status, "error.html", &ctx);
    if let Some(secs) = retry_after {
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}
