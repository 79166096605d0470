//! The signed-in user's own page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tera::Context;

use super::errors::WebError;
use super::templates::page;
use super::{see_other, AppState, SESSION_COOKIE};
use crate::clock::Timestamp;
use crate::flow::session;

pub async fn show(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(see_other("/login"));
    };
    let Some((s, user)) = session::resolve(&state.svc, cookie.value(), state.now()).await? else {
        return Ok(see_other("/login"));
    };
    let (token, csrf_cookie) = state.csrf.issue(&req)?;
    let mut ctx = Context::new();
    ctx.insert("csrf_token", &token);
    ctx.insert("signed_in_as", &user.username);
    ctx.insert(
        "user",
        &json!({ "username": user.username, "email": user.email, "name": user.name, "is_admin": user.is_admin }),
    );
    ctx.insert(
        "session",
        &json!({
            "created": Timestamp(s.created_at).display(),
            "expires": Timestamp(s.expires_at.min(s.idle_expires_at)).display(),
        }),
    );
    let mut resp = page(StatusCode::OK, "account.html", &ctx);
    resp.add_cookie(&csrf_cookie)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(resp)
}
