//! `/admin/keys`: the signing keys and their state; rotating them is a sensitive action.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use tera::Context;

use super::{gate, notice_text, render, when, CsrfForm};
use crate::flow::keys;
use crate::web::errors::WebError;
use crate::web::{see_other, AppState};

const HERE: &str = "/admin/keys";

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    let now = state.now();
    let rows: Vec<_> = keys::list(&state.svc)
        .await?
        .iter()
        .map(|k| {
            json!({
                "kid": k.id,
                "alg": k.alg,
                "state": keys::state(k, now),
                "created": when(k.created_at),
                "rotated": k.rotated_at.map(when),
                "publish_until": k.publish_until.map(when),
            })
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("keys", &rows);
    ctx.insert("grace_secs", &crate::oidc::KEY_GRACE_SECS);
    if let Some(n) = notice_text(q.notice.as_deref()) {
        ctx.insert("notice", n);
    }
    render(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        "admin/keys.html",
        "keys",
        ctx,
    )
}

pub async fn rotate(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    keys::rotate(&state.svc, &admin.actor, state.now()).await?;
    Ok(see_other("/admin/keys?notice=rotated"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(HERE, web::get().to(show))
        .route("/admin/keys/rotate", web::post().to(rotate));
}
