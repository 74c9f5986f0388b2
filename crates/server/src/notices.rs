//! Payment notices over HTTP: one notice number, a whole position with its
//! installments, every notice of a supply as a ZIP streamed while it is
//! made, and the Ente's logo. Notices are made on demand, never while a
//! supply loads.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use incasso_notice::Language;
use incasso_notice::position::{Refusal, from_position};
use incasso_store::{Store, StoredPosition};
use serde::Deserialize;
use std::io::Write;
use utoipa::IntoParams;

/// The largest logo accepted.
pub const MAX_LOGO_BYTES: usize = 512 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
pub struct NoticeQuery {
    /// `it` (default) or `it-de` for the Italian/German notice.
    lang: Option<String>,
}

fn language(lang: Option<&str>) -> Result<Language, ApiError> {
    lang.unwrap_or("it")
        .parse()
        .map_err(|e: String| ApiError::bad_request("BAD_LANGUAGE", e))
}

fn refusal(r: Refusal) -> ApiError {
    let status = match r {
        Refusal::UnknownNotice => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    };
    ApiError::new(status, r.code(), r.to_string())
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

/// The notice of one stored position (of one of its notice numbers when
/// `only` is given).
pub async fn render_position(
    store: &Store,
    ente: &str,
    p: &StoredPosition,
    only: Option<&str>,
    lang: Language,
) -> Result<Vec<u8>, ApiError> {
    let ente_data = store.get_ente(ente).await?;
    let logo = store.logo(ente).await?.map(|(_, bytes)| bytes);
    let notice =
        from_position(&ente_data, logo, &p.position, only, lang, Utc::now()).map_err(refusal)?;
    tokio::task::spawn_blocking(move || incasso_notice::render(&notice))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "NOTICE_RENDERING",
                e.to_string(),
            )
        })
}

/// The payment notice of one notice number.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/notices/{noticeNumber}/pdf", tag = "notices",
    params(("fiscalCode" = String, Path), ("noticeNumber" = String, Path), NoticeQuery),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>),
              (status = 404, body = crate::error::ProblemJson), (status = 409, body = crate::error::ProblemJson)))]
pub async fn notice_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, nav)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<NoticeQuery>,
) -> Result<Response, ApiError> {
    caller.require_ente(&ente)?;
    let lang = language(q.lang.as_deref())?;
    let (stored, _) = state.store.find_by_notice_number(&ente, &nav).await?;
    let bytes = render_position(&state.store, &ente, &stored, Some(&nav), lang).await?;
    Ok(pdf(format!("avviso-{nav}.pdf"), bytes))
}

/// The payment notice of a whole position: single solution, alternatives,
/// installments.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/positions/{iupd}/notice.pdf", tag = "notices",
    params(("fiscalCode" = String, Path), ("iupd" = String, Path), NoticeQuery),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>),
              (status = 404, body = crate::error::ProblemJson), (status = 409, body = crate::error::ProblemJson)))]
pub async fn position_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<NoticeQuery>,
) -> Result<Response, ApiError> {
    caller.require_ente(&ente)?;
    let lang = language(q.lang.as_deref())?;
    let stored = state.store.get_position(&ente, &iupd).await?;
    let bytes = render_position(&state.store, &ente, &stored, None, lang).await?;
    Ok(pdf(format!("avviso-{}.pdf", file_safe(&iupd)), bytes))
}

/// A key as a file name: what is not a letter, digit, `-` or `_` becomes `_`.
pub fn file_safe(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
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

/// Which positions a bulk ZIP prints.
#[derive(Debug, Clone)]
pub enum Selection {
    /// The positions a supply wrote.
    Supply(i64),
    /// The positions a filter finds (status, due dates, debtor).
    Filter(incasso_store::ListFilter),
}

/// A supply's notices: see [`write_zip`].
pub fn write_supply_zip(
    handle: &tokio::runtime::Handle,
    store: &Store,
    ente: &str,
    supply_id: i64,
    lang: Language,
    out: impl Write,
    progress: &dyn Fn(u64),
) -> Result<u64, String> {
    write_zip(
        handle,
        store,
        ente,
        &Selection::Supply(supply_id),
        lang,
        out,
        progress,
    )
}

/// Every notice of the selected positions into `out` as a ZIP: one PDF per
/// position, and `indice.csv` listing each position with its file or the
/// reason it has none. Pages of 100 positions: memory stays flat whatever
/// their number. Blocking: run it on a blocking thread.
pub fn write_zip(
    handle: &tokio::runtime::Handle,
    store: &Store,
    ente: &str,
    selection: &Selection,
    lang: Language,
    out: impl Write,
    progress: &dyn Fn(u64),
) -> Result<u64, String> {
    let ente_data = handle
        .block_on(store.get_ente(ente))
        .map_err(|e| e.to_string())?;
    let logo = handle
        .block_on(store.logo(ente))
        .map_err(|e| e.to_string())?
        .map(|(_, b)| b);
    let mut zip = zip::ZipWriter::new_stream(out);
    // PDFs are compressed already.
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut index = String::from("chiave;numero_avviso;file;esito\n");
    let mut after = 0;
    let mut page_number = 0;
    let mut written = 0u64;
    let now = Utc::now();
    loop {
        let page = match selection {
            Selection::Supply(id) => handle
                .block_on(store.positions_of_supply(ente, *id, after, 100))
                .map_err(|e| e.to_string())?,
            Selection::Filter(filter) => {
                let f = incasso_store::ListFilter {
                    page: page_number,
                    limit: 100,
                    ascending: true,
                    ..filter.clone()
                };
                page_number += 1;
                handle
                    .block_on(store.list_positions(ente, &f))
                    .map_err(|e| e.to_string())?
                    .items
            }
        };
        let Some(last) = page.last() else { break };
        after = last.id;
        for stored in &page {
            let p = &stored.position;
            let nav = p
                .options
                .iter()
                .find_map(|o| o.notice_number.as_ref().map(|n| n.as_str().to_string()))
                .unwrap_or_default();
            match from_position(&ente_data, logo.clone(), p, None, lang, now) {
                Ok(notice) => {
                    let bytes = incasso_notice::render(&notice).map_err(|e| e.to_string())?;
                    let name = format!("{}.pdf", file_safe(&p.iupd));
                    zip.start_file(name.as_str(), options)
                        .map_err(|e| e.to_string())?;
                    zip.write_all(&bytes).map_err(|e| e.to_string())?;
                    index.push_str(&format!("{};{nav};{name};stampato\n", p.iupd));
                    written += 1;
                }
                Err(r) => index.push_str(&format!("{};{nav};;{r}\n", p.iupd)),
            }
            progress(written);
        }
    }
    zip.start_file("indice.csv", options)
        .map_err(|e| e.to_string())?;
    zip.write_all(index.as_bytes()).map_err(|e| e.to_string())?;
    let mut inner = zip.finish().map_err(|e| e.to_string())?.into_inner();
    inner.flush().map_err(|e| e.to_string())?;
    Ok(written)
}

/// Every notice of a supply, as a ZIP streamed while it is made.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/supplies/{id}/notices.zip", tag = "notices",
    params(("fiscalCode" = String, Path), ("id" = i64, Path), NoticeQuery),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>),
              (status = 404, body = crate::error::ProblemJson)))]
pub async fn supply_zip(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, id)): Path<(String, i64)>,
    ApiQuery(q): ApiQuery<NoticeQuery>,
) -> Result<Response, ApiError> {
    caller.require_ente(&ente)?;
    let lang = language(q.lang.as_deref())?;
    let supply = state.store.supply(&ente, id).await?;
    if supply.status == incasso_store::LOADING || supply.status == incasso_store::INTERRUPTED {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "SUPPLY_LOADING",
            "la fornitura non ha finito di caricarsi: gli avvisi si stampano dopo",
        ));
    }
    Ok(stream_zip(
        state.store.clone(),
        ente,
        Selection::Supply(id),
        lang,
        format!("avvisi-fornitura-{id}.zip"),
    ))
}

/// A ZIP made on a blocking thread and sent while it is made.
fn stream_zip(
    store: Store,
    ente: String,
    selection: Selection,
    lang: Language,
    name: String,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx: tx.clone(),
            buffer: Vec::new(),
        };
        if let Err(e) = write_zip(&handle, &store, &ente, &selection, lang, writer, &|_| {}) {
            tracing::warn!(error = %e, ?selection, "notices ZIP interrupted");
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
    responses((status = 200, content_type = "application/zip", body = Vec<u8>),
              (status = 400, body = crate::error::ProblemJson)))]
pub async fn filtered_zip(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Response, ApiError> {
    caller.require_ente(&ente)?;
    state.store.get_ente(&ente).await?;
    let lang = language(q.lang.as_deref())?;
    if q.status.is_none()
        && q.due_date_from.is_none()
        && q.due_date_to.is_none()
        && q.debtor_fiscal_code.is_none()
    {
        return Err(ApiError::bad_request(
            "FILTER_REQUIRED",
            "indicare almeno un filtro (status, dueDateFrom, dueDateTo, debtorFiscalCode)",
        ));
    }
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse().map_err(|_| {
                ApiError::bad_request("BAD_STATUS", format!("stato '{s}' sconosciuto"))
            })
        })
        .transpose()?;
    let filter = incasso_store::ListFilter {
        status,
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
    Ok(stream_zip(
        state.store.clone(),
        ente,
        Selection::Filter(filter),
        lang,
        "avvisi.zip".into(),
    ))
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
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 204), (status = 400, body = crate::error::ProblemJson)))]
pub async fn put_logo(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require_ente(&ente)?;
    let content_type = if body.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if body.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else {
        return Err(ApiError::bad_request(
            "BAD_LOGO",
            "il logo deve essere un'immagine PNG o JPEG",
        ));
    };
    state
        .store
        .put_logo(&ente, content_type, &body, Utc::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/enti/{fiscalCode}/logo", tag = "notices",
    params(("fiscalCode" = String, Path)), responses((status = 204)))]
pub async fn delete_logo(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_ente(&ente)?;
    state.store.delete_logo(&ente).await?;
    Ok(StatusCode::NO_CONTENT)
}
