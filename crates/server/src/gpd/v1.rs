//! GPD v1 (`gpd.json`) under `/gpd/v1`: the paths, JSON shapes and status
//! codes of pagoPA's positions API, so a GPD client works against incasso
//! by changing only its base URL and key.
//!
//! incasso extends the model in two compatible ways: `iuv` may be omitted
//! (incasso's IUV coordinator assigns one), and a transfer may carry
//! `accountingQuotas`, its split over accertamenti.

use super::PublishQuery;
use super::{
    Instant, de_instant, de_opt_instant, instant, parse_day, parse_instant, ser_instant,
    ser_opt_instant,
};
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
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_core::codes::NoticeNumber;
use incasso_core::position::{
    AccountingQuota, DebtPosition, Debtor, DebtorType, OptionStatus, PaymentOption, PositionStatus,
    Stamp, Transfer,
};
use incasso_store::{ListFilter, OrderBy, StoredPosition};
use serde::{Deserialize, Serialize};

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

// ---------------------------------------------------------------- wire models

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StampModel {
    pub hash_document: String,
    pub stamp_type: String,
    pub provincial_residence: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuotaModel {
    /// `year/code` of the accertamento, e.g. `2026/ACC-12`.
    pub accertamento: String,
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferModel {
    pub id_transfer: String,
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_fiscal_code: Option<String>,
    pub remittance_information: String,
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_iban: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<StampModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default)]
    pub transfer_metadata: Vec<KeyValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounting_quotas: Vec<QuotaModel>,
    /// Response only.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOptionModel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nav: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iuv: Option<String>,
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub organization_fiscal_code: Option<String>,
    pub amount: i64,
    pub description: String,
    pub is_partial_payment: bool,
    #[serde(deserialize_with = "de_instant", serialize_with = "ser_instant")]
    pub due_date: DateTime<Utc>,
    #[serde(
        default,
        deserialize_with = "de_opt_instant",
        serialize_with = "ser_opt_instant",
        skip_serializing_if = "Option::is_none"
    )]
    pub retention_date: Option<DateTime<Utc>>,
    /// Read-only in GPD: ignored on input.
    #[serde(default, skip_deserializing)]
    pub fee: i64,
    #[serde(default, skip_deserializing)]
    pub notification_fee: i64,
    #[serde(default)]
    pub transfer: Vec<TransferModel>,
    #[serde(default)]
    pub payment_option_metadata: Vec<KeyValue>,
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(
        default,
        skip_deserializing,
        serialize_with = "ser_opt_instant",
        skip_serializing_if = "Option::is_none"
    )]
    pub payment_date: Option<DateTime<Utc>>,
}

/// GPD's `PaymentPositionModel`: the request of create and update, and the
/// response of create, update, publish and invalidate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPositionModel {
    pub iupd: String,
    #[serde(rename = "type")]
    pub kind: DebtorTypeModel,
    #[serde(default = "default_true")]
    pub pay_stand_in: bool,
    pub fiscal_code: String,
    pub full_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub civic_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub switch_to_expired: bool,
    pub company_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "de_opt_instant",
        serialize_with = "ser_opt_instant",
        skip_serializing_if = "Option::is_none"
    )]
    pub validity_date: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_deserializing,
        serialize_with = "ser_opt_instant",
        skip_serializing_if = "Option::is_none"
    )]
    pub payment_date: Option<DateTime<Utc>>,
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(default)]
    pub payment_option: Vec<PaymentOptionModel>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DebtorTypeModel {
    F,
    G,
}

/// GPD's `PaymentPositionModelBaseResponse` (get and list).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPositionBaseResponse {
    pub iupd: String,
    pub organization_fiscal_code: String,
    #[serde(rename = "type")]
    pub kind: DebtorTypeModel,
    pub company_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub office_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inserted_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_date: Option<Instant>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<Instant>,
    pub payment_option: Vec<PaymentOptionResponse>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOptionResponse {
    pub nav: String,
    pub iuv: String,
    pub organization_fiscal_code: String,
    pub amount: i64,
    pub description: String,
    pub is_partial_payment: bool,
    pub due_date: Instant,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporting_date: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inserted_date: Option<Instant>,
    pub fee: i64,
    pub notification_fee: i64,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<Instant>,
    pub payment_option_metadata: Vec<KeyValue>,
    pub transfer: Vec<TransferModel>,
}

#[derive(Debug, Serialize)]
pub struct PageInfo {
    pub page: u32,
    pub limit: u32,
    pub items_found: u64,
    pub total_pages: u32,
}

#[derive(Debug, Serialize)]
pub struct PaymentPositionsInfo {
    pub payment_position_list: Vec<PaymentPositionBaseResponse>,
    pub page_info: PageInfo,
}

// ---------------------------------------------------------------- conversions

pub(super) fn kv_in(v: Vec<KeyValue>) -> Vec<(String, String)> {
    v.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

pub(super) fn kv_out(v: &[(String, String)]) -> Vec<KeyValue> {
    v.iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// A transfer of the wire, at `path` of the request: only shape errors are
/// found here (an `idTransfer` that is not a number, a malformed quota
/// reference); the rules are core's.
pub(super) fn transfer_in(path: &str, t: TransferModel) -> Result<Transfer, ApiError> {
    let id_transfer: u8 = t.id_transfer.parse().map_err(|_| {
        ApiError::bad_request(
            "BAD_FORMAT",
            format!("{path}.idTransfer: deve essere un numero da 1 a 5"),
        )
    })?;
    let mut quotas = Vec::with_capacity(t.accounting_quotas.len());
    for (k, q) in t.accounting_quotas.into_iter().enumerate() {
        let (year, code) = q
            .accertamento
            .split_once('/')
            .and_then(|(y, c)| Some((y.parse::<i32>().ok()?, c.to_string())))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "BAD_FORMAT",
                    format!("{path}.accountingQuotas[{k}].accertamento: atteso 'anno/codice'"),
                )
            })?;
        quotas.push(AccountingQuota {
            accertamento: AccertamentoRef { year, code },
            amount: Cents(q.amount),
        });
    }
    Ok(Transfer {
        id_transfer,
        amount: Cents(t.amount),
        organization_fiscal_code: t.organization_fiscal_code.unwrap_or_default(),
        company_name: t.company_name,
        remittance_information: t.remittance_information,
        category: t.category,
        iban: t.iban.filter(|s| !s.is_empty()),
        postal_iban: t.postal_iban.filter(|s| !s.is_empty()),
        stamp: t.stamp.map(|s| Stamp {
            hash_document: s.hash_document,
            stamp_type: s.stamp_type,
            provincial_residence: s.provincial_residence,
        }),
        metadata: kv_in(t.transfer_metadata),
        quotas,
        reported: false,
    })
}

/// A notice number the caller brought (`path` names it in an error).
pub(super) fn nav_in(path: &str, nav: Option<String>) -> Result<Option<NoticeNumber>, ApiError> {
    match nav.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(nav) => NoticeNumber::parse(&nav)
            .map(|n| Some(n.notice_number))
            .map_err(|e| {
                ApiError::bad_request("BAD_IUV", format!("{path}: numero avviso non valido ({e})"))
            }),
    }
}

impl PaymentPositionModel {
    /// Wire -> domain. Only shape errors are found here (an `idTransfer`
    /// that is not a number, a malformed quota reference); the rules are
    /// core's, applied by the store.
    pub fn into_domain(self) -> Result<DebtPosition, ApiError> {
        let mut options = Vec::with_capacity(self.payment_option.len());
        for (i, o) in self.payment_option.into_iter().enumerate() {
            let transfers = o
                .transfer
                .into_iter()
                .enumerate()
                .map(|(j, t)| transfer_in(&format!("paymentOption[{i}].transfer[{j}]"), t))
                .collect::<Result<Vec<_>, _>>()?;
            let notice_number = nav_in(&format!("paymentOption[{i}].nav"), o.nav)?;
            options.push(PaymentOption {
                iuv: o.iuv.filter(|s| !s.is_empty()),
                notice_number,
                amount: Cents(o.amount),
                description: o.description,
                is_partial_payment: o.is_partial_payment,
                due_date: o.due_date,
                retention_date: o.retention_date,
                fee: Cents::ZERO,
                notification_fee: Cents::ZERO,
                status: OptionStatus::Unpaid,
                payment_date: None,
                reporting_date: None,
                metadata: kv_in(o.payment_option_metadata),
                transfers,
            });
        }
        Ok(DebtPosition {
            iupd: self.iupd,
            debtor: Debtor {
                kind: match self.kind {
                    DebtorTypeModel::F => DebtorType::F,
                    DebtorTypeModel::G => DebtorType::G,
                },
                fiscal_code: self.fiscal_code,
                full_name: self.full_name,
                street_name: self.street_name,
                civic_number: self.civic_number,
                postal_code: self.postal_code,
                city: self.city,
                province: self.province,
                region: self.region,
                country: self.country,
                email: self.email,
                phone: self.phone,
            },
            company_name: self.company_name,
            office_name: self.office_name,
            validity_date: self.validity_date,
            switch_to_expired: self.switch_to_expired,
            pay_stand_in: self.pay_stand_in,
            status: PositionStatus::Draft,
            inserted_date: None,
            publish_date: None,
            payment_date: None,
            last_updated_date: None,
            options,
        })
    }

    pub fn from_domain(p: &DebtPosition, now: DateTime<Utc>) -> Self {
        let d = &p.debtor;
        PaymentPositionModel {
            iupd: p.iupd.clone(),
            kind: kind_out(d.kind),
            pay_stand_in: p.pay_stand_in,
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
            switch_to_expired: p.switch_to_expired,
            company_name: p.company_name.clone(),
            office_name: p.office_name.clone(),
            validity_date: p.validity_date,
            payment_date: p.payment_date,
            status: Some(p.effective_status(now).as_str()),
            payment_option: p
                .options
                .iter()
                .map(|o| PaymentOptionModel {
                    nav: o.notice_number.as_ref().map(|n| n.as_str().to_string()),
                    iuv: o.iuv.clone(),
                    organization_fiscal_code: None,
                    amount: o.amount.0,
                    description: o.description.clone(),
                    is_partial_payment: o.is_partial_payment,
                    due_date: o.due_date,
                    retention_date: o.retention_date,
                    fee: o.fee.0,
                    notification_fee: o.notification_fee.0,
                    transfer: o.transfers.iter().map(transfer_out).collect(),
                    payment_option_metadata: kv_out(&o.metadata),
                    status: Some(o.status.as_str()),
                    payment_date: o.payment_date,
                })
                .collect(),
        }
    }
}

pub(super) fn kind_out(k: DebtorType) -> DebtorTypeModel {
    match k {
        DebtorType::F => DebtorTypeModel::F,
        DebtorType::G => DebtorTypeModel::G,
    }
}

pub(super) fn transfer_out(t: &Transfer) -> TransferModel {
    TransferModel {
        id_transfer: t.id_transfer.to_string(),
        amount: t.amount.0,
        organization_fiscal_code: Some(t.organization_fiscal_code.clone()),
        remittance_information: t.remittance_information.clone(),
        category: t.category.clone(),
        iban: t.iban.clone(),
        postal_iban: t.postal_iban.clone(),
        stamp: t.stamp.as_ref().map(|s| StampModel {
            hash_document: s.hash_document.clone(),
            stamp_type: s.stamp_type.clone(),
            provincial_residence: s.provincial_residence.clone(),
        }),
        company_name: t.company_name.clone(),
        transfer_metadata: kv_out(&t.metadata),
        accounting_quotas: t
            .quotas
            .iter()
            .map(|q| QuotaModel {
                accertamento: format!("{}/{}", q.accertamento.year, q.accertamento.code),
                amount: q.amount.0,
            })
            .collect(),
        status: Some(if t.reported {
            "T_REPORTED"
        } else {
            "T_UNREPORTED"
        }),
    }
}

pub fn base_response(
    ente: &str,
    p: &DebtPosition,
    now: DateTime<Utc>,
) -> PaymentPositionBaseResponse {
    PaymentPositionBaseResponse {
        iupd: p.iupd.clone(),
        organization_fiscal_code: ente.to_string(),
        kind: kind_out(p.debtor.kind),
        company_name: p.company_name.clone(),
        office_name: p.office_name.clone(),
        inserted_date: instant(p.inserted_date),
        publish_date: instant(p.publish_date),
        validity_date: instant(p.validity_date),
        payment_date: instant(p.payment_date),
        status: p.effective_status(now).as_str(),
        last_updated_date: instant(p.last_updated_date),
        payment_option: p
            .options
            .iter()
            .map(|o| PaymentOptionResponse {
                nav: o
                    .notice_number
                    .as_ref()
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
                iuv: o.iuv.clone().unwrap_or_default(),
                organization_fiscal_code: ente.to_string(),
                amount: o.amount.0,
                description: o.description.clone(),
                is_partial_payment: o.is_partial_payment,
                due_date: Instant(o.due_date),
                retention_date: instant(o.retention_date),
                payment_date: instant(o.payment_date),
                reporting_date: instant(o.reporting_date),
                inserted_date: instant(p.inserted_date),
                fee: o.fee.0,
                notification_fee: o.notification_fee.0,
                status: o.status.as_str(),
                last_updated_date: instant(p.last_updated_date),
                payment_option_metadata: kv_out(&o.metadata),
                transfer: o.transfers.iter().map(transfer_out).collect(),
            })
            .collect(),
    }
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlreadyPaidModel {
    #[serde(default, deserialize_with = "de_opt_instant")]
    payment_date: Option<DateTime<Utc>>,
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
        page_info: PageInfo::of(&page),
    }))
}

impl PageInfo {
    pub(super) fn of<T>(page: &incasso_store::Page<T>) -> PageInfo {
        PageInfo {
            page: page.page,
            limit: page.limit,
            items_found: page.items_found,
            total_pages: page.total_pages,
        }
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateIbanModel {
    new_iban: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateIbanResponse {
    description: String,
    updated_transfers: u64,
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
