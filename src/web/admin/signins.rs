//! `/admin/signins`: the sign-in log with filters and keyset pages, one sign-in's full
//! explanation, and the CSV / JSON-lines exports (streamed in batches, at most
//! `EXPORT_MAX_ROWS` rows, so an export never holds the log in memory).

use actix_web::http::{header, StatusCode};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tera::Context;

use super::{gate, render, Admin};
use crate::flow::signin_log::{
    self, RawFilter, ACCOUNT_RISKS, CSV_HEADER, DECISIONS, EXPORT_BATCH, EXPORT_MAX_ROWS, LEVELS,
    OUTCOMES, REASONS,
};
use crate::flow::{FlowError, Services};
use crate::store::signin_log::{Cursor, LogFilter};
use crate::web::errors::WebError;
use crate::web::AppState;

const HERE: &str = "/admin/signins";

/// The filters plus the page cursor, all text (bad values become a readable 400 page).
#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(flatten)]
    pub filter: RawFilter,
    #[serde(default)]
    pub after: String,
}

/// Where to come back to after signing in: this page with its query.
fn here_with(req: &HttpRequest) -> String {
    match req.query_string() {
        "" => req.path().to_owned(),
        q => format!("{}?{q}", req.path()),
    }
}

fn page_ctx(raw: &RawFilter) -> Context {
    let mut ctx = Context::new();
    ctx.insert("f", raw);
    ctx.insert("decisions", &DECISIONS);
    ctx.insert("levels", &LEVELS);
    ctx.insert("outcomes", &OUTCOMES);
    ctx.insert("account_risks", &ACCOUNT_RISKS);
    ctx.insert("reasons", &REASONS);
    ctx.insert("export_max", &EXPORT_MAX_ROWS);
    let q = raw.query();
    ctx.insert("filter_query", &q);
    ctx
}

fn bad_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Admin,
    raw: &RawFilter,
    msg: &str,
) -> Result<HttpResponse, WebError> {
    let mut ctx = page_ctx(raw);
    ctx.insert("entries", &Vec::<()>::new());
    ctx.insert("error", msg);
    render(
        state,
        req,
        admin,
        StatusCode::BAD_REQUEST,
        "admin/signins.html",
        "signins",
        ctx,
    )
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<LogQuery>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, &here_with(&req)).await?);
    let parsed = match signin_log::parse(&state.svc, &q.filter).await {
        Ok(f) => signin_log::parse_cursor(&q.after).map(|c| (f, c)),
        Err(e) => Err(e),
    };
    let (filter, after) = match parsed {
        Ok(v) => v,
        Err(FlowError::Invalid(m)) => return bad_page(&state, &req, &admin, &q.filter, &m),
        Err(e) => return Err(e.into()),
    };
    let first_page = after.is_none();
    let page = signin_log::page(&state.svc, &filter, after).await?;
    let mut ctx = page_ctx(&q.filter);
    ctx.insert("entries", &page.entries);
    ctx.insert("next", &page.next);
    ctx.insert("first_page", &first_page);
    render(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        "admin/signins.html",
        "signins",
        ctx,
    )
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, &here_with(&req)).await?);
    let id = path.into_inner();
    if id.len() > 64 {
        return Err(WebError::NotFound);
    }
    let d = signin_log::detail(&state.svc, &id).await?;
    let mut ctx = Context::new();
    ctx.insert("d", &d);
    render(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        "admin/signin.html",
        "signins",
        ctx,
    )
}

#[derive(Clone, Copy)]
enum Format {
    Csv,
    JsonLines,
}

/// Where an export stands between batches.
struct ExportState {
    svc: Services,
    filter: LogFilter,
    format: Format,
    after: Option<Cursor>,
    sent: i64,
    header_sent: bool,
    done: bool,
}

fn csv_bytes(records: impl Iterator<Item = [String; 24]>, header: bool) -> Result<Bytes, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if header {
        w.write_record(CSV_HEADER).map_err(|e| e.to_string())?;
    }
    for r in records {
        w.write_record(&r).map_err(|e| e.to_string())?;
    }
    w.into_inner().map(Bytes::from).map_err(|e| e.to_string())
}

/// The next chunk of the export: one database batch, serialised.
async fn next_chunk(mut st: ExportState) -> Option<(Result<Bytes, actix_web::Error>, ExportState)> {
    if st.done {
        return None;
    }
    let limit = EXPORT_BATCH.min(EXPORT_MAX_ROWS - st.sent);
    let batch = if limit > 0 {
        signin_log::export_batch(&st.svc, &st.filter, st.after.clone(), limit).await
    } else {
        Ok(signin_log::Batch {
            rows: Vec::new(),
            next: None,
        })
    };
    let batch = match batch {
        Ok(b) => b,
        Err(e) => {
            // Abort the transfer: a cut-off download is visible, a silently short file is not.
            tracing::error!(error = %e, "sign-in export failed");
            st.done = true;
            return Some((
                Err(actix_web::error::ErrorInternalServerError("export failed")),
                st,
            ));
        }
    };
    st.sent += batch.rows.len() as i64;
    st.after = batch.next;
    st.done = st.after.is_none() || st.sent >= EXPORT_MAX_ROWS;
    let header = !st.header_sent;
    st.header_sent = true;
    let bytes = match st.format {
        Format::Csv => csv_bytes(
            batch.rows.iter().map(|(e, _, _)| signin_log::csv_record(e)),
            header,
        ),
        Format::JsonLines => Ok(Bytes::from(
            batch
                .rows
                .into_iter()
                .map(|(e, f, a)| signin_log::json_line(&e, f, a))
                .collect::<String>(),
        )),
    };
    match bytes {
        Ok(b) => Some((Ok(b), st)),
        Err(e) => {
            tracing::error!(error = %e, "sign-in export failed");
            st.done = true;
            Some((
                Err(actix_web::error::ErrorInternalServerError("export failed")),
                st,
            ))
        }
    }
}

async fn export(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<RawFilter>,
    format: Format,
) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, &here_with(&req)).await?);
    let filter = match signin_log::parse(&state.svc, &q).await {
        Ok(f) => f,
        Err(FlowError::Invalid(m)) => return bad_page(&state, &req, &admin, &q, &m),
        Err(e) => return Err(e.into()),
    };
    let (ext, content_type) = match format {
        Format::Csv => ("csv", "text/csv; charset=utf-8"),
        Format::JsonLines => ("jsonl", "application/jsonl; charset=utf-8"),
    };
    let day = chrono::DateTime::from_timestamp_micros(state.now().micros())
        .map(|t| t.format("%Y%m%d").to_string())
        .unwrap_or_default();
    let st = ExportState {
        svc: state.svc.clone(),
        filter,
        format,
        after: None,
        sent: 0,
        header_sent: false,
        done: false,
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"vigil-signins-{day}.{ext}\""),
        ))
        .streaming(futures_util::stream::unfold(st, next_chunk)))
}

pub async fn export_csv(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<RawFilter>,
) -> Result<HttpResponse, WebError> {
    export(state, req, q, Format::Csv).await
}

pub async fn export_jsonl(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<RawFilter>,
) -> Result<HttpResponse, WebError> {
    export(state, req, q, Format::JsonLines).await
}

/// A query the extractor cannot read (a repeated field, say) is the same readable 400 page as
/// any other bad filter, not the extractor's plain-text answer.
fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e, _| {
        WebError::BadRequest(format!(
            "These filters cannot be read ({e}). Clear them and try again."
        ))
        .into()
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, handler) in [
        (HERE, web::get().to(list)),
        ("/admin/signins/export.csv", web::get().to(export_csv)),
        ("/admin/signins/export.jsonl", web::get().to(export_jsonl)),
    ] {
        cfg.service(web::resource(path).app_data(query_config()).route(handler));
    }
    cfg.route("/admin/signins/{id}", web::get().to(show));
}
