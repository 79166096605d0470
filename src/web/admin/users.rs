//! `/admin/users`: search and create accounts; `/admin/users/{id}`: one account's devices,
//! locations, factors, sessions and sign-in history with each sign-in's risk, and the actions
//! (disable/enable, reset password, remove factors, unlock, end sessions, change the role,
//! delete). Deleting is a sensitive action (recent sign-in required).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use tera::Context;

use super::{gate, notice_text, render, when, Admin, CsrfForm};
use crate::flow::accounts::{self, AdminNewAccount, FactorChoice};
use crate::flow::FlowError;
use crate::store::{self, StoreError};
use crate::web::errors::WebError;
use crate::web::{see_other, AppState};

const HERE: &str = "/admin/users";
/// Rows on the list page (search narrows it).
const LIST_LIMIT: i64 = 200;
/// Sign-ins shown on a user's page.
const HISTORY: i64 = 50;
/// Sign-ins read to find the user's devices and locations.
const KNOWN_FROM: i64 = 500;

#[derive(Deserialize)]
pub struct ListQuery {
    pub q: Option<String>,
    pub notice: Option<String>,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

/// The create form. Strings, so that bad input is a readable message, not an extractor 400.
#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub is_admin: Option<String>,
    /// Empty: generate one.
    #[serde(default)]
    pub password: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub csrf_token: String,
    /// Empty: generate one.
    #[serde(default)]
    pub password: String,
}

#[derive(Deserialize)]
pub struct FactorForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub factor: String,
}

fn user_path(id: &str) -> String {
    format!("/admin/users/{}", urlencoding(id))
}

/// Ids are UUIDs, but a path must never be able to smuggle anything into a Location header.
fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn checked(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("on" | "1" | "true"))
}

fn typed_password(s: &str) -> Option<SecretString> {
    (!s.is_empty()).then(|| SecretString::from(s.to_owned()))
}

/// A flow refusal a person can act on becomes the page again with the message (400); the
/// rest is an error page.
fn readable(e: FlowError) -> Result<String, WebError> {
    match e {
        FlowError::Invalid(m) | FlowError::Conflict(m) => Ok(m),
        other => Err(other.into()),
    }
}

// --- the list ---------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)] // the page, its status, the search, the form and two messages
async fn list_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    status: StatusCode,
    q: &str,
    form: Option<&CreateForm>,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let users = accounts::search(&state.svc, q, LIST_LIMIT).await?;
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let staff = crate::flow::access::console_holders(&state.svc, ids).await?;
    let rows: Vec<Value> = users
        .iter()
        .map(|u| {
            let console: Vec<&str> = staff
                .iter()
                .filter(|(id, _)| *id == u.id)
                .map(|(_, r)| r.as_str())
                .collect();
            json!({
                "id": u.id, "path": user_path(&u.id), "username": u.username, "email": u.email,
                "name": u.name, "is_admin": console.contains(&"admin"), "console": console,
                "disabled": u.disabled, "registration": u.registration,
                "must_change_password": u.must_change_password, "created": when(u.created_at),
            })
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("users", &rows);
    ctx.insert("q", q);
    ctx.insert("limit", &LIST_LIMIT);
    let f = form.map(|f| {
        json!({ "username": f.username, "email": f.email, "name": f.name, "is_admin": checked(&f.is_admin) })
    });
    ctx.insert(
        "form",
        &f.unwrap_or_else(|| json!({"username": "", "email": "", "name": "", "is_admin": false})),
    );
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    if let Some(n) = notice {
        ctx.insert("notice", n);
    }
    render(state, req, admin, status, "admin/users.html", "users", ctx)
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    let query = q.q.clone().unwrap_or_default();
    let notice = notice_text(q.notice.as_deref());
    list_page(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        &query,
        None,
        None,
        notice,
    )
    .await
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub email: String,
}

/// Mail an invitation to register (`VIGIL_REGISTRATION=invite` or `open`).
pub async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    match crate::flow::registration::invite(&state.svc, &admin.actor, state.now(), &form.email)
        .await
    {
        Ok(()) => Ok(see_other("/admin/users?notice=invited")),
        Err(e) => {
            let msg = readable(e)?;
            list_page(
                &state,
                &req,
                &admin,
                StatusCode::BAD_REQUEST,
                "",
                None,
                Some(&msg),
                None,
            )
            .await
        }
    }
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let f = form.into_inner();
    let result = accounts::admin_create(
        &state.svc,
        &admin.actor,
        state.now(),
        AdminNewAccount {
            username: f.username.clone(),
            email: f.email.clone(),
            name: f.name.clone(),
            is_admin: checked(&f.is_admin),
            password: typed_password(&f.password),
        },
    )
    .await;
    match result {
        Ok((user, generated)) => {
            user_page(
                &state,
                &req,
                &admin,
                StatusCode::OK,
                &user.id,
                None,
                notice_text(Some("created")),
                generated.as_ref(),
            )
            .await
        }
        Err(e) => {
            let msg = readable(e)?;
            list_page(
                &state,
                &req,
                &admin,
                StatusCode::BAD_REQUEST,
                "",
                Some(&f),
                Some(&msg),
                None,
            )
            .await
        }
    }
}

// --- one user ---------------------------------------------------------------------------------

/// "Browser on OS (type)" from the stored features, else the raw User-Agent, shortened.
fn device_of(features: &Value, user_agent: Option<&str>) -> String {
    let ua = &features["ua"];
    match (ua["browser_family"].as_str(), ua["os_family"].as_str()) {
        (Some(b), Some(o)) => {
            let kind = ua["device_type"].as_str().unwrap_or("other");
            format!("{b} on {o} ({kind})")
        }
        _ => match user_agent {
            Some(s) if !s.is_empty() => s.chars().take(60).collect(),
            _ => "Unknown device".into(),
        },
    }
}

/// "City, CC" from the stored features (the place GeoIP gave at the time).
fn place_of(features: &Value) -> Option<String> {
    let geo = &features["geo"];
    match (geo["city"].as_str(), geo["country"].as_str()) {
        (Some(city), Some(cc)) => Some(format!("{city}, {cc}")),
        (None, Some(cc)) => Some(cc.to_owned()),
        _ => None,
    }
}

fn network_of(features: &Value) -> Option<String> {
    let geo = &features["geo"];
    let asn = geo["asn"].as_u64()?;
    Some(match geo["asn_org"].as_str() {
        Some(org) => format!("AS{asn} {org}"),
        None => format!("AS{asn}"),
    })
}

fn reasons_of(raw: Option<&str>) -> Vec<String> {
    raw.and_then(|r| serde_json::from_str::<Vec<Value>>(r).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

/// Everything the user page shows, read in one go.
fn user_data(
    c: &mut store::DbConn,
    uid: &str,
    now: i64,
    throttle_since: i64,
) -> Result<Option<Value>, StoreError> {
    use store::{factors, sessions, signins, throttle, users};
    let Some(u) = users::find(c, uid)? else {
        return Ok(None);
    };
    let profile: Option<crate::risk::UserProfile> =
        store::risk::profile(c, uid)?.and_then(|p| serde_json::from_str(&p).ok());
    let failures = throttle::account_failures(
        c,
        &crate::flow::login::account_key(&u.username),
        throttle_since,
    )?;
    let totp = factors::totp_for(c, uid)?
        .map(|t| json!({ "created": when(t.created_at), "last_used": t.last_used_at.map(when) }));
    let passkeys: Vec<Value> = factors::passkeys_for(c, uid)?
        .into_iter()
        .map(|p| json!({ "id": p.id, "name": p.name, "created": when(p.created_at), "last_used": p.last_used_at.map(when) }))
        .collect();
    let recovery_left = factors::recovery_codes_left(c, uid)?;
    let groups: Vec<Value> = store::access::groups_of(c, uid)?
        .into_iter()
        .map(|g| json!({ "name": g.name, "id": g.id }))
        .collect();
    let effective = store::access::effective_roles(c, uid)?;
    let console: Vec<String> = effective
        .iter()
        .filter(|(client, _, _)| client == store::access::CONSOLE_CLIENT)
        .map(|(_, r, _)| r.name.clone())
        .collect();
    let roles: Vec<Value> = effective
        .iter()
        .map(|(client, r, via)| {
            json!({ "client": client, "role": r.name, "privileged": r.privileged, "via": via })
        })
        .collect();
    let live: Vec<Value> = sessions::list_live_for_user(c, uid, now)?
        .into_iter()
        .map(|s| {
            json!({
                "created": when(s.created_at), "last_seen": when(s.last_seen_at), "ip": s.ip,
                "device": device_of(&Value::Null, s.user_agent.as_deref()), "acr": s.acr,
            })
        })
        .collect();

    // Devices and locations from the verified sign-ins (what the risk profile learned from).
    let rows = signins::recent_for_user(c, uid, KNOWN_FROM)?;
    let mut devices: BTreeMap<String, (String, i64, i64, u32, Option<String>)> = BTreeMap::new();
    let mut places: BTreeMap<String, (i64, u32, Vec<String>)> = BTreeMap::new();
    let mut history = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let features: Value = r
            .features
            .as_deref()
            .and_then(|f| serde_json::from_str(f).ok())
            .unwrap_or(Value::Null);
        let device = device_of(&features, r.user_agent.as_deref());
        let place = place_of(&features);
        if i < HISTORY as usize {
            history.push(json!({
                "id": r.id,
                "path": format!("/admin/signins/{}", urlencoding(&r.id)),
                "at": when(r.at), "method": r.method, "outcome": r.outcome, "ip": r.ip,
                "place": place.clone().unwrap_or_else(|| "—".into()),
                "network": network_of(&features),
                "device": device,
                "score": r.score, "level": r.level, "decision": r.decision,
                "reasons": reasons_of(r.reasons.as_deref()),
            }));
        }
        if r.outcome != "success" && r.outcome != "step_up_passed" {
            continue;
        }
        let key = r
            .device_id
            .clone()
            .unwrap_or_else(|| format!("ua:{device}"));
        let d = devices
            .entry(key)
            .or_insert((device.clone(), r.at, r.at, 0, r.device_id.clone()));
        d.1 = d.1.min(r.at);
        d.2 = d.2.max(r.at);
        d.3 += 1;
        let p = places
            .entry(place.unwrap_or_else(|| "Unknown place".into()))
            .or_insert((r.at, 0, Vec::new()));
        p.0 = p.0.max(r.at);
        p.1 += 1;
        if let Some(n) = network_of(&features) {
            if !p.2.contains(&n) && p.2.len() < 5 {
                p.2.push(n);
            }
        }
    }
    let mut devices: Vec<_> = devices.into_values().collect();
    devices.sort_by_key(|d| std::cmp::Reverse(d.2));
    let devices: Vec<Value> = devices
        .into_iter()
        .map(|(label, first, last, n, cookie)| {
            let trusted = match (&profile, cookie.as_deref()) {
                (Some(p), Some(c)) => p.knows_cookie(c),
                _ => false,
            };
            json!({ "label": label, "first": when(first), "last": when(last), "count": n, "cookie": cookie.is_some(), "trusted": trusted })
        })
        .collect();
    let mut places: Vec<_> = places.into_iter().collect();
    places.sort_by_key(|p| std::cmp::Reverse(p.1 .0));
    let places: Vec<Value> = places
        .into_iter()
        .map(|(name, (last, n, networks))| json!({ "place": name, "last": when(last), "count": n, "networks": networks }))
        .collect();

    Ok(Some(json!({
        "user": {
            "id": u.id, "username": u.username, "email": u.email, "name": u.name,
            "is_admin": console.iter().any(|r| r == "admin"), "console": console,
            "disabled": u.disabled,
            "must_change_password": u.must_change_password,
            "registration": u.registration, "email_verified": u.email_verified,
            "risk_state": u.risk_state, "risk_since": u.risk_state_at.map(when),
            "created": when(u.created_at), "updated": when(u.updated_at),
        },
        "failures": failures,
        "profile": profile.map(|p| json!({
            "verified": p.lifetime,
            "last_verified": p.last_verified_at.map(|t| when(t.micros())),
        })),
        "totp": totp,
        "passkeys": passkeys,
        "recovery_left": recovery_left,
        "sessions": live,
        "devices": devices,
        "places": places,
        "signins": history,
        "groups": groups,
        "roles": roles,
    })))
}

#[allow(clippy::too_many_arguments)] // the page, its status, and the three optional messages
async fn user_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    status: StatusCode,
    id: &str,
    error: Option<&str>,
    notice: Option<&str>,
    password: Option<&SecretString>,
) -> Result<HttpResponse, WebError> {
    let now = state.now();
    let since = now
        .minus_secs(state.svc.settings.throttle.window_secs)
        .micros();
    let uid = id.to_owned();
    let data = state
        .svc
        .db
        .run(move |c| user_data(c, &uid, now.micros(), since))
        .await
        .map_err(FlowError::from)?
        .ok_or(WebError::NotFound)?;
    let mut ctx = Context::new();
    for key in [
        "user",
        "failures",
        "profile",
        "totp",
        "passkeys",
        "recovery_left",
        "sessions",
        "devices",
        "places",
        "signins",
        "groups",
        "roles",
    ] {
        ctx.insert(key, &data[key]);
    }
    ctx.insert("path", &user_path(id));
    ctx.insert("is_self", &(admin.user.id == id));
    ctx.insert(
        "throttle_limit",
        &state.svc.settings.throttle.account_failures,
    );
    if let Some(p) = password {
        ctx.insert("temporary_password", p.expose_secret());
    }
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    if let Some(n) = notice {
        ctx.insert("notice", n);
    }
    render(state, req, admin, status, "admin/user.html", "users", ctx)
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &user_path(&id)).await?);
    let notice = notice_text(q.notice.as_deref());
    user_page(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        &id,
        None,
        notice,
        None,
    )
    .await
}

/// The end of every action: back to the user's page with a notice, or the page again with the
/// reason it was refused.
async fn done(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    id: &str,
    result: Result<(), FlowError>,
    notice: &str,
) -> Result<HttpResponse, WebError> {
    match result {
        Ok(()) => Ok(see_other(&format!("{}?notice={notice}", user_path(id)))),
        Err(e) => {
            let msg = readable(e)?;
            user_page(
                state,
                req,
                admin,
                StatusCode::BAD_REQUEST,
                id,
                Some(&msg),
                None,
                None,
            )
            .await
        }
    }
}

/// Gate and CSRF for an action on `/admin/users/{id}/…`.
async fn admit(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    csrf_token: &str,
) -> Result<Result<Admin, HttpResponse>, WebError> {
    let admin = match gate(state, req, &user_path(id)).await? {
        Ok(a) => a,
        Err(r) => return Ok(Err(r)),
    };
    state.csrf.verify(req, csrf_token)?;
    Ok(Ok(admin))
}

macro_rules! simple_action {
    ($name:ident, $notice:literal, |$svc:ident, $actor:ident, $now:ident, $id:ident| $body:expr) => {
        pub async fn $name(
            state: web::Data<AppState>,
            req: HttpRequest,
            path: web::Path<String>,
            form: web::Form<CsrfForm>,
        ) -> Result<HttpResponse, WebError> {
            let $id = path.into_inner();
            let admin = or_respond!(admit(&state, &req, &$id, &form.csrf_token).await?);
            let ($svc, $actor, $now) = (&state.svc, &admin.actor, state.now());
            let result = $body.await.map(|_| ());
            done(&state, &req, &admin, &$id, result, $notice).await
        }
    };
}

simple_action!(disable, "disabled", |svc, actor, now, id| {
    accounts::admin_set_disabled(svc, actor, now, &id, true)
});
simple_action!(enable, "enabled", |svc, actor, now, id| {
    accounts::admin_set_disabled(svc, actor, now, &id, false)
});
simple_action!(dismiss_risk, "risk", |svc, actor, now, id| {
    accounts::dismiss_risk(svc, actor, now, &id)
});
simple_action!(approve_registration, "approved", |svc, actor, now, id| {
    crate::flow::registration::approve(svc, actor, now, &id)
});
simple_action!(unlock, "unlocked", |svc, actor, now, id| {
    accounts::unlock(svc, actor, now, &id)
});
simple_action!(end_sessions, "sessions", |svc, actor, now, id| {
    accounts::end_sessions(svc, actor, now, &id)
});
simple_action!(promote, "promoted", |svc, actor, now, id| {
    accounts::set_role(svc, actor, now, &id, true)
});
simple_action!(demote, "demoted", |svc, actor, now, id| {
    accounts::set_role(svc, actor, now, &id, false)
});

pub async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(admit(&state, &req, &id, &form.csrf_token).await?);
    let typed = typed_password(&form.password);
    match accounts::reset_password(&state.svc, &admin.actor, state.now(), &id, typed).await {
        // A generated password is shown on this response only, never in a URL.
        Ok(Some(generated)) => {
            user_page(
                &state,
                &req,
                &admin,
                StatusCode::OK,
                &id,
                None,
                notice_text(Some("password")),
                Some(&generated),
            )
            .await
        }
        Ok(None) => done(&state, &req, &admin, &id, Ok(()), "password").await,
        Err(e) => done(&state, &req, &admin, &id, Err(e), "password").await,
    }
}

pub async fn remove_factors(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<FactorForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(admit(&state, &req, &id, &form.csrf_token).await?);
    let result = match FactorChoice::parse(&form.factor) {
        Ok(which) => {
            accounts::remove_factors(&state.svc, &admin.actor, state.now(), &id, which).await
        }
        Err(e) => Err(e),
    };
    done(&state, &req, &admin, &id, result, "factors").await
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(admit(&state, &req, &id, &form.csrf_token).await?);
    match accounts::delete(&state.svc, &admin.actor, state.now(), &id).await {
        Ok(()) => Ok(see_other("/admin/users?notice=deleted")),
        Err(e) => done(&state, &req, &admin, &id, Err(e), "deleted").await,
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(HERE, web::get().to(list))
        .route(HERE, web::post().to(create))
        .route("/admin/users/{id}", web::get().to(show))
        .route("/admin/users/{id}/disable", web::post().to(disable))
        .route("/admin/users/{id}/enable", web::post().to(enable))
        .route("/admin/users/{id}/password", web::post().to(reset_password))
        .route("/admin/users/{id}/factors", web::post().to(remove_factors))
        .route("/admin/users/{id}/unlock", web::post().to(unlock))
        .route(
            "/admin/users/{id}/approve",
            web::post().to(approve_registration),
        )
        .route("/admin/invitations", web::post().to(invite))
        .route(
            "/admin/users/{id}/risk/dismiss",
            web::post().to(dismiss_risk),
        )
        .route("/admin/users/{id}/sessions", web::post().to(end_sessions))
        .route("/admin/users/{id}/promote", web::post().to(promote))
        .route("/admin/users/{id}/demote", web::post().to(demote))
        .route("/admin/users/{id}/delete", web::post().to(delete));
}
