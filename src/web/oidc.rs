//! HTTP framing of the OIDC endpoints: read the request, call `oidc`/`flow`, write the answer.
//! Protocol errors at token/introspect/revoke/userinfo are OAuth JSON with `Cache-Control:
//! no-store`; errors a person sees at /authorize and /logout are pages.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use tera::Context;

use super::errors::{error_page, WebError};
use super::i18n::{self, arg, flow_text, t, t_with};
use super::templates::page;
use super::{current_session, see_other, AppState, SESSION_COOKIE};
use crate::flow::authorize::{self as flow_authz, Next};
use crate::flow::session;
use crate::oidc::authorize::{self, AuthorizeParams, Redirect, Refusal, ResponseMode};
use crate::oidc::introspect::{introspect, IntrospectParams};
use crate::oidc::logout::{self, LogoutParams};
use crate::oidc::revoke::{revoke, RevokeParams};
use crate::oidc::token::{token, TokenParams};
use crate::oidc::userinfo::userinfo;
use crate::oidc::OAuthError;

/// Bodies of protocol requests are small; anything bigger is refused with an OAuth error.
const MAX_BODY: usize = 16 * 1024;

/// An OAuth error as JSON, with the headers RFC 6749 §5.2 and RFC 6750 §3 require.
pub fn oauth_error(e: &OAuthError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if e.error == "invalid_client" {
        resp.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"vigil\""));
    }
    if e.is_unavailable() {
        resp.insert_header((
            header::RETRY_AFTER,
            super::errors::BUSY_RETRY_SECS.to_string(),
        ));
    }
    if e.error == "invalid_token" || e.error == "insufficient_scope" {
        let v = format!(
            "Bearer realm=\"vigil\", error=\"{}\", error_description=\"{}\"",
            e.error,
            e.error_description.replace('"', "'")
        );
        resp.insert_header((header::WWW_AUTHENTICATE, v));
    }
    resp.json(e)
}

fn no_store_json(v: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(v)
}

/// Read an `application/x-www-form-urlencoded` body of at most [`MAX_BODY`] bytes.
async fn read_form<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<T, OAuthError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| OAuthError::invalid_request("the body could not be read"))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(OAuthError::invalid_request("the request body is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    crate::oidc::parse_form(&body)
}

fn authorization(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(state.discovery.clone())
}

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    match state.svc.keys.published(state.now()).await {
        Ok(set) => HttpResponse::Ok()
            .content_type("application/jwk-set+json")
            .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .body(set.jwks().to_owned()),
        Err(e) => oauth_error(&OAuthError::from(e)),
    }
}

/// Turn the flow's next step into a response.
pub fn render_next(
    state: &AppState,
    req: &HttpRequest,
    next: Next,
) -> Result<HttpResponse, WebError> {
    match next {
        Next::Login { tx, login_hint } => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("tx", &tx);
            if let Some(h) = login_hint {
                q.append_pair("login_hint", &h);
            }
            Ok(see_other(&format!("/login?{}", q.finish())))
        }
        Next::Consent {
            tx,
            client_name,
            scopes,
        } => {
            let mut ctx = Context::new();
            ctx.insert("tx", &tx);
            ctx.insert("client_name", &client_name);
            ctx.insert(
                "scopes",
                &scopes
                    .iter()
                    .map(|s| scope_description(s))
                    .collect::<Vec<_>>(),
            );
            state.form_page(req, StatusCode::OK, "consent.html", ctx)
        }
        Next::Redirect(r) => Ok(redirect(&r)),
        Next::StepUp { pending } => {
            use secrecy::ExposeSecret as _;
            let mut resp = see_other("/login/mfa");
            resp.add_cookie(&state.mfa_cookie(pending.expose_secret().to_owned()))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Next::Blocked(msg) => Ok(error_page(
            StatusCode::FORBIDDEN,
            &t("signin-refused-title"),
            &t_with("signin-refused", &[("what", arg(flow_text(&msg)))]),
            None,
        )),
        Next::ChangePassword => Ok(see_other("/account/password")),
        Next::NoAccess { client_name, back } => {
            let mut ctx = Context::new();
            ctx.insert("client_name", &client_name);
            ctx.insert("form_post", &(back.mode == ResponseMode::FormPost));
            ctx.insert("action", &back.redirect_uri);
            ctx.insert("fields", &back.params);
            ctx.insert("location", &back.location());
            Ok(page(StatusCode::FORBIDDEN, "no_access.html", &ctx))
        }
        Next::Page(msg) => Ok(error_page(
            StatusCode::BAD_REQUEST,
            &t("request-expired-title"),
            &flow_text(&msg),
            None,
        )),
    }
}

fn scope_description(s: &str) -> String {
    match s {
        "openid" => t("scope-openid"),
        "profile" => t("scope-profile"),
        "email" => t("scope-email"),
        "offline_access" => t("scope-offline-access"),
        "roles" => t("scope-roles"),
        "groups" => t("scope-groups"),
        other => other.into(),
    }
}

/// Send the browser to the client: a 303 for `query`, an auto-submitting form for `form_post`.
pub fn redirect(r: &Redirect) -> HttpResponse {
    match r.mode {
        ResponseMode::Query => see_other(&r.location()),
        ResponseMode::FormPost => {
            let mut ctx = Context::new();
            ctx.insert("action", &r.redirect_uri);
            ctx.insert("fields", &r.params);
            page(StatusCode::OK, "form_post.html", &ctx)
        }
    }
}

async fn authorize_with(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: AuthorizeParams,
) -> Result<HttpResponse, WebError> {
    let now = state.now();
    let issuer = state.svc.settings.issuer.as_str().to_owned();
    let valid = match authorize::validate(&state.svc.db, &issuer, params).await {
        Ok(v) => v,
        Err(Refusal::Page(msg)) => {
            return Ok(error_page(
                StatusCode::BAD_REQUEST,
                &t("request-unusable-title"),
                &flow_text(&msg),
                None,
            ))
        }
        Err(Refusal::Redirect(r)) => return Ok(redirect(&r)),
        Err(Refusal::Unavailable(m)) => return Err(WebError::Unavailable(m)),
    };
    let session = current_session(&state, &req).await?;
    let fallback = valid.clone();
    match flow_authz::begin(&state.svc, now, valid, session, &state.context(&req)).await {
        Ok(next) => render_next(&state, &req, next),
        Err(e) => Ok(redirect(&Redirect::error(&fallback, &issuer, &e))),
    }
}

pub async fn authorize_get(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let raw = req.query_string().as_bytes().to_vec();
    authorize_raw(state, req, &raw).await
}

pub async fn authorize_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(WebError::BadRequest(t("request-not-form")));
    }
    // The same cap as every other form (app.rs FormConfig).
    if body.len() > 64 * 1024 {
        return Err(WebError::BadRequest(t("request-too-large")));
    }
    authorize_raw(state, req, &body).await
}

/// The request's pages speak the first language of `ui_locales` (OIDC Core §3.1.2.1) vigil has,
/// else the browser's (web/i18n.rs); the choice is remembered for the sign-in's later pages in
/// the `vigil_lang` cookie, and a request without one forgets an earlier request's choice.
async fn authorize_raw(
    state: web::Data<AppState>,
    req: HttpRequest,
    raw: &[u8],
) -> Result<HttpResponse, WebError> {
    let ui_locales = url::form_urlencoded::parse(raw)
        .find(|(k, _)| k == "ui_locales")
        .map(|(_, v)| v.chars().take(256).collect::<String>());
    let chosen = ui_locales
        .as_deref()
        .and_then(|u| i18n::pick(u.split_ascii_whitespace()));
    let lang = chosen
        .clone()
        .unwrap_or_else(|| i18n::negotiate(None, None, i18n::accept_header(req.headers())));
    let had_cookie = req.cookie(i18n::LANG_COOKIE).is_some();
    let mut resp = i18n::scope(lang, async {
        // Rendered here, so an error page speaks the request's language too.
        authorize_checked(state.clone(), req.clone(), raw)
            .await
            .unwrap_or_else(HttpResponse::from_error)
    })
    .await;
    match chosen {
        Some(l) => resp.add_cookie(&state.lang_cookie(&l)),
        None if had_cookie => resp.add_removal_cookie(&state.clear_lang_cookie()),
        None => Ok(()),
    }
    .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(resp)
}

/// RFC 6749 §3.1: a parameter must not be sent twice. serde would refuse the request with a
/// bare page; when `client_id` and `redirect_uri` are each given once (and valid), the client
/// hears `invalid_request` at its redirect URI instead (§4.1.2.1).
async fn authorize_checked(
    state: web::Data<AppState>,
    req: HttpRequest,
    raw: &[u8],
) -> Result<HttpResponse, WebError> {
    let bad =
        |e: String| WebError::BadRequest(t_with("request-bad-parameters", &[("detail", arg(e))]));
    let Some(name) = authorize::repeated(raw) else {
        let params = authorize::parse_params(raw).map_err(bad)?;
        return authorize_with(state, req, params).await;
    };
    if name == "client_id" || name == "redirect_uri" {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            &t("request-unusable-title"),
            &t_with("request-repeated", &[("name", arg(name))]),
            None,
        ));
    }
    let params = authorize::parse_first_of_each(raw).map_err(bad)?;
    let issuer = state.svc.settings.issuer.as_str().to_owned();
    match authorize::validate(&state.svc.db, &issuer, params).await {
        Ok(valid) => Ok(redirect(&Redirect::error(
            &valid,
            &issuer,
            &OAuthError::invalid_request(format!("the parameter {name} is repeated")),
        ))),
        Err(Refusal::Page(msg)) => Ok(error_page(
            StatusCode::BAD_REQUEST,
            &t("request-unusable-title"),
            &flow_text(&msg),
            None,
        )),
        Err(Refusal::Redirect(r)) => Ok(redirect(&r)),
        Err(Refusal::Unavailable(m)) => Err(WebError::Unavailable(m)),
    }
}

#[derive(serde::Deserialize)]
pub struct ResumeQuery {
    pub tx: Option<String>,
}

/// Continue an authorization request with the browser's (new) session, after a sign-in that
/// finished in JavaScript (passkeys).
pub async fn authorize_resume(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<ResumeQuery>,
) -> Result<HttpResponse, WebError> {
    let Some(tx) = q.tx.as_deref() else {
        return Ok(see_other("/account"));
    };
    let session = current_session(&state, &req).await?;
    let next = flow_authz::resume(&state.svc, state.now(), tx, session, &state.context(&req))
        .await
        .map_err(WebError::from)?;
    render_next(&state, &req, next)
}

#[derive(serde::Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    pub csrf_token: String,
    pub tx: String,
    pub decision: String,
}

pub async fn consent(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ConsentForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let session = current_session(&state, &req).await?;
    let allow = form.decision == "allow";
    let next = flow_authz::consent(
        &state.svc,
        state.now(),
        &form.tx,
        session,
        allow,
        &state.context(&req),
    )
    .await
    .map_err(WebError::from)?;
    render_next(&state, &req, next)
}

pub async fn token_endpoint(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let params: TokenParams = match read_form(&req, payload).await {
        Ok(p) => p,
        Err(e) => return oauth_error(&e),
    };
    match token(
        &state.svc,
        state.now(),
        authorization(&req).as_deref(),
        params,
    )
    .await
    {
        Ok(r) => no_store_json(&r),
        Err(e) => oauth_error(&e),
    }
}

pub async fn introspect_endpoint(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let params: IntrospectParams = match read_form(&req, payload).await {
        Ok(p) => p,
        Err(e) => return oauth_error(&e),
    };
    match introspect(
        &state.svc,
        state.now(),
        authorization(&req).as_deref(),
        params,
    )
    .await
    {
        Ok(v) => no_store_json(&v),
        Err(e) => oauth_error(&e),
    }
}

pub async fn revoke_endpoint(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let params: RevokeParams = match read_form(&req, payload).await {
        Ok(p) => p,
        Err(e) => return oauth_error(&e),
    };
    match revoke(
        &state.svc,
        state.now(),
        authorization(&req).as_deref(),
        params,
    )
    .await
    {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => oauth_error(&e),
    }
}

/// The form body of a UserInfo POST (RFC 6750 §2.2).
#[derive(serde::Deserialize)]
struct BodyToken {
    access_token: Option<String>,
}

pub async fn userinfo_endpoint(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let bearer = authorization(&req).and_then(|h| {
        let (scheme, value) = h.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| value.trim().to_owned())
    });
    // RFC 6750 §2.2: a POST may carry the token as a form parameter instead of the header
    // (OIDC Core §5.3.1; the conformance suite's oidcc-userinfo-post-body).
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let in_body = if req.method() == actix_web::http::Method::POST && is_form {
        match read_form::<BodyToken>(&req, payload).await {
            Ok(b) => b.access_token,
            Err(e) => return oauth_error(&e),
        }
    } else {
        None
    };
    let bearer = match (bearer, in_body) {
        // §2: a client must not use more than one method in a request.
        (Some(_), Some(_)) => {
            return oauth_error(&OAuthError::invalid_request(
                "the access token was sent both in the header and in the body",
            ))
        }
        (h, b) => h.or(b),
    };
    let Some(token) = bearer else {
        // RFC 6750 §3.1: no credentials, no error code.
        return HttpResponse::Unauthorized()
            .insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vigil\""),
            ))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
    };
    match userinfo(&state.svc, state.now(), &token).await {
        Ok(v) => no_store_json(&v),
        Err(e) => oauth_error(&e),
    }
}

/// RP-initiated logout. With a valid `id_token_hint` for the signed-in user the session ends at
/// once; otherwise the user confirms (so a cross-site link cannot sign anyone out).
async fn logout_with(
    state: web::Data<AppState>,
    req: HttpRequest,
    p: LogoutParams,
) -> Result<HttpResponse, WebError> {
    let now = state.now();
    let plan = match logout::plan(&state.svc, now, &p).await {
        Ok(plan) => plan,
        Err(logout::PlanError::Unavailable(m)) => return Err(WebError::Unavailable(m)),
        Err(logout::PlanError::Invalid(msg)) => {
            return Ok(error_page(
                StatusCode::BAD_REQUEST,
                &t("logout-invalid-title"),
                &flow_text(&msg),
                None,
            ))
        }
    };
    let current = current_session(&state, &req).await?;
    let Some((_, user)) = current else {
        return Ok(finish_logout(&state, plan.redirect.as_deref()));
    };
    if plan.hinted_sub.as_deref() == Some(user.id.as_str()) {
        end_current(&state, &req).await?;
        return Ok(finish_logout(&state, plan.redirect.as_deref()));
    }
    let mut ctx = Context::new();
    ctx.insert(
        "client_name",
        &plan
            .client
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default(),
    );
    ctx.insert(
        "client_id",
        &plan
            .client
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_default(),
    );
    ctx.insert(
        "post_logout_redirect_uri",
        &p.post_logout_redirect_uri.clone().unwrap_or_default(),
    );
    ctx.insert("state", &p.state.clone().unwrap_or_default());
    ctx.insert("signed_in_as", &user.username);
    state.form_page(&req, StatusCode::OK, "logout_confirm.html", ctx)
}

pub async fn logout_get(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<LogoutParams>,
) -> Result<HttpResponse, WebError> {
    logout_with(state, req, q.into_inner()).await
}

pub async fn logout_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    f: web::Form<LogoutParams>,
) -> Result<HttpResponse, WebError> {
    logout_with(state, req, f.into_inner()).await
}

#[derive(serde::Deserialize)]
pub struct LogoutConfirm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub post_logout_redirect_uri: String,
    #[serde(default)]
    pub state: String,
}

pub async fn logout_confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    f: web::Form<LogoutConfirm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &f.csrf_token)?;
    let p = LogoutParams {
        id_token_hint: None,
        client_id: Some(f.client_id.clone()).filter(|s| !s.is_empty()),
        post_logout_redirect_uri: Some(f.post_logout_redirect_uri.clone())
            .filter(|s| !s.is_empty()),
        state: Some(f.state.clone()).filter(|s| !s.is_empty()),
        ui_locales: None,
    };
    let plan = logout::plan(&state.svc, state.now(), &p)
        .await
        .unwrap_or(logout::LogoutPlan {
            hinted_sub: None,
            client: None,
            redirect: None,
        });
    end_current(&state, &req).await?;
    Ok(finish_logout(&state, plan.redirect.as_deref()))
}

/// End the browser's session and tell its relying parties (back-channel).
pub async fn end_current(state: &AppState, req: &HttpRequest) -> Result<(), WebError> {
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        let now = state.now();
        let ended = session::end(
            &state.svc,
            secrecy::SecretString::from(cookie.value().to_owned()),
            now,
            state.context(req),
        )
        .await?;
        if let Some(s) = ended {
            logout::backchannel(&state.svc, now, &s).await;
        }
    }
    Ok(())
}

fn finish_logout(state: &AppState, redirect: Option<&str>) -> HttpResponse {
    let mut resp = match redirect {
        Some(r) => see_other(r),
        None => page(StatusCode::OK, "signed_out.html", &Context::new()),
    };
    let _ = resp.add_removal_cookie(&state.clear_session_cookie());
    resp
}
