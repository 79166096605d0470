//! Liveness and readiness for load balancers and orchestrators.
//!
//! `/healthz` is liveness: the process is up and serving, 200 even while the database is down
//! (the body says so), so that an orchestrator does not restart every node of a deployment
//! during a database outage — a restart cannot bring the database back. `/readyz` is readiness:
//! 200 only when the database answers, so a load balancer sends traffic elsewhere meanwhile.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// How long a probe waits for the database: below the 1 s timeout probes commonly have.
pub const PROBE_WAIT: Duration = Duration::from_millis(800);

/// The body both probes answer with.
pub fn body(status: &str, backend: &str, reachable: bool) -> serde_json::Value {
    json!({
        "status": status,
        "database": { "backend": backend, "reachable": reachable },
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// Always 200 (the process is alive), with the database's state in the body.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let db_ok = state.svc.db.ping(PROBE_WAIT).await;
    let status = if db_ok { "ok" } else { "degraded" };
    HttpResponse::Ok().json(body(status, state.svc.db.backend(), db_ok))
}

/// 200 when the database answers (migrations ran before the server started), 503 otherwise.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        // Stopping: the load balancer should send new requests to the other nodes now, while
        // this one still answers those that arrive meanwhile.
        return HttpResponse::ServiceUnavailable().json(body(
            "draining",
            state.svc.db.backend(),
            true,
        ));
    }
    let db_ok = state.svc.db.ping(PROBE_WAIT).await;
    let b = body(
        if db_ok { "ok" } else { "unavailable" },
        state.svc.db.backend(),
        db_ok,
    );
    if db_ok {
        HttpResponse::Ok().json(b)
    } else {
        HttpResponse::ServiceUnavailable().json(b)
    }
}
