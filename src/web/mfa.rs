//! The step-up page (`/login/mfa`): the strongest factor the user has first (WebAuthn, then
//! TOTP, then a recovery code), with links to switch.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use tera::Context;

use super::errors::WebError;
use super::i18n;
use super::oidc::render_next;
use super::{see_other, AppState, MFA_COOKIE};
use crate::flow::authorize;
use crate::flow::enforce::Factor;
use crate::flow::mfa::{self, Pending, StepResult};

#[derive(Deserialize)]
pub struct MfaQuery {
    pub method: Option<String>,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub code: String,
}

/// The factors this step-up may use, strongest first: only what the requirement accepts, so
/// the page never offers what the flow would refuse.
fn methods(p: &Pending, passkeys_available: bool) -> Vec<&'static str> {
    p.offered(passkeys_available)
        .into_iter()
        .map(|f| match f {
            Factor::Passkey => "webauthn",
            Factor::Totp => "totp",
            Factor::RecoveryCode => "recovery",
        })
        .collect()
}

fn mfa_page(
    state: &AppState,
    req: &HttpRequest,
    p: &Pending,
    method: Option<&str>,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let available = methods(p, state.passkeys_available());
    let chosen = method
        .filter(|m| available.contains(m))
        .or(available.first().copied())
        .unwrap_or("recovery");
    let mut ctx = Context::new();
    ctx.insert("method", chosen);
    ctx.insert("methods", &available);
    ctx.insert(
        "reason",
        &i18n::t(if p.reset {
            "mfa-reason-reset"
        } else {
            "mfa-reason"
        }),
    );
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    state.form_page(req, status, "mfa.html", ctx)
}

async fn pending_of(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(String, Pending)>, WebError> {
    let Some(c) = req.cookie(MFA_COOKIE) else {
        return Ok(None);
    };
    let token = c.value().to_owned();
    Ok(
        mfa::pending(&state.svc, state.now(), &token, &state.context(req))
            .await?
            .map(|p| (token, p)),
    )
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<MfaQuery>,
) -> Result<HttpResponse, WebError> {
    let Some((_, p)) = pending_of(&state, &req).await? else {
        return Ok(see_other("/login"));
    };
    mfa_page(&state, &req, &p, q.method.as_deref(), StatusCode::OK, None)
}

/// Turn a finished step into a response: the session cookie, then the authorization request
/// (or the account page).
pub async fn after_step(
    state: &AppState,
    req: &HttpRequest,
    result: StepResult,
    method: &str,
) -> Result<HttpResponse, WebError> {
    match result {
        StepResult::Done {
            user,
            mut established,
            tx,
            used_recovery_code,
        } => {
            let mut resp = match tx {
                Some(tx) => {
                    let next = authorize::after_sign_in(
                        &state.svc,
                        state.now(),
                        &tx,
                        &mut established,
                        *user,
                        &state.context(req),
                    )
                    .await
                    .map_err(WebError::from)?;
                    render_next(state, req, next)?
                }
                None if used_recovery_code && !user.must_change_password => {
                    see_other("/account?notice=recovery")
                }
                None => see_other(&super::landing(req, &user)),
            };
            resp.add_removal_cookie(&state.clear_next_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            resp.add_cookie(&state.session_cookie(established.token.expose_secret().to_owned()))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            resp.add_removal_cookie(&state.clear_mfa_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        StepResult::ResetGranted { grant } => {
            let mut resp = see_other("/login/reset/password");
            resp.add_cookie(&state.reset_cookie(grant.expose_secret().to_owned()))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            resp.add_removal_cookie(&state.clear_mfa_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        StepResult::Throttled { retry_after_secs } => Err(WebError::Throttled { retry_after_secs }),
        StepResult::Expired => Ok(see_other("/login")),
        StepResult::NotAccepted => {
            let Some((_, p)) = pending_of(state, req).await? else {
                return Ok(see_other("/login"));
            };
            mfa_page(
                state,
                req,
                &p,
                None,
                StatusCode::FORBIDDEN,
                Some(&i18n::t("mfa-needs-passkey")),
            )
        }
        StepResult::Wrong | StepResult::Replayed => {
            let Some((_, p)) = pending_of(state, req).await? else {
                return Ok(see_other("/login"));
            };
            let msg = i18n::t(if matches!(result, StepResult::Replayed) {
                "mfa-code-replayed"
            } else if method == "recovery" {
                "mfa-recovery-wrong"
            } else {
                "mfa-code-wrong"
            });
            mfa_page(
                state,
                req,
                &p,
                Some(method),
                StatusCode::UNAUTHORIZED,
                Some(&msg),
            )
        }
    }
}

pub async fn totp(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let Some(c) = req.cookie(MFA_COOKIE) else {
        return Ok(see_other("/login"));
    };
    let result = mfa::with_totp(
        &state.svc,
        state.now(),
        c.value(),
        &form.code,
        &state.context(&req),
    )
    .await?;
    after_step(&state, &req, result, "totp").await
}

pub async fn recovery(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let Some(c) = req.cookie(MFA_COOKIE) else {
        return Ok(see_other("/login"));
    };
    let result = mfa::with_recovery_code(
        &state.svc,
        state.now(),
        c.value(),
        &form.code,
        &state.context(&req),
    )
    .await?;
    after_step(&state, &req, result, "recovery").await
}
