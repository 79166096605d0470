//! Pages of the password reset by e-mail (`flow::recovery`) and of the one-click "this wasn't
//! me" link mailed with notices (`flow::notices`). No sign-in is needed for either.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tera::Context;

use super::errors::{error_page, WebError};
use super::i18n;
use super::{see_other, AppState, RESET_COOKIE};
use crate::flow::recovery::{self, Asked, Redeemed};
use crate::flow::FlowError;

fn forgot_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    ctx: Context,
) -> Result<HttpResponse, WebError> {
    let mut ctx = ctx;
    ctx.insert("mail_on", &state.svc.mailer.enabled());
    ctx.insert("minutes", &recovery::LINK_MINUTES);
    state.form_page(req, status, "forgot.html", ctx)
}

pub async fn forgot(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    forgot_page(&state, &req, StatusCode::OK, Context::new())
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub identifier: String,
}

/// Ask for a link. The answer is the same whether or not an account matched.
pub async fn forgot_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ForgotForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let mut ctx = Context::new();
    if !state.svc.mailer.enabled() {
        return forgot_page(&state, &req, StatusCode::OK, ctx);
    }
    let typed = form.identifier.clone();
    match recovery::request(&state.svc, state.now(), &typed, &state.context(&req)).await {
        Ok(Asked::Accepted) => {
            ctx.insert("sent", &true);
            forgot_page(&state, &req, StatusCode::OK, ctx)
        }
        Ok(Asked::Throttled { retry_after_secs }) => Err(WebError::Throttled { retry_after_secs }),
        Ok(Asked::NoDevice) => {
            ctx.insert("error", &i18n::t("reset-no-cookie"));
            forgot_page(&state, &req, StatusCode::BAD_REQUEST, ctx)
        }
        Err(FlowError::Invalid(m)) => {
            ctx.insert("error", &i18n::flow_text(&m));
            forgot_page(&state, &req, StatusCode::BAD_REQUEST, ctx)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    pub token: String,
}

fn reset_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    ctx: Context,
) -> Result<HttpResponse, WebError> {
    state.form_page(req, status, "reset.html", ctx)
}

/// The link in the mail: a page with a button (a mail scanner that fetches links must not use
/// the link up). Checks the link first, so a dead one says so at once.
pub async fn reset_page_get(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<TokenQuery>,
) -> Result<HttpResponse, WebError> {
    let mut ctx = Context::new();
    match recovery::check_link(&state.svc, state.now(), &q.token, &state.context(&req)).await {
        Ok(()) => {
            ctx.insert("step", "confirm");
            ctx.insert("token", &q.token);
            reset_page(&state, &req, StatusCode::OK, ctx)
        }
        Err(FlowError::Invalid(m)) => {
            ctx.insert("step", "error");
            ctx.insert("error", &i18n::flow_text(&m));
            reset_page(&state, &req, StatusCode::BAD_REQUEST, ctx)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub token: String,
}

/// Press the button: the link is used, and enforcement says what comes next.
pub async fn reset_redeem(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    match recovery::redeem(&state.svc, state.now(), &form.token, &state.context(&req)).await {
        Ok(Redeemed::Granted(grant)) => {
            let mut resp = see_other("/login/reset/password");
            resp.add_cookie(&state.reset_cookie(grant.expose_secret().to_owned()))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Ok(Redeemed::SecondFactor(pending)) => {
            let mut resp = see_other("/login/mfa");
            resp.add_cookie(&state.mfa_cookie(pending.expose_secret().to_owned()))
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Ok(Redeemed::Refused(message)) => Ok(error_page(
            StatusCode::FORBIDDEN,
            &i18n::t("reset-refused-title"),
            &i18n::t_with(
                "reset-refused",
                &[("what", i18n::arg(i18n::flow_text(&message)))],
            ),
            None,
        )),
        Err(FlowError::Invalid(m)) => {
            let mut ctx = Context::new();
            ctx.insert("step", "error");
            ctx.insert("error", &i18n::flow_text(&m));
            reset_page(&state, &req, StatusCode::BAD_REQUEST, ctx)
        }
        Err(e) => Err(e.into()),
    }
}

async fn new_password_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let mut ctx = Context::new();
    let grant = req.cookie(RESET_COOKIE).map(|c| c.value().to_owned());
    let user = match grant {
        Some(g) => recovery::granted(&state.svc, state.now(), &g, &state.context(req)).await,
        None => Err(FlowError::Invalid(
            "This password reset expired or was already completed. Ask for a new link.".into(),
        )),
    };
    match user {
        Ok(u) => {
            ctx.insert("step", "password");
            ctx.insert("username", &u.username);
            if let Some(e) = error {
                ctx.insert("error", &i18n::flow_text(e));
            }
            reset_page(state, req, status, ctx)
        }
        Err(FlowError::Invalid(m)) => {
            ctx.insert("step", "error");
            ctx.insert("error", &i18n::flow_text(&m));
            reset_page(state, req, StatusCode::BAD_REQUEST, ctx)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn reset_password_get(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    new_password_page(&state, &req, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct NewPasswordForm {
    #[serde(default)]
    pub csrf_token: String,
    pub new_password: SecretString,
    pub confirm_password: SecretString,
}

/// Choose the new password: every session and token of the account ends.
pub async fn reset_password_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<NewPasswordForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let form = form.into_inner();
    if form.new_password.expose_secret() != form.confirm_password.expose_secret() {
        return new_password_page(
            &state,
            &req,
            StatusCode::BAD_REQUEST,
            Some(&i18n::t("reset-mismatch")),
        )
        .await;
    }
    let Some(grant) = req.cookie(RESET_COOKIE).map(|c| c.value().to_owned()) else {
        return new_password_page(&state, &req, StatusCode::BAD_REQUEST, None).await;
    };
    let ctx = state.context(&req);
    match recovery::complete(&state.svc, state.now(), &grant, form.new_password, &ctx).await {
        Ok(()) => {
            let mut c = Context::new();
            c.insert("step", "done");
            let mut resp = reset_page(&state, &req, StatusCode::OK, c)?;
            resp.add_removal_cookie(&state.clear_reset_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            resp.add_removal_cookie(&state.clear_session_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Err(FlowError::Invalid(m)) => {
            new_password_page(&state, &req, StatusCode::BAD_REQUEST, Some(&m)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The "this wasn't me" link of a notice: a page that names the sign-in, with a button.
pub async fn report_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<TokenQuery>,
) -> Result<HttpResponse, WebError> {
    let mut ctx = Context::new();
    match crate::flow::notices::reportable(&state.svc, state.now(), &q.token).await {
        Ok(r) => {
            ctx.insert("step", "confirm");
            ctx.insert("token", &q.token);
            ctx.insert("when", &crate::flow::signin_log::when(r.at));
            ctx.insert("ip", &r.ip.unwrap_or_default());
            state.form_page(&req, StatusCode::OK, "report.html", ctx)
        }
        Err(FlowError::Invalid(m)) => {
            ctx.insert("step", "error");
            ctx.insert("error", &i18n::flow_text(&m));
            state.form_page(&req, StatusCode::BAD_REQUEST, "report.html", ctx)
        }
        Err(e) => Err(e.into()),
    }
}

/// Press "This wasn't me": the report and containment, as from the account page.
pub async fn report_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let ip = state.context(&req).ip;
    let mut ctx = Context::new();
    match crate::flow::notices::report(&state.svc, state.now(), &form.token, ip).await {
        Ok(r) => {
            ctx.insert("step", "done");
            ctx.insert("sessions_ended", &r.sessions_ended);
            let mut resp = state.form_page(&req, StatusCode::OK, "report.html", ctx)?;
            resp.add_removal_cookie(&state.clear_session_cookie())
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Err(FlowError::Invalid(m)) => {
            ctx.insert("step", "error");
            ctx.insert("error", &i18n::flow_text(&m));
            state.form_page(&req, StatusCode::BAD_REQUEST, "report.html", ctx)
        }
        Err(e) => Err(e.into()),
    }
}
