//! DigitFIN's reconciliation API under `/api/v1/enti/{fiscalCode}`: take in
//! reporting flows and treasury files, run the matching, read the flows,
//! their payments, the breakdowns over accertamenti, and the anomalies.
//! Amounts are integer euro cents.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use incasso_app::digitfin;
use incasso_app::reconcile::{BreakdownOf, ReconciliationRequest, TreasurySettings};
use incasso_store::FlowIntake;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A day's flow of a big PSP to a big Ente, or a month's journal.
pub const MAX_RECON_FILE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowIntakeDto {
    pub flow_id: String,
    /// STORED, REPLACED (a later version of a known flow), ALREADY_KNOWN
    /// (nothing changed) or OUTDATED (older than the one held: kept aside).
    pub intake: String,
}

/// Take in a reporting flow (`FlussoRiversamento` XML, 1.0.4 or 1.0.5).
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/flows", tag = "reconciliation",
    params(("fiscalCode" = String, Path)),
    request_body(content = crate::error::Binary, content_type = "application/xml"),
    responses((status = 201, body = FlowIntakeDto), (status = 200, body = FlowIntakeDto),
              (status = 400, body = crate::error::ProblemJson), (status = 409, body = crate::error::ProblemJson)))]
pub async fn post_flow(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (flow_id, intake) = digitfin::take_flow(&state.ctx(caller), &ente, &body).await?;
    let (status, name) = match intake {
        FlowIntake::Stored => (StatusCode::CREATED, "STORED"),
        FlowIntake::Replaced => (StatusCode::CREATED, "REPLACED"),
        FlowIntake::AlreadyKnown => (StatusCode::OK, "ALREADY_KNOWN"),
        FlowIntake::Outdated => (StatusCode::OK, "OUTDATED"),
    };
    Ok((
        status,
        Json(FlowIntakeDto {
            flow_id,
            intake: name.into(),
        }),
    )
        .into_response())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowDto {
    pub flow_id: String,
    pub flow_date_time: String,
    pub settlement_ref: String,
    pub settlement_date: String,
    pub psp_id: String,
    pub declared_total: i64,
    pub lines_total: i64,
    pub lines: i64,
    /// What the flow contradicts in itself; empty when nothing.
    pub problems: String,
}

/// The current version of each of the Ente's flows, a page at a time.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/flows", tag = "reconciliation",
    params(("fiscalCode" = String, Path), PageQuery),
    responses((status = 200, body = Vec<FlowDto>)))]
pub async fn list_flows(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page =
        digitfin::list_flows(&state.ctx(caller), &ente, q.cursor.as_deref(), q.limit).await?;
    let items: Vec<FlowDto> = page
        .items
        .into_iter()
        .map(|f| FlowDto {
            flow_id: f.flow_id,
            flow_date_time: f.flow_date_time.to_rfc3339(),
            settlement_ref: f.settlement_ref,
            settlement_date: f.settlement_date.to_string(),
            psp_id: f.psp_id,
            declared_total: f.declared_total.0,
            lines_total: f.lines_total.0,
            lines: f.lines,
            problems: f.problems,
        })
        .collect();
    let next = match q.limit {
        Some(limit) => format!("/api/v1/enti/{ente}/flows?limit={limit}"),
        None => format!("/api/v1/enti/{ente}/flows"),
    };
    Ok(crate::paging::paged(items, page.next, &next))
}

/// A page of a list: at most `limit` items after `cursor`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many (default 1000, at most 10000).
    limit: Option<u32>,
    /// The next page: the `X-Next-Cursor` of the previous one (also in its
    /// `Link` header, `rel="next"`).
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowPaymentDto {
    pub iuv: String,
    pub iur: String,
    pub transfer_index: u8,
    /// Negative for a revocation.
    pub amount: i64,
    /// `codiceEsitoSingoloPagamento`: 0, 3, 4, 8 or 9.
    pub outcome: u8,
}

/// The payments a flow reports (its current version).
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/flows/{flowId}/payments", tag = "reconciliation",
    params(("fiscalCode" = String, Path), ("flowId" = String, Path)),
    responses((status = 200, body = Vec<FlowPaymentDto>), (status = 404, body = crate::error::ProblemJson)))]
pub async fn flow_payments(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, flow_id)): Path<(String, String)>,
) -> Result<Json<Vec<FlowPaymentDto>>, ApiError> {
    let lines = digitfin::flow_payments(&state.ctx(caller), &ente, &flow_id).await?;
    Ok(Json(
        lines
            .into_iter()
            .map(|l| FlowPaymentDto {
                iuv: l.iuv,
                iur: l.iur,
                transfer_index: l.transfer_index,
                amount: l.amount.0,
                outcome: l.outcome,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TreasuryQuery {
    /// A treasury layout of the Digit BUS (`tesoreria-csv`, or the Ente's
    /// own) for a bank's CSV, fixed-width or spreadsheet export; absent
    /// for OPI and camt XML.
    pub layout: Option<String>,
}

/// Take in a treasury file: an OPI giornale di cassa (1.7.1, 1.8), a
/// camt.053/054 statement, or with `layout` a bank's own export through a
/// treasury layout. Movements already known are left as they are; a file
/// with a bad row is refused whole, naming the row.
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/treasury", tag = "reconciliation",
    params(("fiscalCode" = String, Path), TreasuryQuery),
    request_body(content = crate::error::Binary, content_type = "application/xml"),
    responses((status = 201, body = TreasuryIntakeDto), (status = 400, body = crate::error::ProblemJson),
              (status = 409, body = crate::error::ProblemJson)))]
pub async fn post_treasury(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<TreasuryQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new = digitfin::take_treasury(
        &state.ctx(caller),
        &ente,
        q.layout.as_deref(),
        body.to_vec(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TreasuryIntakeDto { new_movements: new }),
    )
        .into_response())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TreasuryIntakeDto {
    pub new_movements: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryDto {
    pub flows: usize,
    pub open_sospesi: usize,
    pub matched: usize,
    /// Anomalies of this run by code.
    pub anomalies: std::collections::BTreeMap<String, usize>,
    /// Flow lines by which of their four sources agree.
    pub lines_by_class: std::collections::BTreeMap<String, usize>,
}

/// Match the Ente's open sospesi to its flows; replaces the previous run's
/// results.
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/reconciliation", tag = "reconciliation",
    params(("fiscalCode" = String, Path)),
    responses((status = 200, body = SummaryDto)))]
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
) -> Result<Json<SummaryDto>, ApiError> {
    let s = digitfin::run(&state.ctx(caller), &ente).await?;
    Ok(Json(SummaryDto {
        flows: s.flows,
        open_sospesi: s.open_sospesi,
        matched: s.matched,
        anomalies: s.anomalies,
        lines_by_class: s.lines_by_class,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct BreakdownQuery {
    /// A flow (its current version).
    flow_id: Option<String>,
    /// A sospeso, by the movement id the treasury intake gave it.
    movement_id: Option<String>,
    /// One IUV.
    iuv: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BreakdownDto {
    /// None: money attributed to no accertamento.
    pub year: Option<i32>,
    pub accertamento: Option<String>,
    pub amount: i64,
}

fn breakdown_dtos(b: incasso_recon::breakdown::Breakdown) -> Vec<BreakdownDto> {
    b.into_iter()
        .map(|(acc, cents)| BreakdownDto {
            year: acc.as_ref().map(|a| a.year),
            accertamento: acc.map(|a| a.code),
            amount: cents.0,
        })
        .collect()
}

/// The breakdown over accertamenti of a flow, a sospeso or an IUV (exactly
/// one of the three).
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/breakdown", tag = "reconciliation",
    params(("fiscalCode" = String, Path), BreakdownQuery),
    responses((status = 200, body = Vec<BreakdownDto>), (status = 400, body = crate::error::ProblemJson),
              (status = 409, body = crate::error::ProblemJson)))]
pub async fn breakdown(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<BreakdownQuery>,
) -> Result<Json<Vec<BreakdownDto>>, ApiError> {
    let of = match (&q.flow_id, &q.movement_id, &q.iuv) {
        (Some(f), None, None) => BreakdownOf::Flow(f),
        (None, Some(m), None) => BreakdownOf::Movement(m),
        (None, None, Some(i)) => BreakdownOf::Iuv(i),
        _ => {
            return Err(ApiError::bad_request(
                "BREAKDOWN_SUBJECT",
                "indicare uno solo tra flowId, movementId e iuv",
            ));
        }
    };
    let b = digitfin::breakdown(&state.ctx(caller), &ente, of).await?;
    Ok(Json(breakdown_dtos(b)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LinesQuery {
    /// Only this flow's lines.
    flow_id: Option<String>,
    /// Only lines of this class: RECONCILED, AWAITING_TREASURY,
    /// AWAITING_FLOW, FLOW_WITHOUT_RECEIPT, UNKNOWN_DEBT, UNPAID.
    class: Option<String>,
    /// At most this many (default 1000, at most 10000).
    limit: Option<u32>,
    /// The next page: the `X-Next-Cursor` of the previous one (also in its
    /// `Link` header, `rel="next"`).
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassifiedLineDto {
    pub flow_id: String,
    /// The line's number in its flow, from 1.
    pub line: u32,
    pub iuv: String,
    pub transfer_index: u8,
    /// Cents.
    pub amount: i64,
    pub outcome: u8,
    /// Which of the four sources know the transfer (the flow always does).
    pub position: bool,
    pub receipt: bool,
    pub treasury: bool,
    pub class: String,
}

/// The transfers the flows report, each classified by which of its four
/// sources (position, receipt, flow, treasury) know it, as the latest run
/// left them.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/reconciliation/lines", tag = "reconciliation",
    params(("fiscalCode" = String, Path), LinesQuery),
    responses((status = 200, body = Vec<ClassifiedLineDto>, headers(("Link" = String, description = "rel=\"next\": the next page"),
                       ("X-Next-Cursor" = String, description = "the next page's cursor"))),
              (status = 400, body = crate::error::ProblemJson)))]
pub async fn lines(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<LinesQuery>,
) -> Result<Response, ApiError> {
    let page = digitfin::lines(
        &state.ctx(caller),
        &ente,
        q.flow_id.as_deref(),
        q.class.as_deref(),
        q.cursor.as_deref(),
        q.limit,
    )
    .await?;
    let items: Vec<ClassifiedLineDto> = page
        .items
        .into_iter()
        .map(|l| ClassifiedLineDto {
            flow_id: l.flow_id,
            line: l.line,
            iuv: l.iuv,
            transfer_index: l.transfer_index,
            amount: l.amount.0,
            outcome: l.outcome,
            position: l.position,
            receipt: l.receipt,
            treasury: l.treasury,
            class: l.class.to_string(),
        })
        .collect();
    let next = crate::paging::list_url(
        &format!("/api/v1/enti/{ente}/reconciliation/lines"),
        &[
            ("flowId", q.flow_id.clone()),
            ("class", q.class.clone()),
            ("limit", q.limit.map(|l| l.to_string())),
        ],
    );
    Ok(crate::paging::paged(items, page.next, &next))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AnomalyQuery {
    /// Only this code (e.g. AMOUNT_MISMATCH, FLOW_WITHOUT_MOVEMENT).
    code: Option<String>,
    /// At most this many (default 1000, at most 10000).
    limit: Option<u32>,
    /// The next page: the `X-Next-Cursor` of the previous one (also in its
    /// `Link` header, `rel="next"`).
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyDto {
    pub code: String,
    pub subject: String,
    pub detail: String,
    pub amount: Option<i64>,
}

/// The latest run's anomalies.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/anomalies", tag = "reconciliation",
    params(("fiscalCode" = String, Path), AnomalyQuery),
    responses((status = 200, body = Vec<AnomalyDto>)))]
pub async fn anomalies(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<AnomalyQuery>,
) -> Result<Response, ApiError> {
    let page = digitfin::anomalies(
        &state.ctx(caller),
        &ente,
        q.code.as_deref(),
        q.cursor.as_deref(),
        q.limit,
    )
    .await?;
    let items: Vec<AnomalyDto> = page
        .items
        .into_iter()
        .map(|a| AnomalyDto {
            code: a.code,
            subject: a.subject,
            detail: a.detail,
            amount: a.amount.map(|c| c.0),
        })
        .collect();
    let mut next = format!("/api/v1/enti/{ente}/anomalies?");
    if let Some(code) = &q.code {
        next.push_str(&format!("code={code}&"));
    }
    if let Some(limit) = q.limit {
        next.push_str(&format!("limit={limit}&"));
    }
    let next = next.trim_end_matches(['&', '?']).to_string();
    Ok(crate::paging::paged(items, page.next, &next))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FetchDto {
    pub listed: usize,
    pub taken: usize,
    pub known: usize,
    /// Flows refused, each with why.
    pub refused: Vec<RefusedFlowDto>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedFlowDto {
    pub flow_id: String,
    pub reason: String,
}

/// Fetch the Ente's reporting flows from the pagoPA Node now (SOAP
/// `nodoChiediElencoFlussiRendicontazione` / `nodoChiediFlussoRendicontazione`)
/// and take in those not yet held.
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/flows/fetch", tag = "reconciliation",
    params(("fiscalCode" = String, Path)),
    responses((status = 200, body = FetchDto),
              (status = 409, description = "no station of the Ente has a connection to the Node (NO_CONNECTION)", body = crate::error::ProblemJson),
              (status = 502, description = "the Node did not answer (NODE_UNAVAILABLE)", body = crate::error::ProblemJson)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
) -> Result<Json<FetchDto>, ApiError> {
    let r = digitfin::fetch(&state.ctx(caller), &ente).await?;
    Ok(Json(FetchDto {
        listed: r.listed,
        taken: r.taken,
        known: r.known,
        refused: r
            .refused
            .into_iter()
            .map(|(flow_id, reason)| RefusedFlowDto { flow_id, reason })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationBody {
    /// The bank transfer's causale, as the application read it.
    pub causale: String,
    /// Cents.
    pub amount: i64,
    /// The transfer's TRN or EndToEndId, if known.
    pub trn: Option<String>,
    /// The day the money arrived (YYYY-MM-DD).
    #[schema(value_type = String, format = Date)]
    pub date: chrono::NaiveDate,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationDto {
    pub id: String,
    pub flow_id: String,
    pub breakdown: Vec<BreakdownDto>,
}

/// An accounting application's reconciliation of a bank transfer it read
/// (as GovPay's `riconciliazioni`): idempotent on `id`, with an exact amount
/// check against the flow the causale or the TRN names.
#[utoipa::path(put, path = "/api/v1/enti/{fiscalCode}/reconciliations/{id}", tag = "reconciliation",
    params(("fiscalCode" = String, Path), ("id" = String, Path)),
    request_body = ReconciliationBody,
    responses((status = 200, body = ReconciliationDto), (status = 404, body = crate::error::ProblemJson),
              (status = 409, body = crate::error::ProblemJson), (status = 422, body = crate::error::ProblemJson)))]
pub async fn put_reconciliation(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ReconciliationBody>,
) -> Result<Json<ReconciliationDto>, ApiError> {
    let request = ReconciliationRequest {
        id: id.clone(),
        causale: body.causale,
        amount: incasso_core::Cents(body.amount),
        trn: body.trn,
        date: body.date,
    };
    let answer = digitfin::reconcile_request(&state.ctx(caller), &ente, &request).await?;
    Ok(Json(ReconciliationDto {
        id,
        flow_id: answer.flow_id,
        breakdown: breakdown_dtos(answer.breakdown),
    }))
}

/// Set the Ente's treasury settings (for OPI headers).
#[utoipa::path(put, path = "/api/v1/enti/{fiscalCode}/treasury-settings", tag = "reconciliation",
    params(("fiscalCode" = String, Path)),
    request_body = TreasurySettingsDto,
    responses((status = 200, body = TreasurySettingsDto), (status = 422, body = crate::error::ProblemJson)))]
pub async fn put_treasury_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiJson(body): ApiJson<TreasurySettingsDto>,
) -> Result<Json<TreasurySettingsDto>, ApiError> {
    let settings = TreasurySettings::from(body);
    digitfin::put_treasury_settings(&state.ctx(caller), &ente, &settings).await?;
    Ok(Json(settings.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ReversaleQuery {
    /// The sospeso, by the movement id the treasury intake gave it.
    movement_id: String,
    /// The reversale's number in the Ente's accounting (default 1).
    number: Option<u32>,
}

/// The regularization proposal of a matched sospeso: OPI ordinativi 1.7.1
/// with one reversale (REGOLARIZZAZIONE), split over its accertamenti, to
/// be signed by the Ente's tool.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/reversale", tag = "reconciliation",
    params(("fiscalCode" = String, Path), ReversaleQuery),
    responses((status = 200, content_type = "application/xml", body = String),
              (status = 404, body = crate::error::ProblemJson), (status = 409, body = crate::error::ProblemJson)))]
pub async fn reversale(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<ReversaleQuery>,
) -> Result<Response, ApiError> {
    let xml = digitfin::reversale(
        &state.ctx(caller),
        &ente,
        &q.movement_id,
        q.number.unwrap_or(1),
    )
    .await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/xml")], xml).into_response())
}

/// The Ente's treasury service settings, as OPI headers need them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TreasurySettingsDto {
    /// The treasury bank's ABI code (5 digits).
    pub bank_abi: String,
    /// The Ente's IPA office code (6 characters, A-Z and digits).
    pub ipa_office_code: String,
    /// The Ente's SIOPE code (9 to 15 digits).
    pub siope_ente_code: String,
    /// `A2A-` and 8 digits: the Ente's intermediary.
    pub ente_channel: String,
    /// `A2A-` and 8 digits: the bank's intermediary.
    pub bank_channel: String,
    /// The bank's own code for the Ente.
    pub bank_ente_code: String,
}

impl From<TreasurySettingsDto> for TreasurySettings {
    fn from(d: TreasurySettingsDto) -> Self {
        TreasurySettings {
            bank_abi: d.bank_abi,
            ipa_office_code: d.ipa_office_code,
            siope_ente_code: d.siope_ente_code,
            ente_channel: d.ente_channel,
            bank_channel: d.bank_channel,
            bank_ente_code: d.bank_ente_code,
        }
    }
}

impl From<TreasurySettings> for TreasurySettingsDto {
    fn from(s: TreasurySettings) -> Self {
        TreasurySettingsDto {
            bank_abi: s.bank_abi,
            ipa_office_code: s.ipa_office_code,
            siope_ente_code: s.siope_ente_code,
            ente_channel: s.ente_channel,
            bank_channel: s.bank_channel,
            bank_ente_code: s.bank_ente_code,
        }
    }
}
