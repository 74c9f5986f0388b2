//! GPD v2 (`gpd-service/openapi_external_v2.json`) under `/gpd/v2`: many
//! positions created, updated or deleted in one call, all or nothing, with
//! v1's models; and v1's "paid outside pagoPA". The bodies are
//! `incasso_gpd::v2`'s.

use super::PublishQuery;
use super::v1;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use incasso_app::positions;
// The wire models, where the server's callers have always found them.
pub use incasso_gpd::v2::*;

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
