//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// 200 with the database's state when it answers, 503 otherwise.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let db_ok = state.svc.db.ping().await;
    let body = json!({
        "status": if db_ok { "ok" } else { "degraded" },
        "database": { "backend": state.svc.db.backend(), "reachable": db_ok },
        "version": env!("CARGO_PKG_VERSION"),
    });
    if db_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Ready to take traffic: same check (migrations ran before the listener opened).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    healthz(state).await
}
