//! The SCIM 2.0 endpoints at `/scim/v2` (RFC 7644): HTTP only. The bearer token is checked
//! like every access token (`oidc::userinfo::verify_access_token`), then `flow::provision`
//! asks enforcement; bodies and filters are read by `scim/`. Every answer, errors included, is
//! `application/scim+json`; nothing a request sends can make it a 5xx but the database.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use crate::flow::provision::{self, ProvisionError, Provisioner, Replacement};
use crate::flow::{enforce::Refusal, FlowError};
use crate::oidc::split_scope;
use crate::oidc::userinfo::verify_access_token;
use crate::scim::{self, filter, resource, Paging, Projection, ScimError};
use crate::store::StoreError;

const CONTENT_TYPE: &str = "application/scim+json";

fn respond(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

fn error(e: &ScimError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = respond(status, &e.body());
    if e.status == 401 {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"vigil\", error=\"invalid_token\""),
        );
    }
    if e.status == 503 {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(super::errors::BUSY_RETRY_SECS),
        );
    }
    r
}

fn from_store(e: StoreError) -> ScimError {
    match e {
        StoreError::NotFound => ScimError::not_found("no such resource"),
        StoreError::Conflict(m) => ScimError::uniqueness(m),
        StoreError::Unavailable(_) | StoreError::Busy | StoreError::Pool(_) => {
            ScimError::unavailable("the database is unavailable; try again shortly")
        }
        other => {
            tracing::error!(error = %other, "scim: store error");
            ScimError::internal("internal error")
        }
    }
}

fn from_provision(e: ProvisionError) -> ScimError {
    match e {
        ProvisionError::Refused(Refusal::Revoked) => {
            ScimError::unauthorized("the token's client is no longer registered")
        }
        ProvisionError::Refused(r) => ScimError::forbidden(r.message()),
        ProvisionError::Invalid(e) => e,
        ProvisionError::Flow(FlowError::Invalid(m)) => ScimError::invalid_value(m),
        ProvisionError::Flow(FlowError::NotFound(_)) => ScimError::not_found("no such resource"),
        // The last active admin is not a uniqueness clash: 409 without a scimType.
        ProvisionError::Flow(FlowError::Conflict(m)) if !m.contains("already exists") => {
            ScimError {
                status: 409,
                scim_type: None,
                detail: m,
            }
        }
        ProvisionError::Flow(FlowError::Conflict(m)) => ScimError::uniqueness(m),
        ProvisionError::Flow(FlowError::Auth(crate::auth::AuthError::WeakPassword(m))) => {
            ScimError::invalid_value(m)
        }
        ProvisionError::Flow(FlowError::Auth(crate::auth::AuthError::Busy)) => {
            ScimError::unavailable("busy; try again shortly")
        }
        ProvisionError::Flow(FlowError::Store(s)) => from_store(s),
        ProvisionError::Flow(other) => {
            tracing::error!(error = %other, "scim: flow error");
            ScimError::internal("internal error")
        }
    }
}

fn base(state: &AppState) -> String {
    format!(
        "{}/scim/v2",
        state.svc.settings.issuer.as_str().trim_end_matches('/')
    )
}

/// The provisioning client behind the request's bearer token, or the SCIM error to answer.
async fn provisioner(state: &AppState, req: &HttpRequest) -> Result<Provisioner, ScimError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .ok_or_else(|| ScimError::unauthorized("a bearer token is required"))?;
    let now = state.now();
    let claims = verify_access_token(&state.svc, now, &token)
        .await
        .map_err(|e| {
            if e.is_unavailable() {
                ScimError::unavailable("the database is unavailable; try again shortly")
            } else {
                ScimError::unauthorized(e.error_description)
            }
        })?;
    // The client's own token (client_credentials: no user, no grant) with the scope.
    let scim_token = claims.sub == claims.client_id
        && claims.grant_id.is_none()
        && split_scope(&claims.scope).iter().any(|s| s == scim::SCOPE);
    let ip = super::client_ip(req, &state.svc.settings.trusted_proxies);
    provision::authorize(&state.svc, now, &claims.client_id, scim_token, ip)
        .await
        .map_err(from_provision)
}

/// Read a JSON body of at most [`scim::MAX_BODY`] bytes.
async fn body(req: &HttpRequest, mut payload: web::Payload) -> Result<Value, ScimError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if !essence.is_empty()
        && !essence.eq_ignore_ascii_case(CONTENT_TYPE)
        && !essence.eq_ignore_ascii_case("application/json")
    {
        return Err(ScimError::unsupported_media(
            "send application/scim+json (or application/json)",
        ));
    }
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ScimError::invalid_syntax("the body could not be read"))?;
        if buf.len() + chunk.len() > scim::MAX_BODY {
            return Err(ScimError::payload_too_large(format!(
                "a body has at most {} bytes",
                scim::MAX_BODY
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&buf)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))
}

/// The list parameters, from the query string or a `.search` body.
#[derive(Debug, Default, Deserialize)]
struct ListParams {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

fn number(v: Option<&str>, name: &str) -> Result<Option<i64>, ScimError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ScimError::invalid_value(format!("`{name}` must be an integer"))),
    }
}

impl ListParams {
    fn from_query(req: &HttpRequest) -> Result<Self, ScimError> {
        serde_urlencoded::from_str(req.query_string())
            .map_err(|e| ScimError::invalid_syntax(format!("bad query: {e}")))
    }

    /// A SearchRequest body (RFC 7644 §3.4.3): lists are comma-joined, numbers may be numbers.
    fn from_search(v: &Value) -> Result<Self, ScimError> {
        let obj = v
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the body must be a JSON object"))?;
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match scim::get(obj, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(Value::Array(items)) => Ok(Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                )),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "`{name}` has the wrong type"
                ))),
            }
        };
        Ok(ListParams {
            filter: text("filter")?,
            start_index: text("startIndex")?,
            count: text("count")?,
            attributes: text("attributes")?,
            excluded_attributes: text("excludedAttributes")?,
        })
    }

    fn paging(&self) -> Result<Paging, ScimError> {
        Ok(Paging::new(
            number(self.start_index.as_deref(), "startIndex")?,
            number(self.count.as_deref(), "count")?,
        ))
    }

    fn projection(&self) -> Projection {
        Projection::new(
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }
}

fn projection_of(req: &HttpRequest) -> Result<Projection, ScimError> {
    Ok(ListParams::from_query(req)?.projection())
}

fn id_of(req: &HttpRequest) -> String {
    req.match_info().get("id").unwrap_or("").to_owned()
}

// --- discovery ------------------------------------------------------------------------------

async fn service_provider_config(state: web::Data<AppState>) -> HttpResponse {
    respond(
        StatusCode::OK,
        &scim::service_provider_config(&base(&state)),
    )
}

fn listed(items: Vec<Value>) -> Value {
    let n = items.len() as i64;
    scim::list_response(n, Paging::new(None, Some(n)), items)
}

async fn resource_types(state: web::Data<AppState>) -> HttpResponse {
    respond(StatusCode::OK, &listed(scim::resource_types(&base(&state))))
}

async fn resource_type(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let id = id_of(&req);
    match scim::resource_types(&base(&state))
        .into_iter()
        .find(|t| t["id"] == Value::String(id.clone()))
    {
        Some(t) => respond(StatusCode::OK, &t),
        None => error(&ScimError::not_found(format!("no resource type `{id}`"))),
    }
}

async fn schemas(state: web::Data<AppState>) -> HttpResponse {
    respond(StatusCode::OK, &listed(scim::schemas(&base(&state))))
}

async fn schema(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let id = id_of(&req);
    match scim::schemas(&base(&state))
        .into_iter()
        .find(|t| t["id"] == Value::String(id.clone()))
    {
        Some(t) => respond(StatusCode::OK, &t),
        None => error(&ScimError::not_found(format!("no schema `{id}`"))),
    }
}

// --- users ----------------------------------------------------------------------------------

async fn list_users_with(
    state: &AppState,
    req: &HttpRequest,
    params: ListParams,
) -> Result<HttpResponse, ScimError> {
    let p = provisioner(state, req).await?;
    let criterion = filter::users(params.filter.as_deref())?;
    let paging = params.paging()?;
    let page = provision::list_users(&state.svc, &p, criterion, paging.offset(), paging.count)
        .await
        .map_err(from_provision)?;
    let (b, proj) = (base(state), params.projection());
    let items = page
        .items
        .iter()
        .map(|(u, g)| proj.apply(resource::user(&b, u, g)))
        .collect();
    Ok(respond(
        StatusCode::OK,
        &scim::list_response(page.total, paging, items),
    ))
}

async fn list_users(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let r = async {
        let params = ListParams::from_query(&req)?;
        list_users_with(&state, &req, params).await
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn search_users(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let r = async {
        let params = ListParams::from_search(&body(&req, payload).await?)?;
        list_users_with(&state, &req, params).await
    };
    r.await.unwrap_or_else(|e| error(&e))
}

fn user_response(
    state: &AppState,
    status: StatusCode,
    v: &provision::UserView,
    proj: &Projection,
) -> HttpResponse {
    let doc = resource::user(&base(state), &v.0, &v.1);
    let mut r = respond(status, &proj.apply(doc));
    if status == StatusCode::CREATED {
        if let Ok(loc) = HeaderValue::from_str(&format!("{}/Users/{}", base(state), v.0.id)) {
            r.headers_mut().insert(header::LOCATION, loc);
        }
    }
    r
}

async fn get_user(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let r = async {
        let p = provisioner(&state, &req).await?;
        let proj = projection_of(&req)?;
        let v = provision::user(&state.svc, &p, &id_of(&req))
            .await
            .map_err(from_provision)?;
        Ok::<_, ScimError>(user_response(&state, StatusCode::OK, &v, &proj))
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn create_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let r = async {
        let p = provisioner(&state, &req).await?;
        let input = resource::user_input(&body(&req, payload).await?)?;
        let v = provision::create_user(&state.svc, &p, state.now(), input)
            .await
            .map_err(from_provision)?;
        Ok::<_, ScimError>(user_response(
            &state,
            StatusCode::CREATED,
            &v,
            &Projection::default(),
        ))
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn replace_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let r = async {
        let p = provisioner(&state, &req).await?;
        let input = resource::user_input(&body(&req, payload).await?)?;
        let with = Replacement::Put(input);
        let v = provision::replace_user(&state.svc, &p, state.now(), &id_of(&req), with)
            .await
            .map_err(from_provision)?;
        Ok::<_, ScimError>(user_response(
            &state,
            StatusCode::OK,
            &v,
            &Projection::default(),
        ))
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn patch_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let r = async {
        let p = provisioner(&state, &req).await?;
        let ops = body(&req, payload).await?;
        let with = Replacement::Patch {
            ops,
            base: base(&state),
        };
        let v = provision::replace_user(&state.svc, &p, state.now(), &id_of(&req), with)
            .await
            .map_err(from_provision)?;
        Ok::<_, ScimError>(user_response(
            &state,
            StatusCode::OK,
            &v,
            &Projection::default(),
        ))
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn delete_user(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let r = async {
        let p = provisioner(&state, &req).await?;
        provision::delete_user(&state.svc, &p, state.now(), &id_of(&req))
            .await
            .map_err(from_provision)?;
        Ok::<_, ScimError>(HttpResponse::NoContent().finish())
    };
    r.await.unwrap_or_else(|e| error(&e))
}

// --- groups ---------------------------------------------------------------------------------

async fn list_groups_with(
    state: &AppState,
    req: &HttpRequest,
    params: ListParams,
) -> Result<HttpResponse, ScimError> {
    let p = provisioner(state, req).await?;
    let criterion = filter::groups(params.filter.as_deref())?;
    let paging = params.paging()?;
    let proj = params.projection();
    let page = provision::list_groups(
        &state.svc,
        &p,
        criterion,
        paging.offset(),
        paging.count,
        proj.wants("members"),
    )
    .await
    .map_err(from_provision)?;
    let b = base(state);
    let items = page
        .items
        .iter()
        .map(|(g, m)| proj.apply(resource::group(&b, g, m.as_deref())))
        .collect();
    Ok(respond(
        StatusCode::OK,
        &scim::list_response(page.total, paging, items),
    ))
}

async fn list_groups(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let r = async {
        let params = ListParams::from_query(&req)?;
        list_groups_with(&state, &req, params).await
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn search_groups(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let r = async {
        let params = ListParams::from_search(&body(&req, payload).await?)?;
        list_groups_with(&state, &req, params).await
    };
    r.await.unwrap_or_else(|e| error(&e))
}

fn group_response(
    state: &AppState,
    status: StatusCode,
    v: &provision::GroupView,
    proj: &Projection,
) -> HttpResponse {
    let doc = resource::group(&base(state), &v.0, v.1.as_deref());
    let mut r = respond(status, &proj.apply(doc));
    if status == StatusCode::CREATED {
        if let Ok(loc) = HeaderValue::from_str(&format!("{}/Groups/{}", base(state), v.0.id)) {
            r.headers_mut().insert(header::LOCATION, loc);
        }
    }
    r
}

async fn get_group(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let r = async {
        let p = provisioner(&state, &req).await?;
        let proj = projection_of(&req)?;
        let v = provision::group(&state.svc, &p, &id_of(&req), proj.wants("members"))
            .await
            .map_err(from_provision)?;
        Ok::<_, ScimError>(group_response(&state, StatusCode::OK, &v, &proj))
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn create_group(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let r = async {
        let p = provisioner(&state, &req).await?;
        let input = resource::group_input(&body(&req, payload).await?)?;
        let v = provision::create_group(&state.svc, &p, state.now(), input)
            .await
            .map_err(from_provision)?;
        Ok::<_, ScimError>(group_response(
            &state,
            StatusCode::CREATED,
            &v,
            &Projection::default(),
        ))
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn replace_group(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let r = async {
        let p = provisioner(&state, &req).await?;
        let input = resource::group_input(&body(&req, payload).await?)?;
        let with = Replacement::Put(input);
        let v = provision::replace_group(&state.svc, &p, state.now(), &id_of(&req), with)
            .await
            .map_err(from_provision)?;
        Ok::<_, ScimError>(group_response(
            &state,
            StatusCode::OK,
            &v,
            &Projection::default(),
        ))
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn patch_group(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let r = async {
        let p = provisioner(&state, &req).await?;
        let ops = body(&req, payload).await?;
        let with = Replacement::Patch {
            ops,
            base: base(&state),
        };
        let v = provision::replace_group(&state.svc, &p, state.now(), &id_of(&req), with)
            .await
            .map_err(from_provision)?;
        Ok::<_, ScimError>(group_response(
            &state,
            StatusCode::OK,
            &v,
            &Projection::default(),
        ))
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn delete_group(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let r = async {
        let p = provisioner(&state, &req).await?;
        provision::delete_group(&state.svc, &p, state.now(), &id_of(&req))
            .await
            .map_err(from_provision)?;
        Ok::<_, ScimError>(HttpResponse::NoContent().finish())
    };
    r.await.unwrap_or_else(|e| error(&e))
}

async fn not_allowed() -> HttpResponse {
    error(&ScimError::method_not_allowed(
        "this method is not supported here",
    ))
}

/// Queries across resource types (RFC 7644 §3.4.2.1, §3.4.3) are not supported: 501, which
/// the RFC asks for (§3.12), so clients know to query `/Users` and `/Groups`.
async fn not_implemented() -> HttpResponse {
    error(&ScimError::not_implemented(
        "query /Users or /Groups; queries across resource types are not supported",
    ))
}

async fn not_found() -> HttpResponse {
    error(&ScimError::not_found("no such SCIM endpoint"))
}

/// `/scim/v2/...`: discovery without a token (RFC 7644 §4), the rest with one.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/scim/v2")
            .service(web::resource("").to(not_implemented))
            .service(web::resource("/").to(not_implemented))
            .service(web::resource("/.search").to(not_implemented))
            .service(
                web::resource("/ServiceProviderConfig")
                    .route(web::get().to(service_provider_config))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/ResourceTypes")
                    .route(web::get().to(resource_types))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/ResourceTypes/{id}")
                    .route(web::get().to(resource_type))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/Schemas")
                    .route(web::get().to(schemas))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/Schemas/{id}")
                    .route(web::get().to(schema))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/Users")
                    .route(web::get().to(list_users))
                    .route(web::post().to(create_user))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/Users/.search")
                    .route(web::post().to(search_users))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/Users/{id}")
                    .route(web::get().to(get_user))
                    .route(web::put().to(replace_user))
                    .route(web::patch().to(patch_user))
                    .route(web::delete().to(delete_user))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/Groups")
                    .route(web::get().to(list_groups))
                    .route(web::post().to(create_group))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/Groups/.search")
                    .route(web::post().to(search_groups))
                    .default_service(web::to(not_allowed)),
            )
            .service(
                web::resource("/Groups/{id}")
                    .route(web::get().to(get_group))
                    .route(web::put().to(replace_group))
                    .route(web::patch().to(patch_group))
                    .route(web::delete().to(delete_group))
                    .default_service(web::to(not_allowed)),
            )
            .default_service(web::to(not_found)),
    );
}
