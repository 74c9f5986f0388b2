//! GPD's receipts API (`gpd_payments.json`) under `/gpd/payments/v1`: the
//! receipts of an Ente's notices, listed by IUV a page at a time, and one
//! receipt as XML.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use incasso_app::receipts;
use incasso_core::time;
use incasso_store::ReceiptFilter;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/payments/{organizationfiscalcode}/receipts",
            get(list_receipts),
        )
        .route(
            "/payments/{organizationfiscalcode}/receipts/{iuv}",
            get(receipt),
        )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptsQuery {
    page_num: Option<u32>,
    page_size: Option<u32>,
    debtor: Option<String>,
    service: Option<String>,
    from: Option<String>,
    to: Option<String>,
    debtor_or_iuv: Option<String>,
}

/// GPD's `PaymentsResult`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentsResult {
    current_page_number: u32,
    length: usize,
    total_pages: u32,
    results: Vec<ReceiptItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptItem {
    organization_fiscal_code: String,
    iuv: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    debtor: Option<String>,
    /// Italian time, without a zone, as the receipt states it.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_date_time: Option<String>,
    /// PAID, or ERROR for a receipt that paid nothing.
    status: &'static str,
}

/// `yyyy-MM-dd` or `yyyy-MM-dd'T'HH:mm:ss`, Italian time; a day alone
/// starts (`from`) or ends (`to`) there.
fn parse_bound(field: &str, s: &str, end: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Ok(time::from_rome(t));
    }
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end {
            day.and_hms_micro_opt(23, 59, 59, 999_999)
        } else {
            day.and_hms_opt(0, 0, 0)
        };
        return Ok(time::from_rome(t.unwrap_or_default()));
    }
    Err(ApiError::bad_request(
        "BAD_FORMAT",
        format!("{field}: data non valida '{s}', atteso yyyy-MM-dd o yyyy-MM-ddTHH:mm:ss"),
    ))
}

async fn list_receipts(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<ReceiptsQuery>,
) -> Result<Json<PaymentsResult>, ApiError> {
    let ctx = state.ctx(caller);
    let page = q.page_num.unwrap_or(0);
    if page > i32::MAX as u32 {
        return Err(ApiError::bad_request(
            "BAD_PAGE",
            format!("pageNum: da 0 a {}", i32::MAX),
        ));
    }
    let page_size = q.page_size.unwrap_or(20);
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::bad_request("BAD_LIMIT", "pageSize: da 1 a 100"));
    }
    let from = q
        .from
        .as_deref()
        .map(|s| parse_bound("from", s, false))
        .transpose()?;
    let to =
        q.to.as_deref()
            .map(|s| parse_bound("to", s, true))
            .transpose()?;
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter = ReceiptFilter {
        debtor: nonempty(q.debtor),
        iuv_prefix: nonempty(q.service),
        debtor_or_iuv: nonempty(q.debtor_or_iuv),
        page,
        page_size,
        ..ReceiptFilter::default()
    };
    let found = receipts::list(&ctx, &ente, from, to, filter).await?;
    let results: Vec<ReceiptItem> = found
        .items
        .into_iter()
        .map(|r| ReceiptItem {
            organization_fiscal_code: ente.clone(),
            iuv: r.iuv,
            debtor: r.debtor,
            payment_date_time: r
                .payment_date_time
                .map(|t| time::to_rome(t).format("%Y-%m-%dT%H:%M:%S").to_string()),
            status: if r.outcome == "OK" { "PAID" } else { "ERROR" },
        })
        .collect();
    Ok(Json(PaymentsResult {
        current_page_number: found.page,
        length: results.len(),
        total_pages: found.total_pages,
        results,
    }))
}

async fn receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iuv)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ctx = state.ctx(caller);
    let xml = receipts::document(&ctx, &ente, &iuv).await?;
    Ok(([(header::CONTENT_TYPE, "application/xml")], xml).into_response())
}
