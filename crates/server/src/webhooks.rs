//! Webhooks over HTTP: an Ente's endpoints under
//! `/api/v1/enti/{fiscalCode}/webhooks` (its administrator's key), and the
//! acknowledgement door `POST /api/v1/webhooks/ack`, which takes no key:
//! the endpoint's signature is the credential. The decisions are
//! [`incasso_app::webhooks`]'s; the scheme is in `docs/WEBHOOKS.md` and in
//! the OpenAPI tag's description.

use crate::AppState;
use crate::admin::SecurityAddon;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery, ProblemJson};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use chrono::SecondsFormat;
use incasso_app::webhooks::{self, Endpoint};
use incasso_store::webhooks::DeliveryRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The routes that take an Ente's key (under `/api/v1`, behind the
/// tenant guard).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/enti/{fiscalCode}/webhooks",
            get(list_endpoints).post(register),
        )
        .route(
            "/enti/{fiscalCode}/webhooks/{id}",
            get(get_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
        .route(
            "/enti/{fiscalCode}/webhooks/{id}/deliveries",
            get(list_deliveries),
        )
        .route(
            "/enti/{fiscalCode}/webhooks/{id}/deliveries/{deliveryId}/retry",
            post(retry_delivery),
        )
        .route("/enti/{fiscalCode}/events", get(list_events))
}

/// The acknowledgement door, which takes no key: merged beside `/api/v1`'s
/// guarded routes, with the same errors.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhooks/ack", post(ack))
        .layer(axum::middleware::from_fn(crate::error::problem_json))
}

/// `openapi` with the webhooks' operations and their tag.
pub fn documented(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    openapi.merge(WebhooksDoc::openapi());
    openapi
}

const SCHEME: &str = "Webhooks tell an Ente's application when a position is PAID, CANCELLED or REPORTED. \
Each event is a POST of JSON (eventId, deliveryId, type, createdAt, organizationFiscalCode, iupd, noticeNumber, iuv, data) \
with headers X-Incasso-Event-Id, X-Incasso-Delivery-Id, X-Incasso-Timestamp (Unix seconds) and \
X-Incasso-Signature: v1=<hex HMAC-SHA256(secret, timestamp + \".\" + body)>, where secret is the endpoint's, shown once when it is registered. \
Verify the signature over the raw body, in constant time, and refuse a timestamp more than five minutes old. \
Answer 2xx to acknowledge; anything else, or no answer within 10 s, is retried with exponential backoff (1 s doubling, at most hourly) for three days. \
Delivery is at least once: deduplicate by eventId. A position's events arrive in order: the next is not sent until the previous is acknowledged. \
A receiver that answers 202 confirms later with POST /api/v1/webhooks/ack, body {\"deliveryId\": n, \"timestamp\": unix seconds}, \
signed the same way (X-Incasso-Signature over that timestamp, a dot and the body); without confirmation within a minute the delivery is sent again.";

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(register, list_endpoints, get_endpoint, update_endpoint, delete_endpoint,
          list_deliveries, retry_delivery, ack, list_events),
    components(schemas(ProblemJson)),
    tags((name = "webhooks", description = SCHEME)),
    modifiers(&SecurityAddon)
)]
pub struct WebhooksDoc;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    /// Where events are POSTed: https (http only to localhost or 127.0.0.1).
    #[schema(example = "https://gestionale.example.it/incasso/eventi")]
    pub url: String,
    /// What it is, for the people who read the list (200 characters).
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointDto {
    pub id: i64,
    pub url: String,
    pub description: String,
    /// false: paused. Its events are still queued, none is sent; set true
    /// again and they go out in order per position.
    pub active: bool,
    pub created_at: String,
    pub created_by: String,
}

impl From<Endpoint> for EndpointDto {
    fn from(e: Endpoint) -> Self {
        EndpointDto {
            id: e.id,
            url: e.url,
            description: e.description,
            active: e.active,
            created_at: e.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            created_by: e.created_by,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredDto {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub active: bool,
    pub created_at: String,
    /// The HMAC key of the signatures: shown this once, keep it secret.
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRequest {
    pub active: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDto {
    pub id: i64,
    pub event_id: i64,
    /// PAID, CANCELLED or REPORTED.
    #[serde(rename = "type")]
    pub kind: String,
    pub iupd: String,
    pub notice_number: Option<String>,
    /// PENDING, SENDING, DELIVERED or FAILED.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    /// The HTTP status of the last answer.
    pub last_status: Option<i64>,
    /// What the last answer said, or why there was none.
    pub last_answer: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub acknowledged_at: Option<String>,
}

fn delivery_dto(d: DeliveryRecord) -> DeliveryDto {
    let t = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let waiting = d.status == incasso_store::webhooks::PENDING;
    DeliveryDto {
        id: d.id,
        event_id: d.event_id,
        kind: d.kind,
        iupd: d.iupd,
        notice_number: d.notice_number,
        status: d.status,
        attempts: d.attempts,
        next_attempt_at: waiting.then(|| t(d.next_attempt_at)),
        last_status: d.last_status,
        last_answer: d.last_answer,
        created_at: t(d.created_at),
        delivered_at: d.delivered_at.map(t),
        acknowledged_at: d.acked_at.map(t),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// How many, newest first (1 to 1000; 100 by default).
    pub limit: Option<u32>,
}

/// The acknowledgement of a delivery answered 202, signed with the
/// endpoint's secret over `timestamp + "." + body`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AckRequest {
    pub delivery_id: i64,
    /// Unix seconds; at most five minutes from now.
    pub timestamp: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AckDto {
    pub delivery_id: i64,
    pub status: String,
}

/// Register an endpoint for the Ente's events from now on. The Ente's
/// administrator key or the intermediary's; the secret is in this answer
/// only.
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/webhooks", tag = "webhooks",
    params(("fiscalCode" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Optional here (the URL is the natural key: without a key a second registration is refused as WEBHOOK_URL_REGISTERED). With a key, a retry with the same key and body answers the same endpoint and its secret again (header Idempotent-Replayed: true); with another body it is refused (409 IDEMPOTENCY_KEY_REUSED). Keys are kept 24 hours.")),
    request_body = RegisterRequest,
    responses((status = 201, body = RegisteredDto),
              (status = 400, body = ProblemJson, description = "BAD_WEBHOOK_URL, BAD_DESCRIPTION, BAD_IDEMPOTENCY_KEY"),
              (status = 403, body = ProblemJson, description = "FORBIDDEN_SCOPE: an application's key"),
              (status = 409, body = ProblemJson, description = "WEBHOOK_URL_REGISTERED, IDEMPOTENCY_KEY_REUSED, IDEMPOTENCY_KEY_IN_PROGRESS, WEBHOOK_DELETED")))]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let key = headers
        .get(crate::digitpos::IDEMPOTENCY_KEY)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    // The body as read, so that the same fields in another order or
    // spacing are the same request.
    let canonical = serde_json::json!({"url": body.url, "description": body.description});
    let fingerprint =
        incasso_app::digitpos::fingerprint("POST", "webhooks", canonical.to_string().as_bytes());
    let (r, replayed) = webhooks::register_keyed(
        &state.ctx(caller),
        &fc,
        key,
        &fingerprint,
        &body.url,
        &body.description,
    )
    .await?;
    let e = EndpointDto::from(r.endpoint);
    let mut resp = (
        StatusCode::CREATED,
        Json(RegisteredDto {
            id: e.id,
            url: e.url,
            description: e.description,
            active: e.active,
            created_at: e.created_at,
            secret: r.secret,
        }),
    )
        .into_response();
    if replayed {
        resp.headers_mut().insert(
            crate::digitpos::REPLAYED,
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

/// The Ente's endpoints (never their secrets).
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/webhooks", tag = "webhooks",
    params(("fiscalCode" = String, Path)),
    responses((status = 200, body = Vec<EndpointDto>), (status = 403, body = ProblemJson)))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
) -> Result<Json<Vec<EndpointDto>>, ApiError> {
    let list = webhooks::list(&state.ctx(caller), &fc).await?;
    Ok(Json(list.into_iter().map(EndpointDto::from).collect()))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/webhooks/{id}", tag = "webhooks",
    params(("fiscalCode" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = EndpointDto), (status = 403, body = ProblemJson),
              (status = 404, body = ProblemJson)))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, id)): Path<(String, i64)>,
) -> Result<Json<EndpointDto>, ApiError> {
    Ok(Json(
        webhooks::get(&state.ctx(caller), &fc, id).await?.into(),
    ))
}

/// Pause (`active: false`) or resume an endpoint. A paused endpoint misses
/// nothing: its deliveries queue up and go out, in order per position,
/// once it is resumed.
#[utoipa::path(patch, path = "/api/v1/enti/{fiscalCode}/webhooks/{id}", tag = "webhooks",
    params(("fiscalCode" = String, Path), ("id" = i64, Path)), request_body = UpdateRequest,
    responses((status = 200, body = EndpointDto), (status = 403, body = ProblemJson),
              (status = 404, body = ProblemJson)))]
pub async fn update_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, id)): Path<(String, i64)>,
    ApiJson(body): ApiJson<UpdateRequest>,
) -> Result<Json<EndpointDto>, ApiError> {
    let e = webhooks::set_active(&state.ctx(caller), &fc, id, body.active).await?;
    Ok(Json(e.into()))
}

/// Remove an endpoint and its queue: deliveries not yet sent are dropped
/// (the events stay readable at `GET /api/v1/enti/{fiscalCode}/events`).
#[utoipa::path(delete, path = "/api/v1/enti/{fiscalCode}/webhooks/{id}", tag = "webhooks",
    params(("fiscalCode" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, id)): Path<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    webhooks::remove(&state.ctx(caller), &fc, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's deliveries, newest first, with what the receiver answered.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/webhooks/{id}/deliveries", tag = "webhooks",
    params(("fiscalCode" = String, Path), ("id" = i64, Path), DeliveriesQuery),
    responses((status = 200, body = Vec<DeliveryDto>), (status = 403, body = ProblemJson),
              (status = 404, body = ProblemJson)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, id)): Path<(String, i64)>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Vec<DeliveryDto>>, ApiError> {
    let list = webhooks::deliveries(&state.ctx(caller), &fc, id, q.limit.unwrap_or(100)).await?;
    Ok(Json(list.into_iter().map(delivery_dto).collect()))
}

/// Send a FAILED delivery again, now.
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/webhooks/{id}/deliveries/{deliveryId}/retry",
    tag = "webhooks",
    params(("fiscalCode" = String, Path), ("id" = i64, Path), ("deliveryId" = i64, Path)),
    responses((status = 204), (status = 403, body = ProblemJson),
              (status = 409, body = ProblemJson, description = "DELIVERY_NOT_FAILED")))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, _id, delivery)): Path<(String, i64, i64)>,
) -> Result<StatusCode, ApiError> {
    webhooks::retry(&state.ctx(caller), &fc, delivery).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Acknowledge a delivery that was answered 202. No API key: the body is
/// signed with the endpoint's secret, `X-Incasso-Signature: v1=<hex
/// HMAC-SHA256(secret, timestamp + "." + body)>` with the body's
/// timestamp.
#[utoipa::path(post, path = "/api/v1/webhooks/ack", tag = "webhooks", request_body = AckRequest,
    params(("X-Incasso-Signature" = String, Header, description = "v1=<hex HMAC-SHA256(secret, timestamp + \".\" + body)>")),
    security(()),
    responses((status = 200, body = AckDto),
              (status = 400, body = ProblemJson, description = "BAD_ACK: not the JSON above"),
              (status = 401, body = ProblemJson, description = "WEBHOOK_SIGNATURE_MISSING, WEBHOOK_SIGNATURE_INVALID (also for a delivery that does not exist)"),
              (status = 409, body = ProblemJson, description = "WEBHOOK_ACK_STALE: timestamp more than five minutes away; WEBHOOK_ACK_REPLAYED: acknowledged before")))]
pub async fn ack(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<AckDto>, ApiError> {
    let signature = headers
        .get(webhooks::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let id = webhooks::acknowledge(&state.app, &body, signature).await?;
    Ok(Json(AckDto {
        delivery_id: id,
        status: incasso_store::webhooks::DELIVERED.into(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The last eventId already read (0, the default: from the first).
    pub after: Option<i64>,
    /// How many at most, oldest first (1 to 1000; 100 by default).
    pub limit: Option<u32>,
}

/// A position event, as a webhook delivers it (without its deliveryId).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDto {
    pub event_id: i64,
    /// PAID, CANCELLED or REPORTED.
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub organization_fiscal_code: String,
    pub iupd: String,
    pub notice_number: Option<String>,
    pub iuv: Option<String>,
    /// As in the webhook's body: amountCents, receiptId... by type.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// The Ente's events after `after`, oldest first: the outbox webhooks are
/// delivered from, for an application that catches up by itself (keep the
/// last eventId, ask again with it; an empty list: up to date). Any key of
/// the Ente.
#[utoipa::path(get, path = "/api/v1/enti/{fiscalCode}/events", tag = "webhooks",
    params(("fiscalCode" = String, Path), EventsQuery),
    responses((status = 200, body = Vec<EventDto>),
              (status = 400, body = ProblemJson, description = "BAD_AFTER, BAD_LIMIT"),
              (status = 403, body = ProblemJson)))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(fc): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<Vec<EventDto>>, ApiError> {
    let list = webhooks::events(
        &state.ctx(caller),
        &fc,
        q.after.unwrap_or(0),
        q.limit.unwrap_or(100),
    )
    .await?;
    Ok(Json(
        list.into_iter()
            .map(|e| EventDto {
                event_id: e.id,
                kind: e.kind,
                created_at: e.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                organization_fiscal_code: e.ente,
                iupd: e.iupd,
                notice_number: e.notice_number,
                iuv: e.iuv,
                data: e.payload,
            })
            .collect(),
    ))
}
