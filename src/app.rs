//! Build the actix application: state, middleware, routes. Used by `main` and by the tests'
//! `spawn_app`, so the tests run exactly what production runs.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Compress};
use actix_web::{web, App, HttpRequest, HttpServer};

use crate::config::Settings;
use crate::flow::{random_token, Services, StartError};
use crate::store;
use crate::web::errors::WebError;
use crate::web::{self as w, csrf::Csrf, middleware as mw, AppState};

/// Load the web layer's shared secrets (from the database, so every node agrees).
pub fn build_state(svc: Services) -> Result<web::Data<AppState>, StartError> {
    use base64::Engine as _;
    let now = svc.clock.now();
    let db_err = |source| StartError::Database {
        url: svc.settings.database_url.redacted(),
        source,
    };
    let mut conn = svc.db.get().map_err(db_err)?;
    let key_b64 = store::secrets::get_or_create(&mut conn, "csrf_key", now.micros(), random_token)
        .map_err(db_err)?;
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
        discovery: crate::oidc::discovery::document(
            svc.settings.issuer.as_str(),
            &w::i18n::supported_codes(),
        ),
        draining: Default::default(),
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

/// A node's services and web state, once its database answered and migrations ran.
pub struct Ready {
    pub svc: Services,
    pub state: web::Data<AppState>,
}

/// The first wait between attempts to reach the database at start-up; it doubles up to
/// [`START_RETRY_MAX`].
pub const START_RETRY_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between attempts: a node is ready at most this long (plus one attempt)
/// after its database came back.
pub const START_RETRY_MAX: Duration = Duration::from_secs(1);

fn attempt(db: &store::Db, settings: &Settings) -> Result<Ready, StartError> {
    let svc = Services::start_on(db.clone(), settings.clone(), None)?;
    let state = build_state(svc.clone())?;
    Ok(Ready { svc, state })
}

/// Connect, migrate and load the shared state. While the database cannot be reached, answer
/// on `listener` from [`standby`] and try again with backoff, so a node started during an
/// outage becomes ready by itself when the database comes up. `Ok(None)`: `stop` resolved
/// (SIGTERM) before that. Any other start-up failure is returned at once.
pub async fn start_when_ready(
    settings: Settings,
    listener: &TcpListener,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Option<Ready>, StartError> {
    let url = settings.database_url.clone();
    let db = store::Db::connect(&url).map_err(|source| StartError::Database {
        url: url.redacted(),
        source,
    })?;
    // One pool for every attempt: its reconnects carry on between them.
    let try_once = |db: store::Db, settings: Settings| async move {
        tokio::task::spawn_blocking(move || attempt(&db, &settings))
            .await
            .map_err(|e| StartError::Other(format!("start-up task failed: {e}")))?
    };
    let first = try_once(db.clone(), settings.clone()).await;
    match first {
        Ok(ready) => return Ok(Some(ready)),
        Err(e) if !e.is_unavailable() => return Err(e),
        Err(e) => tracing::warn!(
            error = %e,
            "the database cannot be reached at start-up; waiting for it (/healthz answers 200, /readyz 503)"
        ),
    }
    let since = std::time::Instant::now();
    let socket = listener
        .try_clone()
        .map_err(|e| StartError::Other(format!("listener: {e}")))?;
    let standby =
        standby(socket, db.backend()).map_err(|e| StartError::Other(format!("listener: {e}")))?;
    let handle = standby.handle();
    actix_web::rt::spawn(standby);
    tokio::pin!(stop);
    let mut wait = START_RETRY_FIRST;
    let outcome = loop {
        tokio::select! {
            _ = &mut stop => break Ok(None),
            _ = tokio::time::sleep(wait) => {}
        }
        let r = tokio::select! {
            _ = &mut stop => break Ok(None),
            r = try_once(db.clone(), settings.clone()) => r,
        };
        match r {
            Ok(ready) => {
                tracing::info!(
                    waited_ms = since.elapsed().as_millis() as u64,
                    "the database answered and is migrated: starting"
                );
                break Ok(Some(ready));
            }
            Err(e) if e.is_unavailable() => {
                tracing::debug!(error = %e, "the database still cannot be reached");
                wait = (wait * 2).min(START_RETRY_MAX);
            }
            Err(e) => break Err(e),
        }
    };
    // In-flight standby answers finish; the socket stays open for `run`.
    handle.stop(true).await;
    outcome
}

/// What a node answers while it waits for its database at start-up (`vigil serve` started
/// during an outage): `/healthz` 200 — the process is alive, restarting it would not help —
/// `/readyz` 503, the API endpoints a JSON `temporarily_unavailable` and every page a readable
/// 503. `serve` stops it and starts [`run`] on the same socket once the database answered and
/// migrations ran, so the port stays open (connections wait in the backlog meanwhile).
pub fn standby(listener: TcpListener, backend: &'static str) -> std::io::Result<Server> {
    use actix_web::HttpResponse;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(mw::headers))
            .route(
                "/healthz",
                web::get().to(move || async move {
                    HttpResponse::Ok().json(w::health::body("starting", backend, false))
                }),
            )
            .route(
                "/readyz",
                web::get().to(move || async move {
                    HttpResponse::ServiceUnavailable()
                        .json(w::health::body("starting", backend, false))
                }),
            )
            .default_service(web::to(|req: HttpRequest| async move {
                if matches!(
                    req.path(),
                    "/token" | "/userinfo" | "/introspect" | "/revoke"
                ) {
                    return w::oidc::oauth_error(&crate::oidc::OAuthError::unavailable());
                }
                actix_web::ResponseError::error_response(&WebError::Unavailable(
                    "waiting for the database at start-up".into(),
                ))
            }))
    })
    .workers(1)
    // `serve` watches for SIGTERM itself while it waits; this server only answers.
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?;
    Ok(server.run())
}

/// Start serving on `listener`. Stopped through its handle (`serve` does it on SIGTERM/SIGINT,
/// after draining): it stops accepting, lets in-flight requests finish for up to
/// [`SHUTDOWN_GRACE_SECS`], then resolves.
/// `operator`: the listener of `VIGIL_METRICS_BIND`, which serves only `/metrics` and the
/// health probes.
pub fn run(
    state: web::Data<AppState>,
    listener: TcpListener,
    operator: Option<TcpListener>,
    workers: Option<usize>,
) -> std::io::Result<Server> {
    let operator_addr = operator.as_ref().map(|l| l.local_addr()).transpose()?;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::Data::new(mw::OperatorListener(operator_addr)))
            .app_data(
                web::FormConfig::default()
                    .limit(64 * 1024)
                    .error_handler(form_error),
            )
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .wrap(from_fn(w::i18n::language))
            .wrap(from_fn(mw::operator_only))
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
    // `serve` handles the signals: first it drains (readiness 503), then it stops this server.
    .disable_signals()
    .listen(listener)?;
    if let Some(op) = operator {
        server = server.listen(op)?;
    }
    if let Some(n) = workers {
        server = server.workers(n);
    }
    Ok(server.run())
}
