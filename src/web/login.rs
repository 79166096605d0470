//! The login form and signing out of the SSO session.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use tera::Context;

use super::errors::WebError;
use super::i18n::{self, arg};
use super::oidc::{end_current, render_next};
use super::templates::page;
use super::{see_other, AppState, SESSION_COOKIE};
use crate::flow::{authorize, login, session};

#[derive(Deserialize)]
pub struct LoginQuery {
    pub tx: Option<String>,
    pub login_hint: Option<String>,
    /// A local page to return to (admin and account pages only).
    pub next: Option<String>,
    /// `1`: the signed-in user must prove it is them again (an admin's sensitive action).
    pub reauth: Option<String>,
    /// `mfa`: the re-authentication must include a second factor.
    pub require: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: SecretString,
    #[serde(default)]
    pub csrf_token: String,
    pub tx: Option<String>,
    /// Time zone, screen and platform from static/hints.js (a risk signal; may be absent).
    #[serde(default)]
    pub device_hints: Option<String>,
    /// `mfa`: this sign-in re-authenticates for a change that needs a second factor.
    #[serde(default)]
    pub require: Option<String>,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf_token: String,
}

/// Render the login page with a fresh CSRF pair.
fn login_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
    tx: Option<&str>,
    require_mfa: bool,
) -> Result<HttpResponse, WebError> {
    let mut ctx = Context::new();
    ctx.insert("username", username);
    ctx.insert("require_mfa", &require_mfa);
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    if let Some(t) = tx {
        ctx.insert("tx", t);
    }
    ctx.insert("passkeys_available", &state.passkeys_available());
    ctx.insert("reset_available", &state.svc.mailer.enabled());
    ctx.insert(
        "registration_open",
        &(crate::flow::registration::mode(&state.svc) == crate::config::Registration::Open),
    );
    state.form_page(req, status, "login.html", ctx)
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, WebError> {
    let next = q.next.as_deref().and_then(super::safe_next);
    let reauth = q.reauth.as_deref() == Some("1");
    let mut hint: String = q.login_hint.clone().unwrap_or_default();
    if q.tx.is_none() {
        if let Some(cookie) = req.cookie(SESSION_COOKIE) {
            if let Some((_, user)) = session::resolve(
                &state.svc,
                cookie.value(),
                state.now(),
                &state.context(&req),
            )
            .await?
            {
                if !reauth {
                    return Ok(see_other(next.unwrap_or("/account")));
                }
                hint = user.username;
            }
        }
    }
    let hint: String = hint.chars().take(128).collect();
    let mut resp = login_page(
        &state,
        &req,
        StatusCode::OK,
        &hint,
        reauth.then(|| i18n::t("login-reauth")).as_deref(),
        q.tx.as_deref(),
        q.require.as_deref() == Some("mfa"),
    )?;
    if let Some(n) = next.filter(|_| q.tx.is_none()) {
        resp.add_cookie(&state.next_cookie(n.to_owned()))
            .map_err(|e| WebError::Internal(e.to_string()))?;
    }
    Ok(resp)
}

pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    state.csrf.verify(&req, &form.csrf_token)?;
    // PostgreSQL text cannot hold NUL: a name or tx with one matches nothing and must not reach
    // the database, where it is an error (a 500; found by tests/it/adversarial.rs).
    if form.username.contains('\0') || form.tx.as_deref().is_some_and(|t| t.contains('\0')) {
        return Err(WebError::BadRequest(i18n::t("login-malformed")));
    }
    let now = state.now();
    let attempt = login::PasswordAttempt {
        username: form.username.clone(),
        password: form.password,
        ctx: {
            let mut ctx = state.context(&req);
            ctx.hints = form.device_hints.clone().filter(|h| h.len() <= 512);
            ctx
        },
        previous_session: req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()),
        tx: form.tx.clone().filter(|t| !t.is_empty()),
        want_mfa: form.require.as_deref() == Some("mfa"),
    };
    match login::password(&state.svc, now, attempt).await? {
        login::Outcome::SignedIn {
            mut established,
            user,
        } => {
            use secrecy::ExposeSecret as _;
            let mut resp = match form.tx.as_deref().filter(|t| !t.is_empty()) {
                Some(tx) => {
                    let ctx = state.context(&req);
                    let next = authorize::after_sign_in(
                        &state.svc,
                        now,
                        tx,
                        &mut established,
                        *user,
                        &ctx,
                    )
                    .await
                    .map_err(WebError::from)?;
                    render_next(&state, &req, next)?
                }
                None => see_other(&super::landing(&req, &user)),
            };
            resp.add_cookie(&state.session_cookie(established.token.expose_secret().to_owned()))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            resp.add_removal_cookie(&state.clear_next_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        login::Outcome::SecondFactor { pending } => {
            use secrecy::ExposeSecret as _;
            let mut resp = see_other("/login/mfa");
            resp.add_cookie(&state.mfa_cookie(pending.expose_secret().to_owned()))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        login::Outcome::Blocked { message } => Ok(super::errors::error_page(
            StatusCode::FORBIDDEN,
            &i18n::t("signin-refused-title"),
            &i18n::t_with(
                "signin-refused",
                &[("what", arg(i18n::flow_text(&message)))],
            ),
            None,
        )),
        login::Outcome::NotYet { message } => Ok(super::errors::error_page(
            StatusCode::FORBIDDEN,
            &i18n::t("not-ready-title"),
            &i18n::t_with("not-ready", &[("what", arg(i18n::flow_text(&message)))]),
            None,
        )),
        login::Outcome::Refused => login_page(
            &state,
            &req,
            StatusCode::UNAUTHORIZED,
            &form.username,
            Some(&i18n::t("login-wrong")),
            form.tx.as_deref(),
            form.require.as_deref() == Some("mfa"),
        ),
        login::Outcome::Throttled { retry_after_secs } => {
            Err(WebError::Throttled { retry_after_secs })
        }
    }
}

pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    end_current(&state, &req).await?;
    let mut resp = page(StatusCode::OK, "signed_out.html", &Context::new());
    resp.add_removal_cookie(&state.clear_session_cookie())
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(resp)
}
