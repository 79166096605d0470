//! HTTP only: extract, call a flow, render a template or JSON. No SQL, no policy.

/// `or_respond!(guard(..).await?)`: the value a page guard lets through, or return the response
/// it chose instead (a redirect to sign in, typically).
macro_rules! or_respond {
    ($guard:expr) => {
        match $guard {
            Ok(v) => v,
            Err(response) => return Ok(response),
        }
    };
}

pub mod account;
pub mod admin;
pub mod csrf;
pub mod errors;
pub mod health;
pub mod i18n;
pub mod login;
pub mod metrics;
pub mod mfa;
pub mod middleware;
pub mod oidc;
pub mod passkeys;
pub mod recovery;
pub mod register;
pub mod scim;
pub mod templates;

use std::net::IpAddr;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use ipnet::IpNet;

use crate::clock::Timestamp;
use crate::flow::{RequestContext, Services};

pub const SESSION_COOKIE: &str = "vigil_session";
pub const DEVICE_COOKIE: &str = "vigil_device";
pub const MFA_COOKIE: &str = "vigil_mfa";
/// A password reset whose link (and second factor) were proven: the new-password form.
pub const RESET_COOKIE: &str = "vigil_reset";
/// Where to go after signing in when no application asked (e.g. back to an admin page).
pub const NEXT_COOKIE: &str = "vigil_next";

/// A local page to return to after signing in: only our own account and admin pages, so the
/// login page cannot be turned into an open redirect.
pub fn safe_next(s: &str) -> Option<&str> {
    let ok = s.len() <= 512
        && (s == "/account"
            || s.starts_with("/account/")
            || s.starts_with("/account?")
            || s == "/admin"
            || s.starts_with("/admin/")
            || s.starts_with("/admin?"))
        && !s.contains("//")
        && !s.contains('\\')
        && s.chars().all(|c| !c.is_control())
        && resolves_inside(s);
    ok.then_some(s)
}

/// Where a browser goes with `s` is where a URL parser resolves it: dot segments (`..`, also
/// as `%2e%2e`) must not climb out of /account or /admin (`/admin/../x` once passed).
fn resolves_inside(s: &str) -> bool {
    let Ok(base) = url::Url::parse("http://vigil.invalid/") else {
        return false;
    };
    base.join(s).is_ok_and(|u| {
        let p = u.path();
        u.origin() == base.origin()
            && (p == "/account"
                || p.starts_with("/account/")
                || p == "/admin"
                || p.starts_with("/admin/"))
    })
}

/// Where a browser lands after signing in without an application: the password page when the
/// account must choose a new password, else the page it came from, else the account page.
pub fn landing(req: &HttpRequest, user: &crate::store::users::User) -> String {
    if user.must_change_password {
        return "/account/password".into();
    }
    req.cookie(NEXT_COOKIE)
        .and_then(|c| safe_next(c.value()).map(str::to_owned))
        .unwrap_or_else(|| "/account".into())
}

/// Shared state of the web layer.
pub struct AppState {
    pub svc: Services,
    pub csrf: csrf::Csrf,
    /// The discovery document, serialised once at start-up.
    pub discovery: String,
    /// SIGTERM arrived: `/readyz` answers 503 while the node drains (`VIGIL_SHUTDOWN_DRAIN_SECS`).
    pub draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    pub fn now(&self) -> Timestamp {
        self.svc.clock.now()
    }
    pub fn secure_cookies(&self) -> bool {
        self.svc.settings.issuer.is_https()
    }
    /// Who is asking: IP (through trusted proxies only), user agent, device cookie.
    pub fn context(&self, req: &HttpRequest) -> RequestContext {
        RequestContext {
            ip: client_ip(req, &self.svc.settings.trusted_proxies),
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            device_id: req
                .extensions()
                .get::<middleware::DeviceId>()
                .map(|d| d.0.clone()),
            accept_language: req
                .headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
            hints: None,
        }
    }
    /// The session cookie, scoped to the whole site.
    pub fn session_cookie(&self, value: String) -> Cookie<'static> {
        Cookie::build(SESSION_COOKIE, value)
            .path("/")
            .http_only(true)
            .secure(self.secure_cookies())
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(
                self.svc.settings.session.absolute_secs,
            ))
            .finish()
    }
    /// Render a page that holds forms: a CSRF token for them in `csrf_token`, and its cookie
    /// on the response.
    pub fn form_page(
        &self,
        req: &HttpRequest,
        status: actix_web::http::StatusCode,
        template: &str,
        mut ctx: tera::Context,
    ) -> Result<HttpResponse, errors::WebError> {
        let (token, cookie) = self.csrf.issue(req)?;
        ctx.insert("csrf_token", &token);
        let mut resp = templates::page(status, template, &ctx);
        resp.add_cookie(&cookie)
            .map_err(|e| errors::WebError::Internal(e.to_string()))?;
        Ok(resp)
    }
    /// Whether WebAuthn can be offered (it needs an issuer with a domain name).
    pub fn passkeys_available(&self) -> bool {
        self.svc.passkeys.is_some()
    }
    /// The cookie of a sign-in waiting for its second factor (five minutes, login paths only).
    pub fn mfa_cookie(&self, value: String) -> Cookie<'static> {
        Cookie::build(MFA_COOKIE, value)
            .path("/login")
            .http_only(true)
            .secure(self.secure_cookies())
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(
                crate::flow::mfa::STEP_UP_SECS,
            ))
            .finish()
    }
    /// The page to return to after signing in (ten minutes, login paths only).
    pub fn next_cookie(&self, value: String) -> Cookie<'static> {
        Cookie::build(NEXT_COOKIE, value)
            .path("/login")
            .http_only(true)
            .secure(self.secure_cookies())
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(600))
            .finish()
    }
    pub fn clear_next_cookie(&self) -> Cookie<'static> {
        let mut c = self.next_cookie(String::new());
        c.make_removal();
        c
    }
    /// The grant of a password reset (ten minutes, login paths only).
    pub fn reset_cookie(&self, value: String) -> Cookie<'static> {
        Cookie::build(RESET_COOKIE, value)
            .path("/login")
            .http_only(true)
            .secure(self.secure_cookies())
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(600))
            .finish()
    }
    pub fn clear_reset_cookie(&self) -> Cookie<'static> {
        let mut c = self.reset_cookie(String::new());
        c.make_removal();
        c
    }
    pub fn clear_mfa_cookie(&self) -> Cookie<'static> {
        let mut c = self.mfa_cookie(String::new());
        c.make_removal();
        c
    }
    /// The language an authorization request chose with `ui_locales`, for the pages of its
    /// sign-in (an hour, the whole site; it selects words and nothing else).
    pub fn lang_cookie(&self, lang: &i18n::Lang) -> Cookie<'static> {
        Cookie::build(i18n::LANG_COOKIE, lang.code())
            .path("/")
            .http_only(true)
            .secure(self.secure_cookies())
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(3600))
            .finish()
    }
    pub fn clear_lang_cookie(&self) -> Cookie<'static> {
        let mut c = self.lang_cookie(&i18n::Lang::english());
        c.make_removal();
        c
    }
    pub fn clear_session_cookie(&self) -> Cookie<'static> {
        let mut c = self.session_cookie(String::new());
        c.make_removal();
        c
    }
}

/// The browser's live SSO session and its user, if any.
pub async fn current_session(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(crate::store::sessions::Session, crate::store::users::User)>, errors::WebError>
{
    match req.cookie(SESSION_COOKIE) {
        Some(c) => Ok(crate::flow::session::resolve(
            &state.svc,
            c.value(),
            state.now(),
            &state.context(req),
        )
        .await?),
        None => Ok(None),
    }
}

/// The signed-in user, once the one enforcement point allowed `action` for this session and
/// request; otherwise the response it chose: sign in (again, with a second factor), choose a new
/// password, or a refusal. `here` is the page to come back to.
pub async fn enforced_session(
    state: &AppState,
    req: &HttpRequest,
    action: crate::flow::enforce::Action,
    here: &str,
) -> Result<
    Result<(crate::store::sessions::Session, crate::store::users::User), HttpResponse>,
    errors::WebError,
> {
    enforced_session_on(state, req, action, here, false).await
}

/// [`enforced_session`] for a console change aimed at another account, which may itself hold a
/// console role (`target_is_staff`).
pub async fn enforced_session_on(
    state: &AppState,
    req: &HttpRequest,
    action: crate::flow::enforce::Action,
    here: &str,
    target_is_staff: bool,
) -> Result<
    Result<(crate::store::sessions::Session, crate::store::users::User), HttpResponse>,
    errors::WebError,
> {
    use crate::flow::enforce::{self, Refusal, Requirement};
    let Some((session, user)) = current_session(state, req).await? else {
        return Ok(Err(sign_in_redirect(here, false, false)));
    };
    let ctx = state.context(req);
    let need = enforce::check_session(
        &state.svc,
        state.now(),
        &session,
        &user,
        &ctx,
        action,
        target_is_staff,
    )
    .await?;
    Ok(match need {
        Requirement::Allow => Ok((session, user)),
        Requirement::Reauthenticate { mfa }
        | Requirement::StepUp {
            phishing_resistant: mfa,
        } => Err(sign_in_redirect(
            here,
            true,
            mfa || matches!(need, Requirement::StepUp { .. }),
        )),
        Requirement::ChangePassword => Err(see_other("/account/password")),
        Requirement::EnrolFactor => {
            return Err(errors::WebError::Forbidden(i18n::t(
                "enrol-factor-required",
            )))
        }
        Requirement::Deny(r @ (Refusal::NotAdmin | Refusal::NotPermitted)) => {
            return Err(errors::WebError::Forbidden(i18n::flow_text(r.message())))
        }
        Requirement::Deny(r) => {
            return Err(errors::WebError::Forbidden(i18n::t_with(
                "session-unusable",
                &[("what", i18n::arg(i18n::flow_text(r.message())))],
            )))
        }
    })
}

/// Where to send someone who must sign in (again) before `next`; with `mfa`, the sign-in asks
/// for the second factor too.
pub fn sign_in_redirect(next: &str, reauth: bool, mfa: bool) -> HttpResponse {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if reauth {
        q.append_pair("reauth", "1");
    }
    q.append_pair("next", next);
    if mfa {
        q.append_pair("require", "mfa");
    }
    see_other(&format!("/login?{}", q.finish()))
}

/// The client's address: the socket peer, unless the peer is a trusted proxy; then the walk of
/// `X-Forwarded-For` in [`crate::net::client_ip`]. Nothing else is believed, because the risk
/// engine and the throttle are only as good as this value.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    // A header that is not visible ASCII is one unparsable hop: it ends the walk.
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or("?"))
        .collect();
    crate::net::client_ip(peer, &forwarded, trusted)
}

/// A 303 redirect (after a POST, the browser must GET the target).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(|| async { see_other("/account") }))
        .route("/login", web::get().to(login::show))
        .route("/login", web::post().to(login::submit))
        .route("/logout/session", web::post().to(login::sign_out))
        .route("/login/forgot", web::get().to(recovery::forgot))
        .route("/login/forgot", web::post().to(recovery::forgot_submit))
        .route("/login/reset", web::get().to(recovery::reset_page_get))
        .route("/login/reset", web::post().to(recovery::reset_redeem))
        .route(
            "/login/reset/password",
            web::get().to(recovery::reset_password_get),
        )
        .route(
            "/login/reset/password",
            web::post().to(recovery::reset_password_submit),
        )
        .route("/register", web::get().to(register::show))
        .route("/register", web::post().to(register::submit))
        .route("/report", web::get().to(recovery::report_page))
        .route("/report", web::post().to(recovery::report_submit))
        .route("/login/mfa", web::get().to(mfa::show))
        .route("/login/mfa/totp", web::post().to(mfa::totp))
        .route("/login/mfa/recovery", web::post().to(mfa::recovery))
        .route(
            "/account/email/verify",
            web::post().to(account::email_verify_request),
        )
        .route("/email/verify", web::get().to(account::email_verify_page))
        .route(
            "/email/verify",
            web::post().to(account::email_verify_confirm),
        )
        .route("/account/totp", web::get().to(account::totp_begin))
        .route("/account/totp", web::post().to(account::totp_confirm))
        .route("/account/totp/remove", web::post().to(account::totp_remove))
        .route(
            "/account/factors/confirm",
            web::post().to(account::confirm_factor),
        )
        .route("/account/recovery", web::get().to(account::recovery_show))
        .route(
            "/account/recovery/regenerate",
            web::post().to(account::recovery_regenerate),
        )
        .route(
            "/account/sessions/revoke",
            web::post().to(account::revoke_session),
        )
        .service(
            web::resource("/account/passkeys/begin")
                .app_data(passkeys::json_config())
                .route(web::post().to(passkeys::register_begin)),
        )
        .service(
            web::resource("/account/passkeys/finish")
                .app_data(passkeys::json_config())
                .route(web::post().to(passkeys::register_finish)),
        )
        .route("/account/passkeys/remove", web::post().to(passkeys::remove))
        .service(
            web::resource("/login/mfa/webauthn/begin")
                .app_data(passkeys::json_config())
                .route(web::post().to(passkeys::step_up_begin)),
        )
        .service(
            web::resource("/login/mfa/webauthn/finish")
                .app_data(passkeys::json_config())
                .route(web::post().to(passkeys::step_up_finish)),
        )
        .service(
            web::resource("/login/passkey/begin")
                .app_data(passkeys::json_config())
                .route(web::post().to(passkeys::passwordless_begin)),
        )
        .service(
            web::resource("/login/passkey/finish")
                .app_data(passkeys::json_config())
                .route(web::post().to(passkeys::passwordless_finish)),
        )
        .route("/authorize/resume", web::get().to(oidc::authorize_resume))
        .route("/static/webauthn.js", web::get().to(static_webauthn_js))
        .route("/account", web::get().to(account::show))
        .route("/account/password", web::get().to(account::password_show))
        .route(
            "/account/password",
            web::post().to(account::password_change),
        )
        .route(
            "/account/signins/report",
            web::post().to(account::report_signin),
        )
        .route(
            "/account/consents/revoke",
            web::post().to(account::revoke_consent),
        )
        .route(
            "/.well-known/openid-configuration",
            web::get().to(oidc::discovery),
        )
        .route("/jwks", web::get().to(oidc::jwks))
        .route("/authorize", web::get().to(oidc::authorize_get))
        .route("/authorize", web::post().to(oidc::authorize_post))
        .route("/consent", web::post().to(oidc::consent))
        .route("/token", web::post().to(oidc::token_endpoint))
        .route("/userinfo", web::get().to(oidc::userinfo_endpoint))
        .route("/userinfo", web::post().to(oidc::userinfo_endpoint))
        .route("/introspect", web::post().to(oidc::introspect_endpoint))
        .route("/revoke", web::post().to(oidc::revoke_endpoint))
        .route("/logout", web::get().to(oidc::logout_get))
        .route("/logout", web::post().to(oidc::logout_post))
        .route("/logout/confirm", web::post().to(oidc::logout_confirm))
        .route("/static/form_post.js", web::get().to(static_form_post_js))
        .route("/static/hints.js", web::get().to(static_hints_js))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/static/style.css", web::get().to(static_css));
    // Last: actix tries routes in order, and these have path parameters, each matched by a
    // regex. Registered first, every sign-in and token request paid for about 30 of them before
    // reaching its own route. No route above starts with /admin or /scim, so the order changes
    // what is matched nowhere.
    admin::routes(cfg);
    scim::routes(cfg);
}

async fn static_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/style.css"))
}

async fn static_form_post_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/form_post.js"))
}

async fn static_webauthn_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/webauthn.js"))
}

async fn static_hints_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/hints.js"))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_account_and_admin_pages() {
        for ok in [
            "/account",
            "/account/sessions",
            "/account?notice=x",
            "/admin/users/./x",
        ] {
            assert_eq!(safe_next(ok), Some(ok), "{ok}");
        }
        // `/admin/../KK` was found by the `cookies` fuzz target (fuzz/): it passed the prefix
        // checks and led to /KK.
        for bad in [
            "/admin/../KK",
            "/account/..",
            "/account/%2e%2e/logout",
            "/admin/%2E%2E/%2e%2e/x",
            "//evil.example/account",
            "/account\\@evil.example",
            "/accounts",
            "https://evil.example/account",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }
}
