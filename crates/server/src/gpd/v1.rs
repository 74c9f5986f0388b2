//! GPD v1 (`gpd.json`) under `/gpd/v1`: the paths, JSON shapes and status
//! codes of pagoPA's positions API, so a GPD client works against incasso
//! by changing only its base URL and key. The JSON bodies and their
//! mapping onto positions are `incasso_gpd::v1`'s.

use super::PublishQuery;
use super::parse_day;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use chrono::{DateTime, Utc};
use incasso_app::positions;
use incasso_core::position::PositionStatus;
use incasso_gpd::parse_instant;
// The wire models, where the server's callers have always found them.
pub use incasso_gpd::v1::*;
use incasso_store::{ListFilter, OrderBy, StoredPosition};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/organizations/{organizationfiscalcode}/debtpositions",
            get(list_positions).post(create_position),
        )
        .route(
            "/organizations/{organizationfiscalcode}/debtpositions/transfers",
            patch(update_transfer_iban),
        )
        .route(
            "/organizations/{organizationfiscalcode}/debtpositions/{iupd}",
            get(get_position)
                .put(update_position)
                .delete(delete_position),
        )
        .route(
            "/organizations/{organizationfiscalcode}/debtpositions/{iupd}/publish",
            post(publish_position),
        )
        .route(
            "/organizations/{organizationfiscalcode}/debtpositions/{iupd}/invalidate",
            post(invalidate_position),
        )
        .route(
            "/organizations/{organizationfiscalcode}/paymentoptions/paids/{nav}",
            post(mark_paid),
        )
}

// ---------------------------------------------------------------- handlers

async fn create_position(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<PublishQuery>,
    ApiJson(body): ApiJson<PaymentPositionModel>,
) -> Result<(StatusCode, Json<PaymentPositionModel>), ApiError> {
    let ctx = state.ctx(caller);
    let position = body.into_domain()?;
    let stored = positions::create(&ctx, &ente, position, q.to_publish).await?;
    Ok((
        StatusCode::CREATED,
        Json(PaymentPositionModel::from_domain(
            &stored.position,
            ctx.now(),
        )),
    ))
}

async fn get_position(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
) -> Result<Json<PaymentPositionBaseResponse>, ApiError> {
    let ctx = state.ctx(caller);
    let stored = positions::get(&ctx, &ente, &iupd).await?;
    Ok(Json(base_response(&ente, &stored.position, ctx.now())))
}

async fn update_position(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PublishQuery>,
    ApiJson(body): ApiJson<PaymentPositionModel>,
) -> Result<Json<PaymentPositionModel>, ApiError> {
    let ctx = state.ctx(caller);
    let position = body.into_domain()?;
    let stored = positions::update(&ctx, &ente, &iupd, position, q.to_publish).await?;
    Ok(Json(PaymentPositionModel::from_domain(
        &stored.position,
        ctx.now(),
    )))
}

async fn delete_position(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
) -> Result<Json<&'static str>, ApiError> {
    positions::delete(&state.ctx(caller), &ente, &iupd).await?;
    Ok(Json("OK"))
}

async fn publish_position(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
) -> Result<Json<PaymentPositionModel>, ApiError> {
    let ctx = state.ctx(caller);
    let stored = positions::publish(&ctx, &ente, &iupd).await?;
    Ok(Json(PaymentPositionModel::from_domain(
        &stored.position,
        ctx.now(),
    )))
}

async fn invalidate_position(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
) -> Result<Json<PaymentPositionModel>, ApiError> {
    let ctx = state.ctx(caller);
    let stored = positions::invalidate(&ctx, &ente, &iupd).await?;
    Ok(Json(PaymentPositionModel::from_domain(
        &stored.position,
        ctx.now(),
    )))
}

pub(super) async fn mark_paid(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, nav)): Path<(String, String)>,
    ApiJson(body): ApiJson<AlreadyPaidModel>,
) -> Result<Json<PaymentOptionResponse>, ApiError> {
    let ctx = state.ctx(caller);
    let (stored, index) = positions::mark_paid(&ctx, &ente, &nav, body.payment_date).await?;
    let base = base_response(&ente, &stored.position, ctx.now());
    let option = base.payment_option.into_iter().nth(index).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "opzione non trovata dopo il pagamento",
        )
    })?;
    Ok(Json(option))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    page: Option<u32>,
    due_date_from: Option<String>,
    due_date_to: Option<String>,
    payment_date_from: Option<String>,
    payment_date_to: Option<String>,
    payment_date_time_from: Option<String>,
    payment_date_time_to: Option<String>,
    status: Option<String>,
    orderby: Option<String>,
    ordering: Option<String>,
}

/// GPD's rule for ranges given by one end: the other end is 30 days away.
fn range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let month = chrono::Duration::days(30);
    match (from, to) {
        (Some(f), None) => (Some(f), Some(f + month)),
        (None, Some(t)) => (Some(t - month), Some(t)),
        other => other,
    }
}

async fn list_positions(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<PaymentPositionsInfo>, ApiError> {
    let ctx = state.ctx(caller);
    let filter = list_filter(q, |s| s.parse::<PositionStatus>().ok().map(|s| vec![s]))?;
    let page = positions::list(&ctx, &ente, &filter).await?;
    let now = ctx.now();
    Ok(Json(PaymentPositionsInfo {
        payment_position_list: page
            .items
            .iter()
            .map(|s: &StoredPosition| base_response(&ente, &s.position, now))
            .collect(),
        page_info: page_info(&page),
    }))
}

/// GPD's `PageInfo` of a page the store found.
pub(super) fn page_info<T>(page: &incasso_store::Page<T>) -> PageInfo {
    PageInfo {
        page: page.page,
        limit: page.limit,
        items_found: page.items_found,
        total_pages: page.total_pages,
    }
}

/// The list's query as GPD reads it; `statuses` says which stored states
/// a `status` value means (`None`: an unknown value).
pub(super) fn list_filter(
    q: ListQuery,
    statuses: impl Fn(&str) -> Option<Vec<PositionStatus>>,
) -> Result<ListFilter, ApiError> {
    let limit = q.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::bad_request("BAD_LIMIT", "limit: da 1 a 50"));
    }
    // An int32 in gpd.json, as in GPD, which refuses a larger one.
    let page = q.page.unwrap_or(0);
    if page > i32::MAX as u32 {
        return Err(ApiError::bad_request(
            "BAD_PAGE",
            format!("page: da 0 a {}", i32::MAX),
        ));
    }
    // GPD takes one kind of date filter at a time: two are refused, never
    // combined silently.
    let groups = [
        (
            "due_date",
            q.due_date_from.is_some() || q.due_date_to.is_some(),
        ),
        (
            "payment_date",
            q.payment_date_from.is_some() || q.payment_date_to.is_some(),
        ),
        (
            "payment_date_time",
            q.payment_date_time_from.is_some() || q.payment_date_time_to.is_some(),
        ),
    ];
    let given: Vec<&str> = groups
        .iter()
        .filter(|(_, on)| *on)
        .map(|(g, _)| *g)
        .collect();
    if given.len() > 1 {
        return Err(ApiError::bad_request(
            "FILTERS_EXCLUSIVE",
            format!(
                "{}: si può filtrare per un solo tipo di data (due_date_*, payment_date_* o payment_date_time_*)",
                given.join(", ")
            ),
        ));
    }
    let opt_day = |field: &str, v: &Option<String>, end: bool| {
        v.as_deref().map(|s| parse_day(field, s, end)).transpose()
    };
    let (due_from, due_to) = range(
        opt_day("due_date_from", &q.due_date_from, false)?,
        opt_day("due_date_to", &q.due_date_to, true)?,
    );
    let mut payment_from = opt_day("payment_date_from", &q.payment_date_from, false)?;
    let mut payment_to = opt_day("payment_date_to", &q.payment_date_to, true)?;
    let opt_instant = |field: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                parse_instant(s)
                    .map_err(|e| ApiError::bad_request("BAD_FORMAT", format!("{field}: {e}")))
            })
            .transpose()
    };
    if let Some(t) = opt_instant("payment_date_time_from", &q.payment_date_time_from)? {
        payment_from = Some(t);
    }
    if let Some(t) = opt_instant("payment_date_time_to", &q.payment_date_time_to)? {
        payment_to = Some(t);
    }
    let (payment_from, payment_to) = range(payment_from, payment_to);
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(statuses(s).ok_or_else(|| {
            ApiError::bad_request("BAD_STATUS", format!("status: stato sconosciuto '{s}'"))
        })?),
    };
    let order_by = match q.orderby.as_deref() {
        None | Some("INSERTED_DATE") => OrderBy::InsertedDate,
        Some("IUPD") => OrderBy::Iupd,
        Some("STATUS") => OrderBy::Status,
        Some("COMPANY_NAME") => OrderBy::CompanyName,
        Some(other) => {
            return Err(ApiError::bad_request(
                "BAD_ORDER",
                format!("orderby: valore sconosciuto '{other}'"),
            ));
        }
    };
    let ascending = match q.ordering.as_deref() {
        None | Some("DESC") => false,
        Some("ASC") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "BAD_ORDER",
                format!("ordering: ASC o DESC, non '{other}'"),
            ));
        }
    };
    Ok(ListFilter {
        statuses: status.unwrap_or_default(),
        due_date_from: due_from,
        due_date_to: due_to,
        payment_date_from: payment_from,
        payment_date_to: payment_to,
        debtor_fiscal_code: None,
        order_by,
        ascending,
        page,
        limit,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IbanQuery {
    old_iban: String,
    limit: Option<u32>,
}

async fn update_transfer_iban(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<IbanQuery>,
    ApiJson(body): ApiJson<UpdateIbanModel>,
) -> Result<Json<UpdateIbanResponse>, ApiError> {
    let ctx = state.ctx(caller);
    let updated = positions::replace_iban(
        &ctx,
        &ente,
        &q.old_iban,
        &body.new_iban,
        q.limit.unwrap_or(1000),
    )
    .await?;
    Ok(Json(UpdateIbanResponse {
        description: "IBAN aggiornati".into(),
        updated_transfers: updated,
    }))
}
