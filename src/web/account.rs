//! The signed-in user's own page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tera::Context;

use super::errors::WebError;
use super::templates::page;
use super::{see_other, AppState, SESSION_COOKIE};
use crate::clock::Timestamp;
use crate::flow::session;

pub async fn show(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(see_other("/login"));
    };
    let Some((s, user)) = session::resolve(&state.svc, cookie.value(), state.now()).await? else {
        return Ok(see_other("/login"));
    };
    let uid = user.id.clone();
    let consents = state
        .svc
        .db
        .run(move |c| {
            let mut out = Vec::new();
            for g in crate::store::consents::for_user(c, &uid)? {
                let name = crate::store::clients::find(c, &g.client_id)?.map(|cl| cl.name).unwrap_or_else(|| g.client_id.clone());
                out.push(json!({ "client_id": g.client_id, "client_name": name, "scope": g.scope, "granted": Timestamp(g.granted_at).display() }));
            }
            Ok(out)
        })
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let (token, csrf_cookie) = state.csrf.issue(&req)?;
    let mut ctx = Context::new();
    ctx.insert("csrf_token", &token);
    ctx.insert("signed_in_as", &user.username);
    ctx.insert(
        "user",
        &json!({ "username": user.username, "email": user.email, "name": user.name, "is_admin": user.is_admin }),
    );
    ctx.insert(
        "session",
        &json!({
            "created": Timestamp(s.created_at).display(),
            "expires": Timestamp(s.expires_at.min(s.idle_expires_at)).display(),
        }),
    );
    ctx.insert("consents", &consents);
    let mut resp = page(StatusCode::OK, "account.html", &ctx);
    resp.add_cookie(&csrf_cookie)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(resp)
}

#[derive(serde::Deserialize)]
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
    let Some((_, user)) = super::current_session(&state, &req).await? else {
        return Ok(see_other("/login"));
    };
    let (uid, cid, auditor, now) = (
        user.id.clone(),
        form.client_id.clone(),
        state.svc.auditor.clone(),
        state.now(),
    );
    state
        .svc
        .db
        .run(move |c| {
            crate::store::transaction(c, |c| {
                if crate::store::consents::revoke(c, &uid, &cid)? {
                    auditor.record(
                        c,
                        now,
                        crate::audit::AuditEvent::new("consent.revoked")
                            .actor(uid.clone())
                            .target(cid.clone()),
                    )?;
                }
                Ok(())
            })
        })
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(see_other("/account"))
}
