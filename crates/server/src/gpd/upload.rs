//! GPD's massive upload v2 (`gpd_massive_v2.json`) under `/gpd/upload/v2`:
//! a ZIP holding one JSON file of positions to create or update (v2's
//! `paymentPositions`) or of iupds to delete (`paymentPositionIUPDs`),
//! posted per broker and Ente. The file is read and checked at once (a bad
//! file is 400 with nothing done); its positions are then worked through in
//! the background ([`incasso_app::upload`]), followed by status and report.

use super::v2::{MultipleIupdModel, MultiplePaymentPositionModel, positions_of};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use incasso_app::upload::{self, Items, OperationStatus, ResponseEntry};
use serde::{Deserialize, Serialize};

/// The largest ZIP taken, as a supply.
const MAX_ZIP_BYTES: usize = crate::bus_api::MAX_SUPPLY_BYTES;

const ORG: &str = "/brokers/{broker-code}/organizations/{organization-fiscal-code}/debtpositions";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{ORG}/file"),
            post(create_by_file)
                .put(update_by_file)
                .delete(delete_by_file)
                .layer(DefaultBodyLimit::max(MAX_ZIP_BYTES)),
        )
        .route(&format!("{ORG}/file/{{file-id}}/status"), get(status))
        .route(&format!("{ORG}/file/{{file-id}}/report"), get(report))
        .route(&format!("{ORG}/files"), get(file_ids))
}

#[derive(Debug, Deserialize)]
pub struct OrgPath {
    #[serde(rename = "broker-code")]
    broker: String,
    #[serde(rename = "organization-fiscal-code")]
    ente: String,
}

#[derive(Debug, Deserialize)]
pub struct FilePath {
    #[serde(rename = "broker-code")]
    broker: String,
    #[serde(rename = "organization-fiscal-code")]
    ente: String,
    #[serde(rename = "file-id")]
    file_id: String,
}

enum Kind {
    Create,
    Update,
    Delete,
}

/// The `file` part of the form: its name and bytes.
async fn file_part(mut form: Multipart) -> Result<(String, Vec<u8>), ApiError> {
    let bad = |detail: String| ApiError::bad_request("INVALID_FILE", detail);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad(format!("modulo multipart illeggibile: {e}")))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("").to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| bad(format!("file: illeggibile ({e})")))?;
        return Ok((name, bytes.to_vec()));
    }
    Err(bad("manca la parte 'file' del modulo".into()))
}

async fn accept(
    state: AppState,
    caller: Caller,
    path: OrgPath,
    form: Multipart,
    kind: Kind,
) -> Result<Response, ApiError> {
    let ctx = state.ctx(caller);
    upload::check_broker(&ctx, &path.ente, &path.broker).await?;
    let (name, zip) = file_part(form).await?;
    let file_name = name.clone();
    // Unzipping and parsing up to 100 MiB is CPU work: off the async threads.
    let parsed = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, Items), ApiError> {
        let json = upload::json_of_zip(&name, zip.clone())?;
        let invalid = |e: serde_json::Error| {
            ApiError::bad_request(
                "INVALID_JSON",
                format!(
                    "file: JSON non valido alla riga {}, colonna {}: {e}",
                    e.line(),
                    e.column()
                ),
            )
        };
        let items = match kind {
            Kind::Delete => {
                let body: MultipleIupdModel = serde_json::from_slice(&json).map_err(invalid)?;
                Items::Delete(body.payment_position_iupds)
            }
            Kind::Create | Kind::Update => {
                let body: MultiplePaymentPositionModel =
                    serde_json::from_slice(&json).map_err(invalid)?;
                let positions = positions_of(body)?;
                match kind {
                    Kind::Create => Items::Create(positions),
                    _ => Items::Update(positions),
                }
            }
        };
        Ok((zip, items))
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "lettura del file interrotta",
        )
    })?;
    let (zip, items) = parsed?;
    let file_id = upload::start(&ctx, &path.ente, &path.broker, &file_name, &zip, items).await?;
    let location = format!(
        "brokers/{}/organizations/{}/debtpositions/file/{file_id}/status",
        path.broker, path.ente
    );
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(axum::http::header::LOCATION, v);
    }
    headers.insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from_static("1"),
    );
    Ok((StatusCode::ACCEPTED, headers).into_response())
}

async fn create_by_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<OrgPath>,
    form: Multipart,
) -> Result<Response, ApiError> {
    accept(state, caller, path, form, Kind::Create).await
}

async fn update_by_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<OrgPath>,
    form: Multipart,
) -> Result<Response, ApiError> {
    accept(state, caller, path, form, Kind::Update).await
}

async fn delete_by_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<OrgPath>,
    form: Multipart,
) -> Result<Response, ApiError> {
    accept(state, caller, path, form, Kind::Delete).await
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// GPD's `UploadStatusDTO`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadStatus {
    file_id: String,
    processed_item: i64,
    submitted_item: i64,
    start_time: String,
    operation_status: OperationStatus,
}

async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<FilePath>,
) -> Result<Json<UploadStatus>, ApiError> {
    let u = upload::get(&state.ctx(caller), &p.ente, &p.broker, &p.file_id).await?;
    Ok(Json(UploadStatus {
        operation_status: u.status(),
        file_id: u.file_id,
        processed_item: u.processed,
        submitted_item: u.submitted,
        start_time: instant(u.started_at),
    }))
}

/// GPD's `UploadReportDTO`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadReport {
    file_id: String,
    processed_item: i64,
    submitted_item: i64,
    responses: Vec<ResponseEntry>,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
}

/// The report, once every item has its answer: before, 425 (Too Early),
/// as the document says.
async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<FilePath>,
) -> Result<Json<UploadReport>, ApiError> {
    let u = upload::get(&state.ctx(caller), &p.ente, &p.broker, &p.file_id).await?;
    if u.status() == OperationStatus::InProgress {
        return Err(ApiError::new(
            StatusCode::TOO_EARLY,
            "REPORT_NOT_READY",
            format!(
                "il caricamento {} è in corso ({} di {}): il resoconto sarà pronto alla fine",
                u.file_id, u.processed, u.submitted
            ),
        ));
    }
    Ok(Json(UploadReport {
        file_id: u.file_id,
        processed_item: u.processed,
        submitted_item: u.submitted,
        responses: u.responses,
        start_time: instant(u.started_at),
        end_time: u.ended_at.map(instant),
    }))
}

#[derive(Debug, Deserialize)]
pub struct FilesQuery {
    from: Option<String>,
    to: Option<String>,
    size: Option<u32>,
}

/// GPD's `FileIdListResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileIdList {
    file_ids: Vec<String>,
    size: usize,
    has_more: bool,
}

const CONTINUATION: &str = "x-continuation-token";

async fn file_ids(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<OrgPath>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<FilesQuery>,
) -> Result<Response, ApiError> {
    let day = |field: &str, v: Option<String>| {
        v.filter(|s| !s.is_empty())
            .map(|s| {
                NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| {
                    ApiError::bad_request(
                        "BAD_FORMAT",
                        format!("{field}: data non valida '{s}', atteso YYYY-MM-DD"),
                    )
                })
            })
            .transpose()
    };
    let from = day("from", q.from)?;
    let to = day("to", q.to)?;
    let after = headers
        .get(CONTINUATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let (ids, more) = upload::list(
        &state.ctx(caller),
        &p.ente,
        &p.broker,
        from,
        to,
        q.size.unwrap_or(100),
        after,
    )
    .await?;
    let mut out = HeaderMap::new();
    if more
        && let Some(last) = ids.last()
        && let Ok(v) = HeaderValue::from_str(last)
    {
        out.insert(CONTINUATION, v);
    }
    Ok((
        out,
        Json(FileIdList {
            size: ids.len(),
            has_more: more,
            file_ids: ids,
        }),
    )
        .into_response())
}
