//! GPD v2 (`gpd-service/openapi_external_v2.json`) under `/gpd/v2`: many
//! positions created, updated or deleted in one call, all or nothing, with
//! v1's models; and v1's "paid outside pagoPA".

use super::PublishQuery;
use super::v1::{self, PaymentPositionModel};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use incasso_app::positions;
use serde::Deserialize;

pub fn routes() -> Router<crate::AppState> {
    Router::new()
        .route(
            "/organizations/{organizationfiscalcode}/debtpositions",
            post(create_many).put(update_many).delete(delete_many),
        )
        .route(
            "/organizations/{organizationfiscalcode}/paymentoptions/paids/{nav}",
            post(v1::mark_paid),
        )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultiplePaymentPositionModel {
    pub payment_positions: Vec<PaymentPositionModel>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultipleIupdModel {
    #[serde(rename = "paymentPositionIUPDs")]
    pub payment_position_iupds: Vec<String>,
}

/// Wire -> domain for every position, naming the one that is malformed.
pub(super) fn positions_of(
    body: MultiplePaymentPositionModel,
) -> Result<Vec<incasso_core::position::DebtPosition>, ApiError> {
    body.payment_positions
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let iupd = p.iupd.clone();
            p.into_domain().map_err(|mut e| {
                // As the use case names a refused position.
                e.detail = format!("paymentPositions[{i}] (iupd '{iupd}'): {}", e.detail);
                for f in &mut e.errors {
                    f.field = format!("paymentPositions[{i}].{}", f.field);
                }
                e
            })
        })
        .collect()
}

async fn create_many(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<PublishQuery>,
    ApiJson(body): ApiJson<MultiplePaymentPositionModel>,
) -> Result<StatusCode, ApiError> {
    let ctx = state.ctx(caller);
    positions::create_many(&ctx, &ente, positions_of(body)?, q.to_publish).await?;
    Ok(StatusCode::CREATED)
}

async fn update_many(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<PublishQuery>,
    ApiJson(body): ApiJson<MultiplePaymentPositionModel>,
) -> Result<StatusCode, ApiError> {
    let ctx = state.ctx(caller);
    positions::update_many(&ctx, &ente, positions_of(body)?, q.to_publish).await?;
    Ok(StatusCode::OK)
}

async fn delete_many(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiJson(body): ApiJson<MultipleIupdModel>,
) -> Result<Json<&'static str>, ApiError> {
    let ctx = state.ctx(caller);
    positions::delete_many(&ctx, &ente, &body.payment_position_iupds).await?;
    Ok(Json(super::DELETED))
}
