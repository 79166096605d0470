//! The admin console under `/admin`: server-rendered pages, usable without JavaScript.
//!
//! Every handler starts with [`gate`], which asks the one enforcement point
//! (`flow::enforce`): anonymous visitors go to the login page (and come back), signed-in
//! accounts without a console role that covers the page get 403 (`admin` everything,
//! `helpdesk` users and the review queue, `auditor` the reports), staff must have a second
//! factor and have used it in this session,
//! and every change (a POST) needs a sign-in from the last five minutes. Each page lives in its own file; each
//! action goes through a flow function that audits it with the admin as actor and their IP.

pub mod clients;
pub mod dashboard;
pub mod fairness;
pub mod groups;
pub mod keys;
pub mod policy;
pub mod review;
pub mod reviews;
pub mod signins;
pub mod users;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tera::Context;

use super::errors::WebError;
use super::{enforced_session_on, AppState};
use crate::flow::access;
use crate::flow::accounts::Actor;
use crate::flow::enforce::{Action, Area, ConsoleRoles};
use crate::flow::FlowError;
use crate::store::sessions::Session;
use crate::store::users::User;

/// A signed-in admin who passed the gate.
pub struct Admin {
    pub session: Session,
    pub user: User,
    /// The admin, for audit entries: their user id and IP address.
    pub actor: Actor,
    /// Which parts of the console this person may use (the navigation shows only those).
    pub console: ConsoleRoles,
}

/// The form field every admin form carries.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

/// Where to send someone who must sign in (again, with a second factor) before `next`.
pub fn login_redirect(next: &str, reauth: bool) -> HttpResponse {
    super::sign_in_redirect(next, reauth, reauth)
}

/// Let only admins through, as the one enforcement point decides: anonymous visitors go to
/// sign in (and come back to `here`), non-admins get 403, an admin must have a second factor
/// and have used it in this session, and a POST — a change — needs a sign-in from the last
/// five minutes ([`FRESH_SECS`](crate::flow::enforce::FRESH_SECS)). Review verdicts are the
/// console's routine work and need no fresh sign-in.
pub async fn gate(
    state: &AppState,
    req: &HttpRequest,
    here: &str,
) -> Result<Result<Admin, HttpResponse>, WebError> {
    let post = req.method() == actix_web::http::Method::POST;
    // The route that matched, not the raw path: `/admin/signins/../clients` must not pass for
    // the sign-in log (and would not be routed there either).
    let pattern = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
    let mut area = area(&pattern, post);
    if let (Area::AccessReview { .. }, Some(id)) = (area, req.match_info().get("id")) {
        // Who reviews is the campaign's: the fact enforcement weighs.
        area = Area::AccessReview {
            helpdesk: crate::flow::campaigns::helpdesk_may(&state.svc, id).await?,
        };
    }
    // Review verdicts and access-review decisions are the console's routine work: no fresh
    // sign-in for each (they only keep or take away).
    let routine = matches!(area, Area::Review | Area::AccessReview { .. });
    let action = if post && !routine {
        Action::AdminChange(area)
    } else {
        Action::AdminConsole(area)
    };
    // A change to a user's account: whether that user is staff (only an admin acts on staff).
    let target = pattern
        .starts_with("/admin/users/{id}")
        .then(|| req.match_info().get("id"))
        .flatten();
    let target_is_staff = match (post, target) {
        (true, Some(id)) => access::console(&state.svc, id).await?.any(),
        _ => false,
    };
    let (session, user) =
        match enforced_session_on(state, req, action, here, target_is_staff).await? {
            Ok(v) => v,
            Err(resp) => return Ok(Err(resp)),
        };
    let console = access::console(&state.svc, &user.id).await?;
    let ip = state.context(req).ip;
    Ok(Ok(Admin {
        actor: Actor::admin(user.id.clone(), ip),
        session,
        user,
        console,
    }))
}

/// The part of the console a route is for (the console roles divide it; see [`Area`]): by
/// its pattern, exactly, so anything not listed is `Configuration` (admins only). Helpdesk work
/// on a user is `POST /admin/users/{id}/{unlock,password,sessions,factors}`.
fn area(route: &str, post: bool) -> Area {
    match route {
        "/admin"
        | "/admin/"
        | "/admin/signins"
        | "/admin/signins/{id}"
        | "/admin/signins/export.csv"
        | "/admin/signins/export.jsonl"
        | "/admin/fairness" => Area::Reports,
        "/admin/review" => Area::Review,
        // Opening and closing a campaign are an admin's; reading and deciding, its reviewers'.
        "/admin/reviews" if !post => Area::AccessReview { helpdesk: true },
        "/admin/reviews/{id}" | "/admin/reviews/{id}/export.csv" => {
            Area::AccessReview { helpdesk: false }
        }
        "/admin/users" | "/admin/users/{id}" if !post => Area::Users,
        "/admin/users/{id}/unlock"
        | "/admin/users/{id}/password"
        | "/admin/users/{id}/sessions"
        | "/admin/users/{id}/factors" => Area::UserSupport,
        _ => Area::Configuration,
    }
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
    ctx.insert(
        "console",
        &serde_json::json!({
            "admin": admin.console.admin,
            "helpdesk": admin.console.helpdesk,
            "auditor": admin.console.auditor,
        }),
    );
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
        "risk" => "The account's risk state was dismissed.",
        "factors" => "The second factors were removed.",
        "password" => "The password was set; the user must choose a new one at the next sign-in.",
        "promoted" => "The user is now an administrator.",
        "approved" => {
            "The registration is approved; the account works once its address is confirmed."
        }
        "invited" => "The invitation is on its way.",
        "demoted" => "The user is no longer an administrator.",
        "rotated" => "Done.",
        "verdict" => "Verdict recorded.",
        "shadow_set" => {
            "The model is in shadow: every sign-in is scored by it too, and only logged."
        }
        "shadow_cleared" => "The shadow model was removed.",
        _ => return None,
    })
}

/// A flow error a person can fix, as the status and message of the page that shows it;
/// anything else is the server's error.
pub fn readable(e: FlowError) -> Result<(StatusCode, String), WebError> {
    match e {
        FlowError::Invalid(m) => Ok((StatusCode::BAD_REQUEST, m)),
        FlowError::Conflict(m) => Ok((StatusCode::CONFLICT, m)),
        FlowError::NotFound(m) => Ok((StatusCode::NOT_FOUND, format!("{m} not found"))),
        other => Err(other.into()),
    }
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
    reviews::routes(cfg);
    signins::routes(cfg);
    review::routes(cfg);
    policy::routes(cfg);
    fairness::routes(cfg);
    groups::routes(cfg);
    keys::routes(cfg);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Routes, not raw paths, decide the area; anything not listed is for admins only.
    #[test]
    fn areas_by_route() {
        assert_eq!(area("/admin/signins/{id}", false), Area::Reports);
        assert_eq!(area("/admin/users/{id}", false), Area::Users);
        assert_eq!(area("/admin/users/{id}", true), Area::Configuration);
        assert_eq!(area("/admin/users/{id}/password", true), Area::UserSupport);
        assert_eq!(
            area("/admin/users/{id}/risk/dismiss", true),
            Area::Configuration
        );
        assert_eq!(area("/admin/users", true), Area::Configuration);
        assert_eq!(area("/admin/review", true), Area::Review);
        assert_eq!(
            area("/admin/reviews", false),
            Area::AccessReview { helpdesk: true }
        );
        assert_eq!(area("/admin/reviews", true), Area::Configuration);
        assert_eq!(area("/admin/reviews/{id}/close", true), Area::Configuration);
        // A raw path that merely starts like a report is not one.
        assert_eq!(
            area("/admin/signins/../clients", false),
            Area::Configuration
        );
        assert_eq!(area("/admin/groups/{id}", false), Area::Configuration);
    }
}
