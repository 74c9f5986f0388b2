//! Paying a notice online: a pagoPA Checkout cart opened through the
//! connector of the station that owns the notice. Checkout then pays
//! through the Node, which sends the receipt to `paForNode`; the citizen
//! comes back to the outcome page under [`crate::Settings::public_url`].
//!
//! Anyone who holds a notice number may pay it, as at a PSP's counter: these
//! use cases check no rights beyond the notice's own state.

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use incasso_core::Cents;
use incasso_core::codes::NoticeNumber;
use incasso_core::ente::StationLink;
use incasso_core::position::{OptionStatus, PositionStatus};
use incasso_pagopa::connector::{
    self, Cart, CartNotice, ConnectionSettings, NodeConnector, ReturnUrls, StationIdentity,
};

/// How long a cart opened for a notice is reused. Checkout keeps a cart
/// open for a payment session of about this length; after it, a new one.
pub const CART_REUSED_FOR: chrono::Duration = chrono::Duration::minutes(10);

/// Opens a cart for the notice, or reuses the one opened for it in the last
/// [`CART_REUSED_FOR`]; answers the Checkout URL to send the citizen to.
pub async fn open_cart(ctx: &Ctx, ente: &str, nav: &str) -> Result<String, AppError> {
    let at = Place::new("checkout.open_cart", ente, nav);
    let (stored, index) = ctx.store().find_by_notice_number(ente, nav).await.at(at)?;
    let p = &stored.position;
    let o = &p.options[index];
    crate::node::payable_fault(p, index, ctx.now(), ente, nav)
        .map_err(|f| AppError::conflict(f.code.as_str(), f.description))?;
    if let Some(url) = ctx
        .store()
        .open_cart(ente, nav, ctx.now() - CART_REUSED_FOR)
        .await
        .at(at)?
    {
        return Ok(url);
    }
    let connector = station_connector(ctx, ente, nav).await?;
    let back = format!("{}/pay/{ente}/{nav}/esito", ctx.settings().public_url);
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
        id_cart: None,
    };
    let url = create_cart(connector.as_ref(), ente, &cart).await?;
    ctx.store()
        .record_cart(ente, nav, &url, ctx.now())
        .await
        .at(at)?;
    Ok(url)
}

/// The station of Ente `ente` that owns notice `nav` (by its segregation
/// code), and how it reaches the Node. An Ente without one cannot take
/// payments through Checkout.
pub(crate) async fn station_settings(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
) -> Result<(StationLink, ConnectionSettings), AppError> {
    let at = Place::new("checkout.station", ente, nav);
    let seg = NoticeNumber::parse(nav)
        .ok()
        .and_then(|n| n.segregation_code);
    // Read on every cart opened: the stations as the Node's door sees them.
    let stations = ctx.app.stations.get(ctx.store(), ente).await.at(at)?;
    let station = stations
        .into_iter()
        .find(|s| seg.is_none_or(|seg| s.segregation_code == seg))
        .ok_or_else(|| {
            AppError::conflict(
                "NO_STATION",
                "nessuna stazione dell'ente possiede questo avviso",
            )
        })?;
    let settings: ConnectionSettings = match ctx
        .app
        .stations
        .connection(ctx.store(), ente, &station.station_id)
        .await
        .at(at)?
    {
        Some(json) => serde_json::from_str(&json).map_err(|e| AppError::internal(&at, &e))?,
        None => {
            return Err(AppError::conflict(
                "NO_CONNECTION",
                format!(
                    "la stazione {} non ha un collegamento al nodo configurato",
                    station.station_id
                ),
            ));
        }
    };
    Ok((station, settings))
}

/// The connector of the station that owns notice `nav` of Ente `ente`.
pub(crate) async fn station_connector(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
) -> Result<Box<dyn NodeConnector>, AppError> {
    let (station, settings) = station_settings(ctx, ente, nav).await?;
    connector::build(
        &settings,
        StationIdentity {
            broker_id: station.broker_id,
            station_id: station.station_id,
        },
    )
    .map_err(|e| AppError::internal(&Place::new("checkout.connector", ente, nav), &e))
}

/// Opens a Checkout cart through `connector`; a refusal or silence of
/// pagoPA is told to the citizen as such (and logged).
pub(crate) async fn create_cart(
    connector: &dyn NodeConnector,
    ente: &str,
    cart: &Cart,
) -> Result<String, AppError> {
    connector.create_cart(cart).await.map_err(|e| {
        tracing::warn!(ente, error = %e, "checkout cart refused");
        AppError::new(
            Kind::Unavailable,
            "NODE_UNAVAILABLE",
            "pagoPA non è raggiungibile in questo momento: riprovare tra qualche minuto",
        )
    })
}

/// What a citizen sees of a notice: its amount and whether it is paid.
#[derive(Debug, Clone)]
pub struct NoticeState {
    pub amount: Cents,
    pub description: String,
    pub company_name: String,
    pub paid: bool,
}

pub async fn notice_state(ctx: &Ctx, ente: &str, nav: &str) -> Result<NoticeState, AppError> {
    let (stored, index) = ctx
        .store()
        .find_by_notice_number(ente, nav)
        .await
        .at(Place::new("checkout.notice_state", ente, nav))?;
    let p = &stored.position;
    let o = &p.options[index];
    Ok(NoticeState {
        amount: o.amount,
        description: o.description.clone(),
        company_name: p.company_name.clone(),
        paid: o.status != OptionStatus::Unpaid
            || matches!(p.status, PositionStatus::Paid | PositionStatus::Reported),
    })
}
