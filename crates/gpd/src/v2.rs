//! GPD v2 (`gpd-service/openapi_external_v2.json`): many positions in one
//! body, created, updated or deleted all or nothing, with v1's models.

use crate::WireError;
use crate::v1::PaymentPositionModel;
use incasso_core::position::DebtPosition;
use serde::Deserialize;

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
pub fn positions_of(body: MultiplePaymentPositionModel) -> Result<Vec<DebtPosition>, WireError> {
    body.payment_positions
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let iupd = p.iupd.clone();
            p.into_domain().map_err(|mut e| {
                // As the use case names a refused position.
                e.detail = format!("paymentPositions[{i}] (iupd '{iupd}'): {}", e.detail);
                e
            })
        })
        .collect()
}
