//! GPD v3 (`gpd_v3.json`) under `/gpd/v3`: the same positions as v1, told
//! GPD v3's way. How v3's options and installments map onto the positions
//! v1 keeps, and what is refused, is `incasso_gpd::v3`'s (with the wire
//! models); here are the routes and the handlers.

use super::PublishQuery;
use super::v1::{self, ListQuery, page_info};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use incasso_app::positions;
// The wire models, where the server's callers have always found them.
pub use incasso_gpd::v3::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/organizations/{organizationfiscalcode}/debtpositions",
            get(list_positions).post(create_position),
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
}

/// Says the errors of core's rules, which name the position's options
/// (`paymentOption[n]`), with the request's own paths
/// (`paymentOption[i].installments[j]`).
fn explain(origins: &Origins, mut e: ApiError) -> ApiError {
    e.detail = origins.rewrite(&e.detail);
    for f in &mut e.errors {
        f.field = origins.rewrite(&f.field);
    }
    e
}

// ---------------------------------------------------------------- handlers

async fn create_position(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<PublishQuery>,
    ApiJson(body): ApiJson<PaymentPositionModelV3>,
) -> Result<(StatusCode, Json<PaymentPositionModelV3>), ApiError> {
    let ctx = state.ctx(caller);
    let (position, origins) = body.into_domain()?;
    let stored = positions::create(&ctx, &ente, position, q.to_publish)
        .await
        .map_err(|e| explain(&origins, e.into()))?;
    Ok((
        StatusCode::CREATED,
        Json(PaymentPositionModelV3::from_domain(
            &stored.position,
            ctx.now(),
        )),
    ))
}

async fn update_position(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PublishQuery>,
    ApiJson(body): ApiJson<PaymentPositionModelV3>,
) -> Result<Json<PaymentPositionModelV3>, ApiError> {
    let ctx = state.ctx(caller);
    let (position, origins) = body.into_domain()?;
    let stored = positions::update(&ctx, &ente, &iupd, position, q.to_publish)
        .await
        .map_err(|e| explain(&origins, e.into()))?;
    Ok(Json(PaymentPositionModelV3::from_domain(
        &stored.position,
        ctx.now(),
    )))
}

async fn get_position(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
) -> Result<Json<PaymentPositionResponseV3>, ApiError> {
    let ctx = state.ctx(caller);
    let stored = positions::get(&ctx, &ente, &iupd).await?;
    Ok(Json(response(&ente, &stored.position, ctx.now())))
}

async fn delete_position(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
) -> Result<Json<&'static str>, ApiError> {
    positions::delete(&state.ctx(caller), &ente, &iupd).await?;
    Ok(Json(super::DELETED))
}

async fn publish_position(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, iupd)): Path<(String, String)>,
) -> Result<Json<PaymentPositionModelV3>, ApiError> {
    let ctx = state.ctx(caller);
    let stored = positions::publish(&ctx, &ente, &iupd).await?;
    Ok(Json(PaymentPositionModelV3::from_domain(
        &stored.position,
        ctx.now(),
    )))
}

async fn list_positions(
    State(state): State<AppState>,
    caller: Caller,
    Path(ente): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<PaymentPositionsInfoV3>, ApiError> {
    let ctx = state.ctx(caller);
    let filter = v1::list_filter(q, statuses_of)?;
    let page = positions::list(&ctx, &ente, &filter).await?;
    let now = ctx.now();
    Ok(Json(PaymentPositionsInfoV3 {
        payment_position_list: page
            .items
            .iter()
            .map(|s| response(&ente, &s.position, now))
            .collect(),
        page_info: page_info(&page),
    }))
}
