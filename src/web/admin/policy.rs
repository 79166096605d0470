//! `/admin/policy`: thresholds, the action per level, impossible-travel speed, the deny list,
//! a report-only candidate with a backtest against the stored sign-ins, and the risk model:
//! the live one, a shadow model scored beside it, and its promotion through the gate
//! (`flow::models`). Every change here is a sensitive action.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tera::Context;

use super::{gate, notice_text, Admin, CsrfForm};
use crate::flow::models::{self, Judgement};
use crate::flow::policy::{self, Candidate, RuntimePolicy};
use crate::flow::{reports, FlowError};
use crate::risk::{Action, Policy};
use crate::web::errors::WebError;
use crate::web::{see_other, AppState};

const HERE: &str = "/admin/policy";
/// Days of sign-ins the backtest replays.
const BACKTEST_DAYS: i64 = 7;
/// Days of sign-ins the shadow comparison covers.
const SHADOW_DAYS: i64 = 30;

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

/// The form; every field is a string so that a bad value is a readable message, not a 400
/// from the extractor.
#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub medium: String,
    #[serde(default)]
    pub high: String,
    #[serde(default)]
    pub low_action: String,
    #[serde(default)]
    pub medium_action: String,
    #[serde(default)]
    pub high_action: String,
    #[serde(default)]
    pub deny_listed_action: String,
    #[serde(default)]
    pub travel_speed_kmh: String,
    #[serde(default)]
    pub candidate_enabled: Option<String>,
    #[serde(default)]
    pub candidate_medium: String,
    #[serde(default)]
    pub candidate_high: String,
    #[serde(default)]
    pub candidate_low_action: String,
    #[serde(default)]
    pub candidate_medium_action: String,
    #[serde(default)]
    pub candidate_high_action: String,
    #[serde(default)]
    pub candidate_deny_listed_action: String,
}

const ACTIONS: [(&str, &str); 4] = [
    ("allow", "Allow"),
    ("step_up", "Ask for a second factor"),
    (
        "step_up_phishing_resistant",
        "Ask for a passkey (else block)",
    ),
    ("block", "Block"),
];

fn action(s: &str, what: &str) -> Result<Action, FlowError> {
    Ok(match s {
        "allow" => Action::Allow,
        "step_up" => Action::StepUp,
        "step_up_phishing_resistant" => Action::StepUpPhishingResistant,
        "block" => Action::Block,
        _ => return Err(FlowError::Invalid(format!("Choose an action for {what}."))),
    })
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Allow => "allow",
        Action::StepUp => "step_up",
        Action::StepUpPhishingResistant => "step_up_phishing_resistant",
        Action::Block => "block",
    }
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, FlowError> {
    s.trim()
        .parse()
        .map_err(|_| FlowError::Invalid(format!("{what} must be a whole number.")))
}

impl PolicyForm {
    fn parse(&self) -> Result<RuntimePolicy, FlowError> {
        let actions =
            |low: &str, medium: &str, high: &str, deny: &str| -> Result<Policy, FlowError> {
                Ok(Policy {
                    low: action(low, "low risk")?,
                    medium: action(medium, "medium risk")?,
                    high: action(high, "high risk")?,
                    deny_listed: action(deny, "deny-listed networks")?,
                })
            };
        let candidate = match self.candidate_enabled.as_deref() {
            Some("on" | "1" | "true") => Some(Candidate {
                medium: number(&self.candidate_medium, "The candidate's medium threshold")?,
                high: number(&self.candidate_high, "The candidate's high threshold")?,
                actions: actions(
                    &self.candidate_low_action,
                    &self.candidate_medium_action,
                    &self.candidate_high_action,
                    &self.candidate_deny_listed_action,
                )?,
            }),
            _ => None,
        };
        let p = RuntimePolicy {
            medium: number(&self.medium, "The medium threshold")?,
            high: number(&self.high, "The high threshold")?,
            actions: actions(
                &self.low_action,
                &self.medium_action,
                &self.high_action,
                &self.deny_listed_action,
            )?,
            travel_speed_kmh: number(&self.travel_speed_kmh, "The travel speed")?,
            candidate,
        };
        p.validate()?;
        Ok(p)
    }
}

fn policy_json(p: &Policy) -> serde_json::Value {
    serde_json::json!({
        "low": action_name(p.low),
        "medium": action_name(p.medium),
        "high": action_name(p.high),
        "deny_listed": action_name(p.deny_listed),
    })
}

#[allow(clippy::too_many_arguments)]
async fn page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    status: StatusCode,
    shown: RuntimePolicy,
    error: Option<&str>,
    notice: Option<&str>,
    judgement: Option<&Judgement>,
) -> Result<HttpResponse, WebError> {
    let now = state.now();
    let in_force = policy::current(&state.svc).await?;
    let stored = models::current(&state.svc).await?;
    // Only the current shadow model's sign-ins: since it was set, at most SHADOW_DAYS back.
    let shadow_cmp = match &stored.shadow {
        Some(m) => reports::shadow_comparison(&state.svc, now, SHADOW_DAYS, m.since).await?,
        None => reports::ShadowComparison::default(),
    };
    let version =
        |cfg: &crate::risk::RiskConfig| crate::risk::model_version(&in_force.config(cfg, None));
    let described = |m: Option<&models::NamedModel>| {
        m.map(|m| {
            serde_json::json!({
                "name": m.name,
                "version": version(&m.config),
                "since": crate::clock::Timestamp(m.since).display(),
                "by": m.by,
            })
        })
    };
    let live_model_json = described(stored.live.as_ref()).unwrap_or_else(|| {
        serde_json::json!({
            "name": crate::risk::MODEL_CODE_VERSION,
            "version": version(&stored.live_config(&state.svc.risk)),
            "since": null,
            "by": null,
        })
    });
    let shadow_model_json = described(stored.shadow.as_ref());
    let backtest = reports::backtest(&state.svc, now, BACKTEST_DAYS, &in_force).await?;
    let (deny_path, deny_len) = state.svc.risk.denylist_status();
    let mut ctx = Context::new();
    let candidate = shown.candidate.unwrap_or(Candidate {
        medium: shown.medium,
        high: shown.high,
        actions: shown.actions,
    });
    ctx.insert(
        "p",
        &serde_json::json!({
            "medium": shown.medium,
            "high": shown.high,
            "actions": policy_json(&shown.actions),
            "travel_speed_kmh": shown.travel_speed_kmh,
            "candidate_enabled": shown.candidate.is_some(),
            "candidate": {
                "medium": candidate.medium,
                "high": candidate.high,
                "actions": policy_json(&candidate.actions),
            },
        }),
    );
    ctx.insert(
        "action_choices",
        &ACTIONS
            .iter()
            .map(|(v, l)| serde_json::json!({"value": v, "label": l}))
            .collect::<Vec<_>>(),
    );
    ctx.insert("levels", &["low", "medium", "high", "deny_listed"]);
    ctx.insert(
        "deny",
        &serde_json::json!({
            "path": deny_path.map(|p| p.display().to_string()),
            "entries": deny_len,
        }),
    );
    ctx.insert("backtest", &backtest);
    ctx.insert("live_model", &live_model_json);
    ctx.insert("shadow_model", &shadow_model_json);
    ctx.insert("shadow_cmp", &shadow_cmp);
    ctx.insert(
        "versions",
        &crate::risk::config::VERSIONS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>(),
    );
    ctx.insert("gate_days", &gate_days(state));
    if let Some(j) = judgement {
        ctx.insert(
            "judgement",
            &serde_json::json!({
                "ship": j.ship,
                "live": j.live,
                "shadow": j.shadow,
                "log": j.exported,
                "checks": j.checks.iter().map(|c| serde_json::json!({
                    "what": c.what,
                    "previous": c.previous.map(|x| format!("{x:.4}")),
                    "candidate": c.candidate.map(|x| format!("{x:.4}")),
                    "pass": c.pass,
                })).collect::<Vec<_>>(),
            }),
        );
    }
    ctx.insert("candidate_in_force", &in_force.candidate.is_some());
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    if let Some(n) = notice {
        ctx.insert("notice", n);
    }
    super::render(
        state,
        req,
        admin,
        status,
        "admin/policy.html",
        "policy",
        ctx,
    )
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    let current = policy::current(&state.svc).await?;
    let notice = notice_text(q.notice.as_deref());
    page(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        current,
        None,
        notice,
        None,
    )
    .await
}

pub async fn save(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PolicyForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    match form.parse() {
        Ok(p) => {
            policy::save(&state.svc, &admin.actor, state.now(), p).await?;
            Ok(see_other("/admin/policy?notice=saved"))
        }
        Err(FlowError::Invalid(msg)) => {
            let current = policy::current(&state.svc).await?;
            page(
                &state,
                &req,
                &admin,
                StatusCode::BAD_REQUEST,
                current,
                Some(&msg),
                None,
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// Re-read the deny-list file now (it is also re-read on SIGHUP).
pub async fn reload_denylist(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    match crate::flow::risk::reload_denylist_audited(&state.svc, &admin.actor, state.now()).await {
        Ok(_) => Ok(see_other("/admin/policy?notice=saved")),
        Err(FlowError::Invalid(msg)) => {
            let current = policy::current(&state.svc).await?;
            page(
                &state,
                &req,
                &admin,
                StatusCode::BAD_REQUEST,
                current,
                Some(&msg),
                None,
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// Days of labelled sign-ins the promotion gate judges on: the retraining period (90 by
/// default), or 90 when retraining is off.
fn gate_days(state: &AppState) -> u32 {
    match state.svc.settings.risk_retrain_days {
        0 => 90,
        d => d,
    }
}

#[derive(Deserialize)]
pub struct ShadowForm {
    #[serde(default)]
    pub csrf_token: String,
    #[serde(default)]
    pub name: String,
    /// A version name or the JSON `vigil risk fit` prints.
    #[serde(default)]
    pub config: String,
}

async fn model_error(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    e: FlowError,
) -> Result<HttpResponse, WebError> {
    let (status, msg) = super::readable(e)?;
    let current = policy::current(&state.svc).await?;
    page(state, req, admin, status, current, Some(&msg), None, None).await
}

/// Put a model in shadow: scored beside the live one on every sign-in from now on.
pub async fn set_shadow(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ShadowForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let result = match models::parse_config(&form.config) {
        Ok((version, cfg)) => {
            let name = match (form.name.trim(), version) {
                ("", Some(v)) => v,
                (n, _) => n,
            };
            models::set_shadow(
                &state.svc,
                &admin.actor,
                &admin.user.username,
                state.now(),
                name,
                cfg,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other("/admin/policy?notice=shadow_set#model")),
        Err(e) => model_error(&state, &req, &admin, e).await,
    }
}

pub async fn clear_shadow(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    match models::clear_shadow(&state.svc, &admin.actor, state.now()).await {
        Ok(()) => Ok(see_other("/admin/policy?notice=shadow_cleared#model")),
        Err(e) => model_error(&state, &req, &admin, e).await,
    }
}

/// Run the gate on vigil's own labelled log and promote the shadow model if it passes; the
/// page shows every check either way.
pub async fn promote(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, HERE).await?);
    state.csrf.verify(&req, &form.csrf_token)?;
    let days = gate_days(&state);
    match models::promote(
        &state.svc,
        &admin.actor,
        &admin.user.username,
        state.now(),
        days,
    )
    .await
    {
        Ok(j) => {
            let current = policy::current(&state.svc).await?;
            let notice = if j.ship {
                "The shadow model passed the gate and is now live on every node."
            } else {
                "The shadow model did not pass the gate; the live model is unchanged."
            };
            page(
                &state,
                &req,
                &admin,
                StatusCode::OK,
                current,
                None,
                Some(notice),
                Some(&j),
            )
            .await
        }
        Err(e) => model_error(&state, &req, &admin, e).await,
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(HERE, web::get().to(show))
        .route(HERE, web::post().to(save))
        .route(
            "/admin/policy/denylist/reload",
            web::post().to(reload_denylist),
        )
        .route("/admin/policy/model/shadow", web::post().to(set_shadow))
        .route(
            "/admin/policy/model/shadow/clear",
            web::post().to(clear_shadow),
        )
        .route("/admin/policy/model/promote", web::post().to(promote));
}
