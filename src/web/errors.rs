//! `WebError`, the only `ResponseError`: a readable page for people; internals never in a body,
//! each failure logged once, here.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use tera::Context;

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
        let (title, message) = match self {
            WebError::BadRequest(m) => ("Bad request", m.clone()),
            WebError::Csrf => (
                "Please try again",
                "This form expired or did not come from this site. Go back, reload the page and submit it again.".to_owned(),
            ),
            WebError::Forbidden(m) => ("Not allowed", m.clone()),
            WebError::NotFound => ("Page not found", "There is nothing at this address.".to_owned()),
            WebError::Throttled { retry_after_secs } => (
                "Too many attempts",
                format!(
                    "There were too many failed attempts. For your security, please wait {} before trying again.",
                    human_wait(*retry_after_secs)
                ),
            ),
            WebError::Busy => {
                tracing::warn!("password-hash queue full: answered 503");
                (
                    "Busy right now",
                    "vigil is handling many sign-ins at this moment. Please try again in a few seconds.".to_owned(),
                )
            }
            WebError::Unavailable(detail) => {
                // Debug: the pool logs once when the database goes and once when it is back.
                tracing::debug!(error = %detail, "database unavailable: answered 503");
                (
                    "Temporarily unavailable",
                    "vigil cannot use its database at the moment, so nothing was changed. Please try again in a few seconds.".to_owned(),
                )
            }
            WebError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                ("Something went wrong", "vigil could not complete this request. Please try again in a moment.".to_owned())
            }
        };
        error_page(self.status_code(), title, &message, self.retry_after())
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
        format!("{secs} seconds")
    } else {
        format!("{} minutes", (secs + 59) / 60)
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
