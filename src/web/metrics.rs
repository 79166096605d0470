//! `/metrics` in the Prometheus text format (the `prometheus` crate encodes it). The figures are
//! read from the node's own counters at scrape time. Open to the loopback interface, or to a
//! scraper presenting `VIGIL_METRICS_TOKEN` as a bearer token; with `VIGIL_METRICS_BIND`, only
//! on that listener (to anyone who reaches it, or to the token's holder when there is one).

use actix_web::{web, HttpRequest, HttpResponse};
use prometheus::{
    Encoder as _, Gauge, IntCounter, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use subtle::ConstantTimeEq as _;

use super::AppState;

fn allowed(state: &AppState, req: &HttpRequest) -> bool {
    // With an operator's listener, `/metrics` is served there and nowhere else.
    let operator = state.svc.settings.metrics_bind.is_some();
    if operator && !super::middleware::on_operator_listener(req) {
        return false;
    }
    match &state.svc.settings.metrics_token {
        Some(token) => req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|given| {
                let (a, b) = (
                    crate::store::token_digest(given),
                    crate::store::token_digest(token),
                );
                bool::from(a.as_bytes().ct_eq(b.as_bytes()))
            }),
        // Whoever reaches the operator's listener: the network it is bound to is the guard.
        None if operator => true,
        // The peer itself, and not a proxy relaying someone else: a reverse proxy on the same
        // host connects from loopback too, so a forwarded request is never "local".
        None => {
            let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"]
                .iter()
                .any(|h| req.headers().contains_key(*h));
            !forwarded && req.peer_addr().is_some_and(|a| a.ip().is_loopback())
        }
    }
}

fn render(state: &AppState) -> Result<Vec<u8>, prometheus::Error> {
    let svc = &state.svc;
    let r = Registry::new();
    let commits = IntCounter::with_opts(Opts::new(
        "vigil_db_commits_total",
        "Durable database commits: write transactions and lone write statements",
    ))?;
    commits.inc_by(svc.db.commits());
    r.register(Box::new(commits))?;
    let age = Gauge::with_opts(Opts::new(
        "vigil_revocation_cache_age_seconds",
        "Age of this node's view of the revocations (checks refresh it when older than 1 s)",
    ))?;
    age.set(svc.revocations.age().map_or(-1.0, |d| d.as_secs_f64()));
    r.register(Box::new(age))?;
    let waiting = IntGauge::with_opts(Opts::new(
        "vigil_password_hash_waiting",
        "Password verifications waiting for a hashing thread",
    ))?;
    waiting.set(i64::try_from(svc.hasher.waiting()).unwrap_or(i64::MAX));
    r.register(Box::new(waiting))?;
    let (idle, in_use, max) = svc.db.pool_state();
    let pool = IntGaugeVec::new(
        Opts::new(
            "vigil_db_pool_connections",
            "Database connections of this node's pool, by state (`max` is the pool's size)",
        ),
        &["state"],
    )?;
    pool.with_label_values(&["idle"]).set(i64::from(idle));
    pool.with_label_values(&["in_use"]).set(i64::from(in_use));
    pool.with_label_values(&["max"]).set(i64::from(max));
    r.register(Box::new(pool))?;
    // The process's counters (requests, sign-ins, step-ups, blocks, waits) and this node's
    // state read just now, in one exposition.
    let mut families = crate::telemetry::METRICS.registry.gather();
    families.extend(r.gather());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    TextEncoder::new().encode(&families, &mut out)?;
    Ok(out)
}

pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if !allowed(&state, &req) {
        return HttpResponse::NotFound().finish();
    }
    match render(&state) {
        Ok(body) => HttpResponse::Ok()
            .content_type(TextEncoder::new().format_type())
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be encoded");
            HttpResponse::InternalServerError().finish()
        }
    }
}
