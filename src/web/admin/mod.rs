//! The admin console under `/admin`: server-rendered pages, usable without JavaScript.
//!
//! Every handler starts with [`gate`]: anonymous visitors go to the login page (and come back),
//! signed-in non-admins get 403, and an admin who has a second factor must have used it in this
//! session (`acr` at least mfa). Sensitive actions also call [`fresh`]: a sign-in older than
//! [`REAUTH_SECS`] is sent to sign in again first. Each page lives in its own file; each
//! action goes through a flow function that audits it with the admin as actor and their IP.

pub mod clients;
pub mod dashboard;
pub mod fairness;
pub mod keys;
pub mod policy;
pub mod review;
pub mod signins;
pub mod users;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tera::Context;

use super::errors::WebError;
use super::{current_session, see_other, AppState};
use crate::flow::accounts::Actor;
use crate::oidc::ACR_PWD;
use crate::store::sessions::Session;
use crate::store::users::User;

/// How old a sign-in may be for a sensitive action (deleting a user, rotating keys, changing
/// policy) before the admin must sign in again.
pub const REAUTH_SECS: i64 = 300;

/// A signed-in admin who passed the gate.
pub struct Admin {
    pub session: Session,
    pub user: User,
    /// The admin, for audit entries: their user id and IP address.
    pub actor: Actor,
}

/// The form field every admin form carries.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

/// Where to send someone who must sign in (again) before `next`.
pub fn login_redirect(next: &str, reauth: bool) -> HttpResponse {
    let mut url = url::Url::parse("http://x/login").ok();
    if let Some(u) = url.as_mut() {
        let mut q = u.query_pairs_mut();
        if reauth {
            q.append_pair("reauth", "1");
        }
        q.append_pair("next", next);
    }
    let target = url
        .map(|u| format!("/login?{}", u.query().unwrap_or("")))
        .unwrap_or_else(|| "/login".into());
    see_other(&target)
}

/// Let only admins through. `Ok(Err(response))` is a redirect to sign in (first, or again with
/// a second factor); non-admins get `Forbidden`. `here` is the page to come back to.
pub async fn gate(
    state: &AppState,
    req: &HttpRequest,
    here: &str,
) -> Result<Result<Admin, HttpResponse>, WebError> {
    let Some((session, user)) = current_session(state, req).await? else {
        return Ok(Err(login_redirect(here, false)));
    };
    if !user.is_admin {
        return Err(WebError::Forbidden(
            "This page is for administrators. Your account does not have the admin role.".into(),
        ));
    }
    if session.acr == ACR_PWD {
        let uid = user.id.clone();
        let enrolled = state
            .svc
            .db
            .run(move |c| crate::store::factors::enrolled(c, &uid))
            .await
            .map_err(crate::flow::FlowError::from)?;
        // The same test as the login's: a factor this server can actually ask for.
        if enrolled.totp || (enrolled.webauthn && state.passkeys_available()) {
            return Ok(Err(login_redirect(here, true)));
        }
    }
    let ip = state.context(req).ip;
    Ok(Ok(Admin {
        actor: Actor::admin(user.id.clone(), ip),
        session,
        user,
    }))
}

/// For a sensitive action: `Some(redirect)` when the admin signed in more than
/// [`REAUTH_SECS`] ago and must confirm it is them; then they come back to `here`.
pub fn fresh(state: &AppState, admin: &Admin, here: &str) -> Option<HttpResponse> {
    let age = state.now().micros() - admin.session.auth_time;
    (age > REAUTH_SECS * 1_000_000).then(|| login_redirect(here, true))
}

/// Render an admin page: adds the CSRF token (and its cookie), the admin's name and the
/// section for the navigation.
pub fn render(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    status: StatusCode,
    template: &str,
    section: &str,
    mut ctx: Context,
) -> Result<HttpResponse, WebError> {
    ctx.insert("signed_in_as", &admin.user.username);
    ctx.insert("section", section);
    state.form_page(req, status, template, ctx)
}

/// `?notice=` on admin pages: a fixed set of messages, so a link cannot put words in our mouth.
pub fn notice_text(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "saved" => "Saved.",
        "created" => "Created.",
        "deleted" => "Deleted.",
        "disabled" => "The account is disabled and its sessions have ended.",
        "enabled" => "The account is enabled.",
        "sessions" => "All sessions of the account have ended.",
        "unlocked" => "The account's failed attempts were cleared.",
        "factors" => "The second factors were removed.",
        "password" => "The password was set; the user must choose a new one at the next sign-in.",
        "promoted" => "The user is now an administrator.",
        "demoted" => "The user is no longer an administrator.",
        "rotated" => "Done.",
        "verdict" => "Verdict recorded.",
        _ => return None,
    })
}

/// Format microseconds since the epoch for tables (UTC).
pub fn when(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "—".into())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    dashboard::routes(cfg);
    users::routes(cfg);
    clients::routes(cfg);
    signins::routes(cfg);
    review::routes(cfg);
    policy::routes(cfg);
    fairness::routes(cfg);
    keys::routes(cfg);
}
