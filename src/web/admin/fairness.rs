//! `/admin/fairness`: how much friction legitimate users get, by group, beside the overall
//! rate — so a model that keeps challenging one country or device class is seen, not guessed.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tera::Context;

use super::{gate, render, when};
use crate::flow::reports;
use crate::web::errors::WebError;
use crate::web::AppState;

#[derive(Deserialize)]
pub struct FairnessQuery {
    pub days: Option<i64>,
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<FairnessQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, "/admin/fairness").await?);
    let days = q.days.unwrap_or(28).clamp(1, 365);
    let f = reports::fairness(&state.svc, state.now(), days).await?;
    let weeks: Vec<_> = f
        .over_time
        .iter()
        .map(|p| {
            serde_json::json!({
                "from": when(p.week_starting),
                "legit": p.legit,
                "step_up_rate": p.step_up_rate,
                "block_rate": p.block_rate,
                "flagged_groups": p.flagged_groups,
            })
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("f", &f);
    ctx.insert("weeks", &weeks);
    ctx.insert("min_group", &reports::MIN_GROUP);
    ctx.insert("flag_ratio", &reports::FLAG_RATIO);
    render(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        "admin/fairness.html",
        "fairness",
        ctx,
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/fairness", web::get().to(show));
}
