//! incasso's own administration API under `/api/v1`: Enti, stations,
//! offices, the service catalogue, accertamenti and API keys. Documented by
//! the OpenAPI document at `/api/openapi.json`.

use crate::AppState;
use crate::auth::{Caller, Intermediary};
use crate::error::ApiQuery;
use crate::error::{ApiError, ApiJson, ApiJsonList, ProblemJson};
use crate::paging::{PageQuery, list_url, paged};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, put};
use incasso_app::{admin, keys};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, Office, StationLink};
use incasso_store::KeyScope;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/enti", get(list_enti).post(create_ente))
        .route("/enti/{fiscalCode}", get(get_ente).put(update_ente))
        .route(
            "/enti/{fiscalCode}/stations",
            get(list_stations).post(add_station),
        )
        .route(
            "/enti/{fiscalCode}/stations/{stationId}",
            delete(remove_station),
        )
        .route(
            "/enti/{fiscalCode}/stations/{stationId}/connection",
            get(get_connection).put(put_connection),
        )
        .route("/enti/{fiscalCode}/receipts", get(list_receipts))
        .route(
            "/enti/{fiscalCode}/supplies",
            axum::routing::post(crate::bus_api::upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::bus_api::MAX_SUPPLY_BYTES,
                ))
                .get(crate::bus_api::list_supplies),
        )
        .route(
            "/enti/{fiscalCode}/supplies/{id}",
            get(crate::bus_api::get_supply),
        )
        .route(
            "/enti/{fiscalCode}/supplies/{id}/report.csv",
            get(crate::bus_api::report),
        )
        .route(
            "/enti/{fiscalCode}/supplies/{id}/outcome",
            get(crate::bus_api::outcome),
        )
        .route(
            "/enti/{fiscalCode}/supplies/{id}/notices.zip",
            get(crate::notices::supply_zip),
        )
        .route(
            "/enti/{fiscalCode}/notices.zip",
            get(crate::notices::filtered_zip),
        )
        .route(
            "/enti/{fiscalCode}/notices/{noticeNumber}/pdf",
            get(crate::notices::notice_pdf),
        )
        .route(
            "/enti/{fiscalCode}/positions/{iupd}/notice.pdf",
            get(crate::notices::position_pdf),
        )
        .route(
            "/enti/{fiscalCode}/logo",
            axum::routing::put(crate::notices::put_logo)
                .delete(crate::notices::delete_logo)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::notices::MAX_LOGO_BYTES,
                )),
        )
        .route(
            "/enti/{fiscalCode}/flows",
            get(crate::recon_api::list_flows)
                .post(crate::recon_api::post_flow)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::recon_api::MAX_RECON_FILE_BYTES,
                )),
        )
        .route(
            "/enti/{fiscalCode}/flows/fetch",
            axum::routing::post(crate::recon_api::fetch),
        )
        .route(
            "/enti/{fiscalCode}/flows/{flowId}/payments",
            get(crate::recon_api::flow_payments),
        )
        .route(
            "/enti/{fiscalCode}/treasury",
            axum::routing::post(crate::recon_api::post_treasury).layer(
                axum::extract::DefaultBodyLimit::max(crate::recon_api::MAX_RECON_FILE_BYTES),
            ),
        )
        .route(
            "/enti/{fiscalCode}/reconciliation",
            axum::routing::post(crate::recon_api::run),
        )
        .route(
            "/enti/{fiscalCode}/breakdown",
            get(crate::recon_api::breakdown),
        )
        .route(
            "/enti/{fiscalCode}/anomalies",
            get(crate::recon_api::anomalies),
        )
        .route(
            "/enti/{fiscalCode}/reconciliation/lines",
            get(crate::recon_api::lines),
        )
        .route(
            "/enti/{fiscalCode}/treasury-settings",
            axum::routing::put(crate::recon_api::put_treasury_settings),
        )
        .route(
            "/enti/{fiscalCode}/reversale",
            get(crate::recon_api::reversale),
        )
        .route(
            "/enti/{fiscalCode}/reconciliations/{id}",
            axum::routing::put(crate::recon_api::put_reconciliation),
        )
        .route(
            "/enti/{fiscalCode}/layouts",
            get(crate::bus_api::list_layouts),
        )
        .route(
            "/enti/{fiscalCode}/layouts/{name}",
            get(crate::bus_api::get_layout).put(crate::bus_api::put_layout),
        )
        .route(
            "/enti/{fiscalCode}/exports/{layout}",
            get(crate::bus_api::export),
        )
        .route(
            "/enti/{fiscalCode}/receipts/{receiptId}/xml",
            get(receipt_xml),
        )
        .route(
            "/enti/{fiscalCode}/notices/{noticeNumber}/checkout",
            axum::routing::post(crate::checkout::checkout_api),
        )
        .route("/enti/{fiscalCode}/offices", get(list_offices))
        .route(
            "/enti/{fiscalCode}/offices/{code}",
            put(put_office).delete(delete_office),
        )
        .route("/enti/{fiscalCode}/services", get(list_services))
        .route(
            "/enti/{fiscalCode}/services/{code}",
            put(put_service).get(get_service),
        )
        .route(
            "/enti/{fiscalCode}/accertamenti",
            get(list_accertamenti).post(load_accertamenti),
        )
        .route(
            "/enti/{fiscalCode}/accertamenti/{year}/{code}",
            put(put_accertamento).get(get_accertamento),
        )
        .route(
            "/enti/{fiscalCode}/api-keys",
            get(list_ente_keys).post(create_ente_key),
        )
        .route(
            "/enti/{fiscalCode}/api-keys/{keyId}",
            delete(revoke_ente_key),
        )
        .route(
            "/api-keys",
            get(list_intermediary_keys).post(create_intermediary_key),
        )
}

// ---------------------------------------------------------------- Enti

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnteDto {
    /// 11-digit fiscal code, the Ente's identity.
    #[schema(example = "80000000001")]
    pub fiscal_code: String,
    #[schema(example = "Comune di Esempio")]
    pub name: String,
    #[serde(default)]
    pub ipa_code: Option<String>,
    #[serde(default)]
    pub iban: Option<String>,
    /// A Poste Italiane account (ABI 07601): enables the Poste section of notices.
    #[serde(default)]
    pub postal_iban: Option<String>,
    #[serde(default)]
    pub cbill_code: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl From<Ente> for EnteDto {
    fn from(e: Ente) -> Self {
        EnteDto {
            fiscal_code: e.fiscal_code,
            name: e.name,
            ipa_code: e.ipa_code,
            iban: e.iban,
            postal_iban: e.postal_iban,
            cbill_code: e.cbill_code,
            email: e.email,
        }
    }
}

impl From<EnteDto> for Ente {
    fn from(e: EnteDto) -> Self {
        Ente {
            fiscal_code: e.fiscal_code,
            name: e.name,
            ipa_code: e.ipa_code,
            iban: e.iban,
            postal_iban: e.postal_iban,
            cbill_code: e.cbill_code,
            email: e.email,
        }
    }
}

/// List the Enti the key can see (all of them for an intermediary key),
/// by fiscal code, a page at a time.
#[utoipa::path(get, path = "/api/v1/enti", tag = "enti", params(PageQuery),
    responses((status = 200, body = Vec<EnteDto>, headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))),
              (status = 400, body = ProblemJson), (status = 401, body = ProblemJson)))]
async fn list_enti(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = admin::list_enti(&state.ctx(caller), q.cursor.as_deref(), q.limit).await?;
    let items: Vec<EnteDto> = page.items.into_iter().map(EnteDto::from).collect();
    let next = list_url("/api/v1/enti", &[("limit", q.limit.map(|l| l.to_string()))]);
    Ok(paged(items, page.next, &next))
}

/// Create an Ente (intermediary key only).
#[utoipa::path(post, path = "/api/v1/enti", tag = "enti", request_body = EnteDto,
    responses((status = 201, body = EnteDto), (status = 400, body = ProblemJson),
              (status = 403, body = ProblemJson), (status = 409, body = ProblemJson)))]
async fn create_ente(
    State(state): State<AppState>,
    Intermediary(caller): Intermediary,
    ApiJson(body): ApiJson<EnteDto>,
) -> Result<(StatusCode, Json<EnteDto>), ApiError> {
    let ente: Ente = body.into();
    admin::create_ente(&state.ctx(caller), &ente).await?;
    Ok((StatusCode::CREATED, Json(ente.into())))
}

#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}", tag = "enti",
    params(("fiscalCode" = String, Path)),
    responses((status = 200, body = EnteDto), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn get_ente(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
) -> Result<Json<EnteDto>, ApiError> {
    Ok(Json(admin::get_ente(&state.ctx(caller), &fc).await?.into()))
}

/// Update an Ente's data (its fiscal code never changes).
#[utoipa::path(put, path = "/api/v1/enti/{fiscalCode}", tag = "enti", request_body = EnteDto,
    params(("fiscalCode" = String, Path)),
    responses((status = 200, body = EnteDto), (status = 400, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn update_ente(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
    ApiJson(body): ApiJson<EnteDto>,
) -> Result<Json<EnteDto>, ApiError> {
    let ente: Ente = body.into();
    admin::update_ente(&state.ctx(caller), &fc, &ente).await?;
    Ok(Json(ente.into()))
}

// ---------------------------------------------------------------- stations

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationDto {
    /// The intermediary's (broker's) fiscal code, pagoPA's `idBrokerPA`.
    pub broker_id: String,
    /// pagoPA's `idStation`.
    pub station_id: String,
    /// Two digits, 00-99: the first two digits of every IUV of this station.
    pub segregation_code: u8,
}

/// The Ente's stations, by station id, a page at a time.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/stations", tag = "stations",
    params(("fiscalCode" = String, Path), PageQuery),
    responses((status = 200, body = Vec<StationDto>, headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))), (status = 400, body = ProblemJson)))]
async fn list_stations(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = admin::list_stations(&state.ctx(caller), &fc, q.cursor.as_deref(), q.limit).await?;
    let items: Vec<StationDto> = page
        .items
        .into_iter()
        .map(|s| StationDto {
            broker_id: s.broker_id,
            station_id: s.station_id,
            segregation_code: s.segregation_code,
        })
        .collect();
    let next = list_url(
        &format!("/api/v1/enti/{fc}/stations"),
        &[("limit", q.limit.map(|l| l.to_string()))],
    );
    Ok(paged(items, page.next, &next))
}

/// Connect the Ente through a station (intermediary key only).
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/stations", tag = "stations", request_body = StationDto,
    params(("fiscalCode" = String, Path)),
    responses((status = 201, body = StationDto), (status = 400, body = ProblemJson), (status = 409, body = ProblemJson)))]
async fn add_station(
    State(state): State<AppState>,
    Intermediary(caller): Intermediary,
    Path(fc): Path<String>,
    ApiJson(body): ApiJson<StationDto>,
) -> Result<(StatusCode, Json<StationDto>), ApiError> {
    let link = StationLink {
        broker_id: body.broker_id.clone(),
        station_id: body.station_id.clone(),
        segregation_code: body.segregation_code,
    };
    admin::add_station(&state.ctx(caller), &fc, &link).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(delete, path = "/api/v1/enti/{fiscalCode}/stations/{stationId}", tag = "stations",
    params(("fiscalCode" = String, Path), ("stationId" = String, Path)),
    responses((status = 204), (status = 404, body = ProblemJson)))]
async fn remove_station(
    State(state): State<AppState>,
    Intermediary(caller): Intermediary,
    Path((fc, station)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    admin::remove_station(&state.ctx(caller), &fc, &station).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How a station reaches the pagoPA Node: connector, URLs, credentials,
/// timeouts and retries. Secrets are never shown back.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDto {
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/stations/{stationId}/connection", tag = "stations",
    params(("fiscalCode" = String, Path), ("stationId" = String, Path)),
    responses((status = 200, body = ConnectionDto), (status = 404, body = ProblemJson)))]
async fn get_connection(
    State(state): State<AppState>,
    Intermediary(caller): Intermediary,
    Path((fc, station)): Path<(String, String)>,
) -> Result<Json<ConnectionDto>, ApiError> {
    let settings = admin::connection(&state.ctx(caller), &fc, &station).await?;
    Ok(Json(ConnectionDto {
        settings: serde_json::to_value(settings).unwrap_or_default(),
    }))
}

/// Set how the station reaches the Node (intermediary key only).
#[utoipa::path(put, path = "/api/v1/enti/{fiscalCode}/stations/{stationId}/connection", tag = "stations",
    request_body = ConnectionDto,
    params(("fiscalCode" = String, Path), ("stationId" = String, Path)),
    responses((status = 200, body = ConnectionDto), (status = 400, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn put_connection(
    State(state): State<AppState>,
    Intermediary(caller): Intermediary,
    Path((fc, station)): Path<(String, String)>,
    ApiJson(body): ApiJson<ConnectionDto>,
) -> Result<Json<ConnectionDto>, ApiError> {
    let settings: incasso_pagopa::connector::ConnectionSettings =
        serde_json::from_value(body.settings)
            .map_err(|e| ApiError::bad_request("BAD_CONNECTION", format!("settings: {e}")))?;
    let shown = admin::set_connection(&state.ctx(caller), &fc, &station, settings).await?;
    Ok(Json(ConnectionDto {
        settings: serde_json::to_value(shown).unwrap_or_default(),
    }))
}

// ---------------------------------------------------------------- receipts

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptDto {
    pub receipt_id: String,
    pub notice_number: String,
    pub iuv: String,
    /// The Ente that owns the notice (another one on a multi-beneficiary copy).
    pub owner_ente: String,
    pub amount: i64,
    pub psp_id: String,
    /// Why the receipt did not simply pay its position: DOUBLE_PAYMENT,
    /// UNKNOWN_NOTICE, POSITION_CANCELLED, NOT_PAYABLE, AMOUNT_MISMATCH, KO_OUTCOME.
    pub anomaly: Option<String>,
    /// TO_REFUND or TO_REVIEW.
    pub refund_status: Option<String>,
    pub payment_date_time: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiptQuery {
    /// Only receipts with an anomaly (double payments to refund, ...).
    #[serde(default)]
    anomalies: bool,
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<u32>,
    /// The next page: the `nextCursor` of the previous one (also in its
    /// `Link` header, `rel="next"`).
    cursor: Option<String>,
}

/// The Ente's receipts, newest first, a page at a time: when there are
/// more, the `Link` header (`rel="next"`) and `X-Next-Cursor` say where the
/// next page starts.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/receipts", tag = "receipts",
    params(("fiscalCode" = String, Path), ReceiptQuery),
    responses((status = 200, body = Vec<ReceiptDto>,
               headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))),
              (status = 400, body = ProblemJson)))]
async fn list_receipts(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
    ApiQuery(q): ApiQuery<ReceiptQuery>,
) -> Result<axum::response::Response, ApiError> {
    let page = admin::list_receipts(
        &state.ctx(caller),
        &fc,
        q.anomalies,
        q.cursor.as_deref(),
        q.limit,
    )
    .await?;
    let items: Vec<ReceiptDto> = page
        .items
        .into_iter()
        .map(|r| ReceiptDto {
            receipt_id: r.receipt_id,
            notice_number: r.notice_number,
            iuv: r.iuv,
            owner_ente: r.owner_ente,
            amount: r.amount,
            psp_id: r.psp_id,
            anomaly: r.anomaly,
            refund_status: r.refund_status,
            payment_date_time: r.payment_date_time.map(|t| t.to_rfc3339()),
        })
        .collect();
    let mut next = format!("/api/v1/enti/{fc}/receipts?anomalies={}", q.anomalies);
    if let Some(limit) = q.limit {
        next.push_str(&format!("&limit={limit}"));
    }
    Ok(crate::paging::paged(items, page.next, &next))
}

/// The receipt exactly as the Node sent it (SOAP XML).
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/receipts/{receiptId}/xml", tag = "receipts",
    params(("fiscalCode" = String, Path), ("receiptId" = String, Path)),
    responses((status = 200, content_type = "text/xml", body = String), (status = 404, body = ProblemJson)))]
async fn receipt_xml(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, receipt_id)): Path<(String, String)>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    let xml = admin::receipt_xml(&state.ctx(caller), &fc, &receipt_id).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        xml,
    ))
}

// ---------------------------------------------------------------- offices

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfficeDto {
    #[serde(default)]
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// The Ente's offices, by code, a page at a time.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/offices", tag = "offices",
    params(("fiscalCode" = String, Path), PageQuery),
    responses((status = 200, body = Vec<OfficeDto>, headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))), (status = 400, body = ProblemJson)))]
async fn list_offices(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = admin::list_offices(&state.ctx(caller), &fc, q.cursor.as_deref(), q.limit).await?;
    let items: Vec<OfficeDto> = page
        .items
        .into_iter()
        .map(|o| OfficeDto {
            code: o.code,
            name: o.name,
            email: o.email,
        })
        .collect();
    let next = list_url(
        &format!("/api/v1/enti/{fc}/offices"),
        &[("limit", q.limit.map(|l| l.to_string()))],
    );
    Ok(paged(items, page.next, &next))
}

/// Create or replace an office (idempotent by code).
#[utoipa::path(put, path = "/api/v1/enti/{fiscalCode}/offices/{code}", tag = "offices", request_body = OfficeDto,
    params(("fiscalCode" = String, Path), ("code" = String, Path)),
    responses((status = 200, body = OfficeDto), (status = 400, body = ProblemJson)))]
async fn put_office(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, code)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<OfficeDto>,
) -> Result<Json<OfficeDto>, ApiError> {
    body.code = code;
    let office = Office {
        code: body.code.clone(),
        name: body.name.clone(),
        email: body.email.clone(),
    };
    admin::put_office(&state.ctx(caller), &fc, &office).await?;
    Ok(Json(body))
}

#[utoipa::path(delete, path = "/api/v1/enti/{fiscalCode}/offices/{code}", tag = "offices",
    params(("fiscalCode" = String, Path), ("code" = String, Path)),
    responses((status = 204), (status = 404, body = ProblemJson)))]
async fn delete_office(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, code)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    admin::delete_office(&state.ctx(caller), &fc, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- catalogue

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDto {
    #[serde(default)]
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub office_code: Option<String>,
    /// pagoPA taxonomy code, e.g. `9/0101100IM/`.
    pub taxonomy_code: String,
    /// `year/code` of the default accertamento, e.g. `2026/ACC-1`.
    #[serde(default)]
    pub default_accertamento: Option<String>,
    #[serde(default)]
    pub iban: Option<String>,
    /// Fixed amount in cents; absent for a free amount.
    #[serde(default)]
    pub fixed_amount: Option<i64>,
    #[serde(default)]
    pub spontaneous: bool,
    /// pagoPA's 5-character catalogue id, for payments started at a PSP.
    #[serde(default)]
    pub pagopa_service_id: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

fn parse_acc_ref(field: &str, s: &str) -> Result<AccertamentoRef, ApiError> {
    s.split_once('/')
        .and_then(|(y, c)| {
            Some(AccertamentoRef {
                year: y.parse().ok()?,
                code: c.to_string(),
            })
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                "BAD_FORMAT",
                format!("{field}: atteso 'anno/codice', es. 2026/ACC-1"),
            )
        })
}

impl From<Service> for ServiceDto {
    fn from(s: Service) -> Self {
        ServiceDto {
            code: s.code,
            name: s.name,
            office_code: s.office_code,
            taxonomy_code: s.taxonomy_code,
            default_accertamento: s
                .default_accertamento
                .map(|a| format!("{}/{}", a.year, a.code)),
            iban: s.iban,
            fixed_amount: s.fixed_amount.map(|c| c.0),
            spontaneous: s.spontaneous,
            pagopa_service_id: s.pagopa_service_id,
            active: s.active,
        }
    }
}

/// The Ente's catalogue, by service code, a page at a time.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/services", tag = "catalogue",
    params(("fiscalCode" = String, Path), PageQuery),
    responses((status = 200, body = Vec<ServiceDto>, headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))), (status = 400, body = ProblemJson)))]
async fn list_services(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = admin::list_services(&state.ctx(caller), &fc, q.cursor.as_deref(), q.limit).await?;
    let items: Vec<ServiceDto> = page.items.into_iter().map(Into::into).collect();
    let next = list_url(
        &format!("/api/v1/enti/{fc}/services"),
        &[("limit", q.limit.map(|l| l.to_string()))],
    );
    Ok(paged(items, page.next, &next))
}

#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/services/{code}", tag = "catalogue",
    params(("fiscalCode" = String, Path), ("code" = String, Path)),
    responses((status = 200, body = ServiceDto), (status = 404, body = ProblemJson)))]
async fn get_service(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, code)): Path<(String, String)>,
) -> Result<Json<ServiceDto>, ApiError> {
    Ok(Json(
        admin::get_service(&state.ctx(caller), &fc, &code)
            .await?
            .into(),
    ))
}

/// Create or replace a catalogue service (idempotent by code).
#[utoipa::path(put, path = "/api/v1/enti/{fiscalCode}/services/{code}", tag = "catalogue", request_body = ServiceDto,
    params(("fiscalCode" = String, Path), ("code" = String, Path)),
    responses((status = 200, body = ServiceDto), (status = 400, body = ProblemJson)))]
async fn put_service(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, code)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<ServiceDto>,
) -> Result<Json<ServiceDto>, ApiError> {
    body.code = code;
    let service = Service {
        code: body.code.clone(),
        name: body.name.clone(),
        office_code: body.office_code.clone(),
        taxonomy_code: body.taxonomy_code.clone(),
        default_accertamento: body
            .default_accertamento
            .as_deref()
            .map(|s| parse_acc_ref("defaultAccertamento", s))
            .transpose()?,
        iban: body.iban.clone(),
        fixed_amount: body.fixed_amount.map(Cents),
        spontaneous: body.spontaneous,
        pagopa_service_id: body.pagopa_service_id.clone(),
        active: body.active,
    };
    admin::put_service(&state.ctx(caller), &fc, &service).await?;
    Ok(Json(service.into()))
}

// ---------------------------------------------------------------- accertamenti

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccertamentoDto {
    #[serde(default)]
    pub year: i32,
    #[serde(default)]
    pub code: String,
    pub description: String,
    /// Budget chapter (capitolo).
    pub chapter: String,
    #[serde(default)]
    pub article: Option<String>,
    /// SIOPE code of the revenue (4 to 10 digits): reversali are
    /// classified by it.
    #[serde(default)]
    pub siope_code: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

impl From<Accertamento> for AccertamentoDto {
    fn from(a: Accertamento) -> Self {
        AccertamentoDto {
            year: a.year,
            code: a.code,
            description: a.description,
            chapter: a.chapter,
            article: a.article,
            siope_code: a.siope_code,
            active: a.active,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    /// Only this budget year.
    year: Option<i32>,
    /// At most this many (default 1000, at most 10000).
    limit: Option<u32>,
    /// The next page: the `X-Next-Cursor` of the previous one (also in its
    /// `Link` header, `rel="next"`).
    cursor: Option<String>,
}

/// The Ente's accertamenti, by year and code, a page at a time.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/accertamenti", tag = "accertamenti",
    params(("fiscalCode" = String, Path), YearQuery),
    responses((status = 200, body = Vec<AccertamentoDto>, headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))), (status = 400, body = ProblemJson)))]
async fn list_accertamenti(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
    ApiQuery(q): ApiQuery<YearQuery>,
) -> Result<Response, ApiError> {
    let ctx = state.ctx(caller);
    let page = admin::list_accertamenti(&ctx, &fc, q.year, q.cursor.as_deref(), q.limit).await?;
    let items: Vec<AccertamentoDto> = page.items.into_iter().map(Into::into).collect();
    let next = list_url(
        &format!("/api/v1/enti/{fc}/accertamenti"),
        &[
            ("year", q.year.map(|y| y.to_string())),
            ("limit", q.limit.map(|l| l.to_string())),
        ],
    );
    Ok(paged(items, page.next, &next))
}

#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/accertamenti/{year}/{code}", tag = "accertamenti",
    params(("fiscalCode" = String, Path), ("year" = i32, Path), ("code" = String, Path)),
    responses((status = 200, body = AccertamentoDto), (status = 404, body = ProblemJson)))]
async fn get_accertamento(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, year, code)): Path<(String, i32, String)>,
) -> Result<Json<AccertamentoDto>, ApiError> {
    Ok(Json(
        admin::get_accertamento(&state.ctx(caller), &fc, year, &code)
            .await?
            .into(),
    ))
}

/// Create or replace an accertamento (idempotent by year and code).
#[utoipa::path(put, path = "/api/v1/enti/{fiscalCode}/accertamenti/{year}/{code}", tag = "accertamenti",
    request_body = AccertamentoDto,
    params(("fiscalCode" = String, Path), ("year" = i32, Path), ("code" = String, Path)),
    responses((status = 200, body = AccertamentoDto), (status = 400, body = ProblemJson)))]
async fn put_accertamento(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, year, code)): Path<(String, i32, String)>,
    ApiJson(body): ApiJson<AccertamentoDto>,
) -> Result<Json<AccertamentoDto>, ApiError> {
    let acc = Accertamento {
        year,
        code,
        description: body.description,
        chapter: body.chapter,
        article: body.article,
        siope_code: body.siope_code,
        active: body.active,
    };
    admin::put_accertamento(&state.ctx(caller), &fc, &acc).await?;
    Ok(Json(acc.into()))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadedDto {
    pub loaded: usize,
}

/// Create or replace many accertamenti at once (a year's budget), each by
/// year and code: all or none; errors name the entry (`[3].chapter`).
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/accertamenti", tag = "accertamenti",
    request_body = Vec<AccertamentoDto>,
    params(("fiscalCode" = String, Path)),
    responses((status = 200, body = LoadedDto), (status = 400, body = ProblemJson)))]
async fn load_accertamenti(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
    ApiJsonList(body): ApiJsonList<AccertamentoDto>,
) -> Result<Json<LoadedDto>, ApiError> {
    let list: Vec<Accertamento> = body
        .into_iter()
        .map(|d| Accertamento {
            year: d.year,
            code: d.code,
            description: d.description,
            chapter: d.chapter,
            article: d.article,
            siope_code: d.siope_code,
            active: d.active,
        })
        .collect();
    let loaded = admin::load_accertamenti(&state.ctx(caller), &fc, &list).await?;
    Ok(Json(LoadedDto { loaded }))
}

// ---------------------------------------------------------------- API keys

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDto {
    pub key_id: String,
    pub ente: Option<String>,
    /// `intermediary`, `ente` (an application's) or `ente_admin`.
    pub scope: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewApiKeyDto {
    pub key_id: String,
    /// The secret, shown only now: incasso keeps only its hash.
    pub api_key: String,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct NewKeyRequest {
    #[serde(default)]
    pub label: String,
    /// For an Ente's key: `ente` (an application's, the default) or
    /// `ente_admin` (the Ente's administrator's).
    #[serde(default)]
    pub scope: Option<String>,
}

fn key_dto(r: incasso_store::ApiKeyRecord) -> ApiKeyDto {
    ApiKeyDto {
        key_id: r.key_id,
        ente: r.ente,
        scope: match r.scope {
            KeyScope::Intermediary => "intermediary".into(),
            KeyScope::Ente => "ente".into(),
            KeyScope::EnteAdmin => "ente_admin".into(),
        },
        label: r.label,
    }
}

/// The Ente's keys (its administrator's key or the intermediary's), by
/// key id, a page at a time.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/api-keys", tag = "api-keys",
    params(("fiscalCode" = String, Path), PageQuery),
    responses((status = 200, body = Vec<ApiKeyDto>, headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))), (status = 400, body = ProblemJson),
              (status = 403, body = ProblemJson)))]
async fn list_ente_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = keys::list(&state.ctx(caller), Some(&fc), q.cursor.as_deref(), q.limit).await?;
    let items: Vec<ApiKeyDto> = page.items.into_iter().map(key_dto).collect();
    let next = list_url(
        &format!("/api/v1/enti/{fc}/api-keys"),
        &[("limit", q.limit.map(|l| l.to_string()))],
    );
    Ok(paged(items, page.next, &next))
}

/// Issue a new key for the Ente: an application's (`"scope": "ente"`, the
/// default) or the Ente's administrator's (`"ente_admin"`, which may also
/// list and revoke the Ente's keys). Intermediary key only: a leaked Ente
/// key must not be able to mint successors that outlive its revocation.
/// The secret is in the response only.
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/api-keys", tag = "api-keys", request_body = NewKeyRequest,
    params(("fiscalCode" = String, Path)), responses((status = 201, body = NewApiKeyDto), (status = 400, body = ProblemJson), (status = 403, body = ProblemJson)))]
async fn create_ente_key(
    State(state): State<AppState>,
    Intermediary(caller): Intermediary,
    Path(fc): Path<String>,
    ApiJson(body): ApiJson<NewKeyRequest>,
) -> Result<(StatusCode, Json<NewApiKeyDto>), ApiError> {
    let scope = match body.scope.as_deref() {
        None | Some("ente") => KeyScope::Ente,
        Some("ente_admin") => KeyScope::EnteAdmin,
        Some(other) => {
            return Err(ApiError::bad_request(
                "BAD_SCOPE",
                format!("scope: '{other}' non previsto (ente, ente_admin)"),
            ));
        }
    };
    let (key_id, api_key) = keys::issue(&state.ctx(caller), Some(&fc), scope, &body.label).await?;
    Ok((StatusCode::CREATED, Json(NewApiKeyDto { key_id, api_key })))
}

/// Revoke one of the Ente's keys (its administrator's key or the
/// intermediary's; an application's key may not).
#[utoipa::path(delete, path = "/api/v1/enti/{fiscalCode}/api-keys/{keyId}", tag = "api-keys",
    params(("fiscalCode" = String, Path), ("keyId" = String, Path)),
    responses((status = 204), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
async fn revoke_ente_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    keys::revoke(&state.ctx(caller), &fc, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The intermediary's own keys, by key id, a page at a time.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", params(PageQuery),
    responses((status = 200, body = Vec<ApiKeyDto>, headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))), (status = 400, body = ProblemJson),
              (status = 403, body = ProblemJson)))]
async fn list_intermediary_keys(
    State(state): State<AppState>,
    Intermediary(caller): Intermediary,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = keys::list(&state.ctx(caller), None, q.cursor.as_deref(), q.limit).await?;
    let items: Vec<ApiKeyDto> = page.items.into_iter().map(key_dto).collect();
    let next = list_url(
        "/api/v1/api-keys",
        &[("limit", q.limit.map(|l| l.to_string()))],
    );
    Ok(paged(items, page.next, &next))
}

/// Issue a new intermediary-level key (intermediary key only).
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = NewKeyRequest,
    responses((status = 201, body = NewApiKeyDto), (status = 403, body = ProblemJson)))]
async fn create_intermediary_key(
    State(state): State<AppState>,
    Intermediary(caller): Intermediary,
    ApiJson(body): ApiJson<NewKeyRequest>,
) -> Result<(StatusCode, Json<NewApiKeyDto>), ApiError> {
    let (key_id, api_key) = keys::issue(
        &state.ctx(caller),
        None,
        KeyScope::Intermediary,
        &body.label,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(NewApiKeyDto { key_id, api_key })))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "incasso API", description = "Administration of Enti, stations, offices, service catalogue, accertamenti and API keys. Keys go in the Ocp-Apim-Subscription-Key header. Debt positions are managed through the GPD-compatible API under /gpd/v1 (see pagoPA's gpd.json)."),
    paths(list_enti, create_ente, get_ente, update_ente, list_stations, add_station, remove_station,
          get_connection, put_connection, crate::checkout::checkout_api, list_receipts, receipt_xml,
          crate::bus_api::upload, crate::bus_api::list_supplies, crate::bus_api::get_supply, crate::notices::notice_pdf, crate::notices::position_pdf, crate::notices::supply_zip, crate::notices::filtered_zip, crate::notices::put_logo, crate::notices::delete_logo, crate::bus_api::report,
          crate::bus_api::outcome, crate::bus_api::list_layouts, crate::bus_api::get_layout,
          crate::bus_api::put_layout, crate::bus_api::export,
          crate::recon_api::post_flow, crate::recon_api::list_flows, crate::recon_api::flow_payments,
          crate::recon_api::post_treasury, crate::recon_api::run, crate::recon_api::breakdown,
          crate::recon_api::anomalies, crate::recon_api::lines, crate::recon_api::fetch, crate::recon_api::put_reconciliation,
          crate::recon_api::put_treasury_settings, crate::recon_api::reversale,
          list_offices, put_office, delete_office, list_services, get_service, put_service,
          list_accertamenti, get_accertamento, put_accertamento, load_accertamenti,
          list_ente_keys, create_ente_key, revoke_ente_key, list_intermediary_keys, create_intermediary_key,
          crate::digitpos::pay_spontaneous, crate::digitpos::load_position, crate::digitpos::pay_position,
          crate::digitpos::notice_pdf, crate::digitpos::receipt, crate::digitpos::receipt_pdf,
          crate::digitpos::list_return_hosts, crate::digitpos::add_return_host, crate::digitpos::remove_return_host),
    components(schemas(ProblemJson, crate::error::Binary)),
    modifiers(&SecurityAddon),
    security(("ApiKey" = []))
)]
pub struct ApiDoc;

pub(crate) struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "ApiKey",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(crate::auth::KEY_HEADER))),
            );
        declare_common_errors(openapi);
    }
}

/// Whether a response's content is a ProblemJson.
fn is_problem(content: &utoipa::openapi::RefOr<utoipa::openapi::Content>) -> bool {
    use utoipa::openapi::RefOr;
    matches!(content, RefOr::T(c)
        if matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ProblemJson")))
}

/// Declares on every operation the errors any of them can answer, so that
/// generated clients expect them: no key (401), a key without the right
/// (403), unreadable parameters or body (400), a body of the wrong type or
/// size (415, 413), incasso's own failure (500), and on a path with
/// parameters what it names not existing (404). Each is ProblemJson, as
/// `application/problem+json`, the type every error is sent with.
fn declare_common_errors(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ProblemJson")))
                        .build(),
                )
                .build(),
        )
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let has_body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            for (code, response) in responses.iter_mut() {
                // An error is sent as application/problem+json (see
                // crate::error::problem_json), whatever type utoipa gave
                // the ProblemJson body of an annotation.
                if let RefOr::T(r) = response
                    && !code.starts_with('2')
                {
                    r.content = std::mem::take(&mut r.content)
                        .into_iter()
                        .map(|(kind, content)| {
                            if kind == "application/json" && is_problem(&content) {
                                ("application/problem+json".to_string(), content)
                            } else {
                                (kind, content)
                            }
                        })
                        .collect();
                }
                // OpenAPI requires a description on every response.
                if let RefOr::T(r) = response
                    && r.description.is_empty()
                {
                    r.description = match code.as_str() {
                        "200" => "fatto",
                        "201" => "creato",
                        "202" => "accettato: in corso",
                        "204" => "fatto, senza contenuto",
                        _ => "errore, come ProblemJson",
                    }
                    .to_string();
                }
            }
            let mut add = |code: &str, description: &str| {
                responses
                    .entry(code.to_string())
                    .or_insert_with(|| problem(description));
            };
            add(
                "400",
                "richiesta non valida: ogni campo errato è in errors[]",
            );
            add("401", "chiave API mancante o non valida");
            add(
                "403",
                "la chiave non dà diritto a questa risorsa o operazione",
            );
            add("500", "errore interno, con un riferimento da citare");
            if path.contains('{') {
                // Whatever a path names (the Ente first) may not exist.
                add("404", "risorsa inesistente");
            }
            if has_body {
                add("413", "corpo troppo grande");
                add("415", "tipo di contenuto non supportato");
            }
        }
    }
}
