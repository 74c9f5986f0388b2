//! The API that SEND (pagoPA's digital notifications) calls on GPD
//! (`gpd-service/openapi_send_v1.json`), under `/gpd/send/v1`: read a
//! payment option by notice number, and set its notification fee, which
//! the debtor then owes on top (the Node is asked for it in
//! `paGetPaymentV2`, the notice shows it).

use super::v1::{KeyValue, PaymentOptionResponse, base_response, kind_out};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use incasso_app::positions;
use incasso_store::StoredPosition;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/organizations/{organizationfiscalcode}/paymentoptions/{nav}",
            get(get_option),
        )
        .route(
            "/organizations/{organizationfiscalcode}/paymentoptions/{nav}/notificationfee",
            put(set_notification_fee),
        )
}

/// GPD's `PaymentsWithDebtorInfoModelResponse`: the option, with its
/// position's debtor and state.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentWithDebtor {
    #[serde(flatten)]
    option: PaymentOptionResponse,
    pay_stand_in: bool,
    iupd: String,
    #[serde(rename = "type")]
    kind: super::v1::DebtorTypeModel,
    fiscal_code: String,
    full_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    street_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    civic_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    province: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    company_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    office_name: Option<String>,
    debt_position_status: &'static str,
}

/// The option at `index` of the position, as v1 shows it.
fn option_of(
    ente: &str,
    stored: &StoredPosition,
    index: usize,
    ctx: &incasso_app::Ctx,
) -> Result<PaymentOptionResponse, ApiError> {
    base_response(ente, &stored.position, ctx.now())
        .payment_option
        .into_iter()
        .nth(index)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "opzione di pagamento non trovata nella sua posizione",
            )
        })
}

async fn get_option(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, nav)): Path<(String, String)>,
) -> Result<Json<PaymentWithDebtor>, ApiError> {
    let ctx = state.ctx(caller);
    let (stored, index) = positions::option_by_notice(&ctx, &ente, &nav).await?;
    let mut option = option_of(&ente, &stored, index, &ctx)?;
    // GPD tells SEND the fee among the option's metadata too.
    option.payment_option_metadata.push(KeyValue {
        key: "NOTIFICATION_FEE".into(),
        value: option.notification_fee.to_string(),
    });
    let p = &stored.position;
    let d = &p.debtor;
    Ok(Json(PaymentWithDebtor {
        option,
        pay_stand_in: p.pay_stand_in,
        iupd: p.iupd.clone(),
        kind: kind_out(d.kind),
        fiscal_code: d.fiscal_code.clone(),
        full_name: d.full_name.clone(),
        street_name: d.street_name.clone(),
        civic_number: d.civic_number.clone(),
        postal_code: d.postal_code.clone(),
        city: d.city.clone(),
        province: d.province.clone(),
        region: d.region.clone(),
        country: d.country.clone(),
        email: d.email.clone(),
        phone: d.phone.clone(),
        company_name: p.company_name.clone(),
        office_name: p.office_name.clone(),
        debt_position_status: p.effective_status(ctx.now()).as_str(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationFeeUpdateModel {
    notification_fee: i64,
}

/// GPD answers 209 where the option is an installment, 200 for a single
/// solution (`PaymentsController.updateNotificationFee`); so does incasso.
async fn set_notification_fee(
    State(state): State<AppState>,
    caller: Caller,
    Path((ente, nav)): Path<(String, String)>,
    ApiJson(body): ApiJson<NotificationFeeUpdateModel>,
) -> Result<(StatusCode, Json<PaymentOptionResponse>), ApiError> {
    let ctx = state.ctx(caller);
    let (stored, index) =
        positions::set_notification_fee(&ctx, &ente, &nav, body.notification_fee).await?;
    let status = if stored.position.options[index].is_partial_payment {
        StatusCode::from_u16(209).unwrap_or(StatusCode::OK)
    } else {
        StatusCode::OK
    };
    Ok((status, Json(option_of(&ente, &stored, index, &ctx)?)))
}
