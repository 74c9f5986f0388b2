//! Payment notices over HTTP: one notice number, a whole position with its
//! installments, every notice of a supply or a filter as a ZIP streamed
//! while it is made, and the Ente's logo. The notices themselves are made
//! by [`incasso_app::notices`].

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use incasso_app::notices::{self, Selection, ZipJob, file_safe, language};
use serde::Deserialize;
use std::io::Write;
use utoipa::IntoParams;

/// The largest logo accepted.
pub const MAX_LOGO_BYTES: usize = 512 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoticeQuery {
    /// `it` (default) or `it-de` for the Italian/German notice.
    lang: Option<String>,
}

fn pdf(name: String, bytes: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// The payment notice of one notice number.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/notices/{noticeNumber}/pdf", tag = "notices",
    params(("fiscalCode" = String, Path), ("noticeNumber" = String, Path), NoticeQuery),
    responses((status = 200, content_type = "application/pdf", body = crate::error::Binary),
              (status = 404, body = crate::error::ProblemJson), (status = 409, body = crate::error::ProblemJson)))]
pub async fn notice_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, nav)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<NoticeQuery>,
) -> Result<Response, ApiError> {
    let ctx = state.ctx(caller);
    let lang = language(q.lang.as_deref())?;
    let bytes = notices::notice_pdf(&ctx, &ente, &nav, lang).await?;
    Ok(pdf(format!("avviso-{nav}.pdf"), bytes))
}

/// The payment notice of a whole position: single solution, alternatives,
/// installments.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/positions/{iupd}/notice.pdf", tag = "notices",
    params(("fiscalCode" = String, Path), ("iupd" = String, Path), NoticeQuery),
    responses((status = 200, content_type = "application/pdf", body = crate::error::Binary),
              (status = 404, body = crate::error::ProblemJson), (status = 409, body = crate::error::ProblemJson)))]
pub async fn position_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<NoticeQuery>,
) -> Result<Response, ApiError> {
    let ctx = state.ctx(caller);
    let lang = language(q.lang.as_deref())?;
    let bytes = notices::position_pdf(&ctx, &ente, &iupd, lang).await?;
    Ok(pdf(format!("avviso-{}.pdf", file_safe(&iupd)), bytes))
}

/// Sends what the ZIP writer writes down a channel, as the response body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))
    }
}

/// Every notice of a supply, as a ZIP streamed while it is made.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/supplies/{id}/notices.zip", tag = "notices",
    params(("fiscalCode" = String, Path), ("id" = i64, Path), NoticeQuery),
    responses((status = 200, content_type = "application/zip", body = crate::error::Binary),
              (status = 404, body = crate::error::ProblemJson), (status = 409, body = crate::error::ProblemJson)))]
pub async fn supply_zip(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, id)): Path<(String, i64)>,
    ApiQuery(q): ApiQuery<NoticeQuery>,
) -> Result<Response, ApiError> {
    let ctx = state.ctx(caller);
    let lang = language(q.lang.as_deref())?;
    let job = notices::zip_job(&ctx, &ente, Selection::Supply(id), lang).await?;
    Ok(stream_zip(job, format!("avvisi-fornitura-{id}.zip")))
}

/// A ZIP made on a blocking thread and sent while it is made.
pub(crate) fn stream_zip(job: ZipJob, name: String) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx: tx.clone(),
            buffer: Vec::new(),
        };
        if let Err(e) = job.write(&handle, writer, &|_| {}) {
            tracing::warn!(error = %e, ?job, "notices ZIP interrupted");
            // The client sees a broken download rather than a valid ZIP
            // that lacks notices.
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let mut resp = Response::new(Body::from_stream(Chunks(rx)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct FilterQuery {
    /// `it` (default) or `it-de`.
    lang: Option<String>,
    /// Positions in this state (VALID, PARTIALLY_PAID, ...).
    status: Option<String>,
    /// A due date on or after this day (`yyyy-MM-dd`).
    due_date_from: Option<String>,
    /// A due date on or before this day (`yyyy-MM-dd`).
    due_date_to: Option<String>,
    /// The debtor's fiscal code.
    debtor_fiscal_code: Option<String>,
}

/// The notices of the positions a filter finds, as a ZIP streamed while it
/// is made: a debtor's, or those falling due in a period.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/notices.zip", tag = "notices",
    params(("fiscalCode" = String, Path), FilterQuery),
    responses((status = 200, content_type = "application/zip", body = crate::error::Binary),
              (status = 400, body = crate::error::ProblemJson)))]
pub async fn filtered_zip(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Response, ApiError> {
    let ctx = state.ctx(caller);
    let lang = language(q.lang.as_deref())?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse().map_err(|_| {
                ApiError::bad_request("BAD_STATUS", format!("status: stato '{s}' sconosciuto"))
            })
        })
        .transpose()?;
    let filter = incasso_store::ListFilter {
        statuses: status.into_iter().collect(),
        due_date_from: q
            .due_date_from
            .as_deref()
            .map(|d| crate::gpd::parse_day("dueDateFrom", d, false))
            .transpose()?,
        due_date_to: q
            .due_date_to
            .as_deref()
            .map(|d| crate::gpd::parse_day("dueDateTo", d, true))
            .transpose()?,
        debtor_fiscal_code: q.debtor_fiscal_code.clone(),
        ..incasso_store::ListFilter::default()
    };
    let job = notices::zip_job(&ctx, &ente, Selection::Filter(filter), lang).await?;
    Ok(stream_zip(job, "avvisi.zip".into()))
}

/// A receiver as the body's stream.
struct Chunks(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Sets the Ente's logo (PNG or JPEG, at most 512 KiB), printed on its
/// notices.
#[utoipa::path(put, path = "/api/v1/enti/{fiscalCode}/logo", tag = "notices",
    params(("fiscalCode" = String, Path)),
    request_body(content = String, content_type = "image/png"),
    responses((status = 204), (status = 400, body = crate::error::ProblemJson)))]
pub async fn put_logo(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    notices::put_logo(&state.ctx(caller), &ente, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/enti/{fiscalCode}/logo", tag = "notices",
    params(("fiscalCode" = String, Path)), responses((status = 204)))]
pub async fn delete_logo(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
) -> Result<StatusCode, ApiError> {
    notices::delete_logo(&state.ctx(caller), &ente).await?;
    Ok(StatusCode::NO_CONTENT)
}
