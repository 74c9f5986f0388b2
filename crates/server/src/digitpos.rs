//! DigitPOS over HTTP: the payment API for other applications' portals,
//! under `/api/v1/enti/{fiscalCode}/digitpos/`, with an Ente's API key.
//! The decisions are [`incasso_app::digitpos`]'s; this door parses, holds
//! every POST to its `Idempotency-Key` (the same key and body answer the
//! stored answer again; another body is 409 `IDEMPOTENCY_KEY_REUSED`),
//! and renders.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery, ProblemJson};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use incasso_app::digitpos::{
    self as dp, Claimed, Debtor, Issued, LoadPosition, PayPosition, ReturnUrls, ServiceAnswers,
    SpontaneousPayment, Started,
};
use incasso_app::notices::language;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// The header every POST carries.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Set on an answer replayed for a repeated idempotency key.
pub const REPLAYED: &str = "Idempotent-Replayed";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/enti/{fiscalCode}/digitpos/spontaneous-payments",
            post(pay_spontaneous),
        )
        .route("/enti/{fiscalCode}/digitpos/positions", post(load_position))
        .route("/enti/{fiscalCode}/digitpos/payments", post(pay_position))
        .route(
            "/enti/{fiscalCode}/digitpos/notices/{noticeNumber}/pdf",
            get(notice_pdf),
        )
        .route(
            "/enti/{fiscalCode}/digitpos/notices/{noticeNumber}/receipt",
            get(receipt),
        )
        .route(
            "/enti/{fiscalCode}/digitpos/notices/{noticeNumber}/receipt.pdf",
            get(receipt_pdf),
        )
        .route(
            "/enti/{fiscalCode}/digitpos/return-hosts",
            get(list_return_hosts).post(add_return_host),
        )
        .route(
            "/enti/{fiscalCode}/digitpos/return-hosts/{host}",
            delete(remove_return_host),
        )
}

// ---------------------------------------------------------------- bodies

/// Who pays.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DebtorDto {
    /// Italian fiscal code (16 characters) or an 11-digit one.
    #[schema(example = "RSSMRA85T10A562S")]
    pub fiscal_code: String,
    /// Name and surname, or a company's name (at most 70 characters).
    #[schema(example = "Mario Rossi")]
    pub name: String,
    /// Where incasso's own messages about the position go.
    #[serde(default)]
    pub email: Option<String>,
}

/// Where pagoPA Checkout sends the payer back: pages of the caller's
/// portal, https on a host the Ente registered (http only for
/// `localhost` and `127.0.0.1`). They say only how the payer left
/// Checkout; whether it is paid is the receipt's to say (use case 5).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnUrlsDto {
    /// After a completed payment.
    #[schema(example = "https://pagamenti.example.it/esito/ok")]
    pub ok: String,
    /// After the payer cancelled.
    #[schema(example = "https://pagamenti.example.it/esito/annullato")]
    pub cancel: String,
    /// After an error.
    #[schema(example = "https://pagamenti.example.it/esito/errore")]
    pub error: String,
}

/// Use case 1: a spontaneous payment of a catalogue service, made and
/// sent to Checkout in one call.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpontaneousPaymentRequest {
    /// A spontaneous service of the Ente's catalogue.
    #[schema(example = "TICKET")]
    pub service_code: String,
    pub debtor: DebtorDto,
    /// The service's form fields, by name, as texts (dates `dd/mm/yyyy`
    /// or `yyyy-mm-dd`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The amount in euro cents: required where the service lets the
    /// payer type it, one of its table's amounts where it has a table;
    /// with a fixed amount, if given, it must be that one.
    #[serde(default)]
    pub amount_cents: Option<i64>,
    /// Instead of `amountCents`, the row (from 0) of the service's table
    /// of amounts.
    #[serde(default)]
    pub amount_choice: Option<u32>,
    pub return_urls: ReturnUrlsDto,
    /// Where pagoPA sends its receipt of the payment.
    #[serde(default)]
    pub email_notice: Option<String>,
}

/// Use case 2: a position loaded for later payment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadPositionRequest {
    /// An active service of the Ente's catalogue.
    pub service_code: String,
    pub debtor: DebtorDto,
    /// The service's form fields, if it has a form.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The amount in euro cents (a service without a form or fixed amount
    /// takes any).
    #[serde(default)]
    pub amount_cents: Option<i64>,
    #[serde(default)]
    pub amount_choice: Option<u32>,
    /// The last day it can be paid (`yyyy-mm-dd`, Italian time); 30 days
    /// from today if absent.
    #[serde(default)]
    #[schema(example = "2027-01-31")]
    pub due_date: Option<String>,
    /// The caller's own key for the position (1 to 35 letters, digits,
    /// `-`, `_`); made by incasso if absent. The same key again with the
    /// same content answers the same position.
    #[serde(default)]
    pub iupd: Option<String>,
}

/// Use case 3: paying a notice already in incasso, by its number or by
/// the caller's key of its position (one of the two).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayPositionRequest {
    #[serde(default)]
    #[schema(example = "301000000000012345")]
    pub notice_number: Option<String>,
    #[serde(default)]
    pub iupd: Option<String>,
    /// The amount the caller showed the payer, in cents: refused
    /// (`AMOUNT_MISMATCH`) if the notice's is another.
    #[serde(default)]
    pub amount_cents: Option<i64>,
    pub return_urls: ReturnUrlsDto,
    #[serde(default)]
    pub email_notice: Option<String>,
}

/// A host to register for return URLs.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnHostRequest {
    /// The host name alone: no scheme, port or path.
    #[schema(example = "pagamenti.example.it")]
    pub host: String,
}

// ---------------------------------------------------------------- answers

/// A position and its notice, as made or found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PositionDto {
    /// The position's key: the caller's, or incasso's.
    pub iupd: String,
    /// The 18-digit notice number (codice avviso).
    #[schema(example = "301000000000012345")]
    pub notice_number: String,
    #[schema(example = "01000000000012345")]
    pub iuv: String,
    pub amount_cents: i64,
    /// The causale.
    pub description: String,
    /// The last day it can be paid (`yyyy-mm-dd`, Italian time).
    pub due_date: String,
    /// The notice PDF (GET with the same API key).
    pub notice_pdf_url: String,
}

/// A payment sent to pagoPA Checkout.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDto {
    /// Where to send the payer (HTTP redirect).
    pub checkout_url: String,
    pub iupd: String,
    pub notice_number: String,
    pub iuv: String,
    pub amount_cents: i64,
    pub description: String,
    pub due_date: String,
    pub notice_pdf_url: String,
}

/// A paid notice's receipt, as the pagoPA Node sent it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptDto {
    /// pagoPA's receipt id.
    pub receipt_id: String,
    pub notice_number: String,
    pub iuv: String,
    pub iupd: Option<String>,
    pub amount_cents: i64,
    /// The PSP's fee paid by the payer, if told.
    pub fee_cents: Option<i64>,
    pub description: String,
    /// RFC 3339.
    pub paid_at: Option<String>,
    pub psp_id: Option<String>,
    pub psp_name: String,
    pub payment_method: Option<String>,
    pub debtor_fiscal_code: Option<String>,
    pub payer_fiscal_code: Option<String>,
    /// The quietanza PDF.
    pub receipt_pdf_url: String,
}

/// A return host the Ente registered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnHostDto {
    pub host: String,
    /// RFC 3339.
    pub created_at: String,
    /// Who registered it (`key:<id>`, `operator:<name>`).
    pub created_by: String,
}

fn rome_day(t: chrono::DateTime<chrono::Utc>) -> String {
    incasso_core::time::to_rome(t)
        .date()
        .format("%Y-%m-%d")
        .to_string()
}

fn position_dto(i: Issued) -> PositionDto {
    PositionDto {
        due_date: rome_day(i.due_date),
        iupd: i.iupd,
        notice_number: i.notice_number,
        iuv: i.iuv,
        amount_cents: i.amount.0,
        description: i.description,
        notice_pdf_url: i.notice_pdf_url,
    }
}

fn payment_dto(s: Started) -> PaymentDto {
    let p = position_dto(s.issued);
    PaymentDto {
        checkout_url: s.checkout_url,
        iupd: p.iupd,
        notice_number: p.notice_number,
        iuv: p.iuv,
        amount_cents: p.amount_cents,
        description: p.description,
        due_date: p.due_date,
        notice_pdf_url: p.notice_pdf_url,
    }
}

fn answers(
    service_code: String,
    d: DebtorDto,
    fields: BTreeMap<String, String>,
    amount_cents: Option<i64>,
    amount_choice: Option<u32>,
) -> ServiceAnswers {
    ServiceAnswers {
        service_code,
        debtor: Debtor {
            fiscal_code: d.fiscal_code,
            name: d.name,
            email: d.email,
        },
        fields,
        amount_cents,
        amount_choice,
    }
}

fn urls(u: ReturnUrlsDto) -> ReturnUrls {
    ReturnUrls {
        ok: u.ok,
        cancel: u.cancel,
        error: u.error,
    }
}

// ---------------------------------------------------------------- idempotency

/// The answer of a POST, as stored for replay.
struct Answer {
    status: StatusCode,
    body: String,
}

fn json_answer<T: Serialize>(status: StatusCode, value: &T) -> Answer {
    Answer {
        status,
        body: serde_json::to_string(value).unwrap_or_else(|_| "{}".into()),
    }
}

fn problem_answer(e: ApiError) -> Answer {
    let problem = ProblemJson {
        title: e.status.canonical_reason().unwrap_or("Error").to_string(),
        status: e.status.as_u16(),
        detail: e.detail,
        code: e.code.to_string(),
        errors: e.errors,
    };
    json_answer(e.status, &problem)
}

fn respond(status: StatusCode, body: String, replayed: bool) -> Response {
    let kind = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if replayed {
        r.headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    r
}

/// A POST's idempotency key checked, its fingerprint, and its body read as
/// `T` (errors as every `/api/v1` body's).
async fn keyed<T: DeserializeOwned>(
    state: &AppState,
    route: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(String, String, T), Response> {
    let key = dp::idempotency_key(headers.get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()))
        .map_err(|e| ApiError::from(e).into_response())?;
    let fingerprint = dp::fingerprint("POST", route, &body);
    let mut request = axum::extract::Request::new(Body::from(body));
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        request
            .headers_mut()
            .insert(header::CONTENT_TYPE, ct.clone());
    }
    match ApiJson::<T>::from_request(request, state).await {
        Ok(ApiJson(v)) => Ok((key, fingerprint, v)),
        Err(e) => Err(e.into_response()),
    }
}

/// Runs a POST under its idempotency key: the key checked, the body read
/// as `T` (errors as every `/api/v1` body's), the key claimed for this
/// request's fingerprint, `run` run, and its answer stored if it
/// succeeded; a refusal or failure lets the key go
/// ([`incasso_app::digitpos::release`] says why).
async fn idempotent<T, F, Fut>(
    state: &AppState,
    caller: Caller,
    ente: &str,
    route: &str,
    headers: &HeaderMap,
    body: Bytes,
    run: F,
) -> Response
where
    T: DeserializeOwned,
    F: FnOnce(incasso_app::Ctx, String, T) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, ApiError>>,
{
    let ctx = state.ctx(caller);
    let (key, fingerprint, parsed) = match keyed::<T>(state, route, headers, body).await {
        Ok(k) => k,
        Err(refused) => return refused,
    };
    let ticket = match dp::claim(&ctx, ente, &key, &fingerprint).await {
        Ok(Claimed::Run(t)) => t,
        Ok(Claimed::Replay { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return respond(status, body, true);
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let answer = match run(ctx.clone(), key, parsed).await {
        Ok(a) => a,
        Err(e) => problem_answer(e),
    };
    if !answer.status.is_success() {
        dp::release(&ctx, &ticket).await;
    } else if let Err(e) = dp::complete(&ctx, &ticket, answer.status.as_u16(), &answer.body).await {
        // The effect is done: answer it; a retry runs again and finds it.
        tracing::warn!(ente, error = %e, "idempotent answer not stored");
        dp::release(&ctx, &ticket).await;
    }
    respond(answer.status, answer.body, false)
}

const KEY_DOC: &str = "A key of the caller's choosing (1-255 printable ASCII characters, e.g. a UUID) naming this request: the same key with the same body answers the first answer again (header Idempotent-Replayed: true) without doing anything twice; with another body it is refused (409 IDEMPOTENCY_KEY_REUSED), and while the first is still running too (409 IDEMPOTENCY_KEY_IN_PROGRESS). Only successes are kept (24 hours): after a refusal or failure the same key may be sent again once its cause is fixed.";

// ---------------------------------------------------------------- use cases

/// Use case 1: a spontaneous payment made and sent to Checkout in one
/// call. The position (with its accertamento quota and an IUV like every
/// other) is made from the service's form; the answer's `checkoutUrl` is
/// where to send the payer, who comes back to `returnUrls`. A payment
/// never completed is cancelled by incasso after an hour.
#[utoipa::path(post, operation_id = "digitpos_pay_spontaneous", path = "/api/v1/enti/{fiscalCode}/digitpos/spontaneous-payments", tag = "digitpos",
    params(("fiscalCode" = String, Path),
           ("Idempotency-Key" = String, Header, description = KEY_DOC)),
    request_body = SpontaneousPaymentRequest,
    responses((status = 201, body = PaymentDto, headers(("Idempotent-Replayed" = String, description = "true on a replayed answer"))),
              (status = 400, body = ProblemJson, description = "a field is wrong: `errors` names each (fields.<name>, debtor.fiscalCode, amountCents, returnUrls.ok...)"),
              (status = 409, body = ProblemJson, description = "IDEMPOTENCY_KEY_REUSED, IDEMPOTENCY_KEY_IN_PROGRESS"),
              (status = 422, body = ProblemJson, description = "SERVICE_NOT_FOUND, AMOUNT_MISMATCH, RETURN_HOST_NOT_REGISTERED"),
              (status = 502, body = ProblemJson, description = "NODE_UNAVAILABLE: pagoPA did not answer; retry with the same key")))]
pub async fn pay_spontaneous(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Not through `idempotent`: the use case claims the key in the
    // position's own transaction (dp::pay_spontaneous_keyed says why).
    let ctx = state.ctx(caller);
    let (key, fingerprint, b) =
        match keyed::<SpontaneousPaymentRequest>(&state, "spontaneous-payments", &headers, body)
            .await
        {
            Ok(k) => k,
            Err(refused) => return refused,
        };
    let req = SpontaneousPayment {
        answers: answers(
            b.service_code,
            b.debtor,
            b.fields,
            b.amount_cents,
            b.amount_choice,
        ),
        return_urls: urls(b.return_urls),
        email_notice: b.email_notice,
    };
    let render = |started: Started| {
        let a = json_answer(StatusCode::CREATED, &payment_dto(started));
        (a.status.as_u16(), a.body)
    };
    match dp::pay_spontaneous_keyed(&ctx, &ente, &key, &fingerprint, &req, render).await {
        Ok(dp::Keyed::Replay { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            respond(status, body, true)
        }
        Ok(dp::Keyed::Answered { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            respond(status, body, false)
        }
        Err(e) => {
            let a = problem_answer(ApiError::from(e));
            respond(a.status, a.body, false)
        }
    }
}

/// Use case 2: a position loaded for later payment; the answer has its
/// notice number and the link of its notice PDF.
#[utoipa::path(post, operation_id = "digitpos_load_position", path = "/api/v1/enti/{fiscalCode}/digitpos/positions", tag = "digitpos",
    params(("fiscalCode" = String, Path),
           ("Idempotency-Key" = String, Header, description = KEY_DOC)),
    request_body = LoadPositionRequest,
    responses((status = 201, body = PositionDto, headers(("Idempotent-Replayed" = String, description = "true on a replayed answer"))),
              (status = 400, body = ProblemJson, description = "a field is wrong: `errors` names each"),
              (status = 409, body = ProblemJson, description = "IUPD_ALREADY_USED, IDEMPOTENCY_KEY_REUSED, IDEMPOTENCY_KEY_IN_PROGRESS"),
              (status = 422, body = ProblemJson, description = "SERVICE_NOT_FOUND, AMOUNT_MISMATCH")))]
pub async fn load_position(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let e = ente.clone();
    idempotent(
        &state,
        caller,
        &ente,
        "positions",
        &headers,
        body,
        |ctx, key, b: LoadPositionRequest| async move {
            let due_date = match b.due_date.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(d) => Some(chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(
                    |_| {
                        let mut e = ApiError::bad_request(
                            "BAD_DUE_DATE",
                            format!("dueDate: '{d}' non è una data aaaa-mm-gg"),
                        );
                        e.errors = vec![incasso_core::FieldError {
                            field: "dueDate".into(),
                            code: "BAD_DUE_DATE",
                            message: "data nel formato aaaa-mm-gg".into(),
                        }];
                        e
                    },
                )?),
            };
            let req = LoadPosition {
                answers: answers(
                    b.service_code,
                    b.debtor,
                    b.fields,
                    b.amount_cents,
                    b.amount_choice,
                ),
                due_date,
                iupd: b.iupd,
            };
            let issued = dp::load_position(&ctx, &e, &key, &req).await?;
            Ok(json_answer(StatusCode::CREATED, &position_dto(issued)))
        },
    )
    .await
}

/// Use case 3: sends a notice already in incasso to Checkout, by notice
/// number or by the position's key. Paid, expired and cancelled notices
/// are refused (409 NOTICE_PAID, NOTICE_EXPIRED, NOTICE_CANCELLED).
#[utoipa::path(post, operation_id = "digitpos_pay_position", path = "/api/v1/enti/{fiscalCode}/digitpos/payments", tag = "digitpos",
    params(("fiscalCode" = String, Path),
           ("Idempotency-Key" = String, Header, description = KEY_DOC)),
    request_body = PayPositionRequest,
    responses((status = 201, body = PaymentDto, headers(("Idempotent-Replayed" = String, description = "true on a replayed answer"))),
              (status = 400, body = ProblemJson, description = "NOTICE_OR_IUPD, BAD_NOTICE_NUMBER, BAD_RETURN_URL..."),
              (status = 404, body = ProblemJson, description = "NOTICE_NOT_FOUND, POSITION_NOT_FOUND"),
              (status = 409, body = ProblemJson, description = "NOTICE_PAID, NOTICE_EXPIRED, NOTICE_CANCELLED, NOTICE_INSTALLMENTS_STARTED, IDEMPOTENCY_KEY_REUSED, IDEMPOTENCY_KEY_IN_PROGRESS"),
              (status = 422, body = ProblemJson, description = "AMOUNT_MISMATCH, SEVERAL_NOTICES, RETURN_HOST_NOT_REGISTERED"),
              (status = 502, body = ProblemJson, description = "NODE_UNAVAILABLE")))]
pub async fn pay_position(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let e = ente.clone();
    idempotent(
        &state,
        caller,
        &ente,
        "payments",
        &headers,
        body,
        |ctx, _key, b: PayPositionRequest| async move {
            let req = PayPosition {
                notice_number: b.notice_number,
                iupd: b.iupd,
                amount_cents: b.amount_cents,
                return_urls: urls(b.return_urls),
                email_notice: b.email_notice,
            };
            let started = dp::pay_position(&ctx, &e, &req).await?;
            Ok(json_answer(StatusCode::CREATED, &payment_dto(started)))
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
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

/// Use case 4: the payment notice PDF of a notice number.
#[utoipa::path(get, operation_id = "digitpos_notice_pdf", path = "/api/v1/enti/{fiscalCode}/digitpos/notices/{noticeNumber}/pdf", tag = "digitpos",
    params(("fiscalCode" = String, Path), ("noticeNumber" = String, Path), LangQuery),
    responses((status = 200, content_type = "application/pdf", body = crate::error::Binary),
              (status = 400, body = ProblemJson, description = "BAD_NOTICE_NUMBER"),
              (status = 404, body = ProblemJson, description = "NOTICE_NOT_FOUND"),
              (status = 409, body = ProblemJson)))]
pub async fn notice_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, nav)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<LangQuery>,
) -> Result<Response, ApiError> {
    let ctx = state.ctx(caller);
    let lang = language(q.lang.as_deref())?;
    let bytes = dp::notice_pdf(&ctx, &ente, &nav, lang).await?;
    Ok(pdf(format!("avviso-{}.pdf", nav.trim()), bytes))
}

/// Use case 5: the receipt of a paid notice, as data. Before the pagoPA
/// receipt arrives: 404 RECEIPT_NOT_AVAILABLE.
#[utoipa::path(get, operation_id = "digitpos_receipt", path = "/api/v1/enti/{fiscalCode}/digitpos/notices/{noticeNumber}/receipt", tag = "digitpos",
    params(("fiscalCode" = String, Path), ("noticeNumber" = String, Path)),
    responses((status = 200, body = ReceiptDto),
              (status = 400, body = ProblemJson, description = "BAD_NOTICE_NUMBER"),
              (status = 404, body = ProblemJson, description = "NOTICE_NOT_FOUND, RECEIPT_NOT_AVAILABLE (not paid yet)")))]
pub async fn receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, nav)): Path<(String, String)>,
) -> Result<axum::Json<ReceiptDto>, ApiError> {
    let r = dp::receipt(&state.ctx(caller), &ente, &nav).await?;
    Ok(axum::Json(ReceiptDto {
        receipt_id: r.receipt_id,
        notice_number: r.notice_number,
        iuv: r.iuv,
        iupd: r.iupd,
        amount_cents: r.amount.0,
        fee_cents: r.fee.map(|f| f.0),
        description: r.description,
        paid_at: r.paid_at.map(|t| t.to_rfc3339()),
        psp_id: r.psp_id,
        psp_name: r.psp_name,
        payment_method: r.payment_method,
        debtor_fiscal_code: r.debtor_fiscal_code,
        payer_fiscal_code: r.payer_fiscal_code,
        receipt_pdf_url: r.receipt_pdf_url,
    }))
}

/// Use case 5: the receipt (quietanza) PDF of a paid notice.
#[utoipa::path(get, operation_id = "digitpos_receipt_pdf", path = "/api/v1/enti/{fiscalCode}/digitpos/notices/{noticeNumber}/receipt.pdf", tag = "digitpos",
    params(("fiscalCode" = String, Path), ("noticeNumber" = String, Path)),
    responses((status = 200, content_type = "application/pdf", body = crate::error::Binary),
              (status = 400, body = ProblemJson, description = "BAD_NOTICE_NUMBER"),
              (status = 404, body = ProblemJson, description = "NOTICE_NOT_FOUND, RECEIPT_NOT_AVAILABLE (not paid yet)")))]
pub async fn receipt_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, nav)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let bytes = dp::receipt_pdf(&state.ctx(caller), &ente, &nav).await?;
    Ok(pdf(format!("quietanza-{}.pdf", nav.trim()), bytes))
}

// ---------------------------------------------------------------- return hosts

fn host_dto(h: incasso_store::ReturnHostRecord) -> ReturnHostDto {
    ReturnHostDto {
        host: h.host,
        created_at: h.created_at.to_rfc3339(),
        created_by: h.created_by,
    }
}

/// The hosts the Ente registered for its callers' return URLs.
#[utoipa::path(get, operation_id = "digitpos_list_return_hosts", path = "/api/v1/enti/{fiscalCode}/digitpos/return-hosts", tag = "digitpos",
    params(("fiscalCode" = String, Path)),
    responses((status = 200, body = Vec<ReturnHostDto>), (status = 404, body = ProblemJson)))]
pub async fn list_return_hosts(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
) -> Result<axum::Json<Vec<ReturnHostDto>>, ApiError> {
    let hosts = dp::return_hosts(&state.ctx(caller), &ente).await?;
    Ok(axum::Json(hosts.into_iter().map(host_dto).collect()))
}

/// Registers a host for return URLs (the Ente's administrator key or the
/// intermediary's; an application's key is refused, 403 FORBIDDEN_SCOPE).
/// Registering it again answers it as it is.
#[utoipa::path(post, operation_id = "digitpos_add_return_host", path = "/api/v1/enti/{fiscalCode}/digitpos/return-hosts", tag = "digitpos",
    params(("fiscalCode" = String, Path),
           ("Idempotency-Key" = String, Header, description = KEY_DOC)),
    request_body = ReturnHostRequest,
    responses((status = 201, body = ReturnHostDto), (status = 200, body = ReturnHostDto, description = "already registered"),
              (status = 400, body = ProblemJson, description = "BAD_HOST"),
              (status = 403, body = ProblemJson, description = "FORBIDDEN_SCOPE"),
              (status = 409, body = ProblemJson, description = "IDEMPOTENCY_KEY_REUSED, IDEMPOTENCY_KEY_IN_PROGRESS")))]
pub async fn add_return_host(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let e = ente.clone();
    idempotent(
        &state,
        caller,
        &ente,
        "return-hosts",
        &headers,
        body,
        |ctx, _key, b: ReturnHostRequest| async move {
            let (host, new) = dp::add_return_host(&ctx, &e, &b.host).await?;
            let record = dp::return_hosts(&ctx, &e)
                .await?
                .into_iter()
                .find(|h| h.host == host)
                .map(host_dto)
                .unwrap_or(ReturnHostDto {
                    host,
                    created_at: String::new(),
                    created_by: String::new(),
                });
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_answer(status, &record))
        },
    )
    .await
}

/// Removes a return host: URLs on it are refused from now on.
#[utoipa::path(delete, operation_id = "digitpos_remove_return_host", path = "/api/v1/enti/{fiscalCode}/digitpos/return-hosts/{host}", tag = "digitpos",
    params(("fiscalCode" = String, Path), ("host" = String, Path)),
    responses((status = 204), (status = 403, body = ProblemJson, description = "FORBIDDEN_SCOPE"),
              (status = 404, body = ProblemJson, description = "RETURN_HOST_NOT_FOUND")))]
pub async fn remove_return_host(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, host)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    dp::remove_return_host(&state.ctx(caller), &ente, &host).await?;
    Ok(StatusCode::NO_CONTENT)
}
