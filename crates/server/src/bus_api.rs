//! The Digit BUS over HTTP: layouts, supplies (uploaded, loaded in the
//! background, followed by a status URL as GPD's massive upload is), their
//! reports and outcome files, and the reporting exports.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use crate::supply::{self, LoadError, ResolveError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
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

fn resolve_error(e: ResolveError) -> ApiError {
    match e {
        ResolveError::Unknown(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "UNKNOWN_LAYOUT", e.to_string())
        }
        ResolveError::Invalid(m) => ApiError::bad_request("BAD_LAYOUT", m),
        ResolveError::Store(s) => s.into(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
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
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
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
    caller.require_ente(&ente)?;
    state.store.get_ente(&ente).await?;
    let layout = supply::resolve_layout(&state.store, &ente, &q.layout)
        .await
        .map_err(resolve_error)?;
    if body.is_empty() {
        return Err(ApiError::bad_request("EMPTY_FILE", "il file è vuoto"));
    }
    let file_name = q.file_name.unwrap_or_else(|| "upload".into());
    let bytes = body;
    let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(bytes.clone())))
    };
    let prepared = supply::prepare(&state.store, &ente, &layout, &file_name, &open)
        .await
        .map_err(load_error)?;
    let supply_id = prepared.supply_id;
    let status_url = format!("/api/v1/enti/{ente}/supplies/{supply_id}");
    let answer = UploadDto {
        supply_id,
        status: incasso_store::LOADING.into(),
        status_url: status_url.clone(),
        resumed: prepared.resumes(),
    };
    let (store, service) = (state.store.clone(), q.service);
    tokio::spawn(async move {
        // The outcome is stored in the commit that accepts the supply.
        let result = supply::run_storing_outcome(
            &store,
            &ente,
            &layout,
            service.as_deref(),
            prepared,
            &open,
        )
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, supply = supply_id, "supply load failed");
        }
    });
    let mut resp = (StatusCode::ACCEPTED, Json(answer)).into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    Ok(resp)
}

fn load_error(e: LoadError) -> ApiError {
    match e {
        LoadError::Duplicate(id) => ApiError::new(
            StatusCode::CONFLICT,
            "DUPLICATE_SUPPLY",
            format!("lo stesso file è già stato caricato per questo ente (fornitura {id})"),
        ),
        LoadError::InProgress | LoadError::ResumeWithOtherLayout { .. } => {
            ApiError::new(StatusCode::CONFLICT, "SUPPLY_IN_PROGRESS", e.to_string())
        }
        LoadError::Store(s) => s.into(),
        LoadError::ExportOnly(_) => ApiError::bad_request("EXPORT_ONLY_LAYOUT", e.to_string()),
        other => ApiError::bad_request("BAD_FILE", other.to_string()),
    }
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
    caller.require_ente(&ente)?;
    let s = state.store.supply(&ente, id).await?;
    Ok(Json(SupplyDto {
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
    }))
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
    caller.require_ente(&ente)?;
    let s = state.store.supply(&ente, id).await?;
    Ok(download(
        "text/csv; charset=utf-8",
        format!("rapporto-{id}.csv"),
        supply::report_csv(&s.errors),
    ))
}

/// The supply with its notice numbers, in the application's own layout.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/supplies/{id}/outcome", tag = "supplies",
    params(("fiscalCode" = String, Path), ("id" = i64, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = crate::error::ProblemJson)))]
pub async fn outcome(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    caller.require_ente(&ente)?;
    let s = state.store.supply(&ente, id).await?;
    let bytes = s.outcome.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_OUTCOME",
            "nessun esito per questa fornitura",
        )
    })?;
    Ok(download(
        "application/octet-stream",
        supply::outcome_download_name(&s.file_name),
        bytes,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LayoutDto {
    pub name: String,
    /// `builtin` or the Ente's own version number.
    pub version: String,
}

#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/layouts", tag = "layouts",
    params(("fiscalCode" = String, Path)), responses((status = 200, body = Vec<LayoutDto>)))]
pub async fn list_layouts(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
) -> Result<Json<Vec<LayoutDto>>, ApiError> {
    caller.require_ente(&ente)?;
    let mut out: Vec<LayoutDto> = incasso_bus::builtin::names()
        .map(|n| LayoutDto {
            name: n.into(),
            version: "builtin".into(),
        })
        .collect();
    for (name, version) in state.store.list_layouts(&ente).await? {
        out.retain(|l| l.name != name);
        out.push(LayoutDto {
            name,
            version: version.to_string(),
        });
    }
    Ok(Json(out))
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
    caller.require_ente(&ente)?;
    let text = match state.store.layout(&ente, &name).await? {
        Some((_, text)) => text,
        None => {
            let layout = supply::resolve_layout(&state.store, &ente, &name)
                .await
                .map_err(resolve_error)?;
            toml::to_string(&layout).map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
            })?
        }
    };
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
    caller.require_ente(&ente)?;
    let layout = incasso_bus::Layout::from_toml(&body)
        .map_err(|e| ApiError::bad_request("BAD_LAYOUT", e.to_string()))?;
    if layout.name != name {
        return Err(ApiError::bad_request(
            "BAD_LAYOUT",
            "il nome nel tracciato è diverso da quello nel percorso",
        ));
    }
    let version = state
        .store
        .put_layout(&ente, &name, &body, chrono::Utc::now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(LayoutDto {
            name,
            version: version.to_string(),
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportQuery {
    /// Who reads: each consumer has its own cursor (default `api`).
    consumer: Option<String>,
}

/// The payments since this consumer's last export, in the layout's own
/// export format; reading moves the cursor.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/exports/{layout}", tag = "supplies",
    params(("fiscalCode" = String, Path), ("layout" = String, Path), ExportQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = crate::error::ProblemJson)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, layout)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    caller.require_ente(&ente)?;
    let layout = supply::resolve_layout(&state.store, &ente, &layout)
        .await
        .map_err(resolve_error)?;
    let consumer = q.consumer.unwrap_or_else(|| "api".into());
    let (bytes, count) = crate::export::export(&state.store, &ente, &layout, &consumer).await?;
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
