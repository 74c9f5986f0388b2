//! Paying a notice online: incasso opens a pagoPA Checkout cart through the
//! connector of the station that owns the notice, and sends the citizen
//! there. Checkout then pays through the Node, which sends the receipt to
//! `paForNode`; the citizen comes back to the outcome page.
//!
//! `GET /pay/{fiscalCode}/{noticeNumber}` is the citizen's entry (the link
//! or QR code of a notice needs nothing else); the API variant returns the
//! URL for portals that redirect themselves.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use incasso_core::codes::NoticeNumber;
use incasso_core::position::{OptionStatus, PositionStatus};
use incasso_pagopa::connector::{
    self, Cart, CartNotice, ConnectionSettings, ReturnUrls, StationIdentity,
};
use incasso_pagopa::xml::escape;
use incasso_store::StoreError;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutDto {
    /// Where to send the citizen to pay.
    pub checkout_url: String,
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}

/// Opens the cart; returns the Checkout URL.
pub async fn open_cart(
    state: &AppState,
    ente: &str,
    nav: &str,
    base: &str,
) -> Result<String, ApiError> {
    let (stored, index) = state.store.find_by_notice_number(ente, nav).await?;
    let p = &stored.position;
    let o = &p.options[index];
    crate::node::payable_fault(p, index, Utc::now(), ente, nav)
        .map_err(|f| ApiError::new(StatusCode::CONFLICT, f.code.as_str(), f.description))?;
    let seg = NoticeNumber::parse(nav)
        .ok()
        .and_then(|n| n.segregation_code);
    let stations = state.store.list_stations(ente).await?;
    let station = stations
        .iter()
        .find(|s| seg.is_none_or(|seg| s.segregation_code == seg))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "NO_STATION",
                "nessuna stazione dell'ente possiede questo avviso",
            )
        })?;
    let settings: ConnectionSettings = match state
        .store
        .station_connection(ente, &station.station_id)
        .await?
    {
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "BAD_CONNECTION",
                e.to_string(),
            )
        })?,
        None => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "NO_CONNECTION",
                format!(
                    "la stazione {} non ha un collegamento al nodo configurato",
                    station.station_id
                ),
            ));
        }
    };
    let connector = connector::build(
        &settings,
        StationIdentity {
            broker_id: station.broker_id.clone(),
            station_id: station.station_id.clone(),
        },
    )
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "BAD_CONNECTION",
            e.to_string(),
        )
    })?;
    let back = format!("{base}/pay/{ente}/{nav}/esito");
    let cart = Cart {
        payment_notices: vec![CartNotice {
            notice_number: nav.to_string(),
            fiscal_code: ente.to_string(),
            amount: o.amount.0,
            company_name: p.company_name.chars().take(140).collect(),
            description: o.description.chars().take(140).collect(),
        }],
        return_urls: ReturnUrls {
            return_ok_url: format!("{back}?outcome=ok"),
            return_cancel_url: format!("{back}?outcome=cancel"),
            return_error_url: format!("{back}?outcome=error"),
        },
        email_notice: p.debtor.email.clone(),
    };
    connector.create_cart(&cart).await.map_err(|e| {
        tracing::warn!(error = %e, "checkout cart refused");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "NODE_UNAVAILABLE",
            format!("pagoPA non raggiungibile: {e}"),
        )
    })
}

pub async fn pay_redirect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((ente, nav)): Path<(String, String)>,
) -> Response {
    match open_cart(&state, &ente, &nav, &base_url(&headers)).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => (
            e.status,
            page(
                "Pagamento non disponibile",
                &format!("<p>{}</p>", escape(&e.detail)),
            ),
        )
            .into_response(),
    }
}

/// `POST /api/v1/enti/{fiscalCode}/notices/{noticeNumber}/checkout`
#[utoipa::path(post, path = "/api/v1/enti/{fiscalCode}/notices/{noticeNumber}/checkout", tag = "payments",
    params(("fiscalCode" = String, Path), ("noticeNumber" = String, Path)),
    responses((status = 200, body = CheckoutDto), (status = 404, body = crate::error::ProblemJson),
              (status = 409, body = crate::error::ProblemJson), (status = 502, body = crate::error::ProblemJson)))]
pub async fn checkout_api(
    State(state): State<AppState>,
    _caller: crate::auth::Caller,
    headers: HeaderMap,
    Path((ente, nav)): Path<(String, String)>,
) -> Result<Json<CheckoutDto>, ApiError> {
    let checkout_url = open_cart(&state, &ente, &nav, &base_url(&headers)).await?;
    Ok(Json(CheckoutDto { checkout_url }))
}

pub async fn outcome(
    State(state): State<AppState>,
    Path((ente, nav)): Path<(String, String)>,
) -> Response {
    let found = state.store.find_by_notice_number(&ente, &nav).await;
    let body = match found {
        Ok((stored, index)) => {
            let o = &stored.position.options[index];
            let paid = o.status != OptionStatus::Unpaid
                || matches!(
                    stored.position.status,
                    PositionStatus::Paid | PositionStatus::Reported
                );
            if paid {
                format!(
                    "<p id=\"outcome\" data-status=\"PAID\">Pagamento registrato: {} € per l'avviso {}.</p>",
                    o.amount.to_italian(),
                    escape(&nav)
                )
            } else {
                format!(
                    "<p id=\"outcome\" data-status=\"UNPAID\">L'avviso {} risulta ancora da pagare. <a href=\"/pay/{}/{}\">Paga ora</a></p>",
                    escape(&nav),
                    escape(&ente),
                    escape(&nav)
                )
            }
        }
        Err(StoreError::NotFound(_)) => "<p>Avviso inesistente.</p>".to_string(),
        Err(e) => format!("<p>Errore: {}</p>", escape(&e.to_string())),
    };
    page("Esito del pagamento", &body).into_response()
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="it"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:40rem;margin:2rem auto;color:#17324d}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"#
    ))
}
