//! Build the actix application: state, middleware, routes. Used by `main` and by the tests'
//! `spawn_app`, so the tests run exactly what production runs.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Compress};
use actix_web::{web, App, HttpRequest, HttpServer};

use crate::flow::{random_token, Services, StartError};
use crate::store;
use crate::web::errors::WebError;
use crate::web::{self as w, csrf::Csrf, middleware as mw, AppState};

/// Load the web layer's shared secrets (from the database, so every node agrees).
pub fn build_state(svc: Services) -> Result<web::Data<AppState>, StartError> {
    use base64::Engine as _;
    let now = svc.clock.now();
    let mut conn = svc.db.get().map_err(|e| StartError::Other(e.to_string()))?;
    let key_b64 = store::secrets::get_or_create(&mut conn, "csrf_key", now.micros(), random_token)
        .map_err(|e| StartError::Other(e.to_string()))?;
    drop(conn);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key_b64.as_bytes())
        .map_err(|e| StartError::Other(format!("stored csrf key: {e}")))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StartError::Other("stored csrf key has the wrong length".into()))?;
    let secure = svc.settings.issuer.is_https();
    Ok(web::Data::new(AppState {
        csrf: Csrf::new(key, secure),
        discovery: crate::oidc::discovery::document(svc.settings.issuer.as_str()),
        svc,
    }))
}

/// Form and query bodies that do not parse are a readable 400, never a bare actix error.
fn form_error(err: actix_web::error::UrlencodedError, _req: &HttpRequest) -> actix_web::Error {
    WebError::BadRequest(format!("The form could not be read ({err}).")).into()
}

fn query_error(err: actix_web::error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    WebError::BadRequest(format!("The address has invalid parameters ({err}).")).into()
}

/// How long a stopping node lets in-flight requests finish (a password hash waiting in the
/// queue included) before it closes their connections; below the 30 s orchestrators commonly
/// wait between SIGTERM and SIGKILL.
pub const SHUTDOWN_GRACE_SECS: u64 = 20;

/// Start serving on `listener`. The returned server stops gracefully on SIGINT/SIGTERM: it stops
/// accepting, lets in-flight requests finish for up to [`SHUTDOWN_GRACE_SECS`], then resolves.
pub fn run(
    state: web::Data<AppState>,
    listener: TcpListener,
    workers: Option<usize>,
) -> std::io::Result<Server> {
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(64 * 1024)
                    .error_handler(form_error),
            )
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .wrap(from_fn(mw::device_cookie))
            .wrap(from_fn(mw::headers))
            .wrap(Compress::default())
            .wrap(from_fn(mw::access_log))
            .configure(w::routes)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(WebError::NotFound)
            }))
    })
    .shutdown_timeout(SHUTDOWN_GRACE_SECS)
    .listen(listener)?;
    if let Some(n) = workers {
        server = server.workers(n);
    }
    Ok(server.run())
}
