//! The signed-in user's own pages: profile, second factors, sessions, recent sign-ins, consents.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use tera::Context;

use super::errors::WebError;
use super::i18n;
use super::templates::page;
use super::{current_session, enforced_session, see_other, AppState};
use crate::audit::AuditEvent;
use crate::clock::Timestamp;
use crate::flow::enforce::Action;
use crate::flow::factors;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{self, clients, consents, factors as stored, sessions, signins};

/// How long a newly added factor is marked "new" on the account page.
const NEW_FACTOR_SECS: i64 = 7 * 24 * 3600;

#[derive(Deserialize)]
pub struct AccountQuery {
    pub notice: Option<String>,
}

/// The signed-in user once the one enforcement point allows `action` (a factor change needs a
/// fresh sign-in with a second factor, a forced password change comes first, a session used
/// from a new network is re-scored); otherwise the response it chose.
async fn signed_in(
    state: &AppState,
    req: &HttpRequest,
    action: Action,
    here: &str,
) -> Result<Result<(Session, User), HttpResponse>, WebError> {
    enforced_session(state, req, action, here).await
}

/// The signed-in user, whatever the account's state: for "this wasn't me", which only ever
/// takes access away.
async fn signed_in_any(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Result<(Session, User), HttpResponse>, WebError> {
    Ok(match current_session(state, req).await? {
        Some(s) => Ok(s),
        None => Err(see_other("/login")),
    })
}

/// The coarse place recorded with a sign-in ("City, CC"), which outlives the raw IP's retention.
fn recorded_place(features: Option<&str>) -> Option<String> {
    let f: crate::risk::SignInFeatures = serde_json::from_str(features?).ok()?;
    match (f.geo.city, f.geo.country) {
        (Some(city), Some(cc)) => Some(format!("{city}, {cc}")),
        (None, Some(cc)) => Some(cc),
        _ => None,
    }
}

/// A short, human description of a user agent for lists, in `lang`.
fn device_label(lang: &i18n::Lang, ua: Option<&str>) -> String {
    let ua = ua.unwrap_or("");
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/"]
        .iter()
        .find(|b| ua.contains(*b))
        .map(|b| match *b {
            "Edg/" => "Edge",
            "Firefox/" => "Firefox",
            "Chrome/" => "Chrome",
            _ => "Safari",
        });
    let os = ["Windows", "Android", "iPhone", "Mac OS", "Linux"]
        .iter()
        .find(|o| ua.contains(*o))
        .copied();
    match (browser, os) {
        (Some(b), Some(o)) => i18n::text(
            lang,
            "device-on",
            &[("browser", i18n::arg(b)), ("os", i18n::arg(o))],
        ),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => o.to_owned(),
        (None, None) if ua.is_empty() => i18n::text(lang, "device-unknown", &[]),
        (None, None) => ua.chars().take(40).collect(),
    }
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<AccountQuery>,
) -> Result<HttpResponse, WebError> {
    let (s, user) = or_respond!(signed_in(&state, &req, Action::AccountPage, "/account").await?);
    let now = state.now();
    let (uid, current_id, risk) = (user.id.clone(), s.id.clone(), state.svc.risk.clone());
    // The rows are labelled on the blocking pool, outside the request's task: name the language.
    let lang = i18n::current();
    let place = move |ip: &Option<String>| {
        ip.as_deref()
            .and_then(|i| risk.place(i))
            .unwrap_or_else(|| "—".into())
    };
    let data = state
        .svc
        .db
        .run(move |c| {
            let mut consent_rows = Vec::new();
            for g in consents::for_user(c, &uid)? {
                let name = clients::find(c, &g.client_id)?.map(|cl| cl.name).unwrap_or_else(|| g.client_id.clone());
                consent_rows.push(json!({ "client_id": g.client_id, "client_name": name, "scope": g.scope, "granted": Timestamp(g.granted_at).display() }));
            }
            let live: Vec<_> = sessions::list_live_for_user(c, &uid, now.micros())?
                .into_iter()
                .map(|x| {
                    json!({
                        "id": x.id, "device": device_label(&lang, x.user_agent.as_deref()), "place": place(&x.ip), "ip": x.ip.unwrap_or_default(),
                        "last_seen": Timestamp(x.last_seen_at).display(), "current": x.id == current_id, "acr": x.acr,
                    })
                })
                .collect();
            let recent: Vec<_> = signins::recent_for_user(c, &uid, 10)?
                .into_iter()
                .map(|r| {
                    json!({
                        "id": r.id, "at": Timestamp(r.at).display(), "method": i18n::code_label(&lang, "signin-method-", &r.method), "outcome": i18n::code_label(&lang, "signin-outcome-", &r.outcome),
                        "place": recorded_place(r.features.as_deref()).unwrap_or_else(|| place(&r.ip)), "ip": r.ip.unwrap_or_default(), "device": device_label(&lang, r.user_agent.as_deref()),
                    })
                })
                .collect();
            let totp_row = stored::totp_any_for(c, &uid)?;
            let passkey_rows = stored::passkeys_all_for(c, &uid)?;
            // Factors suspended by containment: shown first, for the owner to confirm or remove.
            let mut suspended = Vec::new();
            if let Some(t) = totp_row.as_ref().filter(|t| t.suspended_at.is_some()) {
                suspended.push(json!({ "which": "totp", "created": Timestamp(t.created_at).display(), "remove_action": "/account/totp/remove" }));
            }
            for p in passkey_rows.iter().filter(|p| p.suspended_at.is_some()) {
                suspended.push(json!({ "which": p.id, "name": p.name, "created": Timestamp(p.created_at).display(), "remove_action": "/account/passkeys/remove" }));
            }
            // A factor added in the last week is marked new: an unexpected one is the first
            // thing a person should notice.
            let is_new = |created: i64| now.micros() - created < NEW_FACTOR_SECS * 1_000_000;
            let totp = totp_row.filter(|t| t.suspended_at.is_none()).map(|t| json!({ "created": Timestamp(t.created_at).display(), "last_used": t.last_used_at.map(|x| Timestamp(x).display()), "new": is_new(t.created_at) }));
            let passkeys: Vec<_> = passkey_rows
                .into_iter()
                .filter(|p| p.suspended_at.is_none())
                .map(|p| json!({ "id": p.id, "name": p.name, "created": Timestamp(p.created_at).display(), "last_used": p.last_used_at.map(|x| Timestamp(x).display()), "new": is_new(p.created_at) }))
                .collect();
            let recovery_left = stored::recovery_codes_left(c, &uid)?;
            Ok(json!({ "consents": consent_rows, "sessions": live, "signins": recent, "totp": totp, "passkeys": passkeys, "recovery_left": recovery_left, "suspended": suspended }))
        })
        .await
        .map_err(WebError::from)?;
    let mut ctx = Context::new();
    ctx.insert("signed_in_as", &user.username);
    let staff = crate::flow::access::console(&state.svc, &user.id).await?;
    ctx.insert("user", &json!({ "username": user.username, "email": user.email, "email_verified": user.email_verified, "name": user.name, "is_admin": staff.admin, "console": staff.names() }));
    ctx.insert("mail_enabled", &state.svc.mailer.enabled());
    ctx.insert(
        "session",
        &json!({ "created": Timestamp(s.created_at).display(), "expires": Timestamp(s.expires_at.min(s.idle_expires_at)).display(), "acr": s.acr }),
    );
    for key in [
        "consents",
        "sessions",
        "signins",
        "totp",
        "passkeys",
        "recovery_left",
        "suspended",
    ] {
        ctx.insert(key, &data[key]);
    }
    ctx.insert("risk_state", &user.risk_state);
    ctx.insert(
        "risk_since",
        &user.risk_state_at.map(|t| Timestamp(t).display()),
    );
    ctx.insert("passkeys_available", &state.passkeys_available());
    let notice = match q.notice.as_deref() {
        Some("recovery") => Some("notice-recovery"),
        Some("totp") => Some("notice-totp"),
        Some("passkey") => Some("notice-passkey"),
        Some("password") => Some("notice-password"),
        Some("verify_sent") => Some("notice-verify-sent"),
        Some("verified_already") => Some("notice-verified-already"),
        _ => None,
    };
    if let Some(n) = notice {
        ctx.insert("notice", &i18n::t(n));
    }
    state.form_page(&req, StatusCode::OK, "account.html", ctx)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

#[derive(Deserialize)]
pub struct RevokeConsent {
    #[serde(default)]
    pub csrf_token: String,
    pub client_id: String,
}

/// Withdraw a remembered consent: the application must ask again next time.
pub async fn revoke_consent(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<RevokeConsent>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let (_, user) = or_respond!(signed_in(&state, &req, Action::AccountPage, "/account").await?);
    let ip = state.context(&req).ip;
    // The flow also revokes the app's tokens: a withdrawn consent must end its access too.
    crate::flow::consents::withdraw(&state.svc, state.now(), &user.id, &form.client_id, ip).await?;
    Ok(see_other("/account"))
}

#[derive(Deserialize)]
pub struct RevokeSession {
    #[serde(default)]
    pub csrf_token: String,
    pub session_id: String,
}

/// Sign out one of the user's sessions (another device, typically).
pub async fn revoke_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<RevokeSession>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let (_, user) = or_respond!(signed_in(&state, &req, Action::AccountPage, "/account").await?);
    let ip = state.context(&req).ip;
    let (uid, sid, auditor, now) = (
        user.id.clone(),
        form.session_id.clone(),
        state.svc.auditor.clone(),
        state.now(),
    );
    state
        .svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                // Only the user's own sessions.
                let mine = sessions::list_live_for_user(c, &uid, now.micros())?
                    .into_iter()
                    .any(|s| s.id == sid);
                if mine && sessions::revoke(c, &sid, now.micros())? {
                    auditor.record(
                        c,
                        now,
                        AuditEvent::new("session.ended")
                            .actor(uid.clone())
                            .target(sid.clone())
                            .ip(ip),
                    )?;
                }
                Ok(())
            })
        })
        .await
        .map_err(WebError::from)?;
    Ok(see_other("/account"))
}

fn totp_page(
    state: &AppState,
    req: &HttpRequest,
    user: &User,
    e: &factors::TotpEnrolment,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let mut ctx = Context::new();
    ctx.insert("signed_in_as", &user.username);
    ctx.insert("flow", &e.flow);
    ctx.insert("secret", &e.secret_base32);
    ctx.insert("qr_svg", &e.qr_svg);
    if let Some(m) = error {
        ctx.insert("error", &i18n::flow_text(m));
    }
    state.form_page(req, status, "totp_enrol.html", ctx)
}

/// Start TOTP enrolment: a QR code and the secret as text.
pub async fn totp_begin(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let (_, user) = or_respond!(signed_in(&state, &req, Action::ChangeFactor, "/account").await?);
    let e = factors::totp_begin(&state.svc, state.now(), &user).await?;
    totp_page(&state, &req, &user, &e, None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct TotpConfirm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub flow: String,
    #[serde(default)]
    pub code: String,
}

pub async fn totp_confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TotpConfirm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let (_, user) = or_respond!(signed_in(&state, &req, Action::ChangeFactor, "/account").await?);
    let now = state.now();
    match factors::totp_confirm(
        &state.svc,
        now,
        &user,
        &form.flow,
        &form.code,
        state.context(&req).ip,
    )
    .await?
    {
        Ok(Some(codes)) => recovery_page(&state, &req, &user, &codes, true),
        Ok(None) => Ok(see_other("/account?notice=totp")),
        Err(msg) => {
            // Show a fresh secret: the pending one stays valid, but re-rendering it needs the
            // plain secret, which is only ever shown once.
            let e = factors::totp_begin(&state.svc, now, &user).await?;
            totp_page(&state, &req, &user, &e, Some(&msg), StatusCode::BAD_REQUEST)
        }
    }
}

pub async fn totp_remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let (_, user) = or_respond!(signed_in(&state, &req, Action::ChangeFactor, "/account").await?);
    factors::totp_remove(&state.svc, state.now(), &user, state.context(&req).ip).await?;
    Ok(see_other("/account"))
}

fn recovery_page(
    state: &AppState,
    req: &HttpRequest,
    user: &User,
    codes: &[String],
    first: bool,
) -> Result<HttpResponse, WebError> {
    let mut ctx = Context::new();
    ctx.insert("signed_in_as", &user.username);
    ctx.insert("codes", codes);
    ctx.insert("first", &first);
    state.form_page(req, StatusCode::OK, "recovery_codes.html", ctx)
}

#[derive(Deserialize)]
pub struct RecoveryQuery {
    pub flow: Option<String>,
}

/// Show codes parked after a passkey enrolment (once).
pub async fn recovery_show(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<RecoveryQuery>,
) -> Result<HttpResponse, WebError> {
    let (_, user) = or_respond!(signed_in(&state, &req, Action::AccountPage, "/account").await?);
    let Some(flow) = q.flow.as_deref() else {
        return Ok(see_other("/account"));
    };
    match factors::take_parked_codes(&state.svc, state.now(), &user, flow).await? {
        Some(codes) => recovery_page(&state, &req, &user, &codes, true),
        None => Ok(see_other("/account")),
    }
}

pub async fn recovery_regenerate(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let (_, user) = or_respond!(signed_in(&state, &req, Action::ChangeFactor, "/account").await?);
    let codes =
        factors::regenerate_recovery(&state.svc, state.now(), &user, state.context(&req).ip)
            .await?;
    recovery_page(&state, &req, &user, &codes, false)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub csrf_token: String,
    pub current_password: secrecy::SecretString,
    pub new_password: secrecy::SecretString,
}

fn password_page(
    state: &AppState,
    req: &HttpRequest,
    user: &User,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let mut ctx = Context::new();
    ctx.insert("signed_in_as", &user.username);
    ctx.insert("required", &user.must_change_password);
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    state.form_page(req, status, "password.html", ctx)
}

/// `GET /account/password`: choose a new password (required after an admin reset or a
/// "this wasn't me" report).
pub async fn password_show(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let (_, user) =
        or_respond!(signed_in(&state, &req, Action::ChangePassword, "/account/password").await?);
    password_page(&state, &req, &user, StatusCode::OK, None)
}

pub async fn password_change(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    state.csrf.verify(&req, &form.csrf_token)?;
    let (s, user) =
        or_respond!(signed_in(&state, &req, Action::ChangePassword, "/account/password").await?);
    let ctx = state.context(&req);
    match crate::flow::accounts::change_own_password(
        &state.svc,
        state.now(),
        &user,
        &s,
        form.current_password,
        form.new_password,
        &ctx,
    )
    .await
    {
        Ok(()) => Ok(see_other("/account?notice=password")),
        Err(crate::flow::FlowError::Invalid(m))
        | Err(crate::flow::FlowError::Auth(crate::auth::AuthError::WeakPassword(m))) => {
            password_page(
                &state,
                &req,
                &user,
                StatusCode::BAD_REQUEST,
                Some(&i18n::flow_text(&m)),
            )
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub signin_id: String,
}

/// "This wasn't me": every session of the account ends (this one too), the sign-in goes to the
/// review queue as an attack, and the next sign-in must choose a new password. Only the user's
/// own sign-ins can be reported; any other id is a 404.
pub async fn report_signin(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ReportForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let (_, user) = or_respond!(signed_in_any(&state, &req).await?);
    let id = form.signin_id.trim();
    if id.is_empty() || id.len() > 64 {
        return Err(WebError::NotFound);
    }
    let ip = state.context(&req).ip;
    crate::flow::review::report(&state.svc, state.now(), &user.id, id, ip).await?;
    let mut ctx = Context::new();
    ctx.insert("reported", &true);
    let mut resp = page(StatusCode::OK, "signed_out.html", &ctx);
    resp.add_cookie(&state.clear_session_cookie())
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(resp)
}

#[derive(Deserialize)]
pub struct ConfirmFactor {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub which: String,
}

/// The owner confirms a factor that containment suspended: a factor change like any other, so
/// it needs a fresh sign-in with a (not suspended) second factor.
pub async fn confirm_factor(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ConfirmFactor>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let (_, user) = or_respond!(signed_in(&state, &req, Action::ChangeFactor, "/account").await?);
    factors::confirm_suspended(
        &state.svc,
        state.now(),
        &user,
        &form.which,
        state.context(&req).ip,
    )
    .await?;
    Ok(see_other("/account"))
}

/// Mail a verification link to the signed-in user's address.
pub async fn email_verify_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    use crate::flow::email::{request_verification, Requested};
    state.csrf.verify(&req, &form.csrf_token)?;
    let (_, user) = or_respond!(signed_in(&state, &req, Action::AccountPage, "/account").await?);
    let actor = crate::flow::accounts::Actor::user(user.id.clone(), state.context(&req).ip);
    match request_verification(&state.svc, &actor, &user.id, state.now()).await? {
        Requested::Sent => Ok(see_other("/account?notice=verify_sent")),
        Requested::AlreadyVerified => Ok(see_other("/account?notice=verified_already")),
        Requested::MailOff => Err(WebError::BadRequest(i18n::t("verify-mail-off"))),
    }
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    #[serde(default)]
    pub token: String,
}

/// The link in the mail: a page with a button (a mail scanner that fetches links must not use
/// the link up).
pub async fn email_verify_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<VerifyQuery>,
) -> Result<HttpResponse, WebError> {
    let mut ctx = Context::new();
    ctx.insert("token", &q.token);
    state.form_page(&req, StatusCode::OK, "email_verify.html", ctx)
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub token: String,
}

/// Use the link: the address it was sent to is confirmed. No sign-in needed.
pub async fn email_verify_confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<VerifyForm>,
) -> Result<HttpResponse, WebError> {
    state.csrf.verify(&req, &form.csrf_token)?;
    let mut ctx = Context::new();
    let status = match crate::flow::email::verify(&state.svc, &form.token, state.now()).await {
        Ok(email) => {
            ctx.insert("verified", &email);
            StatusCode::OK
        }
        Err(crate::flow::FlowError::Invalid(m)) => {
            ctx.insert("error", &i18n::flow_text(&m));
            StatusCode::BAD_REQUEST
        }
        Err(e) => return Err(e.into()),
    };
    state.form_page(&req, status, "email_verify.html", ctx)
}
