//! `/admin/review`: the review queue. Open items with their explanation and the recommended
//! verdict, one form each ("legitimate" or "attack", optionally locking the account); decided
//! items below with who decided and when.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tera::Context;

use super::{gate, notice_text, render, Admin};
use crate::flow::review::{self, Verdict};
use crate::flow::FlowError;
use crate::web::errors::WebError;
use crate::web::{see_other, AppState};

const HERE: &str = "/admin/review";

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
    /// The open queue's page cursor (`Queue::next` of the page before).
    pub after: Option<String>,
}

/// One verdict. Text fields throughout: a bad value is a readable message.
#[derive(Deserialize)]
pub struct VerdictForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub review_id: String,
    #[serde(default)]
    pub verdict: String,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

async fn page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
    page: Option<review::PageCursor>,
) -> Result<HttpResponse, WebError> {
    let q = review::queue(&state.svc, page).await?;
    let mut ctx = Context::new();
    ctx.insert("q", &q);
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    if let Some(n) = notice {
        ctx.insert("notice", n);
    }
    render(
        state,
        req,
        admin,
        status,
        "admin/review.html",
        "review",
        ctx,
    )
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    let notice = notice_text(q.notice.as_deref());
    let cursor = q.after.as_deref().and_then(review::PageCursor::parse);
    page(&state, &req, &admin, StatusCode::OK, None, notice, cursor).await
}

pub async fn decide(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<VerdictForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let lock = matches!(form.lock.as_deref(), Some("on" | "1" | "true"));
    let verdict = match form.verdict.as_str() {
        "legitimate" => Verdict::Legitimate,
        "attack" => Verdict::Attack { lock },
        _ => {
            return page(
                &state,
                &req,
                &admin,
                StatusCode::BAD_REQUEST,
                Some("Choose \"legitimate\" or \"attack\"."),
                None,
                None,
            )
            .await
        }
    };
    match review::decide(
        &state.svc,
        &admin.actor,
        state.now(),
        form.review_id.trim(),
        verdict,
        form.note.clone(),
    )
    .await
    {
        Ok(()) => Ok(see_other("/admin/review?notice=verdict")),
        Err(FlowError::Conflict(m)) => {
            page(
                &state,
                &req,
                &admin,
                StatusCode::CONFLICT,
                Some(&m),
                None,
                None,
            )
            .await
        }
        Err(FlowError::Invalid(m)) => {
            page(
                &state,
                &req,
                &admin,
                StatusCode::BAD_REQUEST,
                Some(&m),
                None,
                None,
            )
            .await
        }
        Err(FlowError::NotFound(_)) => {
            page(
                &state,
                &req,
                &admin,
                StatusCode::NOT_FOUND,
                Some("There is no such review (it may belong to a deleted user)."),
                None,
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // A form the extractor cannot read is a readable 400 page, not its plain-text answer.
    let form = web::FormConfig::default().error_handler(|e, _| {
        WebError::BadRequest(format!(
            "This form cannot be read ({e}). Go back, reload the page and try again."
        ))
        .into()
    });
    cfg.service(
        web::resource(HERE)
            .app_data(form)
            .route(web::get().to(show))
            .route(web::post().to(decide)),
    );
}
