//! The Digit BUS over HTTP: layouts, supplies (uploaded, loaded in the
//! background, followed by a status URL as GPD's massive upload is), their
//! reports and outcome files, and the reporting exports.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use incasso_app::bus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The largest supply accepted over HTTP; larger files go through
/// `incasso load` or the inbox folder.
pub const MAX_SUPPLY_BYTES: usize = 64 * 1024 * 1024;

/// The answer to an upload: the supply, recorded before loading starts, and
/// where to follow it (from any process sharing the database).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadDto {
    pub supply_id: i64,
    /// LOADING until the load ends.
    pub status: String,
    pub status_url: String,
    /// Whether this upload resumes the interrupted load of the same file.
    pub resumed: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The layout of the file (built-in or the Ente's own).
    layout: String,
    /// The file's name, for the records.
    file_name: Option<String>,
    /// The catalogue service of rows that name none.
    service: Option<String>,
}

/// Upload a supply file; it loads in the background.
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/supplies", tag = "supplies",
    params(("fiscalCode" = String, Path), UploadQuery),
    request_body(content = crate::error::Binary, content_type = "application/octet-stream"),
    responses((status = 202, body = UploadDto), (status = 400, body = crate::error::ProblemJson),
              (status = 409, body = crate::error::ProblemJson),
              (status = 404, body = crate::error::ProblemJson), (status = 413, body = crate::error::ProblemJson)))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ctx = state.ctx(caller);
    let file_name = q.file_name.unwrap_or_else(|| "upload".into());
    let started =
        bus::start_upload(&ctx, &ente, &q.layout, &file_name, q.service, body.to_vec()).await?;
    let supply_id = started.supply_id;
    let status_url = format!("/api/v1/enti/{ente}/supplies/{supply_id}");
    let answer = UploadDto {
        supply_id,
        status: incasso_store::LOADING.into(),
        status_url: status_url.clone(),
        resumed: started.resumed,
    };
    let mut resp = (StatusCode::ACCEPTED, Json(answer)).into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    Ok(resp)
}

/// A supply: LOADING while it loads (with the counters of its last
/// checkpoint), then LOADED, LOADED_WITH_ERRORS, REJECTED or FAILED.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupplyDto {
    pub id: i64,
    pub layout: String,
    pub file_name: String,
    pub file_hash: String,
    pub size_bytes: i64,
    pub status: String,
    pub accepted: bool,
    pub rows_read: i64,
    pub rows_loaded: i64,
    pub rows_rejected: i64,
    pub positions_created: i64,
    pub positions_updated: i64,
    pub positions_cancelled: i64,
    pub message: String,
    pub report_url: String,
    pub outcome_url: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/supplies/{id}", tag = "supplies",
    params(("fiscalCode" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = SupplyDto), (status = 404, body = crate::error::ProblemJson)))]
pub async fn get_supply(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, id)): Path<(String, i64)>,
) -> Result<Json<SupplyDto>, ApiError> {
    let s = bus::supply(&state.ctx(caller), &ente, id).await?;
    Ok(Json(SupplyDto::of(&ente, id, s)))
}

/// The supplies archive: every supply of the Ente, newest first, a page at
/// a time (GPD's massive uploads among them, layout `gpd-massive-v2`).
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/supplies", tag = "supplies",
    params(("fiscalCode" = String, Path), crate::paging::PageQuery),
    responses((status = 200, body = Vec<SupplyDto>, headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))),
              (status = 400, body = crate::error::ProblemJson)))]
pub async fn list_supplies(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<crate::paging::PageQuery>,
) -> Result<Response, ApiError> {
    let page = bus::list_supplies(&state.ctx(caller), &ente, q.cursor.as_deref(), q.limit).await?;
    let items: Vec<SupplyDto> = page
        .items
        .into_iter()
        .map(|(id, s)| SupplyDto::of(&ente, id, s))
        .collect();
    let next = crate::paging::list_url(
        &format!("/api/v1/enti/{ente}/supplies"),
        &[("limit", q.limit.map(|l| l.to_string()))],
    );
    Ok(crate::paging::paged(items, page.next, &next))
}

impl SupplyDto {
    fn of(ente: &str, id: i64, s: incasso_store::SupplyRecord) -> SupplyDto {
        SupplyDto {
            id,
            layout: s.layout,
            file_name: s.file_name,
            file_hash: s.file_hash,
            size_bytes: s.size_bytes,
            status: s.status,
            accepted: s.accepted,
            rows_read: s.rows_read,
            rows_loaded: s.rows_loaded,
            rows_rejected: s.rows_rejected,
            positions_created: s.positions_created,
            positions_updated: s.positions_updated,
            positions_cancelled: s.positions_cancelled,
            message: s.message,
            report_url: format!("/api/v1/enti/{ente}/supplies/{id}/report.csv"),
            outcome_url: s
                .outcome
                .map(|_| format!("/api/v1/enti/{ente}/supplies/{id}/outcome")),
        }
    }
}

fn download(content_type: &'static str, name: String, bytes: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// The per-row report (line, field, value, code, message) as CSV.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/supplies/{id}/report.csv", tag = "supplies",
    params(("fiscalCode" = String, Path), ("id" = i64, Path)),
    responses((status = 200, content_type = "text/csv", body = String)))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let csv = bus::report_csv(&state.ctx(caller), &ente, id).await?;
    Ok(download(
        "text/csv; charset=utf-8",
        format!("rapporto-{id}.csv"),
        csv,
    ))
}

/// The supply with its notice numbers, in the application's own layout.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/supplies/{id}/outcome", tag = "supplies",
    params(("fiscalCode" = String, Path), ("id" = i64, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = crate::error::Binary), (status = 404, body = crate::error::ProblemJson)))]
pub async fn outcome(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let (name, bytes) = bus::outcome(&state.ctx(caller), &ente, id).await?;
    Ok(download("application/octet-stream", name, bytes))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LayoutDto {
    pub name: String,
    /// `builtin` or the Ente's own version number.
    pub version: String,
}

/// The layouts the Ente can use, by name, a page at a time.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/layouts", tag = "layouts",
    params(("fiscalCode" = String, Path), crate::paging::PageQuery),
    responses((status = 200, body = Vec<LayoutDto>, headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))),
              (status = 400, body = crate::error::ProblemJson)))]
pub async fn list_layouts(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    crate::error::ApiQuery(q): crate::error::ApiQuery<crate::paging::PageQuery>,
) -> Result<axum::response::Response, ApiError> {
    let page = bus::list_layouts(&state.ctx(caller), &ente, q.cursor.as_deref(), q.limit).await?;
    let items: Vec<LayoutDto> = page
        .items
        .into_iter()
        .map(|(name, version)| LayoutDto {
            name,
            version: version.map_or_else(|| "builtin".into(), |v| v.to_string()),
        })
        .collect();
    let next = crate::paging::list_url(
        &format!("/api/v1/enti/{ente}/layouts"),
        &[("limit", q.limit.map(|l| l.to_string()))],
    );
    Ok(crate::paging::paged(items, page.next, &next))
}

/// The layout's TOML definition.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/layouts/{name}", tag = "layouts",
    params(("fiscalCode" = String, Path), ("name" = String, Path)),
    responses((status = 200, content_type = "application/toml", body = String), (status = 404, body = crate::error::ProblemJson)))]
pub async fn get_layout(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let text = bus::layout_text(&state.ctx(caller), &ente, &name).await?;
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/toml; charset=utf-8"),
    );
    Ok(resp)
}

/// Store a new version of one of the Ente's layouts (TOML in the body).
#[utoipa::path(put, path = "/api/v1/enti/{fiscalCode}/layouts/{name}", tag = "layouts",
    params(("fiscalCode" = String, Path), ("name" = String, Path)),
    request_body(content = String, content_type = "application/toml"),
    responses((status = 201, body = LayoutDto), (status = 400, body = crate::error::ProblemJson)))]
pub async fn put_layout(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, name)): Path<(String, String)>,
    body: String,
) -> Result<(StatusCode, Json<LayoutDto>), ApiError> {
    let version = bus::put_layout(&state.ctx(caller), &ente, &name, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(LayoutDto {
            name,
            version: version.to_string(),
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Who reads: each consumer has its own cursor (default `api`).
    consumer: Option<String>,
}

/// The payments since this consumer's last export, in the layout's own
/// export format; reading moves the cursor.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/exports/{layout}", tag = "supplies",
    params(("fiscalCode" = String, Path), ("layout" = String, Path), ExportQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = crate::error::ProblemJson),
              (status = 409, description = "the layout has no export format (an intake-only layout)", body = crate::error::ProblemJson)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, layout)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let ctx = state.ctx(caller);
    let layout = bus::layout(&ctx, &ente, &layout).await?;
    let consumer = q.consumer.unwrap_or_else(|| "api".into());
    let (bytes, count) = bus::export(&ctx, &ente, &layout, &consumer).await?;
    let mut resp = download(
        "text/csv; charset=utf-8",
        format!("{}-pagamenti.csv", layout.name),
        bytes,
    );
    if let Ok(v) = HeaderValue::from_str(&count.to_string()) {
        resp.headers_mut().insert("X-Payments", v);
    }
    Ok(resp)
}
