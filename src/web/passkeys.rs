//! JSON endpoints behind static/webauthn.js: begin a ceremony (options + flow token), finish it
//! (`{"redirect": …}` or `{"error": …}`). CSRF tokens come in the `X-CSRF-Token` header.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde_json::json;

use super::errors::WebError;
use super::i18n;
use super::{enforced_session, see_other, AppState, MFA_COOKIE, SESSION_COOKIE};
use crate::flow::enforce::Action;
use crate::flow::mfa::StepResult;
use crate::flow::passkeys::{self, Passwordless};
use crate::flow::{factors, FlowError};
use crate::store::token_digest;

/// The largest JSON body a passkey endpoint reads. A WebAuthn response is a few KiB; these
/// endpoints are anonymous, so actix's 2 MiB default would let anyone make us buffer and parse
/// megabytes per request.
pub const JSON_LIMIT: usize = crate::auth::webauthn::MAX_RESPONSE_JSON;

/// The JSON extractor settings for every passkey route: the size cap, and an answer in the
/// shape static/webauthn.js reads (`{"error": …}`, 413 or 400) instead of actix's plain text.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError as E;
            // Logged by kind only: serde's message can quote the (attacker's) body.
            let (status, msg, kind) = match &err {
                E::Overflow { .. } | E::OverflowKnownLength { .. } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    i18n::t("passkey-too-large"),
                    "too_large",
                ),
                E::ContentType => (
                    StatusCode::BAD_REQUEST,
                    i18n::t("passkey-not-json"),
                    "content_type",
                ),
                _ => (
                    StatusCode::BAD_REQUEST,
                    i18n::t("passkey-unreadable"),
                    "malformed",
                ),
            };
            tracing::info!(kind, "passkey request body refused");
            actix_web::error::InternalError::from_response(err, json_error(status, &msg)).into()
        })
}

#[derive(Deserialize)]
pub struct Finish {
    #[serde(default)]
    pub flow: String,
    #[serde(default)]
    pub name: String,
    pub credential: serde_json::Value,
}

#[derive(Deserialize)]
pub struct TxQuery {
    pub tx: Option<String>,
}

fn csrf(state: &AppState, req: &HttpRequest) -> Result<(), WebError> {
    let token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    state.csrf.verify(req, token)
}

/// `{"error": msg}` for static/webauthn.js to show; a sentence of the flow in the page's
/// language (web/i18n.rs).
fn json_error(status: StatusCode, msg: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": i18n::flow_text(msg) }))
}

fn flow_error(e: FlowError) -> Result<HttpResponse, WebError> {
    match e {
        FlowError::Invalid(m) | FlowError::Conflict(m) => {
            Ok(json_error(StatusCode::BAD_REQUEST, &m))
        }
        FlowError::Auth(crate::auth::AuthError::Throttled { retry_after_secs }) => Ok(json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &i18n::t_with("passkey-throttled", &[("secs", retry_after_secs.into())]),
        )),
        FlowError::Auth(crate::auth::AuthError::Busy) => {
            let mut r = json_error(StatusCode::SERVICE_UNAVAILABLE, &i18n::t("passkey-busy"));
            r.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(super::errors::BUSY_RETRY_SECS),
            );
            Ok(r)
        }
        FlowError::Auth(a) => Ok(json_error(StatusCode::BAD_REQUEST, &a.to_string())),
        other => Err(WebError::from(other)),
    }
}

fn begun(r: Result<(serde_json::Value, String), FlowError>) -> Result<HttpResponse, WebError> {
    match r {
        Ok((options, flow)) => {
            Ok(HttpResponse::Ok().json(json!({ "options": options, "flow": flow })))
        }
        Err(e) => flow_error(e),
    }
}

/// Where the browser goes once a session exists: back into the authorization request, if any.
fn continue_to(tx: Option<&str>, fallback: &str) -> String {
    match tx.filter(|t| !t.is_empty()) {
        Some(tx) => format!(
            "/authorize/resume?tx={}",
            url::form_urlencoded::byte_serialize(tx.as_bytes()).collect::<String>()
        ),
        None => fallback.to_owned(),
    }
}

/// The signed-in user if the one enforcement point allows a factor change now; otherwise a
/// JSON answer that sends the browser to sign in again (with its second factor).
async fn may_change_factor(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Result<crate::store::users::User, HttpResponse>, WebError> {
    match enforced_session(state, req, Action::ChangeFactor, "/account").await? {
        Ok((_, user)) => Ok(Ok(user)),
        Err(resp) => {
            let to = resp
                .headers()
                .get(actix_web::http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("/login")
                .to_owned();
            Ok(Err(HttpResponse::Unauthorized().json(json!({
                "error": i18n::t("passkey-reauth"),
                "redirect": to,
            }))))
        }
    }
}

pub async fn register_begin(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    csrf(&state, &req)?;
    let user = or_respond!(may_change_factor(&state, &req).await?);
    begun(passkeys::register_begin(&state.svc, state.now(), &user).await)
}

pub async fn register_finish(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Finish>,
) -> Result<HttpResponse, WebError> {
    csrf(&state, &req)?;
    let user = or_respond!(may_change_factor(&state, &req).await?);
    let now = state.now();
    match passkeys::register_finish(
        &state.svc,
        now,
        &user,
        &body.flow,
        &body.name,
        &body.credential.to_string(),
        state.context(&req).ip,
    )
    .await
    {
        Ok(Some(codes)) => {
            let parked = factors::park_codes_for_display(&state.svc, now, &user, &codes).await?;
            Ok(HttpResponse::Ok()
                .json(json!({ "redirect": format!("/account/recovery?flow={parked}") })))
        }
        Ok(None) => Ok(HttpResponse::Ok().json(json!({ "redirect": "/account?notice=passkey" }))),
        Err(e) => flow_error(e),
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    pub csrf_token: String,
    pub id: String,
}

pub async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<RemoveForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let (_, user) =
        or_respond!(enforced_session(&state, &req, Action::ChangeFactor, "/account").await?);
    passkeys::remove(
        &state.svc,
        state.now(),
        &user,
        &form.id,
        state.context(&req).ip,
    )
    .await?;
    Ok(see_other("/account"))
}

pub async fn step_up_begin(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    csrf(&state, &req)?;
    let Some(c) = req.cookie(MFA_COOKIE) else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            &i18n::t("passkey-expired"),
        ));
    };
    begun(passkeys::step_up_begin(&state.svc, state.now(), c.value(), &state.context(&req)).await)
}

pub async fn step_up_finish(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Finish>,
) -> Result<HttpResponse, WebError> {
    csrf(&state, &req)?;
    let Some(c) = req.cookie(MFA_COOKIE) else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            &i18n::t("passkey-expired"),
        ));
    };
    let result = passkeys::step_up_finish(
        &state.svc,
        state.now(),
        c.value(),
        &body.flow,
        &body.credential.to_string(),
        &state.context(&req),
    )
    .await;
    match result {
        Ok(Ok(StepResult::Done {
            established,
            tx,
            user,
            ..
        })) => {
            let landing = super::landing(&req, &user);
            let mut resp = HttpResponse::Ok()
                .json(json!({ "redirect": continue_to(tx.as_deref(), &landing) }));
            resp.add_removal_cookie(&state.clear_next_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            resp.add_cookie(&state.session_cookie(established.token.expose_secret().to_owned()))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            resp.add_removal_cookie(&state.clear_mfa_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Ok(Ok(StepResult::ResetGranted { grant })) => {
            let mut resp = HttpResponse::Ok().json(json!({ "redirect": "/login/reset/password" }));
            resp.add_cookie(&state.reset_cookie(grant.expose_secret().to_owned()))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            resp.add_removal_cookie(&state.clear_mfa_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Ok(Ok(StepResult::Throttled { retry_after_secs })) => Ok(json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &i18n::t_with("passkey-throttled", &[("secs", retry_after_secs.into())]),
        )),
        Ok(Ok(_)) => Ok(json_error(
            StatusCode::BAD_REQUEST,
            &i18n::t("passkey-expired"),
        )),
        Ok(Err(msg)) => Ok(json_error(StatusCode::UNAUTHORIZED, &msg)),
        Err(e) => flow_error(e),
    }
}

pub async fn passwordless_begin(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    csrf(&state, &req)?;
    begun(passkeys::passwordless_begin(&state.svc, state.now()).await)
}

pub async fn passwordless_finish(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<TxQuery>,
    body: web::Json<Finish>,
) -> Result<HttpResponse, WebError> {
    csrf(&state, &req)?;
    let previous = req.cookie(SESSION_COOKIE).map(|c| token_digest(c.value()));
    let result = passkeys::passwordless_finish(
        &state.svc,
        state.now(),
        &body.flow,
        &body.credential.to_string(),
        &state.context(&req),
        previous,
        q.tx.clone().filter(|t| !t.is_empty()),
    )
    .await;
    match result {
        Ok(Passwordless::Done {
            established, user, ..
        }) => {
            let landing = super::landing(&req, &user);
            let mut resp = HttpResponse::Ok()
                .json(json!({ "redirect": continue_to(q.tx.as_deref(), &landing) }));
            resp.add_removal_cookie(&state.clear_next_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            resp.add_cookie(&state.session_cookie(established.token.expose_secret().to_owned()))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Ok(Passwordless::Failed(msg)) => Ok(json_error(StatusCode::UNAUTHORIZED, &msg)),
        Err(e) => flow_error(e),
    }
}
