//! `/admin/groups`: groups of users, their members and the roles granted to them (admins
//! only: the `Configuration` part of the console). Every change goes through `flow::access`,
//! which audits it with the admin as actor.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use tera::Context;

use super::{gate, notice_text, readable, render, when, Admin, CsrfForm};
use crate::flow::access::{self, Grantee};
use crate::flow::FlowError;
use crate::web::errors::WebError;
use crate::web::{see_other, AppState};

const HERE: &str = "/admin/groups";

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

/// Every field a string: a bad value is a message on the page, not an extractor 400.
#[derive(Deserialize, Default)]
pub struct GroupForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize, Default)]
pub struct MemberForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub username: String,
    /// `add` or `remove`.
    #[serde(default)]
    pub op: String,
}

#[derive(Deserialize, Default)]
pub struct GrantForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub role: String,
    /// `grant` or `revoke`.
    #[serde(default)]
    pub op: String,
}

fn group_path(id: &str) -> String {
    let enc: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("{HERE}/{enc}")
}

async fn list_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let rows: Vec<_> = access::list_groups(&state.svc)
        .await?
        .into_iter()
        .map(|(g, n)| {
            json!({ "name": g.name, "description": g.description, "members": n,
                    "path": group_path(&g.id), "created": when(g.created_at) })
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("groups", &rows);
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
        "admin/groups.html",
        "groups",
        ctx,
    )
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    let notice = notice_text(q.notice.as_deref());
    list_page(&state, &req, &admin, StatusCode::OK, None, notice).await
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    match access::create_group(
        &state.svc,
        &admin.actor,
        state.now(),
        &form.name,
        &form.description,
    )
    .await
    {
        Ok(g) => Ok(see_other(&format!("{}?notice=created", group_path(&g.id)))),
        Err(e) => {
            let (status, m) = readable(e)?;
            list_page(&state, &req, &admin, status, Some(&m), None).await
        }
    }
}

async fn group_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    id: &str,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let view = match access::group(&state.svc, id).await {
        Ok(v) => v,
        Err(FlowError::NotFound(_)) => return Err(WebError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let mut ctx = Context::new();
    ctx.insert(
        "group",
        &json!({ "name": view.group.name, "description": view.group.description,
                 "created": when(view.group.created_at) }),
    );
    ctx.insert(
        "members",
        &view
            .members
            .iter()
            .map(|(uid, username)| json!({ "username": username, "path": format!("/admin/users/{uid}") }))
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "roles",
        &view
            .roles
            .iter()
            .map(|(client, role)| json!({ "client": client, "role": role }))
            .collect::<Vec<_>>(),
    );
    ctx.insert("path", &group_path(id));
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    if let Some(n) = notice {
        ctx.insert("notice", n);
    }
    render(state, req, admin, status, "admin/group.html", "groups", ctx)
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &group_path(&id)).await?);
    let notice = notice_text(q.notice.as_deref());
    group_page(&state, &req, &admin, &id, StatusCode::OK, None, notice).await
}

/// The group's name, for the flow functions (which take names, as the CLI does).
async fn name_of(state: &AppState, id: &str) -> Result<String, WebError> {
    match access::group(&state.svc, id).await {
        Ok(v) => Ok(v.group.name),
        Err(FlowError::NotFound(_)) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// After a change: back to the group's page with a notice, or the page with the error.
async fn after(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    id: &str,
    result: Result<bool, FlowError>,
) -> Result<HttpResponse, WebError> {
    match result {
        Ok(_) => Ok(see_other(&format!("{}?notice=saved", group_path(id)))),
        Err(e) => {
            let (status, m) = readable(e)?;
            group_page(state, req, admin, id, status, Some(&m), None).await
        }
    }
}

pub async fn members(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &group_path(&id)).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let name = name_of(&state, &id).await?;
    let add = match form.op.as_str() {
        "add" => true,
        "remove" => false,
        _ => return Err(WebError::BadRequest("Choose add or remove.".into())),
    };
    let r = access::set_member(
        &state.svc,
        &admin.actor,
        state.now(),
        &name,
        form.username.trim(),
        add,
    )
    .await;
    after(&state, &req, &admin, &id, r).await
}

pub async fn roles(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<GrantForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &group_path(&id)).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let name = name_of(&state, &id).await?;
    let grant = match form.op.as_str() {
        "grant" => true,
        "revoke" => false,
        _ => return Err(WebError::BadRequest("Choose grant or revoke.".into())),
    };
    let r = access::set_grant(
        &state.svc,
        &admin.actor,
        state.now(),
        form.client_id.trim(),
        form.role.trim(),
        Grantee::Group(name),
        grant,
    )
    .await;
    after(&state, &req, &admin, &id, r).await
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &group_path(&id)).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let name = name_of(&state, &id).await?;
    match access::remove_group(&state.svc, &admin.actor, state.now(), &name).await {
        Ok(()) => Ok(see_other(&format!("{HERE}?notice=deleted"))),
        Err(e) => {
            let (status, m) = readable(e)?;
            group_page(&state, &req, &admin, &id, status, Some(&m), None).await
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(HERE, web::get().to(list))
        .route(HERE, web::post().to(create))
        .route("/admin/groups/{id}", web::get().to(show))
        .route("/admin/groups/{id}/members", web::post().to(members))
        .route("/admin/groups/{id}/roles", web::post().to(roles))
        .route("/admin/groups/{id}/delete", web::post().to(delete));
}
