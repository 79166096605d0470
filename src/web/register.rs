//! The registration page (`flow::registration`; `VIGIL_REGISTRATION`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use tera::Context;

use super::errors::WebError;
use super::i18n;
use super::AppState;
use crate::config::Registration as Mode;
use crate::flow::registration::{self, Registered, Registration};
use crate::flow::FlowError;

#[derive(Deserialize)]
pub struct RegisterQuery {
    #[serde(default)]
    pub invite: String,
}

fn page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    ctx: Context,
) -> Result<HttpResponse, WebError> {
    state.form_page(req, status, "register.html", ctx)
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<RegisterQuery>,
) -> Result<HttpResponse, WebError> {
    let mut ctx = Context::new();
    let mode = registration::mode(&state.svc);
    let invite = q.invite.trim();
    if invite.is_empty() {
        if mode != Mode::Open {
            ctx.insert("closed", &true);
            return page(&state, &req, StatusCode::NOT_FOUND, ctx);
        }
        return page(&state, &req, StatusCode::OK, ctx);
    }
    if mode == Mode::Off {
        ctx.insert("closed", &true);
        return page(&state, &req, StatusCode::NOT_FOUND, ctx);
    }
    match registration::invitation(&state.svc, state.now(), invite).await {
        Ok(email) => {
            ctx.insert("invite", invite);
            ctx.insert("email", &email);
            page(&state, &req, StatusCode::OK, ctx)
        }
        Err(FlowError::Invalid(m)) => {
            ctx.insert("closed", &true);
            ctx.insert("error", &i18n::flow_text(&m));
            page(&state, &req, StatusCode::BAD_REQUEST, ctx)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub password: SecretString,
    #[serde(default)]
    pub invite: String,
}

pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<RegisterForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let form = form.into_inner();
    if [&form.username, &form.email, &form.name, &form.invite]
        .iter()
        .any(|v| v.contains('\0') || v.len() > 300)
    {
        return Err(WebError::BadRequest(i18n::t("register-malformed")));
    }
    let mut ctx = Context::new();
    ctx.insert("username", &form.username);
    ctx.insert("email", &form.email);
    ctx.insert("name", &form.name);
    if !form.invite.is_empty() {
        ctx.insert("invite", &form.invite);
    }
    let r = Registration {
        username: form.username,
        email: form.email,
        name: form.name,
        password: form.password,
        invite: Some(form.invite).filter(|i| !i.is_empty()),
    };
    match registration::register(&state.svc, state.now(), r, &state.context(&req)).await {
        Ok(done) => {
            let mut c = Context::new();
            c.insert(
                "done",
                match done {
                    Registered::Ready => "ready",
                    Registered::VerifyEmail => "verify",
                    Registered::Held => "held",
                },
            );
            page(&state, &req, StatusCode::OK, c)
        }
        Err(FlowError::Invalid(m)) => {
            ctx.insert("error", &i18n::flow_text(&m));
            page(&state, &req, StatusCode::BAD_REQUEST, ctx)
        }
        Err(e) => Err(e.into()),
    }
}
