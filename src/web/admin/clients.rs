//! `/admin/clients`: the relying parties, and a form to register one; `/admin/clients/{id}`:
//! edit everything but the id, rotate the secret, delete. A generated secret is shown once, on
//! the response to the form that made it, never in a URL. Deleting is a sensitive action.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use tera::Context;

use super::{gate, notice_text, render, when, Admin, CsrfForm};
use crate::flow::access::{self, Grantee};
use crate::flow::clients::{self, ClientSettings, GRANTS};
use crate::flow::FlowError;
use crate::store::access::Holder;
use crate::store::clients::Client;
use crate::web::errors::WebError;
use crate::web::{see_other, AppState};

const HERE: &str = "/admin/clients";

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

/// The create and edit form. Every field is a string (checkboxes: present or not), so that bad
/// input is a readable message on the form rather than an extractor 400.
#[derive(Deserialize, Default, Clone)]
pub struct ClientForm {
    #[serde(default)]
    pub csrf_token: String,
    /// Only on the create form; the id never changes.
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub name: String,
    /// One per line.
    #[serde(default)]
    pub redirect_uris: String,
    /// One per line.
    #[serde(default)]
    pub post_logout_redirect_uris: String,
    /// `confidential` or `public`.
    #[serde(default)]
    pub client_type: String,
    #[serde(default)]
    pub first_party: Option<String>,
    #[serde(default)]
    pub grant_authorization_code: Option<String>,
    #[serde(default)]
    pub grant_refresh_token: Option<String>,
    #[serde(default)]
    pub grant_client_credentials: Option<String>,
    /// `required` or `optional`.
    #[serde(default)]
    pub pkce: String,
    #[serde(default)]
    pub id_token_alg: String,
    #[serde(default)]
    pub access_token_alg: String,
    #[serde(default)]
    pub backchannel_logout_uri: String,
    /// Empty: no minimum.
    #[serde(default)]
    pub min_acr: String,
    /// Both empty: the global thresholds.
    #[serde(default)]
    pub risk_medium: String,
    #[serde(default)]
    pub risk_high: String,
    /// Only users holding one of the client's roles may sign in.
    #[serde(default)]
    pub require_role: Option<String>,
    /// Seconds; empty: vigil's default.
    #[serde(default)]
    pub privileged_max_age: String,
    /// May provision users and groups through SCIM.
    #[serde(default)]
    pub provisioning: Option<String>,
}

fn on(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("on" | "1" | "true"))
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn optional(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

impl ClientForm {
    fn settings(&self) -> Result<ClientSettings, FlowError> {
        let public = match self.client_type.as_str() {
            "public" => true,
            "confidential" | "" => false,
            _ => return Err(FlowError::Invalid("Choose confidential or public.".into())),
        };
        let grants: Vec<String> = [
            (&self.grant_authorization_code, "authorization_code"),
            (&self.grant_refresh_token, "refresh_token"),
            (&self.grant_client_credentials, "client_credentials"),
        ]
        .into_iter()
        .filter(|(v, _)| on(v))
        .map(|(_, g)| g.to_owned())
        .collect();
        if grants.is_empty() {
            return Err(FlowError::Invalid("Choose at least one grant.".into()));
        }
        let pkce_optional = match self.pkce.as_str() {
            "optional" => true,
            "required" | "" => false,
            _ => {
                return Err(FlowError::Invalid(
                    "Choose whether PKCE is required.".into(),
                ))
            }
        };
        let number = |s: &str, what: &str| -> Result<i64, FlowError> {
            s.trim().parse().map_err(|_| {
                FlowError::Invalid(format!("The {what} risk threshold must be a whole number."))
            })
        };
        let risk_thresholds = match (optional(&self.risk_medium), optional(&self.risk_high)) {
            (None, None) => None,
            (Some(m), Some(h)) => Some((number(&m, "medium")?, number(&h, "high")?)),
            _ => return Err(FlowError::Invalid(
                "Give both risk thresholds (medium and high), or neither to use the global ones."
                    .into(),
            )),
        };
        let privileged_max_age_secs = match optional(&self.privileged_max_age) {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| {
                FlowError::Invalid(
                    "The privileged roles' maximum sign-in age must be a whole number of seconds."
                        .into(),
                )
            })?),
        };
        Ok(ClientSettings {
            name: self.name.clone(),
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: lines(&self.post_logout_redirect_uris),
            public,
            first_party: on(&self.first_party),
            grants,
            backchannel_logout_uri: optional(&self.backchannel_logout_uri),
            id_token_alg: optional(&self.id_token_alg),
            access_token_alg: optional(&self.access_token_alg),
            pkce_optional,
            min_acr: optional(&self.min_acr),
            risk_thresholds,
            require_role: on(&self.require_role),
            privileged_max_age_secs,
            provisioning: on(&self.provisioning),
        })
    }

    /// The form as the stored client fills it (for the edit page).
    fn from_client(c: &Client) -> Self {
        let flag = |b: bool| b.then(|| "on".to_owned());
        ClientForm {
            csrf_token: String::new(),
            client_id: c.id.clone(),
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            client_type: if c.public { "public" } else { "confidential" }.into(),
            first_party: flag(c.first_party),
            grant_authorization_code: flag(c.allows_grant("authorization_code")),
            grant_refresh_token: flag(c.allows_grant("refresh_token")),
            grant_client_credentials: flag(c.allows_grant("client_credentials")),
            pkce: if c.require_pkce {
                "required"
            } else {
                "optional"
            }
            .into(),
            id_token_alg: c.id_token_alg.clone(),
            access_token_alg: c.access_token_alg.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            min_acr: c.min_acr.clone().unwrap_or_default(),
            risk_medium: c
                .risk_thresholds
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
            risk_high: c
                .risk_thresholds
                .map(|t| t.1.to_string())
                .unwrap_or_default(),
            require_role: flag(c.require_role),
            provisioning: flag(c.provisioning),
            privileged_max_age: c
                .privileged_max_age_secs
                .map(|a| a.to_string())
                .unwrap_or_default(),
        }
    }

    /// A blank create form with the usual choices made.
    fn blank() -> Self {
        ClientForm {
            client_type: "confidential".into(),
            first_party: None,
            grant_authorization_code: Some("on".into()),
            grant_refresh_token: Some("on".into()),
            pkce: "required".into(),
            id_token_alg: "RS256".into(),
            access_token_alg: "RS256".into(),
            ..Default::default()
        }
    }

    fn json(&self) -> Value {
        json!({
            "client_id": self.client_id, "name": self.name,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "public": self.client_type == "public",
            "first_party": on(&self.first_party),
            "grants": {
                "authorization_code": on(&self.grant_authorization_code),
                "refresh_token": on(&self.grant_refresh_token),
                "client_credentials": on(&self.grant_client_credentials),
            },
            "pkce_optional": self.pkce == "optional",
            "id_token_alg": self.id_token_alg,
            "access_token_alg": self.access_token_alg,
            "backchannel_logout_uri": self.backchannel_logout_uri,
            "min_acr": self.min_acr,
            "risk_medium": self.risk_medium, "risk_high": self.risk_high,
            "require_role": on(&self.require_role),
            "privileged_max_age": self.privileged_max_age,
            "provisioning": on(&self.provisioning),
        })
    }
}

fn client_path(id: &str) -> String {
    let enc: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("/admin/clients/{enc}")
}

/// The choices the form offers, shared by both pages.
fn choices(ctx: &mut Context) {
    ctx.insert("algs", crate::oidc::keys::ALGS);
    ctx.insert("acrs", &crate::oidc::ACRS[1..]);
    ctx.insert("grant_names", GRANTS);
}

fn readable(e: FlowError) -> Result<String, WebError> {
    match e {
        FlowError::Invalid(m) | FlowError::Conflict(m) => Ok(capitalised(&m)),
        other => Err(other.into()),
    }
}

fn capitalised(m: &str) -> String {
    let mut c = m.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn row(c: &Client) -> Value {
    json!({
        "id": c.id, "path": client_path(&c.id), "name": c.name, "public": c.public,
        "first_party": c.first_party, "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grants": c.grant_types, "require_pkce": c.require_pkce, "id_token_alg": c.id_token_alg,
        "access_token_alg": c.access_token_alg,
        "backchannel_logout_uri": c.backchannel_logout_uri, "min_acr": c.min_acr,
        "risk_thresholds": c.risk_thresholds.map(|(m, h)| json!({"medium": m, "high": h})),
        "require_role": c.require_role,
        "privileged_max_age_secs": c.privileged_max_age_secs,
        "provisioning": c.provisioning,
        "created": when(c.created_at),
    })
}

// --- the list ---------------------------------------------------------------------------------

async fn list_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    status: StatusCode,
    form: &ClientForm,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let all = clients::list(&state.svc).await?;
    let mut ctx = Context::new();
    ctx.insert("clients", &all.iter().map(row).collect::<Vec<_>>());
    ctx.insert("form", &form.json());
    choices(&mut ctx);
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
        "admin/clients.html",
        "clients",
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
    list_page(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        &ClientForm::blank(),
        None,
        notice,
    )
    .await
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ClientForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let result = match form.settings() {
        Ok(s) => clients::create(&state.svc, &admin.actor, state.now(), &form.client_id, s).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(reg) => {
            client_page(
                &state,
                &req,
                &admin,
                StatusCode::OK,
                reg.client,
                None,
                None,
                notice_text(Some("created")),
                reg.generated_secret.as_ref(),
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
                &form,
                Some(&msg),
                None,
            )
            .await
        }
    }
}

// --- one client -------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)] // the page, its status, the form and the optional messages
async fn client_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    status: StatusCode,
    client: Client,
    form: Option<&ClientForm>,
    error: Option<&str>,
    notice: Option<&str>,
    secret: Option<&SecretString>,
) -> Result<HttpResponse, WebError> {
    let roles: Vec<Value> = access::client_roles(&state.svc, &client.id)
        .await?
        .into_iter()
        .map(|(r, holders)| {
            let holders: Vec<Value> = holders
                .into_iter()
                .map(|h| match h {
                    Holder::User { id, username } => json!({
                        "kind": "user", "name": username, "path": format!("/admin/users/{id}"),
                    }),
                    Holder::Group { id, name } => json!({
                        "kind": "group", "name": name, "path": format!("/admin/groups/{id}"),
                    }),
                })
                .collect();
            json!({ "name": r.name, "description": r.description, "privileged": r.privileged,
                    "holders": holders })
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("client", &row(&client));
    ctx.insert("roles", &roles);
    let shown = form
        .cloned()
        .unwrap_or_else(|| ClientForm::from_client(&client));
    ctx.insert("form", &shown.json());
    ctx.insert("path", &client_path(&client.id));
    choices(&mut ctx);
    if let Some(s) = secret {
        ctx.insert("secret", s.expose_secret());
    }
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
        "admin/client.html",
        "clients",
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
    let admin = or_respond!(gate(&state, &req, &client_path(&id)).await?);
    let client = clients::find(&state.svc, &id).await?;
    let notice = notice_text(q.notice.as_deref());
    client_page(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        client,
        None,
        None,
        notice,
        None,
    )
    .await
}

/// The roles form: create or remove a role, grant it to or revoke it from a user or a group.
/// Every field a string, so a mistake is a message on the page.
#[derive(Deserialize, Default)]
pub struct RoleForm {
    #[serde(default)]
    pub csrf_token: String,
    /// `create`, `remove`, `grant` or `revoke`.
    #[serde(default)]
    pub op: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub privileged: Option<String>,
    /// For grant and revoke: a username, or a group's name.
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub group: String,
}

pub async fn roles(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &client_path(&id)).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let client = clients::find(&state.svc, &id).await?;
    let (svc, actor, now) = (&state.svc, &admin.actor, state.now());
    let role = form.role.trim();
    let grantee = || match (form.username.trim(), form.group.trim()) {
        (u, "") if !u.is_empty() => Ok(Grantee::User(u.to_owned())),
        ("", g) if !g.is_empty() => Ok(Grantee::Group(g.to_owned())),
        _ => Err(FlowError::Invalid(
            "Give a username or a group, not both.".into(),
        )),
    };
    let result = match form.op.as_str() {
        "create" => access::create_role(
            svc,
            actor,
            now,
            &client.id,
            role,
            on(&form.privileged),
            &form.description,
        )
        .await
        .map(|_| ()),
        "remove" => access::remove_role(svc, actor, now, &client.id, role).await,
        op @ ("grant" | "revoke") => match grantee() {
            Ok(to) => access::set_grant(svc, actor, now, &client.id, role, to, op == "grant")
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        },
        _ => Err(FlowError::Invalid(
            "Choose create, remove, grant or revoke.".into(),
        )),
    };
    match result {
        Ok(()) => Ok(see_other(&format!("{}?notice=saved", client_path(&id)))),
        Err(FlowError::NotFound(m)) => {
            let msg = capitalised(&format!("{m} not found"));
            client_page(
                &state,
                &req,
                &admin,
                StatusCode::NOT_FOUND,
                client,
                None,
                Some(&msg),
                None,
                None,
            )
            .await
        }
        Err(e) => {
            let msg = readable(e)?;
            client_page(
                &state,
                &req,
                &admin,
                StatusCode::BAD_REQUEST,
                client,
                None,
                Some(&msg),
                None,
                None,
            )
            .await
        }
    }
}

pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<ClientForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &client_path(&id)).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let result = match form.settings() {
        Ok(s) => clients::update(&state.svc, &admin.actor, state.now(), &id, s).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(None) => Ok(see_other(&format!("{}?notice=saved", client_path(&id)))),
        // It became confidential: the new secret is shown on this response only.
        Ok(Some(secret)) => {
            let client = clients::find(&state.svc, &id).await?;
            client_page(
                &state,
                &req,
                &admin,
                StatusCode::OK,
                client,
                None,
                None,
                notice_text(Some("saved")),
                Some(&secret),
            )
            .await
        }
        Err(e) => {
            let msg = readable(e)?;
            let client = clients::find(&state.svc, &id).await?;
            client_page(
                &state,
                &req,
                &admin,
                StatusCode::BAD_REQUEST,
                client,
                Some(&form),
                Some(&msg),
                None,
                None,
            )
            .await
        }
    }
}

pub async fn rotate_secret(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let admin = or_respond!(gate(&state, &req, &client_path(&id)).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let result = clients::rotate_secret(&state.svc, &admin.actor, state.now(), &id).await;
    let client = clients::find(&state.svc, &id).await?;
    match result {
        Ok(secret) => {
            client_page(
                &state,
                &req,
                &admin,
                StatusCode::OK,
                client,
                None,
                None,
                Some("The secret was rotated; the old one no longer works."),
                Some(&secret),
            )
            .await
        }
        Err(e) => {
            let msg = readable(e)?;
            client_page(
                &state,
                &req,
                &admin,
                StatusCode::BAD_REQUEST,
                client,
                None,
                Some(&msg),
                None,
                None,
            )
            .await
        }
    }
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let here = client_path(&id);
    let admin = or_respond!(gate(&state, &req, &here).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    clients::remove(&state.svc, &admin.actor, state.now(), &id).await?;
    Ok(see_other("/admin/clients?notice=deleted"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(HERE, web::get().to(list))
        .route(HERE, web::post().to(create))
        .route("/admin/clients/{id}", web::get().to(show))
        .route("/admin/clients/{id}", web::post().to(update))
        .route("/admin/clients/{id}/secret", web::post().to(rotate_secret))
        .route("/admin/clients/{id}/delete", web::post().to(delete))
        .route("/admin/clients/{id}/roles", web::post().to(roles));
}
