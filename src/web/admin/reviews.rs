//! `/admin/reviews`: access reviews. The list of campaigns with their progress and (admins) a
//! form to open one; a campaign's page lists its items with the recommendation and evidence,
//! decided in bulk (tick items, then keep, remove, or follow the recommendations) or one by one
//! (tick one); a CSV export of the decisions for auditors. Who may decide is the campaign's
//! (enforcement's `Area::AccessReview`, weighed in [`gate`]); `flow::campaigns` does the rest.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use tera::Context;

use super::{gate, readable, render, when, Admin, CsrfForm};
use crate::flow::campaigns::{self, NewCampaign, Scope, KEEP, REMOVE};
use crate::flow::enforce::Area;
use crate::flow::FlowError;
use crate::web::errors::WebError;
use crate::web::{see_other, AppState};

const HERE: &str = "/admin/reviews";

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

/// Every field a string: a bad value is a message on the page.
#[derive(Deserialize, Default)]
pub struct CampaignForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub reviewers: String,
    #[serde(default)]
    pub deadline_days: String,
    #[serde(default)]
    pub undecided: String,
}

fn path_of(id: &str) -> String {
    let enc: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("{HERE}/{enc}")
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "created" => "The review is open. Reviewers can decide its items now.",
        "decided" => "Decisions recorded and carried out.",
        "closed" => "The review is closed; undecided items got its default.",
        _ => return None,
    })
}

async fn list_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<HttpResponse, WebError> {
    // Each viewer sees the campaigns they may open (enforcement's rule for the area).
    let rows: Vec<_> = campaigns::list(&state.svc)
        .await?
        .into_iter()
        .filter(|(c, ..)| {
            let helpdesk = campaigns::helpdesk_reviews(c);
            admin.console.may(Area::AccessReview { helpdesk }, false)
        })
        .map(|(c, n, d)| {
            json!({
                "name": c.name, "path": path_of(&c.id), "scope": c.scope,
                "target": c.scope_target, "reviewers": c.reviewers,
                "deadline": when(c.deadline), "open": c.closed_at.is_none(),
                "items": n, "decided": d, "undecided": c.undecided,
            })
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("campaigns", &rows);
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
        "admin/reviews.html",
        "reviews",
        ctx,
    )
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    list_page(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        None,
        notice(q.notice.as_deref()),
    )
    .await
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CampaignForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let parsed = Scope::parse(&form.scope, &form.target).and_then(|scope| {
        let days = form
            .deadline_days
            .trim()
            .parse::<i64>()
            .map_err(|_| "The deadline is a number of days.".to_owned())?;
        Ok(NewCampaign {
            name: form.name.clone(),
            scope,
            helpdesk_reviews: form.reviewers == "helpdesk",
            deadline_days: days,
            remove_undecided: form.undecided == REMOVE,
        })
    });
    let result = match parsed {
        Ok(new) => campaigns::create(&state.svc, &admin.actor, state.now(), new).await,
        Err(m) => Err(FlowError::Invalid(m)),
    };
    match result {
        Ok(c) => Ok(see_other(&format!("{}?notice=created", path_of(&c.id)))),
        Err(e) => {
            let (status, m) = readable(e)?;
            list_page(&state, &req, &admin, status, Some(&m), None).await
        }
    }
}

async fn campaign_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    id: &str,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let v = match campaigns::view(&state.svc, id).await {
        Ok(v) => v,
        Err(FlowError::NotFound(_)) => return Err(WebError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let items: Vec<_> = v
        .items
        .iter()
        .map(|i| {
            let what = match (&i.client_id, &i.role, &i.group_name) {
                (Some(c), Some(r), _) => format!("{c} / {r}"),
                (_, _, Some(g)) => format!("member of {g}"),
                _ => "the account".to_owned(),
            };
            json!({
                "id": i.id, "username": i.username, "what": what, "privileged": i.privileged,
                "recommendation": i.recommendation, "evidence": i.evidence,
                "decision": i.decision, "followed": i.followed,
                "decided_at": i.decided_at.map(when),
            })
        })
        .collect();
    let c = &v.campaign;
    let mut ctx = Context::new();
    ctx.insert(
        "campaign",
        &json!({
            "name": c.name, "scope": c.scope, "target": c.scope_target,
            "reviewers": c.reviewers, "deadline": when(c.deadline), "undecided": c.undecided,
            "created": when(c.created_at), "closed": c.closed_at.map(when), "open": v.open,
            "items": v.items.len(), "decided": v.decided,
        }),
    );
    ctx.insert("items", &items);
    ctx.insert("path", &path_of(id));
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
        "admin/access_review.html",
        "reviews",
        ctx,
    )
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &path_of(&id)).await?);
    let n = notice(q.notice.as_deref());
    campaign_page(&state, &req, &admin, &id, StatusCode::OK, None, n).await
}

/// The decision form: `csrf_token`, one `item` per ticked row, and `decision` = `keep`,
/// `remove` or `recommended` (each ticked item gets its own recommendation). Read by hand:
/// repeated fields are a list here.
pub async fn decide(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &path_of(&id)).await?);
    let mut csrf = String::new();
    let mut picked: Vec<String> = Vec::new();
    let mut decision = String::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf_token" => csrf = v.into_owned(),
            "item" => picked.push(v.into_owned()),
            "decision" => decision = v.into_owned(),
            _ => {}
        }
    }
    state.csrf.verify(&req, &csrf)?;
    let decisions = match decision.as_str() {
        KEEP | REMOVE => Ok(picked
            .into_iter()
            .map(|i| (i, decision.clone()))
            .collect::<Vec<_>>()),
        "recommended" => match campaigns::view(&state.svc, &id).await {
            Ok(v) => Ok(picked
                .into_iter()
                .map(|i| {
                    let rec = v
                        .items
                        .iter()
                        .find(|x| x.id == i)
                        .map(|x| x.recommendation.clone())
                        .unwrap_or_else(|| KEEP.into());
                    (i, rec)
                })
                .collect()),
            Err(e) => Err(e),
        },
        _ => Err(FlowError::Invalid(
            "Choose keep, remove or the recommendations.".into(),
        )),
    };
    let result = match decisions {
        Ok(d) => {
            campaigns::decide(&state.svc, &admin.actor, admin.console, state.now(), &id, d).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("{}?notice=decided", path_of(&id)))),
        Err(FlowError::NotFound(_)) if campaigns::view(&state.svc, &id).await.is_err() => {
            Err(WebError::NotFound)
        }
        Err(e) => {
            let (status, m) = readable(e)?;
            campaign_page(&state, &req, &admin, &id, status, Some(&m), None).await
        }
    }
}

pub async fn close(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &path_of(&id)).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    match campaigns::close(&state.svc, &admin.actor, state.now(), &id).await {
        Ok(_) => Ok(see_other(&format!("{}?notice=closed", path_of(&id)))),
        Err(FlowError::NotFound(_)) => Err(WebError::NotFound),
        Err(e) => {
            let (status, m) = readable(e)?;
            campaign_page(&state, &req, &admin, &id, status, Some(&m), None).await
        }
    }
}

pub async fn export(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let here = format!("{}/export.csv", path_of(&id));
    let _admin = or_respond!(gate(&state, &req, &here).await?);
    let v = match campaigns::view(&state.svc, &id).await {
        Ok(v) => v,
        Err(FlowError::NotFound(_)) => return Err(WebError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let body = campaigns::csv(&v)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"access-review.csv\"",
        ))
        .body(body))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(HERE, web::get().to(list))
        .route(HERE, web::post().to(create))
        .route("/admin/reviews/{id}", web::get().to(show))
        .route("/admin/reviews/{id}", web::post().to(decide))
        .route("/admin/reviews/{id}/close", web::post().to(close))
        .route("/admin/reviews/{id}/export.csv", web::get().to(export));
}
